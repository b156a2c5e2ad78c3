/* Stand-in for QEMU's "qemu/host-utils.h": ctz64 (count trailing zeros, 64 for 0). */
#ifndef FGBI_SHIM_QEMU_HOST_UTILS_H
#define FGBI_SHIM_QEMU_HOST_UTILS_H
#include <stdint.h>
static inline int ctz64(uint64_t val)
{
    return val ? __builtin_ctzll(val) : 64;
}
#endif
