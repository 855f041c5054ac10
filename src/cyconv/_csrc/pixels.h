/* Sample conversions for cyconv's 8- and 16-bit image path: plain C loops
 * the compiler vectorizes at the build's baseline; no validation, no Python.
 * Callers pass valid pointers to n samples. */
#ifndef CYCONV_PIXELS_H
#define CYCONV_PIXELS_H

#include <stddef.h>

static inline void cyc_u8_to_f32(const unsigned char *restrict src, float *restrict dst,
                                 ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

static inline void cyc_u16_to_f32(const unsigned short *restrict src, float *restrict dst,
                                  ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

/* x saturated to [0, hi] (NaN -> 0), then rounded half to even: adding and
 * subtracting 1.5 * 2**23 leaves an integer, rounded in the default
 * (nearest, ties to even) mode, for every x in [0, 2**22]. hi <= 65535. */
static inline float cyc_round_saturate(float x, float hi)
{
    x = x > 0.0f ? x : 0.0f;
    x = x < hi ? x : hi;
    return (x + 12582912.0f) - 12582912.0f;
}

static inline void cyc_f32_to_u8(const float *restrict src, unsigned char *restrict dst,
                                 ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = (unsigned char)(int)cyc_round_saturate(src[i], 255.0f);
}

static inline void cyc_f32_to_u16(const float *restrict src, unsigned short *restrict dst,
                                  ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] = (unsigned short)(int)cyc_round_saturate(src[i], 65535.0f);
}

#endif
