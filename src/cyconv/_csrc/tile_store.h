/* Storing one output channel of a channels-innermost conv2d tile (element
 * i of the channel at t[i * KB]) into npx consecutive output pixels, plus a
 * bias when `bias` is not NULL. Plain C for the Cython drivers; no
 * validation.
 *
 * The tile's channel is gathered into 16-byte vectors and stored a vector
 * at a time: a tile scatters into up to KB output planes, and one vector
 * store instead of four (float) or two (double) scalar ones leaves room in
 * the store queue while the planes' lines are fetched (measured, Zen 3,
 * float32: the 1x1 and 7x7/2 ResNet layers 5-7 % faster). Each lane gets
 * the same single rounding of t + bias as the scalar code, so the values
 * do not change; without a bias the values are copied (-0.0 stays -0.0). */
#ifndef CYCONV_TILE_STORE_H
#define CYCONV_TILE_STORE_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
typedef float cyc_store_v4f __attribute__((vector_size(16)));
typedef float cyc_store_v2f __attribute__((vector_size(8)));
typedef double cyc_store_v2d __attribute__((vector_size(16)));

static inline void cyc_store_channel_f32(const float *t, ptrdiff_t KB, float *o,
                                         ptrdiff_t npx, const float *bias)
{
    ptrdiff_t i = 0;
    for (; i + 4 <= npx; i += 4) {
        cyc_store_v4f a = {t[i * KB], t[(i + 1) * KB], t[(i + 2) * KB], t[(i + 3) * KB]};
        if (bias) a += *bias;
        memcpy(o + i, &a, sizeof a);
    }
    if (i + 2 <= npx) {
        cyc_store_v2f a = {t[i * KB], t[(i + 1) * KB]};
        if (bias) a += *bias;
        memcpy(o + i, &a, sizeof a);
        i += 2;
    }
    if (i < npx) o[i] = bias ? t[i * KB] + *bias : t[i * KB];
}

static inline void cyc_store_channel_f64(const double *t, ptrdiff_t KB, double *o,
                                         ptrdiff_t npx, const double *bias)
{
    ptrdiff_t i = 0;
    for (; i + 2 <= npx; i += 2) {
        cyc_store_v2d a = {t[i * KB], t[(i + 1) * KB]};
        if (bias) a += *bias;
        memcpy(o + i, &a, sizeof a);
    }
    if (i < npx) o[i] = bias ? t[i * KB] + *bias : t[i * KB];
}
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
/* Channels k0 .. k0+3 of a tile's npx pixels: whole 4 x 4 blocks (pixels x
 * channels) transposed in registers and stored as one vector per channel,
 * then the last pixels in pairs and singly. The same values as
 * cyc_store_channel_f32 on each of the four channels (one rounding of
 * t + bias; without a bias a copy). `o` at channel k0's first pixel. */
static inline void cyc_store_quad_f32(const float *t, ptrdiff_t KB, float *o, ptrdiff_t osk,
                                      ptrdiff_t npx, const float *bias)
{
    ptrdiff_t i = 0;
    __m128 b = bias ? _mm_loadu_ps(bias) : _mm_setzero_ps();
    for (; i + 4 <= npx; i += 4) {
        __m128 r0 = _mm_loadu_ps(t + i * KB), r1 = _mm_loadu_ps(t + (i + 1) * KB);
        __m128 r2 = _mm_loadu_ps(t + (i + 2) * KB), r3 = _mm_loadu_ps(t + (i + 3) * KB);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);   /* r_m: channel m's four pixels */
        if (bias) {
            r0 = _mm_add_ps(r0, _mm_shuffle_ps(b, b, 0x00));
            r1 = _mm_add_ps(r1, _mm_shuffle_ps(b, b, 0x55));
            r2 = _mm_add_ps(r2, _mm_shuffle_ps(b, b, 0xaa));
            r3 = _mm_add_ps(r3, _mm_shuffle_ps(b, b, 0xff));
        }
        _mm_storeu_ps(o + i, r0);
        _mm_storeu_ps(o + osk + i, r1);
        _mm_storeu_ps(o + 2 * osk + i, r2);
        _mm_storeu_ps(o + 3 * osk + i, r3);
    }
    if (i + 2 <= npx) {
        __m128 p0 = _mm_loadu_ps(t + i * KB), p1 = _mm_loadu_ps(t + (i + 1) * KB);
        __m128 lo = _mm_unpacklo_ps(p0, p1), hi = _mm_unpackhi_ps(p0, p1);  /* (ch 0, 1), (2, 3) */
        if (bias) {
            lo = _mm_add_ps(lo, _mm_unpacklo_ps(b, b));
            hi = _mm_add_ps(hi, _mm_unpackhi_ps(b, b));
        }
        _mm_storel_pi((__m64 *)(o + i), lo);
        _mm_storeh_pi((__m64 *)(o + osk + i), lo);
        _mm_storel_pi((__m64 *)(o + 2 * osk + i), hi);
        _mm_storeh_pi((__m64 *)(o + 3 * osk + i), hi);
        i += 2;
    }
    if (i < npx)
        for (ptrdiff_t m = 0; m < 4; m++)
            o[m * osk + i] = bias ? t[i * KB + m] + bias[m] : t[i * KB + m];
}
#else
static inline void cyc_store_quad_f32(const float *t, ptrdiff_t KB, float *o, ptrdiff_t osk,
                                      ptrdiff_t npx, const float *bias)
{
    for (ptrdiff_t m = 0; m < 4; m++)
        cyc_store_channel_f32(t + m, KB, o + m * osk, npx, bias ? bias + m : NULL);
}
#endif
#else
/* Compilers without vector extensions (MSVC): element by element. */
static inline void cyc_store_channel_f32(const float *t, ptrdiff_t KB, float *o,
                                         ptrdiff_t npx, const float *bias)
{
    for (ptrdiff_t i = 0; i < npx; i++) o[i] = bias ? t[i * KB] + *bias : t[i * KB];
}

static inline void cyc_store_channel_f64(const double *t, ptrdiff_t KB, double *o,
                                         ptrdiff_t npx, const double *bias)
{
    for (ptrdiff_t i = 0; i < npx; i++) o[i] = bias ? t[i * KB] + *bias : t[i * KB];
}

static inline void cyc_store_quad_f32(const float *t, ptrdiff_t KB, float *o, ptrdiff_t osk,
                                      ptrdiff_t npx, const float *bias)
{
    for (ptrdiff_t m = 0; m < 4; m++)
        cyc_store_channel_f32(t + m, KB, o + m * osk, npx, bias ? bias + m : NULL);
}
#endif

#endif
