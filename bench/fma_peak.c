/* Single-core FMA throughput micro-benchmark for bench/run.py.
 *
 * Runs CHAINS independent chains of fused multiply-adds on 512-bit (AVX-512F)
 * and 256-bit (AVX2+FMA) registers, float32 and float64, and prints GFLOP/s
 * (2 flops per lane per FMA) as "name gflops" lines, timed in thread CPU
 * time so that waiting for a core on a loaded machine does not count, best
 * of 5.  Enough independent
 * chains (12) hide the FMA latency (4 cycles) on two FMA pipes.  Built and
 * run by run.py with the system C compiler; if none is there, run.py falls
 * back to an estimate from the clock.
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define CHAINS 12
#define ITERS 20000000L

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);  /* CPU time: immune to waiting for a core */
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Twelve named accumulators (not an array), so they stay in registers. */
#define DEFINE_BENCH(NAME, ATTR, VEC, SET1, FMA, STORE, ELEM, LANES)              \
    __attribute__((target(ATTR), noinline)) static double NAME(long iters) {     \
        VEC a = SET1((ELEM)0.999999), b = SET1((ELEM)1e-7);                       \
        VEC c0 = SET1(0), c1 = SET1(1), c2 = SET1(2), c3 = SET1(3);               \
        VEC c4 = SET1(4), c5 = SET1(5), c6 = SET1(6), c7 = SET1(7);               \
        VEC c8 = SET1(8), c9 = SET1(9), c10 = SET1(10), c11 = SET1(11);           \
        double t0 = now();                                                         \
        for (long i = 0; i < iters; i++) {                                         \
            c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b);            \
            c3 = FMA(c3, a, b); c4 = FMA(c4, a, b); c5 = FMA(c5, a, b);            \
            c6 = FMA(c6, a, b); c7 = FMA(c7, a, b); c8 = FMA(c8, a, b);            \
            c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);        \
        }                                                                          \
        double t = now() - t0;                                                     \
        ELEM sink[LANES];                                                          \
        STORE(sink, FMA(c0, c1, FMA(c2, c3, FMA(c4, c5, FMA(c6, c7,                \
              FMA(c8, c9, FMA(c10, c11, a)))))));                                  \
        if (sink[0] == (ELEM)-1) printf("impossible\n");                          \
        return 2.0 * LANES * CHAINS * (double)iters / t / 1e9;                     \
    }

DEFINE_BENCH(zmm_f32, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, float, 16)
DEFINE_BENCH(zmm_f64, "avx512f", __m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_storeu_pd, double, 8)
DEFINE_BENCH(ymm_f32, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, float, 8)
DEFINE_BENCH(ymm_f64, "avx2,fma", __m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_storeu_pd, double, 4)

static double best_of(double (*f)(long), long iters) {
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double g = f(iters);
        if (g > best) best = g;
    }
    return best;
}

int main(int argc, char **argv) {
    long iters = ITERS;
    if (argc > 1) sscanf(argv[1], "%ld", &iters);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        printf("avx512_f32 %.2f\n", best_of(zmm_f32, iters));
        printf("avx512_f64 %.2f\n", best_of(zmm_f64, iters));
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        printf("avx2_f32 %.2f\n", best_of(ymm_f32, iters));
        printf("avx2_f64 %.2f\n", best_of(ymm_f64, iters));
    }
    return 0;
}
