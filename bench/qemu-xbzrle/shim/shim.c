/*
 * The out-of-line parts of the shim (written for libfgbi's benchmark, not QEMU code):
 * QEMU's util/cutils.c ULEB128 helpers and util/cpuinfo-i386.c's cpuinfo_init, reduced to what
 * migration/xbzrle.c uses.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "host/cpuinfo.h"

#ifndef FGBI_SHIM_INLINE_ULEB128
#include "qemu/uleb128-body.h"
#endif

int fgbi_shim_cpuinfo_avx512bw = -1;

unsigned cpuinfo_init(void)
{
    /* QEMU requires AVX512F and AVX512BW (and OS support for the ZMM state, which
     * __builtin_cpu_supports checks through XGETBV). */
    __builtin_cpu_init();
    int ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    fgbi_shim_cpuinfo_avx512bw = ok;
    return ok ? CPUINFO_AVX512BW : 0;
}
