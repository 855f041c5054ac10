/* cyconv.ndimage: SciPy-exact correlation of one output line (plain C, no
 * Python, no validation: the Cython caller guarantees every index is valid).
 *
 *   out[j] = sum_{t < T} w[t] * src[off[t] + j]   for 0 <= j < n,
 *
 * summed from 0.0 in term order with one multiply and one add per term (no
 * fused multiply-add), exactly as SciPy's NI_Correlate sums each output, so
 * integer outputs truncate to SciPy's values bit for bit. Vectorized across
 * outputs j (each lane performs the same scalar sequence): SSE2 baseline and
 * an AVX2 copy (no FMA in its target, so the compiler cannot fuse).
 */
#ifndef CYCONV_NDIMAGE_EXACT_H
#define CYCONV_NDIMAGE_EXACT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#define CYC_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define CYC_NO_CONTRACT
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define CYC_EXACT_HAVE_AVX2 1
#define CYC_EXACT_AVX2_TARGET __attribute__((target("avx2")))
#else
#define CYC_EXACT_HAVE_AVX2 0
#define CYC_EXACT_AVX2_TARGET
#endif

#if defined(__GNUC__)
#define CYC_EXACT_LINE(NAME, TARGET, VB)                                              \
TARGET CYC_NO_CONTRACT static void NAME(const double *src, const ptrdiff_t *off,     \
                                        const double *w, ptrdiff_t T,                \
                                        double *out, ptrdiff_t n)                    \
{                                                                                    \
    typedef double V __attribute__((vector_size(VB)));                               \
    const ptrdiff_t VW = VB / (ptrdiff_t)sizeof(double);                             \
    ptrdiff_t j = 0;                                                                 \
    for (; j + 4 * VW <= n; j += 4 * VW) {                                           \
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                    \
        for (ptrdiff_t t = 0; t < T; t++) {                                          \
            const double *p = src + off[t] + j;                                      \
            V wv = w[t] - (V){0}, x0, x1, x2, x3;                                    \
            memcpy(&x0, p, VB); memcpy(&x1, p + VW, VB);                             \
            memcpy(&x2, p + 2 * VW, VB); memcpy(&x3, p + 3 * VW, VB);                \
            V p0 = wv * x0, p1 = wv * x1, p2 = wv * x2, p3 = wv * x3;               \
            a0 = a0 + p0; a1 = a1 + p1; a2 = a2 + p2; a3 = a3 + p3;                  \
        }                                                                            \
        memcpy(out + j, &a0, VB); memcpy(out + j + VW, &a1, VB);                     \
        memcpy(out + j + 2 * VW, &a2, VB); memcpy(out + j + 3 * VW, &a3, VB);        \
    }                                                                                \
    for (; j < n; j++) {                                                             \
        double acc = 0.0;                                                            \
        for (ptrdiff_t t = 0; t < T; t++) {                                          \
            double prod = w[t] * src[off[t] + j];                                    \
            acc = acc + prod;                                                        \
        }                                                                            \
        out[j] = acc;                                                                \
    }                                                                                \
}
CYC_EXACT_LINE(cyc_exact_line_sse2, , 16)
#if CYC_EXACT_HAVE_AVX2
CYC_EXACT_LINE(cyc_exact_line_avx2, CYC_EXACT_AVX2_TARGET, 32)
#endif
#else
static void cyc_exact_line_sse2(const double *src, const ptrdiff_t *off, const double *w,
                                ptrdiff_t T, double *out, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++) {
        double acc = 0.0;
        for (ptrdiff_t t = 0; t < T; t++) {
            double prod = w[t] * src[off[t] + j];
            acc = acc + prod;
        }
        out[j] = acc;
    }
}
#endif

/* One line of NI_Correlate1D's sums: out[j], 0 <= j < n, from the padded line
 * src (n + L - 1 values), c = L / 2, in its order of operations:
 *   symmetry 1:  a = src[j+c] * w[c], then a = a + (src[j+c+i] + src[j+c-i]) * w[c+i]
 *   symmetry -1: the same with src[j+c+i] - src[j+c-i], for i = -c .. -1
 *   symmetry 0:  a = src[j+L-1] * w[L-1], then a = a + src[j+t] * w[t], t = 0 .. L-2
 * Four vectors of outputs stay in registers through all the taps (the loop
 * this replaced added each tap into the output row in memory, two doubles
 * at a time: 2.9 ms for a 1024^2 uint8 gaussian_filter's pass along rows).
 * cyc_exact_1d_lanes takes the taps ts elements apart (src[j + k*ts] for
 * src[j + k]): n neighbouring lines filtered down rows ts apart. */
#define CYC_EXACT_1D_SUM(a, at, sym)                                                  \
    do {                                                                             \
        if ((sym) != 0) {                                                            \
            a = at(c) * w[c];                                                        \
            for (ptrdiff_t i = -c; i < 0; i++)                                       \
                a = a + ((sym) > 0 ? at(c + i) + at(c - i) : at(c + i) - at(c - i)) * w[c + i]; \
        } else {                                                                     \
            a = at(L - 1) * w[L - 1];                                                \
            for (ptrdiff_t t = 0; t < L - 1; t++)                                    \
                a = a + at(t) * w[t];                                                \
        }                                                                            \
    } while (0)
#define CYC_EXACT_AT(k) p[k]
#define CYC_EXACT_AT_TS(k) p[(k) * ts]

#if defined(__GNUC__)
#define CYC_EXACT_LD(v, k, TS) (*(const VU *)(p + (v) * VW + (k) * (TS)))
/* Four vectors of outputs VW apart from p, the taps TS apart: one statement
 * each, so that GCC keeps the four sums in registers through the taps.
 * CYC_EXACT_PAIR_SUMS: the (anti)symmetric sums, pairs joined by OP. */
#define CYC_EXACT_LD(v, k, TS) (*(const VU *)(p + (v) * VW + (k) * (TS)))
#define CYC_EXACT_PAIR_SUMS(OP, TS)                                                 \
    a0 = CYC_EXACT_LD(0, c, TS) * w[c];                                             \
    a1 = CYC_EXACT_LD(1, c, TS) * w[c];                                             \
    a2 = CYC_EXACT_LD(2, c, TS) * w[c];                                             \
    a3 = CYC_EXACT_LD(3, c, TS) * w[c];                                             \
    for (ptrdiff_t i = -c; i < 0; i++) {                                            \
        const double wi = w[c + i];                                                 \
        a0 = a0 + (CYC_EXACT_LD(0, c + i, TS) OP CYC_EXACT_LD(0, c - i, TS)) * wi;  \
        a1 = a1 + (CYC_EXACT_LD(1, c + i, TS) OP CYC_EXACT_LD(1, c - i, TS)) * wi;  \
        a2 = a2 + (CYC_EXACT_LD(2, c + i, TS) OP CYC_EXACT_LD(2, c - i, TS)) * wi;  \
        a3 = a3 + (CYC_EXACT_LD(3, c + i, TS) OP CYC_EXACT_LD(3, c - i, TS)) * wi;  \
    }                                                                               \
    do {} while (0)
#define CYC_EXACT_1D_SUMS(TS)                                                       \
    if (symmetry > 0) {                                                             \
        CYC_EXACT_PAIR_SUMS(+, TS);                                                 \
    } else if (symmetry < 0) {                                                      \
        CYC_EXACT_PAIR_SUMS(-, TS);                                                 \
    } else {                                                                        \
        a0 = CYC_EXACT_LD(0, L - 1, TS) * w[L - 1];                                 \
        a1 = CYC_EXACT_LD(1, L - 1, TS) * w[L - 1];                                 \
        a2 = CYC_EXACT_LD(2, L - 1, TS) * w[L - 1];                                 \
        a3 = CYC_EXACT_LD(3, L - 1, TS) * w[L - 1];                                 \
        for (ptrdiff_t t = 0; t < L - 1; t++) {                                     \
            const double wt = w[t];                                                 \
            a0 = a0 + CYC_EXACT_LD(0, t, TS) * wt;                                  \
            a1 = a1 + CYC_EXACT_LD(1, t, TS) * wt;                                  \
            a2 = a2 + CYC_EXACT_LD(2, t, TS) * wt;                                  \
            a3 = a3 + CYC_EXACT_LD(3, t, TS) * wt;                                  \
        }                                                                           \
    }                                                                               \
    do {} while (0)

/* The sums of n outputs, four vectors at a time, then one at a time. */
#define CYC_EXACT_1D_BODY(VB, TS, AT)                                                \
    typedef double V __attribute__((vector_size(VB)));                               \
    typedef double VU __attribute__((vector_size(VB), aligned(8), may_alias));       \
    const ptrdiff_t VW = VB / (ptrdiff_t)sizeof(double), c = L / 2;                  \
    ptrdiff_t j = 0;                                                                 \
    for (; j + 4 * VW <= n; j += 4 * VW) {                                           \
        V a0, a1, a2, a3;                                                            \
        const double *p = src + j;                                                   \
        CYC_EXACT_1D_SUMS(TS);                                                       \
        memcpy(out + j, &a0, VB); memcpy(out + j + VW, &a1, VB);                     \
        memcpy(out + j + 2 * VW, &a2, VB); memcpy(out + j + 3 * VW, &a3, VB);        \
    }                                                                                \
    for (; j < n; j++) {                                                             \
        const double *p = src + j;                                                   \
        double a;                                                                    \
        CYC_EXACT_1D_SUM(a, AT, symmetry);                                           \
        out[j] = a;                                                                  \
    }

#define CYC_EXACT_1D(NAME, TARGET, VB)                                                \
TARGET CYC_NO_CONTRACT static void NAME(const double *src, const double *w,          \
                                        ptrdiff_t L, int symmetry,                   \
                                        double *out, ptrdiff_t n)                    \
{                                                                                    \
    CYC_EXACT_1D_BODY(VB, 1, CYC_EXACT_AT)                                           \
}
#define CYC_EXACT_1D_LANES(NAME, TARGET, VB)                                          \
TARGET CYC_NO_CONTRACT static void NAME(const double *src, ptrdiff_t ts,             \
                                        const double *w, ptrdiff_t L, int symmetry,  \
                                        double *out, ptrdiff_t n)                    \
{                                                                                    \
    CYC_EXACT_1D_BODY(VB, ts, CYC_EXACT_AT_TS)                                       \
}
CYC_EXACT_1D(cyc_exact_1d_sse2, , 16)
CYC_EXACT_1D_LANES(cyc_exact_1d_lanes_sse2, , 16)
#if CYC_EXACT_HAVE_AVX2
CYC_EXACT_1D(cyc_exact_1d_avx2, CYC_EXACT_AVX2_TARGET, 32)
CYC_EXACT_1D_LANES(cyc_exact_1d_lanes_avx2, CYC_EXACT_AVX2_TARGET, 32)
#endif
#else
static void cyc_exact_1d_lanes_sse2(const double *src, ptrdiff_t ts, const double *w,
                                    ptrdiff_t L, int symmetry, double *out, ptrdiff_t n)
{
    const ptrdiff_t c = L / 2;
    for (ptrdiff_t j = 0; j < n; j++) {
        const double *p = src + j;
        double a;
        CYC_EXACT_1D_SUM(a, CYC_EXACT_AT_TS, symmetry);
        out[j] = a;
    }
}
static void cyc_exact_1d_sse2(const double *src, const double *w, ptrdiff_t L, int symmetry,
                              double *out, ptrdiff_t n)
{
    cyc_exact_1d_lanes_sse2(src, 1, w, L, symmetry, out, n);
}
#endif

/* The running means' quotients. x[j] / d is SciPy's; x[j] * r, with r the
 * double just above 1/d, truncates to the same integer when the sums are
 * integers (ndimage.py's _reciprocal_above has the proof and the bounds).
 * The division took 30 % of a uint8 pass on Zen 4; the product is one
 * multiply. */
#define CYC_DIVIDE(NAME, TARGET)                                                      \
TARGET static void NAME(double *x, double d, ptrdiff_t n)                            \
{                                                                                    \
    for (ptrdiff_t j = 0; j < n; j++)                                                \
        x[j] = x[j] / d;                                                             \
}
#define CYC_SCALE(NAME, TARGET)                                                       \
TARGET static void NAME(double *x, double r, ptrdiff_t n)                            \
{                                                                                    \
    for (ptrdiff_t j = 0; j < n; j++)                                                \
        x[j] = x[j] * r;                                                             \
}
CYC_DIVIDE(cyc_divide_sse2, )
CYC_SCALE(cyc_scale_sse2, )
#if CYC_EXACT_HAVE_AVX2
CYC_DIVIDE(cyc_divide_avx2, CYC_EXACT_AVX2_TARGET)
CYC_SCALE(cyc_scale_avx2, CYC_EXACT_AVX2_TARGET)
#endif

/* Integer lines to and from double scratch for the passes that read 8- and
 * 16-bit images in place (cyconv.ndimage's line kernels): n samples `step`
 * elements apart. Out of double, the values (|v| < 2^31, which the caller
 * guarantees) are truncated toward zero through int32 and wrapped into the
 * type, as x86 compilers convert SciPy's doubles. An AVX2 copy of each: at
 * the SSE2 baseline the conversions took half of a 1-tap pass. */
#define CYC_LINE_TO_DOUBLE(NAME, T, TARGET)                                           \
TARGET static void NAME(const T *p, ptrdiff_t step, double *dst, ptrdiff_t n)        \
{                                                                                    \
    if (step == 1)                                                                   \
        for (ptrdiff_t j = 0; j < n; j++) dst[j] = (double)p[j];                     \
    else                                                                             \
        for (ptrdiff_t j = 0; j < n; j++) dst[j] = (double)p[j * step];              \
}
#define CYC_LINE_FROM_DOUBLE(NAME, T, TARGET)                                         \
TARGET static void NAME(const double *src, T *p, ptrdiff_t step, ptrdiff_t n)        \
{                                                                                    \
    if (step == 1)                                                                   \
        for (ptrdiff_t j = 0; j < n; j++) p[j] = (T)(int32_t)src[j];                 \
    else                                                                             \
        for (ptrdiff_t j = 0; j < n; j++) p[j * step] = (T)(int32_t)src[j];          \
}
/* The running means down an axis, every lane in step, from and to the image
 * in place: total[j] = total[j] + (enter[j] - leave[j]) as NI_UniformFilter1D
 * updates its sum (a NULL row reads as its fill; the difference of two
 * samples is exact in int32, one conversion where two were), and p[j] = sum[j] * r
 * truncated as above (CYC_SCALE says when that is SciPy's integer). Reading
 * the rows in place instead of through double copies made a uint8 pass at
 * 1024^2 2.4-2.9x faster on Zen 4. */
#define CYC_LINE_RUNNING(NAME, T, TARGET)                                             \
TARGET static void NAME(const T *enter, double enter_fill, const T *leave,           \
                        double leave_fill, ptrdiff_t step, double *total, ptrdiff_t n) \
{                                                                                    \
    if (enter && leave && step == 1)                                                 \
        for (ptrdiff_t j = 0; j < n; j++)                                            \
            total[j] = total[j] + (double)((int32_t)enter[j] - (int32_t)leave[j]);   \
    else                                                                             \
        for (ptrdiff_t j = 0; j < n; j++)                                            \
            total[j] = total[j] + ((enter ? (double)enter[j * step] : enter_fill)    \
                                   - (leave ? (double)leave[j * step] : leave_fill)); \
}
#define CYC_LINE_FROM_SCALED(NAME, T, TARGET)                                         \
TARGET static void NAME(const double *src, double r, T *p, ptrdiff_t step, ptrdiff_t n) \
{                                                                                    \
    if (step == 1)                                                                   \
        for (ptrdiff_t j = 0; j < n; j++) p[j] = (T)(int32_t)(src[j] * r);           \
    else                                                                             \
        for (ptrdiff_t j = 0; j < n; j++) p[j * step] = (T)(int32_t)(src[j] * r);    \
}
/* Running means along a row whose window sums are integers below 2^31 in
 * magnitude: any order of summing gives SciPy's sum, so each is a difference
 * of the row's prefix sums (kept mod 2^32), and p[j] its quotient as in
 * CYC_LINE_FROM_SCALED. SciPy's serial running sum cannot use the vector
 * units; this does, after one scalar pass for the prefix sums. */
#define CYC_WINDOW_MEANS(NAME, T, TARGET)                                             \
TARGET static void NAME(const uint32_t *prefix, ptrdiff_t size, double r, T *p,      \
                        ptrdiff_t step, ptrdiff_t n)                                 \
{                                                                                    \
    if (step == 1)                                                                   \
        for (ptrdiff_t j = 0; j < n; j++)                                            \
            p[j] = (T)(int32_t)((double)(int32_t)(prefix[j + size] - prefix[j]) * r); \
    else                                                                             \
        for (ptrdiff_t j = 0; j < n; j++)                                            \
            p[j * step] = (T)(int32_t)((double)(int32_t)(prefix[j + size] - prefix[j]) * r); \
}
/* a[q] = a[0] + ... + a[q], b likewise, for q < m (mod 2^32, in place): the
 * prefix sums under CYC_WINDOW_MEANS. SSE2 on x86, four sums a vector (two
 * shifted adds, then the carry of the vector before), two rows in step so
 * that two carry chains overlap: 0.15 ns a sample on Zen 4, against 0.27 for
 * four scalar chains. */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
static inline __m128i cyc_prefix4(__m128i x, __m128i carry)
{
    x = _mm_add_epi32(x, _mm_slli_si128(x, 4));
    x = _mm_add_epi32(x, _mm_slli_si128(x, 8));
    return _mm_add_epi32(x, carry);
}
#endif
static void cyc_prefix_sums_2(uint32_t *a, uint32_t *b, ptrdiff_t m)
{
    uint32_t s = 0, t = 0;
    ptrdiff_t q = 0;
#if defined(__SSE2__) || defined(_M_X64)
    __m128i ca = _mm_setzero_si128(), cb = _mm_setzero_si128();
    for (; q + 4 <= m; q += 4) {
        __m128i x = cyc_prefix4(_mm_loadu_si128((const __m128i *)(a + q)), ca);
        __m128i y = cyc_prefix4(_mm_loadu_si128((const __m128i *)(b + q)), cb);
        _mm_storeu_si128((__m128i *)(a + q), x);
        _mm_storeu_si128((__m128i *)(b + q), y);
        ca = _mm_shuffle_epi32(x, 0xFF);
        cb = _mm_shuffle_epi32(y, 0xFF);
    }
    s = (uint32_t)_mm_cvtsi128_si32(ca);
    t = (uint32_t)_mm_cvtsi128_si32(cb);
#endif
    for (; q < m; q++) {
        s += a[q];
        a[q] = s;
        t += b[q];
        b[q] = t;
    }
}

#define CYC_LINE_CONVERSIONS(SUFFIX, TARGET)                                          \
    CYC_WINDOW_MEANS(cyc_window_means_u8_##SUFFIX, uint8_t, TARGET)                  \
    CYC_WINDOW_MEANS(cyc_window_means_i8_##SUFFIX, int8_t, TARGET)                   \
    CYC_WINDOW_MEANS(cyc_window_means_u16_##SUFFIX, uint16_t, TARGET)                \
    CYC_WINDOW_MEANS(cyc_window_means_i16_##SUFFIX, int16_t, TARGET)                 \
    CYC_WINDOW_MEANS(cyc_window_means_i32_##SUFFIX, int32_t, TARGET)                 \
    CYC_LINE_RUNNING(cyc_u8_running_##SUFFIX, uint8_t, TARGET)                       \
    CYC_LINE_RUNNING(cyc_i8_running_##SUFFIX, int8_t, TARGET)                        \
    CYC_LINE_RUNNING(cyc_u16_running_##SUFFIX, uint16_t, TARGET)                     \
    CYC_LINE_RUNNING(cyc_i16_running_##SUFFIX, int16_t, TARGET)                      \
    CYC_LINE_FROM_SCALED(cyc_scaled_to_u8_##SUFFIX, uint8_t, TARGET)                 \
    CYC_LINE_FROM_SCALED(cyc_scaled_to_i8_##SUFFIX, int8_t, TARGET)                  \
    CYC_LINE_FROM_SCALED(cyc_scaled_to_u16_##SUFFIX, uint16_t, TARGET)               \
    CYC_LINE_FROM_SCALED(cyc_scaled_to_i16_##SUFFIX, int16_t, TARGET)                \
    CYC_LINE_FROM_SCALED(cyc_scaled_to_i32_##SUFFIX, int32_t, TARGET)                \
    CYC_LINE_TO_DOUBLE(cyc_u8_to_double_##SUFFIX, uint8_t, TARGET)                   \
    CYC_LINE_TO_DOUBLE(cyc_i8_to_double_##SUFFIX, int8_t, TARGET)                    \
    CYC_LINE_TO_DOUBLE(cyc_u16_to_double_##SUFFIX, uint16_t, TARGET)                 \
    CYC_LINE_TO_DOUBLE(cyc_i16_to_double_##SUFFIX, int16_t, TARGET)                  \
    CYC_LINE_FROM_DOUBLE(cyc_double_to_u8_##SUFFIX, uint8_t, TARGET)                 \
    CYC_LINE_FROM_DOUBLE(cyc_double_to_i8_##SUFFIX, int8_t, TARGET)                  \
    CYC_LINE_FROM_DOUBLE(cyc_double_to_u16_##SUFFIX, uint16_t, TARGET)               \
    CYC_LINE_FROM_DOUBLE(cyc_double_to_i16_##SUFFIX, int16_t, TARGET)                \
    CYC_LINE_FROM_DOUBLE(cyc_double_to_i32_##SUFFIX, int32_t, TARGET)
CYC_LINE_CONVERSIONS(sse2, )
#if CYC_EXACT_HAVE_AVX2
CYC_LINE_CONVERSIONS(avx2, CYC_EXACT_AVX2_TARGET)
#else
CYC_LINE_CONVERSIONS(avx2, )
#endif

/* The copy for the level: AVX2 where avx2 is set. */
#define CYC_LINE_TO_DOUBLE_AT(NAME, T)                                                \
static inline void NAME(const T *p, ptrdiff_t step, double *dst, ptrdiff_t n, int avx2) \
{                                                                                    \
    (avx2 ? NAME##_avx2 : NAME##_sse2)(p, step, dst, n);                             \
}
#define CYC_LINE_FROM_DOUBLE_AT(NAME, T)                                              \
static inline void NAME(const double *src, T *p, ptrdiff_t step, ptrdiff_t n, int avx2) \
{                                                                                    \
    (avx2 ? NAME##_avx2 : NAME##_sse2)(src, p, step, n);                             \
}
CYC_LINE_TO_DOUBLE_AT(cyc_u8_to_double, uint8_t)
CYC_LINE_TO_DOUBLE_AT(cyc_i8_to_double, int8_t)
CYC_LINE_TO_DOUBLE_AT(cyc_u16_to_double, uint16_t)
CYC_LINE_TO_DOUBLE_AT(cyc_i16_to_double, int16_t)
#define CYC_LINE_RUNNING_AT(NAME, T)                                                  \
static inline void NAME(const T *enter, double enter_fill, const T *leave,           \
                        double leave_fill, ptrdiff_t step, double *total, ptrdiff_t n, \
                        int avx2)                                                    \
{                                                                                    \
    (avx2 ? NAME##_avx2 : NAME##_sse2)(enter, enter_fill, leave, leave_fill, step, total, n); \
}
#define CYC_LINE_FROM_SCALED_AT(NAME, T)                                              \
static inline void NAME(const double *src, double r, T *p, ptrdiff_t step, ptrdiff_t n, \
                        int avx2)                                                    \
{                                                                                    \
    (avx2 ? NAME##_avx2 : NAME##_sse2)(src, r, p, step, n);                          \
}
#define CYC_WINDOW_MEANS_AT(NAME, T)                                                  \
static inline void NAME(const uint32_t *prefix, ptrdiff_t size, double r, T *p,      \
                        ptrdiff_t step, ptrdiff_t n, int avx2)                       \
{                                                                                    \
    (avx2 ? NAME##_avx2 : NAME##_sse2)(prefix, size, r, p, step, n);                 \
}
CYC_WINDOW_MEANS_AT(cyc_window_means_u8, uint8_t)
CYC_WINDOW_MEANS_AT(cyc_window_means_i8, int8_t)
CYC_WINDOW_MEANS_AT(cyc_window_means_u16, uint16_t)
CYC_WINDOW_MEANS_AT(cyc_window_means_i16, int16_t)
CYC_WINDOW_MEANS_AT(cyc_window_means_i32, int32_t)
CYC_LINE_RUNNING_AT(cyc_u8_running, uint8_t)
CYC_LINE_RUNNING_AT(cyc_i8_running, int8_t)
CYC_LINE_RUNNING_AT(cyc_u16_running, uint16_t)
CYC_LINE_RUNNING_AT(cyc_i16_running, int16_t)
CYC_LINE_FROM_SCALED_AT(cyc_scaled_to_u8, uint8_t)
CYC_LINE_FROM_SCALED_AT(cyc_scaled_to_i8, int8_t)
CYC_LINE_FROM_SCALED_AT(cyc_scaled_to_u16, uint16_t)
CYC_LINE_FROM_SCALED_AT(cyc_scaled_to_i16, int16_t)
CYC_LINE_FROM_SCALED_AT(cyc_scaled_to_i32, int32_t)
CYC_LINE_FROM_DOUBLE_AT(cyc_double_to_u8, uint8_t)
CYC_LINE_FROM_DOUBLE_AT(cyc_double_to_i8, int8_t)
CYC_LINE_FROM_DOUBLE_AT(cyc_double_to_u16, uint16_t)
CYC_LINE_FROM_DOUBLE_AT(cyc_double_to_i16, int16_t)
CYC_LINE_FROM_DOUBLE_AT(cyc_double_to_i32, int32_t)

#if !CYC_EXACT_HAVE_AVX2
#define cyc_exact_line_avx2 cyc_exact_line_sse2
#define cyc_exact_1d_avx2 cyc_exact_1d_sse2
#define cyc_exact_1d_lanes_avx2 cyc_exact_1d_lanes_sse2
#define cyc_divide_avx2 cyc_divide_sse2
#define cyc_scale_avx2 cyc_scale_sse2
#endif

#endif
