/* Instantiates the kernel template once per element type and instruction-set
 * level, and picks the level at run time. Built with portable flags only:
 * the AVX2 and AVX-512 copies get their instruction sets from per-function
 * target attributes, and are only ever called after cpuid/xgetbv say the CPU
 * and the OS support them. */
#include <string.h>
#include "kernels.h"

#if defined(__GNUC__) || defined(__clang__)
#define CYC_HAVE_VECTOR_EXT 1
#else
#define CYC_HAVE_VECTOR_EXT 0
#endif

#if CYC_HAVE_VECTOR_EXT && (defined(__x86_64__) || defined(__i386__))
#define CYC_X86_DISPATCH 1
#include <cpuid.h>
#else
#define CYC_X86_DISPATCH 0
#endif

/* ---- baseline: SSE2 on x86-64, NEON on aarch64, 16-byte vectors ---- */
#define ISA base
#define TARGET
#if defined(__aarch64__) && CYC_HAVE_VECTOR_EXT
#define HAS_FMA 1   /* AArch64 always has FMA, and the compiler fuses NEON multiply-adds */
#else
#define HAS_FMA 0
#endif
#if CYC_HAVE_VECTOR_EXT
#define VBYTES 16
#define PT 6
#if defined(__aarch64__)
#define TR 8        /* 32 NEON registers: up to 24 accumulators */
#define RB_REGS 32
#define RB_ACCS 24
#else
#define TR 4        /* 16 xmm registers: up to 12 accumulators */
#define RB_REGS 16
#define RB_ACCS 12
#endif
#define FK 2
#define FV 4
#else
#define VBYTES 0
#define PT 4
#define TR 1
#define RB_REGS 1
#define RB_ACCS 1
#define FK 2
#define FV 4
#endif
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

#if CYC_X86_DISPATCH
/* ---- AVX2 + FMA: 16 ymm registers, 6 pixels x 2 vectors = 12 accumulators ---- */
#define ISA avx2
#define TARGET __attribute__((target("avx2,fma")))
#define HAS_FMA 1
#define VBYTES 32
#define PT 6
#define TR 4
#define RB_REGS 16
#define RB_ACCS 12
#define FK 2
#define FV 4
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

/* ---- AVX-512F: 32 zmm registers, 14 pixels x 2 vectors = 28 accumulators ---- */
#define ISA avx512
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define HAS_FMA 1
#define VBYTES 64
#define PT 14
#define TR 8        /* up to 24 accumulators in the 32 zmm registers */
#define RB_REGS 32
#define RB_ACCS 24
#define FK 4
#define FV 4
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
#endif

static const cyc_kernel_table table_base = {
    "baseline",
    cyc_spatial_row_f32_base, cyc_spatial_row_f64_base,
    cyc_spatial_rows_f32_base, cyc_spatial_rows_f64_base,
    cyc_blocked_tile_f32_base, cyc_blocked_tile_f64_base,
#if CYC_HAVE_VECTOR_EXT
    6, 8, 4,
    cyc_flat_tile_f32_base, cyc_flat_tile_f64_base, 2, 16, 8,
#else
    4, 2, 2,
    cyc_flat_tile_f32_base, cyc_flat_tile_f64_base, 2, 4, 4,
#endif
};

#if CYC_X86_DISPATCH
static const cyc_kernel_table table_avx2 = {
    "avx2",
    cyc_spatial_row_f32_avx2, cyc_spatial_row_f64_avx2,
    cyc_spatial_rows_f32_avx2, cyc_spatial_rows_f64_avx2,
    cyc_blocked_tile_f32_avx2, cyc_blocked_tile_f64_avx2,
    6, 16, 8,
    cyc_flat_tile_f32_avx2, cyc_flat_tile_f64_avx2, 2, 32, 16,
};
static const cyc_kernel_table table_avx512 = {
    "avx512",
    cyc_spatial_row_f32_avx512, cyc_spatial_row_f64_avx512,
    cyc_spatial_rows_f32_avx512, cyc_spatial_rows_f64_avx512,
    cyc_blocked_tile_f32_avx512, cyc_blocked_tile_f64_avx512,
    14, 32, 16,
    cyc_flat_tile_f32_avx512, cyc_flat_tile_f64_avx512, 4, 64, 32,
};

static unsigned long long read_xcr0(void)
{
    unsigned int eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0)); /* xgetbv */
    return ((unsigned long long)edx << 32) | eax;
}
#endif

int cyc_detect_features(void)
{
    int f = 0;
#if CYC_X86_DISPATCH
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (d & (1u << 26)) f |= 1;                        /* sse2 */
    int osxsave = (c >> 27) & 1;
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;                  /* OS saves xmm and ymm */
    int zmm_ok = (xcr0 & 0xe6) == 0xe6;                /* ... and opmask, zmm */
    if (ymm_ok && (c & (1u << 28))) f |= 2;            /* avx */
    if (ymm_ok && (c & (1u << 12))) f |= 8;            /* fma */
    if (__get_cpuid_max(0, 0) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (ymm_ok && (b & (1u << 5))) f |= 4;         /* avx2 */
        if (zmm_ok && (b & (1u << 16))) f |= 16;       /* avx512f */
    }
#elif defined(__aarch64__)
    f |= 32;                                           /* NEON is part of AArch64 */
#endif
    return f;
}

int cyc_detect_level(void)
{
    int f = cyc_detect_features();
    if ((f & 16) && (f & 4) && (f & 8)) return CYC_AVX512;
    if ((f & 4) && (f & 8)) return CYC_AVX2;
    return CYC_BASELINE;
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
