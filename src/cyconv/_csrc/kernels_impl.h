/* Kernel template, included by kernels.c once per (element type, level).
 *
 * Expects: T (float or double), SFX (f32/f64), ISA (name token),
 * TARGET (function attribute or empty), VBYTES (vector size in bytes, 0 for
 * plain scalar C), PT (pixels per blocked tile).
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
#define VSTORE(p, src) memcpy((p), &(src), sizeof(VEC))
/* Splat a scalar: x - 0 is exactly x for every x (x + 0 is not, for -0.0),
 * so the compiler drops the subtraction and emits a single broadcast. */
#define VSPLAT(x) ((x) - (VEC){0})
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
    for (; x + VW <= width; x += VW) {
        VEC a0 = {0};
        const T *wk = w;
        for (cyc_index c = 0; c < C; c++) {
            for (cyc_index r = 0; r < R; r++) {
                const T *p = in + c * cs + r * rs + x;
                for (cyc_index s = 0; s < S; s++, wk++) {
                    VEC wv = VSPLAT(*wk), v0;
                    VLOAD(v0, p + s * ds);
                    a0 += wv * v0;
                }
            }
        }
        VSTORE(out + x, a0);
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

/* TR output rows at once, for unit stride and dilation: one weight
 * broadcast and one pass of loop control serve 2*TR vectors of outputs.
 * Per pixel the sum runs in the same (c, r, s) order as spatial_row, so
 * results are bitwise identical whichever of the two computes a row. */
TARGET static void FN(spatial_rows)(const T *in, cyc_index cs, cyc_index rs,
                                    cyc_index C, cyc_index R, cyc_index S,
                                    const T *w, T *out, cyc_index os,
                                    cyc_index width, cyc_index nrows)
{
    cyc_index t = 0;
#if VBYTES
    for (; t + TR <= nrows; t += TR) {
        cyc_index x = 0;
        for (; x + 2 * VW <= width; x += 2 * VW) {
            VEC acc[TR][2];
#pragma GCC unroll 8
            for (int k = 0; k < TR; k++) { acc[k][0] = (VEC){0}; acc[k][1] = (VEC){0}; }
            const T *wk = w;
            for (cyc_index c = 0; c < C; c++) {
                for (cyc_index r = 0; r < R; r++) {
                    const T *p = in + c * cs + (t + r) * rs + x;
                    for (cyc_index s = 0; s < S; s++, wk++) {
                        VEC wv = VSPLAT(*wk);
#pragma GCC unroll 8
                        for (int k = 0; k < TR; k++) {
                            VEC v0, v1;
                            VLOAD(v0, p + k * rs + s); VLOAD(v1, p + k * rs + s + VW);
                            acc[k][0] += wv * v0;
                            acc[k][1] += wv * v1;
                        }
                    }
                }
            }
#pragma GCC unroll 8
            for (int k = 0; k < TR; k++) {
                VSTORE(out + (t + k) * os + x, acc[k][0]);
                VSTORE(out + (t + k) * os + x + VW, acc[k][1]);
            }
        }
        if (x < width)
            for (int k = 0; k < TR; k++)
                FN(spatial_row)(in + (t + k) * rs + x, cs, rs, 1, C, R, S, w,
                                out + (t + k) * os + x, width - x);
    }
#endif
    for (; t < nrows; t++)
        FN(spatial_row)(in + t * rs, cs, rs, 1, C, R, S, w, out + t * os, width);
}

#if VBYTES
#define KB CYC_BLOCK_CHANNELS(VBYTES, T)
TARGET static inline __attribute__((always_inline)) void
FN(blocked_tile_body)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                      cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                      const T *wp, T *tile)
{
    /* PT pixels x 2 vectors of channels: fully unrolled so the
     * accumulators live in registers; weights are loaded once per
     * (c, r, s) and each input value is broadcast once. */
    VEC acc[PT][2];
#pragma GCC unroll 32
    for (int i = 0; i < PT; i++) { acc[i][0] = (VEC){0}; acc[i][1] = (VEC){0}; }
    for (cyc_index c = 0; c < C; c++) {
        for (cyc_index r = 0; r < R; r++) {
            const T *p = in + c * cs + r * rs;
            for (cyc_index s = 0; s < S; s++, wp += KB) {
                const T *q = p + s * ds;
                VEC w0, w1;
                VLOAD(w0, wp); VLOAD(w1, wp + VW);
#pragma GCC unroll 32
                for (int i = 0; i < PT; i++) {
                    VEC b = VSPLAT(q[i * sx]);
                    acc[i][0] += b * w0;
                    acc[i][1] += b * w1;
                }
            }
        }
    }
#pragma GCC unroll 32
    for (int i = 0; i < PT; i++) {
        VSTORE(tile + i * KB, acc[i][0]);
        VSTORE(tile + i * KB + VW, acc[i][1]);
    }
}

TARGET static void FN(blocked_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                    cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                    const T *wp, T *tile)
{
    /* Unit pixel stride (stride-1 layers, flat tiles) gets its own copy:
     * the PT input offsets become constants instead of registers. */
    if (sx == 1)
        FN(blocked_tile_body)(in, cs, rs, ds, 1, C, R, S, wp, tile);
    else
        FN(blocked_tile_body)(in, cs, rs, ds, sx, C, R, S, wp, tile);
}
#undef KB
#else
/* Scalar build (compilers without vector extensions): KB = 2, same order. */
static void FN(blocked_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                             cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                             const T *wp, T *tile)
{
    for (int i = 0; i < PT * 2; i++) tile[i] = 0;
    for (cyc_index c = 0; c < C; c++)
        for (cyc_index r = 0; r < R; r++)
            for (cyc_index s = 0; s < S; s++, wp += 2) {
                const T *q = in + c * cs + r * rs + s * ds;
                for (int i = 0; i < PT; i++) {
                    tile[2 * i] += q[i * sx] * wp[0];
                    tile[2 * i + 1] += q[i * sx] * wp[1];
                }
            }
}
#endif

/* A tile of FK output channels x FV vectors of consecutive flat pixels
 * (the padded image read as one long row; unit stride), with the weights in
 * their natural (K, C, R, S) layout: wk[k] points at output channel k's
 * C*R*S weights, so nothing is repacked. For layers whose images are too
 * small to amortize packing. Sum order per pixel: (c, r, s), from zero.
 *   tile[k*FV*VW + x] = sum_{c,r,s} wk[k][(c*R + r)*S + s] * in[c*cs + r*rs + s*ds + x] */
#if VBYTES
TARGET static void FN(flat_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                                 cyc_index C, cyc_index R, cyc_index S,
                                 const T *const *wk, T *tile)
{
    VEC acc[FK][FV];
#pragma GCC unroll 16
    for (int k = 0; k < FK; k++)
#pragma GCC unroll 16
        for (int v = 0; v < FV; v++) acc[k][v] = (VEC){0};
    cyc_index t = 0;
    for (cyc_index c = 0; c < C; c++) {
        for (cyc_index r = 0; r < R; r++) {
            const T *p = in + c * cs + r * rs;
            for (cyc_index s = 0; s < S; s++, t++) {
                VEC x[FV];
#pragma GCC unroll 16
                for (int v = 0; v < FV; v++) VLOAD(x[v], p + s * ds + v * VW);
#pragma GCC unroll 16
                for (int k = 0; k < FK; k++) {
                    /* The FK weight streams advance slowly (one float per
                     * step) and the hardware prefetcher leaves them cold:
                     * ask for them a few cache lines ahead. */
                    __builtin_prefetch(wk[k] + t + 256 / sizeof(T));
                    VEC wv = VSPLAT(wk[k][t]);
#pragma GCC unroll 16
                    for (int v = 0; v < FV; v++) acc[k][v] += wv * x[v];
                }
            }
        }
    }
#pragma GCC unroll 16
    for (int k = 0; k < FK; k++)
#pragma GCC unroll 16
        for (int v = 0; v < FV; v++) VSTORE(tile + (k * FV + v) * VW, acc[k][v]);
}
#else
static void FN(flat_tile)(const T *in, cyc_index cs, cyc_index rs, cyc_index ds,
                          cyc_index C, cyc_index R, cyc_index S,
                          const T *const *wk, T *tile)
{
    /* scalar build: FV "vectors" of one element */
    for (int i = 0; i < FK * FV; i++) tile[i] = 0;
    cyc_index t = 0;
    for (cyc_index c = 0; c < C; c++)
        for (cyc_index r = 0; r < R; r++)
            for (cyc_index s = 0; s < S; s++, t++)
                for (int k = 0; k < FK; k++)
                    for (int v = 0; v < FV; v++)
                        tile[k * FV + v] += wk[k][t] * in[c * cs + r * rs + s * ds + v];
}
#endif

#undef VEC
#undef VW
#undef VLOAD
#undef VSTORE
#undef VSPLAT
#undef FN
#undef MADD
#undef CAT4
#undef CAT4_
