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
#endif

#endif
