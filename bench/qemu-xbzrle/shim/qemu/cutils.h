/*
 * Stand-in for QEMU's "qemu/cutils.h": the two ULEB128 helpers xbzrle.c calls. In QEMU they are
 * defined in util/cutils.c (libqemuutil.a), a separate translation unit built without LTO, so
 * xbzrle.c calls them out of line; shim.c defines them the same way. With
 * FGBI_SHIM_INLINE_ULEB128 they are static inline here instead (QEMU's best case).
 */
#ifndef FGBI_SHIM_QEMU_CUTILS_H
#define FGBI_SHIM_QEMU_CUTILS_H
#include <stdint.h>
#ifdef FGBI_SHIM_INLINE_ULEB128
#include "uleb128-body.h"
#else
int uleb128_encode_small(uint8_t *out, uint32_t n);
int uleb128_decode_small(const uint8_t *in, uint32_t *n);
#endif
#endif
