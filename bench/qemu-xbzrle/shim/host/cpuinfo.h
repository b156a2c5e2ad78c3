/*
 * Stand-in for QEMU's "host/cpuinfo.h" (x86_64): the one flag xbzrle.c tests. cpuinfo_init is
 * defined in shim.c; fgbi_shim_cpuinfo_avx512bw tells the driver what it answered.
 */
#ifndef FGBI_SHIM_HOST_CPUINFO_H
#define FGBI_SHIM_HOST_CPUINFO_H
#define CPUINFO_AVX512BW (1u << 13)
unsigned cpuinfo_init(void);
extern int fgbi_shim_cpuinfo_avx512bw;
#endif
