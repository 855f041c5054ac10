/* Sample conversions for the 8/16-bit image path, included by kernels.c once
 * per instruction-set level (expects ISA, TARGET, VBYTES like kernels_impl.h).
 * No validation: pointers are valid for n samples. */
#define PCAT3_(a, b, c) a##_##b##_##c
#define PCAT3(a, b, c) PCAT3_(a, b, c)
#define PFN(name) PCAT3(cyc, name, ISA)

#if VBYTES
#define PVW (VBYTES / 4)
typedef float PCAT3(pvf, ISA, t) __attribute__((vector_size(VBYTES)));
typedef int PCAT3(pvi, ISA, t) __attribute__((vector_size(VBYTES)));
typedef unsigned char PCAT3(pvu8, ISA, t) __attribute__((vector_size(VBYTES / 4)));
typedef unsigned short PCAT3(pvu16, ISA, t) __attribute__((vector_size(VBYTES / 2)));
#define PVF PCAT3(pvf, ISA, t)
#define PVI PCAT3(pvi, ISA, t)
#endif

/* One output row as a list of taps: out[x] = sum_t w[t] * src[t][x] for
 * 0 <= x < width, summed in t order from zero, fused (FMA) where the level
 * has it, the same in the vector lanes and the scalar tail. The caller
 * leaves out zero weights and points src[t] at each tap's input row, so a
 * ring of rows needs no copying and a sparse kernel (sharpen) no zero work. */
TARGET static void PFN(taps_row_f32)(const float *const *src, const float *w, cyc_index ntaps,
                                     float *out, cyc_index width)
{
    cyc_index x = 0;
#if VBYTES
    for (; x + 4 * PVW <= width; x += 4 * PVW) {
        PVF a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (cyc_index t = 0; t < ntaps; t++) {
            const PVF wv = w[t] - (PVF){0};   /* splat, as kernels_impl.h */
            const float *p = src[t] + x;
            PVF v0, v1, v2, v3;
            memcpy(&v0, p, sizeof v0); memcpy(&v1, p + PVW, sizeof v1);
            memcpy(&v2, p + 2 * PVW, sizeof v2); memcpy(&v3, p + 3 * PVW, sizeof v3);
            a0 += wv * v0; a1 += wv * v1; a2 += wv * v2; a3 += wv * v3;
        }
        memcpy(out + x, &a0, sizeof a0); memcpy(out + x + PVW, &a1, sizeof a1);
        memcpy(out + x + 2 * PVW, &a2, sizeof a2); memcpy(out + x + 3 * PVW, &a3, sizeof a3);
    }
    for (; x + PVW <= width; x += PVW) {
        PVF a0 = {0};
        for (cyc_index t = 0; t < ntaps; t++) {
            PVF v0;
            memcpy(&v0, src[t] + x, sizeof v0);
            a0 += (w[t] - (PVF){0}) * v0;
        }
        memcpy(out + x, &a0, sizeof a0);
    }
#endif
    for (; x < width; x++) {
        float acc = 0;
        for (cyc_index t = 0; t < ntaps; t++)
#if HAS_FMA
            acc = __builtin_fmaf(w[t], src[t][x], acc);
#else
            acc = acc + w[t] * src[t][x];
#endif
        out[x] = acc;
    }
}

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
 * turn the saturating compares into min/max by itself. x86 needs
 * <immintrin.h> (kernels.c includes it, CYC_X86_INTRINSICS). */
#if VBYTES
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

/* Narrow PVW int32 values, already in the target range, to 8 or 16 bits and
 * store them: pack instructions on x86 (the generic conversion there is
 * scalarised), the compiler's generic conversion elsewhere. */
#if VBYTES
TARGET static inline __attribute__((always_inline)) void
PFN(store_u8_v)(PVI n, unsigned char *dst)
{
#if CYC_X86_INTRINSICS && VBYTES == 64
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8((__m512i)n));
#elif CYC_X86_INTRINSICS && VBYTES == 32
    /* 8 values: pack within each 128-bit lane, then gather the two 4-byte groups */
    __m256i w = _mm256_packs_epi32((__m256i)n, (__m256i)n);
    __m256i b = _mm256_packus_epi16(w, w);
    int lo = _mm256_cvtsi256_si32(b), hi = _mm256_extract_epi32(b, 4);
    memcpy(dst, &lo, 4);
    memcpy(dst + 4, &hi, 4);
#elif CYC_X86_INTRINSICS && VBYTES == 16
    __m128i w = _mm_packs_epi32((__m128i)n, (__m128i)n);
    int v = _mm_cvtsi128_si32(_mm_packus_epi16(w, w));
    memcpy(dst, &v, 4);
#else
    PCAT3(pvu8, ISA, t) b = __builtin_convertvector(n, PCAT3(pvu8, ISA, t));
    memcpy(dst, &b, sizeof b);
#endif
}

TARGET static inline __attribute__((always_inline)) void
PFN(store_u16_v)(PVI n, unsigned short *dst)
{
#if CYC_X86_INTRINSICS && VBYTES == 64
    _mm256_storeu_si256((__m256i *)dst, _mm512_cvtepi32_epi16((__m512i)n));
#elif CYC_X86_INTRINSICS && VBYTES == 32
    __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32((__m256i)n, (__m256i)n), 0x08);
    _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(w));
#elif CYC_X86_INTRINSICS && VBYTES == 16
    /* SSE2 packs signed: shift 0..65535 to the int16 range and back */
    const __m128i half = _mm_set1_epi32(32768);
    __m128i w = _mm_packs_epi32(_mm_sub_epi32((__m128i)n, half), _mm_sub_epi32((__m128i)n, half));
    w = _mm_xor_si128(w, _mm_set1_epi16((short)0x8000));
    _mm_storel_epi64((__m128i *)dst, w);
#else
    PCAT3(pvu16, ISA, t) b = __builtin_convertvector(n, PCAT3(pvu16, ISA, t));
    memcpy(dst, &b, sizeof b);
#endif
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
        PFN(store_u8_v)(PFN(round_saturate_v)(x, 255.0f), dst + i);
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
        PFN(store_u16_v)(PFN(round_saturate_v)(x, 65535.0f), dst + i);
    }
#endif
    for (; i < n; i++) {
        float x = src[i] > 0.0f ? src[i] : 0.0f;
        x = x < 65535.0f ? x : 65535.0f;
        dst[i] = (unsigned short)(int)((x + 12582912.0f) - 12582912.0f);
    }
}

/* Is any of n contiguous floats / doubles inf or NaN? A value has every
 * exponent bit set exactly when adding one to its exponent field carries
 * into the sign bit; AND, ADD and OR vectorize at every level. Four
 * independent vectors a step: with one OR chain a call ran at 35 GB/s,
 * a third of a load-bound scan's speed (Zen 4, 4 MB of float32 in L3: 115
 * us against 48 here with AVX2). */
#if VBYTES
typedef uint32_t PCAT3(pvu32, ISA, t) __attribute__((vector_size(VBYTES)));
typedef uint64_t PCAT3(pvu64, ISA, t) __attribute__((vector_size(VBYTES)));
#define NONFINITE_VECTORS(U, VU, EXP, ONE)                                       \
    const cyc_index lanes = VBYTES / sizeof(U);                                  \
    VU a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                   \
    for (; i + 4 * lanes <= n; i += 4 * lanes) {                                 \
        VU x0, x1, x2, x3;                                                       \
        memcpy(&x0, row + i, sizeof x0);                                         \
        memcpy(&x1, row + i + lanes, sizeof x1);                                 \
        memcpy(&x2, row + i + 2 * lanes, sizeof x2);                             \
        memcpy(&x3, row + i + 3 * lanes, sizeof x3);                             \
        a0 |= (x0 & (EXP)) + (ONE);                                              \
        a1 |= (x1 & (EXP)) + (ONE);                                              \
        a2 |= (x2 & (EXP)) + (ONE);                                              \
        a3 |= (x3 & (EXP)) + (ONE);                                              \
    }                                                                            \
    for (; i + lanes <= n; i += lanes) {                                         \
        VU x0;                                                                   \
        memcpy(&x0, row + i, sizeof x0);                                         \
        a0 |= (x0 & (EXP)) + (ONE);                                              \
    }                                                                            \
    a0 |= a1 | a2 | a3;                                                          \
    for (cyc_index k = 0; k < lanes; k++) carries |= a0[k];
#else
#define NONFINITE_VECTORS(U, VU, EXP, ONE)
#endif
#define NONFINITE(SFX, T, U, VU, EXP, ONE)                                       \
    TARGET static int PFN(nonfinite_##SFX)(const T *row, cyc_index n)            \
    {                                                                            \
        U carries = 0, u;                                                        \
        cyc_index i = 0;                                                         \
        NONFINITE_VECTORS(U, VU, EXP, ONE)                                       \
        for (; i < n; i++) {                                                     \
            memcpy(&u, row + i, sizeof u);                                       \
            carries |= (u & (EXP)) + (ONE);                                      \
        }                                                                        \
        return (int)(carries >> (8 * sizeof(U) - 1));                            \
    }
NONFINITE(f32, float, uint32_t, PCAT3(pvu32, ISA, t), 0x7f800000u, 0x00800000u)
NONFINITE(f64, double, uint64_t, PCAT3(pvu64, ISA, t), UINT64_C(0x7ff0000000000000),
          UINT64_C(0x0010000000000000))
#undef NONFINITE
#undef NONFINITE_VECTORS

#undef PVF
#undef PVI
#undef PVW
#undef PFN
#undef PCAT3
#undef PCAT3_
