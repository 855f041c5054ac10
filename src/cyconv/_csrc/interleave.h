/* Depthwise conv2d's channels-in-lanes layout (kernels.h:
 * cyc_depthwise_lanes): rows of up to G channel planes into pixels of G
 * values, one per channel, and back. Plain C for the Cython drivers; no
 * validation; copies only, so every level lays out the same bits.
 *
 * On x86-64 the transposes go through registers in 4 x 4 (float) or 2 x 2
 * (double) blocks, as pack.h's; elsewhere element by element. */
#ifndef CYCONV_INTERLEAVE_H
#define CYCONV_INTERLEAVE_H

#include <stddef.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define CYC_INTERLEAVE_SSE2 1
#else
#define CYC_INTERLEAVE_SSE2 0
#endif

/* dst[j*G + l] = src[l*cs + j] for j < n, l < nc; 0 for nc <= l < G. */
static inline void cyc_interleave_f32(const float *src, ptrdiff_t cs, ptrdiff_t n,
                                      ptrdiff_t nc, ptrdiff_t G, float *dst)
{
    ptrdiff_t l = 0, j;
#if CYC_INTERLEAVE_SSE2
    for (; l + 4 <= nc; l += 4) {
        const float *s = src + l * cs;
        for (j = 0; j + 4 <= n; j += 4) {
            __m128 r0 = _mm_loadu_ps(s + j), r1 = _mm_loadu_ps(s + cs + j);
            __m128 r2 = _mm_loadu_ps(s + 2 * cs + j), r3 = _mm_loadu_ps(s + 3 * cs + j);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);   /* r_m: pixel j + m of the four channels */
            _mm_storeu_ps(dst + j * G + l, r0);
            _mm_storeu_ps(dst + (j + 1) * G + l, r1);
            _mm_storeu_ps(dst + (j + 2) * G + l, r2);
            _mm_storeu_ps(dst + (j + 3) * G + l, r3);
        }
        for (; j < n; j++)
            for (ptrdiff_t m = 0; m < 4; m++) dst[j * G + l + m] = s[m * cs + j];
    }
#endif
    for (; l < nc; l++)
        for (j = 0; j < n; j++) dst[j * G + l] = src[l * cs + j];
    if (nc < G)
        for (j = 0; j < n; j++)
            for (l = nc; l < G; l++) dst[j * G + l] = 0;
}

/* dst[l*cs + j] = src[j*G + l] for j < n, l < nc. */
static inline void cyc_deinterleave_f32(const float *src, ptrdiff_t G, ptrdiff_t n,
                                        ptrdiff_t nc, float *dst, ptrdiff_t cs)
{
    ptrdiff_t l = 0, j;
#if CYC_INTERLEAVE_SSE2
    for (; l + 4 <= nc; l += 4) {
        float *d = dst + l * cs;
        for (j = 0; j + 4 <= n; j += 4) {
            __m128 r0 = _mm_loadu_ps(src + j * G + l), r1 = _mm_loadu_ps(src + (j + 1) * G + l);
            __m128 r2 = _mm_loadu_ps(src + (j + 2) * G + l);
            __m128 r3 = _mm_loadu_ps(src + (j + 3) * G + l);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);   /* r_m: channel l + m at pixels j..j+3 */
            _mm_storeu_ps(d + j, r0);
            _mm_storeu_ps(d + cs + j, r1);
            _mm_storeu_ps(d + 2 * cs + j, r2);
            _mm_storeu_ps(d + 3 * cs + j, r3);
        }
        for (; j < n; j++)
            for (ptrdiff_t m = 0; m < 4; m++) d[m * cs + j] = src[j * G + l + m];
    }
#endif
    for (; l < nc; l++)
        for (j = 0; j < n; j++) dst[l * cs + j] = src[j * G + l];
}

static inline void cyc_interleave_f64(const double *src, ptrdiff_t cs, ptrdiff_t n,
                                      ptrdiff_t nc, ptrdiff_t G, double *dst)
{
    ptrdiff_t l = 0, j;
#if CYC_INTERLEAVE_SSE2
    for (; l + 2 <= nc; l += 2) {
        const double *s = src + l * cs;
        for (j = 0; j + 2 <= n; j += 2) {
            __m128d r0 = _mm_loadu_pd(s + j), r1 = _mm_loadu_pd(s + cs + j);
            _mm_storeu_pd(dst + j * G + l, _mm_unpacklo_pd(r0, r1));
            _mm_storeu_pd(dst + (j + 1) * G + l, _mm_unpackhi_pd(r0, r1));
        }
        for (; j < n; j++) {
            dst[j * G + l] = s[j];
            dst[j * G + l + 1] = s[cs + j];
        }
    }
#endif
    for (; l < nc; l++)
        for (j = 0; j < n; j++) dst[j * G + l] = src[l * cs + j];
    if (nc < G)
        for (j = 0; j < n; j++)
            for (l = nc; l < G; l++) dst[j * G + l] = 0;
}

static inline void cyc_deinterleave_f64(const double *src, ptrdiff_t G, ptrdiff_t n,
                                        ptrdiff_t nc, double *dst, ptrdiff_t cs)
{
    ptrdiff_t l = 0, j;
#if CYC_INTERLEAVE_SSE2
    for (; l + 2 <= nc; l += 2) {
        double *d = dst + l * cs;
        for (j = 0; j + 2 <= n; j += 2) {
            __m128d r0 = _mm_loadu_pd(src + j * G + l), r1 = _mm_loadu_pd(src + (j + 1) * G + l);
            _mm_storeu_pd(d + j, _mm_unpacklo_pd(r0, r1));
            _mm_storeu_pd(d + cs + j, _mm_unpackhi_pd(r0, r1));
        }
        for (; j < n; j++) {
            d[j] = src[j * G + l];
            d[cs + j] = src[j * G + l + 1];
        }
    }
#endif
    for (; l < nc; l++)
        for (j = 0; j < n; j++) dst[l * cs + j] = src[j * G + l];
}

#endif
