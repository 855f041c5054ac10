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

#if !CYC_EXACT_HAVE_AVX2
#define cyc_exact_line_avx2 cyc_exact_line_sse2
#endif

#endif
