/*
 * The guest's workload: a small in-memory "service" that dirties memory the way programs do.
 * Nothing in it is shaped for any encoder:
 *   - a table of account records (fixed-size structs) updated in place: balances, counters,
 *     timestamps, with a skewed choice (most updates go to a hot tenth of the records);
 *   - a heap of variable-size items (32 B .. 4 KiB) inserted and deleted through malloc/free
 *     (a hash table of string keys), so pages are allocated, rewritten, freed and reused;
 *   - a text log in a ring buffer (formatted lines appended, wrapping around);
 *   - every few thousand transactions a report: the hot records sorted (qsort) into a scratch
 *     array that is allocated and freed each time.
 * Usage: workload MIB [BATCH] [SLEEP_US]: about MIB MiB of data; BATCH transactions, then a
 * SLEEP_US pause (a service with idle moments), forever. Prints a status line every 2^18 tx.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct account {
    uint64_t id;
    int64_t balance;
    uint32_t n_tx, n_fail;
    uint64_t last_ts;
    char name[24];
    uint32_t flags, pad;
}; /* 64 bytes */

struct item {
    struct item *next;
    uint64_t key_hash;
    uint32_t len, version;
    char key[24];
    unsigned char data[]; /* len bytes */
};

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) {
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    }
    return h;
}

static int by_balance(const void *a, const void *b)
{
    const struct account *x = *(struct account *const *)a, *y = *(struct account *const *)b;
    return (x->balance > y->balance) - (x->balance < y->balance);
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 32;
    unsigned batch = argc > 2 ? strtoul(argv[2], NULL, 0) : 2000;
    unsigned sleep_us = argc > 3 ? strtoul(argv[3], NULL, 0) : 2000;
    size_t bytes = mib << 20;
    rng_state ^= (uint64_t)time(NULL) * 2654435761u;

    /* half the budget: account table; a quarter: the item heap; 1/16: the log */
    size_t n_acc = bytes / 2 / sizeof(struct account);
    size_t heap_budget = bytes / 4;
    size_t log_size = bytes / 16;
    size_t n_buckets = 1 << 14;

    struct account *acc = calloc(n_acc, sizeof(*acc));
    struct item **buckets = calloc(n_buckets, sizeof(*buckets));
    char *log = malloc(log_size);
    if (!acc || !buckets || !log) {
        fprintf(stderr, "workload: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n_acc; i++) {
        acc[i].id = 1000000 + i;
        acc[i].balance = (int64_t)(rnd() % 100000);
        snprintf(acc[i].name, sizeof(acc[i].name), "user%07zu", i);
    }
    memset(log, 0, log_size);
    size_t log_pos = 0, heap_used = 0, n_items = 0;
    uint64_t tx = 0, inserts = 0, deletes = 0;
    size_t hot = n_acc / 10 ? n_acc / 10 : 1;

    printf("workload: started, %zu MiB: %zu accounts, %zu KiB heap, %zu KiB log\n", mib, n_acc,
           heap_budget >> 10, log_size >> 10);
    fflush(stdout);

    for (;;) {
        for (unsigned b = 0; b < batch; b++, tx++) {
            /* a transfer between two accounts, mostly hot ones */
            size_t from = (rnd() % 10 < 8) ? rnd() % hot : rnd() % n_acc;
            size_t to = (rnd() % 10 < 8) ? rnd() % hot : rnd() % n_acc;
            int64_t amount = (int64_t)(rnd() % 500);
            if (acc[from].balance >= amount) {
                acc[from].balance -= amount;
                acc[to].balance += amount;
                acc[from].n_tx++;
                acc[to].n_tx++;
            } else {
                acc[from].n_fail++;
            }
            acc[from].last_ts = acc[to].last_ts = tx;

            /* its log line */
            char line[96];
            int n = snprintf(line, sizeof(line), "tx %llu %s -> %s amount %lld\n",
                             (unsigned long long)tx, acc[from].name, acc[to].name,
                             (long long)amount);
            if (log_pos + (size_t)n > log_size) {
                log_pos = 0;
            }
            memcpy(log + log_pos, line, (size_t)n);
            log_pos += (size_t)n;

            /* sessions/caches: items come and go */
            unsigned r = rnd() % 16;
            if (r < 2 && heap_used < heap_budget) {
                uint32_t len = 32 + (uint32_t)(rnd() % 4064);
                struct item *it = malloc(sizeof(*it) + len);
                if (it) {
                    snprintf(it->key, sizeof(it->key), "s%llu", (unsigned long long)rnd() % 1000000);
                    it->key_hash = hash_str(it->key);
                    it->len = len;
                    it->version = 0;
                    for (uint32_t i = 0; i < len; i++) {
                        it->data[i] = (unsigned char)(acc[to].name[i % 12] + (i & 7));
                    }
                    memcpy(it->data, &acc[to], len < sizeof(acc[to]) ? len : sizeof(acc[to]));
                    struct item **head = &buckets[it->key_hash & (n_buckets - 1)];
                    it->next = *head;
                    *head = it;
                    heap_used += len;
                    n_items++;
                    inserts++;
                }
            } else if (r < 4 || (r < 6 && heap_used >= heap_budget)) {
                struct item **pp = &buckets[rnd() & (n_buckets - 1)];
                if (*pp) {
                    struct item *it = *pp;
                    *pp = it->next;
                    heap_used -= it->len;
                    n_items--;
                    deletes++;
                    free(it);
                }
            } else if (r < 8) {
                /* update an item in place */
                struct item *it = buckets[rnd() & (n_buckets - 1)];
                if (it) {
                    it->version++;
                    uint32_t at = (uint32_t)(rnd() % it->len);
                    uint32_t k = it->len - at < 16 ? it->len - at : 16;
                    memcpy(it->data + at, &tx, k < 8 ? k : 8);
                }
            }
        }

        if ((tx & ((1u << 18) - 1)) < batch) {
            /* a report: the richest hot accounts, sorted in a scratch array */
            struct account **top = malloc(hot * sizeof(*top));
            if (top) {
                for (size_t i = 0; i < hot; i++) {
                    top[i] = &acc[i];
                }
                qsort(top, hot, sizeof(*top), by_balance);
                printf("workload: tx=%llu items=%zu heap=%zuK inserts=%llu deletes=%llu top=%s\n",
                       (unsigned long long)tx, n_items, heap_used >> 10,
                       (unsigned long long)inserts, (unsigned long long)deletes,
                       top[hot - 1]->name);
                fflush(stdout);
                free(top);
            }
        }
        if (sleep_us) {
            usleep(sleep_us);
        }
    }
}
