/*
 * Tests of the libfgbi C API: every entry point's errors and the main round trips.
 * Prints one line per failed check and a final "N passed, M failed"; exits non-zero on failure.
 */
#include <libfgbi.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u

static int passed, failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            passed++;                                                                   \
        } else {                                                                        \
            failed++;                                                                   \
            printf("FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond,      \
                   fgbi_last_error_message());                                          \
        }                                                                               \
    } while (0)

#define CHECK_RC(call, want) CHECK((call) == (want))

/* ------------------------------------------------------------------ helpers */

typedef struct {
    fgbi_config *cfg;
    fgbi_encoder *enc;
    fgbi_decoder *dec;
} pair;

static void pair_new(pair *p) {
    memset(p, 0, sizeof *p);
    CHECK_RC(fgbi_config_new(&p->cfg), FGBI_OK);
    CHECK_RC(fgbi_encoder_new(p->cfg, &p->enc), FGBI_OK);
    CHECK_RC(fgbi_decoder_new(p->cfg, &p->dec), FGBI_OK);
}

static void pair_free(pair *p) {
    fgbi_encoder_free(p->enc);
    fgbi_decoder_free(p->dec);
    fgbi_config_free(p->cfg);
}

static uint8_t *memory(size_t pages, unsigned seed) {
    uint8_t *m = malloc(pages * PAGE);
    for (size_t i = 0; i < pages * PAGE; i++)
        m[i] = (uint8_t)((i / 7) * seed ^ (i >> 12));
    return m;
}

/* Encodes pages [0, n) of mem as epoch `epoch`; returns a malloc'd copy of the frame. */
static uint8_t *encode(pair *p, uint64_t epoch, const uint8_t *mem, size_t n, size_t *len) {
    const uint8_t *f = NULL;
    CHECK_RC(fgbi_encoder_begin_epoch(p->enc, epoch), FGBI_OK);
    for (size_t i = 0; i < n; i++)
        CHECK_RC(fgbi_encoder_add_page(p->enc, i * PAGE, mem + i * PAGE), FGBI_OK);
    CHECK_RC(fgbi_encoder_end_epoch(p->enc, &f, len), FGBI_OK);
    uint8_t *copy = malloc(*len);
    memcpy(copy, f, *len);
    return copy;
}

/* ------------------------------------------------------------------ tests */

static void test_version_and_strerror(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", FGBI_VERSION_MAJOR, FGBI_VERSION_MINOR,
             FGBI_VERSION_PATCH);
    CHECK(strcmp(fgbi_version(), want) == 0);
    const int codes[] = {FGBI_OK, FGBI_ERR_NULL, FGBI_ERR_INVALID_ARG, FGBI_ERR_CONFIG,
                         FGBI_ERR_STATE, FGBI_ERR_CORRUPT, FGBI_ERR_CHECKSUM, FGBI_ERR_EPOCH,
                         FGBI_ERR_OUT_OF_BOUNDS, FGBI_ERR_BUFFER_TOO_SMALL, FGBI_ERR_INTERNAL,
                         FGBI_ERR_NO_MEMORY, FGBI_ERR_TOO_LARGE};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = fgbi_strerror(codes[i]);
        CHECK(s != NULL && s[0] != '\0' && strcmp(s, "unknown fgbi status code") != 0);
    }
    CHECK(strcmp(fgbi_strerror(12345), "unknown fgbi status code") == 0);
    CHECK(FGBI_ERR_NULL < 0 && -FGBI_ERR_INTERNAL > 0); /* macros are parenthesised */
}

static void test_config(void) {
    fgbi_config *cfg = NULL;
    size_t v = 0;
    uint32_t bits = 0;
    CHECK_RC(fgbi_config_new(NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_page_size(NULL, 4096), FGBI_ERR_NULL);
    CHECK(strstr(fgbi_last_error_message(), "fgbi_config_set_page_size") != NULL);
    CHECK_RC(fgbi_config_set_block_size(NULL, 256), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_cache_bytes(NULL, 0), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_hash_bytes(NULL, 0), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_stages(NULL, 0), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_stage(NULL, FGBI_STAGE_ZERO, 1), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_get_stages(NULL, &bits), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_fallback(NULL, FGBI_CODEC_LZ4, 0), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_get_page_size(NULL, &v), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_get_block_size(NULL, &v), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_validate(NULL), FGBI_ERR_NULL);
    fgbi_config_free(NULL);

    CHECK_RC(fgbi_config_new(&cfg), FGBI_OK);
    CHECK_RC(fgbi_config_get_page_size(cfg, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_get_page_size(cfg, &v), FGBI_OK);
    CHECK(v == 4096);
    CHECK_RC(fgbi_config_get_block_size(cfg, &v), FGBI_OK);
    CHECK(v == 256);
    CHECK_RC(fgbi_config_get_stages(cfg, &bits), FGBI_OK);
    CHECK(bits == FGBI_STAGE_ALL);
    CHECK_RC(fgbi_config_set_page_size(cfg, 4000), FGBI_ERR_CONFIG);
    CHECK(strstr(fgbi_last_error_message(), "page size 4000") != NULL);
    CHECK_RC(fgbi_config_set_page_size(cfg, 256), FGBI_ERR_CONFIG);
    CHECK_RC(fgbi_config_set_page_size(cfg, 1u << 17), FGBI_ERR_CONFIG);
    CHECK_RC(fgbi_config_set_block_size(cfg, 32), FGBI_ERR_CONFIG);
    CHECK_RC(fgbi_config_set_block_size(cfg, 100), FGBI_ERR_CONFIG);
    CHECK_RC(fgbi_config_set_stages(cfg, 1u << 9), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_config_set_stage(cfg, 1u << 9, 1), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_config_set_fallback(cfg, 42, 0), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_config_set_fallback(cfg, FGBI_CODEC_DEFLATE, 10), FGBI_ERR_CONFIG);
    CHECK_RC(fgbi_config_set_fallback(cfg, FGBI_CODEC_DEFLATE, -1), FGBI_ERR_CONFIG);
    CHECK_RC(fgbi_config_set_fallback(cfg, FGBI_CODEC_DEFLATE, 1), FGBI_OK);
    CHECK_RC(fgbi_config_set_fallback(cfg, FGBI_CODEC_RAW, 0), FGBI_OK);
    CHECK_RC(fgbi_config_set_stage(cfg, FGBI_STAGE_SHARING | FGBI_STAGE_DICT, 0), FGBI_OK);
    CHECK_RC(fgbi_config_get_stages(cfg, &bits), FGBI_OK);
    CHECK(bits == (FGBI_STAGE_ZERO | FGBI_STAGE_BLOCKS | FGBI_STAGE_DELTA | FGBI_STAGE_ENTROPY
                   | FGBI_STAGE_RUNS));
    CHECK_RC(fgbi_config_set_link_rate(NULL, 1), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_link_rate(cfg, 1250000000u), FGBI_OK); /* 10 Gbit/s */
    CHECK_RC(fgbi_config_set_link_rate(cfg, 0), FGBI_OK);
    CHECK_RC(fgbi_config_set_cache_bytes(cfg, 0), FGBI_OK);
    CHECK_RC(fgbi_config_set_hash_bytes(cfg, 1u << 20), FGBI_OK);

    /* block larger than page: caught when the whole configuration is checked */
    CHECK_RC(fgbi_config_set_page_size(cfg, 512), FGBI_OK);
    CHECK_RC(fgbi_config_set_block_size(cfg, 1024), FGBI_OK);
    CHECK_RC(fgbi_config_validate(cfg), FGBI_ERR_CONFIG);
    fgbi_encoder *enc = (fgbi_encoder *)&v; /* garbage: must be cleared */
    fgbi_decoder *dec = (fgbi_decoder *)&v;
    CHECK_RC(fgbi_encoder_new(cfg, &enc), FGBI_ERR_CONFIG);
    CHECK(enc == NULL);
    CHECK_RC(fgbi_decoder_new(cfg, &dec), FGBI_ERR_CONFIG);
    CHECK(dec == NULL);
    CHECK_RC(fgbi_config_set_block_size(cfg, 512), FGBI_OK);
    CHECK_RC(fgbi_config_validate(cfg), FGBI_OK);
    CHECK_RC(fgbi_encoder_new(NULL, &enc), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_new(cfg, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_new(NULL, &dec), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_new(cfg, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_new(cfg, &enc), FGBI_OK);
    fgbi_config_free(cfg); /* the encoder keeps its own copy */
    uint8_t page[512] = {1};
    CHECK_RC(fgbi_encoder_begin_epoch(enc, 0), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page(enc, 512, page), FGBI_OK);
    fgbi_encoder_free(enc);
}

static void test_encoder_errors(void) {
    pair p;
    pair_new(&p);
    uint8_t *mem = memory(4, 3);
    const uint8_t *f = NULL;
    size_t n = 0;
    uint64_t id = 0;
    fgbi_encoder_counters st;

    CHECK_RC(fgbi_encoder_begin_epoch(NULL, 0), FGBI_ERR_NULL);
    CHECK(strncmp(fgbi_last_error_message(), "fgbi_encoder_begin_epoch: encoder is NULL",
                  41) == 0);
    CHECK_RC(fgbi_encoder_add_page(NULL, 0, mem), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_add_page_len(NULL, 0, mem, PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_add_pages(NULL, NULL, NULL, 0), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch(NULL, &f, &n), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch_into(NULL, NULL, 0, &n), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_resync(NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_set_stream_id(NULL, 1), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_stream_id(NULL, &id), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_stream_id(p.enc, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_stats(NULL, &st), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_stats(p.enc, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_epoch_stats(NULL, &st), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_epoch_stats(p.enc, NULL), FGBI_ERR_NULL);
    fgbi_encoder_free(NULL);

    /* order */
    CHECK_RC(fgbi_encoder_add_page(p.enc, 0, mem), FGBI_ERR_STATE);
    CHECK(strstr(fgbi_last_error_message(), "outside an epoch") != NULL);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_ERR_STATE);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 7), FGBI_OK);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 8), FGBI_ERR_STATE);

    /* arguments */
    CHECK_RC(fgbi_encoder_add_page(p.enc, 0, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_add_page(p.enc, 100, mem), FGBI_ERR_INVALID_ARG);
    CHECK(strstr(fgbi_last_error_message(), "not a multiple of the page size") != NULL);
    CHECK_RC(fgbi_encoder_add_page(p.enc, 1ull << 62, mem), FGBI_ERR_OUT_OF_BOUNDS);
    CHECK_RC(fgbi_encoder_add_page_len(p.enc, 0, mem, PAGE - 1), FGBI_ERR_INVALID_ARG);
    CHECK(strstr(fgbi_last_error_message(), "page of 4095 bytes") != NULL);
    CHECK_RC(fgbi_encoder_add_page_len(p.enc, 0, NULL, PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_add_page_len(p.enc, 0, NULL, 0), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_encoder_add_page_len(p.enc, 0, mem, PAGE), FGBI_OK);

    uint64_t addrs[3] = {PAGE, 2 * PAGE, 3 * PAGE + 1};
    const uint8_t *pages[3] = {mem + PAGE, mem + 2 * PAGE, NULL};
    CHECK_RC(fgbi_encoder_add_pages(p.enc, NULL, pages, 3), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_add_pages(p.enc, addrs, NULL, 3), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_add_pages(p.enc, addrs, pages, 3), FGBI_ERR_NULL);
    CHECK(strstr(fgbi_last_error_message(), "pages[2]") != NULL);
    pages[2] = mem + 3 * PAGE;
    CHECK_RC(fgbi_encoder_add_pages(p.enc, addrs, pages, 3), FGBI_ERR_INVALID_ARG);
    CHECK(strstr(fgbi_last_error_message(), "page 2") != NULL);
    CHECK_RC(fgbi_encoder_epoch_stats(p.enc, &st), FGBI_OK);
    CHECK(st.pages_in == 1); /* nothing of the refused array was added */
    addrs[2] = 3 * PAGE;
    CHECK_RC(fgbi_encoder_add_pages(p.enc, NULL, NULL, 0), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_pages(p.enc, addrs, pages, 3), FGBI_OK);
    CHECK_RC(fgbi_encoder_epoch_stats(p.enc, &st), FGBI_OK);
    CHECK(st.pages_in == 4 && st.bytes_in == 4 * PAGE);

    CHECK_RC(fgbi_encoder_end_epoch(p.enc, NULL, &n), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_OK); /* still open after the NULLs */
    CHECK(f != NULL && n > 48);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_ERR_STATE);

    /* numbering: after epoch 7 only 8 */
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 9), FGBI_ERR_EPOCH);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 7), FGBI_ERR_EPOCH);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 8), FGBI_OK);
    CHECK_RC(fgbi_encoder_set_stream_id(p.enc, 0xabc), FGBI_OK);
    CHECK_RC(fgbi_encoder_stream_id(p.enc, &id), FGBI_OK);
    CHECK(id == 0xabc);
    CHECK_RC(fgbi_encoder_stats(p.enc, &st), FGBI_OK);
    CHECK(st.epochs == 1 && st.resyncs == 1 && st.pages_in == 4 && st.bytes_out == n);
    free(mem);
    pair_free(&p);
}

static void test_round_trip_and_stats(void) {
    pair p;
    pair_new(&p);
    const size_t pages = 32;
    uint8_t *mem = memory(pages, 5);
    uint8_t *rep = calloc(pages, PAGE);
    int ok = 1;
    for (uint64_t e = 0; e < 5; e++) {
        if (e > 0)
            for (size_t i = 0; i < pages; i += e)
                mem[i * PAGE + 8 * e] ^= 0x5a; /* a few bytes of some pages */
        if (e == 3)
            memset(mem + 2 * PAGE, 0, PAGE);
        size_t n;
        uint8_t *f = encode(&p, e, mem, pages, &n);
        ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE) == FGBI_OK;
        ok &= memcmp(mem, rep, pages * PAGE) == 0;
        free(f);
    }
    CHECK(ok);
    fgbi_encoder_counters es;
    fgbi_decoder_counters ds;
    uint64_t stream = 0, epoch = 0, id = 1;
    CHECK_RC(fgbi_encoder_stats(p.enc, &es), FGBI_OK);
    CHECK_RC(fgbi_decoder_stats(p.dec, &ds), FGBI_OK);
    CHECK(es.epochs == 5 && es.pages_in == 5 * pages && es.bytes_in == 5 * pages * PAGE);
    CHECK(es.unchanged_pages > 0);
    CHECK(es.delta_pages + es.block_pages + es.dict_pages > 0);
    CHECK(es.cache_hits > 0 && es.memory_bytes > 0);
    CHECK(ds.frames == 5 && ds.rejected == 0 && ds.bytes_in == es.bytes_out);
    CHECK(es.bytes_out < es.bytes_in / 4);
    /* the first, full frame is entropy coded; the counters say so and what it saved */
    CHECK(es.entropy_frames >= 1 && es.entropy_frames <= es.epochs && es.entropy_saved > 0);
    CHECK_RC(fgbi_decoder_position(p.dec, &stream, &epoch), FGBI_OK);
    CHECK_RC(fgbi_encoder_stream_id(p.enc, &id), FGBI_OK);
    CHECK(stream == id && epoch == 4);
    CHECK_RC(fgbi_decoder_position(p.dec, NULL, &epoch), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_stats(NULL, &ds), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_stats(p.dec, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_reset(p.dec), FGBI_OK);
    CHECK_RC(fgbi_decoder_position(p.dec, &stream, &epoch), FGBI_ERR_STATE);
    free(mem);
    free(rep);
    pair_free(&p);
}

static void test_corrupt_frames_leave_memory_unchanged(void) {
    pair p;
    pair_new(&p);
    const size_t pages = 8;
    uint8_t *mem = memory(pages, 7);
    uint8_t *rep = malloc(pages * PAGE);
    uint8_t *snap = malloc(pages * PAGE);
    memset(rep, 0xcc, pages * PAGE);
    memcpy(snap, rep, pages * PAGE);
    size_t n;
    uint8_t *f = encode(&p, 0, mem, pages, &n);
    uint8_t *bad = malloc(n + 1);

    CHECK_RC(fgbi_decoder_apply_flat(NULL, f, n, rep, pages * PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, NULL, n, rep, pages * PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, n, NULL, pages * PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, NULL, 0, rep, pages * PAGE), FGBI_ERR_CORRUPT);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, n - 1, rep, pages * PAGE), FGBI_ERR_CORRUPT);
    CHECK(strstr(fgbi_last_error_message(), "truncated") != NULL);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, 10, rep, pages * PAGE), FGBI_ERR_CORRUPT);
    memcpy(bad, f, n);
    bad[n] = 0;
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, bad, n + 1, rep, pages * PAGE), FGBI_ERR_CORRUPT);
    bad[0] = 'X';
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, bad, n, rep, pages * PAGE), FGBI_ERR_CORRUPT);
    CHECK(strstr(fgbi_last_error_message(), "magic") != NULL);
    int all_checksum = 1;
    for (size_t i = 8; i < n; i += n / 37 + 1) { /* a flipped bit anywhere after the magic */
        memcpy(bad, f, n);
        bad[i] ^= 0x04;
        int rc = fgbi_decoder_apply_flat(p.dec, bad, n, rep, pages * PAGE);
        all_checksum &= rc == FGBI_ERR_CHECKSUM || rc == FGBI_ERR_CORRUPT;
    }
    CHECK(all_checksum);
    memcpy(bad, f, n);
    bad[n - 20] ^= 1;
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, bad, n, rep, pages * PAGE), FGBI_ERR_CHECKSUM);
    CHECK(strstr(fgbi_last_error_message(), "checksum mismatch") != NULL);
    /* memory one page short: the frame touches past mem_len */
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, n, rep, (pages - 1) * PAGE),
             FGBI_ERR_OUT_OF_BOUNDS);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE - 1),
             FGBI_ERR_OUT_OF_BOUNDS);
    /* frame inside the memory it would write */
    memcpy(rep, f, n);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, rep, n, rep, pages * PAGE), FGBI_ERR_INVALID_ARG);
    memcpy(rep, snap, pages * PAGE);
    CHECK(memcmp(rep, snap, pages * PAGE) == 0);

    /* another configuration */
    fgbi_config *cfg2;
    fgbi_decoder *dec2;
    CHECK_RC(fgbi_config_new(&cfg2), FGBI_OK);
    CHECK_RC(fgbi_config_set_block_size(cfg2, 512), FGBI_OK);
    CHECK_RC(fgbi_decoder_new(cfg2, &dec2), FGBI_OK);
    CHECK_RC(fgbi_decoder_apply_flat(dec2, f, n, rep, pages * PAGE), FGBI_ERR_CONFIG);
    fgbi_decoder_free(dec2);
    fgbi_config_free(cfg2);

    fgbi_decoder_counters ds;
    CHECK_RC(fgbi_decoder_stats(p.dec, &ds), FGBI_OK);
    CHECK(ds.frames == 0 && ds.rejected >= 10);
    CHECK(memcmp(rep, snap, pages * PAGE) == 0);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE), FGBI_OK);
    CHECK(memcmp(rep, mem, pages * PAGE) == 0);
    free(f);
    free(bad);
    free(mem);
    free(rep);
    free(snap);
    pair_free(&p);
}

static void test_epochs_and_resync(void) {
    pair p;
    pair_new(&p);
    const size_t pages = 4;
    uint8_t *mem = memory(pages, 9);
    uint8_t *rep = calloc(pages, PAGE);
    uint8_t *snap = malloc(pages * PAGE);
    size_t n0, n1, n2, n3;
    uint8_t *f0 = encode(&p, 0, mem, pages, &n0);
    mem[10] ^= 1;
    uint8_t *f1 = encode(&p, 1, mem, 1, &n1);
    mem[PAGE + 10] ^= 1;
    uint8_t *f2 = encode(&p, 2, mem, 2, &n2);

    /* not synchronised: the first frame must be a resync frame */
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f1, n1, rep, pages * PAGE), FGBI_ERR_EPOCH);
    CHECK(strstr(fgbi_last_error_message(), "not synchronised") != NULL);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f0, n0, rep, pages * PAGE), FGBI_OK);
    memcpy(snap, rep, pages * PAGE);
    /* gap: epoch 1 lost */
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f2, n2, rep, pages * PAGE), FGBI_ERR_EPOCH);
    CHECK(strstr(fgbi_last_error_message(), "gap") != NULL);
    CHECK(memcmp(rep, snap, pages * PAGE) == 0);
    /* replay */
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f0, n0, rep, pages * PAGE), FGBI_ERR_EPOCH);
    CHECK(strstr(fgbi_last_error_message(), "already applied") != NULL);
    CHECK(memcmp(rep, snap, pages * PAGE) == 0);
    /* in order again */
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f1, n1, rep, pages * PAGE), FGBI_OK);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f2, n2, rep, pages * PAGE), FGBI_OK);
    CHECK(memcmp(rep, mem, pages * PAGE) == 0);

    /* a lost frame repaired by resync: epoch 3 is lost, the encoder resyncs */
    mem[2 * PAGE] ^= 1;
    free(encode(&p, 3, mem, 3, &n3));
    CHECK_RC(fgbi_encoder_resync(p.enc), FGBI_OK);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 3), FGBI_ERR_EPOCH); /* must be above the last */
    uint8_t *f10 = encode(&p, 10, mem, pages, &n3);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f10, n3, rep, pages * PAGE), FGBI_OK);
    CHECK(memcmp(rep, mem, pages * PAGE) == 0);

    /* resync drops an open epoch */
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 11), FGBI_OK);
    CHECK_RC(fgbi_encoder_resync(p.enc), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page(p.enc, 0, mem), FGBI_ERR_STATE);

    /* a new primary: the decoder refuses its stream until reset */
    pair q;
    pair_new(&q);
    size_t nq;
    uint8_t *fq = encode(&q, 0, mem, pages, &nq);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, fq, nq, rep, pages * PAGE), FGBI_ERR_EPOCH);
    CHECK(strstr(fgbi_last_error_message(), "stream") != NULL);
    CHECK_RC(fgbi_decoder_reset(NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_reset(p.dec), FGBI_OK);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, fq, nq, rep, pages * PAGE), FGBI_OK);
    pair_free(&q);
    free(fq);
    free(f0);
    free(f1);
    free(f2);
    free(f10);
    free(mem);
    free(rep);
    free(snap);
    pair_free(&p);
}

static void test_end_epoch_into(void) {
    pair p;
    pair_new(&p);
    const size_t pages = 6;
    uint8_t *mem = memory(pages, 11);
    uint8_t *rep = calloc(pages, PAGE);
    size_t need = 0, len = 0;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
    for (size_t i = 0; i < pages; i++)
        CHECK_RC(fgbi_encoder_add_page(p.enc, i * PAGE, mem + i * PAGE), FGBI_OK);
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, NULL, 0, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, NULL, 100, &need), FGBI_ERR_NULL);
    /* size query */
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, NULL, 0, &need), FGBI_ERR_BUFFER_TOO_SMALL);
    CHECK(need > 48);
    CHECK(strstr(fgbi_last_error_message(), "frame is kept") != NULL);
    uint8_t *buf = malloc(need);
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, buf, need - 1, &len), FGBI_ERR_BUFFER_TOO_SMALL);
    CHECK(len == need);
    /* the frame waits: no new epoch until it is fetched */
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_ERR_STATE);
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, buf, need, &len), FGBI_OK);
    CHECK(len == need);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, buf, len, rep, pages * PAGE), FGBI_OK);
    CHECK(memcmp(mem, rep, pages * PAGE) == 0);
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, buf, need, &len), FGBI_ERR_STATE);

    /* fetched with end_epoch after a too-small answer */
    mem[3] ^= 0xff;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page(p.enc, 0, mem), FGBI_OK);
    uint8_t tiny[4];
    CHECK_RC(fgbi_encoder_end_epoch_into(p.enc, tiny, sizeof tiny, &len),
             FGBI_ERR_BUFFER_TOO_SMALL);
    const uint8_t *f;
    size_t n;
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_OK);
    CHECK(n == len);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE), FGBI_OK);
    CHECK(memcmp(mem, rep, pages * PAGE) == 0);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 2), FGBI_OK);
    free(buf);
    free(mem);
    free(rep);
    pair_free(&p);
}

/* two RAM blocks for the callback */
typedef struct {
    uint8_t *low, *high;
    size_t low_pages, high_pages;
    int calls;
} blocks;

#define HIGH_BASE (1ull << 32)

static uint8_t *page_at(void *opaque, uint64_t addr) {
    blocks *b = opaque;
    b->calls++;
    if (addr < b->low_pages * PAGE)
        return b->low + addr;
    if (addr >= HIGH_BASE && addr - HIGH_BASE < b->high_pages * PAGE)
        return b->high + (addr - HIGH_BASE);
    return NULL;
}

static void test_apply_cb(void) {
    pair p;
    pair_new(&p);
    blocks src = {memory(3, 13), memory(2, 17), 3, 2, 0};
    blocks dst = {calloc(3, PAGE), calloc(2, PAGE), 3, 2, 0};
    const uint8_t *f;
    size_t n;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
    for (size_t i = 0; i < 3; i++)
        CHECK_RC(fgbi_encoder_add_page(p.enc, i * PAGE, src.low + i * PAGE), FGBI_OK);
    for (size_t i = 0; i < 2; i++)
        CHECK_RC(fgbi_encoder_add_page(p.enc, HIGH_BASE + i * PAGE, src.high + i * PAGE),
                 FGBI_OK);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_OK);
    CHECK_RC(fgbi_decoder_apply_cb(NULL, f, n, page_at, &dst), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_apply_cb(p.dec, f, n, NULL, &dst), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_apply_cb(p.dec, NULL, n, page_at, &dst), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decoder_apply_cb(p.dec, f, n, page_at, &dst), FGBI_OK);
    CHECK(dst.calls >= 5);
    CHECK(memcmp(src.low, dst.low, 3 * PAGE) == 0 && memcmp(src.high, dst.high, 2 * PAGE) == 0);

    /* a page the replica lacks: rejected before anything is written */
    src.low[5] ^= 1;
    src.high[5] ^= 1;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page(p.enc, 0, src.low), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page(p.enc, HIGH_BASE, src.high), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page(p.enc, HIGH_BASE + 8 * PAGE, src.high), FGBI_OK);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_OK);
    uint8_t before_low[PAGE], before_high[PAGE];
    memcpy(before_low, dst.low, PAGE);
    memcpy(before_high, dst.high, PAGE);
    CHECK_RC(fgbi_decoder_apply_cb(p.dec, f, n, page_at, &dst), FGBI_ERR_OUT_OF_BOUNDS);
    CHECK(strstr(fgbi_last_error_message(), "outside the replica") != NULL);
    CHECK(memcmp(before_low, dst.low, PAGE) == 0 && memcmp(before_high, dst.high, PAGE) == 0);
    free(src.low);
    free(src.high);
    free(dst.low);
    free(dst.high);
    pair_free(&p);
}

static void test_stages(void) {
    uint8_t *old = memory(1, 3);
    uint8_t *new_page = malloc(PAGE);
    memcpy(new_page, old, PAGE);
    memset(new_page + 100, 0xee, 16);
    new_page[3000] ^= 1;
    size_t cap = fgbi_delta_max_len(PAGE), n = 0, need = 0;
    CHECK(cap >= PAGE);
    uint8_t *d = malloc(cap);

    /* block hashes */
    uint64_t h[16], h2[16];
    CHECK_RC(fgbi_block_hashes(NULL, PAGE, 256, 0, h, 16), FGBI_ERR_NULL);
    CHECK_RC(fgbi_block_hashes(old, PAGE, 256, 0, NULL, 16), FGBI_ERR_NULL);
    CHECK_RC(fgbi_block_hashes(old, PAGE, 0, 0, h, 16), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_block_hashes(old, PAGE - 1, 256, 0, h, 16), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_block_hashes(old, PAGE, 256, 0, h, 15), FGBI_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(fgbi_block_hashes(old, PAGE, 256, 0, h, 16), FGBI_OK);
    CHECK_RC(fgbi_block_hashes(new_page, PAGE, 256, 0, h2, 16), FGBI_OK);
    CHECK(h[0] != h2[0] && h[1] == h2[1] && h[11] != h2[11] && h[15] == h2[15]);
    CHECK_RC(fgbi_block_hashes(NULL, 0, 256, 0, NULL, 0), FGBI_OK);

    /* delta */
    CHECK_RC(fgbi_delta_encode(NULL, new_page, PAGE, d, cap, &n), FGBI_ERR_NULL);
    CHECK_RC(fgbi_delta_encode(old, new_page, PAGE, d, cap, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_delta_encode(old, new_page, PAGE, d, 3, &need), FGBI_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(fgbi_delta_encode(old, new_page, PAGE, d, cap, &n), FGBI_OK);
    CHECK(n == need && n < 64);
    CHECK_RC(fgbi_delta_encode(old, old, PAGE, d + 100, cap - 100, &need), FGBI_OK);
    CHECK(need == 0);
    CHECK_RC(fgbi_delta_encode(old, new_page, PAGE, old, PAGE, &need), FGBI_ERR_INVALID_ARG);
    uint8_t *page = malloc(PAGE);
    memcpy(page, old, PAGE);
    CHECK_RC(fgbi_delta_decode(d, n, NULL, PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_delta_decode(d, n - 1, page, PAGE), FGBI_ERR_CORRUPT);
    CHECK(memcmp(page, old, PAGE) == 0);
    CHECK_RC(fgbi_delta_decode(d, n, page, 2000), FGBI_ERR_CORRUPT); /* run past the page */
    CHECK(memcmp(page, old, PAGE) == 0);
    CHECK_RC(fgbi_delta_decode(d, n, page, PAGE), FGBI_OK);
    CHECK(memcmp(page, new_page, PAGE) == 0);
    /* the worst case fits fgbi_delta_max_len */
    for (size_t i = 0; i < PAGE; i += 2)
        new_page[i] = (uint8_t)~old[i];
    CHECK_RC(fgbi_delta_encode(old, new_page, PAGE, d, cap, &n), FGBI_OK);

    /* compression */
    const int codecs[3] = {FGBI_CODEC_LZ4, FGBI_CODEC_DEFLATE, FGBI_CODEC_RAW};
    for (int c = 0; c < 3; c++) {
        size_t bound = fgbi_compress_bound(codecs[c], PAGE);
        uint8_t *z = malloc(bound);
        CHECK_RC(fgbi_compress(codecs[c], 1, old, PAGE, z, 10, &need), FGBI_ERR_BUFFER_TOO_SMALL);
        CHECK_RC(fgbi_compress(codecs[c], 1, old, PAGE, z, bound, &n), FGBI_OK);
        CHECK(n == need && n <= bound);
        CHECK_RC(fgbi_decompress(codecs[c], z, n, page, PAGE), FGBI_OK);
        CHECK(memcmp(page, old, PAGE) == 0);
        CHECK_RC(fgbi_decompress(codecs[c], z, n, page, PAGE - 1), FGBI_ERR_CORRUPT);
        CHECK_RC(fgbi_decompress(codecs[c], z, n, NULL, PAGE), FGBI_ERR_NULL);
        free(z);
    }
    CHECK(fgbi_compress_bound(99, PAGE) == 0);
    CHECK_RC(fgbi_compress(99, 0, old, PAGE, d, cap, &n), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_compress(FGBI_CODEC_DEFLATE, 11, old, PAGE, d, cap, &n), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_compress(FGBI_CODEC_LZ4, 0, NULL, PAGE, d, cap, &n), FGBI_ERR_NULL);
    CHECK_RC(fgbi_compress(FGBI_CODEC_LZ4, 0, old, PAGE, d, cap, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_decompress(99, d, 10, page, PAGE), FGBI_ERR_INVALID_ARG);
    memset(d, 0xff, 64);
    CHECK_RC(fgbi_decompress(FGBI_CODEC_LZ4, d, 64, page, PAGE), FGBI_ERR_CORRUPT);
    CHECK_RC(fgbi_decompress(FGBI_CODEC_DEFLATE, d, 64, page, PAGE), FGBI_ERR_CORRUPT);
    free(old);
    free(new_page);
    free(page);
    free(d);
}

/* Separate encoders and decoders run in parallel; the last error is per thread. */
typedef struct {
    unsigned seed;
    int ok;
    char err[128];
} worker;

static void *work(void *arg) {
    worker *w = arg;
    pair p;
    memset(&p, 0, sizeof p);
    int ok = fgbi_config_new(&p.cfg) == FGBI_OK && fgbi_encoder_new(p.cfg, &p.enc) == FGBI_OK &&
             fgbi_decoder_new(p.cfg, &p.dec) == FGBI_OK;
    uint8_t *mem = memory(16, w->seed);
    uint8_t *rep = calloc(16, PAGE);
    for (uint64_t e = 0; ok && e < 20; e++) {
        const uint8_t *f;
        size_t n;
        mem[(e % 16) * PAGE + e] ^= (uint8_t)w->seed;
        ok &= fgbi_encoder_begin_epoch(p.enc, e) == FGBI_OK;
        for (size_t i = 0; i < 16; i++)
            ok &= fgbi_encoder_add_page(p.enc, i * PAGE, mem + i * PAGE) == FGBI_OK;
        ok &= fgbi_encoder_end_epoch(p.enc, &f, &n) == FGBI_OK;
        ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, 16 * PAGE) == FGBI_OK;
        ok &= memcmp(mem, rep, 16 * PAGE) == 0;
    }
    fgbi_encoder_begin_epoch(NULL, w->seed);
    snprintf(w->err, sizeof w->err, "%s", fgbi_last_error_message());
    w->ok = ok;
    free(mem);
    free(rep);
    pair_free(&p);
    return NULL;
}

static void test_threads(void) {
    worker w[2] = {{3, 0, ""}, {5, 0, ""}};
    pthread_t t[2];
    fgbi_config_set_page_size(NULL, 1); /* this thread's last error */
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].ok);
        CHECK(strstr(w[i].err, "fgbi_encoder_begin_epoch") != NULL);
    }
    CHECK(strstr(fgbi_last_error_message(), "fgbi_config_set_page_size") != NULL);
}

/* QEMU's XBZRLE calling convention: encoded length, 0 when identical, -1 on overflow or bad
 * input; the decoder returns the offset past the last run or -1. */
static void test_xbzrle(void) {
    static uint8_t old[PAGE], new_[PAGE], dst[PAGE + 64], back[PAGE];
    for (unsigned i = 0; i < PAGE; i++) old[i] = new_[i] = (uint8_t)(i * 7);
    CHECK_RC(fgbi_xbzrle_encode(old, new_, PAGE, dst, PAGE), 0);

    /* the worked example: 1001 same, 15 changed, 3 same, 1 changed, 1 same, 1 changed */
    for (unsigned i = 1001; i < 1016; i++) new_[i] ^= 0xff;
    new_[1019] ^= 0xff;
    new_[1021] ^= 0xff;
    int n = fgbi_xbzrle_encode(old, new_, PAGE, dst, PAGE);
    CHECK(n > 0 && n <= 24);
    CHECK(dst[0] == 0xe9 && dst[1] == 0x07); /* zrun 1001 */
    memcpy(back, old, PAGE);
    CHECK_RC(fgbi_xbzrle_decode(dst, n, back, PAGE), 1022);
    CHECK(memcmp(back, new_, PAGE) == 0);

    /* every other byte changed does not fit in a page: -1, and nothing past dlen is written */
    for (unsigned i = 0; i < PAGE; i += 2) new_[i] = (uint8_t)~old[i];
    memset(dst, 0xa5, sizeof dst);
    CHECK_RC(fgbi_xbzrle_encode(old, new_, PAGE, dst, PAGE), -1);
    int guard_ok = 1;
    for (unsigned i = PAGE; i < sizeof dst; i++) guard_ok &= dst[i] == 0xa5;
    CHECK(guard_ok);

    /* malformed input: zero-length run, a run past the page, input ending inside a run */
    uint8_t zero_run[] = {0x05, 0x00};
    uint8_t past[] = {0xff, 0x3f, 0x02, 1, 2}; /* zrun 8191 on a 4 KiB page */
    uint8_t cut[] = {0x00, 0x04, 1, 2};
    memcpy(back, old, PAGE);
    CHECK_RC(fgbi_xbzrle_decode(zero_run, sizeof zero_run, back, PAGE), -1);
    CHECK_RC(fgbi_xbzrle_decode(past, sizeof past, back, PAGE), -1);
    CHECK_RC(fgbi_xbzrle_decode(cut, sizeof cut, back, PAGE), -1);
    CHECK(memcmp(back, old, PAGE) == 0);

    /* bad arguments are -1 with a message, never a crash */
    CHECK_RC(fgbi_xbzrle_encode(NULL, new_, PAGE, dst, PAGE), -1);
    CHECK(strstr(fgbi_last_error_message(), "fgbi_xbzrle_encode") != NULL);
    CHECK_RC(fgbi_xbzrle_encode(old, new_, -1, dst, PAGE), -1);
    CHECK_RC(fgbi_xbzrle_encode(old, new_, 16385, dst, PAGE), -1);
    CHECK_RC(fgbi_xbzrle_decode(NULL, 4, back, PAGE), -1);
    CHECK_RC(fgbi_xbzrle_decode(cut, sizeof cut, NULL, PAGE), -1);
}

/* Epochs sent in parts: each part taken after the page that closed it is applied at once; while a
 * part waits, add_page and end_epoch fail without losing it; add_pages is refused; the parts and
 * the last frame rebuild the memory. */
static void test_parts(void) {
    pair p;
    memset(&p, 0, sizeof p);
    CHECK_RC(fgbi_config_new(&p.cfg), FGBI_OK);
    CHECK_RC(fgbi_config_set_frame_bytes(p.cfg, 8192), FGBI_OK);
    CHECK_RC(fgbi_config_set_frame_bytes(NULL, 8192), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_new(p.cfg, &p.enc), FGBI_OK);
    CHECK_RC(fgbi_decoder_new(p.cfg, &p.dec), FGBI_OK);
    const size_t pages = 24;
    uint8_t *mem = malloc(pages * PAGE);
    uint32_t x = 12345;
    for (size_t i = 0; i < pages * PAGE; i++) {
        x = x * 1103515245u + 12345u; /* noise: every page is sent raw */
        mem[i] = (uint8_t)(x >> 16);
    }
    uint8_t *rep = calloc(pages, PAGE);
    const uint8_t *f = NULL;
    size_t n = 0;
    int parts = 0, ok = 1;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
    uint64_t addr = 0;
    const uint8_t *pg = mem;
    CHECK_RC(fgbi_encoder_add_pages(p.enc, &addr, &pg, 1), FGBI_ERR_STATE);
    for (size_t i = 0; i < pages; i++) {
        CHECK_RC(fgbi_encoder_add_page(p.enc, i * PAGE, mem + i * PAGE), FGBI_OK);
        if (i == 1) {
            /* two raw pages reach 8192 bytes: a part waits, nothing else until it is taken */
            const uint8_t *g = NULL;
            size_t m = 0;
            CHECK_RC(fgbi_encoder_end_epoch(p.enc, &g, &m), FGBI_ERR_STATE);
            CHECK_RC(fgbi_encoder_add_page(p.enc, 2 * PAGE, mem + 2 * PAGE), FGBI_ERR_STATE);
        }
        CHECK_RC(fgbi_encoder_take_frame(p.enc, &f, &n), FGBI_OK);
        if (f == NULL) {
            ok &= n == 0;
            continue;
        }
        parts++;
        ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE) == FGBI_OK;
    }
    CHECK_RC(fgbi_encoder_take_frame(p.enc, NULL, &n), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_OK);
    ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE) == FGBI_OK;
    CHECK(ok);
    CHECK(parts >= 8);
    CHECK(memcmp(mem, rep, pages * PAGE) == 0);
    fgbi_encoder_counters es;
    CHECK_RC(fgbi_encoder_stats(p.enc, &es), FGBI_OK);
    CHECK(es.frames == (uint64_t)parts + 1 && es.epochs == 1);
    free(mem);
    free(rep);
    pair_free(&p);
}

/* Gathers a frame handed out as parts into buf; returns its length. */
static size_t gather_parts(const fgbi_frame_part *parts, size_t count, uint8_t *buf) {
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(buf + n, parts[i].data, parts[i].len);
        n += parts[i].len;
    }
    return n;
}

/* Pages added in place: a page sent raw is a piece of the caller's memory in the frame handed out
 * as parts, the parts gathered are a frame the backup applies, and the same frames taken whole
 * (take_frame, end_epoch copy the pages in) apply as well. NULLs and a missing epoch are refused. */
static void test_in_place(void) {
    pair p;
    memset(&p, 0, sizeof p);
    CHECK_RC(fgbi_config_new(&p.cfg), FGBI_OK);
    CHECK_RC(fgbi_config_set_link_rate(p.cfg, 12500000000ull), FGBI_OK); /* 100 Gbit/s */
    CHECK_RC(fgbi_config_set_frame_bytes(p.cfg, 16 * PAGE), FGBI_OK);
    CHECK_RC(fgbi_encoder_new(p.cfg, &p.enc), FGBI_OK);
    CHECK_RC(fgbi_decoder_new(p.cfg, &p.dec), FGBI_OK);
    const size_t pages = 64;
    uint8_t *mem = malloc(pages * PAGE);
    uint32_t x = 777;
    for (size_t i = 0; i < pages * PAGE; i++) {
        x = x * 1103515245u + 12345u;
        /* noise (sent raw), but every fourth page zero */
        mem[i] = (i / PAGE) % 4 == 3 ? 0 : (uint8_t)(x >> 16);
    }
    uint8_t *rep = calloc(pages, PAGE);
    uint8_t *buf = malloc(2 * pages * PAGE);
    const fgbi_frame_part *parts = NULL;
    size_t count = 0, n = 0;
    int ok = 1, in_mem = 0, frames = 0;

    CHECK_RC(fgbi_encoder_add_page_in_place(NULL, 0, mem), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_end_epoch_parts(p.enc, &parts, &count), FGBI_ERR_STATE);
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
    CHECK_RC(fgbi_encoder_add_page_in_place(p.enc, 0, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_take_frame_parts(p.enc, NULL, &count), FGBI_ERR_NULL);
    for (size_t i = 0; i < pages; i++) {
        ok &= fgbi_encoder_add_page_in_place(p.enc, i * PAGE, mem + i * PAGE) == FGBI_OK;
        ok &= fgbi_encoder_take_frame_parts(p.enc, &parts, &count) == FGBI_OK;
        if (count == 0) {
            ok &= parts == NULL;
            continue;
        }
        for (size_t k = 0; k < count; k++) {
            ok &= parts[k].len > 0;
            in_mem += parts[k].data >= mem && parts[k].data < mem + pages * PAGE;
        }
        n = gather_parts(parts, count, buf);
        ok &= fgbi_decoder_apply_flat(p.dec, buf, n, rep, pages * PAGE) == FGBI_OK;
        frames++;
    }
    CHECK_RC(fgbi_encoder_end_epoch_parts(p.enc, &parts, &count), FGBI_OK);
    for (size_t k = 0; k < count; k++) {
        in_mem += parts[k].data >= mem && parts[k].data < mem + pages * PAGE;
    }
    n = gather_parts(parts, count, buf);
    ok &= fgbi_decoder_apply_flat(p.dec, buf, n, rep, pages * PAGE) == FGBI_OK;
    CHECK(ok);
    CHECK(frames >= 2);
    CHECK(in_mem == 48); /* the noise pages, each where the caller holds it */
    CHECK(memcmp(mem, rep, pages * PAGE) == 0);

    /* the next epoch's frames taken whole: the pages are copied in */
    for (size_t i = 0; i < pages * PAGE; i += 97) {
        mem[i] ^= 0x5a;
    }
    const uint8_t *f = NULL;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 1), FGBI_OK);
    for (size_t i = 0; i < pages; i++) {
        ok &= fgbi_encoder_add_page_in_place(p.enc, i * PAGE, mem + i * PAGE) == FGBI_OK;
        ok &= fgbi_encoder_take_frame(p.enc, &f, &n) == FGBI_OK;
        if (f != NULL) {
            ok &= !(f >= mem && f < mem + pages * PAGE);
            ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE) == FGBI_OK;
        }
    }
    CHECK_RC(fgbi_encoder_end_epoch(p.enc, &f, &n), FGBI_OK);
    ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, pages * PAGE) == FGBI_OK;
    CHECK(ok);
    CHECK(memcmp(mem, rep, pages * PAGE) == 0);
    free(mem);
    free(rep);
    free(buf);
    pair_free(&p);
}

/* Two channels split from one configuration, each page always on the channel fgbi_channel_of
 * names, and zero pages sent by another path (memset on the backup, fgbi_encoder_note_zero on the
 * primary): after every epoch the replica equals the memory. Notes refuse NULL handles, ragged
 * ranges and a frame with ops open. */
static void test_channels_and_notes(void) {
    enum { N = 2, PAGES = 2048 }; /* 8 MiB: four 2 MiB chunks, two per channel */
    fgbi_config *cfg = NULL;
    CHECK_RC(fgbi_config_new(&cfg), FGBI_OK);
    CHECK_RC(fgbi_config_split(NULL, N), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_split(cfg, N), FGBI_OK);
    CHECK(fgbi_channel_of(0, N) == 0 && fgbi_channel_of(2u << 20, N) == 1);
    CHECK(fgbi_channel_of(4u << 20, N) == 0 && fgbi_channel_of(12345, 0) == 0);
    fgbi_encoder *enc[N] = {0};
    fgbi_decoder *dec[N] = {0};
    for (int c = 0; c < N; c++) {
        CHECK_RC(fgbi_encoder_new(cfg, &enc[c]), FGBI_OK);
        CHECK_RC(fgbi_encoder_set_stream_id(enc[c], 100 + c), FGBI_OK);
        CHECK_RC(fgbi_decoder_new(cfg, &dec[c]), FGBI_OK);
    }
    uint8_t *mem = memory(PAGES, 5);
    uint8_t *rep = calloc(PAGES, PAGE);
    int ok = 1;
    for (uint64_t e = 0; e < 4; e++) {
        int dirty[PAGES];
        for (size_t i = 0; i < PAGES; i++) {
            dirty[i] = e == 0 || i % 7 == e;
            if (e > 0 && i % 11 == e) {
                /* zeroed, and sent as zero by another path */
                memset(mem + i * PAGE, 0, PAGE);
                memset(rep + i * PAGE, 0, PAGE);
                int c = (int)fgbi_channel_of(i * PAGE, N);
                ok &= fgbi_encoder_note_zero(enc[c], i * PAGE, PAGE) == FGBI_OK;
                dirty[i] = 0;
            } else if (dirty[i]) {
                mem[i * PAGE + (e * 97) % PAGE] ^= (uint8_t)(e + 1);
            }
        }
        for (int c = 0; c < N; c++) {
            const uint8_t *f = NULL;
            size_t n = 0;
            ok &= fgbi_encoder_begin_epoch(enc[c], e) == FGBI_OK;
            for (size_t i = 0; i < PAGES; i++)
                if (dirty[i] && fgbi_channel_of(i * PAGE, N) == (uint32_t)c)
                    ok &= fgbi_encoder_add_page(enc[c], i * PAGE, mem + i * PAGE) == FGBI_OK;
            if (e == 1 && c == 0) {
                /* ops in the open frame: a note must wait */
                CHECK_RC(fgbi_encoder_note_zero(enc[c], 0, PAGE), FGBI_ERR_STATE);
            }
            ok &= fgbi_encoder_end_epoch(enc[c], &f, &n) == FGBI_OK;
            ok &= fgbi_decoder_apply_flat(dec[c], f, n, rep, (size_t)PAGES * PAGE) == FGBI_OK;
        }
        ok &= memcmp(mem, rep, (size_t)PAGES * PAGE) == 0;
    }
    CHECK(ok);
    /* a frame of channel 0 is refused by channel 1's decoder (another stream) */
    const uint8_t *f = NULL;
    size_t n = 0;
    CHECK_RC(fgbi_encoder_begin_epoch(enc[0], 4), FGBI_OK);
    CHECK_RC(fgbi_encoder_end_epoch(enc[0], &f, &n), FGBI_OK);
    CHECK_RC(fgbi_decoder_apply_flat(dec[1], f, n, rep, (size_t)PAGES * PAGE), FGBI_ERR_EPOCH);
    CHECK_RC(fgbi_encoder_note_zero(NULL, 0, PAGE), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_forget(enc[0], 0, 100), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_encoder_forget(enc[0], 100, PAGE), FGBI_ERR_INVALID_ARG);
    CHECK_RC(fgbi_encoder_forget(enc[0], 0, PAGE), FGBI_OK);
    CHECK_RC(fgbi_encoder_note_page(enc[0], 0, NULL), FGBI_ERR_NULL);
    CHECK_RC(fgbi_encoder_note_page(enc[0], 0, mem), FGBI_OK);
    for (int c = 0; c < N; c++) {
        fgbi_encoder_free(enc[c]);
        fgbi_decoder_free(dec[c]);
    }
    fgbi_config_free(cfg);
    free(mem);
    free(rep);
}

/* Budgets: a cache budget no allocator can give is FGBI_ERR_NO_MEMORY from fgbi_encoder_new (no
 * abort, no encoder); a decoder with a frame size refuses a larger frame with FGBI_ERR_TOO_LARGE
 * and writes nothing. */
static void test_budgets(void) {
    fgbi_config *cfg = NULL;
    fgbi_encoder *enc = (fgbi_encoder *)&cfg; /* must be overwritten with NULL */
    CHECK_RC(fgbi_config_new(&cfg), FGBI_OK);
    CHECK_RC(fgbi_config_set_cache_bytes(cfg, (size_t)1 << 50), FGBI_OK);
    CHECK_RC(fgbi_encoder_new(cfg, &enc), FGBI_ERR_NO_MEMORY);
    CHECK(enc == NULL);
    CHECK(strstr(fgbi_last_error_message(), "out of memory") != NULL);
    fgbi_config_free(cfg);

    pair p;
    pair_new(&p);
    uint8_t *mem = malloc(8 * PAGE);
    uint32_t x = 777;
    for (size_t i = 0; i < 8 * PAGE; i++) {
        x = x * 1103515245u + 12345u; /* noise: eight RAW pages */
        mem[i] = (uint8_t)(x >> 16);
    }
    size_t len = 0;
    uint8_t *frame = encode(&p, 0, mem, 8, &len);
    fgbi_config *small = NULL;
    fgbi_decoder *dec = NULL;
    CHECK_RC(fgbi_config_new(&small), FGBI_OK);
    CHECK_RC(fgbi_config_set_frame_bytes(small, 1024), FGBI_OK);
    CHECK_RC(fgbi_decoder_new(small, &dec), FGBI_OK);
    uint8_t *rep = calloc(8, PAGE);
    CHECK(len > 1024 + 2 * PAGE);
    CHECK_RC(fgbi_decoder_apply_flat(dec, frame, len, rep, 8 * PAGE), FGBI_ERR_TOO_LARGE);
    int untouched = 1;
    for (size_t i = 0; i < 8 * PAGE; i++)
        untouched &= rep[i] == 0;
    CHECK(untouched);
    CHECK_RC(fgbi_decoder_apply_flat(p.dec, frame, len, rep, 8 * PAGE), FGBI_OK);
    CHECK(memcmp(mem, rep, 8 * PAGE) == 0);
    fgbi_decoder_free(dec);
    fgbi_config_free(small);
    free(frame);
    free(mem);
    free(rep);
    pair_free(&p);
}

/* Parts of a number of pages: with frame_pages 3, ten pages go out as three parts of three pages
 * and a last frame of one, applied as they come; NULL is refused. */
static void test_frame_pages(void) {
    pair p;
    memset(&p, 0, sizeof p);
    CHECK_RC(fgbi_config_new(&p.cfg), FGBI_OK);
    CHECK_RC(fgbi_config_set_frame_pages(NULL, 3), FGBI_ERR_NULL);
    CHECK_RC(fgbi_config_set_frame_pages(p.cfg, 3), FGBI_OK);
    CHECK_RC(fgbi_encoder_new(p.cfg, &p.enc), FGBI_OK);
    CHECK_RC(fgbi_decoder_new(p.cfg, &p.dec), FGBI_OK);
    uint8_t *mem = memory(10, 9);
    uint8_t *rep = calloc(10, PAGE);
    const uint8_t *f = NULL;
    size_t n = 0;
    int parts = 0, ok = 1;
    CHECK_RC(fgbi_encoder_begin_epoch(p.enc, 0), FGBI_OK);
    for (size_t i = 0; i < 10; i++) {
        ok &= fgbi_encoder_add_page(p.enc, i * PAGE, mem + i * PAGE) == FGBI_OK;
        ok &= fgbi_encoder_take_frame(p.enc, &f, &n) == FGBI_OK;
        if (f != NULL) {
            parts++;
            ok &= i % 3 == 2;
            ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, 10 * PAGE) == FGBI_OK;
        }
    }
    ok &= fgbi_encoder_end_epoch(p.enc, &f, &n) == FGBI_OK;
    ok &= fgbi_decoder_apply_flat(p.dec, f, n, rep, 10 * PAGE) == FGBI_OK;
    CHECK(ok);
    CHECK(parts == 3);
    CHECK(memcmp(mem, rep, 10 * PAGE) == 0);
    free(mem);
    free(rep);
    pair_free(&p);
}

int main(void) {
    test_version_and_strerror();
    test_config();
    test_encoder_errors();
    test_round_trip_and_stats();
    test_corrupt_frames_leave_memory_unchanged();
    test_epochs_and_resync();
    test_end_epoch_into();
    test_parts();
    test_in_place();
    test_frame_pages();
    test_channels_and_notes();
    test_budgets();
    test_apply_cb();
    test_stages();
    test_threads();
    test_xbzrle();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
