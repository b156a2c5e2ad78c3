/*
 * Stand-in for QEMU's "qemu/osdep.h", written for libfgbi's benchmark: only what QEMU's
 * migration/xbzrle.c needs to compile on its own (standard headers and g_assert, which QEMU
 * builds with asserts enabled).
 */
#ifndef FGBI_SHIM_QEMU_OSDEP_H
#define FGBI_SHIM_QEMU_OSDEP_H
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#define g_assert(expr) assert(expr)
#endif
