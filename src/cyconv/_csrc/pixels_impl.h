/* Sample conversions for the 8/16-bit image path, included by kernels.c once
 * per instruction-set level (expects ISA, TARGET, VBYTES like kernels_impl.h).
 * No validation: pointers are valid for n samples. */
#define PCAT3_(a, b, c) a##_##b##_##c
#define PCAT3(a, b, c) PCAT3_(a, b, c)
#define PFN(name) PCAT3(cyc, name, ISA)

/* Unsigned samples to float32: plain loops the compiler vectorizes for the level. */
TARGET static void PFN(u8_to_f32)(const unsigned char *restrict src, float *restrict dst,
                                  cyc_index n)
{
    for (cyc_index i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

TARGET static void PFN(u16_to_f32)(const unsigned short *restrict src, float *restrict dst,
                                   cyc_index n)
{
    for (cyc_index i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

/* float32 to unsigned samples: saturated to [0, hi] (NaN -> 0), then rounded
 * half to even by adding 1.5 * 2**23 (exact for 0 <= x <= 2**22 in the
 * default rounding mode), which leaves the integer in the low mantissa bits.
 * Written with explicit vectors: without -ffast-math the compiler will not
 * turn the saturating compares into min/max by itself. */
#if VBYTES
#define PVW (VBYTES / 4)
typedef float PCAT3(pvf, ISA, t) __attribute__((vector_size(VBYTES)));
typedef int PCAT3(pvi, ISA, t) __attribute__((vector_size(VBYTES)));
typedef unsigned char PCAT3(pvu8, ISA, t) __attribute__((vector_size(VBYTES / 4)));
typedef unsigned short PCAT3(pvu16, ISA, t) __attribute__((vector_size(VBYTES / 2)));
#define PVF PCAT3(pvf, ISA, t)
#define PVI PCAT3(pvi, ISA, t)

TARGET static inline __attribute__((always_inline)) PVI PFN(round_saturate_v)(PVF x, float hi)
{
    const PVF zero = {0}, top = zero + hi, magic = zero + 12582912.0f;
    x = (PVF)((PVI)x & (x > zero));                          /* NaN, negatives -> 0 */
    PVI low = x < top;
    x = (PVF)(((PVI)x & low) | ((PVI)top & ~low));
    x = x + magic;
    return (PVI)x - (PVI)magic;
}
#endif

TARGET static void PFN(f32_to_u8)(const float *restrict src, unsigned char *restrict dst,
                                  cyc_index n)
{
    cyc_index i = 0;
#if VBYTES
    for (; i + PVW <= n; i += PVW) {
        PVF x;
        memcpy(&x, src + i, sizeof x);
        PCAT3(pvu8, ISA, t) b = __builtin_convertvector(PFN(round_saturate_v)(x, 255.0f),
                                                         PCAT3(pvu8, ISA, t));
        memcpy(dst + i, &b, sizeof b);
    }
#endif
    for (; i < n; i++) {
        float x = src[i] > 0.0f ? src[i] : 0.0f;
        x = x < 255.0f ? x : 255.0f;
        dst[i] = (unsigned char)(int)((x + 12582912.0f) - 12582912.0f);
    }
}

TARGET static void PFN(f32_to_u16)(const float *restrict src, unsigned short *restrict dst,
                                   cyc_index n)
{
    cyc_index i = 0;
#if VBYTES
    for (; i + PVW <= n; i += PVW) {
        PVF x;
        memcpy(&x, src + i, sizeof x);
        PCAT3(pvu16, ISA, t) b = __builtin_convertvector(PFN(round_saturate_v)(x, 65535.0f),
                                                          PCAT3(pvu16, ISA, t));
        memcpy(dst + i, &b, sizeof b);
    }
#endif
    for (; i < n; i++) {
        float x = src[i] > 0.0f ? src[i] : 0.0f;
        x = x < 65535.0f ? x : 65535.0f;
        dst[i] = (unsigned short)(int)((x + 12582912.0f) - 12582912.0f);
    }
}

#undef PVF
#undef PVI
#undef PVW
#undef PFN
#undef PCAT3
#undef PCAT3_
