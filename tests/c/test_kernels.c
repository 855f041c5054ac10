/* Every kernel of every instruction-set level this CPU supports, against its
 * definition in kernels.h (reference in long double, tolerance
 * 2*(terms+2)*eps*sum|terms|); bitwise: spatial_rows and spatial_rows_t
 * against spatial_row and against themselves split in two, spatial_row against itself started at another
 * column, depthwise_lanes against spatial_row channel by channel; tile_store.h's channel stores bitwise against plain C; and guard
 * cells that no kernel may write. Exit status 0 if all pass.
 * Built and run by tests/test_c_kernels.py (native, and the scalar build a
 * compiler without GNU C gets) and by tools/check_wheel.py (under qemu). */
#if defined(__unix__) || defined(__APPLE__)
#define _DEFAULT_SOURCE 1   /* mmap's MAP_ANONYMOUS under -std=c11 */
#define CK_GUARD_PAGES 1
#include <sys/mman.h>
#include <unistd.h>
#else
#define CK_GUARD_PAGES 0
#endif
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "tile_store.h"
#include "interleave.h"

#define GUARD 24
#define SENTINEL 1234.5
#define STR_(x) #x
#define STR(x) STR_(x)

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static long checks;
static double worst;

static double urand(void)  /* xorshift64: uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* `bytes` that end where readable memory ends: the next page is mapped
 * without access (where the OS has mmap), so a kernel that reads past its
 * input crashes the program instead of passing. Free with guarded_free. */
static void *guarded_alloc(size_t bytes)
{
#if CK_GUARD_PAGES
    size_t page = (size_t)sysconf(_SC_PAGESIZE), data = (bytes + page - 1) / page * page;
    char *region = mmap(NULL, data + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (region == MAP_FAILED || mprotect(region + data, page, PROT_NONE) != 0) {
        printf("guarded_alloc: mmap/mprotect failed\n");
        exit(2);
    }
    return region + data - bytes;
#else
    return malloc(bytes);
#endif
}

static void guarded_free(void *p, size_t bytes)
{
#if CK_GUARD_PAGES
    size_t page = (size_t)sysconf(_SC_PAGESIZE), data = (bytes + page - 1) / page * page;
    munmap((char *)p + bytes - data, data + page);
#else
    (void)bytes;
    free(p);
#endif
}

#define T float
#define SFX f32
#define EPS FLT_EPSILON
#include "test_kernels_t.h"
#undef T
#undef SFX
#undef EPS
#define T double
#define SFX f64
#define EPS DBL_EPSILON
#include "test_kernels_t.h"
#undef T
#undef SFX
#undef EPS

/* tile_store.h's four-channel store: bitwise four one-channel stores (with
 * and without a bias, -0.0 kept), nothing written between or past them. */
static int check_store_quad(void)
{
    int bad = 0;
    enum { PITCH = 24 };   /* output floats per channel; npx <= 16 */
    for (cyc_index KB = 4; KB <= 32; KB *= 2)
    for (cyc_index npx = 0; npx <= 16; npx++)
    for (int with_bias = 0; with_bias <= 1; with_bias++) {
        float *tile = rand_array_f32(16 * KB), bias[4], got[4 * PITCH], want[4 * PITCH];
        for (int m = 0; m < 4; m++) bias[m] = (float)urand();
        tile[1] = -0.0f;
        for (cyc_index i = 0; i < 4 * PITCH; i++) got[i] = want[i] = (float)SENTINEL;
        cyc_store_quad_f32(tile, KB, got, PITCH, npx, with_bias ? bias : NULL);
        for (int m = 0; m < 4; m++)
            cyc_store_channel_f32(tile + m, KB, want + m * PITCH, npx,
                                  with_bias ? bias + m : NULL);
        checks += 4 * npx;
        if (memcmp(got, want, sizeof got) != 0 && bad++ < 5)
            printf("  store_quad KB=%d npx=%d bias=%d: not four channel stores\n", (int)KB,
                   (int)npx, with_bias);
        free(tile);
    }
    return bad;
}

int main(void)
{
    static const char *names[] = {"sse2", "avx", "avx2", "fma", "avx512f", "neon"};
    int features = cyc_detect_features(), best = cyc_detect_level(), failed = 0;
    printf("features:");
    for (int b = 0; b < 6; b++)
        if (features & (1 << b)) printf(" %s", names[b]);
    printf("\n");
    for (int level = 0; level <= best; level++) {
        const cyc_kernel_table *kt = cyc_kernels(level);
        int bad;
        checks = 0;
        worst = 0;
        bad = check_row_f32(kt) + check_rows_f32(kt, 0) + check_rows_f32(kt, 1)
            + check_rows_s2_f32(kt) + check_tile_f32(kt, kt->block_f32)
            + check_flat_f32(kt, kt->flat_f32)
            + check_row_f64(kt) + check_rows_f64(kt, 0) + check_rows_f64(kt, 1)
            + check_rows_s2_f64(kt) + check_tile_f64(kt, kt->block_f64)
            + check_flat_f64(kt, kt->flat_f64) + check_store_f32() + check_store_f64()
            + check_store_quad() + check_depthwise_lanes_f32(kt)
            + check_depthwise_lanes_f64(kt) + check_gathered_f32(kt, kt->block_f32)
            + check_gathered_f64(kt, kt->block_f64);
        printf("level %d %-8s tiles %2dx%2d/%2d flat %dx%2d/%2d: %6ld values, worst %4.2f eps*sum|terms|: %s\n",
               level, kt->name, (int)kt->tile_pixels, (int)kt->block_f32, (int)kt->block_f64,
               (int)kt->flat_channels, (int)kt->flat_f32, (int)kt->flat_f64,
               checks, worst, bad ? "FAIL" : "ok");
        failed |= bad != 0;
    }
    if (best == CYC_AVX512) {
        /* the AVX-512 rows 512 bits wide for every kernel (Zen 5's choice) */
        const cyc_kernel_table *kt = cyc_kernels(best);
        int bad;
        checks = 0;
        worst = 0;
        cyc_set_rows_512(1);
        bad = check_rows_f32(kt, 0) + check_rows_f32(kt, 1) + check_rows_f64(kt, 0)
            + check_rows_f64(kt, 1);
        cyc_set_rows_512(0);
        printf("all rows 512-bit, level %d %-8s: %6ld values, worst %4.2f eps*sum|terms|: %s\n",
               best, kt->name, checks, worst, bad ? "FAIL" : "ok");
        failed |= bad != 0;
    }
    printf("best level: %s\n", cyc_kernels(best)->name);
    return failed;
}
