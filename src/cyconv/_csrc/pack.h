/* Packing conv2d weights: a panel of consecutive taps of KB output channels
 * (channel kk's taps at src + kk * sk, elements) into rows of KB (dst[j * KB
 * + kk]), a transpose. A panel is 64 bytes of each channel's taps (16 float,
 * 8 double): with a power-of-two sk the KB rows share L1 sets, and a
 * narrower panel would fetch each line twice. Plain C for the Cython
 * drivers; no validation; copies only, so every level packs the same bits.
 *
 * The transpose is interleave.h's: on x86-64 through registers in 4 x 4
 * (float) or 2 x 2 (double) blocks (the element-by-element loop GCC made of
 * it cost about two cycles per weight: 4 MB of weights of a 2048 -> 512 1x1
 * layer took 0.7 ms, a quarter of the layer on Zen 3). */
#ifndef CYCONV_PACK_H
#define CYCONV_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "interleave.h"

#define CYC_PACK_TAPS_F32 16
#define CYC_PACK_TAPS_F64 8

/* Each panel asks for its channels' lines this many bytes ahead, into L2:
 * the KB rows are too many streams for the hardware prefetchers. Weights
 * from memory (2.4 MB, 256 -> 256 3x3) packed 2.5x faster on Zen 4, from
 * L3 1.3x. A prefetch never faults: asking past the end is harmless (the
 * address is formed as an integer, never as a pointer past the array). */
#define CYC_PACK_AHEAD_BYTES 512

static inline void cyc_pack_ahead(const void *src, ptrdiff_t sk_bytes, ptrdiff_t KB)
{
    for (ptrdiff_t kk = 0; kk < KB; kk++) {
        const char *line = (const char *)((uintptr_t)src + kk * sk_bytes + CYC_PACK_AHEAD_BYTES);
#if defined(__SSE2__) || defined(_M_X64)
        _mm_prefetch(line, _MM_HINT_T1);
#elif defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(line, 0, 2);
#else
        (void)line;
#endif
    }
}

/* With `check`, returns whether every weight of the panel is finite
 * (interleave.h: cyc_transpose_check); else 1. */
static inline int cyc_pack_panel_f32(const float *src, ptrdiff_t sk, float *dst, ptrdiff_t KB,
                                     int check)
{
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(float), KB);
    if (check)
        return cyc_transpose_check_f32(src, sk, KB, CYC_PACK_TAPS_F32, dst, KB, 1);
    cyc_transpose_f32(src, sk, KB, CYC_PACK_TAPS_F32, dst, KB);
    return 1;
}

static inline int cyc_pack_panel_f64(const double *src, ptrdiff_t sk, double *dst,
                                     ptrdiff_t KB, int check)
{
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(double), KB);
    if (check)
        return cyc_transpose_check_f64(src, sk, KB, CYC_PACK_TAPS_F64, dst, KB, 1);
    cyc_transpose_f64(src, sk, KB, CYC_PACK_TAPS_F64, dst, KB);
    return 1;
}

#endif
