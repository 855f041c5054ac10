/* Every kernel of every instruction-set level this CPU supports, against its
 * definition in kernels.h (reference in long double, tolerance
 * 2*(terms+2)*eps*sum|terms|); bitwise: spatial_rows and spatial_rows_t
 * against spatial_row and against themselves split in two, spatial_row against itself started at another
 * column; tile_store.h's channel stores bitwise against plain C; and guard
 * cells that no kernel may write. Exit status 0 if all pass.
 * Built and run by tests/test_c_kernels.py (native, and the scalar build a
 * compiler without GNU C gets) and by tools/check_wheel.py (under qemu). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "tile_store.h"

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
        bad = check_row_f32(kt) + check_rows_f32(kt, 0) + check_rows_f32(kt, 1) + check_tile_f32(kt, kt->block_f32)
            + check_flat_f32(kt, kt->flat_f32)
            + check_row_f64(kt) + check_rows_f64(kt, 0) + check_rows_f64(kt, 1) + check_tile_f64(kt, kt->block_f64)
            + check_flat_f64(kt, kt->flat_f64) + check_store_f32() + check_store_f64();
        printf("level %d %-8s tiles %2dx%2d/%2d flat %dx%2d/%2d: %6ld values, worst %4.2f eps*sum|terms|: %s\n",
               level, kt->name, (int)kt->tile_pixels, (int)kt->block_f32, (int)kt->block_f64,
               (int)kt->flat_channels, (int)kt->flat_f32, (int)kt->flat_f64,
               checks, worst, bad ? "FAIL" : "ok");
        failed |= bad != 0;
    }
    printf("best level: %s\n", cyc_kernels(best)->name);
    return failed;
}
