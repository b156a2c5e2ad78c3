/*
 * ULEB128 counts of at most 14 bits (two bytes), as the XBZRLE format defines them. Written for
 * libfgbi's benchmark; included by shim.c (out of line, as QEMU links them) or by cutils.h
 * (static inline, FGBI_SHIM_INLINE_ULEB128).
 */
#ifdef FGBI_SHIM_INLINE_ULEB128
#define FGBI_SHIM_ULEB_LINKAGE static inline
#else
#define FGBI_SHIM_ULEB_LINKAGE
#endif

FGBI_SHIM_ULEB_LINKAGE int uleb128_encode_small(uint8_t *out, uint32_t n)
{
    g_assert(n <= 0x3fff);
    if (n < 0x80) {
        out[0] = (uint8_t)n;
        return 1;
    }
    out[0] = (uint8_t)(n | 0x80);
    out[1] = (uint8_t)(n >> 7);
    return 2;
}

FGBI_SHIM_ULEB_LINKAGE int uleb128_decode_small(const uint8_t *in, uint32_t *n)
{
    if (!(in[0] & 0x80)) {
        *n = in[0];
        return 1;
    }
    if (in[1] & 0x80) {
        return -1; /* more than 14 bits */
    }
    *n = (uint32_t)(in[0] & 0x7f) | ((uint32_t)in[1] << 7);
    return 2;
}
