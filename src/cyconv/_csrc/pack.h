/* Packing conv2d weights: a panel of consecutive taps of KB output channels
 * (channel kk's taps at src + kk * sk, elements) into rows of KB (dst[j * KB
 * + kk]), a transpose. A panel is at least 64 bytes of each channel's taps (16 float,
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
/* Wide panels, 256 bytes of each channel's taps, go first: the fewer rows
 * a panel starts, the fewer stalls on lines from L3 (1024 -> 2048 1x1's
 * 8 MB on Zen 5: 0.27 ms in 16-tap panels, 0.20 in 64-tap ones). */
#define CYC_PACK_WIDE_TAPS_F32 64
#define CYC_PACK_WIDE_TAPS_F64 32

/* Each panel asks for its channels' lines ahead into L2 (a narrow panel
 * CYC_PACK_AHEAD_BYTES on, a wide one the next panel's): the KB rows are
 * too many streams for the hardware prefetchers. Weights from memory
 * (2.4 MB, 256 -> 256 3x3) packed 2.5x faster on Zen 4, from L3 1.3x. A
 * prefetch never faults: asking past the end is harmless (the address is
 * formed as an integer, never as a pointer past the array). */
#define CYC_PACK_AHEAD_BYTES 512

static inline void cyc_pack_ahead(const void *src, ptrdiff_t sk_bytes, ptrdiff_t KB,
                                  ptrdiff_t ahead, ptrdiff_t bytes)
{
    for (ptrdiff_t kk = 0; kk < KB; kk++)
        for (ptrdiff_t b = 0; b < bytes; b += 64) {
            const char *line = (const char *)((uintptr_t)src + kk * sk_bytes + ahead + b);
#if defined(__SSE2__) || defined(_M_X64)
            _mm_prefetch(line, _MM_HINT_T1);
#elif defined(__GNUC__) || defined(__clang__)
            __builtin_prefetch(line, 0, 2);
#else
            (void)line;
#endif
        }
}

/* A panel of `taps` (CYC_PACK_TAPS or CYC_PACK_WIDE_TAPS). With `check`,
 * returns whether every weight of the panel is finite
 * (interleave.h: cyc_transpose_check); else 1. */
static inline int cyc_pack_panel_f32(const float *src, ptrdiff_t sk, float *dst, ptrdiff_t KB,
                                     ptrdiff_t taps, int check)
{
    const ptrdiff_t bytes = taps * (ptrdiff_t)sizeof(float);
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(float), KB,
                   taps == CYC_PACK_TAPS_F32 ? CYC_PACK_AHEAD_BYTES : bytes,
                   taps == CYC_PACK_TAPS_F32 ? 64 : bytes);
    if (check)
        return cyc_transpose_check_f32(src, sk, KB, taps, dst, KB, 1);
    cyc_transpose_f32(src, sk, KB, taps, dst, KB);
    return 1;
}

static inline int cyc_pack_panel_f64(const double *src, ptrdiff_t sk, double *dst,
                                     ptrdiff_t KB, ptrdiff_t taps, int check)
{
    const ptrdiff_t bytes = taps * (ptrdiff_t)sizeof(double);
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(double), KB,
                   taps == CYC_PACK_TAPS_F64 ? CYC_PACK_AHEAD_BYTES : bytes,
                   taps == CYC_PACK_TAPS_F64 ? 64 : bytes);
    if (check)
        return cyc_transpose_check_f64(src, sk, KB, taps, dst, KB, 1);
    cyc_transpose_f64(src, sk, KB, taps, dst, KB);
    return 1;
}

#endif
