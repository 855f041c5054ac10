/* Instantiates the kernel template once per element type and instruction-set
 * level, and picks the level at run time. Built with portable flags only:
 * the AVX2 and AVX-512 copies get their instruction sets from per-function
 * target attributes, and are only ever called after cpuid/xgetbv say the CPU
 * and the OS support them. */
#include <stdint.h>
#include <string.h>
#include "kernels.h"

/* GCC and Clang (clang-cl included: it defines __clang__ and _MSC_VER, not
 * __GNUC__) compile the vector template; MSVC's cl.exe does not, and gets the
 * scalar fallback. setup.py therefore builds Windows wheels with clang-cl. */
#if defined(__GNUC__) || defined(__clang__)
#define CYC_HAVE_VECTOR_EXT 1
#else
#define CYC_HAVE_VECTOR_EXT 0
#endif

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#define CYC_X86 1
#else
#define CYC_X86 0
#endif
/* An empty asm that says a vector value lives in a register here: it cuts
 * the optimizer's view across that point (see blocked_tile_body). */
#if CYC_HAVE_VECTOR_EXT && CYC_X86
#define CYC_IN_REGISTER(v) __asm__("" : "+v"(v))
#elif CYC_HAVE_VECTOR_EXT && (defined(__aarch64__) || defined(_M_ARM64))
#define CYC_IN_REGISTER(v) __asm__("" : "+w"(v))
#else
#define CYC_IN_REGISTER(v) ((void)0)
#endif
/* Run-time dispatch needs the vector kernels and an x86 CPU to ask. */
#define CYC_X86_DISPATCH (CYC_HAVE_VECTOR_EXT && CYC_X86)

/* How to ask the CPU: MSVC intrinsics, or GCC/Clang's cpuid.h and inline
 * asm; another compiler reports no features (and runs the baseline). */
#if CYC_X86 && defined(_MSC_VER) && !defined(__clang__)
#define CYC_CPUID_MSVC 1
#include <intrin.h>           /* cl.exe: __cpuidex, _xgetbv */
#elif CYC_X86 && (defined(__GNUC__) || defined(__clang__))
#define CYC_CPUID_GNU 1
#include <cpuid.h>            /* GCC, Clang, clang-cl, mingw-w64 */
#endif
#if defined(CYC_CPUID_MSVC) || defined(CYC_CPUID_GNU)
#define CYC_HAVE_CPUID 1
#else
#define CYC_HAVE_CPUID 0
#endif
/* x86 intrinsics for the pack instructions of the 8/16-bit conversions
 * (pixels_impl.h). Not with clang-cl: its <immintrin.h>, like MSVC's, declares
 * AVX2/AVX-512 intrinsics only when /arch enables them for the whole file;
 * there the conversions take the generic vector code. */
#if CYC_X86_DISPATCH && !defined(_MSC_VER)
#define CYC_X86_INTRINSICS 1
#include <immintrin.h>
#else
#define CYC_X86_INTRINSICS 0
#endif
/* valignd's shift is an immediate: GCC accepts one that is constant once
 * inlined and unrolled, Clang only a constant expression. The AVX-512 rows
 * make shifted vectors in registers with GCC builds only. */
#if CYC_X86_INTRINSICS && defined(__GNUC__) && !defined(__clang__)
#define CYC_ALIGNR_SHIFTS 1
#else
#define CYC_ALIGNR_SHIFTS 0
#endif
#if CYC_X86 && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/* Each level's tile parameters, defined once: the template is instantiated
 * with them, and the tables at the end report the tile sizes they give.
 * VBYTES: vector bytes (0: plain scalar C); PT: pixels per blocked tile;
 * TR: rows per spatial_rows step; RB_REGS, RB_ACCS: vector registers and
 * accumulators the register-blocked rows may use; FK x FV: flat tiles of FK output channels
 * by FV vectors of pixels; SHIFTS: single-channel 3x3 and square 4-15 tap
 * rows make their shifted input vectors in registers (kernels_impl.h). */
#if CYC_HAVE_VECTOR_EXT
#define BASE_VBYTES 16
#define BASE_PT 6
#if defined(__aarch64__) || defined(_M_ARM64)
#define BASE_TR 8        /* 32 NEON registers: up to 24 accumulators */
#define BASE_RB_REGS 32
#define BASE_RB_ACCS 24
#else
#define BASE_TR 4        /* 16 xmm registers: up to 12 accumulators */
#define BASE_RB_REGS 16
#define BASE_RB_ACCS 12
#endif
#else
#define BASE_VBYTES 0
#define BASE_PT 4
#define BASE_TR 1
#define BASE_RB_REGS 1
#define BASE_RB_ACCS 1
#endif
#define BASE_SHIFTS 0
#define BASE_FK 3        /* 3 x 4 accumulators: measured faster than 2 x 4 (SSE2, Zen 3) */
#define BASE_FV 4
#define AVX2_VBYTES 32
#define AVX2_SHIFTS 0     /* 256-bit shifts across 128-bit lanes take two shuffles: measured no faster (Zen 4, 3x3) */
#define AVX2_PT 6
#define AVX2_TR 4
#define AVX2_RB_REGS 16
#define AVX2_RB_ACCS 12
#define AVX2_FK 3        /* 12 accumulators; each loaded input vector feeds 3 FMAs (Zen 3: 1.8x 2 x 4) */
#define AVX2_FV 4
#define AVX512_VBYTES 64
#define AVX512_SHIFTS CYC_ALIGNR_SHIFTS   /* valignd: one instruction a shift */
/* The square kernels whose transposed rows make their shifts in registers
 * (spatial_rows_t's switch): cyc_kernel_table.rows_t_square_once. Their 9x9
 * blocks hold 4 accumulators, 4 FMA chains: enough where 512-bit FMAs are
 * double-pumped (Zen 4: 98 GFLOP/s against 83 loading each shifted vector),
 * half what full-width ones need (Zen 5, row kernel alone, 1024^2: float32
 * 137-141 against 174-191 for the 8-row blocks loading them, float64 69-73
 * against 85-94), so with cyc_set_rows_512 on, 9x9 takes those. */
#define AVX512_ROWS_T_ONCE (AVX512_SHIFTS ? 1u << 3 | 1u << 5 | 1u << 7 | 1u << 9 : 0u)
#define AVX512_ROWS_T_ONCE_FULL_WIDTH (AVX512_ROWS_T_ONCE & ~(1u << 9))
/* The square kernels spatial_rows_s2 serves (its switch), every other column
 * read in place: cyc_kernel_table.rows_s2_square. */
#define AVX512_ROWS_S2 (AVX512_SHIFTS ? 1u << 3 | 1u << 5 | 1u << 7 : 0u)
#define AVX512_PT 14
#define AVX512_TR 8      /* up to 24 accumulators in the 32 zmm registers */
#define AVX512_RB_REGS 32
#define AVX512_RB_ACCS 24
#define AVX512_FK 4
#define AVX512_FV 4

/* A compile-time check that works in C89 and MSVC (a negative array size). */
#define CYC_STATIC_ASSERT(cond, name) typedef char cyc_static_assert_##name[(cond) ? 1 : -1]
CYC_STATIC_ASSERT(BASE_FK <= CYC_MAX_FLAT_CHANNELS, base_flat_channels);
CYC_STATIC_ASSERT(AVX2_FK <= CYC_MAX_FLAT_CHANNELS, avx2_flat_channels);
CYC_STATIC_ASSERT(AVX512_FK <= CYC_MAX_FLAT_CHANNELS, avx512_flat_channels);
CYC_STATIC_ASSERT(BASE_PT <= CYC_MAX_TILE_PIXELS, base_tile_pixels);
CYC_STATIC_ASSERT(AVX2_PT <= CYC_MAX_TILE_PIXELS, avx2_tile_pixels);
CYC_STATIC_ASSERT(AVX512_PT <= CYC_MAX_TILE_PIXELS, avx512_tile_pixels);

#if CYC_X86_DISPATCH
/* cyc_set_rows_512's choice (below), which the AVX-512 code reads too. */
static int rows_512;
#endif

/* Do the transposed rows of a square 9x9 kernel make their shifts in
 * registers (SHIFTS levels)? Per level; see AVX512_ROWS_T_ONCE. */
#define ROWS_T_SHIFTS_9 1
/* Do the square rows take CYC_SQUARE_BLOCK_ROWS_DP's blocks instead of
 * CYC_SQUARE_BLOCK_ROWS' (SHIFTS levels)? Per level. */
#define SQUARE_ROWS_DP 0

/* ---- baseline: SSE2 on x86-64, NEON on aarch64, 16-byte vectors ---- */
#define ISA base
#define TARGET
#if defined(__aarch64__) && CYC_HAVE_VECTOR_EXT
#define HAS_FMA 1   /* AArch64 always has FMA, and the compiler fuses NEON multiply-adds */
#else
#define HAS_FMA 0
#endif
#define VBYTES BASE_VBYTES
#define PT BASE_PT
#define TR BASE_TR
#define RB_REGS BASE_RB_REGS
#define RB_ACCS BASE_RB_ACCS
#define FK BASE_FK
#define FV BASE_FV
#define SHIFTS BASE_SHIFTS
#define T float
#define SFX f32
#include "kernels_impl.h"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "kernels_impl.h"
#undef T
#undef SFX
#include "pixels_impl.h"
#undef ISA
#undef TARGET
#undef HAS_FMA
#undef VBYTES
#undef PT
#undef TR
#undef RB_REGS
#undef RB_ACCS
#undef FK
#undef FV
#undef SHIFTS

#if CYC_X86_DISPATCH
/* ---- AVX2 + FMA: 16 ymm registers, 6 pixels x 2 vectors = 12 accumulators ---- */
#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define HAS_FMA 1
#define VBYTES AVX2_VBYTES
#define PT AVX2_PT
#define TR AVX2_TR
#define RB_REGS AVX2_RB_REGS
#define RB_ACCS AVX2_RB_ACCS
#define FK AVX2_FK
#define FV AVX2_FV
#define SHIFTS AVX2_SHIFTS
#define T float
#define SFX f32
#include "kernels_impl.h"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "kernels_impl.h"
#undef T
#undef SFX
#include "pixels_impl.h"
#undef ISA
#undef TARGET
#undef HAS_FMA
#undef VBYTES
#undef PT
#undef TR
#undef RB_REGS
#undef RB_ACCS
#undef FK
#undef FV
#undef SHIFTS

/* ---- AVX-512F: 32 zmm registers, 14 pixels x 2 vectors = 28 accumulators ---- */
#define ISA avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define HAS_FMA 1
#define VBYTES AVX512_VBYTES
#define PT AVX512_PT
#define TR AVX512_TR
#define RB_REGS AVX512_RB_REGS
#define RB_ACCS AVX512_RB_ACCS
#define FK AVX512_FK
#define FV AVX512_FV
#define SHIFTS AVX512_SHIFTS
#undef ROWS_T_SHIFTS_9
#define ROWS_T_SHIFTS_9 (!rows_512)
#undef SQUARE_ROWS_DP
#define SQUARE_ROWS_DP (!rows_512)
#define T float
#define SFX f32
#include "kernels_impl.h"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "kernels_impl.h"
#undef T
#undef SFX
#include "pixels_impl.h"
#undef ISA
#undef TARGET
#undef HAS_FMA
#undef VBYTES
#undef PT
#undef TR
#undef RB_REGS
#undef RB_ACCS
#undef FK
#undef FV
#undef SHIFTS
#endif

#if CYC_X86_DISPATCH
/* The AVX-512 level's row kernels: the 512-bit ones where each loaded input
 * vector feeds many FMAs (kernels of 8+ rows, or columns of 5+ taps) or
 * where the shifted vectors are made in registers (single-channel 3x3 wide
 * enough for two 512-bit vectors, single-channel square 4x4-7x7, R x 3,
 * R x 5 and R x 7; 4x4, 6x6 and the R x S ones by analogy with 5x5 and
 * 7x7, not measured on Zen 4), the 256-bit ones elsewhere. On Zen 4,
 * which runs 512-bit FMAs double-pumped (the same peak as AVX2), 512-bit
 * rows that load each shifted vector measured 6-29 % slower on 1024^2
 * images with kernels of 1-7 rows (every unaligned 64-byte load splits a
 * cache line) and 5-50 % faster with 8+ rows (bench/RESULTS.md,
 * 2026-12-02); with the shifts made by valignd, the kernel alone at 1024^2
 * float32: 3x3 84 GFLOP/s (256-bit rows 72), 5x5 99-104 (69-78), 7x7 96
 * (78-85). Both sum each pixel in the same order with the same fused
 * rounding, so the choice never changes a bit. */
/* cyc_set_rows_512: every row kernel 512 bits wide, but rows narrower than
 * one 512-bit vector, which the 256-bit code still runs in vectors (8x8
 * float32 3x3 "same": 2.3 us a call against 3.0 through the scalar tail) */
#define MIXED(NAME, SFX, T, USE_512)                                                  \
    static void cyc_##NAME##_##SFX##_mixed(const T *in, cyc_index cs, cyc_index rs,     \
                                           cyc_index C, cyc_index R, cyc_index S,       \
                                           const T *w, T *out, cyc_index os,            \
                                           cyc_index width, cyc_index nrows, int flags)  \
    {                                                                                   \
        if ((rows_512 && width >= AVX512_VBYTES / (cyc_index)sizeof(T)) || (USE_512))  \
            cyc_##NAME##_##SFX##_avx512(in, cs, rs, C, R, S, w, out, os, width, nrows,  \
                                        flags);                                         \
        else                                                                            \
            cyc_##NAME##_##SFX##_avx2(in, cs, rs, C, R, S, w, out, os, width, nrows,    \
                                      flags);                                           \
    }
#define ROWS_ON_512(T)                                                                  \
    (R >= 8 || (S == 1 && R >= 5)                                                       \
     || (AVX512_SHIFTS && C == 1 && R == 3 && S == 3 && nrows >= 3                      \
         && width >= 2 * AVX512_VBYTES / (cyc_index)sizeof(T))                          \
     || (AVX512_SHIFTS && C == 1 && R == S && R >= 4)                                  \
     || (AVX512_SHIFTS && C == 1 && CYC_RECT_SHIFTED(R, S)))
MIXED(spatial_rows, f32, float, ROWS_ON_512(float))
MIXED(spatial_rows, f64, double, ROWS_ON_512(double))
/* The same choice for the rows with the taps transposed (a column-major
 * image read as its transpose). Loading each shifted vector, 256-bit rows
 * beat 512-bit ones below 8 rows (1024^2 column-major images, Zen 4, one
 * thread: 5x5 float32 1.05x, 7x7 1.15x, float64 1.25x / 1.28x; 3x3 and
 * 9x9 within 4 %); the single-channel kernels whose shifts the 512-bit
 * code makes in registers (spatial_rows_t: squares, and R x S of 3, 5 and
 * 7 taps, those not measured on Zen 4) go there. */
#define ROWS_T_ON_512(T)                                                                \
    (R >= 8                                                                             \
     || (C == 1 && R == S && R < 32 && (AVX512_ROWS_T_ONCE >> R & 1) && nrows >= 5       \
         && width >= 2 * AVX512_VBYTES / (cyc_index)sizeof(T))                          \
     || (AVX512_SHIFTS && C == 1 && CYC_RECT_T_SHIFTED(R, S) && nrows >= 5              \
         && width >= 2 * AVX512_VBYTES / (cyc_index)sizeof(T)))
MIXED(spatial_rows_t, f32, float, ROWS_T_ON_512(float))
MIXED(spatial_rows_t, f64, double, ROWS_T_ON_512(double))
#undef ROWS_T_ON_512
#undef ROWS_ON_512
#undef MIXED
#endif

/* The tile-size fields of a level's table (see cyc_kernel_table): PT and KB
 * for float32, float64; FK and FP for float32, float64. */
#define TILE_SIZES(L) L##_PT, CYC_BLOCK_CHANNELS(L##_VBYTES, float), \
    CYC_BLOCK_CHANNELS(L##_VBYTES, double)
#define FLAT_SIZES(L) L##_FK, CYC_FLAT_PIXELS(L##_VBYTES, L##_FV, float), \
    CYC_FLAT_PIXELS(L##_VBYTES, L##_FV, double)
/* ... and of its pixel tiles: channels, pixels for float32, float64. */
#define PIXEL_SIZES(L) CYC_PIXEL_CHANNELS(L##_VBYTES), CYC_PIXEL_PIXELS(L##_VBYTES, float), \
    CYC_PIXEL_PIXELS(L##_VBYTES, double)
/* ... and the channels per pixel of its depthwise lanes: float32, float64. */
#define DW_LANES(L) CYC_LANES(L##_VBYTES, float), CYC_LANES(L##_VBYTES, double)

static const cyc_kernel_table table_base = {
    "baseline",
    cyc_spatial_row_f32_base, cyc_spatial_row_f64_base,
    cyc_spatial_rows_f32_base, cyc_spatial_rows_f64_base,
    cyc_blocked_tile_f32_base, cyc_blocked_tile_f64_base,
    TILE_SIZES(BASE),
    cyc_flat_tile_f32_base, cyc_flat_tile_f64_base, FLAT_SIZES(BASE),
    cyc_u8_to_f32_base, cyc_u16_to_f32_base, cyc_f32_to_u8_base, cyc_f32_to_u16_base,
    cyc_taps_row_f32_base,
    cyc_spatial_rows_t_f32_base, cyc_spatial_rows_t_f64_base,
    cyc_blocked_tile_sized_f32_base, cyc_blocked_tile_sized_f64_base,
    cyc_pixel_tile_f32_base, cyc_pixel_tile_f64_base, PIXEL_SIZES(BASE),
    0, 0, NULL, NULL,
    cyc_depthwise_lanes_f32_base, cyc_depthwise_lanes_f64_base, DW_LANES(BASE),
    NULL, NULL, NULL, NULL,
    cyc_depthwise_taps_f32_base, cyc_depthwise_taps_f64_base,
    NULL, NULL, 0,
    cyc_flat_tile_part_f32_base, cyc_flat_tile_part_f64_base,
    cyc_pixel_taps_f32_base, cyc_pixel_taps_f64_base,
    cyc_pixel_conv_f32_base, cyc_pixel_conv_f64_base,
    cyc_gathered_tile_f32_base, cyc_gathered_tile_f64_base,
    cyc_nonfinite_f32_base, cyc_nonfinite_f64_base,
};

#if CYC_X86_DISPATCH
static const cyc_kernel_table table_avx2 = {
    "avx2",
    cyc_spatial_row_f32_avx2, cyc_spatial_row_f64_avx2,
    cyc_spatial_rows_f32_avx2, cyc_spatial_rows_f64_avx2,
    cyc_blocked_tile_f32_avx2, cyc_blocked_tile_f64_avx2,
    TILE_SIZES(AVX2),
    cyc_flat_tile_f32_avx2, cyc_flat_tile_f64_avx2, FLAT_SIZES(AVX2),
    cyc_u8_to_f32_avx2, cyc_u16_to_f32_avx2, cyc_f32_to_u8_avx2, cyc_f32_to_u16_avx2,
    cyc_taps_row_f32_avx2,
    cyc_spatial_rows_t_f32_avx2, cyc_spatial_rows_t_f64_avx2,
    cyc_blocked_tile_sized_f32_avx2, cyc_blocked_tile_sized_f64_avx2,
    cyc_pixel_tile_f32_avx2, cyc_pixel_tile_f64_avx2, PIXEL_SIZES(AVX2),
    0, 0, NULL, NULL,
    cyc_depthwise_lanes_f32_avx2, cyc_depthwise_lanes_f64_avx2, DW_LANES(AVX2),
    NULL, NULL, NULL, NULL,
    cyc_depthwise_taps_f32_avx2, cyc_depthwise_taps_f64_avx2,
    NULL, NULL, 0,
    cyc_flat_tile_part_f32_avx2, cyc_flat_tile_part_f64_avx2,
    cyc_pixel_taps_f32_avx2, cyc_pixel_taps_f64_avx2,
    cyc_pixel_conv_f32_avx2, cyc_pixel_conv_f64_avx2,
    cyc_gathered_tile_f32_avx2, cyc_gathered_tile_f64_avx2,
    cyc_nonfinite_f32_avx2, cyc_nonfinite_f64_avx2,
};
/* Not const: cyc_set_rows_512 sets its rows_t_square_once. */
static cyc_kernel_table table_avx512 = {
    "avx512",
    cyc_spatial_row_f32_avx512, cyc_spatial_row_f64_avx512,
    cyc_spatial_rows_f32_mixed, cyc_spatial_rows_f64_mixed,
    cyc_blocked_tile_f32_avx512, cyc_blocked_tile_f64_avx512,
    TILE_SIZES(AVX512),
    cyc_flat_tile_f32_avx512, cyc_flat_tile_f64_avx512, FLAT_SIZES(AVX512),
    cyc_u8_to_f32_avx512, cyc_u16_to_f32_avx512, cyc_f32_to_u8_avx512, cyc_f32_to_u16_avx512,
    cyc_taps_row_f32_avx512,
    cyc_spatial_rows_t_f32_mixed, cyc_spatial_rows_t_f64_mixed,
    cyc_blocked_tile_sized_f32_avx512, cyc_blocked_tile_sized_f64_avx512,
    cyc_pixel_tile_f32_avx512, cyc_pixel_tile_f64_avx512, PIXEL_SIZES(AVX512),
    AVX512_ROWS_T_ONCE, AVX512_ROWS_S2,
#if AVX512_SHIFTS
    cyc_spatial_rows_s2_f32_avx512, cyc_spatial_rows_s2_f64_avx512,
#else
    NULL, NULL,
#endif
    cyc_depthwise_lanes_f32_avx512, cyc_depthwise_lanes_f64_avx512, DW_LANES(AVX512),
#if AVX512_SHIFTS
    cyc_interleave_lanes_f32_avx512, cyc_interleave_lanes_f64_avx512,
    cyc_deinterleave_lanes_f32_avx512, cyc_deinterleave_lanes_f64_avx512,
#else
    NULL, NULL, NULL, NULL,
#endif
    cyc_depthwise_taps_f32_avx512, cyc_depthwise_taps_f64_avx512,
    cyc_narrow_tile_f32_avx512, cyc_narrow_tile_f64_avx512, CYC_NARROW_PIXELS,
    cyc_flat_tile_part_f32_avx512, cyc_flat_tile_part_f64_avx512,
    cyc_pixel_taps_f32_avx512, cyc_pixel_taps_f64_avx512,
    cyc_pixel_conv_f32_avx512, cyc_pixel_conv_f64_avx512,
    cyc_gathered_tile_f32_avx512, cyc_gathered_tile_f64_avx512,
    cyc_nonfinite_f32_avx512, cyc_nonfinite_f64_avx512,
};

#endif

/* Where 512-bit FMAs run at full width (Zen 5), the 512-bit rows also beat
 * the 256-bit ones on the kernels MIXED sends to AVX2: row kernel alone, 1024^2,
 * float32 3x5 1.31x, 4x4 1.28x, 6x6 1.42x, 2x9 1.30x (transposed 1.07-1.39x),
 * 1x3 and 3x1 within 4 %; float64 1.0-1.3x (bench/RESULTS.md, 2026-12-03). */
void cyc_set_rows_512(int on)
{
#if CYC_X86_DISPATCH
    rows_512 = on != 0;
    table_avx512.rows_t_square_once = rows_512 ? AVX512_ROWS_T_ONCE_FULL_WIDTH
                                               : AVX512_ROWS_T_ONCE;
#else
    (void)on;
#endif
}

int cyc_rows_512(void)
{
#if CYC_X86_DISPATCH
    return rows_512;
#else
    return 0;
#endif
}

#if CYC_HAVE_CPUID
/* cpuid leaf/subleaf into r[0..3] = eax, ebx, ecx, edx; 0 if the leaf is
 * beyond the CPU's maximum. */
static int cyc_cpuid(unsigned int leaf, unsigned int sub, unsigned int r[4])
{
#if defined(CYC_CPUID_MSVC)
    int x[4];
    __cpuid(x, (int)(leaf & 0x80000000u));
    if ((unsigned int)x[0] < leaf) return 0;
    __cpuidex(x, (int)leaf, (int)sub);
    r[0] = (unsigned int)x[0]; r[1] = (unsigned int)x[1];
    r[2] = (unsigned int)x[2]; r[3] = (unsigned int)x[3];
    return 1;
#else
    if (__get_cpuid_max(leaf & 0x80000000u, 0) < leaf) return 0;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    return 1;
#endif
}

/* XCR0: which register states the OS saves (call only when OSXSAVE is set). */
static unsigned long long read_xcr0(void)
{
#if defined(CYC_CPUID_MSVC)
    return _xgetbv(0);
#else
    /* xgetbv as bytes: needs no -mxsave and assembles everywhere. */
    unsigned int eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
#endif
}

/* macOS enables the AVX-512 register state lazily, on a thread's first
 * AVX-512 instruction, so XCR0 may not show it yet; the kernel reports the
 * support it will give instead. */
static int os_saves_zmm(unsigned long long xcr0)
{
    if ((xcr0 & 0xe6) == 0xe6) return 1;                 /* opmask, zmm hi256, hi16 zmm */
#if defined(__APPLE__)
    int on = 0;
    size_t size = sizeof(on);
    if ((xcr0 & 0x6) == 0x6 && sysctlbyname("hw.optional.avx512f", &on, &size, NULL, 0) == 0)
        return on != 0;
#endif
    return 0;
}
#endif

void cyc_stream_fence(void)
{
#if CYC_X86_INTRINSICS
    _mm_sfence();
#endif
}

int cyc_detect_features(void)
{
    int f = 0;
#if CYC_HAVE_CPUID
    unsigned int r[4];
    if (!cyc_cpuid(1, 0, r))
        return 0;
    unsigned int c = r[2], d = r[3];
    if (d & (1u << 26)) f |= 1;                        /* sse2 */
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;                  /* OS saves xmm and ymm */
    int zmm_ok = ymm_ok && os_saves_zmm(xcr0);
    if (ymm_ok && (c & (1u << 28))) f |= 2;            /* avx */
    if (ymm_ok && (c & (1u << 12))) f |= 8;            /* fma */
    if (cyc_cpuid(7, 0, r)) {
        if (ymm_ok && (r[1] & (1u << 5))) f |= 4;      /* avx2 */
        if (zmm_ok && (r[1] & (1u << 16))) f |= 16;    /* avx512f */
    }
#elif defined(__aarch64__) || defined(_M_ARM64)
    f |= 32;                                           /* NEON is part of AArch64 */
#endif
    return f;
}

int cyc_detect_full_width_512(void)
{
#if CYC_HAVE_CPUID
    unsigned int r[4];
    if (!cyc_cpuid(0, 0, r))
        return 0;
    /* "AuthenticAMD" in ebx, edx, ecx */
    int amd = r[1] == 0x68747541u && r[3] == 0x69746e65u && r[2] == 0x444d4163u;
    if (!amd || !cyc_cpuid(1, 0, r))
        return 0;
    unsigned int family = (r[0] >> 8) & 0xf;
    if (family == 0xf)
        family += (r[0] >> 20) & 0xff;
    return family >= 0x1a;
#else
    return 0;
#endif
}

int cyc_detect_level(void)
{
#if !CYC_X86_DISPATCH
    return CYC_BASELINE;  /* one level only: NEON / SSE2, or the scalar build */
#else
    int f = cyc_detect_features();
    if ((f & 16) && (f & 4) && (f & 8)) return CYC_AVX512;
    if ((f & 4) && (f & 8)) return CYC_AVX2;
    return CYC_BASELINE;
#endif
}

const cyc_kernel_table *cyc_kernels(int level)
{
#if CYC_X86_DISPATCH
    if (level >= CYC_AVX512) return &table_avx512;
    if (level == CYC_AVX2) return &table_avx2;
#endif
    (void)level;
    return &table_base;
}

#define CYC_STR_(x) #x
#define CYC_STR(x) CYC_STR_(x)

const char *cyc_compiler(void)
{
#if defined(__clang__) && defined(_MSC_VER)
    return "clang-cl " __clang_version__;
#elif defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "MSVC " CYC_STR(_MSC_FULL_VER) " (no vector extensions: scalar kernels)";
#else
    return "unknown C compiler";
#endif
}
