/*
 * A QEMU-shaped replication loop over libfgbi.
 *
 * The guest's RAM is two separate blocks (low memory at 0, high memory at 4 GiB), each with a
 * dirty bitmap that the "guest" sets as it writes. Every epoch the primary adds the dirty pages
 * to the encoder, the frame goes to the backup, which applies it through a callback mapping a
 * guest address to its own RAM blocks, and the replica is compared with the primary.
 *
 * Build: cc -Wall -Wextra -O2 epoch_loop.c $(pkg-config --cflags --libs fgbi) -o epoch_loop
 */
#include <libfgbi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define EPOCHS 8

typedef struct {
    uint64_t guest_base; /* guest address of the first byte */
    size_t pages;
    uint8_t *host;   /* primary: the guest's memory; backup: the replica */
    uint64_t *dirty; /* one bit per page (primary only) */
} ram_block;

typedef struct {
    ram_block blocks[2];
} ram;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int ram_init(ram *r, int with_bitmap) {
    const uint64_t bases[2] = {0, 4ull << 30};
    const size_t pages[2] = {256, 128}; /* 1 MiB low, 512 KiB high */
    for (int i = 0; i < 2; i++) {
        ram_block *b = &r->blocks[i];
        b->guest_base = bases[i];
        b->pages = pages[i];
        b->host = calloc(b->pages, PAGE);
        b->dirty = with_bitmap ? calloc((b->pages + 63) / 64, sizeof(uint64_t)) : NULL;
        if (!b->host || (with_bitmap && !b->dirty))
            return -1;
    }
    return 0;
}

static void ram_free(ram *r) {
    for (int i = 0; i < 2; i++) {
        free(r->blocks[i].host);
        free(r->blocks[i].dirty);
    }
}

/* The guest writes `len` bytes at page `page` of block `blk`, offset `off`. */
static void guest_write(ram *r, int blk, size_t page, size_t off, const void *src, size_t len) {
    ram_block *b = &r->blocks[blk];
    memcpy(b->host + page * PAGE + off, src, len);
    b->dirty[page / 64] |= 1ull << (page % 64);
}

static void mark_all_dirty(ram *r) {
    for (int i = 0; i < 2; i++)
        memset(r->blocks[i].dirty, 0xff, (r->blocks[i].pages + 63) / 64 * sizeof(uint64_t));
}

/* One epoch of a busy guest: counters, zeroed pages, moved buffers, copies, fresh data. */
static void guest_runs(ram *r, int epoch) {
    for (int n = 0; n < 40; n++) { /* counters and pointers: a few bytes per page */
        int blk = rng() % 2;
        size_t page = rng() % r->blocks[blk].pages;
        uint64_t v = rng();
        guest_write(r, blk, page, (rng() % (PAGE / 8)) * 8, &v, sizeof v);
    }
    for (int n = 0; n < 3; n++) { /* freed pages are zeroed */
        static const uint8_t zeros[PAGE];
        guest_write(r, 0, rng() % r->blocks[0].pages, 0, zeros, PAGE);
    }
    for (int n = 0; n < 4; n++) { /* a compacting allocator moves a buffer within a page */
        ram_block *b = &r->blocks[0];
        size_t page = rng() % b->pages;
        uint8_t tmp[PAGE];
        memcpy(tmp, b->host + page * PAGE, PAGE);
        memmove(tmp + 64, tmp, PAGE - 64);
        guest_write(r, 0, page, 0, tmp, PAGE);
    }
    for (int n = 0; n < 4; n++) { /* a page copied from the other block */
        size_t from = rng() % r->blocks[1].pages, to = rng() % r->blocks[0].pages;
        guest_write(r, 0, to, 0, r->blocks[1].host + from * PAGE, PAGE);
    }
    for (int n = 0; n < 2 + epoch % 3; n++) { /* new text-like content */
        uint8_t text[PAGE];
        for (size_t i = 0; i < PAGE; i++)
            text[i] = "the quick brown fox jumps over the lazy dog "[(i + rng() % 3) % 44];
        guest_write(r, 1, rng() % r->blocks[1].pages, 0, text, PAGE);
    }
}

/* Backup side: guest address -> replica page, NULL when outside both blocks. */
static uint8_t *replica_page_at(void *opaque, uint64_t addr) {
    ram *replica = opaque;
    for (int i = 0; i < 2; i++) {
        ram_block *b = &replica->blocks[i];
        if (addr >= b->guest_base && addr - b->guest_base < b->pages * PAGE)
            return b->host + (addr - b->guest_base);
    }
    return NULL;
}

#define TRY(call)                                                                          \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ != FGBI_OK) {                                                              \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, fgbi_strerror(rc_),             \
                    fgbi_last_error_message());                                            \
            goto out;                                                                      \
        }                                                                                  \
    } while (0)

int main(void) {
    int status = 1;
    ram primary, replica;
    fgbi_config *cfg = NULL;
    fgbi_encoder *enc = NULL;
    fgbi_decoder *dec = NULL;
    memset(&primary, 0, sizeof primary);
    memset(&replica, 0, sizeof replica);
    if (ram_init(&primary, 1) || ram_init(&replica, 0)) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    printf("libfgbi %s\n", fgbi_version());

    /* the guest boots: some content everywhere */
    for (int blk = 0; blk < 2; blk++)
        for (size_t p = 0; p < primary.blocks[blk].pages; p++)
            if (p % 3 != 0) {
                uint64_t v[4] = {rng(), p, (uint64_t)blk, rng() & 0xff};
                guest_write(&primary, blk, p, (p * 64) % PAGE, v, sizeof v);
            }

    TRY(fgbi_config_new(&cfg));
    TRY(fgbi_config_set_cache_bytes(cfg, 2u << 20));
    TRY(fgbi_encoder_new(cfg, &enc));
    TRY(fgbi_decoder_new(cfg, &dec));

    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        if (epoch == 0)
            mark_all_dirty(&primary); /* the first frame carries all of memory */
        else
            guest_runs(&primary, epoch);

        /* primary: walk the dirty bitmaps, add each dirty page, clear the bits */
        size_t dirty = 0;
        TRY(fgbi_encoder_begin_epoch(enc, (uint64_t)epoch));
        for (int blk = 0; blk < 2; blk++) {
            ram_block *b = &primary.blocks[blk];
            for (size_t p = 0; p < b->pages; p++) {
                if (!(b->dirty[p / 64] >> (p % 64) & 1))
                    continue;
                TRY(fgbi_encoder_add_page(enc, b->guest_base + p * PAGE, b->host + p * PAGE));
                dirty++;
            }
            memset(b->dirty, 0, (b->pages + 63) / 64 * sizeof(uint64_t));
        }
        const uint8_t *frame;
        size_t frame_len;
        TRY(fgbi_encoder_end_epoch(enc, &frame, &frame_len));

        /* backup: validate and apply through the callback */
        TRY(fgbi_decoder_apply_cb(dec, frame, frame_len, replica_page_at, &replica));
        for (int blk = 0; blk < 2; blk++)
            if (memcmp(primary.blocks[blk].host, replica.blocks[blk].host,
                       primary.blocks[blk].pages * PAGE) != 0) {
                fprintf(stderr, "epoch %d: replica block %d differs\n", epoch, blk);
                goto out;
            }

        fgbi_encoder_counters s;
        TRY(fgbi_encoder_epoch_stats(enc, &s));
        printf("epoch %d: %4zu dirty pages, %8zu frame bytes (%5.1f%% of %zu raw); "
               "zero %llu, delta %llu, dict %llu, blocks %llu, compressed %llu, raw %llu, "
               "unchanged %llu\n",
               epoch, dirty, frame_len, dirty ? 100.0 * frame_len / (dirty * PAGE) : 0.0,
               dirty * PAGE, (unsigned long long)s.zero_pages,
               (unsigned long long)s.delta_pages, (unsigned long long)s.dict_pages,
               (unsigned long long)s.block_pages, (unsigned long long)s.compressed_pages,
               (unsigned long long)s.raw_pages, (unsigned long long)s.unchanged_pages);
    }

    fgbi_encoder_counters es;
    fgbi_decoder_counters ds;
    TRY(fgbi_encoder_stats(enc, &es));
    TRY(fgbi_decoder_stats(dec, &ds));
    printf("total: %llu pages in, %llu bytes in, %llu frame bytes out; cache hits %llu, "
           "misses %llu, evictions %llu; shared blocks %llu; encoder memory %llu bytes; "
           "decoder applied %llu frames\n",
           (unsigned long long)es.pages_in, (unsigned long long)es.bytes_in,
           (unsigned long long)es.bytes_out, (unsigned long long)es.cache_hits,
           (unsigned long long)es.cache_misses, (unsigned long long)es.cache_evictions,
           (unsigned long long)es.shared_blocks, (unsigned long long)es.memory_bytes,
           (unsigned long long)ds.frames);
    printf("replica identical after %d epochs\n", EPOCHS);
    status = 0;
out:
    fgbi_encoder_free(enc);
    fgbi_decoder_free(dec);
    fgbi_config_free(cfg);
    ram_free(&primary);
    ram_free(&replica);
    return status;
}
