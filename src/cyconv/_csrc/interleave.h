/* Transposes for the Cython drivers: depthwise conv2d's channels-in-lanes
 * layout (kernels.h: cyc_depthwise_lanes), rows of up to G channel planes
 * into pixels of G values, one per channel, and back; and the channels-last
 * copies of the weight gradient. Plain C; no validation; copies only, so
 * every level lays out the same bits.
 *
 * On x86-64 the transposes go through registers in 4 x 4 (float) or 2 x 2
 * (double) blocks, as pack.h's; elsewhere element by element. Either way
 * CYC_TRANSPOSE_COLS source columns at a time, so that a destination row is
 * written whole while in cache. Against the scalar 8 x 8 panels over whole
 * rows that _core.transpose_into ran before (Zen 4, float32): 4096^2 and
 * 1000^2 1.8x as fast; 1024^2, whose destination rows are 4 KB apart and
 * share L1 sets, 0.6-0.8x. Blocks of 8-1024 columns measured within the
 * noise of 64 on the weight gradient's copies. */
#ifndef CYCONV_INTERLEAVE_H
#define CYCONV_INTERLEAVE_H

#include <stddef.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define CYC_INTERLEAVE_SSE2 1
#else
#define CYC_INTERLEAVE_SSE2 0
#endif

#define CYC_TRANSPOSE_COLS 64

/* dst[j*ds + i] = src[i*ss + j] for i < rows, j < cols. With `check`, also
 * whether every value is finite, from the registers the copy goes through
 * (conv2d's packing: row tiles leave out a block's products with zero
 * padding only when its weights are finite, as inf x 0 is NaN in the
 * reference's sum). x - x is 0 for a finite x and NaN otherwise (no
 * -ffast-math folds it); four values are summed first, so a sum that
 * overflows reads as not finite: the safe side. check is a constant at
 * every call, so the inlined copy without it carries no test. */
static inline int cyc_transpose_check_f32(const float *src, ptrdiff_t ss, ptrdiff_t rows,
                                          ptrdiff_t cols, float *dst, ptrdiff_t ds, int check)
{
    float sums = 0.0f;
    for (ptrdiff_t j0 = 0; j0 < cols; j0 += CYC_TRANSPOSE_COLS) {
        ptrdiff_t j1 = cols - j0 < CYC_TRANSPOSE_COLS ? cols : j0 + CYC_TRANSPOSE_COLS;
        ptrdiff_t i = 0, j;
#if CYC_INTERLEAVE_SSE2
        __m128 zeros = _mm_setzero_ps();
        for (; i + 4 <= rows; i += 4) {
            const float *s = src + i * ss;
            for (j = j0; j + 4 <= j1; j += 4) {
                __m128 r0 = _mm_loadu_ps(s + j), r1 = _mm_loadu_ps(s + ss + j);
                __m128 r2 = _mm_loadu_ps(s + 2 * ss + j), r3 = _mm_loadu_ps(s + 3 * ss + j);
                if (check) {
                    __m128 sum = _mm_add_ps(_mm_add_ps(r0, r1), _mm_add_ps(r2, r3));
                    zeros = _mm_add_ps(zeros, _mm_sub_ps(sum, sum));
                }
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);   /* r_m: column j + m of the four rows */
                _mm_storeu_ps(dst + j * ds + i, r0);
                _mm_storeu_ps(dst + (j + 1) * ds + i, r1);
                _mm_storeu_ps(dst + (j + 2) * ds + i, r2);
                _mm_storeu_ps(dst + (j + 3) * ds + i, r3);
            }
            for (; j < j1; j++)
                for (ptrdiff_t m = 0; m < 4; m++) {
                    float v = s[m * ss + j];
                    dst[j * ds + i + m] = v;
                    if (check) sums += v - v;
                }
        }
        if (check) {
            float lanes[4];
            _mm_storeu_ps(lanes, zeros);
            sums += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        }
#endif
        for (; i < rows; i++)
            for (j = j0; j < j1; j++) {
                float v = src[i * ss + j];
                dst[j * ds + i] = v;
                if (check) sums += v - v;
            }
    }
    return sums == sums;
}

static inline int cyc_transpose_check_f64(const double *src, ptrdiff_t ss, ptrdiff_t rows,
                                          ptrdiff_t cols, double *dst, ptrdiff_t ds, int check)
{
    double sums = 0.0;
    for (ptrdiff_t j0 = 0; j0 < cols; j0 += CYC_TRANSPOSE_COLS) {
        ptrdiff_t j1 = cols - j0 < CYC_TRANSPOSE_COLS ? cols : j0 + CYC_TRANSPOSE_COLS;
        ptrdiff_t i = 0, j;
#if CYC_INTERLEAVE_SSE2
        __m128d zeros = _mm_setzero_pd();
        for (; i + 2 <= rows; i += 2) {
            const double *s = src + i * ss;
            for (j = j0; j + 2 <= j1; j += 2) {
                __m128d r0 = _mm_loadu_pd(s + j), r1 = _mm_loadu_pd(s + ss + j);
                if (check) {
                    __m128d sum = _mm_add_pd(r0, r1);
                    zeros = _mm_add_pd(zeros, _mm_sub_pd(sum, sum));
                }
                _mm_storeu_pd(dst + j * ds + i, _mm_unpacklo_pd(r0, r1));
                _mm_storeu_pd(dst + (j + 1) * ds + i, _mm_unpackhi_pd(r0, r1));
            }
            for (; j < j1; j++) {
                double v0 = s[j], v1 = s[ss + j];
                dst[j * ds + i] = v0;
                dst[j * ds + i + 1] = v1;
                if (check) sums += (v0 - v0) + (v1 - v1);
            }
        }
        if (check) {
            double lanes[2];
            _mm_storeu_pd(lanes, zeros);
            sums += lanes[0] + lanes[1];
        }
#endif
        for (; i < rows; i++)
            for (j = j0; j < j1; j++) {
                double v = src[i * ss + j];
                dst[j * ds + i] = v;
                if (check) sums += v - v;
            }
    }
    return sums == sums;
}

static inline void cyc_transpose_f32(const float *src, ptrdiff_t ss, ptrdiff_t rows,
                                     ptrdiff_t cols, float *dst, ptrdiff_t ds)
{
    (void)cyc_transpose_check_f32(src, ss, rows, cols, dst, ds, 0);
}

static inline void cyc_transpose_f64(const double *src, ptrdiff_t ss, ptrdiff_t rows,
                                     ptrdiff_t cols, double *dst, ptrdiff_t ds)
{
    (void)cyc_transpose_check_f64(src, ss, rows, cols, dst, ds, 0);
}

/* dst[t] = src[n-1-t] for t < n: a run of taps flipped (the input
 * gradient's weights), 4 floats or 2 doubles per shuffle on x86-64. */
static inline void cyc_reverse_f32(const float *src, ptrdiff_t n, float *dst)
{
    ptrdiff_t t = 0;
#if CYC_INTERLEAVE_SSE2
    for (; t + 4 <= n; t += 4) {
        __m128 v = _mm_loadu_ps(src + n - 4 - t);
        _mm_storeu_ps(dst + t, _mm_shuffle_ps(v, v, _MM_SHUFFLE(0, 1, 2, 3)));
    }
#endif
    for (; t < n; t++) dst[t] = src[n - 1 - t];
}

static inline void cyc_reverse_f64(const double *src, ptrdiff_t n, double *dst)
{
    ptrdiff_t t = 0;
#if CYC_INTERLEAVE_SSE2
    for (; t + 2 <= n; t += 2) {
        __m128d v = _mm_loadu_pd(src + n - 2 - t);
        _mm_storeu_pd(dst + t, _mm_shuffle_pd(v, v, 1));
    }
#endif
    for (; t < n; t++) dst[t] = src[n - 1 - t];
}

/* `runs` consecutive runs of n elements from src, each reversed into
 * dst + i * ds (i < runs): the input gradient's flipped taps of a block of
 * channels. A 3 x 3 kernel's n = 9 gets its own unrolled copy: with the
 * loop over n, 512 -> 512 input gradients at 7 x 7 took 1.03-1.17x as long
 * (Zen 4, their weights prefetched). */
#define CYC_REVERSE_RUNS(T, SFX)                                                     \
    static inline void cyc_reverse_runs_##SFX(const T *src, ptrdiff_t n, ptrdiff_t runs, \
                                              T *dst, ptrdiff_t ds)                      \
    {                                                                                    \
        if (n == 9)                                                                      \
            for (ptrdiff_t i = 0; i < runs; i++)                                         \
                cyc_reverse_##SFX(src + i * 9, 9, dst + i * ds);                         \
        else                                                                             \
            for (ptrdiff_t i = 0; i < runs; i++)                                         \
                cyc_reverse_##SFX(src + i * n, n, dst + i * ds);                         \
    }
CYC_REVERSE_RUNS(float, f32)
CYC_REVERSE_RUNS(double, f64)
#undef CYC_REVERSE_RUNS

/* dst[j*G + l] = src[l*cs + j] for j < n, l < nc; 0 for nc <= l < G. */
static inline void cyc_interleave_f32(const float *src, ptrdiff_t cs, ptrdiff_t n,
                                      ptrdiff_t nc, ptrdiff_t G, float *dst)
{
    cyc_transpose_f32(src, cs, nc, n, dst, G);
    if (nc < G)
        for (ptrdiff_t j = 0; j < n; j++)
            for (ptrdiff_t l = nc; l < G; l++) dst[j * G + l] = 0;
}

static inline void cyc_interleave_f64(const double *src, ptrdiff_t cs, ptrdiff_t n,
                                      ptrdiff_t nc, ptrdiff_t G, double *dst)
{
    cyc_transpose_f64(src, cs, nc, n, dst, G);
    if (nc < G)
        for (ptrdiff_t j = 0; j < n; j++)
            for (ptrdiff_t l = nc; l < G; l++) dst[j * G + l] = 0;
}

/* dst[l*cs + j] = src[j*G + l] for j < n, l < nc. */
static inline void cyc_deinterleave_f32(const float *src, ptrdiff_t G, ptrdiff_t n,
                                        ptrdiff_t nc, float *dst, ptrdiff_t cs)
{
    cyc_transpose_f32(src, G, n, nc, dst, cs);
}

static inline void cyc_deinterleave_f64(const double *src, ptrdiff_t G, ptrdiff_t n,
                                        ptrdiff_t nc, double *dst, ptrdiff_t cs)
{
    cyc_transpose_f64(src, G, n, nc, dst, cs);
}

#endif
