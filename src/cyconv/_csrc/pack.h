/* Packing conv2d weights: a panel of consecutive taps of KB output channels
 * (channel kk's taps at src + kk * sk, elements) into rows of KB (dst[j * KB
 * + kk]), a transpose. A panel is 64 bytes of each channel's taps (16 float,
 * 8 double): with a power-of-two sk the KB rows share L1 sets, and a
 * narrower panel would fetch each line twice. Plain C for the Cython
 * drivers; no validation; copies only, so every level packs the same bits.
 *
 * On x86-64 the transpose goes through registers in 4 x 4 (float) or 2 x 2
 * (double) blocks: the element-by-element loop GCC made of it cost about
 * two cycles per weight (4 MB of weights of a 2048 -> 512 1x1 layer:
 * 0.7 ms, a quarter of the layer on Zen 3). */
#ifndef CYCONV_PACK_H
#define CYCONV_PACK_H

#include <stddef.h>
#include <stdint.h>

#define CYC_PACK_TAPS_F32 16
#define CYC_PACK_TAPS_F64 8

/* Each panel asks for its channels' lines this many bytes ahead, into L2:
 * the KB rows are too many streams for the hardware prefetchers. Weights
 * from memory (2.4 MB, 256 -> 256 3x3) packed 2.5x faster on Zen 4, from
 * L3 1.3x. A prefetch never faults: asking past the end is harmless (the
 * address is formed as an integer, never as a pointer past the array). */
#define CYC_PACK_AHEAD_BYTES 512

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>

static inline void cyc_pack_ahead(const void *src, ptrdiff_t sk_bytes, ptrdiff_t KB)
{
    for (ptrdiff_t kk = 0; kk < KB; kk++)
        _mm_prefetch((const char *)((uintptr_t)src + kk * sk_bytes + CYC_PACK_AHEAD_BYTES),
                     _MM_HINT_T1);
}

static inline void cyc_pack_panel_f32(const float *src, ptrdiff_t sk, float *dst, ptrdiff_t KB)
{
    ptrdiff_t kk = 0;
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(float), KB);
    for (; kk + 4 <= KB; kk += 4)
        for (ptrdiff_t j = 0; j < CYC_PACK_TAPS_F32; j += 4) {
            const float *s = src + kk * sk + j;
            __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + sk);
            __m128 r2 = _mm_loadu_ps(s + 2 * sk), r3 = _mm_loadu_ps(s + 3 * sk);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);   /* r_m: tap j + m of the four channels */
            _mm_storeu_ps(dst + j * KB + kk, r0);
            _mm_storeu_ps(dst + (j + 1) * KB + kk, r1);
            _mm_storeu_ps(dst + (j + 2) * KB + kk, r2);
            _mm_storeu_ps(dst + (j + 3) * KB + kk, r3);
        }
    for (; kk < KB; kk++)
        for (ptrdiff_t j = 0; j < CYC_PACK_TAPS_F32; j++) dst[j * KB + kk] = src[kk * sk + j];
}

static inline void cyc_pack_panel_f64(const double *src, ptrdiff_t sk, double *dst, ptrdiff_t KB)
{
    ptrdiff_t kk = 0;
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(double), KB);
    for (; kk + 2 <= KB; kk += 2)
        for (ptrdiff_t j = 0; j < CYC_PACK_TAPS_F64; j += 2) {
            const double *s = src + kk * sk + j;
            __m128d r0 = _mm_loadu_pd(s), r1 = _mm_loadu_pd(s + sk);
            _mm_storeu_pd(dst + j * KB + kk, _mm_unpacklo_pd(r0, r1));
            _mm_storeu_pd(dst + (j + 1) * KB + kk, _mm_unpackhi_pd(r0, r1));
        }
    for (; kk < KB; kk++)
        for (ptrdiff_t j = 0; j < CYC_PACK_TAPS_F64; j++) dst[j * KB + kk] = src[kk * sk + j];
}
#else
static inline void cyc_pack_ahead(const void *src, ptrdiff_t sk_bytes, ptrdiff_t KB)
{
#if defined(__GNUC__) || defined(__clang__)
    for (ptrdiff_t kk = 0; kk < KB; kk++)
        __builtin_prefetch((const char *)((uintptr_t)src + kk * sk_bytes + CYC_PACK_AHEAD_BYTES),
                           0, 2);
#else
    (void)src; (void)sk_bytes; (void)KB;
#endif
}

static inline void cyc_pack_panel_f32(const float *src, ptrdiff_t sk, float *dst, ptrdiff_t KB)
{
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(float), KB);
    for (ptrdiff_t kk = 0; kk < KB; kk++)
        for (ptrdiff_t j = 0; j < CYC_PACK_TAPS_F32; j++) dst[j * KB + kk] = src[kk * sk + j];
}

static inline void cyc_pack_panel_f64(const double *src, ptrdiff_t sk, double *dst, ptrdiff_t KB)
{
    cyc_pack_ahead(src, sk * (ptrdiff_t)sizeof(double), KB);
    for (ptrdiff_t kk = 0; kk < KB; kk++)
        for (ptrdiff_t j = 0; j < CYC_PACK_TAPS_F64; j++) dst[j * KB + kk] = src[kk * sk + j];
}
#endif

#endif
