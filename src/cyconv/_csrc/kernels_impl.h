/* Kernel template, included by kernels.c once per (element type, level).
 *
 * Expects: T (float or double), SFX (f32/f64), ISA (name token), SHIFTS
 * (see kernels.c), TARGET (function attribute or empty), VBYTES (vector
 * size in bytes, 0 for plain scalar C), PT (pixels per blocked tile).
 * Vectors use the GCC/Clang vector extension, so one source serves SSE2,
 * AVX2, AVX-512 and NEON; the compiler fuses a*b+c into FMA where the target
 * has it (no -ffast-math: every other rounding is the plain C one).
 */
/* acc + a*b rounded like the vector code of this level: one fused
 * rounding where the level has FMA (the compiler fuses the vector
 * multiply-adds there), two roundings elsewhere. */
#if HAS_FMA
#define MADD(a, b, acc) (sizeof(T) == 4 ? __builtin_fmaf((a), (b), (acc)) \
                                        : __builtin_fma((a), (b), (acc)))
#else
#define MADD(a, b, acc) ((acc) + (a) * (b))
#endif
#define CAT4_(a, b, c, d) a##_##b##_##c##_##d
#define CAT4(a, b, c, d) CAT4_(a, b, c, d)
#define FN(name) CAT4(cyc, name, SFX, ISA)

#if VBYTES
#define VW ((cyc_index)(VBYTES / sizeof(T)))
typedef T CAT4(vec, T, ISA, SFX) __attribute__((vector_size(VBYTES)));
#define VEC CAT4(vec, T, ISA, SFX)
/* Unaligned load/store through memcpy: compiles to one vector move. */
#define VLOAD(dst, p) memcpy(&(dst), (p), sizeof(VEC))
/* The same load as a value (an element-aligned vector type), so arrays of
 * loaded vectors stay in registers when their loops are fully unrolled. */
typedef T CAT4(vecu, T, ISA, SFX) __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));
#define VLOADU(p) (*(const CAT4(vecu, T, ISA, SFX) *)(p))
#define VSTORE(p, src) memcpy((p), &(src), sizeof(VEC))
/* Splat a scalar: x - 0 is exactly x for every x (x + 0 is not, for -0.0),
 * so the compiler drops the subtraction and emits a single broadcast. */
#define VSPLAT(x) ((x) - (VEC){0})
/* A non-temporal store of a vector to a VBYTES-aligned p: written towards
 * memory past the caches, without first reading its line for ownership (a
 * third of the memory traffic of a result larger than the caches). x86
 * only (the caller fences with cyc_stream_fence); a plain store elsewhere. */
#if CYC_X86_INTRINSICS && VBYTES == 64
#define VSTREAM(p, src) (sizeof(T) == 4 ? _mm512_stream_ps((float *)(void *)(p), (__m512)(src)) \
                                        : _mm512_stream_pd((double *)(void *)(p), (__m512d)(src)))
#elif CYC_X86_INTRINSICS && VBYTES == 32
#define VSTREAM(p, src) (sizeof(T) == 4 ? _mm256_stream_ps((float *)(void *)(p), (__m256)(src)) \
                                        : _mm256_stream_pd((double *)(void *)(p), (__m256d)(src)))
#elif CYC_X86_INTRINSICS && VBYTES == 16
#define VSTREAM(p, src) (sizeof(T) == 4 ? _mm_stream_ps((float *)(void *)(p), (__m128)(src)) \
                                        : _mm_stream_pd((double *)(void *)(p), (__m128d)(src)))
#else
#define VSTREAM(p, src) VSTORE(p, src)
#endif
/* Do a block's stores stream? Where the caller asks (CYC_ROWS_STREAM in
 * flags) and they fill whole cache lines: `out` 64-byte aligned, rows `os`
 * elements apart a multiple of 64 bytes, `nv` vectors a row a multiple of 64
 * bytes (partly written lines would leave write-combining buffers half full). */
#define STREAMS(flags, out, os, nv)                                              \
    (((flags) & CYC_ROWS_STREAM)                                                 \
     && ((((size_t)(out)) | (size_t)((os) * sizeof(T)) | (size_t)((nv) * VBYTES)) & 63) == 0)
/* acc[k * nv + v] into output row k, vector v (k < tr, v < nv), by `store`. */
#define STORE_ROWS(store, out, os, tr, nv, acc)                                  \
    do {                                                                         \
        _Pragma("GCC unroll 16")                                                 \
        for (int k = 0; k < (tr); k++)                                           \
            _Pragma("GCC unroll 24")                                             \
            for (int v = 0; v < (nv); v++)                                       \
                store((out) + k * (os) + v * VW, (acc)[k * (nv) + v]);           \
    } while (0)
#endif

TARGET static void FN(spatial_row)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                   cyc_index C, cyc_index R, cyc_index S,
                                   const T *w, T *out, cyc_index width)
{
    cyc_index x = 0;
#if VBYTES
    /* Four vectors of outputs per pass keep four independent accumulators. */
    for (; x + 4 * VW <= width; x += 4 * VW) {
        VEC a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        const T *wk = w;
        for (cyc_index c = 0; c < C; c++) {
            for (cyc_index r = 0; r < R; r++) {
                const T *p = in + c * cs + r * rs + x;
                for (cyc_index s = 0; s < S; s++, wk++) {
                    VEC wv = VSPLAT(*wk), v0, v1, v2, v3;
                    const T *q = p + s * ds;
                    VLOAD(v0, q); VLOAD(v1, q + VW); VLOAD(v2, q + 2 * VW); VLOAD(v3, q + 3 * VW);
                    a0 += wv * v0; a1 += wv * v1; a2 += wv * v2; a3 += wv * v3;
                }
            }
        }
        VSTORE(out + x, a0); VSTORE(out + x + VW, a1);
        VSTORE(out + x + 2 * VW, a2); VSTORE(out + x + 3 * VW, a3);
    }
    /* The last vector moved back over outputs already done (to the same
     * bits) rather than the rest one by one. */
    for (; x < width && width >= VW; x += VW) {
        cyc_index xb = x + VW <= width ? x : width - VW;
        VEC a0 = {0};
        const T *wk = w;
        for (cyc_index c = 0; c < C; c++) {
            for (cyc_index r = 0; r < R; r++) {
                const T *p = in + c * cs + r * rs + xb;
                for (cyc_index s = 0; s < S; s++, wk++) {
                    VEC wv = VSPLAT(*wk), v0;
                    VLOAD(v0, p + s * ds);
                    a0 += wv * v0;
                }
            }
        }
        VSTORE(out + xb, a0);
    }
#endif
    for (; x < width; x++) {
        /* The same rounding as the vector lanes (fused where they fuse), so a
         * pixel's value does not depend on where its row starts or ends. */
        T acc = 0;
        const T *wk = w;
        for (cyc_index c = 0; c < C; c++)
            for (cyc_index r = 0; r < R; r++)
                for (cyc_index s = 0; s < S; s++, wk++)
                    acc = MADD(*wk, in[c * cs + r * rs + s * ds + x], acc);
        out[x] = acc;
    }
}

#if VBYTES
#if SHIFTS
/* Vectors a row block of S taps reads past its nv vectors. */
#define SHIFT_EXTRA(S) (((S) - 1 + VW - 1) / VW)

/* Lanes s .. s + VW - 1 of the pair lo:hi (valignd / valignq; s a constant
 * once inlined, 0 <= s <= VW). */
TARGET static inline __attribute__((always_inline)) VEC
FN(lanes_shifted)(VEC lo, VEC hi, int s)
{
    if (s == 0)
        return lo;
    if (s == VW)
        return hi;
    if (sizeof(T) == 4)
        return (VEC)_mm512_alignr_epi32((__m512i)hi, (__m512i)lo, s);
    return (VEC)_mm512_alignr_epi64((__m512i)hi, (__m512i)lo, s);
}

/* The first n lanes at p (the others zero), reading nothing past them: a
 * masked load, which suppresses faults on the masked-off lanes. */
TARGET static inline __attribute__((always_inline)) VEC FN(load_first)(const T *p, int n)
{
    if (sizeof(T) == 4)
        return (VEC)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
    return (VEC)_mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p);
}

/* The even lanes of the pair lo:hi (vpermt2ps / vpermt2pd). */
TARGET static inline __attribute__((always_inline)) VEC FN(even_lanes)(VEC lo, VEC hi)
{
    if (sizeof(T) == 4)
        return (VEC)_mm512_permutex2var_ps(
            (__m512)lo, _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
            (__m512)hi);
    return (VEC)_mm512_permutex2var_pd((__m512d)lo, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0),
                                       (__m512d)hi);
}

/* Lanes of the pair a:b picked by idx (vpermt2ps / vpermt2pd). */
TARGET static inline __attribute__((always_inline)) VEC FN(pick_lanes)(VEC a, __m512i idx, VEC b)
{
    if (sizeof(T) == 4)
        return (VEC)_mm512_permutex2var_ps((__m512)a, idx, (__m512)b);
    return (VEC)_mm512_permutex2var_pd((__m512d)a, idx, (__m512d)b);
}

/* The rows r[0 .. VW-1] of a VW x VW block transposed in place: log2(VW)
 * rounds, each zipping row i with row i + VW/2 into rows 2i and 2i + 1 (a
 * perfect shuffle of the index bits; the rounds swap row and lane). */
TARGET static inline __attribute__((always_inline)) void FN(transpose_block)(VEC *r)
{
    const __m512i lo = sizeof(T) == 4
        ? _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0)
        : _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i hi = sizeof(T) == 4
        ? _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8)
        : _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
#pragma GCC unroll 4
    for (int round = 1; round < VW; round *= 2) {
        VEC t[VW];
#pragma GCC unroll 8
        for (int i = 0; i < VW / 2; i++) {
            t[2 * i] = FN(pick_lanes)(r[i], lo, r[i + VW / 2]);
            t[2 * i + 1] = FN(pick_lanes)(r[i], hi, r[i + VW / 2]);
        }
#pragma GCC unroll 16
        for (int i = 0; i < VW; i++) r[i] = t[i];
    }
}

/* The first n lanes of v stored at p, nothing written past them. */
TARGET static inline __attribute__((always_inline)) void FN(store_first)(T *p, VEC v, int n)
{
    if (sizeof(T) == 4)
        _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
    else
        _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), (__m512d)v);
}

/* interleave.h's layout for a whole group of VW channels (kernels.h:
 * cyc_interleave_lanes), VW x VW blocks transposed in registers, the last
 * one masked: a quarter of the shuffles of its 4 x 4 blocks per value. */
TARGET static void FN(interleave_lanes)(const T *src, cyc_index cs, cyc_index n, T *dst)
{
    for (cyc_index j = 0; j < n; j += VW) {
        int m = n - j < VW ? (int)(n - j) : (int)VW;
        VEC r[VW];
#pragma GCC unroll 16
        for (int l = 0; l < VW; l++)
            r[l] = m == VW ? (VEC)VLOADU(src + l * cs + j) : FN(load_first)(src + l * cs + j, m);
        FN(transpose_block)(r);
#pragma GCC unroll 16
        for (int p = 0; p < VW; p++)
            if (p < m) VSTORE(dst + (j + p) * VW, r[p]);
    }
}

TARGET static void FN(deinterleave_lanes)(const T *src, cyc_index n, T *dst, cyc_index cs)
{
    for (cyc_index j = 0; j < n; j += VW) {
        int m = n - j < VW ? (int)(n - j) : (int)VW;
        VEC r[VW];
#pragma GCC unroll 16
        for (int p = 0; p < VW; p++) r[p] = p < m ? (VEC)VLOADU(src + (j + p) * VW) : (VEC){0};
        FN(transpose_block)(r);
#pragma GCC unroll 16
        for (int l = 0; l < VW; l++) {
            if (m == VW)
                VSTORE(dst + l * cs + j, r[l]);
            else
                FN(store_first)(dst + l * cs + j, r[l], m);
        }
    }
}

/* VW columns from p, `step` apart (1, or 2 for every other column; a
 * constant once inlined): reads p[0 .. step * VW - 1]. */
TARGET static inline __attribute__((always_inline)) VEC FN(load_cols)(const T *p, int step)
{
    if (step == 1)
        return VLOADU(p);
    return FN(even_lanes)(VLOADU(p), VLOADU(p + VW));
}

/* The first n (<= VW) of those columns, the other lanes zero, reading
 * nothing past column n - 1 (p[(n - 1) * step]). Every other column, n <= 2
 * (the 3x3 rows' tail): a shuffle within 128 (float32) or 256 (float64)
 * bits instead of a permute across the vector, whose latency the 3x3 rows'
 * FMAs wait on (see feed_3x3). */
TARGET static inline __attribute__((always_inline)) VEC
FN(load_first_cols)(const T *p, int n, int step)
{
    if (step == 1)
        return FN(load_first)(p, n);
    int span = 2 * n - 1;   /* elements from the first column to the last */
    if (span <= 3) {
        VEC v = FN(load_first)(p, span);
        if (sizeof(T) == 4)
            return (VEC)_mm512_maskz_permute_ps((__mmask16)((1u << n) - 1), (__m512)v, 0x08);
        return (VEC)_mm512_maskz_permutex_pd((__mmask8)((1u << n) - 1), (__m512d)v, 0x08);
    }
    if (span <= VW)
        return FN(even_lanes)(FN(load_first)(p, span), (VEC){0});
    return FN(even_lanes)(VLOADU(p), FN(load_first)(p + VW, span - VW));
}
#endif
#endif

/* Kernels with fewer rows go through rows_unshared (measured: faster there). */
#define RB_MIN_R 4

#if VBYTES
/* Ask for `bytes` from `first` of n rows rs apart: the input rows the next
 * row block adds, one block of columns at a time. Hardware prefetchers stop
 * at 4 KB pages and a 1024-wide float32 row is one page, so without this each
 * row of an image not in cache starts with misses (measured, Zen 5, a
 * 1000^2 float32 image out of cache, row kernel alone: 3x3 1.4x, 5x5 1.6x,
 * 7x7 1.5x as fast; see CYC_ROWS_PREFETCH). n, bytes: rows and bytes that
 * exist. */
TARGET static inline __attribute__((always_inline)) void
FN(prefetch_rows)(const T *first, cyc_index rs, cyc_index n, const int bytes)
{
    for (cyc_index k = 0; k < n; k++)
#pragma GCC unroll 8
        for (int b = 0; b < bytes; b += 64)
            __builtin_prefetch((const char *)(first + k * rs) + b, 0, 3);
}
/* The input rows the row block after the one at t (of tr rows, nrows in
 * all) reads and that one does not: at most tr, none after the last. */
#define ROWS_AHEAD(t, tr, nrows) \
    ((nrows) - (t) - (tr) < (tr) ? ((nrows) - (t) - (tr) > 0 ? (nrows) - (t) - (tr) : 0) : (tr))
/* Do blocks of tr rows of a C-channel R-row kernel prefetch, given the
 * flags? Single-channel ones only (prefetch_rows asks for one plane), and
 * not where their new rows are under a third of the tr + R - 1 they read:
 * the others come from L2 (measured, a 4096^2 float64 image down 25 taps
 * in 8-row blocks: 0.92x with prefetches; 11x11 in 6-8 rows: 1.09-1.14x). */
#define PREFETCHES(flags, C, R, tr) \
    (((flags) & CYC_ROWS_PREFETCH) && (C) == 1 && (R) < 2 * (tr))
#endif

#if VBYTES
/* Input row q (kernel row j - k for output row k) into the accumulators of
 * output rows k0..k1: the nv vectors at each column offset s are loaded once
 * and serve every one of those rows. */
#define ROWS_STEP(q, j, k0, k1)                                                  \
    for (cyc_index s = 0; s < S; s++) {                                          \
        VEC xv[RB_REGS];                                                          \
        _Pragma("GCC unroll 24")                                                 \
        for (int v = 0; v < nv; v++) xv[v] = VLOADU((q) + s + v * VW);           \
        _Pragma("GCC unroll 16")                                                 \
        for (int k = (k0); k <= (k1); k++) {                                     \
            VEC wv = VSPLAT(wc[((j) - k) * S + s]);                              \
            _Pragma("GCC unroll 24")                                             \
            for (int v = 0; v < nv; v++) acc[k * nv + v] += wv * xv[v];                \
        }                                                                        \
    }

#if SHIFTS
/* ROWS_STEP with the shifted vectors made in registers: nv + SHIFT_EXTRA(S)
 * loads an input row instead of S * nv, the last one masked to the columns
 * the block reads past the others (S - 1 <= 2 VW). The row's columns are
 * `shifted` elements apart (1, or 2 for every other column). Per
 * accumulator the same products in the same order. */
#define ROWS_STEP_SHIFTED(q, j, k0, k1)                                          \
    {                                                                            \
        VEC base[RB_REGS];                                                       \
        const T *wj = wc + (j) * S;                                              \
        /* Opaque, or GCC keeps all R * S broadcasts live across the steps    \
         * (S is a constant here) and spills the accumulators. */             \
        __asm__("" : "+r"(wj));                                                  \
        _Pragma("GCC unroll 24")                                                 \
        for (int v = 0; v < nv + SHIFT_EXTRA(S) - 1; v++)                        \
            base[v] = FN(load_cols)((q) + v * VW * shifted, shifted);            \
        base[nv + SHIFT_EXTRA(S) - 1] = FN(load_first_cols)(                     \
            (q) + (nv + SHIFT_EXTRA(S) - 1) * VW * shifted,                      \
            S - 1 - (SHIFT_EXTRA(S) - 1) * VW, shifted);                         \
        _Pragma("GCC unroll 16")                                                 \
        for (int s = 0; s < S; s++) {                                            \
            VEC xv[RB_REGS];                                                     \
            _Pragma("GCC unroll 24")                                             \
            for (int v = 0; v < nv; v++)                                         \
                xv[v] = FN(lanes_shifted)(base[v + s / VW], base[v + s / VW + 1], s % VW); \
            _Pragma("GCC unroll 16")                                             \
            for (int k = (k0); k <= (k1); k++) {                                 \
                VEC wv = VSPLAT(wj[s - k * S]);                                  \
                _Pragma("GCC unroll 24")                                         \
                for (int v = 0; v < nv; v++) acc[k * nv + v] += wv * xv[v];      \
            }                                                                    \
        }                                                                        \
    }
#else
#define ROWS_STEP_SHIFTED ROWS_STEP
#endif
/* The step rows_block's `shifted` (a constant once inlined) asks for. */
#define ANY_ROWS_STEP(q, j, k0, k1)                                              \
    if (shifted) ROWS_STEP_SHIFTED(q, j, k0, k1) else ROWS_STEP(q, j, k0, k1)

/* The same with the taps transposed (tmajor): kernel column s (< S) steps
 * down the rows and kernel row r (< R) along the row, weights laid out
 * S x R, wc[s * R + r] (a column-major image read as its transpose, with
 * its row-major kernel). The input row loop goes inside the column offset
 * loop, so per pixel the sum runs in (c, s, r) order: that of spatial_row
 * reading the transpose with unit row stride and column stride rs. */
#define TROWS_STEP(q, j, k0, k1)                                                 \
    {                                                                            \
        VEC xv[RB_REGS];                                                         \
        const T *wj = wc + s * R + (j);                                          \
        /* Opaque, or GCC sees that row k's weight is row k+1's at the next     \
         * j, keeps tr-1 broadcasts alive across steps and spills (measured:    \
         * half speed). */                                                      \
        __asm__("" : "+r"(wj));                                                  \
        _Pragma("GCC unroll 24")                                                 \
        for (int v = 0; v < nv; v++) xv[v] = VLOADU((q) + v * VW);               \
        _Pragma("GCC unroll 16")                                                 \
        for (int k = (k0); k <= (k1); k++) {                                     \
            VEC wv = VSPLAT(wj[-k]);                                             \
            _Pragma("GCC unroll 24")                                             \
            for (int v = 0; v < nv; v++) acc[k * nv + v] += wv * xv[v];          \
        }                                                                        \
    }

/* A block of `tr` output rows x `nv` vectors of columns (constants once
 * inlined; tr <= min(TR, R), nv <= TV), register-blocked: the block's
 * tr + R - 1 input rows are walked once and each loaded vector feeds every
 * output row whose window holds it, so a load serves up to tr FMAs instead
 * of one and a weight broadcast serves nv. The rows split so that which
 * output rows an input row feeds is known at compile time: the first tr - 1
 * feed rows 0..j, the middle ones all rows, the last tr - 1 rows past jj.
 * Per pixel the sum still runs in (c, r, s) order from zero (for output row
 * k, r = j - k grows with j), so results are bitwise those of spatial_row.
 * shifted (a constant once inlined): 0 loads each shifted vector; 1 makes
 * them in registers (SHIFTS only); 2 does too, the input's columns then
 * being every other element (a column-strided view). */
TARGET static inline __attribute__((always_inline)) void
FN(rows_block)(const T *in, cyc_index cs, cyc_index rs, cyc_index C, cyc_index R,
               cyc_index S, const T *w, T *out, cyc_index os, const int tr, const int nv,
               const int tmajor, const int shifted, int flags)
{
    VEC acc[RB_ACCS];   /* acc[k * nv + v]: output row k, vector v */
#pragma GCC unroll 32
    for (int i = 0; i < tr * nv; i++) acc[i] = (VEC){0};
    for (cyc_index c = 0; c < C; c++) {
        const T *wc = w + c * R * S;
        const T *ic = in + c * cs;
        /* Hide wc from the optimizer: it would hoist the weight broadcasts
         * out of the caller's column loop and spill the accumulators. */
        __asm__("" : "+r"(wc));
        if (tmajor) {
            for (cyc_index s = 0; s < S; s++) {
                const T *is = ic + s;
#pragma GCC unroll 16
                for (int j = 0; j < tr - 1; j++)
                    TROWS_STEP(is + j * rs, j, 0, j)
                for (cyc_index j = tr - 1; j < R; j++)
                    TROWS_STEP(is + j * rs, j, 0, tr - 1)
#pragma GCC unroll 16
                for (int jj = 0; jj < tr - 1; jj++)
                    TROWS_STEP(is + (R + jj) * rs, R + jj, jj + 1, tr - 1)
            }
            continue;
        }
#pragma GCC unroll 16
        for (int j = 0; j < tr - 1; j++)
            ANY_ROWS_STEP(ic + j * rs, j, 0, j)
        for (cyc_index j = tr - 1; j < R; j++)
            ANY_ROWS_STEP(ic + j * rs, j, 0, tr - 1)
#pragma GCC unroll 16
        for (int jj = 0; jj < tr - 1; jj++)
            ANY_ROWS_STEP(ic + (R + jj) * rs, R + jj, jj + 1, tr - 1)
    }
    /* (one test a block: a test a store made GCC spill the accumulators) */
    if (STREAMS(flags, out, os, nv))
        STORE_ROWS(VSTREAM, out, os, tr, nv, acc);
    else
        STORE_ROWS(VSTORE, out, os, tr, nv, acc);
}
#undef ROWS_STEP
#undef ROWS_STEP_SHIFTED
#undef ANY_ROWS_STEP
#undef TROWS_STEP

#if SHIFTS
/* rows_block for a single-channel kernel with the taps transposed, its
 * shifted vectors made in registers (R, S, tr, nv constants once inlined).
 * The sum runs column offset first, so a shifted vector serves one offset
 * s only: all tr + R - 1 input rows stay loaded through the block (nv +
 * SHIFT_EXTRA(S) vectors each, the last masked to the columns read past
 * the others) and each offset shifts every row once. Per accumulator the
 * products of TROWS_STEP in its order: s outer, r = t - k ascending. */
TARGET static inline __attribute__((always_inline)) void
FN(rows_block_t_shifted)(const T *in, cyc_index rs, const int R, const int S, const T *w,
                         T *out, cyc_index os, const int tr, const int nv, int flags)
{
    const int nb = nv + SHIFT_EXTRA(S);   /* loaded vectors per input row */
    VEC base[RB_REGS], acc[RB_ACCS];
#pragma GCC unroll 24
    for (int t = 0; t < tr + R - 1; t++) {
#pragma GCC unroll 4
        for (int v = 0; v < nb - 1; v++) base[t * nb + v] = VLOADU(in + t * rs + v * VW);
        base[t * nb + nb - 1] = FN(load_first)(in + t * rs + (nb - 1) * VW,
                                               S - 1 - (SHIFT_EXTRA(S) - 1) * VW);
    }
#pragma GCC unroll 32
    for (int i = 0; i < tr * nv; i++) acc[i] = (VEC){0};
#pragma GCC unroll 16
    for (int s = 0; s < S; s++) {
        const T *ws = w + s * R;
        /* Opaque, as in TROWS_STEP: else GCC keeps broadcasts live and spills. */
        __asm__("" : "+r"(ws));
#pragma GCC unroll 24
        for (int t = 0; t < tr + R - 1; t++) {
            VEC xv[4];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                xv[v] = FN(lanes_shifted)(base[t * nb + v + s / VW],
                                          base[t * nb + v + s / VW + 1], s % VW);
#pragma GCC unroll 16
            for (int k = t - R + 1 > 0 ? t - R + 1 : 0; k <= (t < tr - 1 ? t : tr - 1); k++) {
                VEC wv = VSPLAT(ws[t - k]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++) acc[k * nv + v] += wv * xv[v];
            }
        }
    }
    if (STREAMS(flags, out, os, nv))
        STORE_ROWS(VSTREAM, out, os, tr, nv, acc);
    else
        STORE_ROWS(VSTORE, out, os, tr, nv, acc);
}

/* nrows x width outputs (nrows >= tr, width >= nv vectors) of
 * rows_block_t_shifted blocks, the last block of rows or columns moved back
 * to end at the edge (recomputing a few outputs to the same bits). */
TARGET static inline __attribute__((always_inline)) void
FN(rows_all_t_shifted)(const T *in, cyc_index rs, const int R, const int S, const T *w,
                       T *out, cyc_index os, cyc_index width, cyc_index nrows, const int tr,
                       const int nv, int flags)
{
    for (cyc_index t = 0; t < nrows; t += tr) {
        cyc_index tb = t + tr <= nrows ? t : nrows - tr;
        cyc_index ahead = PREFETCHES(flags, 1, R, tr) ? ROWS_AHEAD(tb, tr, nrows) : 0;
        for (cyc_index x = 0; x < width; x += nv * VW) {
            cyc_index xb = x + nv * VW <= width ? x : width - nv * VW;
            FN(rows_block_t_shifted)(in + tb * rs + xb, rs, R, S, w, out + tb * os + xb, os,
                                     tr, nv, flags);
            FN(prefetch_rows)(in + (tb + tr + R - 1) * rs + xb, rs, ahead, nv * VBYTES);
        }
    }
}

/* rows_all_t_shifted for single-channel R x S kernels, R != S, both 3, 5
 * or 7 (nrows >= 5, width >= 2 vectors): each R with the blocks of the
 * square kernel of R rows, in registers as many (its loaded rows and
 * accumulators; S only sets the shifts). A function of its own, like the
 * row-major rect_rows. */
TARGET static __attribute__((noinline)) void
FN(rect_rows_t)(const T *in, cyc_index rs, cyc_index R, cyc_index S, const T *w, T *out,
                cyc_index os, cyc_index width, cyc_index nrows, int flags)
{
#define RECT_T(R, S, tr, nv) \
    FN(rows_all_t_shifted)(in, rs, R, S, w, out, os, width, nrows, tr, nv, flags)
    switch (R * 8 + S) {
    case 3 * 8 + 5: RECT_T(3, 5, 4, 2); return;
    case 3 * 8 + 7: RECT_T(3, 7, 4, 2); return;
    case 5 * 8 + 3: RECT_T(5, 3, 5, 1); return;
    case 5 * 8 + 7: RECT_T(5, 7, 5, 1); return;
    case 7 * 8 + 3: RECT_T(7, 3, 5, 1); return;
    default: RECT_T(7, 5, 5, 1); return;
    }
#undef RECT_T
}
#endif

/* Vectors of columns per block of tr rows: as many as fit, tr * nv
 * accumulators, nv inputs and a weight in RB_REGS registers, at most
 * RB_ACCS accumulators; shifted blocks also hold nv + SHIFT_EXTRA(S)
 * loaded vectors. */
#define RB_NV_LOADED(tr) \
    (RB_ACCS / (tr) < (RB_REGS - 1) / ((tr) + 1) ? RB_ACCS / (tr) : (RB_REGS - 1) / ((tr) + 1))
#if SHIFTS
#define RB_NV_SHIFTED(tr, S) ((RB_REGS - 1 - SHIFT_EXTRA(S)) / ((tr) + 2))
#define RB_NV(tr, S, shifted)                                                  \
    ((shifted) && RB_NV_SHIFTED(tr, S) < RB_NV_LOADED(tr) ? RB_NV_SHIFTED(tr, S) \
                                                          : RB_NV_LOADED(tr))
#else
#define RB_NV(tr, S, shifted) RB_NV_LOADED(tr)
#endif

/* Output rows t0 <= t < t0 + tr (tr a constant once inlined) across the
 * width in blocks of nv vectors; the last block is moved back to end at
 * the row's end and recomputes a few pixels (to the same bits) rather than
 * running a narrower copy. Rows narrower than nv vectors go one vector at a
 * time, and rows narrower than one vector through spatial_row (not with
 * shifted == 2, whose callers pass at least one vector). A strip of full
 * blocks asks for the `ahead` input rows after its own (prefetch_rows;
 * single-channel kernels only, see PREFETCHES) as it goes. */
TARGET static inline __attribute__((always_inline)) void
FN(rows_strip)(const T *in, cyc_index cs, cyc_index rs, cyc_index C, cyc_index R,
               cyc_index S, const T *w, T *out, cyc_index os, cyc_index width, const int tr,
               const int tmajor, const int shifted, int flags, cyc_index ahead)
{
    const int nv = RB_NV(tr, S, shifted);
    const int step = shifted == 2 ? 2 : 1;   /* elements between input columns */
    if (width >= nv * VW) {
        for (cyc_index x = 0; x < width; x += nv * VW) {
            cyc_index xb = x + nv * VW <= width ? x : width - nv * VW;
            FN(rows_block)(in + xb * step, cs, rs, C, R, S, w, out + xb, os, tr, nv, tmajor,
                           shifted, flags);
            FN(prefetch_rows)(in + (R - 1 + tr) * rs + xb * step, rs, ahead,
                              nv * VBYTES * step);
        }
    } else if (width >= VW) {
        for (cyc_index x = 0; x < width; x += VW) {
            cyc_index xb = x + VW <= width ? x : width - VW;
            FN(rows_block)(in + xb * step, cs, rs, C, R, S, w, out + xb, os, tr, 1, tmajor,
                           shifted, flags);
        }
    } else {
        for (int k = 0; k < tr; k++)
            if (tmajor)
                FN(spatial_row)(in + k * rs, cs, 1, rs, C, S, R, w, out + k * os, width);
            else
                FN(spatial_row)(in + k * rs, cs, rs, 1, C, R, S, w, out + k * os, width);
    }
}

/* All nrows rows, tr at a time; the last block moved back like the columns.
 * With CYC_ROWS_PREFETCH, single-channel blocks ask for the next block's new
 * input rows as they go. */
TARGET static inline __attribute__((always_inline)) void
FN(rows_all)(const T *in, cyc_index cs, cyc_index rs, cyc_index C, cyc_index R,
             cyc_index S, const T *w, T *out, cyc_index os, cyc_index width,
             cyc_index nrows, const int tr, const int tmajor, const int shifted, int flags)
{
    if (nrows < tr) {
        for (cyc_index t = 0; t < nrows; t++)
            FN(rows_strip)(in + t * rs, cs, rs, C, R, S, w, out + t * os, os, width, 1, tmajor,
                           shifted, flags, 0);
        return;
    }
    for (cyc_index t = 0; t < nrows; t += tr) {
        cyc_index tb = t + tr <= nrows ? t : nrows - tr;
        FN(rows_strip)(in + tb * rs, cs, rs, C, R, S, w, out + tb * os, os, width, tr, tmajor,
                       shifted, flags,
                       PREFETCHES(flags, C, R, tr) ? ROWS_AHEAD(tb, tr, nrows) : 0);
    }
}
#endif

#if VBYTES
/* tr output rows of nv (1 or 2) vectors, each FMA with its own unaligned
 * load; one weight broadcast serves tr * nv vectors. */
TARGET static inline __attribute__((always_inline)) void
FN(unshared_block)(const T *in, cyc_index cs, cyc_index rs, cyc_index C, cyc_index R,
                   cyc_index S, const T *w, T *out, cyc_index os, const int tr, const int nv,
                   int flags)
{
    VEC acc[TR * 2];   /* acc[k * nv + v]: output row k, vector v */
#pragma GCC unroll 16
    for (int i = 0; i < tr * nv; i++) acc[i] = (VEC){0};
    const T *wk = w;
    for (cyc_index c = 0; c < C; c++) {
        for (cyc_index r = 0; r < R; r++) {
            const T *p = in + c * cs + r * rs;
            for (cyc_index s = 0; s < S; s++, wk++) {
                VEC wv = VSPLAT(*wk);
#pragma GCC unroll 8
                for (int k = 0; k < tr; k++) {
#pragma GCC unroll 2
                    for (int v = 0; v < nv; v++) {
                        VEC x;
                        VLOAD(x, p + k * rs + s + v * VW);
                        acc[k * nv + v] += wv * x;
                    }
                }
            }
        }
    }
    if (STREAMS(flags, out, os, nv))
        STORE_ROWS(VSTREAM, out, os, tr, nv, acc);
    else
        STORE_ROWS(VSTORE, out, os, tr, nv, acc);
}

/* Rows t0 <= t < t1 (t1 >= tr) of nrows, width >= VW, in unshared blocks
 * of tr rows and two vectors (rows under two vectors wide: one), the last
 * block of each moved back over outputs already done (to the same bits). */
TARGET static inline __attribute__((always_inline)) void
FN(unshared_rows)(const T *in, cyc_index cs, cyc_index rs, cyc_index C, cyc_index R,
                  cyc_index S, const T *w, T *out, cyc_index os, cyc_index width,
                  cyc_index t0, cyc_index t1, cyc_index nrows, const int tr, int flags)
{
    const int nv = width >= 2 * VW ? 2 : 1;
    for (cyc_index t = t0; t < t1; t += tr) {
        cyc_index tb = t + tr <= t1 ? t : t1 - tr;
        cyc_index ahead = PREFETCHES(flags, C, R, tr) ? ROWS_AHEAD(tb, tr, nrows) : 0;
        for (cyc_index x = 0; x < width; x += nv * VW) {
            cyc_index xb = x + nv * VW <= width ? x : width - nv * VW;
            const T *p = in + tb * rs + xb;
            T *o = out + tb * os + xb;
            if (nv == 2)
                FN(unshared_block)(p, cs, rs, C, R, S, w, o, os, tr, 2, flags);
            else
                FN(unshared_block)(p, cs, rs, C, R, S, w, o, os, tr, 1, flags);
            FN(prefetch_rows)(in + (tb + tr + R - 1) * rs + xb, rs, ahead, nv * VBYTES);
        }
    }
}
#endif

/* Rows in blocks of TR, the rest in blocks of 4, for kernels of fewer than
 * RB_MIN_R rows, whose short rows_block blocks are all head and tail. Rows
 * under two vectors wide and the columns and rows past the last whole
 * block went one row at a time before, the columns past the last vector
 * one by one (Zen 5, AVX-512, float32 3x3 planes: 28 wide 10 -> 56
 * GFLOP/s, 20 wide 19 -> 35; a 7 x 7 output computed 16 wide 1.3x). */
TARGET static void FN(rows_unshared)(const T *in, cyc_index cs, cyc_index rs,
                                     cyc_index C, cyc_index R, cyc_index S,
                                     const T *w, T *out, cyc_index os,
                                     cyc_index width, cyc_index nrows, int flags)
{
#if VBYTES
    if (width >= VW && nrows >= 4) {
        cyc_index full = nrows / TR * TR;
        if (full)
            FN(unshared_rows)(in, cs, rs, C, R, S, w, out, os, width, 0, full, nrows, TR,
                              flags);
        if (full < nrows)
            FN(unshared_rows)(in, cs, rs, C, R, S, w, out, os, width, full, nrows, nrows, 4,
                              flags);
        return;
    }
#endif
    for (cyc_index t = 0; t < nrows; t++)
        FN(spatial_row)(in + t * rs, cs, rs, 1, C, R, S, w, out + t * os, width);
}

#if VBYTES

/* The base vectors of input row q that a 3x3 row's shifted vectors are cut
 * from: its two vectors of columns and the two columns past them (columns
 * `step` elements apart). */
#if SHIFTS
TARGET static inline __attribute__((always_inline)) void
FN(base_3x3)(const T *q, VEC x[3], const int step)
{
    x[0] = FN(load_cols)(q, step);
    x[1] = FN(load_cols)(q + VW * step, step);
    x[2] = FN(load_first_cols)(q + 2 * VW * step, 2, step);
}
#endif

/* Input row j (of in, rows rs apart) into the 3x3 accumulators of three
 * output rows, two vectors wide: `fin` gets kernel row 2 (its last), `mid`
 * row 1, `start` row 0 (from zero); the flags (constants once inlined) drop
 * rows that do not exist. Each shifted vector (xs[s][v] holds columns
 * s + v * VW ...) is made once for all three rows; per pixel the sum runs
 * in (r, s) order from zero, as spatial_row's.
 * With SHIFTS the shifts are four valignd from row j's base vectors x
 * (base_3x3) rather than six loads, each of which splits a cache line on
 * Zen 4; x then takes row j + 1's (has_next), loaded before row j's FMAs
 * so that those do not wait on the loads' and permutes' latency (Zen 4,
 * row kernel alone, 256^2 in L2: float32 107 -> 111 GFLOP/s, float64 53
 * -> 54; every other column read in place, with load_first_cols' shuffle,
 * 83 -> 92 and 40 -> 43.5). The values are the same. */
TARGET static inline __attribute__((always_inline)) void
FN(feed_3x3)(const T *in, cyc_index rs, cyc_index j, VEC x[3], const VEC *wv, VEC *fin,
             VEC *mid, VEC *start, const int has_fin, const int has_mid, const int has_start,
             const int has_next, const int step)
{
    VEC xs[3][2];
#if SHIFTS
#pragma GCC unroll 3
    for (int s = 0; s < 3; s++) {
        xs[s][0] = FN(lanes_shifted)(x[0], x[1], s);
        xs[s][1] = FN(lanes_shifted)(x[1], x[2], s);
    }
    if (has_next)
        FN(base_3x3)(in + (j + 1) * rs, x, step);
#else
    (void)x, (void)has_next, (void)step;
#pragma GCC unroll 3
    for (int s = 0; s < 3; s++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) xs[s][v] = VLOADU(in + j * rs + s + v * VW);
#endif
    if (has_start) {
        start[0] = (VEC){0};
        start[1] = (VEC){0};
    }
#pragma GCC unroll 3
    for (int s = 0; s < 3; s++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) {
            if (has_fin) fin[v] += wv[6 + s] * xs[s][v];
            if (has_mid) mid[v] += wv[3 + s] * xs[s][v];
            if (has_start) start[v] += wv[s] * xs[s][v];
        }
}

/* Two vectors of an output row, streamed where nt says so. */
#define STORE2(o, acc, nt)                                                       \
    do {                                                                         \
        if (nt) { VSTREAM((o), (acc)[0]); VSTREAM((o) + VW, (acc)[1]); }         \
        else { VSTORE((o), (acc)[0]); VSTORE((o) + VW, (acc)[1]); }              \
    } while (0)

/* n output rows (a multiple of 3) of a single-channel 3x3 correlation by
 * two vectors of columns, walking down the rows: each input row is loaded
 * once (three shifted loads per vector; with SHIFTS, three loads and four
 * valignd) and feeds the three output rows whose windows hold it, with the
 * nine weights in registers and no broadcasts. Output row o lives in
 * accumulator set o % 3 (a, b, c), so the rotation repeats every three
 * input rows. With ahead, input row j also asks for row j + n + 2, which
 * the next walk down reads (a loop of prefetches after the walk, as the
 * other row blocks have, took the registers the walk's addresses need:
 * -10 % in cache).
 * Six-row walks beat three-row blocks (Zen 5, row kernel alone, 1024^2
 * float32 in cache: 177 -> 196 GFLOP/s); in a C harness longer walks lost
 * at a 4096-byte pitch (12 rows 0.88x six), where the input and output
 * rows fill the few L1 sets they map to. */
TARGET static inline __attribute__((always_inline)) void
FN(walk_3x3)(const T *in, cyc_index rs, const VEC *wv, T *out, cyc_index os, const int n,
             const int step, const int nt, int ahead)
{
    VEC a[2], b[2], c[2], x[3];
    /* Rows the next walk adds, two (step 1) or four (step 2) lines of each. */
#define WALK_AHEAD(j)                                                                \
    do {                                                                             \
        if (ahead)                                                                   \
            FN(prefetch_rows)(in + ((j) + n + 2) * rs, rs, 1, 2 * VBYTES * step);  \
    } while (0)
#if SHIFTS
    FN(base_3x3)(in, x, step);
#endif
    FN(feed_3x3)(in, rs, 0, x, wv, c, c, a, 0, 0, 1, 1, step);
    WALK_AHEAD(0);
    FN(feed_3x3)(in, rs, 1, x, wv, c, a, b, 0, 1, 1, 1, step);
    WALK_AHEAD(1);
    /* input rows j, j+1, j+2 finish output rows j-2, j-1, j */
    int j = 2;
#pragma GCC unroll 4
    for (; j < n - 1; j += 3) {
        FN(feed_3x3)(in, rs, j, x, wv, a, b, c, 1, 1, 1, 1, step);
        STORE2(out + (j - 2) * os, a, nt);
        WALK_AHEAD(j);
        FN(feed_3x3)(in, rs, j + 1, x, wv, b, c, a, 1, 1, 1, 1, step);
        STORE2(out + (j - 1) * os, b, nt);
        WALK_AHEAD(j + 1);
        FN(feed_3x3)(in, rs, j + 2, x, wv, c, a, b, 1, 1, 1, 1, step);
        STORE2(out + j * os, c, nt);
        WALK_AHEAD(j + 2);
    }
    FN(feed_3x3)(in, rs, j, x, wv, a, b, c, 1, 1, 1, 1, step);
    STORE2(out + (j - 2) * os, a, nt);
    WALK_AHEAD(j);
    FN(feed_3x3)(in, rs, j + 1, x, wv, b, c, a, 1, 1, 0, 1, step);
    STORE2(out + (j - 1) * os, b, nt);
    FN(feed_3x3)(in, rs, j + 2, x, wv, c, a, b, 1, 0, 0, 0, step);
    STORE2(out + j * os, c, nt);
#undef WALK_AHEAD
}
#undef STORE2

/* Three rows of walk_3x3 with the taps transposed (see spatial_rows_t): the six
 * accumulators live through the block and each kernel column s walks the
 * five input rows, so per pixel the sum runs in (s, r) order. */
TARGET static inline __attribute__((always_inline)) void
FN(three_rows_3x3_t)(const T *in, cyc_index rs, const VEC *wv, T *out, cyc_index os, int nt)
{
    VEC acc[3 * 2];   /* acc[k * 2 + v]: output row k, vector v */
#pragma GCC unroll 3
    for (int k = 0; k < 3; k++) acc[k * 2] = acc[k * 2 + 1] = (VEC){0};
#pragma GCC unroll 3
    for (int s = 0; s < 3; s++)
#pragma GCC unroll 5
        for (int j = 0; j < 5; j++)
#pragma GCC unroll 2
            for (int v = 0; v < 2; v++) {
                VEC x = VLOADU(in + j * rs + s + v * VW);
#pragma GCC unroll 3
                for (int k = 0; k < 3; k++)
                    if (j - k >= 0 && j - k < 3) acc[k * 2 + v] += wv[s * 3 + j - k] * x;
            }
    if (nt)
        STORE_ROWS(VSTREAM, out, os, 3, 2, acc);
    else
        STORE_ROWS(VSTORE, out, os, 3, 2, acc);
}

/* nrows x width outputs of a single-channel 3x3 kernel (nrows >= 3,
 * width >= 2 vectors): walks of 6 rows (3 below 6) across the width two
 * vectors at a time; the last walk or block of columns is moved back to
 * end at the edge (recomputing a few outputs to the same bits). tmajor and
 * step (constants once inlined): the taps transposed, in blocks of three
 * rows, see spatial_rows_t; the input's columns `step` elements apart (2
 * with SHIFTS only, not tmajor). */
TARGET static inline __attribute__((always_inline)) void
FN(rows_3x3)(const T *in, cyc_index rs, const T *w, T *out, cyc_index os, cyc_index width,
             cyc_index nrows, const int tmajor, const int step, int flags)
{
    VEC wv[9];
    for (int i = 0; i < 9; i++) wv[i] = VSPLAT(w[i]);
    const cyc_index tr = tmajor || nrows < 6 ? 3 : 6;
    for (cyc_index t = 0; t < nrows; t += tr) {
        cyc_index tb = t + tr <= nrows ? t : nrows - tr;
        cyc_index ahead = PREFETCHES(flags, 1, 3, tr) ? ROWS_AHEAD(tb, tr, nrows) : 0;
        for (cyc_index x = 0; x < width; x += 2 * VW) {
            cyc_index xb = x + 2 * VW <= width ? x : width - 2 * VW;
            const T *q = in + tb * rs + xb * step;
            T *o = out + tb * os + xb;
            int nt = STREAMS(flags, o, os, 2);
            if (tr == 6) {
                /* (a last walk partly ahead asks for nothing) */
                int walk_ahead = (flags & CYC_ROWS_PREFETCH_WALKS) && ahead == 6;
                if (nt)
                    FN(walk_3x3)(q, rs, wv, o, os, 6, step, 1, walk_ahead);
                else
                    FN(walk_3x3)(q, rs, wv, o, os, 6, step, 0, walk_ahead);
                continue;
            }
            if (tmajor)
                FN(three_rows_3x3_t)(q, rs, wv, o, os, nt);
            else
                FN(walk_3x3)(q, rs, wv, o, os, 3, step, nt, 0);
            FN(prefetch_rows)(q + 5 * rs, rs, ahead, 2 * VBYTES * step);
        }
    }
}
#endif

#if VBYTES
/* Vectors per column walk of an R x 1 kernel, at most 4: R weights, R * NV
 * accumulators, the loaded vector (and a product, without FMA) and one
 * spare fit the registers (without the spare GCC spills). */
#define WALK_FREE (RB_REGS - 2 - !HAS_FMA)
#define WALK_NV(R) ((WALK_FREE - (R)) / (R) < 4 ? (WALK_FREE - (R)) / (R) : 4)

/* A single-channel R x 1 kernel (a column filter: the separable method's
 * second pass, 1-D filters down an axis), n output rows (a multiple of R)
 * by NV vectors, walking down the rows with the R weights in registers:
 * each input vector is loaded once and feeds the R output rows whose
 * windows hold it (1/R load per FMA, no broadcasts). Output row o lives in
 * accumulator o % R; input row j adds kernel row r to output row j - r, r
 * ascending, so per pixel the sum runs in r order from zero. R, NV are
 * constants once inlined, so every index below is one too. */
TARGET static inline __attribute__((always_inline)) void
FN(column_walk)(const T *in, cyc_index rs, const T *w, T *out, cyc_index os, cyc_index n,
                const int R, const int NV, int nt)
{
    VEC wv[16], acc[16][4];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) wv[r] = VSPLAT(w[r]);
    /* input rows 0 .. R-2 start output rows 0 .. R-2 */
#pragma GCC unroll 16
    for (int j = 0; j < R - 1; j++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            VEC x = VLOADU(in + j * rs + v * VW);
            acc[j][v] = (VEC){0};
#pragma GCC unroll 16
            for (int r = 0; r <= j; r++) acc[j - r][v] += wv[r] * x;
        }
    /* input rows R-1 .. n+R-2, R per step: row j = R-1 + g*R + i starts
     * output row j (slot (i + R - 1) % R) and finishes row j - R + 1 (slot i) */
    for (cyc_index g = 0; g < n; g += R) {
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            const T *q = in + (g + R - 1 + i) * rs;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                VEC x = VLOADU(q + v * VW);
                acc[(i + R - 1) % R][v] = (VEC){0};
#pragma GCC unroll 16
                for (int r = 0; r < R; r++) acc[(i + R - 1 - r) % R][v] += wv[r] * x;
            }
            if (nt)
                STORE_ROWS(VSTREAM, out + (g + i) * os, os, 1, NV, acc[i]);
            else
                STORE_ROWS(VSTORE, out + (g + i) * os, os, 1, NV, acc[i]);
        }
    }
}

/* nrows x width outputs of an R x 1 kernel (nrows >= R, width >= NV
 * vectors): walks of R rows across the width NV vectors at a time, the
 * last walk and column block moved back to end at the edge (recomputing a
 * few outputs to the same bits). Short walks: rows a power-of-two pitch
 * apart share one L1 set, and a longer walk evicts the lines the next
 * column block reads again (measured at a 4096-byte pitch: 12-row walks
 * lost a third for R = 4-5; R-row walks gain a third over the blocked rows). */
TARGET static inline __attribute__((always_inline)) void
FN(column_rows)(const T *in, cyc_index rs, const T *w, T *out, cyc_index os,
                cyc_index width, cyc_index nrows, const int R, int flags)
{
    const int NV = WALK_NV(R);
    for (cyc_index t = 0; t < nrows; t += R) {
        cyc_index tb = t + R <= nrows ? t : nrows - R;
        cyc_index ahead = PREFETCHES(flags, 1, R, R) ? ROWS_AHEAD(tb, R, nrows) : 0;
        for (cyc_index x = 0; x < width; x += NV * VW) {
            cyc_index xb = x + NV * VW <= width ? x : width - NV * VW;
            FN(column_walk)(in + tb * rs + xb, rs, w, out + tb * os + xb, os, R, R, NV,
                            STREAMS(flags, out + tb * os + xb, os, NV));
            FN(prefetch_rows)(in + (tb + 2 * R - 1) * rs + xb, rs, ahead, NV * VBYTES);
        }
    }
}

/* The largest R x 1 kernel a column walk serves (at least one vector; 8 at
 * most, the cases spatial_rows dispatches). */
#define COLUMN_WALK_MAX (WALK_FREE / 2 < 8 ? WALK_FREE / 2 : 8)
#endif

#if VBYTES && SHIFTS && TR == 8
/* spatial_rows for a single-channel S x S kernel (S - 1 <= 2 VW), its
 * shifted vectors made in registers (S a constant, so each valignd has an
 * immediate). The even S in functions of their own: inlined into
 * spatial_rows with the odd ones, they made GCC 12 allocate registers
 * worse for those (whole calls, float64 5x5 0.92x), and the odd ones in
 * functions of their own spilled more (float64 15x15 0.60x). Zen 5, row
 * kernel alone, 1024^2, against loading each shifted vector: float32 4x4
 * 1.65x, 6x6 1.28x, 8x8 1.26x, 10x10-14x14 1.07-1.19x; float64 1.46x,
 * 1.47x, 1.11x, 1.08-1.11x. Blocks of CYC_SQUARE_BLOCK_ROWS rows, or of
 * CYC_SQUARE_BLOCK_ROWS_DP where the level says so (SQUARE_ROWS_DP). */
#define SQUARE_ROWS(S)                                                                      \
    do {                                                                                    \
        if (SQUARE_ROWS_DP && CYC_SQUARE_BLOCK_ROWS_DP(S, VW) != CYC_SQUARE_BLOCK_ROWS(S, VW)) \
            FN(rows_all)(in, cs, rs, 1, S, S, w, out, os, width, nrows,                     \
                         CYC_SQUARE_BLOCK_ROWS_DP(S, VW), 0, 1, flags);                     \
        else                                                                                \
            FN(rows_all)(in, cs, rs, 1, S, S, w, out, os, width, nrows,                     \
                         CYC_SQUARE_BLOCK_ROWS(S, VW), 0, 1, flags);                        \
    } while (0)
#define EVEN_SQUARE_ROWS(S)                                                               \
    TARGET static __attribute__((noinline)) void FN(square_rows_##S)(                      \
        const T *in, cyc_index cs, cyc_index rs, const T *w, T *out, cyc_index os,          \
        cyc_index width, cyc_index nrows, int flags)                                        \
    {                                                                                       \
        SQUARE_ROWS(S);                                                                     \
    }
EVEN_SQUARE_ROWS(4) EVEN_SQUARE_ROWS(6) EVEN_SQUARE_ROWS(8)
EVEN_SQUARE_ROWS(10) EVEN_SQUARE_ROWS(12) EVEN_SQUARE_ROWS(14)
#undef EVEN_SQUARE_ROWS

/* A single-channel R x S kernel, R != S, S = 3, 5 or 7, its shifted
 * vectors made in registers as for the square ones (S a constant; R is
 * not: the blocks' middle rows loop over it), in blocks of
 * CYC_RECT_BLOCK_ROWS(R, S, VW) rows, one function per S. Full blocks
 * only: returns 0, having done nothing, for fewer rows than a block or
 * columns than its vectors (spatial_rows' other paths serve those; shifted
 * copies of them would double these functions' size). Zen 5, row kernel
 * alone, 1024 wide, against loading each shifted vector: float32 3x5,
 * 3x7 1.8-1.9x, 5x7, 7x5 1.4x, 9x7 1.2-1.3x; float64 1.3-2.0x. S = 9-15
 * gained 1.1-1.6x too, for 330 KB more code: not kept. */
#define RECT_BLOCKS(S, tr)                                                                 \
    do {                                                                                   \
        const int nv = RB_NV(tr, S, 1);                                                    \
        if (nrows < (tr) || width < nv * VW)                                               \
            return 0;                                                                      \
        for (cyc_index t = 0; t < nrows; t += (tr)) {                                      \
            cyc_index tb = t + (tr) <= nrows ? t : nrows - (tr);                           \
            cyc_index ahead = PREFETCHES(flags, 1, R, tr) ? ROWS_AHEAD(tb, tr, nrows) : 0; \
            for (cyc_index x = 0; x < width; x += nv * VW) {                               \
                cyc_index xb = x + nv * VW <= width ? x : width - nv * VW;                 \
                FN(rows_block)(in + tb * rs + xb, 0, rs, 1, R, S, w, out + tb * os + xb,   \
                               os, tr, nv, 0, 1, flags);                                   \
                FN(prefetch_rows)(in + (tb + (tr) + R - 1) * rs + xb, rs, ahead,           \
                                  nv * VBYTES);                                            \
            }                                                                              \
        }                                                                                  \
        return 1;                                                                          \
    } while (0)
#define ODD_RECT_ROWS(S)                                                                  \
    TARGET static __attribute__((noinline)) int FN(rect_rows_##S)(                         \
        const T *in, cyc_index rs, cyc_index R, const T *w, T *out, cyc_index os,           \
        cyc_index width, cyc_index nrows, int flags)                                        \
    {                                                                                       \
        const int tr = CYC_RECT_BLOCK_ROWS(R, S, VW), most = CYC_SQUARE_BLOCK_ROWS(S, VW);  \
        if (tr == 3) RECT_BLOCKS(S, 3);                                                     \
        if (most > 5 && tr == 5) RECT_BLOCKS(S, 5);                                         \
        if (most > 3) RECT_BLOCKS(S, CYC_SQUARE_BLOCK_ROWS(S, VW));                         \
        return 0;                                                                           \
    }
ODD_RECT_ROWS(3) ODD_RECT_ROWS(5) ODD_RECT_ROWS(7)
#undef ODD_RECT_ROWS
#undef RECT_BLOCKS
/* rect_rows_S by S (3, 5 or 7): 1 if it did the rows. (A function of its
 * own, so that spatial_rows grows by one call only.) */
TARGET static __attribute__((noinline)) int
FN(rect_rows)(const T *in, cyc_index rs, cyc_index R, cyc_index S, const T *w, T *out,
              cyc_index os, cyc_index width, cyc_index nrows, int flags)
{
    switch (S) {
    case 3: return FN(rect_rows_3)(in, rs, R, w, out, os, width, nrows, flags);
    case 5: return FN(rect_rows_5)(in, rs, R, w, out, os, width, nrows, flags);
    default: return FN(rect_rows_7)(in, rs, R, w, out, os, width, nrows, flags);
    }
}
#endif

/* nrows consecutive output rows (unit stride and dilation): register-blocked
 * min(TR, R) rows at a time for R >= RB_MIN_R (with SHIFTS, square single-
 * channel kernels make their shifted vectors in registers), else
 * rows_unshared. Bitwise
 * equal to spatial_row row by row; blocks may overlap and compute a pixel
 * twice (to the same bits), so `out` must not alias `in`. */
TARGET static void FN(spatial_rows)(const T *in, cyc_index cs, cyc_index rs,
                                    cyc_index C, cyc_index R, cyc_index S,
                                    const T *w, T *out, cyc_index os,
                                    cyc_index width, cyc_index nrows, int flags)
{
#if VBYTES
    if (C == 1 && R == 3 && S == 3 && nrows >= 3 && width >= 2 * VW) {
        FN(rows_3x3)(in, rs, w, out, os, width, nrows, 0, 1, flags);
        return;
    }
    /* R x 1 kernels of 2-3 rows measured no faster walking (R = 2 slower):
     * they keep the unshared rows. */
    if (C == 1 && S == 1 && R >= 4 && R <= COLUMN_WALK_MAX && nrows >= R
            && width >= WALK_NV(R) * VW) {
        switch (R) {
        case 4: FN(column_rows)(in, rs, w, out, os, width, nrows, 4, flags); return;
        case 5: FN(column_rows)(in, rs, w, out, os, width, nrows, 5, flags); return;
        case 6: FN(column_rows)(in, rs, w, out, os, width, nrows, 6, flags); return;
#if COLUMN_WALK_MAX >= 7
        case 7: FN(column_rows)(in, rs, w, out, os, width, nrows, 7, flags); return;
#endif
#if COLUMN_WALK_MAX >= 8
        case 8: FN(column_rows)(in, rs, w, out, os, width, nrows, 8, flags); return;
#endif
        }
    }
#if SHIFTS && TR == 8
    if (C == 1 && CYC_RECT_SHIFTED(R, S)
            && FN(rect_rows)(in, rs, R, S, w, out, os, width, nrows, flags))
        return;
#endif
    if (R < RB_MIN_R) {
        FN(rows_unshared)(in, cs, rs, C, R, S, w, out, os, width, nrows, flags);
        return;
    }
#if SHIFTS && TR == 8
    /* Square single-channel kernels of 4-15 taps: their shifted vectors
     * made in registers (SQUARE_ROWS; the even sizes call square_rows_S). */
    if (C == 1 && R == S && S - 1 <= 2 * VW) {
        switch (S) {
        case 4: FN(square_rows_4)(in, cs, rs, w, out, os, width, nrows, flags); return;
        case 6: FN(square_rows_6)(in, cs, rs, w, out, os, width, nrows, flags); return;
        case 8: FN(square_rows_8)(in, cs, rs, w, out, os, width, nrows, flags); return;
        case 10: FN(square_rows_10)(in, cs, rs, w, out, os, width, nrows, flags); return;
        case 12: FN(square_rows_12)(in, cs, rs, w, out, os, width, nrows, flags); return;
        case 14: FN(square_rows_14)(in, cs, rs, w, out, os, width, nrows, flags); return;
        case 5: SQUARE_ROWS(5); return;
        case 7: SQUARE_ROWS(7); return;
        case 9: SQUARE_ROWS(9); return;
        case 11: SQUARE_ROWS(11); return;
        case 13: SQUARE_ROWS(13); return;
        case 15: SQUARE_ROWS(15); return;
        }
    }
#undef SQUARE_ROWS
#endif
    switch (R < TR ? R : TR) {
#if TR >= 8
    case 8: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 8, 0, 0, flags); return;
    case 7: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 7, 0, 0, flags); return;
    case 6: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 6, 0, 0, flags); return;
    case 5: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 5, 0, 0, flags); return;
#endif
    default: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 4, 0, 0, flags); return;
    }
#else
    FN(rows_unshared)(in, cs, rs, C, R, S, w, out, os, width, nrows, flags);
#endif
}

/* spatial_rows with the taps transposed (see kernels.h): S x R weights,
 * kernel column s down the rows, kernel row r along the row; summed per
 * pixel in (c, s, r) order, bitwise spatial_row(in + t*rs, cs, 1, rs, C, S,
 * R, w, ...) row by row. Register-blocked min(TR, R) rows at a time for
 * every R: its blocks load what rows_block loads. */
TARGET static void FN(spatial_rows_t)(const T *in, cyc_index cs, cyc_index rs,
                                      cyc_index C, cyc_index R, cyc_index S,
                                      const T *w, T *out, cyc_index os,
                                      cyc_index width, cyc_index nrows, int flags)
{
#if VBYTES
#if SHIFTS && TR == 8
    /* Square single-channel kernels of 3-9 taps: their shifted vectors
     * made in registers, block shapes measured best on Zen 4 (kernel alone,
     * 1024^2 float32: 3x3 96 GFLOP/s against 62 loading each shifted
     * vector, 5x5 106 / 70, 7x7 103 / 61, 9x9 98 / 83; 9x9 not where
     * 512-bit FMAs are full width: ROWS_T_SHIFTS_9). kernels.c's
     * ROWS_T_ON_512 routes the AVX-512 level here. */
    if (C == 1 && R == S && nrows >= 5 && width >= 2 * VW) {
        switch (S) {
        case 3: FN(rows_all_t_shifted)(in, rs, 3, 3, w, out, os, width, nrows, 4, 2, flags); return;
        case 5: FN(rows_all_t_shifted)(in, rs, 5, 5, w, out, os, width, nrows, 5, 1, flags); return;
        case 7: FN(rows_all_t_shifted)(in, rs, 7, 7, w, out, os, width, nrows, 5, 1, flags); return;
        case 9:
            if (ROWS_T_SHIFTS_9) {
                FN(rows_all_t_shifted)(in, rs, 9, 9, w, out, os, width, nrows, 4, 1, flags);
                return;
            }
            break;
        }
    }
    /* R x S of 3, 5 and 7 taps, R != S: the blocks of the square kernel
     * with R rows (the shifts only add immediates). */
    if (C == 1 && CYC_RECT_T_SHIFTED(R, S) && nrows >= 5 && width >= 2 * VW) {
        FN(rect_rows_t)(in, rs, R, S, w, out, os, width, nrows, flags);
        return;
    }
#endif
    if (C == 1 && R == 3 && S == 3 && nrows >= 3 && width >= 2 * VW) {
        FN(rows_3x3)(in, rs, w, out, os, width, nrows, 1, 1, flags);
        return;
    }
    switch (R < TR ? R : TR) {
#if TR >= 8
    case 8: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 8, 1, 0, flags); return;
    case 7: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 7, 1, 0, flags); return;
    case 6: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 6, 1, 0, flags); return;
    case 5: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 5, 1, 0, flags); return;
#endif
    case 3: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 3, 1, 0, flags); return;
    case 2: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 2, 1, 0, flags); return;
    case 1: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 1, 1, 0, flags); return;
    default: FN(rows_all)(in, cs, rs, C, R, S, w, out, os, width, nrows, 4, 1, 0, flags); return;
    }
#else
    for (cyc_index t = 0; t < nrows; t++)
        FN(spatial_row)(in + t * rs, cs, 1, rs, C, S, R, w, out + t * os, width);
#endif
}

#if VBYTES && SHIFTS && TR == 8
/* spatial_rows reading every other element of the input rows as their
 * columns (see kernels.h), for a single-channel 3x3, 5x5 or 7x7 kernel and
 * width >= VW: each input vector made from two loads and a permute
 * (vpermt2ps), then shifted in registers like the unit-stride rows. A
 * column-strided image (a[:, ::2]) is read in place instead of gathered
 * first (measured, Zen 4, 1024^2 a[:, ::2], whole call: 3x3 1.16-1.36x,
 * 5x5 1.21-1.32x, 7x7 1.02-1.15x faster; 9x9 0.92-0.94x, 11x11-15x15
 * +-6 %, so those keep the gather). */
TARGET static void FN(spatial_rows_s2)(const T *in, cyc_index cs, cyc_index rs,
                                       cyc_index C, cyc_index R, cyc_index S,
                                       const T *w, T *out, cyc_index os,
                                       cyc_index width, cyc_index nrows, int flags)
{
    (void)C, (void)R;
    if (S == 3 && nrows >= 3 && width >= 2 * VW) {
        FN(rows_3x3)(in, rs, w, out, os, width, nrows, 0, 2, flags);
        return;
    }
    switch (S) {
    case 3: FN(rows_all)(in, cs, rs, 1, 3, 3, w, out, os, width, nrows, 3, 0, 2, flags); return;
    case 5: FN(rows_all)(in, cs, rs, 1, 5, 5, w, out, os, width, nrows, 5, 0, 2, flags); return;
    /* 5 rows: 7 spilled (GCC 12). Zen 5, whole calls: float64 1.3-1.4x as
     * fast, float32 1.03-1.08x (the row kernel alone 1.1x) */
    default: FN(rows_all)(in, cs, rs, 1, 7, 7, w, out, os, width, nrows, 5, 0, 2, flags); return;
    }
}
#endif

#if VBYTES
#define KB CYC_BLOCK_CHANNELS(VBYTES, T)
/* A tile's n pixels x 2 vectors of sums, acc[i][v], into tile (KB a pixel). */
#define STORE_PAIRS(tile, acc, n)                                                \
    _Pragma("GCC unroll 32")                                                     \
    for (int i_ = 0; i_ < (n); i_++) {                                           \
        VSTORE((tile) + i_ * KB, (acc)[i_][0]);                                  \
        VSTORE((tile) + i_ * KB + VW, (acc)[i_][1]);                             \
    }
TARGET static inline __attribute__((always_inline)) void
FN(blocked_tile_body)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                      cyc_index sx, cyc_index C, cyc_index R, cyc_index S, cyc_index wcs,
                      const T *wp, const T *init, T *tile, const int pt, const int edges)
{
    /* pt (<= PT) pixels x 2 vectors of channels: fully unrolled so the
     * accumulators live in registers; weights are loaded once per
     * (c, r, s) and each input value is broadcast once. The sums start
     * from zero, or from `init` (a tile of partial sums over earlier
     * channels: the order per pixel is the same as in one call). */
    /* One unconditional load (from a zero tile when init is NULL), each
     * accumulator then pinned in a register: otherwise GCC 12 keeps copies
     * of the loaded values and spills half the accumulators in the loop
     * (1x1 tiles at half speed). */
    static const T zero_tile[PT * KB];
    const T *start = init ? init : zero_tile;
    VEC acc[PT][2];
#pragma GCC unroll 32
    for (int i = 0; i < pt; i++) {
        VLOAD(acc[i][0], start + i * KB);
        VLOAD(acc[i][1], start + i * KB + VW);
        CYC_IN_REGISTER(acc[i][0]);
        CYC_IN_REGISTER(acc[i][1]);
    }
    for (cyc_index c = 0; c < C; c++, wp += wcs - R * S * KB) {
        for (cyc_index r = 0; r < R; r++) {
            const T *p = in + c * cs + r * rs;
            /* The next tiles along the row read the next cache line of each
             * input row; with many channels (1x1 layers: one line per
             * channel plane) there are too many streams for the hardware
             * prefetcher, so ask for it now. */
            __builtin_prefetch(p + 64 / sizeof(T));
            for (cyc_index s = 0; s < S; s++, wp += KB) {
                const T *q = p + s * ds;
                VEC w0, w1;
                VLOAD(w0, wp); VLOAD(w1, wp + VW);
#pragma GCC unroll 32
                for (int i = 0; i < pt; i++) {
                    /* edges: S == 3, ds == 1, sx 1 or 2 (blocked_tile_sized);
                     * the first pixel's left and the last pixel's right
                     * column left out (a branch on s for those two only) */
                    if (((edges & 1) && i == 0 && s == 0)
                        || ((edges & 2) && i == pt - 1 && s == 2))
                        continue;
                    VEC b = VSPLAT(q[i * sx]);
                    acc[i][0] += b * w0;
                    acc[i][1] += b * w1;
                }
            }
        }
    }
    STORE_PAIRS(tile, acc, pt);
}

TARGET static void FN(blocked_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                    cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                    const T *wp, const T *init, T *tile)
{
    /* Unit pixel stride (stride-1 layers, flat tiles) gets its own copy:
     * the PT input offsets become constants instead of registers. 1x1
     * layers get one more, without the row and column loops, whose overhead
     * they pay once per 2*PT FMAs (measured on Zen 3, 64 channels in L1:
     * 33-60 GFLOP/s -> 47-76). A copy for pixel stride 2 was measured
     * slower on the 3x3/2 ResNet layer (0.78-0.81x PyTorch against 0.81-0.86x). */
    if (sx == 1 && R == 1 && S == 1)
        FN(blocked_tile_body)(in, cs, rs, ds, 1, C, 1, 1, KB, wp, init, tile, PT, 0);
    else if (init && sx == 1)   /* chunked flat tiles (unit stride) */
        FN(blocked_tile_body)(in, cs, rs, ds, 1, C, R, S, R * S * KB, wp, init, tile, PT, 0);
    else if (init)
        FN(blocked_tile_body)(in, cs, rs, ds, sx, C, R, S, R * S * KB, wp, init, tile, PT, 0);
    else if (sx == 1)   /* init NULL as a constant: the sums start from zeros */
        FN(blocked_tile_body)(in, cs, rs, ds, 1, C, R, S, R * S * KB, wp, NULL, tile, PT, 0);
    else
        FN(blocked_tile_body)(in, cs, rs, ds, sx, C, R, S, R * S * KB, wp, NULL, tile, PT, 0);
}

/* blocked_tile of `pixels` pixels, one of the level's tile widths
 * (CYC_TILE_WIDTH(PT, i)): a row's last tile when fewer than PT pixels
 * remain, so that it computes at most one pixel it does not keep rather than
 * up to PT - 1 (ResNet's strided layers: rows of 7, 14 and 28 pixels), or a
 * row of 7 whole; and over kernel rows of a taller kernel (the rows of an
 * output row's taps that fall on zero padding left out), each channel's
 * packed weights wcs elements apart. Each pixel's sum is the same as in a
 * full tile. */
TARGET static void FN(blocked_tile_sized)(const T *in, cyc_index cs, cyc_index rs,
                                          cyc_index ds, cyc_index sx, cyc_index C,
                                          cyc_index R, cyc_index S, cyc_index wcs, const T *wp,
                                          const T *init, T *tile, cyc_index pixels, int edges)
{
#define CYC_SIZED_BODY(SX, W, E) \
    FN(blocked_tile_body)(in, cs, rs, ds, SX, C, R, S, wcs, wp, init, tile, CYC_TILE_WIDTH(PT, W), E)
#define CYC_SIZED(SX, E)                                                                \
    do {                                                                                \
        if (pixels == CYC_TILE_WIDTH(PT, 0)) CYC_SIZED_BODY(SX, 0, E);                  \
        else if (pixels == CYC_TILE_WIDTH(PT, 1)) CYC_SIZED_BODY(SX, 1, E);             \
        else if (pixels == CYC_TILE_WIDTH(PT, 2)) CYC_SIZED_BODY(SX, 2, E);             \
        else CYC_SIZED_BODY(SX, 3, E);                                                  \
    } while (0)
    /* edges only with S == 3, ds == 1 and sx 1 or 2 (kernels.h); the
     * offsets of unit-stride rows as constants (see blocked_tile) */
    if (sx == 1) {
        if (edges == 1)
            CYC_SIZED(1, 1);
        else if (edges == 2)
            CYC_SIZED(1, 2);
        else if (edges == 3)
            CYC_SIZED(1, 3);
        else
            CYC_SIZED(1, 0);
    } else if (edges == 1) {
        CYC_SIZED(2, 1);
    } else if (edges == 2) {
        CYC_SIZED(2, 2);
    } else if (edges == 3) {
        CYC_SIZED(2, 3);
    } else {
        CYC_SIZED(sx, 0);
    }
#undef CYC_SIZED
#undef CYC_SIZED_BODY
}

/* gathered_tile (kernels.h): blocked_tile_body's PT pixels, each read from
 * its own place, so that a tile runs on across rows and images (tiny images:
 * no padding column computed, no narrow tile at each image's end), over a
 * window of the kernel's taps (those not on zero padding). The
 * per-pixel pointers cost nothing the FMAs notice (C harness, 64 images of
 * 2x2 to 8x8, 32-128 channels: 95-99 % of the peak). */
TARGET static void FN(gathered_tile)(const T *in, const cyc_index *off, cyc_index cs,
                                     cyc_index rs, cyc_index ds, cyc_index C, cyc_index R,
                                     cyc_index S, cyc_index wcs, cyc_index wrs, const T *wp,
                                     T *tile)
{
    const T *px[PT];
    VEC acc[PT][2];
#pragma GCC unroll 32
    for (int i = 0; i < PT; i++) {
        px[i] = in + off[i];
        acc[i][0] = (VEC){0};
        acc[i][1] = (VEC){0};
    }
    for (cyc_index c = 0; c < C; c++) {
        for (cyc_index r = 0; r < R; r++) {
            const cyc_index o = c * cs + r * rs;
            const T *wr = wp + c * wcs + r * wrs;
            for (cyc_index s = 0; s < S; s++) {
                const cyc_index q = o + s * ds;
                VEC w0, w1;
                VLOAD(w0, wr + s * KB); VLOAD(w1, wr + s * KB + VW);
#pragma GCC unroll 32
                for (int i = 0; i < PT; i++) {
                    VEC b = VSPLAT(px[i][q]);
                    acc[i][0] += b * w0;
                    acc[i][1] += b * w1;
                }
            }
        }
    }
    STORE_PAIRS(tile, acc, PT);
}
#undef STORE_PAIRS
#undef KB
#else
/* Scalar build (compilers without vector extensions): KB = 2, same order;
 * `pixels` of them (PT, or a narrower width), each channel's weights wcs apart. */
static void FN(scalar_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                            cyc_index sx, cyc_index C, cyc_index R, cyc_index S, cyc_index wcs,
                            const T *wp, const T *init, T *tile, cyc_index pixels, int edges)
{
    for (cyc_index i = 0; i < pixels * 2; i++) tile[i] = init ? init[i] : 0;
    for (cyc_index c = 0; c < C; c++)
        for (cyc_index r = 0; r < R; r++)
            for (cyc_index s = 0; s < S; s++) {
                const T *q = in + c * cs + r * rs + s * ds;
                const T *w = wp + c * wcs + (r * S + s) * 2;
                for (cyc_index i = 0; i < pixels; i++) {
                    if (((edges & 1) && i == 0 && s == 0)
                        || ((edges & 2) && i == pixels - 1 && s == S - 1))
                        continue;
                    tile[2 * i] += q[i * sx] * w[0];
                    tile[2 * i + 1] += q[i * sx] * w[1];
                }
            }
}

static void FN(blocked_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                             cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                             const T *wp, const T *init, T *tile)
{
    FN(scalar_tile)(in, cs, rs, ds, sx, C, R, S, R * S * 2, wp, init, tile, PT, 0);
}

static void FN(blocked_tile_sized)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                   cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                   cyc_index wcs, const T *wp, const T *init, T *tile,
                                   cyc_index pixels, int edges)
{
    FN(scalar_tile)(in, cs, rs, ds, sx, C, R, S, wcs, wp, init, tile, pixels, edges);
}

static void FN(gathered_tile)(const T *in, const cyc_index *off, cyc_index cs, cyc_index rs,
                              cyc_index ds, cyc_index C, cyc_index R, cyc_index S,
                              cyc_index wcs, cyc_index wrs, const T *wp, T *tile)
{
    /* scalar build: KB = 2, the same order as scalar_tile */
    for (cyc_index i = 0; i < PT; i++) {
        T a0 = 0, a1 = 0;
        for (cyc_index c = 0; c < C; c++)
            for (cyc_index r = 0; r < R; r++)
                for (cyc_index s = 0; s < S; s++) {
                    const T x = in[off[i] + c * cs + r * rs + s * ds];
                    const T *w = wp + c * wcs + r * wrs + s * 2;
                    a0 += x * w[0];
                    a1 += x * w[1];
                }
        tile[2 * i] = a0;
        tile[2 * i + 1] = a1;
    }
}
#endif

#if VBYTES == 64
#define NP CYC_NARROW_PIXELS
/* narrow_tile (kernels.h): `pt` elements x one vector of channels, each
 * loaded vector of grad_output feeding pt FMAs; the accumulators pinned
 * as in blocked_tile_body. */
TARGET static inline __attribute__((always_inline)) void
FN(narrow_tile_body)(const T *in, cyc_index rs, cyc_index ds, cyc_index sx, cyc_index R,
                     cyc_index S, const T *wp, const T *init, T *tile, const int pt)
{
    static const T zero_tile[NP * VW];
    const T *start = init ? init : zero_tile;
    VEC acc[NP];
#pragma GCC unroll 32
    for (int i = 0; i < pt; i++) {
        VLOAD(acc[i], start + i * VW);
        CYC_IN_REGISTER(acc[i]);
    }
    for (cyc_index r = 0; r < R; r++) {
        const T *p = in + r * rs;
        for (cyc_index s = 0; s < S; s++, wp += VW) {
            const T *q = p + s * ds;
            VEC w0;
            VLOAD(w0, wp);
#pragma GCC unroll 32
            for (int i = 0; i < pt; i++)
                acc[i] += VSPLAT(q[i * sx]) * w0;
        }
    }
#pragma GCC unroll 32
    for (int i = 0; i < pt; i++) VSTORE(tile + i * VW, acc[i]);
}

TARGET static void FN(narrow_tile)(const T *in, cyc_index rs, cyc_index ds, cyc_index sx,
                                   cyc_index R, cyc_index S, const T *wp, const T *init,
                                   T *tile, cyc_index pixels)
{
    /* each width a copy, and unit element stride (channels last) its own */
#define CYC_NARROW(W)                                                                   \
    do {                                                                                \
        if (sx == 1)                                                                    \
            FN(narrow_tile_body)(in, rs, ds, 1, R, S, wp, init, tile, CYC_TILE_WIDTH(NP, W)); \
        else                                                                            \
            FN(narrow_tile_body)(in, rs, ds, sx, R, S, wp, init, tile, CYC_TILE_WIDTH(NP, W)); \
    } while (0)
    if (pixels == CYC_TILE_WIDTH(NP, 0)) CYC_NARROW(0);
    else if (pixels == CYC_TILE_WIDTH(NP, 1)) CYC_NARROW(1);
    else if (pixels == CYC_TILE_WIDTH(NP, 2)) CYC_NARROW(2);
    else CYC_NARROW(3);
#undef CYC_NARROW
}
#undef NP
#endif

/* pixel_tile (kernels.h): 4 output channels x 3 vectors of pixels. Each
 * loaded input vector feeds 4 FMAs and each weight broadcast 3, and the
 * sums go straight to their output planes as vectors: no tile buffer and no
 * transposing store (which the blocked tiles of 1x1 layers with few input
 * channels spend a fifth of their time in). */
#if VBYTES
TARGET static void FN(pixel_tile)(const T *in, cyc_index cs, cyc_index C, const T *wp,
                                  cyc_index ws, const T *bias, T *out, cyc_index os,
                                  cyc_index nk)
{
    VEC acc[4][3];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) acc[k][v] = (VEC){0};
    for (cyc_index c = 0; c < C; c++, in += cs, wp += ws) {
        VEC x[3];
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) x[v] = VLOADU(in + v * VW);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            VEC w = VSPLAT(wp[k]);
#pragma GCC unroll 3
            for (int v = 0; v < 3; v++) acc[k][v] += w * x[v];
        }
    }
    /* k a constant in each copy, so the accumulators stay in registers */
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        if (k >= nk)
            break;
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) {
            VEC r = acc[k][v];
            if (bias)
                r += VSPLAT(bias[k]);
            VSTORE(out + k * os + v * VW, r);
        }
    }
}
#else
static void FN(pixel_tile)(const T *in, cyc_index cs, cyc_index C, const T *wp,
                           cyc_index ws, const T *bias, T *out, cyc_index os, cyc_index nk)
{
    /* scalar build: 2 channels x 3 pixels, the scalar blocked tile's sums */
    T acc[2][3] = {{0, 0, 0}, {0, 0, 0}};
    for (cyc_index c = 0; c < C; c++, in += cs, wp += ws)
        for (int k = 0; k < 2; k++)
            for (int x = 0; x < 3; x++) acc[k][x] += in[x] * wp[k];
    for (int k = 0; k < nk; k++)
        for (int x = 0; x < 3; x++) out[k * os + x] = bias ? acc[k][x] + bias[k] : acc[k][x];
}
#endif

/* A tile of FK output channels x FV vectors of consecutive flat pixels
 * (the padded image read as one long row; unit stride), with the weights in
 * their natural (K, C, R, S) layout: wk[k] points at output channel k's
 * C*R*S weights, so nothing is repacked. For layers whose images are too
 * small to amortize packing. Sum order per pixel: (c, r, s), from zero.
 *   tile[k*FV*VW + x] = sum_{c,r,s} wk[k][(c*R + r)*S + s] * in[c*cs + r*rs + s*ds + x] */
#if VBYTES
TARGET static inline __attribute__((always_inline)) void
FN(flat_tile_body)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds, cyc_index C,
                   cyc_index R, cyc_index S, const T *const *wk, T *tile, const int fv)
{
    VEC acc[FK][FV];
#pragma GCC unroll 16
    for (int k = 0; k < FK; k++)
#pragma GCC unroll 16
        for (int v = 0; v < fv; v++) acc[k][v] = (VEC){0};
    cyc_index t = 0;
    for (cyc_index c = 0; c < C; c++) {
        for (cyc_index r = 0; r < R; r++) {
            const T *p = in + c * cs + r * rs;
            for (cyc_index s = 0; s < S; s++, t++) {
                VEC x[FV];
#pragma GCC unroll 16
                for (int v = 0; v < fv; v++) VLOAD(x[v], p + s * ds + v * VW);
#pragma GCC unroll 16
                for (int k = 0; k < FK; k++) {
                    /* No software prefetch of the weight streams: measured
                     * (Zen 3, 512 channels at 7x7) it costs more load slots
                     * than the misses it saves. */
                    VEC wv = VSPLAT(wk[k][t]);
#pragma GCC unroll 16
                    for (int v = 0; v < fv; v++) acc[k][v] += wv * x[v];
                }
            }
        }
    }
#pragma GCC unroll 16
    for (int k = 0; k < FK; k++)
#pragma GCC unroll 16
        for (int v = 0; v < fv; v++) VSTORE(tile + (k * FV + v) * VW, acc[k][v]);
}

TARGET static void FN(flat_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                 cyc_index C, cyc_index R, cyc_index S,
                                 const T *const *wk, T *tile)
{
    FN(flat_tile_body)(in, cs, rs, ds, C, R, S, wk, tile, FV);
}

/* The first `vectors` (< FV) vectors of a flat tile: an image's last tile,
 * which computed up to FV - 1 vectors of pixels past its end. A function
 * apart, so that flat_tile, called for every other tile, keeps its
 * arguments and its code. */
TARGET static void FN(flat_tile_part)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                      cyc_index C, cyc_index R, cyc_index S,
                                      const T *const *wk, T *tile, cyc_index vectors)
{
    /* a copy for each count, so the accumulators stay in registers */
    switch (vectors) {
    case 1: FN(flat_tile_body)(in, cs, rs, ds, C, R, S, wk, tile, 1); return;
    case 2: FN(flat_tile_body)(in, cs, rs, ds, C, R, S, wk, tile, 2 < FV ? 2 : FV); return;
    default: FN(flat_tile_body)(in, cs, rs, ds, C, R, S, wk, tile, 3 < FV ? 3 : FV); return;
    }
}
#else
static void FN(flat_tile_part)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                               cyc_index C, cyc_index R, cyc_index S,
                               const T *const *wk, T *tile, cyc_index vectors)
{
    /* scalar build: `vectors` (<= FV) "vectors" of one element */
    for (int i = 0; i < FK * FV; i++) tile[i] = 0;
    cyc_index t = 0;
    for (cyc_index c = 0; c < C; c++)
        for (cyc_index r = 0; r < R; r++)
            for (cyc_index s = 0; s < S; s++, t++)
                for (int k = 0; k < FK; k++)
                    for (int v = 0; v < vectors; v++)
                        tile[k * FV + v] += wk[k][t] * in[c * cs + r * rs + s * ds + v];
}

static void FN(flat_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                          cyc_index C, cyc_index R, cyc_index S,
                          const T *const *wk, T *tile)
{
    FN(flat_tile_part)(in, cs, rs, ds, C, R, S, wk, tile, FV);
}
#endif

/* Depthwise correlation with the channels in the vector lanes (see
 * kernels.h: cyc_depthwise_lanes): each tap is one weight vector of L
 * channels and one input vector per output pixel, at any stride and
 * dilation, so no column is computed only to be dropped and no shifted
 * vector is needed. A block holds nr rows x np pixels of accumulators
 * (nr * np <= 8: with the weight and an input, 10 of 16 registers). Per
 * pixel and channel the sum runs in (r, s) order from zero, fused where
 * the level fuses, the bias added once: spatial_row's order and rounding
 * for one input channel, so the bits of the row kernels. */
#define DW_L CYC_LANES(VBYTES, T)
/* (the scalar build's compilers may have no GNU attributes) */
#if VBYTES
#define DW_INLINE static inline __attribute__((always_inline))
#else
#define DW_INLINE static
#endif
TARGET DW_INLINE void
FN(dw_block)(const T *in, cyc_index rs, cyc_index row_step, cyc_index step, cyc_index dh,
             cyc_index dw, cyc_index R, cyc_index S, const T *w, const T *bias, T *out,
             cyc_index os, cyc_index ps, const int nr, const int np)
{
#if VBYTES
    VEC acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < nr * np; i++) acc[i] = (VEC){0};
    for (cyc_index r = 0; r < R; r++) {
        for (cyc_index s = 0; s < S; s++) {
            VEC wv = VLOADU(w + (r * S + s) * VW);
            const T *q = in + r * dh * rs + s * dw * VW;
#pragma GCC unroll 2
            for (int k = 0; k < nr; k++)
#pragma GCC unroll 8
                for (int i = 0; i < np; i++)
                    acc[k * np + i] += wv * VLOADU(q + k * row_step + i * step);
        }
    }
    if (bias) {
        VEC b = VLOADU(bias);
#pragma GCC unroll 8
        for (int i = 0; i < nr * np; i++) acc[i] += b;
    }
#pragma GCC unroll 2
    for (int k = 0; k < nr; k++)
#pragma GCC unroll 8
        for (int i = 0; i < np; i++) VSTORE(out + k * os + i * ps, acc[k * np + i]);
#else
    for (int k = 0; k < nr; k++)
        for (int i = 0; i < np; i++) {
            T acc = 0;
            for (cyc_index r = 0; r < R; r++)
                for (cyc_index s = 0; s < S; s++)
                    acc = MADD(w[r * S + s], in[k * row_step + i * step + r * dh * rs + s * dw],
                               acc);
            out[k * os + i * ps] = bias ? acc + bias[0] : acc;
        }
#endif
}

/* Rows of np-pixel blocks, nr rows at a time; the last block of rows and
 * of pixels moved back over outputs already done (to the same bits). */
TARGET DW_INLINE void
FN(dw_rows)(const T *in, cyc_index rs, cyc_index sh, cyc_index sw, cyc_index dh, cyc_index dw,
            cyc_index R, cyc_index S, const T *w, const T *bias, T *out, cyc_index os,
            cyc_index ps, cyc_index width, cyc_index nrows, const int nr, const int np)
{
    const cyc_index L = DW_L, step = sw * L, row_step = sh * rs;
    for (cyc_index y = 0; y < nrows; y += nr) {
        cyc_index yb = y + nr <= nrows ? y : nrows - nr;
        for (cyc_index x = 0; x < width; x += np) {
            cyc_index xb = x + np <= width ? x : width - np;
            FN(dw_block)(in + yb * row_step + xb * step, rs, row_step, step, dh, dw, R, S, w,
                         bias, out + yb * os + xb * ps, os, ps, nr, np);
        }
    }
}

TARGET static void FN(depthwise_lanes)(const T *in, cyc_index rs, cyc_index sh, cyc_index sw,
                                       cyc_index dh, cyc_index dw, cyc_index R, cyc_index S,
                                       const T *w, const T *bias, T *out, cyc_index os,
                                       cyc_index ps, cyc_index width, cyc_index nrows)
{
    /* 8 independent sums: enough to cover the FMA latency (7 x 7 planes
     * take two rows of 4 pixels). */
    if (width >= 8)
        FN(dw_rows)(in, rs, sh, sw, dh, dw, R, S, w, bias, out, os, ps, width, nrows, 1, 8);
    else if (width >= 4 && nrows >= 2)
        FN(dw_rows)(in, rs, sh, sw, dh, dw, R, S, w, bias, out, os, ps, width, nrows, 2, 4);
    else if (width >= 4)
        FN(dw_rows)(in, rs, sh, sw, dh, dw, R, S, w, bias, out, os, ps, width, nrows, 1, 4);
    else
        FN(dw_rows)(in, rs, sh, sw, dh, dw, R, S, w, bias, out, os, ps, width, nrows, 1, 1);
}

/* The taps' gradient of depthwise_lanes (kernels.h: cyc_depthwise_taps):
 * up to DW_TAPS taps at a time hold their sums in registers while the
 * pixels stream past, each pixel's gradient vector loaded once for all of
 * them. Per tap and channel one chain in (y, x) order, so the sums do not
 * depend on how the rows are cut into calls. */
#define DW_TAPS 12
TARGET static void FN(depthwise_taps)(const T *in, cyc_index rs, cyc_index sh, cyc_index sw,
                                      cyc_index dh, cyc_index dw, cyc_index R, cyc_index S,
                                      const T *g, cyc_index gs, cyc_index width,
                                      cyc_index nrows, T *acc)
{
    const cyc_index L = DW_L, taps = R * S;
    for (cyc_index t0 = 0; t0 < taps; t0 += DW_TAPS) {
        int nt = taps - t0 < DW_TAPS ? (int)(taps - t0) : DW_TAPS;
        cyc_index off[DW_TAPS];
        for (int i = 0; i < DW_TAPS; i++) {
            cyc_index t = t0 + (i < nt ? i : 0);
            off[i] = (t / S) * dh * rs + (t % S) * dw * L;
        }
#if VBYTES
        VEC a[DW_TAPS];
#pragma GCC unroll 12
        for (int i = 0; i < DW_TAPS; i++) a[i] = i < nt ? (VEC)VLOADU(acc + (t0 + i) * VW) : (VEC){0};
        for (cyc_index y = 0; y < nrows; y++)
            for (cyc_index x = 0; x < width; x++) {
                VEC gv = VLOADU(g + y * gs + x * VW);
                const T *p = in + y * sh * rs + x * sw * VW;
#pragma GCC unroll 12
                for (int i = 0; i < DW_TAPS; i++)
                    if (i < nt) a[i] += gv * VLOADU(p + off[i]);
            }
#pragma GCC unroll 12
        for (int i = 0; i < DW_TAPS; i++)
            if (i < nt) VSTORE(acc + (t0 + i) * VW, a[i]);
#else
        for (int i = 0; i < nt; i++) {
            T a = acc[t0 + i];
            for (cyc_index y = 0; y < nrows; y++)
                for (cyc_index x = 0; x < width; x++)
                    a = MADD(g[y * gs + x], in[y * sh * rs + x * sw + off[i]], a);
            acc[t0 + i] = a;
        }
#endif
    }
}

/* The weight gradient of a layer of few taps with the output pixels in the
 * vector lanes (kernels.h: cyc_pixel_taps): PX_K output channels x PX_T
 * taps hold their sums in registers while a row's pixels stream past, each
 * loaded vector of grad_output feeding PX_T FMAs and each of the input
 * PX_K. The last block of channels or taps is moved back (K or ntaps below
 * a block: indices repeat), computing some sums twice to the same bits.
 * Per sum: the lanes in (n, y, x) order (AVX-512: a row's last vector
 * masked, in the same lanes; other levels: a row's last pixels by half
 * vectors, then one by one, each width summed apart), each width's lanes
 * then added in lane order. */
#if RB_REGS >= 32
#define PX_K 3     /* 27 sums, 3 + 1 loaded vectors: 31 of 32 registers */
#define PX_T 9
#else
#define PX_K 2     /* 10 sums, 2 + 1 loaded vectors of 16 registers */
#define PX_T 5
#endif
/* Loaded into a register once: GCC otherwise folds the load into each FMA
 * that uses it, loading the vector PX_K or PX_T times (Zen 5, AVX-512:
 * 121 against 234 GFLOP/s). x86 only: elsewhere FMAs take registers. */
#if CYC_X86_INTRINSICS && VBYTES
#define PX_PIN(v) __asm__("" : "+x"(v))
#else
#define PX_PIN(v) (void)0
#endif
#define PX_LOAD(VT, dst, p)                                                             \
    do {                                                                                \
        VT px_loaded_;                                                                  \
        memcpy(&px_loaded_, (p), sizeof(px_loaded_));                                   \
        PX_PIN(px_loaded_);                                                             \
        (dst) = px_loaded_;                                                             \
    } while (0)
/* One vector of lanes of type VT (T itself for one lane) at column c of
 * the rows gr (grad_output) and xr (input), loaded by LOAD(VT, dst, p), into
 * the sums acc. */
#define PX_STEP(VT, c, LOAD)                                                            \
    do {                                                                                \
        VT gv[PX_K];                                                                    \
        _Pragma("GCC unroll 16")                                                        \
        for (int i = 0; i < PX_K; i++)                                                  \
            LOAD(VT, gv[i], gr + gk_of[i] + (c));                                       \
        _Pragma("GCC unroll 16")                                                        \
        for (int j = 0; j < PX_T; j++) {                                                \
            VT xv;                                                                      \
            LOAD(VT, xv, xr + off_of[j] + (c));                                         \
            _Pragma("GCC unroll 16")                                                    \
            for (int i = 0; i < PX_K; i++) acc[i][j] += gv[i] * xv;                     \
        }                                                                               \
    } while (0)
/* Every row's columns [x0, x0 + n * NL) by vectors of NL lanes, then TAIL
 * (one more step into the same sums, or nothing); the sums' lanes then
 * added to part in lane order. */
#define PX_SWEEP(VT, NL, x0, n, TAIL)                                                   \
    do {                                                                                \
        VT acc[PX_K][PX_T];                                                             \
        _Pragma("GCC unroll 16")                                                        \
        for (int i = 0; i < PX_K; i++)                                                  \
            _Pragma("GCC unroll 16")                                                    \
            for (int j = 0; j < PX_T; j++) acc[i][j] = (VT){0};                         \
        for (cyc_index m = 0; m < images; m++)                                          \
            for (cyc_index y = 0; y < Ho; y++) {                                        \
                const T *gr = g + m * gn + y * gy, *xr = in + m * xn + y * xy;          \
                for (cyc_index v = 0; v < (n); v++)                                     \
                    PX_STEP(VT, (x0) + v * (NL), PX_LOAD);                              \
                TAIL;                                                                   \
            }                                                                           \
        _Pragma("GCC unroll 16")                                                        \
        for (int i = 0; i < PX_K; i++)                                                  \
            _Pragma("GCC unroll 16")                                                    \
            for (int j = 0; j < PX_T; j++) {                                            \
                VT sum = acc[i][j];                                                     \
                T lanes[NL], s = 0;                                                     \
                memcpy(lanes, &sum, sizeof(VT));                                        \
                for (int l = 0; l < (NL); l++) s += lanes[l];                           \
                part[i][j] += s;                                                        \
            }                                                                           \
    } while (0)

TARGET static void FN(pixel_taps)(const T *g, cyc_index gn, cyc_index gk, cyc_index gy,
                                  const T *in, cyc_index xn, cyc_index xy, const cyc_index *off,
                                  cyc_index ntaps, cyc_index K, cyc_index images,
                                  cyc_index Ho, cyc_index Wo, T *sums)
{
#if VBYTES
    const cyc_index full = Wo / VW;
#if VBYTES == 64 && CYC_X86_INTRINSICS
    /* a row's last Wo % VW pixels: a masked vector, its lanes past the row
     * loaded as zeros (not every load masked: Zen 5 ran those at 175
     * against 234 GFLOP/s) */
    const cyc_index tail = Wo - full * VW;
    const __mmask16 mask = (__mmask16)((1u << tail) - 1);
#define PX_MASKED_LOAD(VT, dst, p)                                                  \
    ((dst) = sizeof(T) == 4 ? (VEC)_mm512_maskz_loadu_ps(mask, (const void *)(p))   \
                            : (VEC)_mm512_maskz_loadu_pd((__mmask8)mask, (const void *)(p)))
#elif VBYTES >= 32
    typedef T half_vec __attribute__((vector_size(VBYTES / 2)));
    const cyc_index HW = VW / 2, halves = (Wo - full * VW) / HW;
    const cyc_index rest = Wo - full * VW - halves * HW;
#else
    const cyc_index rest = Wo - full * VW;
#endif
#else
    const cyc_index rest = Wo;
#endif
    for (cyc_index k0 = 0; k0 < K; k0 += PX_K) {
        cyc_index kb = k0 + PX_K <= K ? k0 : (K > PX_K ? K - PX_K : 0);
        cyc_index gk_of[PX_K];
        for (int i = 0; i < PX_K; i++) gk_of[i] = (kb + i < K ? kb + i : K - 1) * gk;
        for (cyc_index t0 = 0; t0 < ntaps; t0 += PX_T) {
            cyc_index tb = t0 + PX_T <= ntaps ? t0 : (ntaps > PX_T ? ntaps - PX_T : 0);
            cyc_index off_of[PX_T];
            for (int j = 0; j < PX_T; j++) off_of[j] = off[tb + j < ntaps ? tb + j : ntaps - 1];
            T part[PX_K][PX_T];
            memset(part, 0, sizeof(part));
#if VBYTES == 64 && CYC_X86_INTRINSICS
            PX_SWEEP(VEC, VW, 0, full, if (tail) PX_STEP(VEC, full * VW, PX_MASKED_LOAD));
#elif VBYTES
            if (full) PX_SWEEP(VEC, VW, 0, full, (void)0);
#if VBYTES >= 32
            if (halves) PX_SWEEP(half_vec, HW, full * VW, halves, (void)0);
#endif
            if (rest) PX_SWEEP(T, 1, Wo - rest, rest, (void)0);
#else
            PX_SWEEP(T, 1, 0, rest, (void)0);
#endif
            for (int i = 0; i < PX_K; i++)
                for (int j = 0; j < PX_T; j++) {
                    cyc_index k = kb + i < K ? kb + i : K - 1;
                    cyc_index t = tb + j < ntaps ? tb + j : ntaps - 1;
                    sums[k * ntaps + t] = part[i][j];
                }
        }
    }
}
#undef PX_SWEEP
#undef PX_STEP
#undef PX_LOAD
#undef PX_PIN
#ifdef PX_MASKED_LOAD
#undef PX_MASKED_LOAD
#endif
#undef PX_K
#undef PX_T

/* A layer of few taps with the output pixels in the vector lanes
 * (kernels.h: cyc_pixel_conv): PC_K output channels x two vectors of a
 * row's pixels per block, each loaded input vector feeding PC_K FMAs, the
 * tap's PC_K weights broadcast from wt (taps x K, channels innermost). A
 * row's last vector is moved back to end at the row's end (computing some
 * pixels twice to the same bits); channel blocks likewise. Per pixel the
 * sum runs in tap order from zero and the bias is added once: the blocked
 * tiles' sum and store, to the bit. */
#if VBYTES
#define PC_K 8     /* 16 sums, 8 broadcast weights, 2 loaded vectors */
TARGET static inline __attribute__((always_inline)) void
FN(pixel_conv_step)(const T *xr, const cyc_index *off, cyc_index ntaps, const T *wt,
                    cyc_index K, const cyc_index *kk, const T *bias, T *orow, cyc_index ok,
                    cyc_index x, const int NV)
{
    VEC acc[PC_K][2];
#pragma GCC unroll 8
    for (int i = 0; i < PC_K; i++) acc[i][0] = acc[i][1] = (VEC){0};
    for (cyc_index t = 0; t < ntaps; t++) {
        const T *q = xr + off[t] + x, *wk = wt + t * K;
        VEC x0 = VLOADU(q), x1 = NV > 1 ? (VEC)VLOADU(q + VW) : x0;
#pragma GCC unroll 8
        for (int i = 0; i < PC_K; i++) {
            VEC wv = VSPLAT(wk[kk[i]]);
            acc[i][0] += wv * x0;
            if (NV > 1) acc[i][1] += wv * x1;
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < PC_K; i++) {
        T *o = orow + kk[i] * ok + x;
        if (bias) {
            VEC bv = VSPLAT(bias[kk[i]]);
            acc[i][0] += bv;
            acc[i][1] += bv;
        }
        VSTORE(o, acc[i][0]);
        if (NV > 1) VSTORE(o + VW, acc[i][1]);
    }
}
#endif

TARGET static void FN(pixel_conv)(const T *in, cyc_index xn, cyc_index xy, const cyc_index *off,
                                  cyc_index ntaps, const T *wt, const T *bias, T *out,
                                  cyc_index on, cyc_index ok, cyc_index oy, cyc_index K,
                                  cyc_index images, cyc_index Ho, cyc_index Wo)
{
#if VBYTES
    for (cyc_index m = 0; m < images; m++)
        for (cyc_index k0 = 0; k0 < K; k0 += PC_K) {
            cyc_index kb = k0 + PC_K <= K ? k0 : (K > PC_K ? K - PC_K : 0), kk[PC_K];
            for (int i = 0; i < PC_K; i++) kk[i] = kb + i < K ? kb + i : K - 1;
            for (cyc_index y = 0; y < Ho; y++) {
                const T *xr = in + m * xn + y * xy;
                T *orow = out + m * on + y * oy;
                cyc_index x = 0;
                for (; x + 2 * VW <= Wo; x += 2 * VW)
                    FN(pixel_conv_step)(xr, off, ntaps, wt, K, kk, bias, orow, ok, x, 2);
                if (x < Wo)
                    FN(pixel_conv_step)(xr, off, ntaps, wt, K, kk, bias, orow, ok,
                                        x + VW <= Wo ? x : Wo - VW, 1);
                if (x + VW < Wo)
                    FN(pixel_conv_step)(xr, off, ntaps, wt, K, kk, bias, orow, ok, Wo - VW, 1);
            }
        }
#else
    for (cyc_index m = 0; m < images; m++)
        for (cyc_index k = 0; k < K; k++)
            for (cyc_index y = 0; y < Ho; y++)
                for (cyc_index x = 0; x < Wo; x++) {
                    T acc = 0;
                    for (cyc_index t = 0; t < ntaps; t++)
                        acc = MADD(wt[t * K + k], in[m * xn + y * xy + off[t] + x], acc);
                    out[m * on + k * ok + y * oy + x] = bias ? acc + bias[k] : acc;
                }
#endif
}
#ifdef PC_K
#undef PC_K
#endif

#undef DW_TAPS
#undef DW_L
#undef DW_INLINE

#undef VEC
#undef VW
#undef VLOAD
#undef VLOADU
#undef VSTORE
#undef VSTREAM
#undef STREAMS
#undef STORE_ROWS
#undef VSPLAT
#undef RB_MIN_R
#undef WALK_FREE
#undef WALK_NV
#undef COLUMN_WALK_MAX
#undef RB_NV_LOADED
#undef RB_NV_SHIFTED
#undef RB_NV
#undef FN
#undef MADD
#undef CAT4
#undef CAT4_
