/*
 * libfgbi's fgbi_xbzrle_encode against QEMU 10.0's own XBZRLE encoders (migration/xbzrle.c,
 * compiled from QEMU's source by run.sh), on synthetic page pairs and on real dirty page pairs
 * from the traces. Written for libfgbi (not QEMU code); see README.md.
 *
 * Usage: driver [--reps N] [--pairs N] [--only SUBSTRING] [--synthetic] [--trace DIR]...
 *
 * Every pair is first encoded by every encoder and checked: each output decodes (with libfgbi's
 * and with QEMU's decoder) to the new page, QEMU's encoders agree byte for byte, and the encoders
 * agree on which pages do not fit (-1). Then each encoder is timed, interleaved (the encoders
 * take turns, in a rotating order, so load from other jobs is shared), in two regimes:
 *   memory: one pass over all pairs of a set (8192 pairs = 32 MiB of old + 32 MiB of new pages,
 *           more than the last-level cache), ns per page of the pass;
 *   cache:  32 pairs at a time (256 KiB, L2-resident): one untimed pass, then 8 timed passes.
 * Times are this thread's CPU time, per chunk of 64 pairs (memory) or per batch (cache); the
 * median of each chunk over the repetitions is taken, and the medians summed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <libfgbi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

/* QEMU's encoders and decoder, renamed by run.sh (objcopy --redefine-sym). */
int qemu_enc_dispatch(uint8_t *old_buf, uint8_t *new_buf, int slen, uint8_t *dst, int dlen);
int qemu_enc_scalar(uint8_t *old_buf, uint8_t *new_buf, int slen, uint8_t *dst, int dlen);
int qemu_enc_dispatch_inl(uint8_t *old_buf, uint8_t *new_buf, int slen, uint8_t *dst, int dlen);
int qemu_enc_scalar_inl(uint8_t *old_buf, uint8_t *new_buf, int slen, uint8_t *dst, int dlen);
int qemu_dec(uint8_t *src, int slen, uint8_t *dst, int dlen);
extern int fgbi_shim_cpuinfo_avx512bw;

typedef int (*enc_fn)(uint8_t *, uint8_t *, int, uint8_t *, int);

static int enc_fgbi(uint8_t *o, uint8_t *n, int slen, uint8_t *d, int dlen)
{
    return fgbi_xbzrle_encode(o, n, slen, d, dlen);
}

static const struct {
    const char *name;
    enc_fn f;
} ENC[] = {
    {"fgbi", enc_fgbi},
    {"qemu-dispatched", qemu_enc_dispatch},
    {"qemu-scalar", qemu_enc_scalar},
    {"qemu-dispatched-inl", qemu_enc_dispatch_inl},
    {"qemu-scalar-inl", qemu_enc_scalar_inl},
};
#define NENC ((int)(sizeof ENC / sizeof ENC[0]))

struct set {
    char name[64];
    size_t n;
    uint8_t *old, *new_;
};

static void die(const char *msg)
{
    fprintf(stderr, "driver: %s\n", msg);
    exit(1);
}

static uint8_t *alloc_pages(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n ? n * PAGE : PAGE))
        die("out of memory");
    return p;
}

static uint64_t rng_state = 0x5eed;
static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* n changed bytes per page: at distinct random offsets (clustered == 0), or in runs of 16 bytes
 * (clustered == 1), each run at a random offset 0..7 inside a distinct 32-byte slot (so runs are
 * at least 8 bytes apart). The old pages are random bytes. */
static void make_synthetic(struct set *s, size_t pairs, int nbytes, int clustered)
{
    snprintf(s->name, sizeof s->name, "%s %d B", clustered ? "clustered" : "scattered", nbytes);
    s->n = pairs;
    s->old = alloc_pages(pairs);
    s->new_ = alloc_pages(pairs);
    for (size_t i = 0; i < pairs * PAGE; i += 8) {
        uint64_t v = rng();
        memcpy(s->old + i, &v, 8);
    }
    memcpy(s->new_, s->old, pairs * PAGE);
    for (size_t p = 0; p < pairs; p++) {
        uint8_t *page = s->new_ + p * PAGE;
        uint8_t used[PAGE];
        memset(used, 0, sizeof used);
        if (!clustered) {
            for (int k = 0; k < nbytes;) {
                size_t i = rng() % PAGE;
                if (used[i])
                    continue;
                used[i] = 1;
                page[i] ^= (uint8_t)(rng() % 255 + 1);
                k++;
            }
        } else {
            for (int k = 0; k < nbytes / 16;) {
                size_t slot = rng() % (PAGE / 32);
                if (used[slot])
                    continue;
                used[slot] = 1;
                size_t at = slot * 32 + rng() % 8;
                for (int j = 0; j < 16; j++)
                    page[at + j] ^= (uint8_t)(rng() % 255 + 1);
                k++;
            }
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int all_zero(const uint8_t *p)
{
    uint64_t acc = 0;
    for (int i = 0; i < PAGE; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        acc |= v;
    }
    return acc == 0;
}

/* Real dirty pairs: page p of epoch e-1 and of epoch e, for every e >= 1 and every page that
 * differs and whose new version is not all zero (QEMU sends those as zero pages, not XBZRLE).
 * At most `max` of them, evenly spaced over all such pairs of the trace. */
static void load_trace(struct set *s, const char *dir, size_t max)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "driver: cannot open trace %s\n", dir);
        exit(1);
    }
    char *names[4096];
    int ne = 0;
    struct dirent *de;
    while ((de = readdir(d)) && ne < 4096) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "epoch-", 6) == 0 && l > 4 && strcmp(de->d_name + l - 4, ".img") == 0)
            names[ne++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, ne, sizeof names[0], cmp_str);
    if (ne < 2)
        die("a trace needs at least two epoch images");
    const uint8_t **img = calloc(ne, sizeof *img);
    size_t len = 0;
    for (int e = 0; e < ne; e++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[e]);
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st))
            die("cannot open an epoch image");
        if (e == 0)
            len = st.st_size;
        else if ((size_t)st.st_size != len)
            die("epoch images of different sizes");
        img[e] = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (img[e] == MAP_FAILED)
            die("mmap failed");
        madvise((void *)img[e], len, MADV_SEQUENTIAL);
        close(fd);
    }
    size_t pages = len / PAGE, cap = 1 << 16, total = 0;
    uint32_t *pe = malloc(cap * sizeof *pe), *pp = malloc(cap * sizeof *pp);
    for (int e = 1; e < ne; e++) {
        for (size_t p = 0; p < pages; p++) {
            const uint8_t *a = img[e - 1] + p * PAGE, *b = img[e] + p * PAGE;
            if (memcmp(a, b, PAGE) == 0 || all_zero(b))
                continue;
            if (total == cap) {
                cap *= 2;
                pe = realloc(pe, cap * sizeof *pe);
                pp = realloc(pp, cap * sizeof *pp);
            }
            pe[total] = e;
            pp[total] = p;
            total++;
        }
    }
    size_t n = total < max ? total : max;
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    snprintf(s->name, sizeof s->name, "%s", base);
    s->n = n;
    s->old = alloc_pages(n);
    s->new_ = alloc_pages(n);
    for (size_t i = 0; i < n; i++) {
        size_t k = n == total ? i : (size_t)((double)i * total / n);
        memcpy(s->old + i * PAGE, img[pe[k] - 1] + (size_t)pp[k] * PAGE, PAGE);
        memcpy(s->new_ + i * PAGE, img[pe[k]] + (size_t)pp[k] * PAGE, PAGE);
    }
    fprintf(stderr, "driver: %s: %zu dirty non-zero pairs over %d epochs, using %zu\n", s->name, total,
            ne, n);
    for (int e = 0; e < ne; e++) {
        munmap((void *)img[e], len);
        free(names[e]);
    }
    free(img);
    free(pe);
    free(pp);
}

struct check {
    size_t bytes[NENC];    /* encoded bytes over the pairs every encoder fitted */
    size_t overflow[NENC]; /* pairs an encoder returned -1 for */
    size_t fgbi_same_as_qemu;
    size_t fgbi_only_overflow; /* fgbi -1 where QEMU fitted (within 64 bytes of the page) */
};

/* Encodes every pair with every encoder and checks the outputs; dies on any disagreement. */
static void check_set(const struct set *s, struct check *c)
{
    static uint8_t dst[NENC][PAGE], page[PAGE];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < s->n; i++) {
        uint8_t *o = s->old + i * PAGE, *nw = s->new_ + i * PAGE;
        int r[NENC], all_fit = 1, k;
        for (k = 0; k < NENC; k++) {
            r[k] = ENC[k].f(o, nw, PAGE, dst[k], PAGE);
            if (r[k] < 0) {
                c->overflow[k]++;
                all_fit = 0;
                continue;
            }
            if (r[k] == 0 && memcmp(o, nw, PAGE) != 0)
                goto bad;
            /* decode with libfgbi's decoder */
            memcpy(page, o, PAGE);
            if (fgbi_xbzrle_decode(dst[k], r[k], page, PAGE) < 0 || memcmp(page, nw, PAGE) != 0)
                goto bad;
            /* and with QEMU's */
            memcpy(page, o, PAGE);
            if (r[k] > 0 && (qemu_dec(dst[k], r[k], page, PAGE) < 0 || memcmp(page, nw, PAGE) != 0))
                goto bad;
        }
        /* QEMU's four builds must agree byte for byte (including on -1). */
        for (k = 2; k < NENC; k++)
            if (r[k] != r[1] || (r[1] > 0 && memcmp(dst[k], dst[1], r[1]) != 0)) {
                fprintf(stderr, "driver: %s pair %zu: %s and %s differ (%d, %d)\n", s->name, i,
                        ENC[1].name, ENC[k].name, r[1], r[k]);
                exit(1);
            }
        /* libfgbi may fit where QEMU gives up (its output is never longer, and it does not stop
         * with 2 bytes of room left), never the other way round. */
        if (r[0] < 0 && r[1] >= 0) {
            /* libfgbi's runs absorb gaps of up to 2 unchanged bytes; a run crossing 128 bytes
             * that way takes a 2-byte count, so its output can be a few bytes longer than QEMU's
             * and not fit where QEMU's just does. Anything else is a bug. */
            if (r[1] < PAGE - 64) {
                fprintf(stderr, "driver: %s pair %zu: fgbi overflowed, QEMU gave %d bytes\n",
                        s->name, i, r[1]);
                exit(1);
            }
            c->fgbi_only_overflow++;
        }
        if (all_fit) {
            for (k = 0; k < NENC; k++)
                c->bytes[k] += r[k];
            c->fgbi_same_as_qemu += r[0] == r[1] && memcmp(dst[0], dst[1], r[0]) == 0;
        }
        continue;
    bad:
        fprintf(stderr, "driver: %s pair %zu: %s gave %d, which does not decode to the new page\n",
                s->name, i, ENC[k].name, r[k]);
        exit(1);
    }
}

/* This thread's CPU time: time the scheduler gave other jobs on the shared cores is not
 * counted (their effect on the caches and on memory bandwidth still is). */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile long sink;

static double pass(enc_fn f, uint8_t *old, uint8_t *nw, size_t n)
{
    static uint8_t dst[PAGE];
    long acc = 0;
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        acc += f(old + i * PAGE, nw + i * PAGE, PAGE, dst, PAGE);
    double t = now_ns() - t0;
    sink += acc;
    return t;
}

/* memory: one pass over all pairs, timed in chunks of 64 pairs (t[chunk]) */
#define CHUNK 64
static void time_memory(enc_fn f, const struct set *s, double *t)
{
    for (size_t b = 0, c = 0; b < s->n; b += CHUNK, c++) {
        size_t m = s->n - b < CHUNK ? s->n - b : CHUNK;
        t[c] = pass(f, s->old + b * PAGE, s->new_ + b * PAGE, m);
    }
}

/* cache: 32 pairs at a time, one untimed pass then INNER timed ones (t[batch]) */
#define BATCH 32
#define INNER 8
static void time_cache(enc_fn f, const struct set *s, double *t)
{
    for (size_t b = 0, c = 0; b < s->n; b += BATCH, c++) {
        size_t m = s->n - b < BATCH ? s->n - b : BATCH;
        uint8_t *o = s->old + b * PAGE, *nw = s->new_ + b * PAGE;
        pass(f, o, nw, m);
        t[c] = 0;
        for (int k = 0; k < INNER; k++)
            t[c] += pass(f, o, nw, m);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAXSETS 32
struct result {
    struct check c;
    double med[2][NENC];
};

int main(int argc, char **argv)
{
    int reps = 11, synthetic = 0;
    const char *only = NULL;
    size_t max_pairs = 8192;
    const char *traces[MAXSETS];
    int ntraces = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
            max_pairs = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--synthetic"))
            synthetic = 1;
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc && ntraces < MAXSETS - 8)
            traces[ntraces++] = argv[++i];
        else {
            fprintf(stderr, "usage: driver [--reps N] [--pairs N] [--only SUBSTRING] [--synthetic] "
                            "[--trace DIR]...\n");
            return 2;
        }
    }
    if (reps < 1 || max_pairs < 1)
        die("--reps and --pairs must be positive");
    /* QEMU's constructor (init_accel) has asked the shim's cpuinfo_init by now. */
    if (fgbi_shim_cpuinfo_avx512bw < 0)
        die("QEMU's xbzrle.c did not run its CPU detection");
    const char *qd = fgbi_shim_cpuinfo_avx512bw ? "AVX512" : "dispatched (scalar)";

    static struct set sets[MAXSETS];
    static struct result res[MAXSETS];
    int ns = 0;
    if (synthetic) {
        static const int sizes[] = {16, 64, 256};
        for (int cl = 0; cl < 2; cl++)
            for (int k = 0; k < 3; k++)
                make_synthetic(&sets[ns++], max_pairs, sizes[k], cl);
    }
    for (int t = 0; t < ntraces; t++)
        load_trace(&sets[ns++], traces[t], max_pairs);
    if (only) { /* keep the sets whose name contains `only` */
        int kept = 0;
        for (int si = 0; si < ns; si++)
            if (strstr(sets[si].name, only))
                sets[kept++] = sets[si];
        ns = kept;
    }

    if (fgbi_shim_cpuinfo_avx512bw)
        printf("QEMU's xbzrle_encode_buffer dispatches to xbzrle_encode_buffer_avx512 (the CPU "
               "has AVX512BW)\n");
    else
        printf("This CPU has no AVX512BW: QEMU's xbzrle_encode_buffer dispatches to its scalar "
               "encoder, so its AVX512 encoder cannot be measured here; the dispatched column is "
               "the scalar encoder behind QEMU's function pointer.\n");
    printf("%d repetitions; ns per 4 KiB page (thread CPU time, per-chunk medians over the "
           "repetitions, summed)\n\n", reps);
    for (int si = 0; si < ns; si++) {
        struct set *s = &sets[si];
        struct result *r = &res[si];
        check_set(s, &r->c);
        /* t[regime][encoder][chunk][rep]: the per-chunk median over the repetitions, summed
         * over the chunks, so a chunk that another job disturbed in some repetitions does not
         * count. */
        size_t nch[2] = {(s->n + CHUNK - 1) / CHUNK, (s->n + BATCH - 1) / BATCH};
        size_t pages[2] = {s->n, s->n * INNER};
        double *t[2][NENC], *row = malloc((nch[0] > nch[1] ? nch[0] : nch[1]) * sizeof *row);
        for (int g = 0; g < 2; g++)
            for (int k = 0; k < NENC; k++)
                t[g][k] = malloc(nch[g] * reps * sizeof(double));
        for (int rep = 0; rep < reps; rep++)
            for (int j = 0; j < NENC; j++) {
                int k = (j + rep) % NENC;
                time_memory(ENC[k].f, s, row);
                for (size_t c = 0; c < nch[0]; c++)
                    t[0][k][c * reps + rep] = row[c];
                time_cache(ENC[k].f, s, row);
                for (size_t c = 0; c < nch[1]; c++)
                    t[1][k][c * reps + rep] = row[c];
            }
        for (int g = 0; g < 2; g++)
            for (int k = 0; k < NENC; k++) {
                double sum = 0;
                for (size_t c = 0; c < nch[g]; c++)
                    sum += median(t[g][k] + c * reps, reps);
                r->med[g][k] = sum / pages[g];
                free(t[g][k]);
            }
        free(row);
        fprintf(stderr, "driver: %-20s memory: fgbi %.0f, qemu-dispatched %.0f, qemu-scalar %.0f ns/page\n",
                s->name, r->med[0][0], r->med[0][1], r->med[0][2]);
    }

    static const char *regime[2] = {
        "memory (one pass over all pairs: 8192 pairs are 2 x 32 MiB, more than the L3)",
        "cache (32 pairs at a time, warm: from L2)"};
    for (int g = 0; g < 2; g++) {
        printf("### %s\n\n", regime[g]);
        printf("| pairs | n | fgbi | QEMU %s | QEMU scalar | %s / fgbi | scalar / fgbi "
               "| %s, inlined uleb128 / fgbi | scalar, inlined uleb128 / fgbi |\n",
               qd, qd, qd);
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int si = 0; si < ns; si++) {
            double *m = res[si].med[g];
            printf("| %s | %zu | %.0f | %.0f | %.0f | **%.2f** | %.2f | %.2f | %.2f |\n", sets[si].name,
                   sets[si].n, m[0], m[1], m[2], m[1] / m[0], m[2] / m[0], m[3] / m[0], m[4] / m[0]);
        }
        printf("\n");
    }
    printf("### output\n\n");
    printf("| pairs | n | fgbi bytes | QEMU bytes | fgbi / QEMU | fgbi = QEMU byte for byte | "
           "-1 fgbi | -1 QEMU | -1 fgbi only |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int si = 0; si < ns; si++) {
        struct check *c = &res[si].c;
        printf("| %s | %zu | %zu | %zu | %.3f | %zu | %zu | %zu | %zu |\n", sets[si].name,
               sets[si].n, c->bytes[0], c->bytes[1],
               c->bytes[1] ? (double)c->bytes[0] / c->bytes[1] : 1.0, c->fgbi_same_as_qemu,
               c->overflow[0], c->overflow[1], c->fgbi_only_overflow);
    }
    printf("\n(bytes: over the pairs every encoder fitted in 4096 bytes; every output was decoded "
           "by libfgbi's and QEMU's decoders to the new page; QEMU's four builds agreed byte for "
           "byte.)\n");
    return 0;
}
