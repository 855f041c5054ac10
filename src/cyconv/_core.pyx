"""Typed loops of cyconv.

The `def` functions are internal: cyconv's Python layer validates every
argument and allocates every output and scratch buffer before calling them,
and they only unpack buffers and release the GIL. They share pointer-based
`cdef` drivers with the C-level API at the end of this file (declared in
_core.pxd), which checks its own scalar arguments and returns a status.
Nothing here raises for bad input.
"""

from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t, uintptr_t)
from libc.string cimport memcpy, memset
from libc.math cimport isnan, isinf, copysign, INFINITY
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK)
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS,
                            PyBUF_WRITABLE, PyBUF_RECORDS, PyBUF_RECORDS_RO)

cdef extern from "kernels.h" nogil:
    void cyc_prefetch_write(const void *p)
    void cyc_prefetch_read(const void *p)
    void cyc_prefetch_read_l2(const void *p)
    ctypedef Py_ssize_t cyc_index
    enum: CYC_MAX_FLAT_CHANNELS   # bound of every level's flat_channels (kernels.c asserts it)
    enum: CYC_MAX_TILE_PIXELS     # bound of every level's tile_pixels (the same)
    enum: CYC_ROWS_STREAM, CYC_ROWS_PREFETCH, CYC_ROWS_PREFETCH_WALKS   # spatial_rows' flags
    int CYC_SQUARE_BLOCK_ROWS(int S, int lanes)   # rows per block, AVX-512's S x S rows
    int CYC_SQUARE_BLOCK_ROWS_DP(int S, int lanes)   # the same, 512-bit FMAs double-pumped
    int CYC_RECT_BLOCK_ROWS(int R, int S, int lanes)   # and its R x S rows (S = 3, 5, 7)
    bint CYC_RECT_SHIFTED(Py_ssize_t R, Py_ssize_t S)     # R x S that AVX-512 rows shift,
    bint CYC_RECT_T_SHIFTED(Py_ssize_t R, Py_ssize_t S)   # and transposed rows
    ctypedef void (*cyc_spatial_row_f32)(const float *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                         cyc_index C, cyc_index R, cyc_index S,
                                         const float *w, float *out, cyc_index width)
    ctypedef void (*cyc_spatial_row_f64)(const double *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                         cyc_index C, cyc_index R, cyc_index S,
                                         const double *w, double *out, cyc_index width)
    ctypedef void (*cyc_spatial_rows_f32)(const float *inp, cyc_index cs, cyc_index rs,
                                          cyc_index C, cyc_index R, cyc_index S,
                                          const float *w, float *out, cyc_index os,
                                          cyc_index width, cyc_index nrows, int flags)
    ctypedef void (*cyc_spatial_rows_f64)(const double *inp, cyc_index cs, cyc_index rs,
                                          cyc_index C, cyc_index R, cyc_index S,
                                          const double *w, double *out, cyc_index os,
                                          cyc_index width, cyc_index nrows, int flags)
    ctypedef void (*cyc_blocked_tile_f32)(const float *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                          cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                          const float *wp, const float *init, float *tile)
    ctypedef void (*cyc_blocked_tile_f64)(const double *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                          cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                          const double *wp, const double *init, double *tile)
    ctypedef void (*cyc_blocked_tile_sized_f32)(const float *inp, cyc_index cs, cyc_index rs,
                                                cyc_index ds, cyc_index sx, cyc_index C,
                                                cyc_index R, cyc_index S, cyc_index wcs,
                                                const float *wp, const float *init, float *tile,
                                                cyc_index pixels, int edges)
    ctypedef void (*cyc_blocked_tile_sized_f64)(const double *inp, cyc_index cs, cyc_index rs,
                                                cyc_index ds, cyc_index sx, cyc_index C,
                                                cyc_index R, cyc_index S, cyc_index wcs,
                                                const double *wp, const double *init,
                                                double *tile, cyc_index pixels, int edges)
    ctypedef void (*cyc_gathered_tile_f32)(const float *inp, const cyc_index *off,
                                           cyc_index cs, cyc_index rs, cyc_index ds,
                                           cyc_index C, cyc_index R, cyc_index S,
                                           cyc_index wcs, cyc_index wrs,
                                           const float *wp, float *tile)
    ctypedef void (*cyc_gathered_tile_f64)(const double *inp, const cyc_index *off,
                                           cyc_index cs, cyc_index rs, cyc_index ds,
                                           cyc_index C, cyc_index R, cyc_index S,
                                           cyc_index wcs, cyc_index wrs,
                                           const double *wp, double *tile)
    cyc_index CYC_TILE_WIDTH(cyc_index pt, int i)
    enum: CYC_TILE_WIDTHS
    ctypedef void (*cyc_flat_tile_f32)(const float *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                       cyc_index C, cyc_index R, cyc_index S,
                                       const float *const *wk, float *tile)
    ctypedef void (*cyc_flat_tile_f64)(const double *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                       cyc_index C, cyc_index R, cyc_index S,
                                       const double *const *wk, double *tile)
    ctypedef void (*cyc_flat_tile_part_f32)(const float *inp, cyc_index cs, cyc_index rs,
                                            cyc_index ds, cyc_index C, cyc_index R, cyc_index S,
                                            const float *const *wk, float *tile,
                                            cyc_index vectors)
    ctypedef void (*cyc_flat_tile_part_f64)(const double *inp, cyc_index cs, cyc_index rs,
                                            cyc_index ds, cyc_index C, cyc_index R, cyc_index S,
                                            const double *const *wk, double *tile,
                                            cyc_index vectors)
    ctypedef void (*cyc_pixel_taps_f32)(const float *g, cyc_index gn, cyc_index gk,
                                        cyc_index gy, const float *inp, cyc_index xn,
                                        cyc_index xy, const cyc_index *off, cyc_index ntaps,
                                        cyc_index K, cyc_index images, cyc_index Ho,
                                        cyc_index Wo, float *sums)
    ctypedef void (*cyc_pixel_taps_f64)(const double *g, cyc_index gn, cyc_index gk,
                                        cyc_index gy, const double *inp, cyc_index xn,
                                        cyc_index xy, const cyc_index *off, cyc_index ntaps,
                                        cyc_index K, cyc_index images, cyc_index Ho,
                                        cyc_index Wo, double *sums)
    ctypedef void (*cyc_pixel_conv_f32)(const float *inp, cyc_index xn, cyc_index xy,
                                        const cyc_index *off, cyc_index ntaps, const float *wt,
                                        const float *bias, float *out, cyc_index on,
                                        cyc_index ok, cyc_index oy, cyc_index K,
                                        cyc_index images, cyc_index Ho, cyc_index Wo)
    ctypedef void (*cyc_pixel_conv_f64)(const double *inp, cyc_index xn, cyc_index xy,
                                        const cyc_index *off, cyc_index ntaps, const double *wt,
                                        const double *bias, double *out, cyc_index on,
                                        cyc_index ok, cyc_index oy, cyc_index K,
                                        cyc_index images, cyc_index Ho, cyc_index Wo)
    ctypedef void (*cyc_pixel_tile_f32)(const float *inp, cyc_index cs, cyc_index C,
                                        const float *wp, cyc_index ws, const float *bias,
                                        float *out, cyc_index os, cyc_index nk)
    ctypedef void (*cyc_pixel_tile_f64)(const double *inp, cyc_index cs, cyc_index C,
                                        const double *wp, cyc_index ws, const double *bias,
                                        double *out, cyc_index os, cyc_index nk)
    ctypedef void (*cyc_u8_to_f32)(const unsigned char *src, float *dst, cyc_index n)
    ctypedef void (*cyc_u16_to_f32)(const unsigned short *src, float *dst, cyc_index n)
    ctypedef void (*cyc_f32_to_u8)(const float *src, unsigned char *dst, cyc_index n)
    ctypedef void (*cyc_f32_to_u16)(const float *src, unsigned short *dst, cyc_index n)
    ctypedef int (*cyc_nonfinite_f32)(const float *row, cyc_index n)
    ctypedef int (*cyc_nonfinite_f64)(const double *row, cyc_index n)
    ctypedef void (*cyc_taps_row_f32)(const float *const *src, const float *w, cyc_index ntaps,
                                      float *out, cyc_index width)
    ctypedef void (*cyc_depthwise_lanes_f32)(const float *inp, cyc_index rs, cyc_index sh,
                                             cyc_index sw, cyc_index dh, cyc_index dw,
                                             cyc_index R, cyc_index S, const float *w,
                                             const float *bias, float *out, cyc_index os,
                                             cyc_index ps, cyc_index width, cyc_index nrows)
    ctypedef void (*cyc_depthwise_lanes_f64)(const double *inp, cyc_index rs, cyc_index sh,
                                             cyc_index sw, cyc_index dh, cyc_index dw,
                                             cyc_index R, cyc_index S, const double *w,
                                             const double *bias, double *out, cyc_index os,
                                             cyc_index ps, cyc_index width, cyc_index nrows)
    ctypedef void (*cyc_interleave_lanes_f32)(const float *src, cyc_index cs, cyc_index n,
                                              float *dst)
    ctypedef void (*cyc_interleave_lanes_f64)(const double *src, cyc_index cs, cyc_index n,
                                              double *dst)
    ctypedef void (*cyc_deinterleave_lanes_f32)(const float *src, cyc_index n, float *dst,
                                                cyc_index cs)
    ctypedef void (*cyc_deinterleave_lanes_f64)(const double *src, cyc_index n, double *dst,
                                                cyc_index cs)
    ctypedef void (*cyc_depthwise_taps_f32)(const float *inp, cyc_index rs, cyc_index sh,
                                            cyc_index sw, cyc_index dh, cyc_index dw,
                                            cyc_index R, cyc_index S, const float *g,
                                            cyc_index gs, cyc_index width, cyc_index nrows,
                                            float *acc)
    ctypedef void (*cyc_depthwise_taps_f64)(const double *inp, cyc_index rs, cyc_index sh,
                                            cyc_index sw, cyc_index dh, cyc_index dw,
                                            cyc_index R, cyc_index S, const double *g,
                                            cyc_index gs, cyc_index width, cyc_index nrows,
                                            double *acc)
    ctypedef void (*cyc_narrow_tile_f32)(const float *inp, cyc_index rs, cyc_index ds,
                                         cyc_index sx, cyc_index R, cyc_index S,
                                         const float *wp, const float *init, float *tile,
                                         cyc_index pixels)
    ctypedef void (*cyc_narrow_tile_f64)(const double *inp, cyc_index rs, cyc_index ds,
                                         cyc_index sx, cyc_index R, cyc_index S,
                                         const double *wp, const double *init, double *tile,
                                         cyc_index pixels)
    ctypedef struct cyc_kernel_table:
        const char *name
        cyc_spatial_row_f32 spatial_row_f32
        cyc_spatial_row_f64 spatial_row_f64
        cyc_spatial_rows_f32 spatial_rows_f32
        cyc_spatial_rows_f64 spatial_rows_f64
        cyc_blocked_tile_f32 blocked_tile_f32
        cyc_blocked_tile_f64 blocked_tile_f64
        cyc_index tile_pixels
        cyc_index block_f32
        cyc_index block_f64
        cyc_flat_tile_f32 flat_tile_f32
        cyc_flat_tile_f64 flat_tile_f64
        cyc_index flat_channels
        cyc_index flat_f32
        cyc_index flat_f64
        cyc_u8_to_f32 u8_to_f32
        cyc_u16_to_f32 u16_to_f32
        cyc_f32_to_u8 f32_to_u8
        cyc_f32_to_u16 f32_to_u16
        cyc_taps_row_f32 taps_row_f32
        cyc_spatial_rows_f32 spatial_rows_t_f32
        cyc_spatial_rows_f64 spatial_rows_t_f64
        cyc_blocked_tile_sized_f32 blocked_tile_sized_f32
        cyc_blocked_tile_sized_f64 blocked_tile_sized_f64
        cyc_pixel_tile_f32 pixel_tile_f32
        cyc_pixel_tile_f64 pixel_tile_f64
        cyc_index pixel_channels
        cyc_index pixel_f32
        cyc_index pixel_f64
        unsigned rows_t_square_once
        unsigned rows_s2_square
        cyc_spatial_rows_f32 spatial_rows_s2_f32
        cyc_spatial_rows_f64 spatial_rows_s2_f64
        cyc_depthwise_lanes_f32 depthwise_lanes_f32
        cyc_depthwise_lanes_f64 depthwise_lanes_f64
        cyc_index dw_lanes_f32
        cyc_index dw_lanes_f64
        cyc_interleave_lanes_f32 interleave_lanes_f32
        cyc_interleave_lanes_f64 interleave_lanes_f64
        cyc_deinterleave_lanes_f32 deinterleave_lanes_f32
        cyc_deinterleave_lanes_f64 deinterleave_lanes_f64
        cyc_depthwise_taps_f32 depthwise_taps_f32
        cyc_depthwise_taps_f64 depthwise_taps_f64
        cyc_narrow_tile_f32 narrow_tile_f32
        cyc_narrow_tile_f64 narrow_tile_f64
        cyc_index narrow_pixels
        cyc_flat_tile_part_f32 flat_tile_part_f32
        cyc_flat_tile_part_f64 flat_tile_part_f64
        cyc_pixel_taps_f32 pixel_taps_f32
        cyc_pixel_taps_f64 pixel_taps_f64
        cyc_pixel_conv_f32 pixel_conv_f32
        cyc_pixel_conv_f64 pixel_conv_f64
        cyc_gathered_tile_f32 gathered_tile_f32
        cyc_gathered_tile_f64 gathered_tile_f64
        cyc_nonfinite_f32 nonfinite_f32
        cyc_nonfinite_f64 nonfinite_f64
    void cyc_stream_fence()
    int cyc_detect_level()
    int cyc_detect_full_width_512()
    void cyc_set_rows_512(int on)
    int cyc_rows_512()
    int cyc_detect_features()
    const char *cyc_compiler()
    const cyc_kernel_table *cyc_kernels(int level)


cdef extern from "interleave.h" nogil:
    void cyc_transpose_f32(const float *src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t cols,
                           float *dst, Py_ssize_t ds)
    void cyc_transpose_f64(const double *src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t cols,
                           double *dst, Py_ssize_t ds)
    int cyc_transpose_check_f32(const float *src, Py_ssize_t ss, Py_ssize_t rows,
                                Py_ssize_t cols, float *dst, Py_ssize_t ds, int check)
    int cyc_transpose_check_f64(const double *src, Py_ssize_t ss, Py_ssize_t rows,
                                Py_ssize_t cols, double *dst, Py_ssize_t ds, int check)
    void cyc_reverse_f32(const float *src, Py_ssize_t n, float *dst)
    void cyc_reverse_f64(const double *src, Py_ssize_t n, double *dst)
    void cyc_reverse_runs_f32(const float *src, Py_ssize_t n, Py_ssize_t runs, float *dst,
                              Py_ssize_t ds)
    void cyc_reverse_runs_f64(const double *src, Py_ssize_t n, Py_ssize_t runs, double *dst,
                              Py_ssize_t ds)
    void cyc_interleave_f32(const float *src, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t nc,
                            Py_ssize_t G, float *dst)
    void cyc_interleave_f64(const double *src, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t nc,
                            Py_ssize_t G, double *dst)
    void cyc_deinterleave_f32(const float *src, Py_ssize_t G, Py_ssize_t n, Py_ssize_t nc,
                              float *dst, Py_ssize_t cs)
    void cyc_deinterleave_f64(const double *src, Py_ssize_t G, Py_ssize_t n, Py_ssize_t nc,
                              double *dst, Py_ssize_t cs)


cdef extern from "tile_store.h" nogil:
    void cyc_store_quad_f32(const float *t, Py_ssize_t KB, float *o, Py_ssize_t osk,
                            Py_ssize_t npx, const float *bias)
    void cyc_store_channel_f32(const float *t, Py_ssize_t KB, float *o, Py_ssize_t npx,
                               const float *bias)
    void cyc_store_channel_f64(const double *t, Py_ssize_t KB, double *o, Py_ssize_t npx,
                               const double *bias)


ctypedef fused real_t:
    float
    double
    long double
    unsigned long long   # every integer type: sums wrap modulo 2**64, then get truncated

ctypedef fused fp_t:
    float
    double

ctypedef fused part_t:   # the real type of each half of a complex number
    float
    double
    long double


cdef const cyc_kernel_table *_table = cyc_kernels(cyc_detect_level())
cdef int _level = cyc_detect_level()     # _table's level
# Every AVX-512 row kernel 512 bits wide where 512-bit FMAs run at full
# width (Zen 5); else the 256-bit rows where those measured faster (Zen 4).
# (conv2d's layers of few output channels follow it: _wide_small_tiles.)
cyc_set_rows_512(cyc_detect_full_width_512())


def detect_level():
    """Highest kernel level this CPU and OS support: 0 baseline, 1 avx2, 2 avx512."""
    return cyc_detect_level()


def detect_features():
    """Bitmask of detected CPU features (see kernels.h)."""
    return cyc_detect_features()


def compiler():
    """The C compiler (and version) that built the kernels."""
    return cyc_compiler().decode()


def rows_512():
    """Does the AVX-512 level run every row kernel 512 bits wide (and
    conv2d's layers of few output channels in 512-bit small-image tiles)?"""
    return bool(cyc_rows_512())


def set_rows_512(bint on):
    """Run every AVX-512 row kernel 512 bits wide, and conv2d's layers of
    fewer output channels than an AVX-512 block in the level's small-image
    tiles (on), or the mixed choice: 256-bit rows where those measured
    faster, AVX2's blocks for those layers (off, what machines with
    double-pumped 512-bit FMAs run). The same bits either way (the tests
    check). Returns the old value. Not while another thread is inside a
    call; plans made before keep their choice."""
    old = bool(cyc_rows_512())
    cyc_set_rows_512(on)
    return old


def set_level(int level):
    """Use the kernels of `level` (the caller checked level <= detect_level())."""
    global _table, _level
    _table, _level = cyc_kernels(level), level


def level_name():
    return _table.name.decode()


cdef extern from *:
    """
    #if defined(__linux__)
    #include <sched.h>
    static int cyc_current_cpu(void) { return sched_getcpu(); }
    #else
    static int cyc_current_cpu(void) { return -1; }
    #endif
    """
    int cyc_current_cpu() noexcept nogil


def current_cpu():
    """The CPU the calling thread runs on (Linux), or -1 where unknown."""
    return cyc_current_cpu()


# ---------------------------------------------------------------------------
# CPU slots: at most as many chunks run at once as the process has CPUs
# ---------------------------------------------------------------------------
# A counting semaphore made of two of Python's portable locks (which any
# thread may release): `gate` is open while a slot is free, `guard` keeps the
# count. A chunk takes its slot and gives it back inside one C call
# (run_in_cpu_slot), so Ctrl-C cannot land between the two and leave it
# taken, and the calling thread's chunks need no deferred Ctrl-C (which with
# a Python semaphore cost a 256^2 float32 5x5 call 13 us: bench/RESULTS.md).

cdef PyThread_type_lock _slot_gate = NULL
cdef PyThread_type_lock _slot_guard = NULL
cdef Py_ssize_t _slots_free = 0


def reset_cpu_slots(Py_ssize_t count):
    """`count` free slots, on new locks (also in a child after fork(): the
    parent's may be held by threads the child does not have, so they are
    left, not freed)."""
    global _slot_gate, _slot_guard, _slots_free
    cdef PyThread_type_lock gate = PyThread_allocate_lock()
    cdef PyThread_type_lock guard = PyThread_allocate_lock()
    if gate == NULL or guard == NULL:
        raise MemoryError("no lock for the CPU slots")
    _slot_gate, _slot_guard, _slots_free = gate, guard, max(count, 1)


cdef void _take_cpu_slot() noexcept nogil:
    global _slots_free
    PyThread_acquire_lock(_slot_gate, WAIT_LOCK)     # a slot is free
    PyThread_acquire_lock(_slot_guard, WAIT_LOCK)
    _slots_free -= 1
    if _slots_free > 0:
        PyThread_release_lock(_slot_gate)            # and another still is
    PyThread_release_lock(_slot_guard)


cdef void _give_cpu_slot() noexcept nogil:
    global _slots_free
    PyThread_acquire_lock(_slot_guard, WAIT_LOCK)
    _slots_free += 1
    if _slots_free == 1:
        PyThread_release_lock(_slot_gate)            # the first free one opens it
    PyThread_release_lock(_slot_guard)


def run_in_cpu_slot(func, state, chunk):
    """func(state, *chunk) holding a CPU slot, waited for without the GIL."""
    with nogil:
        _take_cpu_slot()
    try:
        func(state, *chunk)
    finally:
        _give_cpu_slot()


def free_cpu_slots():
    """Slots free now (for tests)."""
    return _slots_free


reset_cpu_slots(1)   # _parallel sets the count


# ---------------------------------------------------------------------------
# Boundaries as index maps
# ---------------------------------------------------------------------------

# How an axis is extended (np.pad's names): every boundary rule of SciPy and
# PyTorch is one of these. cpdef: Python (_padding) reads the same numbers.
cpdef enum BoundaryRule:
    RULE_CONSTANT = 0   # the fill value (map entry -1)
    RULE_WRAP = 1       # periodic
    RULE_SYMMETRIC = 2  # mirrored, edge sample repeated
    RULE_REFLECT = 3    # mirrored about the edge sample
    RULE_EDGE = 4       # edge sample repeated


cdef inline Py_ssize_t _floor_mod(Py_ssize_t a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t r = a % n
    return r + n if r < 0 else r


cdef void _index_map(Py_ssize_t n, Py_ssize_t before, Py_ssize_t total, int rule,
                     int64_t *out) noexcept nogil:
    """out[i] = source index of padded position i (i < total), -1 for the fill.
    Rules other than RULE_CONSTANT need n >= 1; any depth is fine."""
    cdef Py_ssize_t i, j, period
    for i in range(total):
        j = i - before
        if 0 <= j < n:
            out[i] = j
        elif rule == RULE_CONSTANT:
            out[i] = -1
        elif rule == RULE_WRAP:
            out[i] = _floor_mod(j, n)
        elif rule == RULE_SYMMETRIC:
            j = _floor_mod(j, 2 * n)
            out[i] = 2 * n - 1 - j if j >= n else j
        elif rule == RULE_REFLECT:
            if n == 1:
                out[i] = 0
            else:
                period = 2 * n - 2
                j = _floor_mod(j, period)
                out[i] = period - j if j >= n else j
        else:
            out[i] = 0 if j < 0 else n - 1


def index_map(Py_ssize_t n, Py_ssize_t before, int rule, int64_t[::1] out):
    """Fill `out` with the source index of each padded position (see _padding)."""
    _index_map(n, before, out.shape[0], rule, &out[0] if out.shape[0] else NULL)


# ---------------------------------------------------------------------------
# Padding: copy padded rows of a plane into a C-contiguous buffer
# ---------------------------------------------------------------------------

cdef extern from "copy_row.h" nogil:
    void cyc_copy_row(void *dst, const void *src, size_t n)


cdef inline void _sample_row(const real_t *src, Py_ssize_t step, real_t *dst,
                             Py_ssize_t n) noexcept nogil:
    # dst[x] = src[x * step]; step 1 is a copy (cyc_copy_row), step 2 a loop
    # with a constant step, which the compiler vectorizes (loads and
    # shuffles: a 1024^2 float32 3x3 call on big[:, ::2] took 1.70x the
    # C-order time with the element-by-element loop, 1.44x with step 2).
    cdef Py_ssize_t x
    if step == 1:
        cyc_copy_row(dst, src, n * sizeof(real_t))
    elif step == 2:
        for x in range(n):
            dst[x] = src[2 * x]
    else:
        for x in range(n):
            dst[x] = src[x * step]


cdef void _gather_cols(const char *plane, Py_ssize_t W,        # H x W source, any layout:
                       Py_ssize_t ys, Py_ssize_t xs,           # byte strides
                       const int64_t *row_map, const int64_t *col_map,
                       Py_ssize_t left,                        # padded cols [left, left+W) are the plane's
                       Py_ssize_t c0, Py_ssize_t c1, real_t fill, real_t *dst,
                       Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    """Padded columns c0 <= j < c1 of padded rows i0 <= i < i1 into consecutive
    dst rows of c1 - c0 (the narrow border strips beside an in-place
    interior); the plane's own columns are copied as one run. The boundary
    rule is all in the two maps, so the compute loops never see a border."""
    cdef Py_ssize_t i, j, si, sj
    cdef Py_ssize_t a = min(max(c0, left), c1)          # [a, b): the plane's own columns
    cdef Py_ssize_t b = max(min(c1, left + W), a)
    cdef const char *src
    for i in range(i0, i1):
        si = row_map[i]
        if si < 0 or W == 0:
            for j in range(c1 - c0):
                dst[j] = fill
        else:
            src = plane + si * ys
            for j in range(c0, a):
                sj = col_map[j]
                dst[j - c0] = (<const real_t *>(src + sj * xs))[0] if sj >= 0 else fill
            if xs == <Py_ssize_t>sizeof(real_t):
                cyc_copy_row(dst + (a - c0), src + (a - left) * xs, (b - a) * sizeof(real_t))
            elif xs == 2 * <Py_ssize_t>sizeof(real_t):   # every other column (a[:, ::2])
                _sample_row(<const real_t *>(src + (a - left) * xs), 2, dst + (a - c0), b - a)
            else:
                for j in range(a, b):
                    dst[j - c0] = (<const real_t *>(src + (j - left) * xs))[0]
            for j in range(b, c1):
                sj = col_map[j]
                dst[j - c0] = (<const real_t *>(src + sj * xs))[0] if sj >= 0 else fill
        dst += c1 - c0


cdef inline void _gather_rows(const char *plane, Py_ssize_t W, Py_ssize_t ys, Py_ssize_t xs,
                              const int64_t *row_map, const int64_t *col_map,
                              Py_ssize_t left, Py_ssize_t width, real_t fill, real_t *dst,
                              Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    """Padded rows i0 <= i < i1, all `width` columns, into consecutive dst rows."""
    _gather_cols(plane, W, ys, xs, row_map, col_map, left, 0, width, fill, dst, i0, i1)


cdef inline void _transpose(const fp_t *src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t cols,
                            fp_t *dst, Py_ssize_t ds) noexcept nogil:
    # dst[j*ds + i] = src[i*ss + j] for i < rows, j < cols (interleave.h)
    if fp_t is float:
        cyc_transpose_f32(src, ss, rows, cols, dst, ds)
    else:
        cyc_transpose_f64(src, ss, rows, cols, dst, ds)


cdef inline bint _transpose_check(const fp_t *src, Py_ssize_t ss, Py_ssize_t rows,
                                  Py_ssize_t cols, fp_t *dst, Py_ssize_t ds,
                                  bint check) noexcept nogil:
    # _transpose, and with `check` whether every value is finite (else True)
    if fp_t is float:
        return cyc_transpose_check_f32(src, ss, rows, cols, dst, ds, check)
    else:
        return cyc_transpose_check_f64(src, ss, rows, cols, dst, ds, check)


cdef inline void _reverse(const fp_t *src, Py_ssize_t n, fp_t *dst) noexcept nogil:
    # dst[t] = src[n-1-t] for t < n (interleave.h)
    if fp_t is float:
        cyc_reverse_f32(src, n, dst)
    else:
        cyc_reverse_f64(src, n, dst)


def transpose_into(const fp_t[:, ::1] src,   # IN  W x H
                   fp_t[:, ::1] dst):         # OUT H x W
    """dst[i, j] = src[j, i] (interleave.h's transpose; NumPy's copy of the
    transposed view runs an inner loop per element)."""
    if dst.shape[0] == 0 or dst.shape[1] == 0:
        return
    with nogil:
        _transpose(&src[0, 0], src.strides[0] // sizeof(fp_t), src.shape[0], src.shape[1],
                   &dst[0, 0], dst.strides[0] // sizeof(fp_t))


def transpose_batched(const fp_t[:, :, :] src,   # IN  B x rows x cols, unit last stride
                      fp_t[:, :, :] dst):         # OUT B x cols x rows, unit last stride
    """dst[b, j, i] = src[b, i, j] (NumPy's copy of a transposed view runs
    an inner loop per element: channels last, 256 x 56² float32 took 1.2 ms
    per image)."""
    cdef Py_ssize_t b
    if src.shape[0] == 0 or src.shape[1] == 0 or src.shape[2] == 0:
        return
    with nogil:
        for b in range(src.shape[0]):
            _transpose(&src[b, 0, 0], src.strides[1] // sizeof(fp_t), src.shape[1], src.shape[2],
                       &dst[b, 0, 0], dst.strides[1] // sizeof(fp_t))


def channels_last(const fp_t[:, :, :, :] src,   # IN  N x C x H x W, unit last stride
                  fp_t[:, :, :, :] dst):         # OUT N x H x W x C, unit last stride
    """dst[n, y, x, c] = src[n, c, y, x]: transpose_batched over the images
    and their rows in one call (a Python call per image cost about 1 us,
    a third of the copy of 32 small 16-channel images)."""
    cdef Py_ssize_t n, y
    if src.shape[0] == 0 or src.shape[1] == 0 or src.shape[2] == 0 or src.shape[3] == 0:
        return
    with nogil:
        for n in range(src.shape[0]):
            for y in range(src.shape[2]):
                _transpose(&src[n, 0, y, 0], src.strides[1] // sizeof(fp_t), src.shape[1],
                           src.shape[3], &dst[n, y, 0, 0], dst.strides[2] // sizeof(fp_t))


# ---------------------------------------------------------------------------
# 2-D correlation of one plane (convolve2d / correlate2d)
# ---------------------------------------------------------------------------

cdef void _correlate_row_generic(const real_t *image, Py_ssize_t width_in,
                                 const real_t *kernel, Py_ssize_t M, Py_ssize_t N,
                                 real_t *out, Py_ssize_t width) noexcept nogil:
    # One output row as row-wide multiply-adds: the innermost loop runs along
    # contiguous memory with no branches, in (kernel row, kernel column) order.
    cdef Py_ssize_t u, v, j
    cdef real_t w
    cdef const real_t *irow
    for j in range(width):
        out[j] = 0
    for u in range(M):
        irow = image + u * width_in
        for v in range(N):
            w = kernel[u * N + v]
            for j in range(width):
                out[j] = out[j] + w * irow[j + v]


cdef inline bint _rows_in_place(const int64_t *row_map, Py_ssize_t i, Py_ssize_t M) noexcept nogil:
    """Are padded rows i .. i+M-1 consecutive rows of the image (no border row)?"""
    cdef Py_ssize_t u
    if row_map[i] < 0:
        return False
    for u in range(1, M):
        if row_map[i + u] != row_map[i] + u:
            return False
    return True


cdef inline Py_ssize_t _gcd(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef enum:
    L1_SETS = 64       # 4096 bytes of lines: lines 4096 bytes apart share a set
    L1_WAYS = 8        # 8 or more on current x86 and Arm cores
    BLOCK_LINES = 4    # the lines of a row a block reads (3 vectors and the shifts)


cdef inline bint _rows_spread_over_sets(Py_ssize_t pitch, Py_ssize_t rows) noexcept nogil:
    """Can `rows` rows `pitch` bytes apart stay in L1 together, BLOCK_LINES
    lines of each? Counts the lines each L1 set gets. The transposed row
    kernel reuses the same block of rows for every kernel column, so rows
    that evict each other halve its speed (measured, Zen 3: an 11 x 11 kernel
    at a 4096-byte pitch 35 GFLOP/s, at 4136 bytes 82). A pitch just past a
    multiple of 4096 puts consecutive rows in the same sets (Zen 5, a 1026^2
    float32 column-major image, 11 x 11: 1.34x the row-major time in place,
    1.02x through the gathered strips)."""
    cdef int lines[L1_SETS]
    cdef Py_ssize_t b = pitch % 4096 if pitch >= 0 else (-pitch) % 4096, i, k, first
    memset(lines, 0, sizeof(lines))
    for i in range(rows):
        first = (i * b) % 4096 // 64
        for k in range(BLOCK_LINES):
            lines[(first + k) % L1_SETS] += 1
            if lines[(first + k) % L1_SETS] > L1_WAYS:
                return False
    return True


cdef inline bint _rows_t_load_once(Py_ssize_t M, Py_ssize_t N) noexcept nogil:
    """Do the level's transposed rows load each input row once per block for
    an M x N kernel (their shifts made in registers)? Their rows then need
    not stay in L1 together (measured, Zen 4, 1024^2 float32 at a 4096-byte
    pitch: 5x5 105 GFLOP/s in place). Squares, where the level says so; and
    M x N of 3, 5 and 7 taps, M != N, wherever those squares do (the rows
    of the square of M rows serve them)."""
    if M >= 32 or N >= 32:
        return False
    if M == N:
        return (_table.rows_t_square_once >> M) & 1
    return CYC_RECT_T_SHIFTED(M, N) \
        and (_table.rows_t_square_once >> M) & 1 and (_table.rows_t_square_once >> N) & 1


cdef inline bint _rows_s2(Py_ssize_t M, Py_ssize_t N) noexcept nogil:
    """Has the level row kernels reading every other column for M x N?"""
    return M == N and M < 32 and (_table.rows_s2_square >> M) & 1


cdef enum:
    # Border strips computed beside an in-place interior are at least this
    # many bytes wide, so that they too run through full vectors (two, for
    # the 3x3 walks). Float64 rows of 5+ taps (C-ordered or column-strided
    # images), whose interior blocks are 16-24 columns, take one vector:
    # 32 columns ran there as two blocks, the second moved back over the
    # first (measured, Zen 4, one process, 700^2-1536^2 float64 "same", 8
    # columns against 32: 5x5-11x11 1.01-1.08x as fast, column-strided 5x5
    # 1.03-1.10x, gaussian_filter 1.11x; 3x3 at 16 columns 0.98-1.06x).
    # Fortran-ordered images (0.98-1.01x) and float32 (16 columns:
    # 0.96-1.02x) keep 128 bytes.
    EDGE_BYTES = 128
    EDGE_BYTES_F64_WIDE = 64
    # Calls whose image and result together take this many bytes or more
    # write the result with non-temporal stores (x86): most of what they
    # touch cannot stay in a last-level cache of 32 MB or less anyway, and
    # skipping the read of each line before its write cuts the memory
    # traffic. Measured (Zen 4, one thread, call / call and a sum of the
    # result): 1448^2 float64 3x3 1.39x / 1.15x, 2048^2 float32 1.12x /
    # 1.10x, a column-strided 1024^2 float64 (a 16 MB image span) 1.07x /
    # 1.00x. The image counts as the span its rows cover: a column-strided
    # one's every other element is read too. (Earlier the result alone, from
    # 32 MB: 4096^2 3x3 1.25-1.32x faster, two threads at 5x5 1.9x one
    # thread's speed, was 1.7x.) From 16 MB, not 24 (2026-12-06, results in
    # huge pages): 1024^2 float64, whose 8 KB rows all fall on the same L1
    # sets, 1.02-1.40x (convolve2d 3x3-9x9) and 1.11-1.49x (ndimage filters);
    # a pass over the result afterwards included, 0.93-0.98x (convolve2d 3x3)
    # to 1.16x; 1182^2 float64 and 1448^2 float32 0.97-1.03x either way.
    STREAM_MIN_BYTES = 16 << 20
    # Images of this many bytes or more, larger than L2, have the row
    # kernels ask for their next rows ahead (CYC_ROWS_PREFETCH): a big image
    # is often out of cache, and a small one is usually in it, where the
    # prefetches only cost (measured, Zen 5, whole calls: 1024^2 out of cache
    # 1.08-1.49x as fast, in cache 0.91-1.10x; 256^2 in cache 0.91-1.02x).
    PREFETCH_MIN_BYTES = 1 << 20
    # The 3x3 row walks ask for rows ahead from this many times that
    # (CYC_ROWS_PREFETCH_WALKS): in cache they lose more to prefetches.
    # Only where 512-bit FMAs run at full width (cyc_rows_512: Zen 5): the
    # walks there take their lines twice as fast as the hardware prefetchers
    # bring them (2048^2 float32 1.13x with the prefetches in cache, 1.16x
    # out of it). On Zen 4, at half that rate, the prefetches only cost
    # (1.1-1.3x faster without: 2048^2 and 4096^2 float32, 2048^2 float64,
    # a column-strided 1024^2 float64; 0.91-0.96x at 2896^2 float32); they
    # then ask only when the tests ask for every prefetch (0 bytes).
    WALK_PREFETCH_FACTOR = 16


cdef Py_ssize_t _stream_min_bytes = STREAM_MIN_BYTES
cdef Py_ssize_t _prefetch_min_bytes = PREFETCH_MIN_BYTES


def set_stream_min_bytes(Py_ssize_t nbytes):
    """Write results past the caches where they and their image take at
    least `nbytes` bytes (the tests stream every result with 0); returns the
    old value."""
    global _stream_min_bytes
    old, _stream_min_bytes = _stream_min_bytes, max(nbytes, 0)
    return old


cdef inline bint _streams(Py_ssize_t result_bytes, Py_ssize_t image_bytes) noexcept nogil:
    """Is a result written past the caches, given its bytes and those its
    image spans?"""
    return result_bytes >= _stream_min_bytes - image_bytes


def streams(Py_ssize_t result_bytes, Py_ssize_t image_bytes=0):
    """Is a result of `result_bytes` bytes, computed from an image spanning
    `image_bytes`, written past the caches? (For callers that hand the core
    a piece of a larger result at a time.)"""
    return _streams(result_bytes, image_bytes)


def set_prefetch_min_bytes(Py_ssize_t nbytes):
    """Have the row kernels ask for the next rows ahead on images of at
    least `nbytes` bytes (0: always; the 3x3 walks from WALK_PREFETCH_FACTOR
    times that); returns the old value."""
    global _prefetch_min_bytes
    old, _prefetch_min_bytes = _prefetch_min_bytes, max(nbytes, 0)
    return old


cdef inline int _row_flags(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t itemsize,
                           Py_ssize_t image_rows, Py_ssize_t image_row_bytes) noexcept nogil:
    """spatial_rows' flags for a rows x cols result of an image of
    image_rows rows, image_row_bytes apart."""
    cdef Py_ssize_t image_bytes = image_rows * (
        image_row_bytes if image_row_bytes >= 0 else -image_row_bytes)
    cdef int flags = CYC_ROWS_STREAM if _streams(rows * cols * itemsize, image_bytes) else 0
    if image_bytes >= _prefetch_min_bytes:
        flags |= CYC_ROWS_PREFETCH
        if _prefetch_min_bytes == 0 or (
                cyc_rows_512() and image_bytes // WALK_PREFETCH_FACTOR >= _prefetch_min_bytes):
            flags |= CYC_ROWS_PREFETCH_WALKS
    return flags


cdef inline void _spatial_rows(const real_t *inp, Py_ssize_t rs, const real_t *kernel,
                               Py_ssize_t M, Py_ssize_t N, real_t *out, Py_ssize_t os,
                               Py_ssize_t width, Py_ssize_t nrows, bint tmajor,
                               bint every_other=False, int flags=0) noexcept nogil:
    """The SIMD row kernel for float/double, the generic loop for other types.
    With tmajor (float/double only) `kernel` is N x M, its rows along the
    input rows' length: the taps of a column-major image read as its transpose.
    With every_other (float/double, where _rows_s2(M, N), width at least one
    vector), the input rows' columns are every other element. flags: the
    kernels' CYC_ROWS_* (with CYC_ROWS_STREAM the caller then calls
    cyc_stream_fence)."""
    cdef Py_ssize_t i
    if real_t is float:
        if every_other:
            _table.spatial_rows_s2_f32(inp, 0, rs, 1, M, N, kernel, out, os, width, nrows,
                                         flags)
        elif tmajor:
            _table.spatial_rows_t_f32(inp, 0, rs, 1, M, N, kernel, out, os, width, nrows,
                                         flags)
        else:
            _table.spatial_rows_f32(inp, 0, rs, 1, M, N, kernel, out, os, width, nrows, flags)
    elif real_t is double:
        if every_other:
            _table.spatial_rows_s2_f64(inp, 0, rs, 1, M, N, kernel, out, os, width, nrows,
                                         flags)
        elif tmajor:
            _table.spatial_rows_t_f64(inp, 0, rs, 1, M, N, kernel, out, os, width, nrows,
                                         flags)
        else:
            _table.spatial_rows_f64(inp, 0, rs, 1, M, N, kernel, out, os, width, nrows, flags)
    else:
        for i in range(nrows):
            _correlate_row_generic(inp + i * rs, rs, kernel, M, N, out + i * os, width)


cdef void _correlate_strips(const char *image, Py_ssize_t W, Py_ssize_t ys, Py_ssize_t xs,
                            const int64_t *row_map, const int64_t *col_map,
                            Py_ssize_t left, Py_ssize_t Wp, real_t fill,
                            const real_t *kernel, Py_ssize_t M, Py_ssize_t N,
                            real_t *out, Py_ssize_t Wo, Py_ssize_t out_stride,
                            real_t *strip, Py_ssize_t strip_rows,
                            Py_ssize_t row0, Py_ssize_t row1, bint tmajor,
                            int flags) noexcept nogil:
    """out[i, j] = sum_{u,v} padded[i+u, j+v] * kernel[u, v] for row0 <= i < row1
    (with tmajor, kernel[v, u] summed in (v, u) order: see _spatial_rows).

    Output rows whose M input rows are consecutive image rows read the image
    in place when its rows are unit-stride (float/double; or every other
    element, where the level has row kernels for that): the interior
    columns straight from the image, the border columns (at least EDGE_BYTES
    wide) from narrow gathered strips. Other rows are padded whole into
    `strip` ((strip_rows + M - 1) x Wp, sized by the caller to stay in
    cache), strip_rows output rows' worth at a time. Every pixel is summed by
    the same kernel in the same order either way. flags: the row kernels'
    CYC_ROWS_* for the image and `out` (a streamed `out` is fenced before
    returning; the strips, in cache, are not prefetched)."""
    cdef Py_ssize_t y = row0, y1, i, rs = 0, jl = 0, jr = 0, el, er, batch_rows, b, gather_rows
    cdef const real_t *src
    cdef bint stream = flags & CYC_ROWS_STREAM
    # Interior output columns [jl, jr): windows inside image columns, widened
    # borders; in place needs them at least N - 1 wide (the border strips then
    # fit in `strip`) and unit-stride rows, or rows of every other element.
    cdef bint every_other = (real_t is float or real_t is double) and not tmajor \
        and xs == 2 * <Py_ssize_t>sizeof(real_t) and _rows_s2(M, N)
    cdef bint in_place = (real_t is float or real_t is double) and W > 0 \
        and (xs == <Py_ssize_t>sizeof(real_t) or every_other) \
        and ys % <Py_ssize_t>sizeof(real_t) == 0 and (<size_t>image) % sizeof(real_t) == 0 \
        and (not tmajor or _rows_spread_over_sets(ys, M + 3)   # a 4-row block's rows
             or _rows_t_load_once(M, N))
    cdef Py_ssize_t edge = (EDGE_BYTES_F64_WIDE if real_t is double and N >= 5 and not tmajor
                            else EDGE_BYTES) // <Py_ssize_t>sizeof(real_t)
    if in_place:
        rs = ys // <Py_ssize_t>sizeof(real_t)
        # (no border strip on a side without padding: "valid")
        jl = min(max(left, edge), Wo) if left > 0 else 0
        i = <Py_ssize_t>((<size_t>(out + jl)) % 64)
        if stream and i:
            # start the interior on a cache line: its blocks' stores then stream
            jl = min(jl + (64 - i) // <Py_ssize_t>sizeof(real_t), Wo)
        jr = Wo if W - N + 1 + left >= Wo else max(min(W - N + 1 + left, Wo - edge), jl)
        in_place = jr - jl >= max(N - 1, edge)
    el, er = jl + N - 1, Wp - jr
    # In-place rows go in batches of whole row blocks: every batch ends in a
    # block moved back over rows already done (7-row blocks in 24-row
    # batches recomputed 1 row in 6; float64 9x9's 6-row blocks in 16-row
    # batches 1 in 8). The kernels' blocks are min(M, 8) or 4 rows (3 for
    # 3x3), or CYC_SQUARE_BLOCK_ROWS(_DP) for square kernels (AVX-512: 6 for
    # 7x7; 8 or 6 for float64 11x11) and CYC_RECT_BLOCK_ROWS for
    # single-channel R x 3, 5, 7 ones (AVX-512), so a multiple of
    # lcm(min(M, 8), 8) and of those serves every level (but the 5-row
    # blocks of the transposed and the every-other-column 7x7 rows: 2 rows
    # recomputed in 168); the batch's border strips, narrow, still fit in
    # `strip`.
    i = M * 8 // _gcd(M, 8) if M <= 8 else 8
    if M == N and M >= 4:
        b = CYC_SQUARE_BLOCK_ROWS(M, <int>(64 // sizeof(real_t)))
        i = i * b // _gcd(i, b)
        b = CYC_SQUARE_BLOCK_ROWS_DP(M, <int>(64 // sizeof(real_t)))
        i = i * b // _gcd(i, b)
    elif CYC_RECT_SHIFTED(M, N):
        b = CYC_RECT_BLOCK_ROWS(M, N, <int>(64 // sizeof(real_t)))
        i = i * b // _gcd(i, b)
    # Gathered rows go in whole batches too where the strip holds one (16
    # rows of 6-row blocks computed 18).
    gather_rows = strip_rows // i * i if strip_rows >= i else strip_rows
    batch_rows = strip_rows
    if in_place:
        batch_rows = (strip_rows + i - 1) // i * i
        batch_rows = min(batch_rows, (strip_rows + M - 1) * Wp // max(el, er, 1) - M + 1)
    while y < row1:
        if in_place and _rows_in_place(row_map, y, M):
            y1 = y + 1
            while y1 < row1 and y1 - y < batch_rows and _rows_in_place(row_map, y1, M) \
                    and row_map[y1] == row_map[y] + (y1 - y):
                y1 += 1
            src = <const real_t *>(image + row_map[y] * ys)
            _spatial_rows(src + (jl - left) * (2 if every_other else 1), rs, kernel, M, N,
                          out + y * out_stride + jl, out_stride, jr - jl, y1 - y, tmajor,
                          every_other, flags)
            if jl > 0:
                _gather_cols(image, W, ys, xs, row_map, col_map, left, 0, el, fill, strip, y,
                             y1 + M - 1)
                _spatial_rows(strip, el, kernel, M, N, out + y * out_stride, out_stride, jl,
                              y1 - y, tmajor, False, flags & CYC_ROWS_STREAM)
            if jr < Wo:
                _gather_cols(image, W, ys, xs, row_map, col_map, left, jr, Wp, fill, strip, y,
                             y1 + M - 1)
                _spatial_rows(strip, er, kernel, M, N, out + y * out_stride + jr, out_stride,
                              Wo - jr, y1 - y, tmajor, False, flags & CYC_ROWS_STREAM)
        else:
            y1 = y + 1
            while y1 < row1 and y1 - y < gather_rows and not (
                    in_place and _rows_in_place(row_map, y1, M)):
                y1 += 1
            _gather_rows(image, W, ys, xs, row_map, col_map, left, Wp, fill, strip, y, y1 + M - 1)
            _spatial_rows(strip, Wp, kernel, M, N, out + y * out_stride, out_stride, Wo, y1 - y,
                          tmajor, False, flags & CYC_ROWS_STREAM)
        y = y1
    if stream:
        cyc_stream_fence()


cdef inline bint _nonfinite_f32(const char *row, Py_ssize_t n, Py_ssize_t xs) noexcept nogil:
    """Any of n floats, xs bytes apart, with every exponent bit set (inf, NaN):
    adding one to the exponent field carries into the sign bit only then.
    Contiguous rows go to the level's vector scan (kernels' nonfinite_f32)."""
    cdef uint32_t carries = 0
    cdef Py_ssize_t j
    if xs == 4:
        return _table.nonfinite_f32(<const float *>row, n) != 0
    for j in range(n):
        carries |= ((<const uint32_t *>(row + j * xs))[0] & 0x7f800000u) + 0x00800000u
    return (carries >> 31) != 0


cdef inline bint _nonfinite_f64(const char *row, Py_ssize_t n, Py_ssize_t xs) noexcept nogil:
    """_nonfinite_f32 for doubles."""
    cdef uint64_t carries = 0
    cdef Py_ssize_t j
    if xs == 8:
        return _table.nonfinite_f64(<const double *>row, n) != 0
    for j in range(n):
        carries |= ((<const uint64_t *>(row + j * xs))[0] & 0x7ff0000000000000u) \
            + 0x0010000000000000u
    return (carries >> 63) != 0


def all_finite(const fp_t[:, :] a):
    """True when no element of `a` is inf or NaN, along its shorter-stride
    axis with the GIL released. The exponent bits decide, so nothing rounds
    or overflows (NumPy's cheap test, a sum, overflows on large finite
    values and reads the image at about half this speed)."""
    cdef Py_ssize_t i, H = a.shape[0], W = a.shape[1]
    cdef bint bad = False
    if H == 0 or W == 0:
        return True
    cdef const char *base = <const char *>&a[0, 0]
    cdef Py_ssize_t ys = a.strides[0], xs = a.strides[1]
    if abs(ys) < abs(xs):   # column-major: walk the columns
        H, W, ys, xs = W, H, xs, ys
    with nogil:
        for i in range(H):
            if fp_t is float:
                bad = _nonfinite_f32(base + i * ys, W, xs)
            else:
                bad = _nonfinite_f64(base + i * ys, W, xs)
            if bad:
                break
    return not bad


cdef enum:
    SMALL_KERNEL_TAPS = 256   # correlate_plane's stack copy of a flipped or strided kernel


def small_kernel_taps():
    return SMALL_KERNEL_TAPS


def along_gather_rows():
    """Rows of segments ndimage_correlate_along_fast's scratch holds."""
    return ALONG_GATHER_ROWS


def correlate_plane(const real_t[:, :] image,      # IN  H x W, any strides
                    const int64_t[::1] row_map,    # IN  Ho+M-1 padded rows -> source row or -1
                    const int64_t[::1] col_map,    # IN  Wo+N-1 padded cols -> source col or -1
                    Py_ssize_t left,               # IN  padding before column 0
                    const real_t[::1] fill,        # IN  one value, used where a map says -1
                    const real_t[:, :] kernel,     # IN  M x N, M, N >= 1 (transposed: N x M)
                    real_t[:, ::1] out,            # OUT Ho x Wo
                    real_t[:, ::1] strip,          # scratch (rows + M - 1) x (Wo + N - 1)
                    Py_ssize_t row0, Py_ssize_t row1,
                    bint transposed=False, bint flip=False):
    """Valid correlation of the padded image, output rows row0 <= i < row1.

    transposed (float32/float64): `image`, the maps and `out` are the
    transposes of a column-major problem's, and `kernel` is that problem's
    own (row-major) kernel, so the sums run in its order: `out` gets the
    transpose of its result to the bit.
    flip: correlate with kernel[::-1, ::-1] (a convolution), read from
    `kernel` itself. A kernel that is flipped or not C-contiguous must have
    at most SMALL_KERNEL_TAPS taps (it is copied to the stack)."""
    cdef Py_ssize_t M = kernel.shape[1] if transposed else kernel.shape[0]
    cdef Py_ssize_t N = kernel.shape[0] if transposed else kernel.shape[1]
    cdef const char *data = <const char *>&image[0, 0] if image.shape[0] and image.shape[1] else NULL
    cdef bint tmajor = transposed and (real_t is float or real_t is double)
    cdef real_t taps[SMALL_KERNEL_TAPS]
    cdef const real_t *kp = &kernel[0, 0]
    cdef Py_ssize_t u, v, km = kernel.shape[0], kn = kernel.shape[1]
    if flip or kernel.strides[1] != sizeof(real_t) or kernel.strides[0] != kn * sizeof(real_t):
        # (the short path of small repeated calls: no NumPy copy per call)
        if km * kn > SMALL_KERNEL_TAPS:
            raise ValueError(f"a flipped or strided kernel has at most {SMALL_KERNEL_TAPS} taps")
        for u in range(km):
            for v in range(kn):
                taps[u * kn + v] = kernel[km - 1 - u, kn - 1 - v] if flip else kernel[u, v]
        kp = taps
    with nogil:
        _correlate_strips(data, image.shape[1], image.strides[0], image.strides[1],
                          &row_map[0], &col_map[0], left, strip.shape[1], fill[0],
                          kp, M, N, &out[0, 0], out.shape[1],
                          out.shape[1], &strip[0, 0], strip.shape[0] - M + 1, row0, row1,
                          tmajor, _row_flags(out.shape[0], out.shape[1], sizeof(real_t),
                                             image.shape[0], image.strides[0]))


def correlate_plane_separable(const fp_t[:, :] image,     # IN  H x W, any strides
                              const int64_t[::1] row_map,  # IN  as correlate_plane
                              const int64_t[::1] col_map,  # IN  as correlate_plane
                              Py_ssize_t left,
                              const fp_t[::1] fill,
                              const fp_t[::1] krow,        # IN  N: the kernel's row factor
                              const fp_t[::1] kcol,        # IN  M: the kernel's column factor
                              fp_t[:, ::1] out,            # OUT Ho x Wo
                              fp_t[:, ::1] strip,          # scratch (rows + M - 1) x (Wo + N - 1)
                              fp_t[:, ::1] across,         # scratch (rows + M - 1) x Wo
                              Py_ssize_t row0, Py_ssize_t row1):
    """Correlation with the rank-1 kernel kcol x krow as two 1-D passes, fused
    strip by strip: filter the padded rows along the row into `across` (by
    _correlate_strips: in place where it can, through `strip` elsewhere), then
    filter `across` down the columns into `out`; all in cache."""
    cdef Py_ssize_t M = kcol.shape[0], N = krow.shape[0]
    cdef Py_ssize_t Wo = out.shape[1], Wp = strip.shape[1]
    cdef Py_ssize_t rows = strip.shape[0] - M + 1
    cdef Py_ssize_t y, y1
    cdef const char *data = <const char *>&image[0, 0] if image.shape[0] and image.shape[1] else NULL
    cdef int flags = _row_flags(out.shape[0], out.shape[1], sizeof(fp_t),
                                image.shape[0], image.strides[0])
    with nogil:
        y = row0
        while y < row1:
            y1 = min(y + rows, row1)
            # along the rows: padded rows y .. y1+M-2 into `across` (the row
            # map shifted so that across's row 0 is padded row y)
            _correlate_strips(data, image.shape[1], image.strides[0], image.strides[1],
                              &row_map[y], &col_map[0], left, Wp, fill[0], &krow[0], 1, N,
                              &across[0, 0], Wo, Wo, &strip[0, 0], strip.shape[0],
                              0, y1 - y + M - 1, False, flags & CYC_ROWS_PREFETCH)
            # down the columns, into out
            _spatial_rows(&across[0, 0], Wo, &kcol[0], M, 1, &out[y, 0], Wo, Wo, y1 - y, False,
                          False, flags & CYC_ROWS_STREAM)
            y = y1
        if flags & CYC_ROWS_STREAM:
            cyc_stream_fence()


def correlate_plane_separable_t(const fp_t[:, :] image,   # IN  W x H: a column-major image's transpose
                                const int64_t[::1] row_map,  # IN  its col_map (Wo+N-1 entries)
                                const int64_t[::1] col_map,  # IN  its row_map (Ho+M-1 entries)
                                Py_ssize_t left,             # IN  its padding before row 0
                                const fp_t[::1] fill,
                                const fp_t[::1] krow,        # IN  N: its kernel's row factor
                                const fp_t[::1] kcol,        # IN  M: its kernel's column factor
                                fp_t[:, ::1] out,            # OUT Wo x Ho: its result, transposed
                                fp_t[:, ::1] strip,          # scratch (rows + N - 1) x (Ho + M - 1)
                                fp_t[:, ::1] across,         # scratch rows x (Ho + M - 1)
                                Py_ssize_t row0, Py_ssize_t row1):
    """correlate_plane_separable of a column-major problem, read as its
    transpose: its row pass (krow) runs down the transpose's rows first, over
    every padded column, then its column pass (kcol) along them, so each
    value is the same two sums as the row-major call's: `out` gets the
    transpose of its result to the bit. Output rows row0 <= i < row1."""
    cdef Py_ssize_t N = krow.shape[0], M = kcol.shape[0]
    cdef Py_ssize_t Wo = out.shape[1], Wp = strip.shape[1]
    cdef Py_ssize_t rows = strip.shape[0] - N + 1
    cdef Py_ssize_t y, y1
    cdef const char *data = <const char *>&image[0, 0] if image.shape[0] and image.shape[1] else NULL
    cdef int flags = _row_flags(out.shape[0], out.shape[1], sizeof(fp_t),
                                image.shape[0], image.strides[0])
    with nogil:
        y = row0
        while y < row1:
            y1 = min(y + rows, row1)
            # down the rows: padded rows y .. y1+N-2, every padded column,
            # into `across` (the row map shifted so that across's row 0 is row y)
            _correlate_strips(data, image.shape[1], image.strides[0], image.strides[1],
                              &row_map[y], &col_map[0], left, Wp, fill[0], &krow[0], N, 1,
                              &across[0, 0], Wp, Wp, &strip[0, 0], rows, 0, y1 - y, False,
                              flags & CYC_ROWS_PREFETCH)
            # along the rows, into out
            _spatial_rows(&across[0, 0], Wp, &kcol[0], 1, M, &out[y, 0], Wo, Wo, y1 - y, False,
                          False, flags & CYC_ROWS_STREAM)
            y = y1
        if flags & CYC_ROWS_STREAM:
            cyc_stream_fence()


cdef inline void _complex_mul_add(part_t a, part_t b, part_t c, part_t d,
                                  part_t *acc) noexcept nogil:
    """acc += (a + ib)(c + id) as C99 Annex G (and so SciPy's C++) multiplies:
    where the plain formula gives NaN in both parts but a factor is infinite,
    the infinity is recovered instead."""
    cdef part_t x = a * c - b * d
    cdef part_t y = a * d + b * c
    cdef bint again = False
    if isnan(x) and isnan(y):
        if isinf(a) or isinf(b):
            a = copysign(1.0 if isinf(a) else 0.0, a)
            b = copysign(1.0 if isinf(b) else 0.0, b)
            if isnan(c):
                c = copysign(0.0, c)
            if isnan(d):
                d = copysign(0.0, d)
            again = True
        if isinf(c) or isinf(d):
            c = copysign(1.0 if isinf(c) else 0.0, c)
            d = copysign(1.0 if isinf(d) else 0.0, d)
            if isnan(a):
                a = copysign(0.0, a)
            if isnan(b):
                b = copysign(0.0, b)
            again = True
        if not again and (isinf(a * c) or isinf(b * d) or isinf(a * d) or isinf(b * c)):
            # an overflow, not an infinite input: NaNs become zeros
            if isnan(a):
                a = copysign(0.0, a)
            if isnan(b):
                b = copysign(0.0, b)
            if isnan(c):
                c = copysign(0.0, c)
            if isnan(d):
                d = copysign(0.0, d)
            again = True
        if again:
            x = INFINITY * (a * c - b * d)
            y = INFINITY * (a * d + b * c)
    acc[0] = acc[0] + x
    acc[1] = acc[1] + y


def correlate_complex(const part_t[:, ::1] padded,  # IN  padded plane, complex as (re, im) pairs
                      const part_t[:, ::1] kernel,  # IN  M x 2N pairs
                      part_t[:, ::1] out,           # OUT Ho x 2Wo pairs
                      Py_ssize_t row0, Py_ssize_t row1):
    """Complex valid correlation, one complex product per term like SciPy's."""
    cdef Py_ssize_t M = kernel.shape[0], N = kernel.shape[1] // 2, Wo = out.shape[1] // 2
    cdef Py_ssize_t i, u, v, j
    cdef part_t wr, wi
    cdef const part_t *irow
    cdef part_t *orow
    with nogil:
        for i in range(row0, row1):
            orow = &out[i, 0]
            for j in range(2 * Wo):
                orow[j] = 0
            for u in range(M):
                irow = &padded[i + u, 0]
                for v in range(N):
                    wr = kernel[u, 2 * v]
                    wi = kernel[u, 2 * v + 1]
                    for j in range(Wo):
                        _complex_mul_add(irow[2 * (j + v)], irow[2 * (j + v) + 1], wr, wi,
                                         &orow[2 * j])


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

cdef enum:
    SPATIAL_ROWS = 8    # output rows per call of the row-vectorized kernel
    NARROW_ROWS = 512   # (rows computed wider than the output: per call, _conv_plan)
    GATHER_MAX_PIXELS = 400   # flat pixels of an image, at most, for gathered tiles
    SMALL_PIXELS = 128  # below this many output pixels per call, weights are not packed
    # ... except for 3x3 layers whose row tiles leave out the zero padding's
    # products, up to this many bytes of packed weights (_rows_beat_small)
    SMALL_ROWS_MAX_BYTES = 16 << 20
    WIDE_SMALL_USE = 70   # percent (_wide_small_tiles)
    # Depthwise layers with the channels in the vector lanes: at unit stride
    # and dilation, output planes of up to this many bytes with 64-byte
    # vectors, a quarter of it with 32-byte ones and a sixteenth with 16
    # (larger planes run the row kernels, which share each loaded vector
    # between taps). Zen 5, 3x3, lanes against rows: AVX-512 float32 24^2
    # 1.40x, 28^2 1.15-1.22x, 32^2-56^2 0.69-1.00x, float64 14^2 1.06-1.18x,
    # 20^2 0.99x, 24^2 0.92x; AVX2 float32 14^2 1.22x, 28^2 0.97x, float64
    # 7^2 1.27x, 14^2 0.89x; SSE2 float32 7^2 1.21x, 14^2 0.92x, float64
    # 7^2 0.88x. And bands of about DW_BAND_BYTES of interleaved input (a
    # quarter of L2).
    DW_LANES_MAX_BYTES = 3200
    DW_BAND_BYTES = 262144
    LANES_MAX_CHANNELS = 128  # 1x1 layers of up to this many input channels: pixel tiles
    LANES_STRIP_BYTES = 16384 # pixel tiles' input per strip: half of L1


ctypedef struct _Conv:
    # the problem (set by the caller)
    Py_ssize_t N, C, H, W, K, R, S, groups
    Py_ssize_t sh, sw, dh, dw
    Py_ssize_t top, bottom, left, right
    bint zero_padding               # padding_mode "zeros"
    bint pack_first                 # never pack_inline (the caller runs the plan many times)
    bint pixel_tiles                # pixel tiles allowed (a test compares the plan without)
    # derived by _conv_plan
    const cyc_kernel_table *table   # the kernels it runs (_conv_table)
    Py_ssize_t Cg, Kg, Hp, Wp, Ho, Wo
    Py_ssize_t Hb, Wb               # padded buffer; Hb > Hp: zero rows tiles overrun into, or a
                                    # spare row; Wb < Wp: rows share a zero padding column
    Py_ssize_t PT, KB, blocks       # blocked tiles: pixels x channels; blocks per group
    Py_ssize_t RT                   # row tiles: pixels a row's tiles step by (<= PT)
    Py_ssize_t FK, FP               # small-image tiles: channels x flat pixels
    Py_ssize_t LP                   # pixel tiles' pixels (their channels: the table's)
    Py_ssize_t chunk, strip         # flat tiles: input channels per pass, tiles per strip
    Py_ssize_t strip_blocks         # channel blocks per pass over a strip
    bint blocked, flat, small
    bint gathers                    # flat: a piece's tiny images in tiles across rows and
                                    # images (_conv2d_gathered)
    bint padding_skips              # row, gathered tiles may skip products with zero padding:
                                    # packing checks the weights are finite (_pack_block)
    bint tiles_outer                # blocked: every channel block per tile position
    bint chunk_blocks_outer         # chunked: each block over the strip, not each tile
    bint pack_inline                # blocks outer, one image or strip: weights packed as they
                                    # run (chunked 1x1: chunk by chunk; else block by block)
    bint lanes                      # blocked 1x1: pixel tiles (_conv2d_lanes) where they fill
    Py_ssize_t rows_width           # row-vectorized: columns each output row is computed at
    Py_ssize_t dw_lanes             # depthwise, channels in the lanes: channels per pixel
                                    # (0: not that path)
    Py_ssize_t dw_band              # and output rows per band (_conv2d_depthwise_lanes)
    Py_ssize_t packed_size, scratch_size, edge_size   # elements


cdef inline Py_ssize_t _flat_pitch(const _Conv *g) noexcept nogil:
    # Row pitch of the padded buffer for flat tiles (read as one long row):
    # with zero padding a row's right padding can be the next row's left
    # padding (both zeros), which saves up to min(left, right) computed and
    # dropped pixels per row (3x3 "same" at 7x7: 55 flat pixels, not 62).
    # The pitch keeps every output column (Wo) and the image's own columns
    # with the wider of the two paddings.
    if not g.zero_padding:
        return g.Wp
    return max(g.Wo, g.W + max(g.left, g.right))


cdef enum:
    TILES_OUTER_BYTES = 262144    # packed weights up to this run every block per tile position
    SMALL_INPUT_BYTES = 2097152   # (1x1 layers on inputs up to this: fewer, _conv_plan)
    CHUNK_WEIGHT_BYTES = 16384    # a chunk's packed weights, all blocks: half of L1
    MIN_CHUNK = 32                # fewest input channels per chunk (_plan_chunks)
    STRIP_PARTIAL_BYTES = 131072  # a strip's partial sums: a quarter of L2
    BLOCK_CHUNK_BYTES = 8192      # chunks of one block (_plan_chunks): a quarter of L1,
                                  # the rest for the strip's input (16 KB: 13 % slower at 14x14)
    BLOCK_STRIP_PARTIAL_BYTES = 524288   # their strip's partial sums: L2
    TAPS_CHUNK_BYTES = 18432      # R x S layers: a block's chunk (32 channels of 3x3 float32)
    TAPS_STRIP_PARTIAL_BYTES = 32768    # their strip's partial sums: an L1 (131072: 1-6 % slower)
    TAPS_MIN_STRIP = 16           # their fewest tiles per strip, each chunk's weights serving all
    PACK_BLOCK_MAX_BYTES = 655360 # unchunked blocks outer: a block packed as it starts (_conv_plan)


cdef inline void _plan_chunks(_Conv *g, Py_ssize_t item) noexcept nogil:
    # 1x1 layers on flat tiles run every channel block at each tile position
    # (_conv2d_blocked): with many input channels the blocks' weights exceed
    # L1 and stream from L2 at 2 weight vectors per 12 FMAs (C harness, 256
    # -> 64 channels: 64-81 GFLOP/s against 81-95 in chunks of 64). So the
    # input channels go in chunks whose weights stay in L1, over a strip of
    # tiles whose partial sums wait in scratch; the sum of each pixel still
    # runs over the channels in order, so the bits are unchanged.
    #
    # With more packed weights than TILES_OUTER_BYTES (ResNet-50's 1x1
    # layers at 7x7 to 28x28: 512-2048 channels) a chunk of every block
    # exceeds L1, and blocks outer stream each block's weights from L2 for
    # every tile (512 -> 1024 @14x14: 55 GFLOP/s in the tiles). There each
    # block's chunk (8 KB) stays in L1 while it runs over a strip whose
    # partial sums fill L2, and a call's pieces span whole strips (min_rows)
    # and ranges of blocks, so the weights stream from memory once per strip
    # rather than once per tile or per row.
    #
    # An image with fewer pixels than the layer has output channels (512 ->
    # 1024 @14x14) is cheaper to read again than the weights: its strip is
    # the whole image and the blocks run over it strip_blocks at a time, as
    # many as their partial sums fill L2 (two passes over the image instead
    # of two strips, each streaming all the weights).
    #
    # Chunks of fewer than MIN_CHUNK channels cost more in partial sums than
    # their weights in L1 save (64 -> 256 and 128 -> 512 channels, chunks of
    # 16: 17-28 % faster without; 512 -> 128, chunks of 32: 7 % slower).
    #
    # R x S layers on flat tiles (3x3 at 14x14 to 56x56) stream a block's
    # weights from L2 for every tile the same way: 64 channels of 3x3 are
    # 36 KB a block. They run blocks outer, in chunks of TAPS_CHUNK_BYTES.
    if not g.flat or g.lanes:
        return
    cdef Py_ssize_t taps = g.R * g.S
    cdef Py_ssize_t nb = g.groups * g.blocks
    cdef bint blocks_outer = not g.tiles_outer or taps > 1
    cdef Py_ssize_t chunk
    if taps > 1:
        chunk = TAPS_CHUNK_BYTES // (taps * g.KB * item)
    elif blocks_outer:
        chunk = BLOCK_CHUNK_BYTES // (g.KB * item)
    else:
        chunk = CHUNK_WEIGHT_BYTES // (nb * g.KB * item)
    if chunk >= g.Cg or chunk < MIN_CHUNK:
        return
    g.chunk, g.chunk_blocks_outer = chunk, blocks_outer
    if taps > 1:
        g.tiles_outer = False
    cdef Py_ssize_t strip_bytes = (TAPS_STRIP_PARTIAL_BYTES if taps > 1
                                   else BLOCK_STRIP_PARTIAL_BYTES if blocks_outer
                                   else STRIP_PARTIAL_BYTES)
    cdef Py_ssize_t pixels = (g.Ho - 1) * g.Wb + g.Wo        # flat pixels of one image
    cdef Py_ssize_t tiles = (pixels + g.PT - 1) // g.PT
    cdef Py_ssize_t tile_bytes = g.PT * g.KB * item
    g.strip_blocks = nb
    if blocks_outer and g.C * pixels < g.packed_size and tiles * tile_bytes <= strip_bytes:
        g.strip = tiles
        g.strip_blocks = min(nb, strip_bytes // (tiles * tile_bytes))
    else:
        g.strip = max(1, strip_bytes // (nb * tile_bytes))
    if taps > 1 and g.strip < TAPS_MIN_STRIP:
        # Many blocks (512 channels: 32) leave strips of a tile or two, each
        # streaming every block's weights: fewer blocks per pass instead
        # (512 -> 512 3x3 @28x28: 1.17x).
        g.strip_blocks = min(nb, max(1, strip_bytes // (TAPS_MIN_STRIP * tile_bytes)))
        g.strip = max(1, strip_bytes // (g.strip_blocks * tile_bytes))
    g.scratch_size += g.strip * g.strip_blocks * g.PT * g.KB
    if blocks_outer and taps == 1 and not g.pack_first and g.N * tiles <= g.strip:
        # A single strip (one image's tiles fit in it): each block's chunk
        # is packed when the strip starts, from the weights as given, into
        # L1 (a 64-byte aligned buffer after the partial sums). Packing all
        # of them first wrote and read back megabytes (2048 -> 512 @7x7:
        # 4 MB, 6-16 % faster inline). With more strips each would pack
        # its chunks again (a layer of two strips: 7 % slower).
        g.pack_inline = True
        g.packed_size = 0
        g.scratch_size += chunk * g.KB + 64 // item
        # A piece of less than a tile (an image of fewer pixels, a short
        # last piece of rows) runs unchunked (_conv2d_blocked) and packs its
        # whole block after the tile: the scratch holds that too.
        g.scratch_size = max(g.scratch_size, g.PT * g.KB + g.Cg * g.KB + 64 // item)


cdef inline bint _splits_blocks(const _Conv *g) noexcept nogil:
    # Blocks outer (chunked or not): a piece may take a range of blocks.
    return g.blocked and not g.tiles_outer


cdef const cyc_kernel_table *_conv_table(Py_ssize_t Kg, bint double_precision) noexcept nogil:
    # A layer of fewer output channels per group than an AVX-512 channel
    # block (32 float32, 16 float64) would leave lanes of every 512-bit
    # tile empty, or miss the blocked tiles altogether (2 Kg < KB): AVX2's
    # blocks of half the width fill them. Measured on Zen 4 (512-bit FMAs
    # double-pumped, the same peak as AVX2), one thread: 3 -> 8 channels
    # 3x3 @28x28 2.0x faster, 8 -> 16 @14x14 batch 16 1.4x; 32 channels and
    # more are 1.2-1.35x faster with AVX-512's blocks. The same sums in the
    # same order either way, so the same bits.
    if _level == 2 and Kg < (_table.block_f64 if double_precision else _table.block_f32):
        return cyc_kernels(1)
    return _table


cdef inline Py_ssize_t _row_lanes(bint double_precision) noexcept nogil:
    # Lanes of the row kernels' vector: the level's own (_conv2d_spatial
    # runs them, not the plan's table), half its channel block.
    return (_table.block_f64 if double_precision else _table.block_f32) // 2


cdef bint _depthwise_lanes_on = True   # (set_depthwise_lanes: tests compare without)
cdef bint _gathered_tiles_on = True    # (set_gathered_tiles: the same)


def gathered_tiles():
    """Do conv2d plans run pieces of tiny images in tiles across rows and
    images? (set_gathered_tiles)"""
    return _gathered_tiles_on


def set_gathered_tiles(bint on):
    """Let conv2d plans run pieces of tiny images in tiles across rows and
    images (the default), or per image in flat tiles (the tests compare
    both); returns the old setting."""
    global _gathered_tiles_on
    old, _gathered_tiles_on = _gathered_tiles_on, on
    return old


def depthwise_lanes():
    """Do conv2d plans run depthwise layers with the channels in the vector
    lanes? (set_depthwise_lanes)"""
    return _depthwise_lanes_on


def set_depthwise_lanes(bint on):
    """Let conv2d plans run depthwise layers with the channels in the vector
    lanes (the default), or not (the tests compare both); returns the old
    setting."""
    global _depthwise_lanes_on
    old, _depthwise_lanes_on = _depthwise_lanes_on, on
    return old


cdef inline Py_ssize_t _depthwise_lanes(const _Conv *g, bint double_precision) noexcept nogil:
    # Channels per pixel of the depthwise-lanes path for this layer, or 0.
    # One input channel per group (and any output channels per group: a
    # depth multiplier), and at least a vector of such channels. Strided
    # and dilated layers always (the row kernels compute every column and
    # drop the others: Zen 5, AVX-512, 5x5/2 144@56^2 1.69x (float32) and
    # 1.85x (float64) faster in lanes); at unit stride only small planes
    # (DW_LANES_MAX_BYTES).
    cdef Py_ssize_t lanes = _table.dw_lanes_f64 if double_precision else _table.dw_lanes_f32
    cdef Py_ssize_t item = 8 if double_precision else 4, vector = lanes * item
    if not _depthwise_lanes_on or g.Cg != 1 or g.C < lanes:
        return 0
    if g.sh == 1 and g.sw == 1 and g.dh == 1 and g.dw == 1 \
            and g.Ho * g.Wo * item > DW_LANES_MAX_BYTES * vector * vector // 4096:
        return 0
    return lanes


cdef inline Py_ssize_t _padded_size(const _Conv *g) noexcept nogil:
    # Elements of the padded input buffer (C x Hb x Wb); none for the
    # depthwise lanes, which gather their rows into scratch.
    return 0 if g.dw_lanes else g.C * g.Hb * g.Wb


cdef inline Py_ssize_t _dw_band(Py_ssize_t Ho, Py_ssize_t Wp, Py_ssize_t sh, Py_ssize_t lanes,
                                Py_ssize_t item) noexcept nogil:
    # Output rows per band of the depthwise lanes: about DW_BAND_BYTES of
    # interleaved input rows (padded width Wp, row stride sh).
    return max(1, min(Ho, DW_BAND_BYTES // (item * lanes * Wp * sh)))


cdef inline Py_ssize_t _dw_rows_read(Py_ssize_t rows, Py_ssize_t sh, Py_ssize_t R,
                                     Py_ssize_t dh) noexcept nogil:
    # Padded input rows that `rows` output rows read.
    return (rows - 1) * sh + (R - 1) * dh + 1


cdef inline Py_ssize_t _dw_band_rows(const _Conv *g) noexcept nogil:
    # Padded input rows a band of dw_band output rows reads.
    return _dw_rows_read(g.dw_band, g.sh, g.R, g.dh)


cdef inline bint _spatial_rows_at_once(const _Conv *g) noexcept nogil:
    # The row-vectorized path runs many output rows per call of the
    # multi-row kernels: at unit row stride and dilation, or (one input
    # channel per group) with the kernel's rows as the channels, which
    # takes any row stride and dilation. Unit column dilation either way.
    return g.dw == 1 and ((g.sh == 1 and g.dh == 1) or g.Cg == 1)


cdef inline Py_ssize_t _narrow_spare_rows(const _Conv *g) noexcept nogil:
    # Narrow rows computed wider than their dense columns read that many
    # columns past the last padded row: zero rows below it hold them (a
    # 1-wide plane computed 16 wide reads 15 rows on).
    return max(1, (g.rows_width - (g.Wo - 1) * g.sw - 1 + g.Wb - 1) // g.Wb)


cdef inline bint _rows_beat_small(const _Conv *g, bint double_precision) noexcept nogil:
    # Small images of a 3x3 layer with zero padding, as row tiles of packed
    # weights rather than small-image tiles: the rows' tiles leave out the
    # products with the padding (_blocked_row_tile: 361 of 441 per channel
    # pair at 7x7), where small-image tiles compute every one. Rows of at
    # least a tile, or of one of the tile widths, waste no pixels; the
    # packing costs less than the products saved while the weights fit in
    # SMALL_ROWS_MAX_BYTES. Zen 5, float32, against small-image tiles:
    # AVX-512 1.09-2.16x, AVX2 1.05-1.83x, baseline 1.17-1.47x, but 512 ->
    # 512 (9.4 MB) at 0.92-1.06x; its input gradient 1.12x (bench/RESULTS.md,
    # 2026-12-05).
    cdef Py_ssize_t item = 8 if double_precision else 4
    cdef Py_ssize_t blocks = (g.Kg + g.KB - 1) // g.KB
    return g.R == 3 and g.S == 3 and g.dh == 1 and g.dw == 1 and g.zero_padding \
        and g.top + g.bottom + g.left + g.right > 0 \
        and (g.Wo >= g.PT or _tile_width(g.PT, g.Wo) == g.Wo) \
        and g.groups * blocks * g.Cg * 9 * g.KB * item <= SMALL_ROWS_MAX_BYTES


cdef bint _wide_small_tiles(const _Conv *g, bint double_precision) noexcept nogil:
    # Where 512-bit FMAs run at full width (cyc_rows_512: Zen 5), blocked
    # layers that the level's own small-image tiles (512-bit, vectorized
    # along the pixels, stored a run of pixels at a time) run faster, while
    # the flat pixels they compute are at least WIDE_SMALL_USE percent
    # useful (whole 64-pixel tiles, float32: 8x8 images, half of them, ran
    # 102 GFLOP/s against AVX2's 121; 10x10 (78 %) 1.44x, 11x11 (63 %)
    # 1.00x, 12x12 (75 %) 1.06x, 13x13 (88 %) 1.56x). The same sums in the
    # same order, so the same bits.
    # - Layers that _conv_table gave AVX2's blocks (fewer output channels per
    #   group than an AVX-512 block): those reach about half the peak there
    #   (32 -> 16 3x3 @56x56: 121 GFLOP/s, small-image tiles 194; 1 -> 16
    #   @28x28 1.84x, 2 -> 16 1.75x, 1 -> 24 2.15x). An image's last tile
    #   computes only the vectors that hold pixels, so their share counts
    #   vectors, once an image holds a whole tile (64 x 16 -> 16 @8x8, 80 %:
    #   1.35x; 24 -> 24 1.81x; 16 -> 16 @9x9 1.48x, @11x11 1.20x).
    # - Layers of AVX-512 blocks with at most 27 taps a pixel: their tiles
    #   store 14 pixels x 32 channels, transposed, for so few products
    #   (3 -> 64 3x3 @32x32, 64 images: 2.05x; 1 -> 64 @28x28 1.09x; 1 -> 32
    #   5x5 0.98x; 16 -> 32 3x3 @14x14, 144 taps: 0.66x).
    cdef Py_ssize_t FP = _table.flat_f64 if double_precision else _table.flat_f32
    cdef Py_ssize_t lanes, pixels, computed
    if not cyc_rows_512() or g.sh != 1 or g.sw != 1 or (g.R == 1 and g.S == 1):
        return False
    if g.table == _table and g.Cg * g.R * g.S > 27:
        return False
    pixels = (g.Ho - 1) * _flat_pitch(g) + g.Wo
    if g.table == _table or pixels < FP:
        # whole tiles (counted in vectors: 3 -> 64 @8x8, 80 %, 0.83x; 16 ->
        # 16 @6x6, 75 % in one part of a tile, 0.82x)
        computed = (pixels + FP - 1) // FP * FP
    else:   # an image's last tile computes only the vectors that hold pixels
        lanes = _table.block_f64 // 2 if double_precision else _table.block_f32 // 2
        computed = (pixels + lanes - 1) // lanes * lanes
    return 100 * g.Ho * g.Wo >= WIDE_SMALL_USE * computed


cdef inline void _use_table(_Conv *g, const cyc_kernel_table *t,
                            bint double_precision) noexcept nogil:
    # The plan's kernels, and the tile sizes they take.
    g.table = t
    g.PT = t.tile_pixels
    g.KB = t.block_f64 if double_precision else t.block_f32
    g.FK = t.flat_channels
    g.LP = t.pixel_f64 if double_precision else t.pixel_f32
    g.FP = t.flat_f64 if double_precision else t.flat_f32


cdef void _conv_plan(_Conv *g, bint double_precision) noexcept nogil:
    """Derive the output size and the kernel choice. The caller checked that
    the padded input is at least as large as the dilated kernel."""
    cdef Py_ssize_t tiles, pitch, item, lanes
    g.Cg = g.C // g.groups
    g.Kg = g.K // g.groups
    g.Hp = g.H + g.top + g.bottom
    g.Wp = g.W + g.left + g.right
    g.Ho = (g.Hp - g.dh * (g.R - 1) - 1) // g.sh + 1
    g.Wo = (g.Wp - g.dw * (g.S - 1) - 1) // g.sw + 1
    _use_table(g, _conv_table(g.Kg, double_precision), double_precision)
    # Few output channels per group would leave most of a channel block
    # empty: vectorize along the row instead.
    g.blocked = 2 * g.Kg >= g.KB
    g.flat = False
    g.padding_skips = False
    g.tiles_outer = False
    g.chunk_blocks_outer = False
    g.pack_inline = False
    g.lanes = False
    g.rows_width = 0
    g.dw_lanes = 0 if g.blocked else _depthwise_lanes(g, double_precision)
    g.gathers = False
    g.dw_band = 0
    g.chunk = g.Cg
    g.strip = 0
    g.strip_blocks = 0
    g.Hb, g.Wb = g.Hp, g.Wp
    # Tiny images (deep layers at 7x7): packing the weights would cost as
    # much as the arithmetic; read them in place, vectorized along the pixels.
    # 1x1 layers pack anyway: their weights are read as often as the pixels
    # (512 -> 2048 @7x7: flat tiles on unpacked weights 0.44x PyTorch,
    # packed 0.69x).
    g.small = g.blocked and g.sh == 1 and g.sw == 1 and g.N * g.Ho * g.Wo < SMALL_PIXELS \
        and not (g.R == 1 and g.S == 1) and not _rows_beat_small(g, double_precision)
    if g.blocked and not g.small and _wide_small_tiles(g, double_precision):
        g.small = True
        _use_table(g, _table, double_precision)
    if g.small:
        g.blocked = False
        g.Wb = _flat_pitch(g)
        # zero rows for the last tile's overrun: FP pixels past the last
        # row's end, which reads Wp - Wb pixels into the next row
        g.Hb = g.Hp + (g.FP + g.Wp - 1) // g.Wb
        g.blocks = 0
        g.packed_size = 0
        g.scratch_size = g.FK * g.FP
        g.edge_size = 0
    elif g.blocked:
        tiles = (g.Wo + g.PT - 1) // g.PT
        # Row tiles waste the end of each row (less at a narrower step where
        # _row_step finds one); flat tiles (unit stride only) waste the
        # padding columns instead: take the smaller waste. A row
        # one tile width wide wastes nothing, and with zero padding its tiles
        # leave out the kernel rows and edge columns that fall on it
        # (_blocked_row_tile): 3x3 layers at 7x7 compute 361 products per
        # image for 49 x 9, where flat tiles of pitch 8 computed 56 x 9.
        pitch = _flat_pitch(g)
        g.RT = _row_step(g.PT, g.Wo)
        g.flat = g.sh == 1 and g.sw == 1 \
            and (pitch - g.Wo < tiles * g.PT - g.Wo if g.RT == g.PT
                 else pitch <= _row_pixels(g.PT, g.Wo, g.RT)) \
            and not (g.R > 1 and g.zero_padding and g.top + g.bottom > 0
                     and g.Wo == _tile_width(g.PT, g.Wo))
        if g.flat and pitch < g.Wp:
            g.Wb = pitch
            g.Hb += 1   # the last row's right padding runs into a zero row
        g.padding_skips = not g.flat and g.zero_padding \
            and g.top + g.bottom + g.left + g.right > 0
        # A tile reads the same rows of every channel plane: with a plane
        # pitch of a multiple of 1 KB those all land in a few L1 sets and
        # evict each other (measured: 256 channels at 14x14). A spare row
        # (never read) breaks the pattern.
        if (g.Hb * g.Wb * (8 if double_precision else 4)) % 1024 == 0:
            g.Hb += 1
        g.blocks = (g.Kg + g.KB - 1) // g.KB
        g.packed_size = g.groups * g.blocks * g.Cg * g.R * g.S * g.KB
        g.scratch_size = g.PT * g.KB
        # When all the packed weights fit in L2, every channel block of a
        # tile position runs back to back, so the tile's input stays in L1
        # (and is read from memory once: it matters for 1x1 layers, whose
        # images exceed L2); otherwise each block's weights stay in cache
        # while its tiles run (_conv2d_blocked). A 1x1 layer on an image of
        # at most SMALL_INPUT_BYTES rereads it from cache for each block
        # for less than streaming its weights from L2 per tile position:
        # float32 from 32 KB of weights (64 -> 256 @56x56, 128 -> 128
        # @28x28: 3-12 % faster; six more layers 0-2 %, none slower; and
        # 128-256 KB @28x28: 2-11 %), float64 from 128 KB (from 32 KB it
        # measured 1-5 % slower). Larger inputs from 256 KB (@56x56,
        # float32, 128-256 KB of weights: 2-10 % slower blocks outer).
        item = 8 if double_precision else 4
        g.tiles_outer = g.packed_size * item <= (
            TILES_OUTER_BYTES // (2 if double_precision else 8)
            if g.R == 1 and g.S == 1 and g.C * g.Hb * g.Wb * item <= SMALL_INPUT_BYTES
            else TILES_OUTER_BYTES)
        # A 1x1 layer of few input channels spends a fifth of its blocked
        # tiles' time storing them (each tile transposed into KB output
        # planes): with no padding and one group, output pixel f reads input
        # pixel f, and pixel tiles (pixels in the vector lanes, _conv2d_lanes)
        # store whole vectors of each plane instead. Their weight broadcasts
        # come from the blocked packing (KB channels innermost), so the plan
        # stays blocked: pieces of fewer pixels than a pixel tile use its
        # blocked tiles.
        g.lanes = g.R == 1 and g.S == 1 and g.sh == 1 and g.sw == 1 and g.groups == 1 \
            and g.top == 0 and g.bottom == 0 and g.left == 0 and g.right == 0 \
            and g.Wb == g.W and g.Cg <= LANES_MAX_CHANNELS and g.pixel_tiles
        if g.lanes:
            g.scratch_size = max(g.scratch_size, g.table.pixel_channels * g.LP)
        _plan_chunks(g, item)
        if not g.tiles_outer and g.chunk == g.Cg and not g.lanes and not g.pack_first \
                and g.N == 1 and g.Cg * g.R * g.S * g.KB * item <= PACK_BLOCK_MAX_BYTES:
            # Blocks outer, unchunked (3x3 layers of more than
            # TILES_OUTER_BYTES of weights): each block is packed as its
            # tiles start, into scratch that stays in L2, rather than all of
            # them first, written to memory and read back (256 -> 256 3x3
            # @14x14: 2.4 MB). A batch's pieces would pack each block once
            # per image: those pack first.
            g.pack_inline = True
            g.packed_size = 0
            g.scratch_size += g.Cg * g.R * g.S * g.KB + 64 // item
        # Tiny images on flat tiles compute each image's padding columns and
        # end it with a narrow tile (4x4, 3x3 "same": 19 flat pixels for 16,
        # in tiles of 14 and 5). A piece of several such images runs tiles
        # of any PT of its output pixels instead, across rows and images
        # (_conv2d_gathered): the same sums, so the same bits.
        # A strided layer's rows of at most two thirds of a tile run in one
        # narrow row tile each (3x3/2 @16x16: rows of 8 in tiles of 14, 16
        # accumulators for 28): those gather too. Zen 4, 64 x 32 -> 64
        # 3x3/2 float32, float64: rows of 6 1.55x, 1.57x; of 8 1.23x,
        # 1.14x; of 10 (one 10-pixel tile) 0.93x, 0.96x; 12-13 1.00-1.07x.
        # Rows of 9 (2026-12-07, float32 / float64): DQN's 32 x 32 -> 64
        # 4x4/2 @20x20 1.10x / 1.09x, 8 x 128 -> 128 3x3/2 @18x18 1.09x /
        # 1.08x. (AVX2's 6-pixel tiles: rows of 4, as before.)
        g.gathers = (g.flat or ((g.sh > 1 or g.sw > 1) and 3 * g.Wo <= 2 * g.PT)) \
            and _gathered_tiles_on and g.N > 1 \
            and g.chunk == g.Cg and not g.lanes and not g.pack_inline \
            and ((g.Ho - 1) * g.Wb + g.Wo if g.flat else g.Ho * g.Wo) <= GATHER_MAX_PIXELS
        if g.gathers and g.zero_padding:
            g.padding_skips = True   # they leave out padding products (_conv2d_gathered)
        g.edge_size = g.Cg * g.R * g.PT * g.S
    elif g.dw_lanes:
        # One band of rows of a group of channels at a time: its taps and
        # bias interleaved, then its input rows and its output rows, each
        # pixel a vector of dw_lanes channels (_conv2d_depthwise_lanes).
        g.blocks = 0
        g.packed_size = 0
        item = 8 if double_precision else 4
        g.dw_band = _dw_band(g.Ho, g.Wp, g.sh, g.dw_lanes, item)
        g.scratch_size = g.dw_lanes * (g.R * g.S + 1 + _dw_band_rows(g) * g.Wp
                                       + g.dw_band * g.Wo)
        g.edge_size = 0
    else:
        g.blocks = 0
        g.packed_size = 0
        g.rows_width = (g.Wo - 1) * g.sw + 1
        g.scratch_size = SPATIAL_ROWS * g.rows_width
        lanes = _row_lanes(double_precision)
        if _spatial_rows_at_once(g) and g.rows_width < 2 * lanes:
            # Rows under two vectors wide fall short of the row kernels'
            # two-vector blocks: computed whole vectors wide into scratch
            # (the extra columns read on into the next row, and past the
            # last into spare zero rows), up to NARROW_ROWS rows a call
            # (Zen 5, AVX-512, float32 3x3 planes, row kernel alone: 28 wide
            # 56 -> 105 useful GFLOP/s, 7 wide 4.4 -> 12).
            g.rows_width = (g.rows_width + lanes - 1) // lanes * lanes
            g.Hb += _narrow_spare_rows(g)
            g.scratch_size = min(g.Ho, NARROW_ROWS) * g.rows_width
        g.edge_size = 0


cdef extern from "pack.h" nogil:
    enum: CYC_PACK_TAPS_F32, CYC_PACK_TAPS_F64   # taps per panel
    enum: CYC_PACK_WIDE_TAPS_F32, CYC_PACK_WIDE_TAPS_F64   # taps per wide panel
    int cyc_pack_panel_f32(const float *src, Py_ssize_t sk, float *dst, Py_ssize_t KB,
                           Py_ssize_t taps, int check)
    int cyc_pack_panel_f64(const double *src, Py_ssize_t sk, double *dst, Py_ssize_t KB,
                           Py_ssize_t taps, int check)


cdef enum:
    # A packed block's mark (conv2d's packed_blocks; 0: not packed yet).
    BLOCK_PACKED = 1
    BLOCK_NONFINITE = 2   # with BLOCK_PACKED: an infinity or NaN among its weights


cdef bint _pack_block(const _Conv *g, const char *src, Py_ssize_t sk, Py_ssize_t sc,
                      Py_ssize_t sr, Py_ssize_t ss, Py_ssize_t nk, Py_ssize_t j0, Py_ssize_t j1,
                      fp_t *dst) noexcept nogil:
    """Taps j0 <= j < j1 ((c, r, s) in order) of nk output channels, the
    first at src (byte strides sk, sc, sr, ss), as rows of KB: zeros past
    nk. Whole blocks of contiguous taps go by panels (pack.h: a transpose in
    registers), each channel's taps of the input gradient's flipped view by
    one transpose; the rest element by element. With g.padding_skips,
    returns whether every weight is finite, tested in the registers the
    copies go through (interleave.h: cyc_transpose_check); else True.
    Reading the packed block back took 7 % of a 256 -> 256 3x3 layer at
    14x14, and even each panel's source, read again at once, 2-3 % of a
    batch of 512 -> 512 3x3 at 7x7 (its rows, 18 KB apart, share L1 sets)."""
    cdef Py_ssize_t KB = g.KB, item = sizeof(fp_t), kk, c, r, s, j = j0, taps = g.R * g.S
    cdef Py_ssize_t panel = CYC_PACK_TAPS_F32 if fp_t is float else CYC_PACK_TAPS_F64
    cdef Py_ssize_t wide = CYC_PACK_WIDE_TAPS_F32 if fp_t is float else CYC_PACK_WIDE_TAPS_F64
    cdef Py_ssize_t width
    cdef bint finite = True
    cdef const char *run
    if nk == KB and ss == -item and sr == -g.S * item and sk == taps * item \
            and j0 % taps == 0 and j1 % taps == 0:
        # The input gradient's view of a layer's weights (channel axes
        # swapped, taps flipped): for each input channel, the block's KB
        # channels are one KB x taps matrix in the layer, its taps reversed.
        # Each is transposed into its rows of KB, the last row first (a copy
        # of the whole layer first wrote and read back 9.4 MB for 512 -> 512
        # 3x3), the matrix two channels on asked for ahead (it is a layer's
        # row of channels away: 18 KB there).
        for c in range(j0 // taps, j1 // taps):
            if c + 2 < j1 // taps:
                run = src + (c + 2) * sc - (taps - 1) * item
                for j in range(0, KB * taps * item, 64):
                    cyc_prefetch_read(run + j)
            finite &= _transpose_check(<const fp_t *>(src + c * sc - (taps - 1) * item), taps,
                                       KB, taps, dst + (taps - 1) * KB, -KB, g.padding_skips)
            dst += taps * KB
        return finite
    if nk == KB and ss == item and sr == g.S * item and sc == g.R * g.S * item \
            and sk % item == 0:
        while j + panel <= j1:   # wide panels, then narrow ones
            width = wide if j + wide <= j1 else panel
            if fp_t is float:
                finite &= cyc_pack_panel_f32(<const float *>src + j, sk // item, dst, KB, width,
                                             g.padding_skips)
            else:
                finite &= cyc_pack_panel_f64(<const double *>src + j, sk // item, dst, KB, width,
                                             g.padding_skips)
            dst += width * KB
            j += width
    while j < j1:
        c, r, s = j // (g.R * g.S), j // g.S % g.R, j % g.S
        if sk == item:   # the channels contiguous (conv_transpose2d's weight view of a 1x1)
            memcpy(dst, src + c * sc + r * sr + s * ss, nk * item)
        else:
            for kk in range(nk):
                dst[kk] = (<const fp_t *>(src + kk * sk + c * sc + r * sr + s * ss))[0]
        for kk in range(nk, KB):
            dst[kk] = 0
        if g.padding_skips:
            if fp_t is float:
                finite &= not _nonfinite_f32(<const char *>dst, nk, item)
            else:
                finite &= not _nonfinite_f64(<const char *>dst, nk, item)
        dst += KB
        j += 1
    return finite


cdef inline uint8_t _block_mark(bint finite) noexcept nogil:
    # The mark of a block packed by _pack_block (which said if it is finite).
    return BLOCK_PACKED if finite else BLOCK_PACKED | BLOCK_NONFINITE


cdef uint8_t _pack_weights(const _Conv *g, const char *w, Py_ssize_t sk, Py_ssize_t sc,
                           Py_ssize_t sr, Py_ssize_t ss, fp_t *dst,
                           Py_ssize_t bb0, Py_ssize_t bb1, uint8_t *marks) noexcept nogil:
    """(K, Cg, R, S) with byte strides -> (groups * blocks, Cg, R * S, KB):
    each block of KB output channels innermost, zeros past the group's end.
    Only blocks bb0 <= bb < bb1 (counted over all groups) are written, and
    their marks into marks[bb] (unless NULL); returns the marks OR-ed."""
    cdef Py_ssize_t grp, b, bb, taps = g.Cg * g.R * g.S
    cdef uint8_t mark, all_marks = 0
    for bb in range(bb0, bb1):
        grp, b = bb // g.blocks, bb % g.blocks
        mark = _block_mark(_pack_block(g, w + (grp * g.Kg + b * g.KB) * sk, sk, sc, sr, ss,
                                       min(g.KB, g.Kg - b * g.KB), 0, taps,
                                       dst + bb * taps * g.KB))
        all_marks |= mark
        if marks != NULL:
            marks[bb] = mark
    return all_marks


cdef inline void _store_tile(const fp_t *tile, Py_ssize_t KB, Py_ssize_t nk,
                             char *out, Py_ssize_t osk, Py_ssize_t osx,
                             Py_ssize_t npx, const fp_t *bias) noexcept nogil:
    # npx pixels (from `out`, along the row) of nk channels from a
    # channels-innermost tile, plus bias; `out` and `bias` at the first channel.
    cdef Py_ssize_t i, kk
    cdef char *o
    cdef fp_t bk
    cdef bint contiguous = osx == sizeof(fp_t)
    kk = 0
    if fp_t is float and contiguous:
        # four channels at a time, transposed in registers (tile_store.h)
        while kk + 4 <= nk:
            o = out + kk * osk
            for i in range(4):
                cyc_prefetch_write(o + i * osk + npx * osx + 64)   # as below
            cyc_store_quad_f32(tile + kk, KB, <float *>o, osk // sizeof(float), npx,
                               bias + kk if bias != NULL else NULL)
            kk += 4
    while kk < nk:
        o = out + kk * osk
        # The next tiles write on along these rows: request the next line
        # now (without it, stores waiting for lines of 16+ output planes
        # stall; 12 % of the 7x7/2 layer).
        cyc_prefetch_write(o + npx * osx + 64)
        if contiguous:   # vector stores (tile_store.h says why)
            if fp_t is float:
                cyc_store_channel_f32(tile + kk, KB, <float *>o, npx,
                                      bias + kk if bias != NULL else NULL)
            else:
                cyc_store_channel_f64(tile + kk, KB, <double *>o, npx,
                                      bias + kk if bias != NULL else NULL)
        elif bias != NULL:
            bk = bias[kk]
            for i in range(npx):
                (<fp_t *>(o + i * osx))[0] = tile[i * KB + kk] + bk
        else:
            for i in range(npx):
                (<fp_t *>(o + i * osx))[0] = tile[i * KB + kk]
        kk += 1


cdef void _gather_edge(const _Conv *g, const fp_t *padded, Py_ssize_t row, Py_ssize_t x0,
                       Py_ssize_t npx, fp_t *edge) noexcept nogil:
    # The input pixels of a partial tile, laid out [c][r][pixel][s], zeros
    # for the pixels past the row's end.
    cdef Py_ssize_t c, r, i, s
    cdef const fp_t *p
    for c in range(g.Cg):
        for r in range(g.R):
            p = padded + (c * g.Hb + row + r * g.dh) * g.Wb
            for i in range(g.PT):
                for s in range(g.S):
                    edge[0] = p[(x0 + i) * g.sw + s * g.dw] if i < npx else 0
                    edge += 1


cdef inline void _blocked_tile(const fp_t *inp, Py_ssize_t cs, Py_ssize_t rs, Py_ssize_t ds,
                               Py_ssize_t sx, const _Conv *g, const fp_t *wp,
                               fp_t *tile) noexcept nogil:
    if fp_t is float:
        g.table.blocked_tile_f32(inp, cs, rs, ds, sx, g.Cg, g.R, g.S, wp, NULL, tile)
    else:
        g.table.blocked_tile_f64(inp, cs, rs, ds, sx, g.Cg, g.R, g.S, wp, NULL, tile)


cdef inline Py_ssize_t _tile_width(Py_ssize_t PT, Py_ssize_t npx) noexcept nogil:
    # The narrowest of the level's tile widths that holds npx <= PT pixels.
    cdef int i
    for i in range(CYC_TILE_WIDTHS - 1, 0, -1):
        if npx <= CYC_TILE_WIDTH(PT, i):
            return CYC_TILE_WIDTH(PT, i)
    return PT


cdef inline Py_ssize_t _row_pixels(Py_ssize_t PT, Py_ssize_t Wo, Py_ssize_t step) noexcept nogil:
    # Pixels a row of Wo computes in row tiles `step` apart (_blocked_row_tile:
    # a last tile narrower than step is the narrowest width that holds it).
    cdef Py_ssize_t rest = Wo % step
    return Wo - rest + (_tile_width(PT, rest) if rest > 0 else 0)


cdef inline Py_ssize_t _narrower_step(Py_ssize_t PT, Py_ssize_t n) noexcept nogil:
    # The tile width under n (< PT) whose tiles compute the fewest pixels
    # for n (_row_pixels; the wider of equals), or 0 when none is under n.
    cdef Py_ssize_t width, best = 0
    cdef int i
    for i in range(1, CYC_TILE_WIDTHS):
        width = CYC_TILE_WIDTH(PT, i)
        if width < n and (best == 0 or _row_pixels(PT, n, width) < _row_pixels(PT, n, best)):
            best = width
    return best


cdef inline Py_ssize_t _row_step(Py_ssize_t PT, Py_ssize_t Wo) noexcept nogil:
    # PT, or a narrower tile width when as many tiles of it compute fewer of
    # a row's pixels: rows of 7 on AVX2 (PT 6) run as 4 + 3 rather than
    # 6 + 2 (moved back over one), and then beat flat tiles of pitch 8
    # (1.09-1.17x for 3x3 layers at 7x7: they leave out the padding too).
    cdef Py_ssize_t tiles, step
    if Wo <= PT:
        # One tile, of the narrowest width that holds the row, where that is
        # the row's width; else narrower tiles: a tile wider than the row
        # would gather its input (_blocked_row_tile), element by element
        # (Zen 5, float32, 64 images: 32 -> 64 3x3/2 @16x16, rows of 8 on
        # AVX-512, 3.5x; 32 -> 32 3x3 @13x13 2.8x; 16 -> 16 @5x5 on AVX2 2.1x).
        if _tile_width(PT, Wo) == Wo:
            return PT
        step = _narrower_step(PT, Wo)
        return step if step else PT
    tiles = (Wo + PT - 1) // PT
    step = _tile_width(PT, (Wo + tiles - 1) // tiles)
    return step if _row_pixels(PT, Wo, step) < _row_pixels(PT, Wo, PT) else PT


cdef inline void _blocked_tile_sized(const fp_t *inp, Py_ssize_t cs, Py_ssize_t rs,
                                     Py_ssize_t ds, Py_ssize_t sx, const _Conv *g,
                                     Py_ssize_t r0, Py_ssize_t r1, const fp_t *wp, fp_t *tile,
                                     Py_ssize_t pixels, int edges) noexcept nogil:
    # A tile of `pixels` (a tile width) over kernel rows r0 <= r < r1 only
    # (`inp` at kernel row 0's input, `wp` at the block's packed weights),
    # leaving out the edge pixels' taps of `edges` (kernels.h).
    cdef Py_ssize_t wcs = g.R * g.S * g.KB
    if fp_t is float:
        g.table.blocked_tile_sized_f32(inp + r0 * rs, cs, rs, ds, sx, g.Cg, r1 - r0, g.S, wcs,
                                       wp + r0 * g.S * g.KB, NULL, tile, pixels, edges)
    else:
        g.table.blocked_tile_sized_f64(inp + r0 * rs, cs, rs, ds, sx, g.Cg, r1 - r0, g.S, wcs,
                                       wp + r0 * g.S * g.KB, NULL, tile, pixels, edges)


cdef inline void _blocked_tile_part(const fp_t *inp, Py_ssize_t cs, const _Conv *g,
                                    Py_ssize_t nc, const fp_t *wp, const fp_t *init,
                                    fp_t *tile, Py_ssize_t pixels) noexcept nogil:
    # A flat tile of `pixels` (a tile width) over nc input channels, from the
    # partial sums `init` (or zero).
    if pixels < g.PT:
        if fp_t is float:
            g.table.blocked_tile_sized_f32(inp, cs, g.Wb * g.dh, g.dw, 1, nc, g.R, g.S,
                                           g.R * g.S * g.KB, wp, init, tile, pixels, 0)
        else:
            g.table.blocked_tile_sized_f64(inp, cs, g.Wb * g.dh, g.dw, 1, nc, g.R, g.S,
                                           g.R * g.S * g.KB, wp, init, tile, pixels, 0)
    elif fp_t is float:
        g.table.blocked_tile_f32(inp, cs, g.Wb * g.dh, g.dw, 1, nc, g.R, g.S, wp, init, tile)
    else:
        g.table.blocked_tile_f64(inp, cs, g.Wb * g.dh, g.dw, 1, nc, g.R, g.S, wp, init, tile)


cdef inline Py_ssize_t _flat_width(Py_ssize_t PT, Py_ssize_t f, Py_ssize_t f_end) noexcept nogil:
    # The width of the flat tile at flat pixel f: PT, or a narrower tile
    # width that ends at f_end exactly (49 pixels: 14 + 14 + 14 + 7). A last
    # tile of another width moves back to end at f_end instead, recomputing
    # pixels of the tile before (each pixel's sum is the same in any tile).
    if f + PT > f_end and _tile_width(PT, f_end - f) == f_end - f:
        return f_end - f
    return PT


cdef inline void _blocked_row_tile(const _Conv *g, const fp_t *base, Py_ssize_t cs,
                                   Py_ssize_t rs, const fp_t *wp,
                                   const fp_t *bk, char *o, Py_ssize_t osk, Py_ssize_t osx,
                                   Py_ssize_t nk, Py_ssize_t y, Py_ssize_t x, Py_ssize_t npx,
                                   fp_t *tile, fp_t *edge, uint8_t mark) noexcept nogil:
    # One tile of a row at (y, x) for one channel block (its weights' `mark`:
    # _block_mark); `o` at its first output. `base`: the padded image's
    # origin, its planes cs and its rows rs elements apart.
    cdef Py_ssize_t PT = g.PT, back = 0, pt = PT, r0 = 0, r1 = g.R
    cdef int edges = 0
    cdef const fp_t *inp
    if npx < PT:
        # A partial tile at the row's end: the narrowest tile that holds its
        # pixels, moved back to end there. It recomputes pt - npx pixels of
        # the previous tile (each pixel's sum does not depend on its place
        # in a tile) and stores only its own.
        pt = _tile_width(PT, npx)
        if g.Wo >= pt:
            back = pt - npx
    if npx + back == pt:
        inp = base + y * g.sh * rs + (x - back) * g.sw
        if g.zero_padding and mark == BLOCK_PACKED:
            # Kernel rows whose input rows are all zero padding add nothing
            # when the block's weights are finite (inf x 0 is NaN): leave
            # them out (the top and bottom output rows of a 3x3 layer at 7x7
            # then run 2 kernel rows of 3, 19 of 21 in all).
            while r0 < r1 and y * g.sh + r0 * g.dh < g.top:
                r0 += 1
            while r1 > r0 and y * g.sh + (r1 - 1) * g.dh >= g.top + g.H:
                r1 -= 1
            if g.S == 3 and g.sw <= 2 and g.dw == 1:
                # So do the row's first pixel's left tap and its last
                # pixel's right tap where they fall on padding columns: 361
                # products for 399 at 7x7. Only those two pixels, whatever
                # the tiles, so that a pixel's sum never depends on its tile.
                if x == back and g.left > 0:
                    edges = 1
                if x + npx == g.Wo and (g.Wo - 1) * g.sw + 2 >= g.left + g.W:
                    edges |= 2
        if pt == PT and r0 == 0 and r1 == g.R and edges == 0:
            _blocked_tile(inp, cs, rs * g.dh, g.dw, g.sw, g, wp, tile)
        else:
            _blocked_tile_sized(inp, cs, rs * g.dh, g.dw, g.sw, g, r0, r1, wp, tile, pt,
                                edges)
    else:
        # Rows narrower than a tile: the missing pixels would read past the
        # row, so gather the ones it needs instead.
        _gather_edge(g, base, y * g.sh, x, npx, edge)
        _blocked_tile(edge, g.R * PT * g.S, PT * g.S, 1, g.S, g, wp, tile)
    _store_tile(tile + back * g.KB, g.KB, nk, o, osk, osx, npx, bk)


cdef inline void _blocked_flat_tile(const _Conv *g, const fp_t *base, const fp_t *wp,
                                    const fp_t *bk, char *out, Py_ssize_t osk, Py_ssize_t osy,
                                    Py_ssize_t osx, Py_ssize_t nk, Py_ssize_t f,
                                    Py_ssize_t f_end, fp_t *tile, fp_t *edge) noexcept nogil:
    # The flat tile at flat pixel f for one channel block (`out` and `bk` at
    # its first channel); its pixels are stored row by row, skipping the
    # padding columns and anything at or past f_end.
    cdef Py_ssize_t PT = g.PT, KB = g.KB, Wb = g.Wb, Wo = g.Wo, t = 0, y, x, npx
    cdef Py_ssize_t pt = _flat_width(PT, f, f_end)
    if pt < PT:   # a narrower tile ends at f_end
        _blocked_tile_sized(base + f, g.Hb * Wb, Wb * g.dh, g.dw, 1, g, 0, g.R, wp, tile, pt, 0)
        _store_flat_tile(g, tile, 0, f, f_end, pt, bk, out, osk, osy, osx, nk)
        return
    if f + PT > f_end and f_end >= PT:
        # The last tile would read past the rows this piece prepared: move
        # it back to end at f_end (its first pixels are recomputed, to the
        # same bits, and not stored again; _conv2d_range prepared the rows
        # it moves into).
        t = f + PT - f_end
        f = f_end - PT
    if f + PT <= f_end:
        _blocked_tile(base + f, g.Hb * Wb, Wb * g.dh, g.dw, 1, g, wp, tile)
        _store_flat_tile(g, tile, t, f, f_end, PT, bk, out, osk, osy, osx, nk)
        return
    # An image of less than one tile, no width ending at its end: tiles of a
    # narrower width, the last moved back to end there (a tile of PT would
    # gather its input, element by element: Zen 5, float32, 64 images at
    # 3x3, 32 -> 32 channels 1.98x, 128 -> 128 2.50x); under the narrowest
    # width, that gather.
    pt = _narrower_step(PT, f_end - f)
    if pt == 0:
        _gather_edge(g, base, 0, f, f_end - f, edge)
        _blocked_tile(edge, g.R * PT * g.S, PT * g.S, 1, g.S, g, wp, tile)
        _store_flat_tile(g, tile, 0, f, f_end, PT, bk, out, osk, osy, osx, nk)
        return
    while f < f_end:
        t = 0
        if f + pt > f_end:
            t = f + pt - f_end
            f = f_end - pt
        _blocked_tile_sized(base + f, g.Hb * Wb, Wb * g.dh, g.dw, 1, g, 0, g.R, wp, tile, pt, 0)
        _store_flat_tile(g, tile, t, f, f_end, pt, bk, out, osk, osy, osx, nk)
        f = f + pt


cdef inline void _store_flat_tile(const _Conv *g, const fp_t *tile, Py_ssize_t t, Py_ssize_t f,
                                  Py_ssize_t f_end, Py_ssize_t pt, const fp_t *bk, char *out,
                                  Py_ssize_t osk, Py_ssize_t osy, Py_ssize_t osx,
                                  Py_ssize_t nk) noexcept nogil:
    # Pixels t.. of the flat tile of pt pixels at flat pixel f, row by row,
    # skipping the padding columns and anything at or past f_end.
    cdef Py_ssize_t KB = g.KB, Wb = g.Wb, Wo = g.Wo, y, x, npx
    while t < pt and f + t < f_end:
        y = (f + t) // Wb
        x = (f + t) - y * Wb
        npx = min(pt - t, Wb - x)
        if x < Wo:
            _store_tile(tile + t * KB, KB, nk, out + y * osy + x * osx,
                        osk, osx, min(npx, Wo - x), bk)
        t = t + npx


cdef inline void _chunk_tile(const _Conv *g, const fp_t *padded, const fp_t *wp,
                             const fp_t *bias, char *out, Py_ssize_t osk, Py_ssize_t osy,
                             Py_ssize_t osx, fp_t *tile, fp_t *p, Py_ssize_t f0,
                             Py_ssize_t f_end, Py_ssize_t i, Py_ssize_t grp, Py_ssize_t b,
                             Py_ssize_t c0, Py_ssize_t nc, bint last) noexcept nogil:
    # Tile i (from f0) of block b of group grp over input channels c0..c0+nc,
    # from and into its partial sums `p`; the last chunk stores the tile.
    cdef Py_ssize_t PT = g.PT, KB = g.KB, cs = g.Hb * g.Wb, k0
    # the last tile narrower, or moved back to end at f_end (_flat_width)
    cdef Py_ssize_t f = f0 + i * PT, pt = _flat_width(PT, f, f_end)
    if pt == PT:
        f = min(f, f_end - PT)
    _blocked_tile_part(padded + (grp * g.Cg + c0) * cs + f, cs, g, nc, wp,
                       p if c0 > 0 else NULL, tile if last else p, pt)
    if last:
        k0 = grp * g.Kg + b * KB
        _store_flat_tile(g, tile, f0 + i * PT - f, f, f_end, pt,
                         bias + k0 if bias != NULL else NULL, out + k0 * osk,
                         osk, osy, osx, min(KB, g.Kg - b * KB))


cdef void _flat_tiles_chunked(const _Conv *g, const fp_t *padded, const fp_t *weights,
                              const Py_ssize_t *wstr,
                              const fp_t *bias, char *out, Py_ssize_t osk, Py_ssize_t osy,
                              Py_ssize_t osx, fp_t *tile, fp_t *part, Py_ssize_t f0,
                              Py_ssize_t f_end, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """The flat tiles from flat pixel f0 to f_end (at least one tile) of
    channel blocks b0 <= b < b1 (of all groups' blocks, in order; a range
    only with g.chunk_blocks_outer), the input channels in chunks of g.chunk
    (_plan_chunks): per strip of g.strip tile positions and g.strip_blocks
    blocks, each chunk runs over the strip and leaves its partial sums in
    `part`; the last chunk stores the tiles. `weights` are packed, or with
    g.pack_inline the (K, Cg) weights as given (byte strides wstr), each
    block's chunk packed as its strip starts."""
    cdef Py_ssize_t PT = g.PT, KB = g.KB, nb = g.strip_blocks
    cdef Py_ssize_t taps = g.R * g.S
    cdef Py_ssize_t block = g.Cg * taps * KB    # packed weights per block
    cdef Py_ssize_t tiles = (f_end - f0 + PT - 1) // PT
    cdef Py_ssize_t s0, s1, c0, nc, i, bb, grp, b, grp0, bl0, item = sizeof(fp_t)
    cdef Py_ssize_t g0 = b0, g1
    cdef const fp_t *wp = weights
    cdef fp_t *chunk_weights = <fp_t *>_align64(<char *>(part + g.strip * nb * PT * KB))
    cdef bint last
    # (group, block) of block bb are stepped along, not divided out per tile
    # (perf showed the divisions' stall; timed, within noise).
    while g0 < b1:   # blocks g0 <= bb < g1 over every strip
        g1 = min(b1, g0 + nb)
        grp0, bl0 = g0 // g.blocks, g0 % g.blocks
        s0 = 0
        while s0 < tiles:
            s1 = min(tiles, s0 + g.strip)
            c0 = 0
            while c0 < g.Cg:
                nc = min(g.chunk, g.Cg - c0)
                last = c0 + nc == g.Cg
                if g.chunk_blocks_outer:   # each block runs every tile of the strip
                    grp, b = grp0, bl0
                    for bb in range(g0, g1):
                        if not g.pack_inline:
                            wp = weights + bb * block + c0 * taps * KB
                        else:   # the block's chunk, packed as its strip starts
                            _pack_block(g, <const char *>weights + (grp * g.Kg + b * KB) * wstr[0],
                                        wstr[0], wstr[1], item, item, min(KB, g.Kg - b * KB),
                                        c0, c0 + nc, chunk_weights)
                            wp = chunk_weights
                        for i in range(s0, s1):
                            _chunk_tile(g, padded, wp, bias, out, osk, osy, osx, tile,
                                        part + ((i - s0) * nb + bb - g0) * PT * KB,
                                        f0, f_end, i, grp, b, c0, nc, last)
                        b += 1
                        if b == g.blocks:
                            grp, b = grp + 1, 0
                else:   # each tile runs every block
                    for i in range(s0, s1):
                        grp, b = grp0, bl0
                        for bb in range(g0, g1):
                            _chunk_tile(g, padded, weights + bb * block + c0 * taps * KB,
                                        bias, out, osk, osy, osx, tile,
                                        part + ((i - s0) * nb + bb - g0) * PT * KB,
                                        f0, f_end, i, grp, b, c0, nc, last)
                            b += 1
                            if b == g.blocks:
                                grp, b = grp + 1, 0
                c0 += nc
            s0 = s1
        g0 = g1


cdef inline void _pixel_tile(const _Conv *g, const fp_t *inp, Py_ssize_t cs, Py_ssize_t C,
                             const fp_t *wp, Py_ssize_t ws, const fp_t *bias, fp_t *out,
                             Py_ssize_t os, Py_ssize_t nk) noexcept nogil:
    if fp_t is float:
        g.table.pixel_tile_f32(inp, cs, C, wp, ws, bias, out, os, nk)
    else:
        g.table.pixel_tile_f64(inp, cs, C, wp, ws, bias, out, os, nk)


cdef inline void _store_pixel_tile(const fp_t *tile, Py_ssize_t LP, Py_ssize_t nk,
                                   Py_ssize_t f, Py_ssize_t W, char *out, Py_ssize_t osk,
                                   Py_ssize_t osy, Py_ssize_t osx) noexcept nogil:
    # A pixel tile (nk channels of LP pixels from flat pixel f, rows of W)
    # into output planes of any strides (the input gradient's phases write
    # every other pixel), a run of a row at a time: the pixel's row and
    # column were divided out per element, 11 % of a stride-2 layer's
    # conv_transpose2d.
    cdef Py_ssize_t i = 0, run, y, x, k, t
    cdef char *o
    while i < LP:
        y = (f + i) // W
        x = f + i - y * W
        run = min(LP - i, W - x)
        for k in range(nk):
            o = out + k * osk + y * osy + x * osx
            for t in range(run):
                (<fp_t *>(o + t * osx))[0] = tile[k * LP + i + t]
        i += run


cdef void _conv2d_lanes(const _Conv *g, const fp_t *padded, const fp_t *packed,
                        const fp_t *bias, char *out, Py_ssize_t osk, Py_ssize_t osy,
                        Py_ssize_t osx, fp_t *tile, Py_ssize_t y0, Py_ssize_t y1,
                        Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """Output rows y0 <= y < y1 of one image of a g.lanes plan (output pixel
    f = y * W + x reads input pixel f; at least g.LP of them), channel blocks
    b0 <= b < b1, in pixel tiles: per strip of tiles whose input stays in L1,
    each block's channels a pixel tile's worth at a time over the strip. The
    last tile moves back to end at y1 (recomputing pixels, to the same
    bits). Output planes of contiguous rows get the tiles' vectors directly;
    other layouts through `tile`."""
    cdef Py_ssize_t LP = g.LP, LK = g.table.pixel_channels, KB = g.KB, item = sizeof(fp_t)
    cdef Py_ssize_t f0 = y0 * g.W, f1 = y1 * g.W, cs = g.Hb * g.Wb
    cdef Py_ssize_t strip = max(1, LANES_STRIP_BYTES // (g.C * LP * item)) * LP
    cdef bint direct = osx == item and osy == g.W * item and osk % item == 0
    cdef Py_ssize_t s0 = f0, s1, s2, f, fb, bb, j, k0, nk, p, c
    cdef const fp_t *wp
    while s0 < f1:
        s1 = min(f1, s0 + strip)
        s2 = min(f1, s1 + strip)
        # Ask for the next strip [s1, s2) now: its C input rows are too many
        # streams for the hardware prefetcher (a batch of 8 64 -> 64 @56x56
        # from memory: 0.98x the blocked tiles without, 1.11x with).
        for c in range(g.C):
            p = s1
            while p < s2:
                cyc_prefetch_read(padded + c * cs + p)
                p += 64 // item
        for bb in range(b0, b1):
            j = 0
            while j < KB and bb * KB + j < g.K:   # the block's channels, LK at a time
                k0 = bb * KB + j
                nk = min(LK, g.K - k0)
                wp = packed + bb * g.C * KB + j
                f = s0
                while f < s1:
                    fb = min(f, f1 - LP)
                    if direct:
                        _pixel_tile(g, padded + fb, cs, g.C, wp, KB,
                                    bias + k0 if bias != NULL else NULL,
                                    <fp_t *>(out + k0 * osk + fb * item), osk // item, nk)
                    else:
                        _pixel_tile(g, padded + fb, cs, g.C, wp, KB,
                                    bias + k0 if bias != NULL else NULL, tile, LP, nk)
                        _store_pixel_tile(tile, LP, nk, fb, g.W, out + k0 * osk, osk, osy,
                                          osx)
                    f += LP
                j += LK
        s0 = s1


cdef Py_ssize_t _conv2d_blocked(const _Conv *g, const fp_t *padded, Py_ssize_t cs,
                                Py_ssize_t rs, const fp_t *packed, const Py_ssize_t *wstr,
                                const fp_t *bias, char *out, Py_ssize_t osk, Py_ssize_t osy,
                                Py_ssize_t osx, fp_t *tile, fp_t *edge,
                                Py_ssize_t y0, Py_ssize_t y1, Py_ssize_t b0, Py_ssize_t b1,
                                const uint8_t *marks, bint finite_only=False) noexcept nogil:
    """Output rows y0 <= y < y1 of one image, in tiles of PT pixels x KB channels
    (channel blocks b0 <= b < b1 of every group's, in order, when the blocks
    run outer: not g.tiles_outer; else all). `marks`: the packed blocks'
    (_block_mark), or NULL. `padded` is at the padded image's origin, its
    planes cs and its rows rs elements apart: g.Hb * g.Wb and g.Wb, or an
    image's own where its tiles read it in place (_reads_image). Returns
    b1; with finite_only and pack_inline, the first block whose weights
    are not all finite instead, before its tiles run (its tiles need the
    padding: the caller pads the image and runs the rest).

    Row tiles run along one output row (any stride). Flat tiles (unit
    stride only) run along the padded image read as one long row of pitch
    Wb, so narrow images fill whole tiles; the Wb - Wo pixels per row that
    land in the padding are computed and dropped."""
    cdef Py_ssize_t PT = g.PT, KB = g.KB, Wo = g.Wo
    cdef Py_ssize_t block = g.Cg * g.R * g.S * KB
    cdef Py_ssize_t grp, b, bb, y, t, x, k0, f
    cdef Py_ssize_t f_end = (y1 - 1) * g.Wb + Wo   # flat tiles: past the last pixel
    cdef const fp_t *base
    cdef const fp_t *wp
    cdef const fp_t *bk
    cdef uint8_t mark
    if g.lanes and (y1 - y0) * g.W >= g.LP:
        _conv2d_lanes(g, padded, packed, bias, out, osk, osy, osx, tile, y0, y1, b0, b1)
        return b1
    if g.chunk < g.Cg and f_end - y0 * g.Wb >= PT:
        _flat_tiles_chunked(g, padded, packed, wstr, bias, out, osk, osy, osx, tile,
                            tile + PT * KB, y0 * g.Wb, f_end, b0, b1)
        return b1
    if g.tiles_outer:   # _conv_plan says why
        f = y0 * g.Wb
        for y in range(y0, y1 if not g.flat else y0 + 1):
            for t in range((f_end - f + PT - 1) // PT if g.flat else (Wo + g.RT - 1) // g.RT):
                x = t * (PT if g.flat else g.RT)
                for grp in range(g.groups):
                    for b in range(g.blocks):
                        k0 = grp * g.Kg + b * KB
                        wp = packed + (grp * g.blocks + b) * block
                        mark = marks[grp * g.blocks + b] if marks != NULL else 0
                        bk = bias + k0 if bias != NULL else NULL
                        if g.flat:
                            _blocked_flat_tile(g, padded + grp * g.Cg * cs, wp, bk, out + k0 * osk,
                                               osk, osy, osx, min(KB, g.Kg - b * KB),
                                               f + x, f_end, tile, edge)
                        else:
                            _blocked_row_tile(g, padded + grp * g.Cg * cs, cs, rs, wp, bk,
                                              out + k0 * osk + y * osy + x * osx, osk, osx,
                                              min(KB, g.Kg - b * KB), y, x, min(g.RT, Wo - x),
                                              tile, edge, mark)
        return b1
    for bb in range(b0, b1):
        grp, b = bb // g.blocks, bb % g.blocks
        base = padded + grp * g.Cg * cs
        wp = packed + bb * block
        mark = marks[bb] if marks != NULL else 0
        k0 = grp * g.Kg + b * KB
        if g.pack_inline:   # the block, packed into L2 as its tiles start (_conv_plan)
            wp = <const fp_t *>_align64(<char *>(tile + PT * KB))
            mark = _block_mark(_pack_block(g, <const char *>packed + k0 * wstr[0], wstr[0],
                                           wstr[1], wstr[2], wstr[3], min(KB, g.Kg - b * KB),
                                           0, g.Cg * g.R * g.S, <fp_t *>wp))
            if finite_only and mark != BLOCK_PACKED:
                return bb
        bk = bias + k0 if bias != NULL else NULL
        if g.flat:
            f = y0 * g.Wb
            while f < f_end:
                _blocked_flat_tile(g, base, wp, bk, out + k0 * osk, osk, osy, osx,
                                   min(KB, g.Kg - b * KB), f, f_end, tile, edge)
                f = f + PT
        else:
            for y in range(y0, y1):
                for t in range((Wo + g.RT - 1) // g.RT):
                    x = t * g.RT
                    _blocked_row_tile(g, base, cs, rs, wp, bk,
                                      out + k0 * osk + y * osy + x * osx,
                                      osk, osx, min(KB, g.Kg - b * KB), y, x,
                                      min(g.RT, Wo - x), tile, edge, mark)
    return b1


cdef inline void _store_row_every(const fp_t *src, Py_ssize_t step, char *out, Py_ssize_t osx,
                                  Py_ssize_t n, bint add, fp_t b) noexcept nogil:
    """out[x] = src[x * step] (+ b with add; without, -0.0 stays -0.0) for
    x < n, out's elements osx bytes apart. Unit-stride output at steps 1
    and 2 in loops the compiler vectorizes (element by element through the
    byte stride, the copy took about twice the time of a 28x28 depthwise
    layer's rows themselves)."""
    cdef Py_ssize_t x
    cdef fp_t *o = <fp_t *>out
    if osx == sizeof(fp_t) and not add:
        _sample_row(src, step, o, n)
    elif osx == sizeof(fp_t) and step == 1:
        for x in range(n):
            o[x] = src[x] + b
    elif osx == sizeof(fp_t) and step == 2:
        for x in range(n):
            o[x] = src[2 * x] + b
    elif add:
        for x in range(n):
            (<fp_t *>(out + x * osx))[0] = src[x * step] + b
    else:
        for x in range(n):
            (<fp_t *>(out + x * osx))[0] = src[x * step]


cdef void _conv2d_spatial(const _Conv *g, const fp_t *padded, const fp_t *weight,
                          const fp_t *bias, char *out, Py_ssize_t osk, Py_ssize_t osy,
                          Py_ssize_t osx, fp_t *rows, Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """Output rows y0 <= y < y1 of one image, one output channel at a time,
    vectorized along the row (few output channels per group, e.g. depthwise).
    Rows are computed at unit column stride, g.rows_width columns, into
    `rows` (then subsampled) or straight into `out`."""
    cdef Py_ssize_t cs = g.Hb * g.Wb, rs = g.Wb
    cdef Py_ssize_t dense = (g.Wo - 1) * g.sw + 1, width = g.rows_width
    cdef bint multi_row = _spatial_rows_at_once(g)
    # the kernel's rows as channels: output rows sh rows apart, taps dh apart
    cdef bint taps_as_channels = multi_row and (g.sh != 1 or g.dh != 1)
    cdef Py_ssize_t batch = g.scratch_size // width if multi_row else 1
    cdef Py_ssize_t k, y, yn, i, x, taps = g.Cg * g.R * g.S
    # The multi-row kernels of the level itself, not the plan's table
    # (chosen for its channel tiles): on AVX-512 they make the shifts of
    # single-channel rows in registers (depthwise 3x3 and square kernels).
    # Row kernels of every level sum in the same order: the same bits.
    cdef const cyc_kernel_table *rows_table = _table
    cdef const fp_t *inp
    cdef const fp_t *src
    cdef char *o
    cdef fp_t bk
    # Unit column stride into contiguous output rows, computed at the
    # output's width: the kernel writes straight into `out` (bias added
    # after); otherwise through `rows`.
    cdef bint direct = g.sw == 1 and width == dense and osx == sizeof(fp_t) \
        and osy % sizeof(fp_t) == 0
    cdef fp_t *dst
    cdef Py_ssize_t dst_stride = osy // sizeof(fp_t) if direct else width
    if direct and multi_row:
        # all rows in one call: every call ends in a row block moved back
        # over rows already done (5-row blocks in 8-row calls did 10)
        batch = max(y1 - y0, 1)
    for k in range(g.K):
        bk = bias[k] if bias != NULL else 0
        y = y0
        while y < y1:
            yn = min(y + batch, y1)
            inp = padded + (k // g.Kg) * g.Cg * cs + y * g.sh * rs
            dst = <fp_t *>(out + k * osk + y * osy) if direct else rows
            if fp_t is float:
                if taps_as_channels:
                    rows_table.spatial_rows_f32(inp, rs * g.dh, rs * g.sh, g.R, 1, g.S,
                                                 weight + k * taps, dst, dst_stride, width,
                                                 yn - y, False)
                elif multi_row:
                    rows_table.spatial_rows_f32(inp, cs, rs, g.Cg, g.R, g.S, weight + k * taps,
                                                 dst, dst_stride, width, yn - y, False)
                else:
                    g.table.spatial_row_f32(inp, cs, rs * g.dh, g.dw, g.Cg, g.R, g.S,
                                             weight + k * taps, dst, dense)
            else:
                if taps_as_channels:
                    rows_table.spatial_rows_f64(inp, rs * g.dh, rs * g.sh, g.R, 1, g.S,
                                                 weight + k * taps, dst, dst_stride, width,
                                                 yn - y, False)
                elif multi_row:
                    rows_table.spatial_rows_f64(inp, cs, rs, g.Cg, g.R, g.S, weight + k * taps,
                                                 dst, dst_stride, width, yn - y, False)
                else:
                    g.table.spatial_row_f64(inp, cs, rs * g.dh, g.dw, g.Cg, g.R, g.S,
                                             weight + k * taps, dst, dense)
            for i in range(yn - y):
                o = out + k * osk + (y + i) * osy
                if direct:
                    if bias != NULL:
                        for x in range(g.Wo):
                            (<fp_t *>o)[x] = (<fp_t *>o)[x] + bk
                    continue
                _store_row_every(rows + i * width, g.sw, o, osx, g.Wo, bias != NULL, bk)
            y = yn


cdef inline void _dw_interleave(const fp_t *src, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t nc,
                                Py_ssize_t G, fp_t *dst) noexcept nogil:
    # interleave.h's cyc_interleave; a whole group by the level's transposes
    # in registers where it has them
    if fp_t is float:
        if nc == G and _table.interleave_lanes_f32 != NULL:
            _table.interleave_lanes_f32(src, cs, n, dst)
        else:
            cyc_interleave_f32(src, cs, n, nc, G, dst)
    else:
        if nc == G and _table.interleave_lanes_f64 != NULL:
            _table.interleave_lanes_f64(src, cs, n, dst)
        else:
            cyc_interleave_f64(src, cs, n, nc, G, dst)


cdef inline void _dw_deinterleave(const fp_t *src, Py_ssize_t G, Py_ssize_t n, Py_ssize_t nc,
                                  fp_t *dst, Py_ssize_t cs) noexcept nogil:
    # interleave.h's cyc_deinterleave, as _dw_interleave
    if fp_t is float:
        if nc == G and _table.deinterleave_lanes_f32 != NULL:
            _table.deinterleave_lanes_f32(src, n, dst, cs)
        else:
            cyc_deinterleave_f32(src, G, n, nc, dst, cs)
    else:
        if nc == G and _table.deinterleave_lanes_f64 != NULL:
            _table.deinterleave_lanes_f64(src, n, dst, cs)
        else:
            cyc_deinterleave_f64(src, G, n, nc, dst, cs)


cdef void _dw_gather_row(const char *plane, Py_ssize_t cs, Py_ssize_t xs, Py_ssize_t nc,
                         Py_ssize_t G, const int64_t *col_map, Py_ssize_t Wp, Py_ssize_t left,
                         Py_ssize_t W, fp_t *dst) noexcept nogil:
    """One padded row of nc channel planes (`plane`: the first one's source
    row, or NULL for a row of zeros; byte strides cs between planes, xs
    between columns; W columns, `left` padding columns before them, Wp in
    all) as Wp pixels of G values, zeros past nc."""
    cdef Py_ssize_t i, wp, j, l, item = sizeof(fp_t)
    if plane == NULL:
        memset(dst, 0, Wp * G * item)
        return
    for i in range(Wp - W):     # the padding columns (left, then right): by the column map
        wp = i if i < left else i + W
        j = col_map[wp]
        if j < 0:
            memset(dst + wp * G, 0, G * item)
            continue
        for l in range(G):
            dst[wp * G + l] = (<const fp_t *>(plane + l * cs + j * xs))[0] if l < nc else 0
    dst += left * G
    if xs == item and cs % item == 0:
        _dw_interleave(<const fp_t *>plane, cs // item, W, nc, G, dst)
    else:
        for j in range(W):
            for l in range(G):
                dst[j * G + l] = (<const fp_t *>(plane + l * cs + j * xs))[0] if l < nc else 0


cdef void _dw_scatter_rows(const fp_t *src, Py_ssize_t nrows, Py_ssize_t Wo, Py_ssize_t nc,
                           Py_ssize_t G, char *out, Py_ssize_t osk, Py_ssize_t osy,
                           Py_ssize_t osx) noexcept nogil:
    """nrows rows of Wo G-value pixels into nc output planes (`out`: the
    first one's first row; byte strides)."""
    cdef Py_ssize_t i, x, l, item = sizeof(fp_t)
    if osx == item and osk % item == 0 and (osy == Wo * item or nrows == 1):
        # whole planes' rows back to back: one run
        _dw_deinterleave(src, G, nrows * Wo, nc, <fp_t *>out, osk // item)
    elif osx == item and osk % item == 0:
        for i in range(nrows):
            _dw_scatter_rows(src + i * Wo * G, 1, Wo, nc, G, out + i * osy, osk, osy, osx)
    else:
        for i in range(nrows):
            for x in range(Wo):
                for l in range(nc):
                    (<fp_t *>(out + l * osk + i * osy + x * osx))[0] = src[(i * Wo + x) * G + l]


cdef void _conv2d_depthwise_lanes(const _Conv *g, const char *image, const Py_ssize_t *istr,
                                  const int64_t *row_map, const int64_t *col_map,
                                  const fp_t *weight, const fp_t *bias, char *out,
                                  Py_ssize_t osk, Py_ssize_t osy, Py_ssize_t osx,
                                  fp_t *scratch, Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """Output rows y0 <= y < y1 of one image of a depthwise layer (C x H x
    W, byte strides istr[1:4]; weights K x 1 x R x S, C-contiguous, Kg =
    K / C output channels per input channel), with the channels in the
    vector lanes: for each group of G = g.dw_lanes input channels, band by
    band, its padded input rows interleaved into scratch, then for each of
    the Kg output channels of every input channel its taps and bias
    interleaved, the kernel run, and its output rows taken apart into the
    planes."""
    cdef Py_ssize_t G = g.dw_lanes, taps = g.R * g.S, pitch = g.dw_lanes * g.Wp
    cdef fp_t *wbuf = scratch
    cdef fp_t *bbuf = scratch + G * taps
    cdef fp_t *ibuf = bbuf + G
    cdef fp_t *obuf = ibuf + _dw_band_rows(g) * pitch
    cdef Py_ssize_t group, c0, nc, l, m, yb, ye, hp, r0, r1, Kg = g.Kg
    cdef const char *plane
    for group in range((g.C + G - 1) // G):
        c0 = group * G
        nc = min(G, g.C - c0)
        yb = y0
        while yb < y1:
            ye = min(yb + g.dw_band, y1)
            r0 = yb * g.sh
            r1 = r0 + _dw_rows_read(ye - yb, g.sh, g.R, g.dh)
            for hp in range(r0, r1):
                plane = image + c0 * istr[1] + row_map[hp] * istr[2] if row_map[hp] >= 0 \
                    else NULL
                _dw_gather_row(plane, istr[1], istr[3], nc, G, col_map, g.Wp, g.left, g.W,
                               ibuf + (hp - r0) * pitch)
            for m in range(Kg):   # output channel c * Kg + m of input channel c
                _dw_interleave(weight + (c0 * Kg + m) * taps, Kg * taps, taps, nc, G, wbuf)
                for l in range(G):
                    bbuf[l] = bias[(c0 + l) * Kg + m] if bias != NULL and l < nc else 0
                if fp_t is float:
                    _table.depthwise_lanes_f32(ibuf, pitch, g.sh, g.sw, g.dh, g.dw, g.R, g.S,
                                               wbuf, bbuf if bias != NULL else NULL, obuf,
                                               G * g.Wo, G, g.Wo, ye - yb)
                else:
                    _table.depthwise_lanes_f64(ibuf, pitch, g.sh, g.sw, g.dh, g.dw, g.R, g.S,
                                               wbuf, bbuf if bias != NULL else NULL, obuf,
                                               G * g.Wo, G, g.Wo, ye - yb)
                _dw_scatter_rows(obuf, ye - yb, g.Wo, nc, G,
                                 out + (c0 * Kg + m) * osk + yb * osy, Kg * osk, osy, osx)
            yb = ye


cdef enum:
    STAGE_AHEAD = 16   # channels _stage_weights prefetches ahead


cdef void _stage_weights(const _Conv *g, const char *w, const Py_ssize_t *wstr, Py_ssize_t nk,
                         fp_t *stage) noexcept nogil:
    """nk output channels' (Cg, R, S) weights, the first at w (byte strides
    wstr), into stage in their natural layout: channel k's Cg*R*S taps at
    stage + k*Cg*R*S. Input channel by input channel, so that an input
    gradient's view (the layer's weights transposed, taps flipped) is read
    in one run of nk*R*S per channel."""
    cdef Py_ssize_t RS = g.R * g.S, taps = g.Cg * RS, item = sizeof(fp_t), k, c, r, s
    cdef bint flipped = wstr[3] == -item and wstr[2] == -g.S * item
    cdef Py_ssize_t ahead = STAGE_AHEAD * wstr[1] - (RS - 1) * item, line
    cdef const char *src
    cdef fp_t *dst
    for c in range(g.Cg):
        if flipped and wstr[0] == RS * item and c + STAGE_AHEAD < g.Cg:
            # A later channel's run: its lines come from memory, and at
            # wstr[1] apart (18 KB for 512 channels) the prefetchers miss them.
            for line in range(0, nk * RS * item, 64):
                cyc_prefetch_read(w + c * wstr[1] + ahead + line)
        if flipped and wstr[0] == RS * item:   # the nk runs of taps one after another
            src = <const char *>(<const fp_t *>(w + c * wstr[1]) - (RS - 1))
            if fp_t is float:
                cyc_reverse_runs_f32(<const float *>src, RS, nk, stage + c * RS, taps)
            else:
                cyc_reverse_runs_f64(<const double *>src, RS, nk, stage + c * RS, taps)
            continue
        for k in range(nk):
            src = w + k * wstr[0] + c * wstr[1]
            dst = stage + k * taps + c * RS
            if flipped:
                _reverse(<const fp_t *>src - (RS - 1), RS, dst)
            else:
                for r in range(g.R):
                    for s in range(g.S):
                        dst[r * g.S + s] = (<const fp_t *>(src + r * wstr[2] + s * wstr[3]))[0]


cdef inline void _prefetch_runs(const char *first, Py_ssize_t step, Py_ssize_t c0,
                               Py_ssize_t c1, Py_ssize_t nbytes) noexcept nogil:
    # Into L2: the runs of nbytes at first + c * step, c0 <= c < c1. The
    # addresses are formed as integers: asking past an array never faults.
    cdef Py_ssize_t c, line
    cdef size_t start
    for c in range(c0, c1):
        start = <size_t>first + <size_t>(c * step)
        for line in range(0, nbytes + 63, 64):
            cyc_prefetch_read_l2(<const void *>(start + <size_t>line))


cdef void _flat_tile_part(const _Conv *g, const fp_t *inp, const fp_t **wk, fp_t *tile,
                          Py_ssize_t vectors) noexcept nogil:
    # The first `vectors` vectors of pixels of the small-image tile at `inp`
    # (an image's last tile). Only this call goes through a helper: with the
    # whole tiles' calls in one too, 1 -> 16 @28x28 measured 3 % slower.
    if fp_t is float:
        g.table.flat_tile_part_f32(inp, g.Hb * g.Wb, g.Wb * g.dh, g.dw, g.Cg, g.R, g.S, wk,
                                   tile, vectors)
    else:
        g.table.flat_tile_part_f64(inp, g.Hb * g.Wb, g.Wb * g.dh, g.dw, g.Cg, g.R, g.S, wk,
                                   tile, vectors)


cdef inline void _store_run(const fp_t *src, fp_t *dst, Py_ssize_t n,
                            const fp_t *bias) noexcept nogil:
    # dst[i] = src[i] (+ bias[0]) for i < n: a run of a flat tile's pixels
    # (tile_store.h: in vectors)
    if fp_t is float:
        cyc_store_channel_f32(src, 1, dst, n, bias)
    else:
        cyc_store_channel_f64(src, 1, dst, n, bias)


cdef void _conv2d_small(const _Conv *g, const fp_t *padded, const fp_t *weight,
                        const Py_ssize_t *wstr, const fp_t *bias, char *out, Py_ssize_t osk,
                        Py_ssize_t osy, Py_ssize_t osx, fp_t *tile, fp_t *stage,
                        Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """Output rows y0 <= y < y1 of one image for small images: tiles of FK
    output channels x FP flat pixels of the padded image (pitch Wb), weights
    read in place when C-contiguous, else each block's staged first
    (plan.weight_stage elements of `stage`: reading a transposed view in
    place measured 2x as slow, its channels 18 KB apart); pixels that land
    in the padding are computed and dropped."""
    cdef Py_ssize_t FK = g.FK, FP = g.FP, Wb = g.Wb, Wo = g.Wo
    cdef Py_ssize_t cs = g.Hb * Wb, taps = g.Cg * g.R * g.S, item = sizeof(fp_t)
    cdef bint natural = wstr[3] == item and wstr[2] == g.S * item \
        and wstr[1] == g.R * g.S * item and wstr[0] == taps * item
    # An input gradient's view (transposed, taps flipped): each block's
    # channels are one run of taps per input channel, 18 KB apart at 512
    # channels, which _stage_weights waited for (a quarter of 512 -> 512
    # @7x7). The tiles of a block ask for the next block's runs into L2,
    # a share per tile, so that its staging reads them from there.
    cdef bint runs_ahead = wstr[3] == -item and wstr[2] == -g.S * item \
        and wstr[0] == g.R * g.S * item
    cdef Py_ssize_t grp, kb, kb_index, k, nk, f, f_end = (y1 - 1) * Wb + Wo, t, y, x, npx, i
    cdef Py_ssize_t tiles = (f_end - y0 * Wb + FP - 1) // FP, tile_index, kn = 0, nn = 0
    cdef Py_ssize_t lanes = g.KB // 2, FV = FP // lanes, vectors
    cdef const fp_t *wk[CYC_MAX_FLAT_CHANNELS]     # FK pointers
    cdef const fp_t *base
    cdef char *o
    cdef fp_t bk
    for grp in range(g.groups):
        base = padded + grp * g.Cg * cs
        for kb_index in range((g.Kg + FK - 1) // FK):
            kb = kb_index * FK
            nk = min(FK, g.Kg - kb)
            if natural:
                for k in range(FK):  # a short last block repeats its last channel
                    wk[k] = weight + (grp * g.Kg + kb + min(k, nk - 1)) * taps
            else:
                _stage_weights(g, <const char *>weight + (grp * g.Kg + kb) * wstr[0], wstr, nk,
                               stage)
                for k in range(FK):
                    wk[k] = stage + min(k, nk - 1) * taps
            if runs_ahead:   # the next block: its first channel kn, nn channels
                if kb + FK < g.Kg:
                    kn, nn = grp * g.Kg + kb + FK, min(FK, g.Kg - kb - FK)
                elif grp + 1 < g.groups:
                    kn, nn = (grp + 1) * g.Kg, min(FK, g.Kg)
                else:
                    nn = 0
            f = y0 * Wb
            tile_index = 0
            while f < f_end:
                vectors = FV
                if f + FP > f_end:   # the last tile: only the vectors that hold pixels
                    vectors = (f_end - f + lanes - 1) // lanes
                if vectors < FV:
                    _flat_tile_part(g, base + f, wk, tile, vectors)
                elif fp_t is float:
                    g.table.flat_tile_f32(base + f, cs, Wb * g.dh, g.dw, g.Cg, g.R, g.S, wk,
                                          tile)
                else:
                    g.table.flat_tile_f64(base + f, cs, Wb * g.dh, g.dw, g.Cg, g.R, g.S, wk,
                                          tile)
                if runs_ahead and nn > 0:
                    _prefetch_runs(<const char *>weight + kn * wstr[0] - (g.R * g.S - 1) * item,
                                   wstr[1], tile_index * g.Cg // tiles,
                                   (tile_index + 1) * g.Cg // tiles, nn * g.R * g.S * item)
                tile_index = tile_index + 1
                t = 0
                y = f // Wb
                x = f - y * Wb
                while t < FP and f + t < f_end:
                    npx = min(FP - t, Wb - x, f_end - f - t)
                    if x < Wo and osx == item:
                        o = out + (grp * g.Kg + kb) * osk + y * osy + x * osx
                        for k in range(nk):
                            _store_run(tile + k * FP + t, <fp_t *>(o + k * osk),
                                       min(npx, Wo - x),
                                       bias + grp * g.Kg + kb + k if bias != NULL else NULL)
                    elif x < Wo:
                        for k in range(nk):
                            o = out + (grp * g.Kg + kb + k) * osk + y * osy + x * osx
                            bk = bias[grp * g.Kg + kb + k] if bias != NULL else 0
                            for i in range(min(npx, Wo - x)):
                                if bias != NULL:
                                    (<fp_t *>(o + i * osx))[0] = tile[k * FP + t + i] + bk
                                else:
                                    (<fp_t *>(o + i * osx))[0] = tile[k * FP + t + i]
                    t = t + npx
                    x = x + npx   # the next run: the rest of this row, or the next row
                    if x == Wb:
                        x = 0
                        y = y + 1
                f = f + FP


cdef enum:
    MAX_TAP_CLASSES = 16   # classes of output rows (or columns) by their taps (_tap_classes)
    GATHER_COLUMN_TAPS = 512   # products a pixel, fewest, for column classes (_conv2d_gathered)


cdef Py_ssize_t _tap_classes(Py_ssize_t n_out, Py_ssize_t before, Py_ssize_t size,
                             Py_ssize_t K, Py_ssize_t d, Py_ssize_t step, bint skip,
                             Py_ssize_t *classes) noexcept nogil:
    """Output rows (or columns) 0 <= pos < n_out, `step` apart in the padded
    input, in ranges whose taps k0 <= k < k1 (of K, d apart) read the
    image, not zero padding (`before` padding positions, then `size` of
    the image): each range 3 values in `classes` (first position, k0,
    k1), in order. A range ends where the next begins (its taps change
    monotonically, so each taps' positions are one range). Returns the
    count; with skip False, or over MAX_TAP_CLASSES ranges, one range of
    every tap."""
    cdef Py_ssize_t pos, k0, k1, count = 0
    for pos in range(n_out if skip else 0):
        k0 = 0
        while k0 < K and pos * step + k0 * d < before:
            k0 += 1
        k1 = K
        while k1 > k0 and pos * step + (k1 - 1) * d >= before + size:
            k1 -= 1
        if count and classes[3 * count - 2] == k0 and classes[3 * count - 1] == k1:
            continue
        if count == MAX_TAP_CLASSES:
            break
        classes[3 * count], classes[3 * count + 1], classes[3 * count + 2] = pos, k0, k1
        count += 1
    else:
        if count:
            return count
    classes[0], classes[1], classes[2] = 0, 0, K
    return 1


cdef bint _column_classes(const _Conv *g, Py_ssize_t images, bint skip) noexcept nogil:
    # Do _conv2d_gathered's pieces of `images` images go by classes of
    # columns too (see there)?
    return skip and g.Cg * g.R * g.S >= GATHER_COLUMN_TAPS and images >= g.PT


cdef void _conv2d_gathered(const _Conv *g, const fp_t *padded, Py_ssize_t plane,
                           Py_ssize_t channel, Py_ssize_t row,
                           const fp_t *packed, const fp_t *bias, char *out,
                           const Py_ssize_t *ostr, fp_t *tile, Py_ssize_t images,
                           Py_ssize_t b0, Py_ssize_t b1, bint skip) noexcept nogil:
    """Every output pixel of `images` padded images (`plane` elements apart,
    their channels `channel` and their rows `row` elements apart; `out` at
    the first image), in tiles of PT pixels gathered across
    rows and images (gathered_tile), each tile running channel blocks b0
    <= bb < b1 while its input stays in L1. With `skip` (zero padding,
    every block's weights finite) the pixels go by class, those whose
    kernel rows on zero padding are the same, each class's tiles over
    its other rows only: adding 0 x w (w finite) to a sum that starts
    from +0 never changes it, so the bits are the flat (strided layers:
    the row) tiles'. Classes of columns too where a pixel takes at least
    GATHER_COLUMN_TAPS products and a corner's class fills a tile: a
    corner's tile reads a few lines of each of PT images, which only
    many products a line pay for (Zen 5, float32, 64 images, 3x3; rows
    and columns, rows only: 128 -> 128 @2x2 1.73x, 1.51x the flat tiles;
    64 -> 64 @4x4 1.30x, 1.27x; 32 -> 32 @3x3 1.32x, 1.39x; 3 -> 64 @8x8
    0.81x, 1.11x; 8 x 512 -> 512 @4x4 0.98x, 1.17x). A class's last tile
    repeats its last pixel."""
    cdef Py_ssize_t PT = g.PT, KB = g.KB, S = g.S
    cdef Py_ssize_t cs = channel, rs = row * g.dh
    cdef Py_ssize_t block = g.Cg * g.R * S * KB
    cdef Py_ssize_t off[CYC_MAX_TILE_PIXELS]
    cdef Py_ssize_t rows[3 * MAX_TAP_CLASSES]
    cdef Py_ssize_t cols[3 * MAX_TAP_CLASSES]
    cdef Py_ssize_t nrc = _tap_classes(g.Ho, g.top, g.H, g.R, g.dh, g.sh, skip, rows)
    cdef Py_ssize_t ncc = _tap_classes(g.Wo, g.left, g.W, S, g.dw, g.sw,
                                       _column_classes(g, images, skip), cols)
    cdef Py_ssize_t rc, cc, ya, xa, ny, nx, r0, r1, s0, s1, each, total, shift, wshift
    cdef Py_ssize_t p0, i, n, y, x, tn, ty, tx, sn, sy, sx, npx, run, bb, grp, b, k0
    for rc in range(nrc):
        ya, r0, r1 = rows[3 * rc], rows[3 * rc + 1], rows[3 * rc + 2]
        ny = (rows[3 * rc + 3] if rc + 1 < nrc else g.Ho) - ya
        for cc in range(ncc):
            xa, s0, s1 = cols[3 * cc], cols[3 * cc + 1], cols[3 * cc + 2]
            nx = (cols[3 * cc + 3] if cc + 1 < ncc else g.Wo) - xa
            each = ny * nx   # the class's pixels in each image
            total = images * each
            shift = r0 * rs + s0 * g.dw     # the class's first tap's input
            wshift = (r0 * S + s0) * KB     # and weights
            # (n, y, x): the tile's first pixel, stepped along (no divisions:
            # 16-channel tiles spent 8 % of their time finding their pixels)
            n = y = x = 0
            p0 = 0
            while p0 < total:
                npx = min(PT, total - p0)
                tn, ty, tx = n, y, x
                for i in range(npx):
                    off[i] = tn * plane + (ya + ty) * g.sh * row + (xa + tx) * g.sw + shift
                    tx += 1
                    if tx == nx:
                        tx, ty = 0, ty + 1
                        if ty == ny:
                            ty, tn = 0, tn + 1
                for i in range(npx, PT):   # a short last tile repeats its last pixel
                    off[i] = off[npx - 1]
                for bb in range(b0, b1):
                    grp, b = bb // g.blocks, bb % g.blocks
                    if fp_t is float:
                        g.table.gathered_tile_f32(padded + grp * g.Cg * cs, off, cs, rs, g.dw,
                                                  g.Cg, r1 - r0, s1 - s0, g.R * S * KB, S * KB,
                                                  packed + bb * block + wshift, tile)
                    else:
                        g.table.gathered_tile_f64(padded + grp * g.Cg * cs, off, cs, rs, g.dw,
                                                  g.Cg, r1 - r0, s1 - s0, g.R * S * KB, S * KB,
                                                  packed + bb * block + wshift, tile)
                    k0 = grp * g.Kg + b * KB
                    i, sn, sy, sx = 0, n, y, x
                    while i < npx:   # runs of pixels along one output row
                        run = min(npx - i, nx - sx)
                        _store_tile(tile + i * KB, KB, min(KB, g.Kg - b * KB),
                                    out + sn * ostr[0] + k0 * ostr[1] + (ya + sy) * ostr[2]
                                    + (xa + sx) * ostr[3], ostr[1], ostr[3], run,
                                    bias + k0 if bias != NULL else NULL)
                        i += run
                        sx, sy = 0, sy + 1   # (a run ends at its row's end or the tile's)
                        if sy == ny:
                            sy, sn = 0, sn + 1
                n, y, x = tn, ty, tx
                p0 += PT


cdef inline void _pad_image(const _Conv *g, const char *image, const Py_ssize_t *istr,
                            const int64_t *row_map, const int64_t *col_map, fp_t *padded,
                            Py_ssize_t row0, Py_ssize_t row1) noexcept nogil:
    # Padded rows row0 <= i < row1 of every channel of one image (C x H x W,
    # byte strides istr[1:]) into `padded` (C x Hb x Wb).
    cdef Py_ssize_t c
    for c in range(g.C):
        _gather_rows(image + c * istr[1], g.W, istr[2], istr[3], row_map, col_map, g.left,
                     g.Wb, <fp_t>0, padded + (c * g.Hb + row0) * g.Wb, row0, row1)


cdef inline void _pack_missing(const _Conv *g, const char *source, const Py_ssize_t *sstr,
                              uint8_t *packed_blocks, fp_t *packed, Py_ssize_t bb0,
                              Py_ssize_t bb1) noexcept nogil:
    # Blocks bb0 <= bb < bb1 that packed_blocks does not mark, packed and marked.
    cdef Py_ssize_t bb
    for bb in range(bb0, bb1):
        if not packed_blocks[bb]:
            _pack_weights(g, source, sstr[0], sstr[1], sstr[2], sstr[3], packed, bb, bb + 1,
                          packed_blocks)


cdef inline fp_t *_base_of_slot(fp_t *slot, Py_ssize_t bb, Py_ssize_t block) noexcept nogil:
    # Packed weights whose block bb (`block` elements a block) is at `slot`:
    # the tiles and the packing add bb * block back. Formed as an integer,
    # as the base lies before the slot's array, where C lets no pointer go.
    return <fp_t *>(<uintptr_t>slot - <uintptr_t>(bb * block) * sizeof(fp_t))


cdef inline bint _tiles_skip_padding(const _Conv *g) noexcept nogil:
    # Do a blocked plan's tiles leave out every product of zero padding
    # when a block's weights are finite (_blocked_row_tile)? Its row tiles
    # leave out the kernel rows on padding rows, and a 3-wide kernel's edge
    # columns on one padding column each side; rows of at least one tile
    # need no gathered narrow tiles.
    return g.blocked and not g.flat and not g.lanes \
        and g.chunk == g.Cg and g.zero_padding and g.S == 3 and g.sw <= 2 and g.dw == 1 \
        and g.left <= 1 and g.right <= 1 and g.Wo >= g.PT


cdef inline bint _finite_blocks(const uint8_t *marks, Py_ssize_t b0,
                                Py_ssize_t b1) noexcept nogil:
    # Are blocks b0 <= bb < b1 packed with finite weights (their marks)?
    cdef Py_ssize_t bb
    if marks == NULL:
        return False
    for bb in range(b0, b1):
        if marks[bb] != BLOCK_PACKED:
            return False
    return True


cdef bint _classes_read_no_padding(Py_ssize_t n_out, Py_ssize_t before, Py_ssize_t size,
                                   Py_ssize_t K, Py_ssize_t d, Py_ssize_t step,
                                   bint skip) noexcept nogil:
    # Do the taps of _tap_classes' ranges (the same arguments) read only
    # the image, no padding? Not where padding is left out by more ranges
    # than MAX_TAP_CLASSES: one range of every tap then.
    cdef Py_ssize_t classes[3 * MAX_TAP_CLASSES]
    cdef Py_ssize_t n = _tap_classes(n_out, before, size, K, d, step, skip, classes)
    cdef Py_ssize_t c, first, last, k0, k1
    for c in range(n):
        first, k0, k1 = classes[3 * c], classes[3 * c + 1], classes[3 * c + 2]
        last = classes[3 * c + 3] - 1 if c + 1 < n else n_out - 1
        # (a range's taps move on with its positions: its first and last read the ends)
        if k0 < k1 and (first * step + k0 * d < before
                        or last * step + (k1 - 1) * d >= before + size):
            return False
    return True


cdef inline bint _gathered_reads_image(const _Conv *g, const Py_ssize_t *istr,
                                       Py_ssize_t item, Py_ssize_t images,
                                       bint skip) noexcept nogil:
    # Can _conv2d_gathered's tiles on `images` images (byte strides istr,
    # elements of `item` bytes; with `skip` as it will be called) read
    # them in place: C-ordered rows, and no padding that a tile reads (its
    # classes of rows and of columns leave out zero padding)?
    if istr[3] != item or istr[2] != g.W * item or istr[1] % item or istr[0] % item:
        return False
    return _classes_read_no_padding(g.Ho, g.top, g.H, g.R, g.dh, g.sh, skip) \
        and _classes_read_no_padding(g.Wo, g.left, g.W, g.S, g.dw, g.sw,
                                     _column_classes(g, images, skip))


cdef bint _reads_image(const _Conv *g, const uint8_t *marks, Py_ssize_t b0,
                       Py_ssize_t b1) noexcept nogil:
    """Do the tiles of blocks b0 <= bb < b1 (all of them when the tiles run
    outer) leave out every product of zero padding, so that they can read a
    C-ordered image in place (_tiles_skip_padding: the caller checks it)?
    Only when each block's weights are finite, as inf x 0 is NaN in the
    sum. Then the image is not padded: its tiles read it from a base where
    its padded origin would be (never read there). That copy took 2 % of
    a 64 -> 64 3x3 layer at 56x56. (Blocks packed as their tiles start,
    pack_inline, are marked only then: _conv2d_blocked stops at the first
    not finite, and the caller pads the image for the rest.)"""
    if g.tiles_outer:
        b0, b1 = 0, g.groups * g.blocks
    return _finite_blocks(marks, b0, b1)


cdef void _conv2d_range(const _Conv *g,
                        const char *image, const Py_ssize_t *istr,  # N x C x H x W, byte strides
                        const int64_t *row_map, const int64_t *col_map,
                        const fp_t *weights,     # packed (blocked) or K x Cg x R x S (spatial,
                        const Py_ssize_t *wstr,  # small, pack_inline: their byte strides)
                        const fp_t *bias,        # K values, or NULL
                        char *out, const Py_ssize_t *ostr,          # N x K x Ho x Wo, byte strides
                        fp_t *padded, fp_t *scratch, fp_t *edge,    # one thread's scratch
                        Py_ssize_t slots,        # images `padded` holds (C x Hb x Wb each)
                        Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t y0, Py_ssize_t y1,
                        Py_ssize_t b0, Py_ssize_t b1,
                        const char *source, const Py_ssize_t *sstr,
                        uint8_t *packed_blocks, bint one_slot) noexcept nogil:
    """Output rows y0 <= y < y1 of images n0 <= n < n1; of channel blocks
    b0 <= b < b1 when _splits_blocks(g) (else b0 = 0, b1 = every block).
    packed_blocks holds the packed blocks' marks (blocked plans; NULL: no
    block's padding products are left out). With `source` (blocked plans,
    one thread), `weights` is packed here: each block not yet marked, from
    `source` (K x Cg x R x S, byte strides sstr), then marked; else NULL,
    and `weights` is packed. With one_slot (`source` given, _splits_blocks
    and not pack_inline), `weights` holds one block: each block is packed
    into it as it starts, whatever its mark."""
    cdef Py_ssize_t n, bb, m0, m1, block = g.Cg * g.R * g.S * g.KB
    cdef const fp_t *wb = weights
    cdef const fp_t *images              # what gathered tiles read (_conv2d_gathered)
    cdef Py_ssize_t images_plane, images_channel, images_row
    cdef bint skip
    # Padded rows these output rows read; small-image tiles also read the
    # zero rows below the padded image, where their last tile overruns, and
    # flat tiles the rows before, where their last tile moves back to.
    cdef Py_ssize_t row0 = y0 * g.sh
    cdef Py_ssize_t row1 = g.Hb if g.small else (y1 - 1) * g.sh + (g.R - 1) * g.dh + 1
    if not g.blocked and g.rows_width > (g.Wo - 1) * g.sw + 1:
        row1 = min(row1 + _narrow_spare_rows(g), g.Hb)   # narrow rows, computed wider, read on
    if g.flat:  # the piece's last flat tile moves back over up to PT pixels
        row0 = max(0, row0 - (g.PT + g.Wb - 1) // g.Wb)
        if g.Wb < g.Wp:  # its last row's right padding is the next row's left
            row1 = min(row1 + 1, g.Hb)
    cdef Py_ssize_t item = sizeof(fp_t)
    if g.dw_lanes:   # gathers its own rows, channels interleaved
        for n in range(n0, n1):
            _conv2d_depthwise_lanes(g, image + n * istr[0], istr, row_map, col_map, weights,
                                    bias, out + n * ostr[0], ostr[1], ostr[2], ostr[3],
                                    scratch, y0, y1)
        return
    # Without padding, a C-contiguous image already is the padded buffer.
    cdef bint in_place = g.Hb == g.H and g.Wb == g.W and istr[3] == item \
        and istr[2] == g.W * item and istr[1] == g.H * g.W * item
    # With zero padding that no tile reads, its rows' too (_reads_image).
    cdef bint skips = not in_place and _tiles_skip_padding(g) and istr[3] == item \
        and istr[2] == g.W * item and istr[1] % item == 0
    cdef Py_ssize_t plane = g.C * g.Hb * g.Wb, cs = g.Hb * g.Wb, rs = g.Wb
    cdef Py_ssize_t origin = g.top * g.W + g.left   # the padded origin's place before the image
    cdef bint per_block = _splits_blocks(g) and not g.pack_inline and (
        1 < n1 - n0 <= slots or one_slot)
    cdef bint padded_ready
    if g.gathers and 1 < n1 - n0 <= slots and y0 == 0 and y1 == g.Ho:
        if source != NULL and not one_slot:
            _pack_missing(g, source, sstr, packed_blocks, <fp_t *>weights, b0, b1)
        skip = g.zero_padding and _finite_blocks(packed_blocks, b0, b1)
        if _gathered_reads_image(g, istr, item, n1 - n0, skip and not one_slot):
            # The tiles read each pixel where it is, with no padded copy of
            # the images first. Zen 4, float32 / float64: "valid" 32 x 64
            # -> 64 3x3 @9x9 1.06x / 1.04x, 3x3/2 @18x18 1.07x / 1.18x,
            # 64 x 32 -> 32 3x3 @5x5 1.32x / 1.17x; zero padding left out,
            # 64 x 64 -> 64 @4x4 1.10x / 1.05x, 64 x 128 -> 128 @2x2 1.34x
            # / 1.03x, 32 x 64 -> 64 @7x7 padded by 2 (DQN's input
            # gradient) 1.10x / 1.14x.
            images = <const fp_t *>(image + n0 * istr[0]) - origin
            images_plane, images_channel, images_row = istr[0] // item, istr[1] // item, g.W
        else:
            for n in range(n0, n1):
                _pad_image(g, image + n * istr[0], istr, row_map, col_map,
                           padded + (n - n0) * plane, row0, row1)
            images, images_plane, images_channel, images_row = padded, plane, cs, g.Wb
        if g.tiles_outer:   # (never with one_slot: blocks outer only)
            _conv2d_gathered(g, images, images_plane, images_channel, images_row, weights,
                             bias, out + n0 * ostr[0], ostr, scratch, n1 - n0, b0, b1, skip)
            return
        for bb in range(b0, b1):
            # each block over the piece while its weights stay in L2 (as
            # per_block below: 8 x 512 -> 512 3x3 @4x4 0.93x the flat tiles
            # with every block at each tile)
            if one_slot:   # packed as it starts (per_block below); its own mark says skip
                wb = _base_of_slot(<fp_t *>weights, bb, block)
                _pack_weights(g, source, sstr[0], sstr[1], sstr[2], sstr[3], <fp_t *>wb,
                              bb, bb + 1, packed_blocks)
                skip = g.zero_padding and _finite_blocks(packed_blocks, bb, bb + 1)
            _conv2d_gathered(g, images, images_plane, images_channel, images_row, wb, bias,
                             out + n0 * ostr[0], ostr, scratch, n1 - n0, bb, bb + 1, skip)
        return
    if source != NULL and not per_block:
        _pack_missing(g, source, sstr, packed_blocks, <fp_t *>weights, b0, b1)
    if per_block:
        # Blocks outer, their weights past L2: each block runs over every
        # image of the piece while its weights stay in L2, rather than every
        # block over each image, which streamed all the weights from memory
        # once per image (512 -> 512 3x3 @7x7: 9.4 MB an image). The images
        # are padded first, each into its own slot, when the first block
        # that reads padding comes. With one slot for the weights, the
        # images go in groups of as many as `padded` holds, each group
        # packing every block again (the caller makes one group where it
        # can: 8 x 512 -> 512 3x3 @7x7 wrote 9.4 MB of packed weights to
        # memory and read them back for its second group of 4).
        m0 = n0
        while m0 < n1:
            m1 = min(m0 + slots, n1)
            padded_ready = in_place
            for bb in range(b0, b1):
                if one_slot:   # the block into the slot, where its tiles read it from L2
                    wb = _base_of_slot(<fp_t *>weights, bb, block)
                    _pack_weights(g, source, sstr[0], sstr[1], sstr[2], sstr[3], <fp_t *>wb,
                                  bb, bb + 1, packed_blocks)
                elif source != NULL:   # now, so that its tiles read it from L2
                    _pack_missing(g, source, sstr, packed_blocks, <fp_t *>weights, bb, bb + 1)
                if skips and _reads_image(g, packed_blocks, bb, bb + 1):
                    for n in range(m0, m1):
                        _conv2d_blocked(g, <const fp_t *>(image + n * istr[0]) - origin,
                                        istr[1] // item, g.W, wb, wstr, bias,
                                        out + n * ostr[0], ostr[1], ostr[2], ostr[3], scratch,
                                        edge, y0, y1, bb, bb + 1, packed_blocks)
                    continue
                if not padded_ready:
                    for n in range(m0, m1):
                        _pad_image(g, image + n * istr[0], istr, row_map, col_map,
                                   padded + (n - m0) * plane, row0, row1)
                    padded_ready = True
                for n in range(m0, m1):
                    _conv2d_blocked(g, <const fp_t *>(image + n * istr[0]) if in_place
                                    else padded + (n - m0) * plane, cs, rs, wb, wstr, bias,
                                    out + n * ostr[0], ostr[1], ostr[2], ostr[3], scratch, edge,
                                    y0, y1, bb, bb + 1, packed_blocks)
            m0 = m1
        return
    if skips and (g.pack_inline or _reads_image(g, packed_blocks, b0, b1)):
        for n in range(n0, n1):
            # (blocks packed as they go: the first not finite, if any, stops it)
            bb = _conv2d_blocked(g, <const fp_t *>(image + n * istr[0]) - origin,
                                 istr[1] // item, g.W, weights, wstr, bias, out + n * ostr[0],
                                 ostr[1], ostr[2], ostr[3], scratch, edge, y0, y1, b0, b1,
                                 packed_blocks, True)
            if bb < b1:
                _pad_image(g, image + n * istr[0], istr, row_map, col_map, padded, row0, row1)
                _conv2d_blocked(g, padded, cs, rs, weights, wstr, bias, out + n * ostr[0],
                                ostr[1], ostr[2], ostr[3], scratch, edge, y0, y1, bb, b1,
                                packed_blocks)
        return
    for n in range(n0, n1):
        if in_place:
            padded = <fp_t *>(image + n * istr[0])
        else:
            _pad_image(g, image + n * istr[0], istr, row_map, col_map, padded, row0, row1)
        if g.blocked:
            _conv2d_blocked(g, padded, cs, rs, weights, wstr, bias, out + n * ostr[0], ostr[1],
                            ostr[2], ostr[3], scratch, edge, y0, y1, b0, b1, packed_blocks)
        elif g.small:
            _conv2d_small(g, padded, weights, wstr, bias, out + n * ostr[0], ostr[1], ostr[2],
                          ostr[3], scratch, edge, y0, y1)
        else:
            _conv2d_spatial(g, padded, weights, bias, out + n * ostr[0], ostr[1], ostr[2],
                            ostr[3], scratch, y0, y1)


cdef _Conv _conv_of(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t K,
                    Py_ssize_t R, Py_ssize_t S, Py_ssize_t groups, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top, Py_ssize_t bottom,
                    Py_ssize_t left, Py_ssize_t right, bint zero_padding,
                    bint double_precision, bint pack_first=False,
                    bint pixel_tiles=True) noexcept nogil:
    cdef _Conv g
    g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.groups = N, C, H, W, K, R, S, groups
    g.sh, g.sw, g.dh, g.dw = sh, sw, dh, dw
    g.top, g.bottom, g.left, g.right = top, bottom, left, right
    g.zero_padding = zero_padding
    g.pack_first = pack_first
    g.pixel_tiles = pixel_tiles
    _conv_plan(&g, double_precision)
    return g


cdef class Conv2dPlan:
    """A conv2d call's compiled plan, built once per call by conv2d_plan() and
    passed to pack_weights() and to conv2d() for every piece. Read-only."""
    cdef _Conv g
    cdef readonly bint double_precision   # float64 (else float32) buffers

    @property
    def Ho(self):
        return self.g.Ho

    @property
    def Wo(self):
        return self.g.Wo

    @property
    def Hp(self):
        """Rows of the padded input."""
        return self.g.Hp

    @property
    def Wp(self):
        """Columns of the padded input."""
        return self.g.Wp

    @property
    def Hb(self):
        """Rows of the padded buffer: the padded input's, plus zero rows that
        small-image and flat tiles overrun into, or a spare row that breaks a
        plane pitch of a multiple of 1 KB."""
        return self.g.Hb

    @property
    def Wb(self):
        """Row pitch of the padded buffer: the padded width, or less when
        zero-padded rows share a padding column (flat and small-image tiles)."""
        return self.g.Wb

    @property
    def chunk(self):
        """Input channels per pass of flat 1x1 tiles (Cg: a single pass)."""
        return self.g.chunk

    @property
    def splits_blocks(self):
        """Blocked with the blocks outer (more packed weights than
        TILES_OUTER_BYTES): a piece may take a range of channel blocks."""
        return _splits_blocks(&self.g)

    @property
    def strip_blocks(self):
        """Chunked 1x1 layers: channel blocks per pass over a strip."""
        return self.g.strip_blocks

    @property
    def chunk_blocks_outer(self):
        """Chunked 1x1 layers: each block runs over a strip (else each tile
        runs every block)."""
        return self.g.chunk_blocks_outer

    @property
    def blocked(self):
        """Weights are packed into packed_shape: by pack_weights first, or
        with pack_inline by conv2d as it goes (it then takes them as given,
        any strides)."""
        return self.g.blocked

    @property
    def weight_stage(self):
        """Small-image plans read the (K, Cg, R, S) weights as given, any
        strides: when not C-contiguous each block is staged in conv2d's
        `edge`, which then holds this many elements (else 0)."""
        return self.g.FK * self.g.Cg * self.g.R * self.g.S if self.g.small else 0

    @property
    def padded_shape(self):
        """Shape of conv2d's `padded` buffer: (C, Hb, Wb), or (1, 1, 1) when
        the plan gathers its rows into `scratch` instead (depthwise lanes)."""
        if _padded_size(&self.g):
            return (self.g.C, self.g.Hb, self.g.Wb)
        return (1, 1, 1)

    @property
    def depthwise_lanes(self):
        """Depthwise layer run with this many channels in the vector lanes
        (_conv2d_depthwise_lanes); 0 when another path runs it."""
        return self.g.dw_lanes

    @property
    def lanes(self):
        """1x1 layer run in pixel tiles (output pixels in the vector lanes)."""
        return self.g.lanes

    @property
    def pack_inline(self):
        """conv2d packs the weights as it goes: each block's chunk (chunked
        1x1 layers) or each block (others) as it starts."""
        return self.g.pack_inline

    @property
    def gathers(self):
        """Pieces of several tiny images run in tiles across rows and images
        (_conv2d_gathered): conv2d's `padded` then holds a piece's images."""
        return self.g.gathers

    @property
    def gather_images(self):
        """Images a piece of gathered tiles needs for classes of columns off
        the zero padding (_conv2d_gathered: a corner's class has a pixel an
        image, and fills a tile of tile_pixels images); 1 where they take
        none (fewer than GATHER_COLUMN_TAPS products a pixel)."""
        g = &self.g
        return g.PT if (g.gathers and g.zero_padding
                        and g.Cg * g.R * g.S >= GATHER_COLUMN_TAPS) else 1

    @property
    def small(self):
        """Small-image tiles: the weights read in place, the pixels in the
        vector lanes (tiny images; and layers of few output channels where
        512-bit FMAs run at full width, _wide_small_tiles)."""
        return self.g.small

    @property
    def reads_image(self):
        """Zero-padded row tiles that leave out every padding product: with
        finite weights (each block's mark) they read a C-ordered image in
        place, with no padded copy (_reads_image)."""
        return _tiles_skip_padding(&self.g)

    @property
    def padding_skips(self):
        """Row tiles (or tiles gathered across images) may leave out products
        with zero padding: packing marks the blocks whose weights are not
        finite, which keep them."""
        return self.g.padding_skips

    @property
    def tile_pixels(self):
        """Pixels of a blocked tile of the kernels the plan runs."""
        return self.g.PT

    @property
    def row_step(self):
        """Pixels a row's row tiles step by: tile_pixels, or a narrower tile
        width when as many tiles of it compute fewer of the row's pixels."""
        return self.g.RT if self.g.blocked else None

    @property
    def tile_widths(self):
        """The blocked tiles' widths, widest (tile_pixels) first: a row's
        last tile takes the narrowest that holds its pixels."""
        return tuple(CYC_TILE_WIDTH(self.g.PT, i) for i in range(CYC_TILE_WIDTHS))

    @property
    def flat(self):
        """Blocked tiles run along the padded image read as one long row
        (else along each output row)."""
        return self.g.flat

    @property
    def packed_shape(self):
        g = &self.g
        return (g.groups * g.blocks, g.Cg, g.R * g.S, g.KB) if g.blocked else None

    @property
    def scratch(self):
        """Elements of conv2d's `scratch` buffer."""
        return self.g.scratch_size

    @property
    def edge(self):
        """Elements of conv2d's `edge` buffer."""
        return self.g.edge_size

    @property
    def min_rows(self):
        """Fewest output rows worth a piece: flat tiles run across rows, and a
        piece of fewer rows than one tile spans would compute a whole tile
        for a few pixels."""
        cdef Py_ssize_t span = self.g.FP if self.g.small else (self.g.PT if self.g.flat else 1)
        if self.g.chunk_blocks_outer:   # whole strips (_plan_chunks says why)
            span = self.g.strip * self.g.PT
        return (span + self.g.Wb - 1) // self.g.Wb


def conv2d_plan(shape, Py_ssize_t K, kernel, Py_ssize_t groups, stride, dilation, padding,
                bint double_precision, *, bint zero_padding=False, bint pack_first=False,
                bint pixel_tiles=True):
    """The plan of one conv2d call: input `shape` (N, C, H, W), K output
    channels, `kernel` (R, S), `stride` and `dilation` (h, w), `padding`
    (top, bottom, left, right), `zero_padding` for padding_mode "zeros" (the
    padded buffer may then share padding columns between rows); `pack_first`
    when the caller runs it many times with the same weights (never
    pack_inline); `pixel_tiles` False keeps 1x1 layers on blocked tiles (to
    compare). The caller checked every argument (the padded input is at
    least as large as the dilated kernel)."""
    cdef Py_ssize_t N, C, H, W, R, S, sh, sw, dh, dw, top, bottom, left, right
    N, C, H, W = shape
    R, S = kernel
    sh, sw = stride
    dh, dw = dilation
    top, bottom, left, right = padding
    cdef Conv2dPlan plan = Conv2dPlan.__new__(Conv2dPlan)
    plan.g = _conv_of(N, C, H, W, K, R, S, groups, sh, sw, dh, dw,
                      top, bottom, left, right, zero_padding, double_precision, pack_first,
                      pixel_tiles)
    plan.double_precision = double_precision
    return plan


def pack_weights(Conv2dPlan plan,
                 const fp_t[:, :, :, :] weight,   # IN  K x Cg x R x S, any strides
                 fp_t[:, :, :, ::1] packed,         # OUT plan.packed_shape
                 Py_ssize_t b0=0, Py_ssize_t b1=-1):
    """Blocks b0 <= b < b1 of packed (all of them with b1 = -1; the caller
    keeps 0 <= b0 <= b1 <= packed.shape[0]). Returns their marks for
    conv2d's packed_blocks, OR-ed: 1, plus 2 if a weight is not finite."""
    cdef uint8_t marks
    if b1 < 0:
        b1 = packed.shape[0]
    with nogil:
        marks = _pack_weights(&plan.g, <const char *>&weight[0, 0, 0, 0], weight.strides[0],
                              weight.strides[1], weight.strides[2], weight.strides[3],
                              &packed[0, 0, 0, 0], b0, b1, NULL)
    return marks


def patches(Conv2dPlan plan,
            const fp_t[:, :, :, :] image,     # IN  n x C x H x W, any strides
            const int64_t[::1] row_map,       # IN  the plan's padded rows -> source row or -1
            const int64_t[::1] col_map,       # IN  the plan's padded cols -> source col or -1
            fp_t[:, :, ::1] cols,             # OUT (C*R*S) x (n*rows) x Wo
            fp_t[:, ::1] plane,               # scratch Hp x Wp
            Py_ssize_t y0=0):
    """Each output pixel's input patch as channels, for output rows y0 <= y
    < y0 + rows of each image i (rows = cols.shape[1] // n, image i's after
    image i - 1's): cols[(c*R + r)*S + s, i*rows + y - y0, x] is image i's
    padded sample at (y*sh + r*dh, x*sw + s*dw) of channel c. A 1x1 layer
    on cols, its weight (K, Cg*R*S, 1, 1), sums each pixel's products in
    this layer's (c, r, s) order: the same bits."""
    cdef const _Conv *g = &plan.g
    cdef Py_ssize_t n = image.shape[0], i, c, r, s, y
    cdef Py_ssize_t rows = cols.shape[1] // n if n else 0
    # padded rows the band reads
    cdef Py_ssize_t p0 = y0 * g.sh, p1 = (y0 + rows - 1) * g.sh + (g.R - 1) * g.dh + 1
    cdef Py_ssize_t istr2 = image.strides[2], istr3 = image.strides[3]
    cdef const char *data
    cdef fp_t *dst
    if n == 0 or rows == 0:
        return
    if image.shape[2] == 0 or image.shape[3] == 0:
        data = NULL   # an empty image (padded with zeros) is never read
    else:
        data = <const char *>&image[0, 0, 0, 0]
    with nogil:
        for i in range(n):
            for c in range(g.C):
                _gather_rows(data + i * image.strides[0] + c * image.strides[1] if data != NULL
                             else NULL, g.W, istr2, istr3, &row_map[0], &col_map[0], g.left,
                             g.Wp, <fp_t>0, &plane[p0, 0], p0, p1)
                for r in range(g.R):
                    for s in range(g.S):
                        dst = &cols[(c * g.R + r) * g.S + s, i * rows, 0]
                        for y in range(y0, y0 + rows):
                            _sample_row(&plane[y * g.sh + r * g.dh, s * g.dw], g.sw, dst, g.Wo)
                            dst += g.Wo


def depthwise_grad_plan(Py_ssize_t Wp, Py_ssize_t Wo, Py_ssize_t Ho, Py_ssize_t R,
                        Py_ssize_t S, Py_ssize_t sh, Py_ssize_t dh, bint double_precision):
    """(lanes, output rows per band, scratch elements) of depthwise_weight_grad
    for a depthwise layer of padded width Wp, output Ho x Wo, an R x S kernel,
    row stride sh and dilation dh."""
    cdef Py_ssize_t G = _table.dw_lanes_f64 if double_precision else _table.dw_lanes_f32
    cdef Py_ssize_t band = _dw_band(Ho, Wp, sh, G, 8 if double_precision else 4)
    return G, band, G * (R * S + _dw_rows_read(band, sh, R, dh) * Wp + band * Wo)


def depthwise_weight_grad(const fp_t[:, :, :, :] image,       # IN  N x C x H x W, any strides
                          const int64_t[::1] row_map,          # IN  Hp padded rows -> source row or -1
                          const int64_t[::1] col_map,          # IN  Wp padded cols -> source col or -1
                          Py_ssize_t left,                     # padding columns before column 0
                          const fp_t[:, :, :, ::1] grad_out,   # IN  N x C x Ho x Wo
                          Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                          Py_ssize_t band,                     # depthwise_grad_plan's
                          fp_t[:, :, ::1] grad,                # OUT C x R x S
                          fp_t[::1] scratch,                   # depthwise_grad_plan's elements
                          Py_ssize_t c0, Py_ssize_t c1):
    """The weight gradient of a depthwise conv2d (one input and one output
    channel per group) for channels c0 <= c < c1 (c0 a multiple of the
    lanes): grad[c, r, s] = sum over n, y, x of grad_out[n, c, y, x] *
    padded[n, c, y*sh + r*dh, x*sw + s*dw], `padded` the image padded by the
    maps, the channels in the vector lanes (band by band, the padded rows
    gathered from the image and grad_out's rows interleaved; depthwise_taps),
    each sum in (n, y, x) order: the same bits for any split of the
    channels."""
    cdef Py_ssize_t N = image.shape[0], H = image.shape[2], W = image.shape[3]
    cdef Py_ssize_t Wp = col_map.shape[0]
    cdef Py_ssize_t Ho = grad_out.shape[2], Wo = grad_out.shape[3]
    cdef Py_ssize_t R = grad.shape[1], S = grad.shape[2], taps = R * S
    cdef Py_ssize_t G = _table.dw_lanes_f64 if fp_t is double else _table.dw_lanes_f32
    cdef Py_ssize_t group, cc, nc, n, yb, ye, r0, hp
    cdef const char *plane
    cdef fp_t *acc = &scratch[0]
    cdef fp_t *ibuf = acc + G * taps
    cdef fp_t *gbuf = ibuf + _dw_rows_read(band, sh, R, dh) * Wp * G
    if c1 <= c0 or N == 0 or Ho == 0 or Wo == 0:
        if c1 > c0:
            grad[c0:c1] = 0
        return
    cdef const char *base = <const char *>&image[0, 0, 0, 0] if H and W else NULL
    with nogil:
        for group in range(c0 // G, (c1 + G - 1) // G):
            cc = group * G
            nc = min(G, c1 - cc)
            memset(acc, 0, G * taps * sizeof(fp_t))
            for n in range(N):
                yb = 0
                while yb < Ho:
                    ye = min(yb + band, Ho)
                    r0 = yb * sh
                    for hp in range(r0, r0 + _dw_rows_read(ye - yb, sh, R, dh)):
                        plane = base + n * image.strides[0] + cc * image.strides[1] \
                            + row_map[hp] * image.strides[2] if row_map[hp] >= 0 else NULL
                        _dw_gather_row(plane, image.strides[1], image.strides[3], nc, G,
                                       &col_map[0], Wp, left, W, ibuf + (hp - r0) * Wp * G)
                    _dw_interleave(&grad_out[n, cc, yb, 0], Ho * Wo, (ye - yb) * Wo, nc, G, gbuf)
                    if fp_t is float:
                        _table.depthwise_taps_f32(ibuf, Wp * G, sh, sw, dh, dw, R, S, gbuf,
                                                  Wo * G, Wo, ye - yb, acc)
                    else:
                        _table.depthwise_taps_f64(ibuf, Wp * G, sh, sw, dh, dw, R, S, gbuf,
                                                  Wo * G, Wo, ye - yb, acc)
                    yb = ye
            _dw_deinterleave(acc, G, taps, nc, &grad[cc, 0, 0], taps)



# Taps a pixel_taps or pixel_conv call takes at most (their offsets are
# copied to the stack).
cdef enum:
    _PIXEL_TAPS = 64
PIXEL_TAPS_MAX = _PIXEL_TAPS


cdef Py_ssize_t _tap_offsets(const int64_t[::1] offsets, Py_ssize_t ntaps,
                             cyc_index *off) noexcept:
    # The first min(ntaps, offsets, _PIXEL_TAPS) offsets into off: how many.
    cdef Py_ssize_t t, n = min(ntaps, offsets.shape[0], _PIXEL_TAPS)
    for t in range(n):
        off[t] = offsets[t]
    return n


def pixel_taps(const fp_t[::1] grad_out,     # IN  from the first image's first channel
               Py_ssize_t gn, Py_ssize_t gk, Py_ssize_t gy,   # its image, channel, row pitches
               const fp_t[::1] padded,       # IN  from the first image's first channel
               Py_ssize_t xn, Py_ssize_t xy,  # its image pitch, elements per output row
               const int64_t[::1] offsets,   # IN  each tap's offset in `padded`
               Py_ssize_t images, Py_ssize_t Ho, Py_ssize_t Wo,
               fp_t[:, ::1] sums):           # OUT K x taps
    """sums[k, t] = sum over m < images, y < Ho, x < Wo of
    grad_out[m*gn + k*gk + y*gy + x] * padded[m*xn + y*xy + offsets[t] + x]:
    a weight gradient with the pixels in the vector lanes (the level's
    pixel_taps), the GIL released. The caller keeps every read in bounds
    and passes as many offsets as sums has columns, at most PIXEL_TAPS_MAX."""
    cdef cyc_index off[_PIXEL_TAPS]
    # (the sums' rows, the offsets and the stack copy bound the taps)
    cdef Py_ssize_t ntaps = _tap_offsets(offsets, sums.shape[1], off), K = sums.shape[0]
    if K == 0 or ntaps == 0:
        return
    if images == 0 or Ho == 0 or Wo == 0:
        sums[:, :] = 0
        return
    with nogil:
        if fp_t is float:
            _table.pixel_taps_f32(&grad_out[0], gn, gk, gy, &padded[0], xn, xy, off, ntaps, K,
                                  images, Ho, Wo, &sums[0, 0])
        else:
            _table.pixel_taps_f64(&grad_out[0], gn, gk, gy, &padded[0], xn, xy, off, ntaps, K,
                                  images, Ho, Wo, &sums[0, 0])



def pixel_conv(const fp_t[::1] padded,       # IN  from the first image's first channel
               Py_ssize_t xn, Py_ssize_t xy,  # its image pitch, elements per output row
               const int64_t[::1] offsets,   # IN  each tap's offset in `padded`
               const fp_t[:, ::1] wt,        # IN  taps x K weights
               const fp_t[::1] bias,         # IN  K values, or none
               fp_t[::1] out,                # OUT from the first image's first channel
               Py_ssize_t on, Py_ssize_t ok, Py_ssize_t oy,   # its image, channel, row pitches
               Py_ssize_t images, Py_ssize_t Ho, Py_ssize_t Wo):
    """out[m*on + k*ok + y*oy + x] = sum over t of wt[t, k] *
    padded[m*xn + y*xy + offsets[t] + x] (+ bias[k]) for m < images, k < K,
    y < Ho, x < Wo: a layer of few taps with the pixels in the vector lanes
    (the level's pixel_conv), the GIL released. The caller keeps every read
    and write in bounds, rows of at least the level's row lanes and as many
    offsets as wt has rows, at most PIXEL_TAPS_MAX."""
    cdef cyc_index off[_PIXEL_TAPS]
    cdef Py_ssize_t ntaps = _tap_offsets(offsets, wt.shape[0], off), K = wt.shape[1]
    cdef const fp_t *b = &bias[0] if bias.shape[0] >= K and K else NULL
    if K == 0 or ntaps == 0 or images == 0 or Ho == 0 or Wo == 0:
        return
    with nogil:
        if fp_t is float:
            _table.pixel_conv_f32(&padded[0], xn, xy, off, ntaps, &wt[0, 0], b, &out[0], on, ok,
                                  oy, K, images, Ho, Wo)
        else:
            _table.pixel_conv_f64(&padded[0], xn, xy, off, ntaps, &wt[0, 0], b, &out[0], on, ok,
                                  oy, K, images, Ho, Wo)


cdef struct _GradTiles:
    const cyc_kernel_table *table
    bint narrow        # the table's narrow tiles: one vector of channels
    Py_ssize_t PT      # elements per tile
    Py_ssize_t KB      # output channels per block


cdef _GradTiles _grad_tiles(Py_ssize_t Kg, Py_ssize_t elements,
                            bint double_precision) noexcept nogil:
    # weight_grad_tiles' tiles for Kg output channels per group and tap sets
    # of `elements` consecutive elements: conv2d's table for Kg. But where
    # 512-bit FMAs run at full width (cyc_rows_512): more than half of an
    # AVX-512 block's channels take one AVX-512 block rather than two of
    # AVX2's, the second part empty (Zen 5, float32, 64 x 16 -> 24 3x3
    # @14x14: 1.55x); fewer take the narrow tiles, one 512-bit vector of
    # channels (twice the lanes of an AVX2 block's FMA), unless the set has
    # fewer than 5 elements, which AVX2's narrowest tiles waste less on
    # (a 3-element set of a one-channel layer fills 3 of a narrow tile's 8).
    cdef _GradTiles c
    cdef Py_ssize_t block = _table.block_f64 if double_precision else _table.block_f32
    c.table, c.narrow = _conv_table(Kg, double_precision), False
    if c.table != _table and cyc_rows_512():
        if 2 * Kg > block:
            c.table = _table
        elif _table.narrow_pixels and elements >= 5:
            c.table, c.narrow = _table, True
    c.PT = c.table.narrow_pixels if c.narrow else c.table.tile_pixels
    c.KB = (c.table.block_f64 if double_precision else c.table.block_f32) // (2 if c.narrow else 1)
    return c


def weight_grad_plan(Py_ssize_t Kg, Py_ssize_t elements, bint double_precision):
    """(elements per tile PT, channels per block KB) of weight_grad_tiles for
    a layer of Kg output channels per group whose tap sets have `elements`
    consecutive elements (Cg * S with the channels last and no column
    dilation, else Cg: weight_grad_tiles makes the same choice from its
    set_taps * Cg)."""
    cdef _GradTiles c = _grad_tiles(Kg, elements, double_precision)
    return c.PT, c.KB


cdef inline void _pixel_sums(const _GradTiles *c, const fp_t *src, Py_ssize_t rs,
                             Py_ssize_t ds, Py_ssize_t sx, Py_ssize_t rows, Py_ssize_t cols,
                             const fp_t *wp, const fp_t *init, fp_t *tile,
                             Py_ssize_t px) noexcept nogil:
    # A tile of px elements (PT, or a narrower width) summed over rows x cols
    # positions: weight_grad_tiles' pixels are elements, its weights grad_output.
    cdef const cyc_kernel_table *t = c.table
    if fp_t is float:
        if c.narrow:
            t.narrow_tile_f32(src, rs, ds, sx, rows, cols, wp, init, tile, px)
        elif px < t.tile_pixels:
            t.blocked_tile_sized_f32(src, 0, rs, ds, sx, 1, rows, cols,
                                     rows * cols * t.block_f32, wp, init, tile, px, 0)
        else:
            t.blocked_tile_f32(src, 0, rs, ds, sx, 1, rows, cols, wp, init, tile)
    else:
        if c.narrow:
            t.narrow_tile_f64(src, rs, ds, sx, rows, cols, wp, init, tile, px)
        elif px < t.tile_pixels:
            t.blocked_tile_sized_f64(src, 0, rs, ds, sx, 1, rows, cols,
                                     rows * cols * t.block_f64, wp, init, tile, px, 0)
        else:
            t.blocked_tile_f64(src, 0, rs, ds, sx, 1, rows, cols, wp, init, tile)


cdef void _unstage(const fp_t *stage, Py_ssize_t ss, Py_ssize_t unit, Py_ssize_t blocks,
                   Py_ssize_t KB, Py_ssize_t Kg, Py_ssize_t width, Py_ssize_t lo,
                   Py_ssize_t hi, fp_t[:, ::1] grad) noexcept nogil:
    # weight_grad_tiles' staged elements lo..hi-1 of (set, block) `unit` to grad's rows
    cdef Py_ssize_t st = unit // blocks, b = unit - st * blocks, k
    if unit < 0:
        return
    for k in range(min(KB, Kg - b * KB)):
        memcpy(&grad[b * KB + k, st * width + lo], stage + k * ss + lo, (hi - lo) * sizeof(fp_t))


cdef bint _band_channels_last(const fp_t *gout, Py_ssize_t gn, Py_ssize_t image_rows,
                              Py_ssize_t Wo, Py_ssize_t t0, Py_ssize_t rows, Py_ssize_t k0,
                              Py_ssize_t kn, fp_t *dst, Py_ssize_t KB,
                              bint check) noexcept nogil:
    # weight_grad_tiles' band: grad_output's channels k0..k0+kn-1 on rows
    # t0..t0+rows-1 of its images stacked (row t: image t // image_rows),
    # channels last in dst, KB to a pixel; an image's rows are one transpose.
    # With `check`, whether they are all finite (else True).
    cdef Py_ssize_t t = t0, m, y, part, gc = image_rows * Wo
    cdef bint finite = True
    while t < t0 + rows:
        m = t // image_rows
        y = t - m * image_rows
        part = min(image_rows - y, t0 + rows - t)
        finite &= _transpose_check(gout + m * gn + k0 * gc + y * Wo, gc, kn, part * Wo,
                                   dst + (t - t0) * Wo * KB, KB, check)
        t += part
    return finite


def weight_grad_tiles(const fp_t[::1] inp,                # IN  the padded input, flat
                      Py_ssize_t xn, Py_ssize_t xc,       # its image and channel strides
                      Py_ssize_t xr, Py_ssize_t xx,       # its row and column strides
                      const fp_t[::1] gout,               # IN  grad_output, flat: with copy_bands its planes
                                                          #     from the group's first, else channels last
                                                          #     in blocks: blocks x N*Ho*Wo x KB
                      Py_ssize_t gn,                      # the planes' image stride
                      Py_ssize_t image_rows,              # their rows per image (Ho, or Ho / N stacked)
                      bint copy_bands,
                      Py_ssize_t N, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t S, Py_ssize_t Cg,
                      Py_ssize_t set_taps,                # taps per set: 1, or S (then xc = 1, xx = Cg)
                      Py_ssize_t band,                    # output rows per pass
                      Py_ssize_t top, Py_ssize_t H,       # zero rows above the image, image rows
                      bint skip,                          # leave out the products of those rows
                      fp_t[:, ::1] grad,                  # OUT Kg x R*S*Cg: taps first, channels last
                      fp_t[::1] scratch,                  # PT*KB, or (u1 - u0)*PT*KB with several passes
                      fp_t[::1] stage,                    # KB*(set_taps*Cg + 48)
                      fp_t[::1] band_rows,                # blocks*band*Wo*KB with copy_bands: a pass's grad_output
                      Py_ssize_t u0, Py_ssize_t u1):      # units u = (set*blocks + block)*tiles + tile
    """A convolution's weight gradient (one group's) as conv2d's blocked
    tiles with the roles turned:

        grad[k, (r*S + s)*Cg + c] = sum over n, y, x of
            grad_out[k // KB, (n*Ho + y)*Wo + x, k % KB] * padded[n, c, y*sh + r*dh, x*sw + s*dw]

    for the units u0 <= u < u1. A tile's PT pixels are PT elements of a tap
    set: the channels of one tap (set_taps = 1), or with the input channels
    last and no column dilation the (s, c) elements of a kernel row, which
    are then consecutive (set_taps = S). grad_output takes the place of the
    packed weights, and each sum runs over the output pixels, in (n, y, x)
    order, pass by pass over bands of output rows, kept in `scratch` between
    passes; a band's grad_output rows stay in L2 while every unit reads
    them. With `copy_bands`, each pass first copies its band of grad_output,
    channels last in blocks of KB (zeros past Kg), into `band_rows`, for the
    blocks its units use: grad_output row t of the N x Ho rows is row
    t % image_rows of image t // image_rows (tiny images' batch is one tall
    image, N = 1, of their rows). Otherwise the caller copied it all so.

    A set's last tile is the narrowest of conv2d's tiles that holds the
    elements left, moved back over elements the tile before computed (the
    same sums: the same bits) where it is wider than them, unless the set
    has fewer than it; then `inp` must hold elements past the last pixel
    for it to read. A finished tile is written transposed into
    `stage`, a run of its elements to each channel's row, and the rows are
    copied to `grad` when the units move on to another (set, block):
    stage's rows are not 4 KB apart, as grad's often are (a tile's 32 rows
    then share one set of L1: written straight into grad, 1024 -> 2048 1x1
    at 14² spent 42 % of its time there, and took 5.1 ms instead of 3.6 on
    Zen 4). The same bits for any split of the units. PT and KB are
    weight_grad_plan's for Kg and set_taps * Cg elements.

    With `skip` (padded rows 0..top-1 and from top + H on are zeros, and,
    without copy_bands, grad_out is finite), each kernel row's sums leave
    out the output rows that read those: adding 0 x g (g finite) to a sum
    that starts from +0 never changes it, so the bits are the same (at 2x2
    with 3x3 taps, 4 of 6 rows' products are left). With copy_bands, a
    pass leaves them out when the band it copied is finite: a sum that
    starts from +0 is never -0, so whichever of its ±0 terms a pass leaves
    out, the bits are the same."""
    cdef Py_ssize_t Kg = grad.shape[0], per_row = S // set_taps, width = set_taps * Cg
    cdef _GradTiles c = _grad_tiles(Kg, width, fp_t is double)
    cdef Py_ssize_t PT = c.PT, KB = c.KB, tiles = (width + PT - 1) // PT
    cdef Py_ssize_t blocks = (Kg + KB - 1) // KB, slot = band * Wo * KB
    # the blocks the units use: `used` of them from block b_first on, cyclically
    cdef Py_ssize_t b_first = u0 // tiles % blocks if blocks else 0
    cdef Py_ssize_t used = min(blocks, (u1 - 1) // tiles - u0 // tiles + 1)
    cdef Py_ssize_t sx = 1 if set_taps > 1 else xc
    # the last tile's width: PT, or a narrow tile's where that holds the rest
    cdef Py_ssize_t left_over = width - (tiles - 1) * PT, last_px = PT
    cdef Py_ssize_t n, y0, rows, u, tile, unit, st, b, r, s0, i0, px, ya, yb, j
    cdef Py_ssize_t ss = (width + 15) // 16 * 16 + 16   # stage's row pitch
    cdef Py_ssize_t staged = -1, lo = 0, hi = 0         # its (set, block) unit and elements
    cdef bint first, last, finite
    cdef const fp_t *src
    cdef const fp_t *wp
    cdef fp_t *o
    if N == 0 or Ho * Wo == 0 or u1 <= u0:
        return
    if ss * sizeof(fp_t) % 4096 == 0:
        ss += 16
    last_px = _tile_width(PT, left_over)
    with nogil:
        if copy_bands and Kg % KB:   # the last block's channels past Kg: zeros, never copied over
            memset(&band_rows[(blocks - 1) * slot], 0, slot * sizeof(fp_t))
        for n in range(N):
            y0 = 0
            while y0 < Ho:
                rows = min(band, Ho - y0)
                first = n == 0 and y0 == 0
                last = n == N - 1 and y0 + rows == Ho
                finite = True
                for j in range(used if copy_bands else 0):
                    b = (b_first + j) % blocks
                    finite &= _band_channels_last(&gout[0], gn, image_rows, Wo, n * Ho + y0,
                                                  rows, b * KB, min(KB, Kg - b * KB),
                                                  &band_rows[b * slot], KB, skip)
                for u in range(u0, u1):
                    unit = u // tiles
                    tile = u - unit * tiles
                    st = unit // blocks
                    b = unit - st * blocks
                    r = st // per_row
                    s0 = (st - r * per_row) * set_taps
                    px = last_px if tile == tiles - 1 else PT
                    i0 = min(tile * PT, width - px) if width >= px else 0
                    # the band's rows ya <= y < yb (all, or those whose kernel row r reads the image)
                    ya, yb = y0, y0 + rows
                    if skip and finite:
                        ya = max(y0, _floor_div(top - r * dh + sh - 1, sh))
                        yb = min(y0 + rows, _floor_div(top + H - 1 - r * dh, sh) + 1)
                        if yb <= ya:   # none: the sums (of no products) from y0
                            ya = yb = y0
                    src = &inp[0] + n * xn + (ya * sh + r * dh) * xr + s0 * dw * xx + i0 * sx
                    if copy_bands:
                        wp = &band_rows[b * slot + (ya - y0) * Wo * KB]
                    else:
                        wp = &gout[((b * N + n) * Ho + ya) * Wo * KB]
                    o = &scratch[0] if first and last else &scratch[(u - u0) * PT * KB]
                    _pixel_sums(&c, src, sh * xr, sw * xx, sx, yb - ya, Wo, wp,
                                NULL if first else o, o, px)
                    if last:
                        if unit != staged:
                            _unstage(&stage[0], ss, staged, blocks, KB, Kg, width, lo, hi, grad)
                            staged, lo, hi = unit, i0, i0
                        _transpose(o, KB, min(px, width - i0), KB, &stage[i0], ss)
                        lo, hi = min(lo, i0), max(hi, i0 + min(px, width - i0))
                y0 += rows
        _unstage(&stage[0], ss, staged, blocks, KB, Kg, width, lo, hi, grad)


cdef inline Py_ssize_t _floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # a // b rounded down, for b > 0 (cdivision truncates)
    return a // b if a >= 0 else -((b - 1 - a) // b)


cdef inline Py_ssize_t _phase_first_tap(Py_ssize_t phase, Py_ssize_t stride,
                                        Py_ssize_t dilation, Py_ssize_t taps) noexcept nogil:
    # The first tap r with r * dilation = phase (mod stride), or -1
    cdef Py_ssize_t r
    for r in range(min(stride // _gcd(stride, dilation), taps)):
        if (r * dilation - phase) % stride == 0:
            return r
    return -1


cdef inline Py_ssize_t _dwt_band(Py_ssize_t Hx, Py_ssize_t Wx, Py_ssize_t lanes,
                                 Py_ssize_t item) noexcept nogil:
    # Gradient rows per band of depthwise_transpose: about DW_BAND_BYTES of them
    return max(1, min(Hx, DW_BAND_BYTES // (item * lanes * max(Wx, 1))))


cdef inline Py_ssize_t _dwt_cols(Py_ssize_t x0, Py_ssize_t Wx, Py_ssize_t S, Py_ssize_t sw,
                                 Py_ssize_t dw) noexcept nogil:
    # grad_output columns that gradient columns x0 <= x < x0 + Wx read
    return _floor_div(x0 + Wx - 1, sw) - _floor_div(x0 - (S - 1) * dw, sw) + 1


def depthwise_transpose_plan(Py_ssize_t Hx, Py_ssize_t Wx, Py_ssize_t x0, Py_ssize_t R,
                             Py_ssize_t S, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                             Py_ssize_t dw, bint double_precision):
    """(lanes, gradient rows per band, scratch elements) of depthwise_transpose
    for an Hx x Wx gradient from padded column x0 on."""
    cdef Py_ssize_t G = _table.dw_lanes_f64 if double_precision else _table.dw_lanes_f32
    cdef Py_ssize_t band = _dwt_band(Hx, Wx, G, 8 if double_precision else 4)
    cdef Py_ssize_t rows = (band + (R - 1) * dh) // sh + 2   # grad_output rows a band reads
    return G, band, G * (2 * R * S + 1 + rows * _dwt_cols(x0, Wx, S, sw, dw) + band * Wx)


cdef inline void _zip_rows(const fp_t *even, const fp_t *odd, fp_t *dst, Py_ssize_t n,
                           fp_t b, bint has_bias) noexcept nogil:
    # dst[2j] = even[j], dst[2j + 1] = odd[j] for 2j (+ 1) < n, plus b
    # when has_bias (without it, no add: a -0.0 sum stays -0.0)
    cdef Py_ssize_t j
    if has_bias:
        for j in range(n // 2):
            dst[2 * j] = even[j] + b
            dst[2 * j + 1] = odd[j] + b
    else:
        for j in range(n // 2):
            dst[2 * j] = even[j]
            dst[2 * j + 1] = odd[j]
    if n % 2:
        dst[n - 1] = even[n // 2] + b if has_bias else even[n // 2]


def col2im(const fp_t[:, :, :, ::1] cols,   # IN  N x C*R*S x Ho x Wo
           Py_ssize_t R, Py_ssize_t S, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
           Py_ssize_t dw, Py_ssize_t y0, Py_ssize_t x0,
           const fp_t[::1] bias,                # IN  C values, or length 0 for none
           fp_t[:, :, :, :] out,                # OUT N x C x Hx x Wx, any strides
           fp_t[::1] plane,                     # scratch: sh*ceil(Hx/sh) * sw*ceil(Wx/sw)
           Py_ssize_t u0, Py_ssize_t u1):
    """Each tap's products summed back onto the padded input's pixels
    (y0 + i, x0 + j) they came from, for the planes u0 <= u < u1 (image
    u // C, channel u % C):
        out[n, c, i, j] = sum of cols[n, (c*R + r)*S + s, oy, ox]
                          over y0 + i = oy*sh + r*dh, x0 + j = ox*sw + s*dw
                          (+ bias[c]),
    the sum over (r, s) in order from zero, the bias added last: the same
    bits for any split of the planes. A plane's sums are kept as sh*sw
    planes, one per stride phase (i mod sh, j mod sw), so that each tap's
    plane of cols adds onto consecutive sums (as vectors), row by row; they
    are then interleaved into out."""
    cdef Py_ssize_t C = out.shape[1], Hx = out.shape[2], Wx = out.shape[3]
    cdef Py_ssize_t Ho = cols.shape[2], Wo = cols.shape[3]
    cdef Py_ssize_t Qy = (Hx + sh - 1) // sh, Qx = (Wx + sw - 1) // sw
    cdef Py_ssize_t u, n, c, i, j, r, s, oy, ox, fy, fx, ylo, yhi, xlo, xhi, py, px
    cdef Py_ssize_t osx = out.strides[3]
    cdef const fp_t *src
    cdef fp_t *acc = &plane[0] if Hx * Wx else NULL
    cdef fp_t *sums
    cdef char *dst
    cdef bint has_bias = bias.shape[0] > 0
    with nogil:
        for u in range(u0, u1):
            n, c = u // C, u % C
            memset(acc, 0, sh * sw * Qy * Qx * sizeof(fp_t))
            for r in range(R):
                # rows i = oy*sh + fy: phase py, index oy + fy // sh
                fy = r * dh - y0
                py = _floor_mod(fy, sh)
                ylo = max(0, _floor_div(-fy + sh - 1, sh))       # i >= 0
                yhi = min(Ho, _floor_div(Hx - 1 - fy, sh) + 1)   # i < Hx
                for s in range(S):
                    fx = s * dw - x0
                    px = _floor_mod(fx, sw)
                    xlo = max(0, _floor_div(-fx + sw - 1, sw))
                    xhi = min(Wo, _floor_div(Wx - 1 - fx, sw) + 1)
                    src = &cols[n, (c * R + r) * S + s, 0, 0]
                    sums = acc + (py * sw + px) * Qy * Qx + _floor_div(fy, sh) * Qx \
                        + _floor_div(fx, sw)
                    if xlo == 0 and xhi == Wo == Qx:   # whole rows: one run
                        for ox in range(ylo * Wo, yhi * Wo):
                            sums[ox] += src[ox]
                        continue
                    for oy in range(ylo, yhi):
                        for ox in range(xlo, xhi):
                            sums[oy * Qx + ox] += src[oy * Wo + ox]
            for i in range(Hx):
                py = i % sh
                sums = acc + py * sw * Qy * Qx + (i // sh) * Qx
                dst = <char *>&out[n, c, i, 0]
                if sw == 2 and osx == sizeof(fp_t):   # the two phases zipped (as vectors)
                    _zip_rows(sums, sums + Qy * Qx, <fp_t *>dst, Wx,
                              bias[c] if has_bias else 0, has_bias)
                    continue
                for px in range(min(sw, Wx)):
                    for j in range((Wx - px + sw - 1) // sw):
                        if has_bias:
                            (<fp_t *>(dst + (j * sw + px) * osx))[0] = sums[px * Qy * Qx + j] \
                                + bias[c]
                        else:
                            (<fp_t *>(dst + (j * sw + px) * osx))[0] = sums[px * Qy * Qx + j]


def depthwise_transpose(const fp_t[:, :, :, ::1] grad_out,    # IN  N x C x Ho x Wo
                        const fp_t[:, :, ::1] weight,         # IN  C x R x S
                        const fp_t[::1] bias,                 # IN  C, or None
                        fp_t[:, :, :, :] out,                 # OUT N x C x Hx x Wx, any strides
                        Py_ssize_t y0, Py_ssize_t x0,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t band,                      # depthwise_transpose_plan's
                        fp_t[::1] scratch,                    # depthwise_transpose_plan's elements
                        Py_ssize_t u0, Py_ssize_t u1):
    """The input gradient of a depthwise conv2d (one input and one output
    channel per group; stride sh x sw, dilation dh x dw), as the padded
    input's pixels (y0 + i, x0 + j):
        out[n, c, i, j] = sum of weight[c, r, s] * grad_out[n, c, oy, ox]
                          over y0 + i = oy*sh + r*dh, x0 + j = ox*sw + s*dw
                          (+ bias[c]),
    for the units u0 <= u < u1 of image n = u // groups and lane group u %
    groups of the channels. The channels go in the vector lanes: band by
    band of gradient rows, the grad_output rows they read interleaved, then
    per stride phase of the gradient's pixels a stride-1 depthwise_lanes
    over that phase's taps (flipped), its pixels written sw apart into the
    band's rows, which are then taken apart into the planes. Per pixel the
    sum runs over the phase's taps in flipped (r, s) order from zero, the
    bias added once: conv2d's bits for the phase's stride-1 correlation
    (_conv2d_grad._grad_input), for any split of the units."""
    cdef Py_ssize_t N = grad_out.shape[0], C = grad_out.shape[1]
    cdef Py_ssize_t Ho = grad_out.shape[2], Wo = grad_out.shape[3]
    cdef Py_ssize_t R = weight.shape[1], S = weight.shape[2], taps = R * S
    cdef Py_ssize_t Hx = out.shape[2], Wx = out.shape[3]
    cdef Py_ssize_t G = _table.dw_lanes_f64 if fp_t is double else _table.dw_lanes_f32
    cdef Py_ssize_t groups = (C + G - 1) // G, item = sizeof(fp_t)
    cdef Py_ssize_t gc0 = _floor_div(x0 - (S - 1) * dw, sw), ncols = _dwt_cols(x0, Wx, S, sw, dw)
    cdef Py_ssize_t ipitch = ncols * G, mpitch = Wx * G
    cdef Py_ssize_t steph = sh // _gcd(sh, dh), stepw = sw // _gcd(sw, dw)
    cdef Py_ssize_t u, n, cc, nc, l, yb, ye, gr0, gr1, oy, a, b, py, px, fr, fc, nr, ns
    cdef Py_ssize_t i, j, k, rows, cols, r_last, s_last
    cdef fp_t *wall = &scratch[0]
    cdef fp_t *wph = wall + taps * G
    cdef fp_t *bbuf = wph + taps * G
    cdef fp_t *ibuf = bbuf + G
    cdef fp_t *mbuf = ibuf + ((band + (R - 1) * dh) // sh + 2) * ipitch
    cdef fp_t *dst
    cdef bint has_bias = bias is not None
    cdef char *obase
    if N * C * Hx * Wx == 0:
        return
    obase = <char *>&out[0, 0, 0, 0]
    with nogil:
        for u in range(u0, u1):
            n, cc = u // groups, u % groups * G
            nc = min(G, C - cc)
            _dw_interleave(&weight[cc, 0, 0], taps, taps, nc, G, wall)
            for l in range(G):
                bbuf[l] = bias[cc + l] if has_bias and l < nc else 0
            yb = 0
            while yb < Hx:
                ye = min(yb + band, Hx)
                # the grad_output rows this band reads, zeros past its edges
                gr0 = _floor_div(y0 + yb - (R - 1) * dh, sh)
                gr1 = _floor_div(y0 + ye - 1, sh) + 1
                a, b = max(gc0, 0), min(gc0 + ncols, Wo)
                for oy in range(gr0, gr1):
                    dst = ibuf + (oy - gr0) * ipitch
                    if oy < 0 or oy >= Ho or a >= b:
                        memset(dst, 0, ipitch * item)
                        continue
                    memset(dst, 0, (a - gc0) * G * item)
                    _dw_interleave(&grad_out[n, cc, oy, a], Ho * Wo, b - a, nc, G,
                                   dst + (a - gc0) * G)
                    memset(dst + (b - gc0) * G, 0, (gc0 + ncols - b) * G * item)
                # phase by phase: rows i = py, columns j = px (mod the stride)
                for py in range(sh):
                    fr = _phase_first_tap((py + y0) % sh, sh, dh, R)   # rows y0 + i = py
                    nr = (R - 1 - fr) // steph + 1 if fr >= 0 else 0
                    i = yb + ((py - yb) % sh + sh) % sh   # the phase's first row in the band
                    rows = (ye - i + sh - 1) // sh if i < ye else 0
                    for px in range(sw):
                        fc = _phase_first_tap((px + x0) % sw, sw, dw, S)
                        ns = (S - 1 - fc) // stepw + 1 if fc >= 0 else 0
                        j = px
                        cols = (Wx - j + sw - 1) // sw if j < Wx else 0
                        if rows == 0 or cols == 0:
                            continue
                        dst = mbuf + (i - yb) * mpitch + j * G
                        if nr == 0 or ns == 0:   # no tap reaches these pixels
                            for a in range(rows):
                                for b in range(cols):
                                    memcpy(dst + a * sh * mpitch + b * sw * G, bbuf, G * item)
                            continue
                        r_last, s_last = fr + (nr - 1) * steph, fc + (ns - 1) * stepw
                        for a in range(nr):
                            for b in range(ns):
                                memcpy(wph + (a * ns + b) * G,
                                       wall + ((r_last - a * steph) * S + s_last - b * stepw) * G,
                                       G * item)
                        oy = (y0 + i - r_last * dh) // sh - gr0   # exact: the phase's rows
                        k = (x0 + j - s_last * dw) // sw - gc0
                        if fp_t is float:
                            _table.depthwise_lanes_f32(ibuf + oy * ipitch + k * G, ipitch, 1, 1,
                                                       dh // _gcd(sh, dh), dw // _gcd(sw, dw),
                                                       nr, ns, wph,
                                                       bbuf if has_bias else NULL, dst,
                                                       sh * mpitch, sw * G, cols, rows)
                        else:
                            _table.depthwise_lanes_f64(ibuf + oy * ipitch + k * G, ipitch, 1, 1,
                                                       dh // _gcd(sh, dh), dw // _gcd(sw, dw),
                                                       nr, ns, wph,
                                                       bbuf if has_bias else NULL, dst,
                                                       sh * mpitch, sw * G, cols, rows)
                _dw_scatter_rows(mbuf, ye - yb, Wx, nc, G,
                                 obase + n * out.strides[0] + cc * out.strides[1]
                                 + yb * out.strides[2], out.strides[1], out.strides[2],
                                 out.strides[3])
                yb = ye


def flip_transpose_weights(const fp_t[:, :, :, ::1] w,      # IN  K x Cg x R x S
                           Py_ssize_t groups,
                           fp_t[:, :, :, ::1] out):         # OUT groups*Cg x K/groups x R x S
    """out[g*Cg + c, k, r, s] = w[g*Kg + k, c, R-1-r, S-1-s]: the weight of
    the stride-1 conv2d that is a layer's input gradient (each group's
    channel axes swapped, the taps flipped). Up to 16 input channels at a
    time: each output channel's taps of them read as one run, each copied
    reversed onto the end of its own output row (NumPy's copy of the
    reversed view runs an inner loop per row of S taps: 512 -> 512 3x3 took
    3.3 ms, this loop 0.9-1.1 ms on Zen 4)."""
    cdef Py_ssize_t K = w.shape[0], Cg = w.shape[1], RS = w.shape[2] * w.shape[3]
    cdef Py_ssize_t Kg = K // groups if groups else 0, grp, k, c, c0, nc
    cdef const fp_t *src
    cdef fp_t *dst
    if K * Cg * RS == 0:
        return
    with nogil:
        for grp in range(groups):
            for c0 in range(0, Cg, 16):
                nc = min(16, Cg - c0)
                for k in range(Kg):
                    src = &w[grp * Kg + k, c0, 0, 0]
                    for c in range(nc):
                        dst = &out[grp * Cg + c0 + c, k, 0, 0]
                        _reverse(src + c * RS, RS, dst)


def conv2d(Conv2dPlan plan,
           const fp_t[:, :, :, :] image,      # IN  N x C x H x W, any strides
           const int64_t[::1] row_map,        # IN  Hb padded rows -> source row or -1
           const int64_t[::1] col_map,        # IN  Wb padded cols -> source col or -1
           const fp_t[:, :, :, :] weights,    # IN  packed (blocked) or K x Cg x R x S, C-
                                              #     contiguous; with pack_inline or
                                              #     weight_stage K x Cg x R x S, any strides
           const fp_t[::1] bias,              # IN  K values, or length 0 for none
           fp_t[:, :, :, :] out,              # OUT N x K x Ho x Wo, any strides
           fp_t[:, :, ::1] padded,            # scratch plan.padded_shape, or k images of
                                              #     it stacked (k*C x Hb x Wb) for pieces of
                                              #     up to k images to run blocks outer
           fp_t[::1] scratch,                 # scratch: plan.scratch elements
           fp_t[::1] edge,                    # scratch: plan.edge elements, or
                                              #     plan.weight_stage if more
           Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t y0, Py_ssize_t y1,
           Py_ssize_t b0=0, Py_ssize_t b1=-1,
           const fp_t[:, :, :, :] source=None,   # IN  K x Cg x R x S, any strides: blocked
           uint8_t[::1] packed_blocks=None):     # IN/OUT plan.packed_shape[0] marks
    """Output rows y0 <= y < y1 of images n0 <= n < n1 (one piece of a call);
    fp_t is the plan's precision. Plans with splits_blocks may also split
    the channel blocks: b0 <= b < b1 of plan.packed_shape[0] (b1 < 0: all);
    others compute every block. packed_blocks marks the packed blocks
    (pack_weights' marks; 0 for one not packed yet): row tiles leave out a
    block's products with zero padding only when its mark says its weights
    are finite (without marks, never). Blocked plans run on one thread may
    leave the packing of `weights` to the core: each block it runs that
    packed_blocks does not mark is packed from `source` as it starts, and
    marked. `weights` may then hold a single block (shape[0] 1) in plans
    with splits_blocks: each block is packed into it as it starts, marked
    or not (for a call whose pieces run each block once)."""
    cdef Py_ssize_t istr[4]
    cdef Py_ssize_t ostr[4]
    cdef Py_ssize_t wstr[4]
    cdef Py_ssize_t sstr[4]
    cdef bint core_packs = packed_blocks is not None and source is not None
    cdef bint marked = packed_blocks is not None and packed_blocks.shape[0] > 0
    cdef bint one_slot = core_packs and _splits_blocks(&plan.g) and not plan.g.pack_inline \
        and weights.shape[0] < plan.g.groups * plan.g.blocks
    cdef int i
    for i in range(4):
        istr[i] = image.strides[i]
        ostr[i] = out.strides[i]
        wstr[i] = weights.strides[i]
        sstr[i] = source.strides[i] if core_packs else 0
    cdef Py_ssize_t slots = padded.shape[0] // plan.g.C if _padded_size(&plan.g) else 1
    # An empty image (H or W of 0, padded with zeros) is never read.
    cdef const char *data = <const char *>&image[0, 0, 0, 0] if image.shape[2] and image.shape[3] else NULL
    with nogil:
        _conv2d_range(&plan.g, data, istr, &row_map[0], &col_map[0],
                      &weights[0, 0, 0, 0], wstr,
                      &bias[0] if bias.shape[0] else NULL,
                      <char *>&out[0, 0, 0, 0], ostr, &padded[0, 0, 0],
                      &scratch[0], &edge[0] if edge.shape[0] else NULL, slots, n0, n1, y0, y1,
                      b0 if _splits_blocks(&plan.g) else 0,
                      b1 if b1 >= 0 and _splits_blocks(&plan.g)
                      else plan.g.groups * plan.g.blocks,
                      <const char *>&source[0, 0, 0, 0] if core_packs else NULL,
                      sstr, &packed_blocks[0] if marked else NULL, one_slot)



cdef class SmallConv2d:
    """A conv2d call of one piece kept between calls (built by
    _conv2d._prepare for calls of microseconds): its plan, index maps and
    scratch are resolved once, so a call unpacks only its four arrays.
    conv2d()'s nine memoryviews and three scratch arrays took about 2.5 us
    of a 1 -> 1 3x3 @8x8 call of 7. It runs the piece exactly as conv2d()
    does on one thread: the same bits."""
    cdef Conv2dPlan plan
    cdef const int64_t[::1] row_map, col_map
    cdef object buffers                     # keeps the scratch below alive
    cdef char *padded
    cdef char *scratch
    cdef char *edge
    cdef char *packed                       # blocked plans packed here (else NULL)
    cdef uint8_t *marks                     # and their blocks' marks
    cdef Py_ssize_t N, slots, blocks
    cdef readonly Py_ssize_t work           # its multiply-adds
    cdef bint any_weights                   # weights of any strides (else C-contiguous)
    cdef bint in_use                        # another thread runs it: run() declines

    def __init__(self, Conv2dPlan plan, const int64_t[::1] row_map,
                 const int64_t[::1] col_map, Py_ssize_t N, unsigned char[::1] padded,
                 unsigned char[::1] scratch, unsigned char[::1] edge,
                 unsigned char[::1] packed, unsigned char[::1] marks):
        """Scratch as aligned byte buffers of at least what conv2d() takes:
        padded plan.padded_shape (times N when plan.gathers), scratch
        plan.scratch and edge max(plan.edge, plan.weight_stage) elements;
        for blocked plans packed plan.packed_shape and a mark per block.
        Buffers the plan does not use still hold one element."""
        self.plan, self.row_map, self.col_map, self.N = plan, row_map, col_map, N
        self.work = N * plan.g.K * plan.g.Ho * plan.g.Wo * plan.g.Cg * plan.g.R * plan.g.S
        self.buffers = (padded, scratch, edge, packed, marks)
        self.padded, self.scratch, self.edge = <char *>&padded[0], <char *>&scratch[0], <char *>&edge[0]
        self.slots = N if plan.g.gathers and _padded_size(&plan.g) else 1
        self.any_weights = plan.g.blocked or plan.g.small   # (packed or staged: as _execute)
        self.blocks = plan.g.groups * plan.g.blocks
        if plan.g.blocked and not plan.g.pack_inline and not plan.g.small:
            # (as conv2d()'s caller runs them on one thread: _conv2d._Packing)
            self.packed, self.marks = <char *>&packed[0], <uint8_t *>&marks[0]

    def run(self, image, weights, bias, out, bint poison=False):
        """The call on `image` ((N, C, H, W), or (C, H, W) when N is 1),
        `weights`, `bias` (or None) into `out` (the result's shape), arrays of
        the plan's precision whose shapes the caller checked. False, with
        nothing done, when one is misaligned, of another type or layout than
        the piece takes, or while another thread runs this call (the GIL
        makes the test and the claim one step): the caller's general path
        then runs it. poison: first set every bit of the scratch (tests: a
        kernel that reads scratch it did not write then shows)."""
        cdef unsigned char[::1] buffer
        if self.in_use:
            return False
        self.in_use = True
        try:
            if poison:
                for buffer in self.buffers[:4]:
                    buffer[:] = 0xFF
            if self.plan.double_precision:
                return _run_small_conv2d(self, <double *>self.padded, image, weights, bias,
                                         out) == 1
            return _run_small_conv2d(self, <float *>self.padded, image, weights, bias, out) == 1
        finally:
            self.in_use = False


cdef bint _takes(const Py_buffer *b, char kind, int itemsize) noexcept:
    """The buffer holds aligned native elements of the kind ('f' or 'd')."""
    cdef int i
    if b.format == NULL or b.format[0] != kind or b.format[1] != 0 \
            or <uintptr_t>b.buf % itemsize:
        return False
    for i in range(b.ndim):
        if b.strides[i] % itemsize:
            return False
    return True


cdef void _strides4(const Py_buffer *b, Py_ssize_t *strides) noexcept:
    """Byte strides of a 4-D buffer, or of a 3-D one as one image of four."""
    cdef int i, lead = 4 - b.ndim
    strides[0] = 0
    for i in range(b.ndim):
        strides[lead + i] = b.strides[i]


cdef int _run_small_conv2d(SmallConv2d k, fp_t *padded, object image, object weights,
                           object bias, object out) except -1:
    """1 when done, 0 when it declined (nothing done)."""
    cdef Py_buffer ib, wb, bb, ob
    cdef char kind = b'd' if fp_t is double else b'f'
    cdef int itemsize = sizeof(fp_t)
    cdef const _Conv *g = &k.plan.g
    cdef Py_ssize_t istr[4]
    cdef Py_ssize_t wstr[4]
    cdef Py_ssize_t sstr[4]
    cdef Py_ssize_t ostr[4]
    cdef Py_ssize_t step
    cdef int i, got = 0
    cdef bint ok
    PyObject_GetBuffer(image, &ib, PyBUF_RECORDS_RO)
    got = 1
    try:
        PyObject_GetBuffer(weights, &wb, PyBUF_RECORDS_RO)
        got = 2
        if bias is not None:
            PyObject_GetBuffer(bias, &bb, PyBUF_RECORDS_RO)
        got = 3
        PyObject_GetBuffer(out, &ob, PyBUF_RECORDS)
        got = 4
        ok = _takes(&ib, kind, itemsize) and _takes(&wb, kind, itemsize) \
            and _takes(&ob, kind, itemsize) and (bias is None or _takes(&bb, kind, itemsize)
                                                 and bb.strides[0] == itemsize) \
            and ib.ndim == ob.ndim and (ib.ndim == 4 or ib.ndim == 3 and k.N == 1) \
            and wb.ndim == 4
        if ok and not k.any_weights:   # C-contiguous weights only
            step = itemsize
            for i in range(3, -1, -1):
                ok = ok and (wb.shape[i] == 1 or wb.strides[i] == step)
                step *= wb.shape[i]
        if not ok:
            return 0
        _strides4(&ib, istr)
        _strides4(&ob, ostr)
        for i in range(4):
            sstr[i] = wb.strides[i]
            wstr[i] = wb.strides[i]
        if k.marks != NULL:   # the packed weights': plan.packed_shape, C-contiguous
            wstr[3] = itemsize
            wstr[2] = g.KB * wstr[3]
            wstr[1] = g.R * g.S * wstr[2]
            wstr[0] = g.Cg * wstr[1]
        with nogil:
            if k.marks != NULL:   # packed from `weights` block by block as they run
                memset(k.marks, 0, k.blocks)
            _conv2d_range(g, <const char *>ib.buf if g.H and g.W else NULL, istr,
                          &k.row_map[0], &k.col_map[0],
                          <const fp_t *>k.packed if k.marks != NULL else <const fp_t *>wb.buf,
                          wstr, <const fp_t *>bb.buf if bias is not None else NULL,
                          <char *>ob.buf, ostr, padded, <fp_t *>k.scratch,
                          <fp_t *>k.edge, k.slots, 0, k.N, 0, g.Ho, 0, k.blocks,
                          <const char *>wb.buf if k.marks != NULL else NULL, sstr,
                          k.marks, False)
        return 1
    finally:
        if got >= 4:
            PyBuffer_Release(&ob)
        if got >= 3 and bias is not None:
            PyBuffer_Release(&bb)
        if got >= 2:
            PyBuffer_Release(&wb)
        PyBuffer_Release(&ib)

# ---------------------------------------------------------------------------
# cyconv.ndimage: 1-D and N-d correlation drivers
#
# "Exact" drivers compute in double in exactly SciPy's order of operations
# (NI_Correlate1D's symmetric / antisymmetric / plain sums, NI_Correlate's
# term order, NI_UniformFilter1D's running sum), one multiply and one add per
# term, so integer outputs truncate like SciPy's, bit for bit. Their inner
# loops run over contiguous "lanes" (independent output positions) and are
# vectorized by the compiler; the baseline x86-64 target has no FMA, so no
# multiply-add is fused. The "fast" driver runs the SIMD row kernels (FMA
# where the level has it) for float32/float64 outputs.
# Layouts: a padded block is (outer, n + L - 1, lanes), C-contiguous; its
# output block is (outer, n, lanes).
# ---------------------------------------------------------------------------

cdef enum:
    ALONG_GATHER_ROWS = 64   # rows whose border segments one row-kernel call filters

cdef enum:
    SYMMETRY_NONE = 0
    SYMMETRY_EVEN = 1     # w[c + i] == w[c - i] (within DBL_EPSILON, as SciPy tests it)
    SYMMETRY_ODD = -1     # w[c + i] == -w[c - i]


cdef void _lanes_correlate_exact(const double *p, Py_ssize_t ps,   # padded rows, ps apart
                                 const double *w, Py_ssize_t L, int symmetry,
                                 double *o, Py_ssize_t os,        # output rows, os apart
                                 Py_ssize_t n, Py_ssize_t lanes) noexcept nogil:
    """o[l*os + b] for l < n, b < lanes, as NI_Correlate1D computes each output."""
    cdef Py_ssize_t l, jj, b, c = L // 2
    cdef double wj
    cdef const double *pa
    cdef const double *pb
    cdef double *orow
    for l in range(n):
        orow = o + l * os
        if symmetry != SYMMETRY_NONE:
            pa = p + (l + c) * ps
            wj = w[c]
            for b in range(lanes):
                orow[b] = pa[b] * wj
            for jj in range(-c, 0):
                pa = p + (l + c + jj) * ps
                pb = p + (l + c - jj) * ps
                wj = w[c + jj]
                if symmetry == SYMMETRY_EVEN:
                    for b in range(lanes):
                        orow[b] = orow[b] + (pa[b] + pb[b]) * wj
                else:
                    for b in range(lanes):
                        orow[b] = orow[b] + (pa[b] - pb[b]) * wj
        else:
            pa = p + (l + L - 1) * ps
            wj = w[L - 1]
            for b in range(lanes):
                orow[b] = pa[b] * wj
            for jj in range(L - 1):
                pa = p + (l + jj) * ps
                wj = w[jj]
                for b in range(lanes):
                    orow[b] = orow[b] + pa[b] * wj


def ndimage_correlate1d_lanes(const double[:, :, ::1] padded,  # IN  outer x (n+L-1) x lanes
                              const double[::1] weights,       # IN  L
                              int symmetry,
                              double[:, :, ::1] out,            # OUT outer x n x lanes
                              Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t b0, Py_ssize_t b1):
    """Exact 1-D correlation down axis 1, for outer blocks o0..o1, lanes b0..b1."""
    cdef Py_ssize_t o, lanes = padded.shape[2]
    with nogil:
        for o in range(o0, o1):
            _lanes_correlate_exact(&padded[o, 0, b0], lanes, &weights[0], weights.shape[0],
                                   symmetry, &out[o, 0, b0], lanes, out.shape[1], b1 - b0)


def ndimage_correlate1d_rows(const double[:, ::1] padded,   # IN  rows x (n+L-1)
                             const double[::1] weights,     # IN  L
                             int symmetry,
                             double[:, ::1] out,             # OUT rows x n
                             Py_ssize_t r0, Py_ssize_t r1):
    """Exact 1-D correlation along each row (ndimage_exact.h's cyc_exact_1d:
    the AVX2 copy wherever the kernel level in use is above the baseline)."""
    cdef Py_ssize_t r
    cdef bint avx2 = _table != cyc_kernels(0)
    with nogil:
        for r in range(r0, r1):
            if avx2:
                cyc_exact_1d_avx2(&padded[r, 0], &weights[0], weights.shape[0], symmetry,
                                  &out[r, 0], out.shape[1])
            else:
                cyc_exact_1d_sse2(&padded[r, 0], &weights[0], weights.shape[0], symmetry,
                                  &out[r, 0], out.shape[1])


def ndimage_uniform1d_lanes(const double[:, :, ::1] padded,  # IN  outer x (n+size-1) x lanes
                            Py_ssize_t size,
                            double[:, :, ::1] out,            # OUT outer x n x lanes
                            double[::1] total,                # scratch >= b1 - b0
                            Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t b0, Py_ssize_t b1):
    """NI_UniformFilter1D's running sum down axis 1 (divided by size at each
    output), every lane in step."""
    cdef Py_ssize_t o, l, b, n = out.shape[1], nb = b1 - b0
    cdef double d = <double>size
    cdef const double *p
    cdef double *t = &total[0]
    with nogil:
        for o in range(o0, o1):
            for b in range(nb):
                t[b] = 0.0
            for l in range(size):
                p = &padded[o, l, b0]
                for b in range(nb):
                    t[b] = t[b] + p[b]
            for b in range(nb):
                out[o, 0, b0 + b] = t[b] / d
            for l in range(1, n):
                for b in range(nb):
                    t[b] = t[b] + (padded[o, l + size - 1, b0 + b] - padded[o, l - 1, b0 + b])
                    out[o, l, b0 + b] = t[b] / d


def ndimage_uniform1d_rows(const double[:, ::1] padded,  # IN  rows x (n+size-1)
                           Py_ssize_t size,
                           double[:, ::1] out,            # OUT rows x n
                           Py_ssize_t r0, Py_ssize_t r1):
    """NI_UniformFilter1D's running sum along each row (divided by size at each output)."""
    cdef Py_ssize_t r, l, n = out.shape[1]
    cdef double t, d = <double>size
    with nogil:
        for r in range(r0, r1):
            t = 0.0
            for l in range(size):
                t = t + padded[r, l]
            out[r, 0] = t / d
            for l in range(1, n):
                t = t + (padded[r, l + size - 1] - padded[r, l - 1])
                out[r, l] = t / d


cdef extern from "ndimage_exact.h" nogil:
    void cyc_exact_line_sse2(const double *src, const Py_ssize_t *off, const double *w,
                             Py_ssize_t T, double *out, Py_ssize_t n)
    void cyc_exact_line_avx2(const double *src, const Py_ssize_t *off, const double *w,
                             Py_ssize_t T, double *out, Py_ssize_t n)
    void cyc_exact_1d_sse2(const double *src, const double *w, Py_ssize_t L, int symmetry,
                           double *out, Py_ssize_t n)
    void cyc_exact_1d_avx2(const double *src, const double *w, Py_ssize_t L, int symmetry,
                           double *out, Py_ssize_t n)
    void cyc_exact_1d_lanes_sse2(const double *src, Py_ssize_t ts, const double *w,
                                 Py_ssize_t L, int symmetry, double *out, Py_ssize_t n)
    void cyc_exact_1d_lanes_avx2(const double *src, Py_ssize_t ts, const double *w,
                                 Py_ssize_t L, int symmetry, double *out, Py_ssize_t n)
    void cyc_divide_sse2(double *x, double d, Py_ssize_t n)
    void cyc_divide_avx2(double *x, double d, Py_ssize_t n)
    void cyc_scale_sse2(double *x, double r, Py_ssize_t n)
    void cyc_scale_avx2(double *x, double r, Py_ssize_t n)
    void cyc_u8_to_double(const uint8_t *p, Py_ssize_t step, double *dst, Py_ssize_t n, int avx2)
    void cyc_i8_to_double(const int8_t *p, Py_ssize_t step, double *dst, Py_ssize_t n, int avx2)
    void cyc_u16_to_double(const uint16_t *p, Py_ssize_t step, double *dst, Py_ssize_t n, int avx2)
    void cyc_i16_to_double(const int16_t *p, Py_ssize_t step, double *dst, Py_ssize_t n, int avx2)
    void cyc_double_to_u8(const double *src, uint8_t *p, Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_double_to_i8(const double *src, int8_t *p, Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_double_to_u16(const double *src, uint16_t *p, Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_double_to_i16(const double *src, int16_t *p, Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_double_to_i32(const double *src, int32_t *p, Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_prefix_sums_2(uint32_t *a, uint32_t *b, Py_ssize_t m)
    void cyc_window_means_u8(const uint32_t *prefix, Py_ssize_t size, double r, uint8_t *p,
                             Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_window_means_i8(const uint32_t *prefix, Py_ssize_t size, double r, int8_t *p,
                             Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_window_means_u16(const uint32_t *prefix, Py_ssize_t size, double r, uint16_t *p,
                              Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_window_means_i16(const uint32_t *prefix, Py_ssize_t size, double r, int16_t *p,
                              Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_window_means_i32(const uint32_t *prefix, Py_ssize_t size, double r, int32_t *p,
                              Py_ssize_t step, Py_ssize_t n, int avx2)
    void cyc_u8_running(const uint8_t *enter, double enter_fill, const uint8_t *leave,
                        double leave_fill, Py_ssize_t step, double *total, Py_ssize_t n, int avx2)
    void cyc_i8_running(const int8_t *enter, double enter_fill, const int8_t *leave,
                        double leave_fill, Py_ssize_t step, double *total, Py_ssize_t n, int avx2)
    void cyc_u16_running(const uint16_t *enter, double enter_fill, const uint16_t *leave,
                         double leave_fill, Py_ssize_t step, double *total, Py_ssize_t n, int avx2)
    void cyc_i16_running(const int16_t *enter, double enter_fill, const int16_t *leave,
                         double leave_fill, Py_ssize_t step, double *total, Py_ssize_t n, int avx2)
    void cyc_scaled_to_u8(const double *src, double r, uint8_t *p, Py_ssize_t step, Py_ssize_t n,
                          int avx2)
    void cyc_scaled_to_i8(const double *src, double r, int8_t *p, Py_ssize_t step, Py_ssize_t n,
                          int avx2)
    void cyc_scaled_to_u16(const double *src, double r, uint16_t *p, Py_ssize_t step,
                           Py_ssize_t n, int avx2)
    void cyc_scaled_to_i16(const double *src, double r, int16_t *p, Py_ssize_t step,
                           Py_ssize_t n, int avx2)
    void cyc_scaled_to_i32(const double *src, double r, int32_t *p, Py_ssize_t step,
                           Py_ssize_t n, int avx2)


# Integer lines the exact 1-D passes read and write in place (no padded double
# copy of the image, no double result): each line is converted to double in
# scratch, summed in SciPy's order, and truncated into the output through
# int32. The Python layer calls them only where every sum is below 2**30 in
# magnitude, so the int32 conversion is exact; narrowing it wraps like the C
# cast x86 compilers make of SciPy's double (cvttsd2si to 32 bits).
ctypedef fused line_in_t:
    uint8_t
    int8_t
    uint16_t
    int16_t

ctypedef fused line_out_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    int32_t


cdef inline void _line_to_double(const line_in_t *p, Py_ssize_t step, double *dst,
                                 Py_ssize_t n) noexcept nogil:
    """dst[j] = p[j * step] for j < n (ndimage_exact.h, AVX2 above the baseline)."""
    cdef int avx2 = _table != cyc_kernels(0)
    if line_in_t is uint8_t:
        cyc_u8_to_double(p, step, dst, n, avx2)
    elif line_in_t is int8_t:
        cyc_i8_to_double(p, step, dst, n, avx2)
    elif line_in_t is uint16_t:
        cyc_u16_to_double(p, step, dst, n, avx2)
    else:
        cyc_i16_to_double(p, step, dst, n, avx2)


cdef inline void _line_from_double(const double *src, line_out_t *p, Py_ssize_t step,
                                   Py_ssize_t n) noexcept nogil:
    """p[j * step] = src[j] truncated toward zero, through int32, for j < n."""
    cdef int avx2 = _table != cyc_kernels(0)
    if line_out_t is uint8_t:
        cyc_double_to_u8(src, p, step, n, avx2)
    elif line_out_t is int8_t:
        cyc_double_to_i8(src, p, step, n, avx2)
    elif line_out_t is uint16_t:
        cyc_double_to_u16(src, p, step, n, avx2)
    elif line_out_t is int16_t:
        cyc_double_to_i16(src, p, step, n, avx2)
    else:
        cyc_double_to_i32(src, p, step, n, avx2)


cdef inline void _padded_entries(const line_in_t *p, Py_ssize_t step, const int64_t *index,
                                 double fill, double *dst, Py_ssize_t q0,
                                 Py_ssize_t q1) noexcept nogil:
    """dst[q] for the border positions q0 <= q < q1 of a padded line: the
    sample index[q] says, or the fill where it is negative."""
    cdef Py_ssize_t q
    for q in range(q0, q1):
        dst[q] = fill if index[q] < 0 else <double>p[index[q] * step]


cdef inline void _padded_line(const line_in_t *p, Py_ssize_t step, const int64_t *index,
                              double fill, Py_ssize_t before, Py_ssize_t n, Py_ssize_t m,
                              double *dst) noexcept nogil:
    """The m = n + L - 1 padded samples of the line p (n samples `step` apart)
    as doubles: its n samples from dst[before], the border as index says."""
    _padded_entries(p, step, index, fill, dst, 0, before)
    _line_to_double(p, step, dst + before, n)
    _padded_entries(p, step, index, fill, dst, before + n, m)


cdef inline const line_in_t *_in_row(const line_in_t *p, Py_ssize_t r,
                                     Py_ssize_t stride) noexcept nogil:
    """Row r of an image of rows `stride` bytes apart."""
    return <const line_in_t *>(<const char *>p + r * stride)


cdef inline line_out_t *_out_row(line_out_t *p, Py_ssize_t r, Py_ssize_t stride) noexcept nogil:
    """Row r of an output of rows `stride` bytes apart."""
    return <line_out_t *>(<char *>p + r * stride)


# The line passes work on pointers: rows `*_row` bytes apart, samples along a
# row `step` elements apart. The `def` functions below unpack memoryviews for
# them; SmallLines calls them on a kept pass's C-contiguous images.

cdef void _exact_rows(const line_in_t *src, Py_ssize_t src_row, Py_ssize_t step,
                      const int64_t *index, Py_ssize_t before, double fill,
                      const double *weights, Py_ssize_t L, int symmetry,
                      line_out_t *out, Py_ssize_t out_row, Py_ssize_t out_step, Py_ssize_t n,
                      double *scratch, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows r0..r1 of an exact 1-D correlation along the rows (cyc_exact_1d),
    each row padded, summed and stored through scratch (>= 2n + L - 1)."""
    cdef Py_ssize_t r, m = n + L - 1
    cdef double *line = scratch
    cdef double *sums = scratch + m
    cdef bint avx2 = _table != cyc_kernels(0)
    for r in range(r0, r1):
        _padded_line(_in_row(src, r, src_row), step, index, fill, before, n, m, line)
        if avx2:
            cyc_exact_1d_avx2(line, weights, L, symmetry, sums, n)
        else:
            cyc_exact_1d_sse2(line, weights, L, symmetry, sums, n)
        _line_from_double(sums, _out_row(out, r, out_row), out_step, n)


def ndimage_exact_rows(const line_in_t[:, :] src,      # IN  rows x n
                       const int64_t[::1] index,         # IN  n + L - 1 source columns, -1 fill
                       Py_ssize_t before, double fill,
                       const double[::1] weights,        # IN  L
                       int symmetry,
                       line_out_t[:, :] out,             # OUT rows x n (may be src itself)
                       double[::1] scratch,              # >= 2n + L - 1
                       Py_ssize_t r0, Py_ssize_t r1):
    """Rows r0..r1 of an exact 1-D correlation along the rows (_exact_rows)."""
    if r1 <= r0 or src.shape[1] == 0:
        return
    with nogil:
        _exact_rows(&src[0, 0], src.strides[0], src.strides[1] // <Py_ssize_t>sizeof(line_in_t),
                    &index[0], before, fill, &weights[0], weights.shape[0], symmetry,
                    &out[0, 0], out.strides[0],
                    out.strides[1] // <Py_ssize_t>sizeof(line_out_t), src.shape[1],
                    &scratch[0], r0, r1)


cdef inline void _means(double *sums, Py_ssize_t size, double reciprocal, Py_ssize_t n,
                        bint avx2) noexcept nogil:
    """sums / size in place, as sums * reciprocal if that is given (not 0)."""
    if reciprocal == 0.0:
        if avx2:
            cyc_divide_avx2(sums, <double>size, n)
        else:
            cyc_divide_sse2(sums, <double>size, n)
    elif avx2:
        cyc_scale_avx2(sums, reciprocal, n)
    else:
        cyc_scale_sse2(sums, reciprocal, n)


cdef void _uniform_rows(const line_in_t *src, Py_ssize_t src_row, Py_ssize_t step,
                        const int64_t *index, Py_ssize_t before, double fill, Py_ssize_t size,
                        double reciprocal, line_out_t *out, Py_ssize_t out_row,
                        Py_ssize_t out_step, Py_ssize_t n, double *scratch, Py_ssize_t r0,
                        Py_ssize_t r1) noexcept nogil:
    """Rows r0..r1 of NI_UniformFilter1D's running mean along the rows (the
    sum of the first window, then one sample in and one out per output,
    each output sum / size, or sum * reciprocal where that truncates to the
    same integer), through scratch (>= 4 (2n + size - 1)) like _exact_rows.
    Four rows go in step: each row's sums are one chain of dependent adds,
    and four chains keep the adder busy."""
    cdef Py_ssize_t r, i, k, l, m = n + size - 1
    cdef double *lines = scratch             # four padded rows, m apart
    cdef double *sums = scratch + 4 * m      # their sums, n apart
    cdef double t0, t1, t2, t3
    cdef bint avx2 = _table != cyc_kernels(0)
    cdef double *a
    cdef double *b
    cdef double *c
    cdef double *e
    for r in range(r0, r1, 4):
        k = min(4, r1 - r)
        for i in range(k):
            _padded_line(_in_row(src, r + i, src_row), step, index, fill, before, n, m,
                         lines + i * m)
        for i in range(k, 4):            # (a short last group sums copies of its first row)
            memcpy(lines + i * m, lines, m * sizeof(double))
        a, b, c, e = lines, lines + m, lines + 2 * m, lines + 3 * m
        t0 = t1 = t2 = t3 = 0.0
        for l in range(size):
            t0 = t0 + a[l]
            t1 = t1 + b[l]
            t2 = t2 + c[l]
            t3 = t3 + e[l]
        sums[0], sums[n], sums[2 * n], sums[3 * n] = t0, t1, t2, t3
        for l in range(1, n):
            t0 = t0 + (a[l + size - 1] - a[l - 1])
            t1 = t1 + (b[l + size - 1] - b[l - 1])
            t2 = t2 + (c[l + size - 1] - c[l - 1])
            t3 = t3 + (e[l + size - 1] - e[l - 1])
            sums[l], sums[n + l], sums[2 * n + l], sums[3 * n + l] = t0, t1, t2, t3
        for i in range(k):
            _means(sums + i * n, size, reciprocal, n, avx2)
            _line_from_double(sums + i * n, _out_row(out, r + i, out_row), out_step, n)


def ndimage_uniform_rows(const line_in_t[:, :] src,     # IN  rows x n
                         const int64_t[::1] index,         # IN  n + size - 1 source columns, -1 fill
                         Py_ssize_t before, double fill, Py_ssize_t size,
                         double reciprocal,                # ndimage._reciprocal_above(size) or 0
                         line_out_t[:, :] out,             # OUT rows x n (may be src itself)
                         double[::1] scratch,              # >= 4 (2n + size - 1)
                         Py_ssize_t r0, Py_ssize_t r1):
    """Rows r0..r1 of NI_UniformFilter1D's running mean along the rows (_uniform_rows)."""
    if r1 <= r0 or src.shape[1] == 0:
        return
    with nogil:
        _uniform_rows(&src[0, 0], src.strides[0],
                      src.strides[1] // <Py_ssize_t>sizeof(line_in_t), &index[0], before, fill,
                      size, reciprocal, &out[0, 0], out.strides[0],
                      out.strides[1] // <Py_ssize_t>sizeof(line_out_t), src.shape[1],
                      &scratch[0], r0, r1)


cdef inline void _padded_ints(const line_in_t *p, Py_ssize_t step, const int64_t *index,
                              int32_t fill, Py_ssize_t before, Py_ssize_t n, Py_ssize_t m,
                              int32_t *dst) noexcept nogil:
    """_padded_line's m padded samples of the line p, as int32."""
    cdef Py_ssize_t q
    for q in range(before):
        dst[q] = fill if index[q] < 0 else <int32_t>p[index[q] * step]
    if step == 1:
        for q in range(n):
            dst[before + q] = <int32_t>p[q]
    else:
        for q in range(n):
            dst[before + q] = <int32_t>p[q * step]
    for q in range(before + n, m):
        dst[q] = fill if index[q] < 0 else <int32_t>p[index[q] * step]


cdef inline void _window_means(const uint32_t *prefix, Py_ssize_t size, double reciprocal,
                               line_out_t *p, Py_ssize_t step, Py_ssize_t n) noexcept nogil:
    """p[j * step] = the mean of window j from the prefix sums, truncated
    (ndimage_exact.h's CYC_WINDOW_MEANS), for j < n."""
    cdef int avx2 = _table != cyc_kernels(0)
    if line_out_t is uint8_t:
        cyc_window_means_u8(prefix, size, reciprocal, p, step, n, avx2)
    elif line_out_t is int8_t:
        cyc_window_means_i8(prefix, size, reciprocal, p, step, n, avx2)
    elif line_out_t is uint16_t:
        cyc_window_means_u16(prefix, size, reciprocal, p, step, n, avx2)
    elif line_out_t is int16_t:
        cyc_window_means_i16(prefix, size, reciprocal, p, step, n, avx2)
    else:
        cyc_window_means_i32(prefix, size, reciprocal, p, step, n, avx2)


cdef void _window_means_rows(const line_in_t *src, Py_ssize_t src_row, Py_ssize_t step,
                             const int64_t *index, Py_ssize_t before, double fill,
                             Py_ssize_t size, double reciprocal, line_out_t *out,
                             Py_ssize_t out_row, Py_ssize_t out_step, Py_ssize_t n,
                             double *scratch, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows r0..r1 of _uniform_rows' running means where every window sums to
    an integer below 2**31 in magnitude (ndimage._int32_windows): each sum is
    the difference of two of the row's prefix sums (mod 2**32). The prefix
    sums overwrite the padded samples they add up (stores and loads at other
    offsets stalled on false 4 KB aliasing), four rows at a time; scratch
    holds >= 2 (n + size + 32) doubles."""
    cdef Py_ssize_t r, i, k, m = n + size - 1
    cdef Py_ssize_t pitch = (m + 1 + 15) // 16 * 16 + 16     # four rows, a cache line between
    cdef uint32_t *a = <uint32_t *>scratch     # row i: 0 then its m samples, at i * pitch
    cdef uint32_t *b = a + pitch
    cdef uint32_t *c = a + 2 * pitch
    cdef uint32_t *e = a + 3 * pitch
    cdef int32_t int_fill = <int32_t>fill
    for r in range(r0, r1, 4):
        k = min(4, r1 - r)
        for i in range(k):
            a[i * pitch] = 0
            _padded_ints(_in_row(src, r + i, src_row), step, index, int_fill, before, n, m,
                         <int32_t *>(a + i * pitch + 1))
        for i in range(k, 4):            # (a short last group sums copies of its first row)
            memcpy(a + i * pitch, a, (m + 1) * sizeof(uint32_t))
        cyc_prefix_sums_2(a, b, m + 1)   # a[q] = the sum of the first q samples
        cyc_prefix_sums_2(c, e, m + 1)
        for i in range(k):
            _window_means(a + i * pitch, size, reciprocal, _out_row(out, r + i, out_row),
                          out_step, n)


def ndimage_window_means_rows(const line_in_t[:, :] src,     # IN  rows x n
                              const int64_t[::1] index,         # IN  n + size - 1 columns, -1 fill
                              Py_ssize_t before, double fill,   # (an integer here)
                              Py_ssize_t size,
                              double reciprocal,                # ndimage._reciprocal_above(size)
                              line_out_t[:, :] out,             # OUT rows x n (may be src itself)
                              double[::1] scratch,              # >= 2 (n + size + 32)
                              Py_ssize_t r0, Py_ssize_t r1):
    """Rows r0..r1 of running means from prefix sums (_window_means_rows)."""
    if r1 <= r0 or src.shape[1] == 0:
        return
    with nogil:
        _window_means_rows(&src[0, 0], src.strides[0],
                           src.strides[1] // <Py_ssize_t>sizeof(line_in_t), &index[0], before,
                           fill, size, reciprocal, &out[0, 0], out.strides[0],
                           out.strides[1] // <Py_ssize_t>sizeof(line_out_t), src.shape[1],
                           &scratch[0], r0, r1)


cdef inline void _running(const line_in_t *enter, double enter_fill, const line_in_t *leave,
                          double leave_fill, Py_ssize_t step, double *total,
                          Py_ssize_t n) noexcept nogil:
    """total[j] = total[j] + (enter[j * step] - leave[j * step]) for j < n, a
    NULL row its fill (ndimage_exact.h's running sums)."""
    cdef int avx2 = _table != cyc_kernels(0)
    if line_in_t is uint8_t:
        cyc_u8_running(enter, enter_fill, leave, leave_fill, step, total, n, avx2)
    elif line_in_t is int8_t:
        cyc_i8_running(enter, enter_fill, leave, leave_fill, step, total, n, avx2)
    elif line_in_t is uint16_t:
        cyc_u16_running(enter, enter_fill, leave, leave_fill, step, total, n, avx2)
    else:
        cyc_i16_running(enter, enter_fill, leave, leave_fill, step, total, n, avx2)


cdef inline void _line_of_means(double *sums, Py_ssize_t size, double reciprocal,
                                line_out_t *p, Py_ssize_t step, double *scratch,
                                Py_ssize_t n) noexcept nogil:
    """p[j * step] = sums[j] / size truncated (_means) for j < n: one pass
    over the sums where the reciprocal serves, a division in scratch if not."""
    cdef int avx2 = _table != cyc_kernels(0)
    if reciprocal == 0.0:
        memcpy(scratch, sums, n * sizeof(double))
        _means(scratch, size, 0.0, n, avx2)
        _line_from_double(scratch, p, step, n)
    elif line_out_t is uint8_t:
        cyc_scaled_to_u8(sums, reciprocal, p, step, n, avx2)
    elif line_out_t is int8_t:
        cyc_scaled_to_i8(sums, reciprocal, p, step, n, avx2)
    elif line_out_t is uint16_t:
        cyc_scaled_to_u16(sums, reciprocal, p, step, n, avx2)
    elif line_out_t is int16_t:
        cyc_scaled_to_i16(sums, reciprocal, p, step, n, avx2)
    else:
        cyc_scaled_to_i32(sums, reciprocal, p, step, n, avx2)


cdef inline const line_in_t *_lane_row(const line_in_t *src, Py_ssize_t row,
                                       Py_ssize_t src_row) noexcept nogil:
    """Source row `row` of a block of lanes, NULL for the fill (row -1)."""
    if row < 0:
        return NULL
    return _in_row(src, row, src_row)


cdef void _uniform_lanes(const line_in_t *src, Py_ssize_t src_row, Py_ssize_t step,
                         const int64_t *index, double fill, Py_ssize_t size, double reciprocal,
                         line_out_t *out, Py_ssize_t out_row, Py_ssize_t out_step,
                         Py_ssize_t n, Py_ssize_t B, double *scratch) noexcept nogil:
    """B lanes (from src and out, each a block's first lane) of
    NI_UniformFilter1D's running mean down n rows, every lane in step
    (_uniform_rows' sums), the rows read and written in place; scratch >= 2B."""
    cdef Py_ssize_t l, b
    cdef double *total = scratch
    cdef double *means = scratch + B
    for b in range(B):
        total[b] = 0.0
    for l in range(size):            # the first window: nothing leaves (x - 0.0 is x)
        _running(_lane_row(src, index[l], src_row), fill, NULL, 0.0, step, total, B)
    _line_of_means(total, size, reciprocal, out, out_step, means, B)
    for l in range(1, n):
        _running(_lane_row(src, index[l + size - 1], src_row), fill,
                 _lane_row(src, index[l - 1], src_row), fill, step, total, B)
        _line_of_means(total, size, reciprocal, _out_row(out, l, out_row), out_step, means, B)


def ndimage_uniform_lanes(const line_in_t[:, :, :] src,   # IN  outer x n x lanes
                          const int64_t[::1] index,         # IN  n + size - 1 source rows, -1 fill
                          double fill, Py_ssize_t size,
                          double reciprocal,                # ndimage._reciprocal_above(size) or 0
                          line_out_t[:, :, :] out,          # OUT outer x n x lanes, apart from src
                          double[::1] scratch,              # >= 2 (b1 - b0)
                          Py_ssize_t o, Py_ssize_t b0, Py_ssize_t b1):
    """Lanes b0..b1 of block o of NI_UniformFilter1D's running mean down
    axis 1 (_uniform_lanes)."""
    if b1 <= b0 or src.shape[1] == 0:
        return
    with nogil:
        _uniform_lanes(&src[o, 0, b0], src.strides[1],
                       src.strides[2] // <Py_ssize_t>sizeof(line_in_t), &index[0], fill, size,
                       reciprocal, &out[o, 0, b0], out.strides[1],
                       out.strides[2] // <Py_ssize_t>sizeof(line_out_t), src.shape[1], b1 - b0,
                       &scratch[0])


cdef void _exact_lanes(const line_in_t *src, Py_ssize_t src_row, Py_ssize_t step,
                       const int64_t *index, double fill, const double *weights, Py_ssize_t L,
                       int symmetry, line_out_t *out, Py_ssize_t out_row, Py_ssize_t out_step,
                       Py_ssize_t n, Py_ssize_t B, double *scratch,
                       Py_ssize_t piece) noexcept nogil:
    """B lanes (from src and out, each a block's first lane) of an exact 1-D
    correlation down n rows (cyc_exact_1d_lanes), `piece` output rows at a
    time: their padded input rows converted into scratch (>= (piece + L) *
    (B + 8)), each output row summed into its last row. The rows lie a cache
    line more than the block apart: 2 KB apart, a tap's rows fell into two
    L1 sets (Zen 4, L = 25: 7.9 GMAC/s)."""
    cdef Py_ssize_t i0, k, l, P, b, row, pitch = B + 8
    cdef double *rows = scratch
    cdef double *sums = scratch + (piece + L - 1) * pitch
    cdef double *dst
    cdef bint avx2 = _table != cyc_kernels(0)
    i0 = 0
    while i0 < n:
        P = min(piece, n - i0)
        for k in range(P + L - 1):
            row, dst = index[i0 + k], rows + k * pitch
            if row < 0:
                for b in range(B):
                    dst[b] = fill
            else:
                _line_to_double(_in_row(src, row, src_row), step, dst, B)
        for l in range(P):
            if avx2:
                cyc_exact_1d_lanes_avx2(rows + l * pitch, pitch, weights, L, symmetry, sums, B)
            else:
                cyc_exact_1d_lanes_sse2(rows + l * pitch, pitch, weights, L, symmetry, sums, B)
            _line_from_double(sums, _out_row(out, i0 + l, out_row), out_step, B)
        i0 += piece


def ndimage_exact_lanes(const line_in_t[:, :, :] src,   # IN  outer x n x lanes
                        const int64_t[::1] index,         # IN  n + L - 1 source rows, -1 fill
                        double fill,
                        const double[::1] weights,        # IN  L
                        int symmetry,
                        line_out_t[:, :, :] out,          # OUT outer x n x lanes, apart from src
                        double[::1] scratch,              # >= (piece + L) * (b1 - b0 + 8)
                        Py_ssize_t piece,
                        Py_ssize_t o, Py_ssize_t b0, Py_ssize_t b1):
    """Lanes b0..b1 of block o of an exact 1-D correlation down axis 1 (_exact_lanes)."""
    if b1 <= b0 or src.shape[1] == 0:
        return
    with nogil:
        _exact_lanes(&src[o, 0, b0], src.strides[1],
                     src.strides[2] // <Py_ssize_t>sizeof(line_in_t), &index[0], fill,
                     &weights[0], weights.shape[0], symmetry, &out[o, 0, b0], out.strides[1],
                     out.strides[2] // <Py_ssize_t>sizeof(line_out_t), src.shape[1], b1 - b0,
                     &scratch[0], piece)


# A small exact pass kept between calls (ndimage._small_lines): one call
# along the rows or down them of a C-contiguous 2-D image, every constant
# resolved once, so a call unpacks only its two images (a 16 x 16 uint8 pass
# spent most of its 1.7 us converting the memoryviews of the `def` kernels).

cdef struct _LinePass:
    const int64_t *index
    const double *weights        # NULL: a running mean of `size`
    double *scratch
    Py_ssize_t rows, cols, L, size, before, piece
    double fill, reciprocal
    int symmetry
    int axis                     # 1 along the rows, 0 down them
    bint window_means            # along the rows from int32 prefix sums


cdef void _line_pass(const _LinePass *p, const line_in_t *src,
                     line_out_t *out) noexcept nogil:
    cdef Py_ssize_t n = p.cols
    cdef Py_ssize_t src_row = n * sizeof(line_in_t), out_row = n * sizeof(line_out_t)
    if p.axis == 1:
        if p.weights != NULL:
            _exact_rows(src, src_row, 1, p.index, p.before, p.fill, p.weights, p.L, p.symmetry,
                        out, out_row, 1, n, p.scratch, 0, p.rows)
        elif p.window_means:
            _window_means_rows(src, src_row, 1, p.index, p.before, p.fill, p.size,
                               p.reciprocal, out, out_row, 1, n, p.scratch, 0, p.rows)
        else:
            _uniform_rows(src, src_row, 1, p.index, p.before, p.fill, p.size, p.reciprocal,
                          out, out_row, 1, n, p.scratch, 0, p.rows)
    elif p.weights != NULL:
        _exact_lanes(src, src_row, 1, p.index, p.fill, p.weights, p.L, p.symmetry, out, out_row,
                     1, p.rows, n, p.scratch, p.piece)
    else:
        _uniform_lanes(src, src_row, 1, p.index, p.fill, p.size, p.reciprocal, out, out_row, 1,
                       p.rows, n, p.scratch)


cdef void _line_pass_to(const _LinePass *p, const line_in_t *src, void *out,
                        int out_code) noexcept nogil:
    # the output's type: LINE_TYPES' codes
    if out_code == 0:
        _line_pass(p, src, <uint8_t *>out)
    elif out_code == 1:
        _line_pass(p, src, <int8_t *>out)
    elif out_code == 2:
        _line_pass(p, src, <uint16_t *>out)
    elif out_code == 3:
        _line_pass(p, src, <int16_t *>out)
    else:
        _line_pass(p, src, <int32_t *>out)


# The codes of SmallLines' sample types, by NumPy type character.
LINE_TYPES = {"B": 0, "b": 1, "H": 2, "h": 3, "i": 4}


cdef class SmallLines:
    """A small exact 1-D pass between C-contiguous 2-D 8/16-bit images kept
    between calls (built by ndimage._small_lines): its index map, weights,
    fill and scratch resolved once."""
    cdef _LinePass p
    cdef const int64_t[::1] index
    cdef const double[::1] weights
    cdef double[::1] scratch
    cdef int in_code, out_code
    cdef Py_ssize_t in_bytes, out_bytes      # of a whole image
    cdef bint in_use                         # another thread runs it: run() declines

    def __init__(self, int in_code, int out_code, const int64_t[::1] index, weights,
                 double[::1] scratch, Py_ssize_t rows, Py_ssize_t cols, int axis,
                 Py_ssize_t before, double fill, Py_ssize_t size, double reciprocal,
                 int symmetry, Py_ssize_t piece, bint window_means):
        cdef Py_ssize_t[5] itemsize = [1, 1, 2, 2, 4]
        self.index, self.scratch = index, scratch
        self.p.index, self.p.scratch = &self.index[0], &self.scratch[0]
        if weights is None:
            self.p.weights, self.p.L = NULL, size
        else:
            self.weights = weights
            self.p.weights, self.p.L = &self.weights[0], self.weights.shape[0]
        self.p.rows, self.p.cols, self.p.axis, self.p.before = rows, cols, axis, before
        self.p.fill, self.p.size, self.p.reciprocal = fill, size, reciprocal
        self.p.symmetry, self.p.piece, self.p.window_means = symmetry, piece, window_means
        self.in_code, self.out_code = in_code, out_code
        self.in_bytes = rows * cols * itemsize[in_code]
        self.out_bytes = rows * cols * itemsize[out_code]

    def run(self, src, out):
        """Filter `src` into `out` (C-contiguous, of the kept types and shape;
        checked by the caller). False, with nothing done, when the two
        overlap (but for the same image along the rows, which reads each row
        whole before writing it) or while another thread is running this
        pass (the GIL makes the test and the claim one step)."""
        if self.in_use:
            return False
        self.in_use = True
        try:
            return _run_small_lines(self, src, out) == 1
        finally:
            self.in_use = False


cdef int _source_and_output(object src, object out, Py_buffer *sb,
                            Py_buffer *ob) except -1:
    """The buffers of a kept pass's C-contiguous source and writable output
    (both released if the second cannot be had)."""
    PyObject_GetBuffer(src, sb, PyBUF_C_CONTIGUOUS)
    try:
        PyObject_GetBuffer(out, ob, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    except:
        PyBuffer_Release(sb)
        raise
    return 0


cdef int _run_small_lines(SmallLines k, object src, object out) except -1:
    """1 when done, 0 when it declined (nothing done)."""
    cdef Py_buffer sb, ob
    _source_and_output(src, out, &sb, &ob)
    cdef const char *s = <const char *>sb.buf
    cdef char *o = <char *>ob.buf
    cdef bint overlap = s < o + ob.len and o < s + sb.len
    if sb.len != k.in_bytes or ob.len != k.out_bytes or overlap and not (
            k.p.axis == 1 and s == o and k.in_bytes == k.out_bytes):
        PyBuffer_Release(&ob)
        PyBuffer_Release(&sb)
        return 0
    with nogil:
        if k.in_code == 0:
            _line_pass_to(&k.p, <const uint8_t *>s, o, k.out_code)
        elif k.in_code == 1:
            _line_pass_to(&k.p, <const int8_t *>s, o, k.out_code)
        elif k.in_code == 2:
            _line_pass_to(&k.p, <const uint16_t *>s, o, k.out_code)
        else:
            _line_pass_to(&k.p, <const int16_t *>s, o, k.out_code)
    PyBuffer_Release(&ob)
    PyBuffer_Release(&sb)
    return 1


def ndimage_correlate_lines(const double[::1] padded,      # IN  the padded N-d array, flat
                            const int64_t[::1] line_start,  # IN  flat index of each output line's first term
                            const Py_ssize_t[::1] offsets,  # IN  flat offset of each term
                            const double[::1] weights,      # IN  one weight per term, C order
                            double[:, ::1] out,              # OUT lines x line length
                            Py_ssize_t r0, Py_ssize_t r1):
    """Exact N-d correlation: out[r, j] = sum_t weights[t] * padded[line_start[r] + offsets[t] + j],
    summed from 0.0 in term order like NI_Correlate (which has dropped |w| <= DBL_EPSILON)."""
    cdef Py_ssize_t r, j, n = out.shape[1], T = offsets.shape[0]
    # the AVX2 copy wherever the kernel level in use is above the baseline
    cdef bint avx2 = _table != cyc_kernels(0)
    with nogil:
        for r in range(r0, r1):
            if T == 0:
                for j in range(n):
                    out[r, j] = 0.0
            elif avx2:
                cyc_exact_line_avx2(&padded[0] + line_start[r], &offsets[0], &weights[0], T,
                                    &out[r, 0], n)
            else:
                cyc_exact_line_sse2(&padded[0] + line_start[r], &offsets[0], &weights[0], T,
                                    &out[r, 0], n)


def ndimage_pad_plane(const line_in_t[:, :] src,        # IN  H x W
                      const int64_t[::1] row_map,          # IN  padded rows' source rows, -1 fill
                      const int64_t[::1] col_map,          # IN  padded columns' sources, -1 fill
                      Py_ssize_t left, double fill,
                      double[:, ::1] padded):               # OUT len(row_map) x len(col_map)
    """The plane src padded as the index maps say, in double: each padded row
    a source row through _padded_line (its columns from `left` on), or the fill."""
    cdef Py_ssize_t i, j, n = src.shape[1], m = padded.shape[1]
    cdef Py_ssize_t step = src.strides[1] // <Py_ssize_t>sizeof(line_in_t)
    with nogil:
        for i in range(padded.shape[0]):
            if row_map[i] < 0:
                for j in range(m):
                    padded[i, j] = fill
            else:
                _padded_line(&src[row_map[i], 0], step, &col_map[0], fill, left, n, m,
                             &padded[i, 0])


def ndimage_correlate_lines_to(const double[::1] padded,      # IN  the padded N-d array, flat
                               const int64_t[::1] line_start,  # IN  flat index of each line's first term
                               const Py_ssize_t[::1] offsets,  # IN  flat offset of each term
                               const double[::1] weights,      # IN  one weight per term, C order
                               line_out_t[:, :] out,            # OUT lines x line length
                               double[::1] scratch,             # >= line length
                               Py_ssize_t r0, Py_ssize_t r1):
    """ndimage_correlate_lines' sums, each line summed into scratch and
    truncated into its row of an integer output through int32 (the caller
    bounds every sum below 2**30, as for the line kernels)."""
    cdef Py_ssize_t r, j, n = out.shape[1], T = offsets.shape[0]
    cdef Py_ssize_t out_step = out.strides[1] // <Py_ssize_t>sizeof(line_out_t)
    cdef double *line = &scratch[0]
    cdef bint avx2 = _table != cyc_kernels(0)
    with nogil:
        for r in range(r0, r1):
            if T == 0:
                for j in range(n):
                    line[j] = 0.0
            elif avx2:
                cyc_exact_line_avx2(&padded[0] + line_start[r], &offsets[0], &weights[0], T,
                                    line, n)
            else:
                cyc_exact_line_sse2(&padded[0] + line_start[r], &offsets[0], &weights[0], T,
                                    line, n)
            _line_from_double(line, &out[r, 0], out_step, n)


def ndimage_correlate1d_lanes_fast(const fp_t[:, :, ::1] padded,  # IN  outer x (n+L-1) x lanes
                                   const fp_t[::1] weights,       # IN  L
                                   fp_t[:, :, ::1] out,            # OUT outer x n x lanes
                                   Py_ssize_t o0, Py_ssize_t o1, Py_ssize_t b0, Py_ssize_t b1):
    """1-D correlation down axis 1 on the SIMD row kernels (an L x 1 kernel)."""
    cdef Py_ssize_t o, lanes = padded.shape[2]
    with nogil:
        for o in range(o0, o1):
            if fp_t is float:
                _table.spatial_rows_f32(&padded[o, 0, b0], 0, lanes, 1, weights.shape[0], 1,
                                        &weights[0], &out[o, 0, b0], lanes, b1 - b0, out.shape[1],
                                        False)
            else:
                _table.spatial_rows_f64(&padded[o, 0, b0], 0, lanes, 1, weights.shape[0], 1,
                                        &weights[0], &out[o, 0, b0], lanes, b1 - b0, out.shape[1],
                                        False)

def ndimage_correlate1d_rows_fast(const fp_t[:, ::1] padded,  # IN  rows x (n+L-1)
                                  const fp_t[::1] weights,    # IN  L
                                  fp_t[:, ::1] out,            # OUT rows x n
                                  Py_ssize_t r0, Py_ssize_t r1):
    """1-D correlation along each row on the SIMD row kernels (a 1 x L kernel)."""
    with nogil:
        if fp_t is float:
            _table.spatial_rows_f32(&padded[r0, 0], 0, padded.shape[1], 1, 1, weights.shape[0],
                                    &weights[0], &out[r0, 0], out.shape[1], out.shape[1], r1 - r0,
                                    False)
        else:
            _table.spatial_rows_f64(&padded[r0, 0], 0, padded.shape[1], 1, 1, weights.shape[0],
                                    &weights[0], &out[r0, 0], out.shape[1], out.shape[1], r1 - r0,
                                    False)


cdef void _gather_block(const char *plane, Py_ssize_t ys,       # rows ys bytes apart, unit column stride
                        const int64_t *row_map, fp_t fill,
                        Py_ssize_t q0, Py_ssize_t q1, Py_ssize_t c0, Py_ssize_t bw,
                        fp_t *dst) noexcept nogil:
    """Padded rows q0 <= q < q1, columns c0..c0+bw, into consecutive dst rows of bw."""
    cdef Py_ssize_t q, j, sq
    for q in range(q0, q1):
        sq = row_map[q]
        if sq < 0:
            for j in range(bw):
                dst[j] = fill
        else:
            memcpy(dst, plane + sq * ys + c0 * <Py_ssize_t>sizeof(fp_t), bw * sizeof(fp_t))
        dst += bw


cdef inline int _ndimage_flags(bint stream, Py_ssize_t image_rows,
                               Py_ssize_t image_row_bytes) noexcept nogil:
    """The row kernels' flags for an ndimage pass over an image of
    image_rows rows, image_row_bytes apart (stream: as the caller says)."""
    return (CYC_ROWS_STREAM if stream else 0) \
        | (_row_flags(0, 0, 1, image_rows, image_row_bytes) & CYC_ROWS_PREFETCH)


cdef inline void _rows_kernel(const fp_t *inp, Py_ssize_t rs, Py_ssize_t R, Py_ssize_t S,
                              const fp_t *w, fp_t *out, Py_ssize_t os,
                              Py_ssize_t width, Py_ssize_t nrows, int flags) noexcept nogil:
    if fp_t is float:
        _table.spatial_rows_f32(inp, 0, rs, 1, R, S, w, out, os, width, nrows, flags)
    else:
        _table.spatial_rows_f64(inp, 0, rs, 1, R, S, w, out, os, width, nrows, flags)


cdef void _correlate_down(const char *data, Py_ssize_t ys,  # n x W image, rows ys bytes apart
                          const int64_t *row_map, Py_ssize_t before, fp_t fill,
                          const fp_t *weights, Py_ssize_t L,
                          fp_t *out, Py_ssize_t os, Py_ssize_t n, Py_ssize_t W,
                          fp_t *scratch, Py_ssize_t piece, Py_ssize_t block,
                          Py_ssize_t r0, Py_ssize_t r1, int flags) noexcept nogil:
    """ndimage_correlate_down_fast on pointers (out: n x W, os elements apart);
    flags: the row kernels' for the image and `out` (a streamed `out` is
    fenced before returning)."""
    cdef Py_ssize_t lo, hi, c0, bw, a, b
    if W == 0 or r1 <= r0:
        return
    # interior rows: the window of output row i is image rows i - before .. i - before + L - 1
    lo = max(r0, before)
    hi = min(r1, n - (L - 1 - before))
    c0 = 0
    while c0 < W:
        bw = min(block, W - c0)
        if lo < hi:
            _rows_kernel(<const fp_t *>(data + (lo - before) * ys) + c0,
                         ys // <Py_ssize_t>sizeof(fp_t), L, 1, weights, out + lo * os + c0, os,
                         bw, hi - lo, flags)
        a = r0
        while a < r1:
            if lo < hi and a == lo:
                a = hi
                continue
            b = min(a + piece, r1, lo if (lo < hi and a < lo) else r1)
            _gather_block(data, ys, row_map, fill, a, b + L - 1, c0, bw, scratch)
            _rows_kernel(scratch, bw, L, 1, weights, out + a * os + c0, os, bw, b - a,
                         flags & CYC_ROWS_STREAM)
            a = b
        c0 += bw
    if flags & CYC_ROWS_STREAM:
        cyc_stream_fence()


def ndimage_correlate_down_fast(const fp_t[:, :] image,     # IN  n x W, unit column stride
                                const int64_t[::1] row_map, # IN  n+L-1 padded rows -> row or -1
                                Py_ssize_t before,          # padding before row 0
                                const fp_t[::1] fill,       # IN  one value
                                const fp_t[::1] weights,    # IN  L
                                fp_t[:, :] out,              # OUT n x W, unit column stride
                                fp_t[::1] scratch,           # (PIECE + L - 1) * BLOCK
                                Py_ssize_t piece, Py_ssize_t block,
                                Py_ssize_t r0, Py_ssize_t r1, bint stream=False):
    """out[i, :] = sum_k weights[k] * padded[i + k, :] for r0 <= i < r1, the
    filter running down the columns, a block of columns at a time. Rows whose
    window lies inside the image are read in place; the others are gathered
    through row_map, `piece` rows at a time. stream: write `out` past the
    caches (a piece of a result for which streams() says so)."""
    cdef Py_ssize_t W = out.shape[1]
    if W == 0 or r1 <= r0:
        return
    with nogil:
        _correlate_down(<const char *>&image[0, 0], image.strides[0], &row_map[0], before,
                        fill[0], &weights[0], weights.shape[0], &out[0, 0],
                        out.strides[0] // <Py_ssize_t>sizeof(fp_t), out.shape[0], W,
                        &scratch[0], piece, block, r0, r1,
                        _ndimage_flags(stream, image.shape[0], image.strides[0]))


cdef void _correlate_along(const char *data, Py_ssize_t ys,  # rows x n, rows ys bytes apart
                           const int64_t *col_map, Py_ssize_t before, fp_t fill,
                           const fp_t *weights, Py_ssize_t L,
                           fp_t *out, Py_ssize_t os, Py_ssize_t n, Py_ssize_t rows,
                           fp_t *scratch, int flags) noexcept nogil:
    """ndimage_correlate_along_fast on pointers, for all `rows` rows; flags:
    as _correlate_down's."""
    cdef Py_ssize_t after = L - 1 - before
    cdef Py_ssize_t lo = before, hi = n - after, r, q, sq, b0, b1, width, pitch
    cdef const fp_t *row
    cdef fp_t *dst
    cdef Py_ssize_t segs[4]
    cdef Py_ssize_t s, nseg
    if n == 0 or rows <= 0:
        return
    if lo < hi:
        segs[0], segs[1], segs[2], segs[3] = 0, lo, hi, n
        nseg = 2
        _rows_kernel(<const fp_t *>data, ys // <Py_ssize_t>sizeof(fp_t), 1, L, weights, out + lo,
                     os, hi - lo, rows, flags)
    else:
        segs[0], segs[1] = 0, n
        nseg = 1
    b0 = 0
    while b0 < rows:
        b1 = min(b0 + ALONG_GATHER_ROWS, rows)
        for s in range(nseg):
            width = segs[2 * s + 1] - segs[2 * s]
            if width <= 0:
                continue
            # padded columns segs[2s] .. segs[2s+1] + L - 1 of each row
            pitch = width + L - 1
            for r in range(b0, b1):
                row = <const fp_t *>(data + r * ys)
                dst = scratch + (r - b0) * pitch
                for q in range(segs[2 * s], segs[2 * s + 1] + L - 1):
                    sq = col_map[q]
                    dst[q - segs[2 * s]] = row[sq] if sq >= 0 else fill
            _rows_kernel(scratch, pitch, 1, L, weights, out + b0 * os + segs[2 * s], os, width,
                         b1 - b0, flags & CYC_ROWS_STREAM)
        b0 = b1
    if flags & CYC_ROWS_STREAM:
        cyc_stream_fence()


def ndimage_correlate_along_fast(const fp_t[:, :] image,     # IN  rows x n, unit column stride
                                 const int64_t[::1] col_map, # IN  n+L-1 padded cols -> col or -1
                                 Py_ssize_t before,          # padding before column 0
                                 const fp_t[::1] fill,
                                 const fp_t[::1] weights,    # IN  L
                                 fp_t[:, :] out,              # OUT rows x n, unit column stride
                                 fp_t[::1] scratch,           # ALONG_GATHER_ROWS x longest
                                                              # gathered segment
                                 Py_ssize_t r0, Py_ssize_t r1, bint stream=False):
    """out[r, j] = sum_k weights[k] * padded[r, j + k] along each row: the
    columns whose window lies inside the row are read in place (all rows
    r0..r1 at once), the border columns from segments gathered for up to
    ALONG_GATHER_ROWS rows and filtered in one call (one call per row and
    border cost a third of a 128 x 128 pass). stream: as
    ndimage_correlate_down_fast's."""
    cdef Py_ssize_t n = out.shape[1]
    if n == 0 or r1 <= r0:
        return
    with nogil:
        _correlate_along(<const char *>&image[r0, 0], image.strides[0], &col_map[0], before,
                         fill[0], &weights[0], weights.shape[0], &out[r0, 0],
                         out.strides[0] // <Py_ssize_t>sizeof(fp_t), n, r1 - r0, &scratch[0],
                         _ndimage_flags(stream, image.shape[0], image.strides[0]))


cdef class SmallPass:
    """A small 1-D pass of cyconv.ndimage kept between calls (built by
    ndimage._pass_small): its index map, weights, fill and scratch are
    resolved once, so a call unpacks only its source and output. Each
    constant memoryview argument and the scratch array cost about 0.2 us of
    a 16 x 16 call of about 5."""
    cdef const int64_t[::1] index           # padded position along the axis -> source, -1 fill
    cdef const float[::1] weights_f32       # one of the two, in the compute type
    cdef const double[::1] weights_f64
    cdef float[::1] scratch_f32
    cdef double[::1] scratch_f64
    cdef double fill
    cdef Py_ssize_t outer, n, inner, L, before, piece, block
    cdef bint is_double                     # the compute type: float64 (else float32)
    cdef bint in_use                        # another thread runs it: run() declines

    def __init__(self, const int64_t[::1] index, weights, scratch, double fill,
                 Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner, Py_ssize_t before,
                 Py_ssize_t piece, Py_ssize_t block):
        self.index, self.L = index, len(weights)
        self.is_double = weights.dtype.itemsize == 8
        if self.is_double:
            self.weights_f64, self.scratch_f64 = weights, scratch
        else:
            self.weights_f32, self.scratch_f32 = weights, scratch
        self.fill, self.outer, self.n, self.inner = fill, outer, n, inner
        self.before, self.piece, self.block = before, piece, block

    def run(self, src, out):
        """Filter `src` into `out` (C-contiguous arrays of the compute type, of
        outer * n * inner elements; checked by the caller). False, with
        nothing done, when the two overlap or while another thread is
        running this pass (the GIL makes the test and the claim one step)."""
        if self.in_use:
            return False
        self.in_use = True
        try:
            if self.is_double:
                return _run_small_pass(self, &self.weights_f64[0], &self.scratch_f64[0], src,
                                       out) == 1
            return _run_small_pass(self, &self.weights_f32[0], &self.scratch_f32[0], src,
                                   out) == 1
        finally:
            self.in_use = False


cdef int _run_small_pass(SmallPass p, const fp_t *weights, fp_t *scratch,
                         object src, object out) except -1:
    """1 when done, 0 when `out` overlaps `src` (nothing done)."""
    cdef Py_buffer sb, ob
    _source_and_output(src, out, &sb, &ob)
    cdef const char *s = <const char *>sb.buf
    cdef fp_t *o = <fp_t *>ob.buf
    cdef Py_ssize_t i, plane = p.n * p.inner, itemsize = sizeof(fp_t)
    if s < <const char *>ob.buf + ob.len and <const char *>o < s + sb.len:
        PyBuffer_Release(&ob)     # the output overlaps the source: the
        PyBuffer_Release(&sb)     # caller's general path copies first
        return 0
    with nogil:
        if p.inner == 1:
            _correlate_along(s, p.n * itemsize, &p.index[0], p.before, <fp_t>p.fill, weights,
                             p.L, o, p.n, p.n, p.outer, scratch, False)
        else:
            for i in range(p.outer):
                _correlate_down(s + i * plane * itemsize, p.inner * itemsize, &p.index[0],
                                p.before, <fp_t>p.fill, weights, p.L, o + i * plane, p.inner,
                                p.n, p.inner, scratch, p.piece, p.block, 0, p.n, False)
    PyBuffer_Release(&ob)
    PyBuffer_Release(&sb)
    return 1


# 8- and 16-bit images: samples converted to float32 a row at a time, filtered
# by the float32 row kernels, rounded and saturated straight into the output
# ---------------------------------------------------------------------------

ctypedef unsigned char uchar
ctypedef unsigned short ushort

ctypedef fused pixel_t:
    uchar
    ushort

ctypedef fused pixel_out_t:
    uchar
    ushort
    float


cdef class PixelPlan:
    """What filter_pixels needs besides the buffers (built by cyconv.image).

    The padded image is described by index maps, as everywhere in the core;
    `weights` holds the M x N correlation kernel (already flipped for a
    convolution), or for a separable one its M column then N row factors.
    Output (i, j) of a carried band (alpha) is the input sample at padded
    position (i + alpha_top, j + alpha_left), 0 where a map says -1."""
    cdef const int64_t[::1] row_map
    cdef const int64_t[::1] col_map
    cdef const float[::1] weights
    cdef readonly Py_ssize_t M, N, left, Wp, Wo, alpha_top, alpha_left
    cdef readonly bint separable
    cdef readonly float fill

    def __init__(self, const int64_t[::1] row_map, const int64_t[::1] col_map, Py_ssize_t left,
                 float fill, const float[::1] weights, Py_ssize_t M, Py_ssize_t N,
                 bint separable, Py_ssize_t alpha_top, Py_ssize_t alpha_left):
        self.row_map, self.col_map, self.weights = row_map, col_map, weights
        self.left, self.fill, self.M, self.N, self.separable = left, fill, M, N, separable
        self.Wp, self.Wo = col_map.shape[0], col_map.shape[0] - N + 1
        self.alpha_top, self.alpha_left = alpha_top, alpha_left

    def scratch_size(self, Py_ssize_t group):
        """float32 scratch for one thread filtering `group` interleaved channels at once."""
        cdef Py_ssize_t ring_width = (self.Wo if self.separable else self.Wp) * group
        return 3 * self.M * self.N + self.M * ring_width + (self.Wp + self.Wo) * group


cdef inline void _samples_to_f32(const pixel_t *src, Py_ssize_t step, float *dst,
                                 Py_ssize_t n) noexcept nogil:
    """n samples `step` bytes apart as float32."""
    cdef Py_ssize_t i
    if step == <Py_ssize_t>sizeof(pixel_t):
        if pixel_t is uchar:
            _table.u8_to_f32(src, dst, n)
        else:
            _table.u16_to_f32(src, dst, n)
    else:
        for i in range(n):
            dst[i] = (<const pixel_t *>(<const char *>src + i * step))[0]


cdef inline void _border_samples(const pixel_t *row, Py_ssize_t xs, Py_ssize_t cs,
                                 Py_ssize_t group, const int64_t *col_map, Py_ssize_t j0,
                                 Py_ssize_t j1, float fill, float *dst) noexcept nogil:
    cdef Py_ssize_t j, g, sj
    for j in range(j0, j1):
        sj = col_map[j]
        for g in range(group):
            dst[j * group + g] = (<const pixel_t *>(<const char *>row + sj * xs + g * cs))[0] \
                if sj >= 0 else fill


cdef void _gather_pixel_row(const pixel_t *row, Py_ssize_t W, Py_ssize_t xs, Py_ssize_t cs,
                            Py_ssize_t group, const int64_t *col_map, Py_ssize_t left,
                            Py_ssize_t Wp, float fill, float *dst) noexcept nogil:
    """One padded row of `group` interleaved channels (channel innermost) as
    float32; row == NULL is a row of the fill. For group > 1 the caller
    guarantees the group is contiguous (cs == itemsize, xs == group * cs)."""
    cdef Py_ssize_t j
    if row == NULL:
        for j in range(Wp * group):
            dst[j] = fill
        return
    _border_samples(row, xs, cs, group, col_map, 0, left, fill, dst)
    _samples_to_f32(row, xs if group == 1 else cs, dst + left * group, W * group)
    _border_samples(row, xs, cs, group, col_map, left + W, Wp, fill, dst)


cdef inline float _round_saturate(float x, float hi) noexcept nogil:
    """As the table's f32_to_u8/u16 (pixels_impl.h), one sample."""
    x = x if x > 0 else 0     # NaN -> 0
    x = x if x < hi else hi
    return (x + <float>12582912.0) - <float>12582912.0


cdef inline void _store_row(const float *src, Py_ssize_t n, pixel_out_t *dst,
                            Py_ssize_t step) noexcept nogil:
    """n results into samples `step` bytes apart: integers rounded half to
    even and saturated to the type's range, float32 as they are."""
    cdef Py_ssize_t i
    cdef float hi = 255.0 if pixel_out_t is uchar else 65535.0
    if step == <Py_ssize_t>sizeof(pixel_out_t):
        if pixel_out_t is uchar:
            _table.f32_to_u8(src, dst, n)
        elif pixel_out_t is ushort:
            _table.f32_to_u16(src, dst, n)
        else:
            memcpy(dst, src, n * sizeof(float))
    else:
        for i in range(n):
            if pixel_out_t is float:
                (<float *>(<char *>dst + i * step))[0] = src[i]
            else:
                (<pixel_out_t *>(<char *>dst + i * step))[0] = \
                    <pixel_out_t>_round_saturate(src[i], hi)


cdef void _filter_pixel_group(PixelPlan plan, const pixel_t *image, Py_ssize_t W,
                              Py_ssize_t ys, Py_ssize_t xs, Py_ssize_t cs, Py_ssize_t group,
                              pixel_out_t *out, Py_ssize_t oys, Py_ssize_t ostep,
                              float *scratch, Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """Output rows y0 <= y < y1 of `group` interleaved channels (or one plane).

    A ring of M rows holds padded row p (direct), or p filtered along the row
    (separable), in slot p % M, so every input row is converted and
    row-filtered once. Each output row is then one list of taps over the
    ring (zero weights left out), summed in the kernel's order: a pixel's
    value does not depend on y0, y1 or the layout."""
    cdef Py_ssize_t M = plan.M, N = plan.N, Wp = plan.Wp, Wo = plan.Wo
    cdef Py_ssize_t width = Wo * group
    cdef Py_ssize_t ring_width = (Wo if plan.separable else Wp) * group
    cdef Py_ssize_t ncol = 1 if plan.separable else N   # taps per kernel row in the ring
    cdef const float **taps = <const float **>scratch   # M * N pointers (2 floats each)
    cdef float *weights = scratch + 2 * M * N           # the nonzero ones, in kernel order
    cdef float *ring = weights + M * N
    cdef float *line = ring + M * ring_width
    cdef float *result = line + Wp * group
    cdef const float *w = &plan.weights[0]              # M x ncol, then the row factor
    cdef const int64_t *row_map = &plan.row_map[0]
    cdef const int64_t *col_map = &plan.col_map[0]
    cdef Py_ssize_t y, r, s, t, ntaps = 0, src, nxt = y0
    cdef float *row
    for t in range(M * ncol):
        if w[t] != 0:
            weights[ntaps] = w[t]
            ntaps += 1
    for y in range(y0, y1):
        while nxt < y + M:
            row = ring + (nxt % M) * ring_width
            src = row_map[nxt]
            _gather_pixel_row(<const pixel_t *>(<const char *>image + src * ys)
                              if src >= 0 and W > 0 else NULL,
                              W, xs, cs, group, col_map, plan.left, Wp, plan.fill,
                              line if plan.separable else row)
            if plan.separable:
                _table.spatial_row_f32(line, 0, 0, group, 1, 1, N, w + M, row, width)
            nxt += 1
        t = 0
        for r in range(M):
            row = ring + ((y + r) % M) * ring_width
            for s in range(ncol):
                if w[r * ncol + s] != 0:
                    taps[t] = row + s * group
                    t += 1
        _table.taps_row_f32(taps, weights, ntaps, result, width)
        _store_row(result, width, <pixel_out_t *>(<char *>out + y * oys), ostep)


cdef void _carry_band(PixelPlan plan, const pixel_t *image, Py_ssize_t W,
                      Py_ssize_t ys, Py_ssize_t xs, pixel_out_t *out, Py_ssize_t oys,
                      Py_ssize_t oxs, Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """A band copied untouched (alpha): the input sample under the kernel's centre."""
    cdef Py_ssize_t y, j, si, sj
    cdef const int64_t *row_map = &plan.row_map[0]
    cdef const int64_t *col_map = &plan.col_map[0]
    cdef char *orow
    for y in range(y0, y1):
        si = row_map[y + plan.alpha_top]
        orow = <char *>out + y * oys
        for j in range(plan.Wo):
            sj = col_map[j + plan.alpha_left]
            (<pixel_out_t *>(orow + j * oxs))[0] = <pixel_out_t>(
                (<const pixel_t *>(<const char *>image + si * ys + sj * xs))[0]
                if si >= 0 and sj >= 0 else 0)


def filter_pixels(PixelPlan plan,
                  const pixel_t[:, :, :] image,   # IN  H x W x C, any strides
                  pixel_out_t[:, :, :] out,       # OUT Ho x Wo x C, any strides
                  Py_ssize_t colour,              # IN  bands 0..colour-1 filtered, the rest carried
                  bint interleaved,               # IN  filter bands together (see below)
                  float[::1] scratch,             # scratch: plan.scratch_size(group)
                  Py_ssize_t y0, Py_ssize_t y1):
    """Output rows y0 <= y < y1. `interleaved`: every band is filtered as one
    group (the caller checked that each pixel's C samples are contiguous in
    both image and out), and carried bands are then overwritten; otherwise
    each filtered band is a plane of its own."""
    cdef Py_ssize_t C = image.shape[2], W = image.shape[1], c
    cdef Py_ssize_t ys = image.strides[0], xs = image.strides[1], cs = image.strides[2]
    cdef Py_ssize_t oys = out.strides[0], oxs = out.strides[1], ocs = out.strides[2]
    cdef const pixel_t *data = &image[0, 0, 0] if image.shape[0] and W else NULL
    cdef pixel_out_t *dst = &out[0, 0, 0]
    with nogil:
        if interleaved:
            _filter_pixel_group(plan, data, W, ys, xs, cs, C, dst, oys, ocs,
                                &scratch[0], y0, y1)
        else:
            for c in range(colour):
                _filter_pixel_group(plan, <const pixel_t *>(<const char *>data + c * cs),
                                    W, ys, xs, cs, 1,
                                    <pixel_out_t *>(<char *>dst + c * ocs), oys, oxs,
                                    &scratch[0], y0, y1)
        for c in range(colour, C):
            _carry_band(plan, <const pixel_t *>(<const char *>data + c * cs), W, ys, xs,
                        <pixel_out_t *>(<char *>dst + c * ocs), oys, oxs, y0, y1)


# ---------------------------------------------------------------------------
# The C-level API (declared in _core.pxd): argument checks and a status code
# in front of the same drivers, single-threaded, scratch from the caller.
# ---------------------------------------------------------------------------

cdef enum:
    API_STRIP_ROWS = 32   # output rows padded at a time by the filter2d API
    API_ALIGN = 64        # every region of `work` starts on a 64-byte boundary


# Checked size arithmetic, for every size the C API derives from its
# caller's arguments. Operands are sizes (>= 0); a result above
# PY_SSIZE_T_MAX is -1, and -1 stays -1 through later steps, so a chain is
# tested once at its end. Plain comparisons, no compiler builtins (MSVC).
cdef inline cyc_index_t _size_add(cyc_index_t a, cyc_index_t b) noexcept nogil:
    if a < 0 or b < 0 or a > PY_SSIZE_T_MAX - b:
        return -1
    return a + b


cdef inline cyc_index_t _size_mul(cyc_index_t a, cyc_index_t b) noexcept nogil:
    if a < 0 or b < 0 or (b > 0 and a > PY_SSIZE_T_MAX // b):
        return -1
    return a * b


cdef inline bint _plane_fits(cyc_index_t rows, cyc_index_t cols, cyc_index_t stride,
                             cyc_index_t itemsize) noexcept nogil:
    """A rows x cols plane with a row stride of `stride` elements is
    addressable: stride >= cols, and rows * stride elements fit in bytes."""
    return stride >= cols and _size_mul(_size_mul(rows, stride), itemsize) >= 0


cdef inline char *_align64(char *p) noexcept nogil:
    return <char *>((<size_t>p + (API_ALIGN - 1)) & ~(<size_t>(API_ALIGN - 1)))


def tile_sizes(Kg=None, bint double_precision=False):
    """The tile sizes of the active kernel table, or with `Kg` of the table
    conv2d runs for a layer of Kg output channels per group (_conv_table),
    and the conv2d planning constants: what the work size of the C API
    depends on (for its tests)."""
    cdef const cyc_kernel_table *t = _table if Kg is None else _conv_table(Kg, double_precision)
    return dict(tile_pixels=t.tile_pixels, block_f32=t.block_f32,
                block_f64=t.block_f64, flat_channels=t.flat_channels,
                flat_f32=t.flat_f32, flat_f64=t.flat_f64,
                pixel_channels=t.pixel_channels, pixel_f32=t.pixel_f32,
                pixel_f64=t.pixel_f64, lanes_max_channels=LANES_MAX_CHANNELS,
                spatial_rows=SPATIAL_ROWS, narrow_rows=NARROW_ROWS,
                row_lanes_f32=_row_lanes(False), row_lanes_f64=_row_lanes(True),
                dw_lanes_f32=_table.dw_lanes_f32 if _depthwise_lanes_on else 0,
                dw_lanes_f64=_table.dw_lanes_f64 if _depthwise_lanes_on else 0,
                dw_max_bytes=DW_LANES_MAX_BYTES, dw_band_bytes=DW_BAND_BYTES,
                small_pixels=SMALL_PIXELS,
                strip_rows=API_STRIP_ROWS, align=API_ALIGN)


cdef int _filter2d_geometry(cyc_index_t h, cyc_index_t w, cyc_index_t m, cyc_index_t n, int mode,
                            bint convolve, cyc_index_t *ho, cyc_index_t *wo,
                            cyc_index_t *top, cyc_index_t *left) noexcept nogil:
    """Output size and padding (written only on success); CYC_EINVAL also when
    the output of Ho x Wo float32 values (the smallest dtype) would not fit in
    PY_SSIZE_T_MAX bytes."""
    cdef cyc_index_t oh, ow
    if h < 1 or w < 1 or m < 1 or n < 1:
        return CYC_EINVAL
    if mode == CYC_FULL:
        oh, ow = _size_add(h, m - 1), _size_add(w, n - 1)
    elif mode == CYC_SAME:
        oh, ow = h, w
    elif mode == CYC_VALID and h >= m and w >= n:
        oh, ow = h - m + 1, w - n + 1
    else:
        return CYC_EINVAL
    if _size_mul(_size_mul(oh, ow), sizeof(float)) < 0:
        return CYC_EINVAL
    ho[0], wo[0] = oh, ow
    if mode == CYC_FULL:
        top[0], left[0] = m - 1, n - 1
    elif mode == CYC_SAME:
        # as scipy: centred with offset (M-1)//2; the flip moves it for convolution
        top[0] = m // 2 if convolve else (m - 1) // 2
        left[0] = n // 2 if convolve else (n - 1) // 2
    else:
        top[0], left[0] = 0, 0
    return CYC_OK


cdef cyc_index_t _filter2d_work(cyc_index_t ho, cyc_index_t wo, cyc_index_t m, cyc_index_t n,
                                cyc_index_t itemsize) noexcept nogil:
    """Bytes of `work` _filter2d_api lays out, or -1: a row map (Hp int64) and
    a column map (Wp int64), the kernel (m x n), the strip ((rows + m - 1) x Wp),
    each region 64-byte aligned."""
    cdef cyc_index_t hp = _size_add(ho, m - 1), wp = _size_add(wo, n - 1)
    cdef cyc_index_t maps = _size_mul(_size_add(hp, wp), sizeof(int64_t))
    cdef cyc_index_t strip = _size_mul(_size_add(min(ho, API_STRIP_ROWS), m - 1), wp)
    cdef cyc_index_t values = _size_mul(_size_add(_size_mul(m, n), strip), itemsize)
    return _size_add(3 * API_ALIGN, _size_add(maps, values))


cdef int filter2d_shape(cyc_index_t h, cyc_index_t w, cyc_index_t m, cyc_index_t n, int mode,
                        cyc_index_t *out_h, cyc_index_t *out_w) noexcept nogil:
    cdef cyc_index_t top, left
    return _filter2d_geometry(h, w, m, n, mode, False, out_h, out_w, &top, &left)


cdef cyc_index_t filter2d_work_bytes(cyc_index_t h, cyc_index_t w, cyc_index_t m,
                                     cyc_index_t n, int mode, cyc_index_t itemsize) noexcept nogil:
    """Bytes of `work` the filter2d functions need (itemsize 4: float32, 8:
    float64); -1 for invalid sizes or a size that does not fit in Py_ssize_t."""
    cdef cyc_index_t ho, wo, top, left
    if itemsize != sizeof(float) and itemsize != sizeof(double):
        return -1
    if _filter2d_geometry(h, w, m, n, mode, False, &ho, &wo, &top, &left) != CYC_OK:
        return -1
    return _filter2d_work(ho, wo, m, n, itemsize)


cdef int _filter2d_api(const fp_t *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                       const fp_t *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                       int mode, int boundary, fp_t fillvalue, fp_t *out, cyc_index_t out_stride,
                       void *work, cyc_index_t work_bytes, bint convolve) noexcept nogil:
    cdef cyc_index_t ho, wo, top, left, u, v, item = sizeof(fp_t)
    cdef int status = _filter2d_geometry(h, w, m, n, mode, convolve, &ho, &wo, &top, &left)
    if status != CYC_OK:
        return status
    if boundary not in (CYC_FILL, CYC_WRAP, CYC_SYMM) \
            or in1 == NULL or in2 == NULL or out == NULL or work == NULL \
            or not _plane_fits(h, w, in1_stride, item) or not _plane_fits(m, n, in2_stride, item) \
            or not _plane_fits(ho, wo, out_stride, item):
        return CYC_EINVAL
    cdef cyc_index_t need = _filter2d_work(ho, wo, m, n, item)
    if need < 0:
        return CYC_EINVAL
    if work_bytes < need:
        return CYC_EWORK
    # From here on every size is below the checked ones: plain arithmetic.
    cdef int rule = RULE_CONSTANT if boundary == CYC_FILL else \
        (RULE_WRAP if boundary == CYC_WRAP else RULE_SYMMETRIC)
    cdef cyc_index_t hp = ho + m - 1, wp = wo + n - 1
    cdef int64_t *row_map = <int64_t *>_align64(<char *>work)
    cdef int64_t *col_map = row_map + hp
    cdef fp_t *kernel = <fp_t *>_align64(<char *>(col_map + wp))
    cdef fp_t *strip = <fp_t *>_align64(<char *>(kernel + m * n))
    _index_map(h, top, hp, rule, row_map)
    _index_map(w, left, wp, rule, col_map)
    for u in range(m):
        for v in range(n):
            # convolution = correlation with the kernel flipped both ways
            kernel[u * n + v] = in2[(m - 1 - u) * in2_stride + n - 1 - v] if convolve \
                else in2[u * in2_stride + v]
    _correlate_strips(<const char *>in1, w, in1_stride * item, item,
                      row_map, col_map, left, wp, fillvalue, kernel, m, n,
                      out, wo, out_stride, strip, min(ho, API_STRIP_ROWS), 0, ho, False,
                      _row_flags(ho, wo, item, h, in1_stride * item))
    return CYC_OK


cdef int correlate2d_f32(const float *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                         const float *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                         int mode, int boundary, float fillvalue,
                         float *out, cyc_index_t out_stride,
                         void *work, cyc_index_t work_bytes) noexcept nogil:
    return _filter2d_api(in1, h, w, in1_stride, in2, m, n, in2_stride, mode, boundary,
                         fillvalue, out, out_stride, work, work_bytes, False)


cdef int correlate2d_f64(const double *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                         const double *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                         int mode, int boundary, double fillvalue,
                         double *out, cyc_index_t out_stride,
                         void *work, cyc_index_t work_bytes) noexcept nogil:
    return _filter2d_api(in1, h, w, in1_stride, in2, m, n, in2_stride, mode, boundary,
                         fillvalue, out, out_stride, work, work_bytes, False)


cdef int convolve2d_f32(const float *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                        const float *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                        int mode, int boundary, float fillvalue,
                        float *out, cyc_index_t out_stride,
                        void *work, cyc_index_t work_bytes) noexcept nogil:
    return _filter2d_api(in1, h, w, in1_stride, in2, m, n, in2_stride, mode, boundary,
                         fillvalue, out, out_stride, work, work_bytes, True)


cdef int convolve2d_f64(const double *in1, cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride,
                        const double *in2, cyc_index_t m, cyc_index_t n, cyc_index_t in2_stride,
                        int mode, int boundary, double fillvalue,
                        double *out, cyc_index_t out_stride,
                        void *work, cyc_index_t work_bytes) noexcept nogil:
    return _filter2d_api(in1, h, w, in1_stride, in2, m, n, in2_stride, mode, boundary,
                         fillvalue, out, out_stride, work, work_bytes, True)


cdef cyc_index_t _conv2d_work_bound(const cyc_conv2d_params *p, cyc_index_t hp, cyc_index_t wp,
                                    cyc_index_t itemsize) noexcept nogil:
    """An upper bound of conv2d's work bytes, whichever kernel _conv_plan
    picks (-1 if it does not fit): when it fits, no product _conv_plan and
    the drivers form can wrap. It over-counts by a small factor (the padded
    buffer's extra rows, packed weights an unblocked layer does not use):
    it only rejects sizes far beyond any allocation."""
    cdef cyc_index_t tile = max(_table.tile_pixels, _table.flat_f32, _table.flat_f64)
    cdef cyc_index_t kb = max(_table.block_f32, _table.block_f64)
    cdef cyc_index_t taps = _size_mul(_size_mul(p.C // p.groups, p.R), p.S)
    cdef cyc_index_t rows = _size_add(hp, tile)
    cdef cyc_index_t padded = _size_mul(_size_mul(p.C, rows), wp)
    # groups * ceil(Kg / KB) * KB <= K + groups * KB output channels packed
    cdef cyc_index_t packed = _size_mul(_size_add(p.K, _size_mul(p.groups, kb)), taps)
    cdef cyc_index_t edge = _size_mul(taps, _table.tile_pixels)
    # (narrow rows: at most NARROW_ROWS of under two row vectors, kb)
    cdef cyc_index_t scratch = max(_size_mul(SPATIAL_ROWS, wp),
                                   tile * max(kb, _table.flat_channels), NARROW_ROWS * kb)
    # depthwise lanes (G <= kb): taps, bias, a band's input rows (under
    # DW_BAND_BYTES past the kernel's extent, at most hp rows) and output rows
    # (at most DW_BAND_BYTES, or one row)
    scratch = max(scratch, _size_add(DW_BAND_BYTES, _size_mul(kb, _size_add(
        _size_add(taps, 2), _size_mul(_size_add(hp, 1), wp)))))
    # 1x1 channel chunks' partial sums (_plan_chunks): a strip of at most
    # STRIP_PARTIAL_BYTES, or one tile position of every block
    scratch = _size_add(scratch, _size_add(STRIP_PARTIAL_BYTES,
                                           _size_mul(_size_add(p.K, _size_mul(p.groups, kb)), tile)))
    cdef cyc_index_t values = _size_add(_size_add(padded, packed), _size_add(edge, scratch))
    # (and the blocks' marks: groups * ceil(Kg / KB) <= K + groups bytes)
    cdef cyc_index_t maps = _size_add(_size_mul(_size_add(rows, wp), sizeof(int64_t)),
                                      _size_add(p.K, p.groups))
    return _size_add(5 * API_ALIGN, _size_add(maps, _size_mul(values, itemsize)))


cdef int _conv_of_params(const cyc_conv2d_params *p, cyc_index_t itemsize,
                         _Conv *g) noexcept nogil:
    """Check every argument and size of a conv2d call, then plan it into g.
    CYC_EINVAL also when the input, weight, output or an upper bound of the
    work buffer would not fit in PY_SSIZE_T_MAX bytes."""
    if p == NULL or (itemsize != sizeof(float) and itemsize != sizeof(double)):
        return CYC_EINVAL
    if p.N < 1 or p.C < 1 or p.H < 1 or p.W < 1 or p.K < 1 or p.R < 1 or p.S < 1 \
            or p.groups < 1 or p.C % p.groups or p.K % p.groups \
            or p.stride_h < 1 or p.stride_w < 1 or p.dilation_h < 1 or p.dilation_w < 1 \
            or p.pad_top < 0 or p.pad_bottom < 0 or p.pad_left < 0 or p.pad_right < 0:
        return CYC_EINVAL
    if p.padding_mode < CYC_PAD_ZEROS or p.padding_mode > CYC_PAD_SYMMETRIC:
        return CYC_EINVAL
    if p.padding_mode == CYC_PAD_REFLECT and (max(p.pad_top, p.pad_bottom) >= p.H
                                              or max(p.pad_left, p.pad_right) >= p.W):
        return CYC_EINVAL
    if p.padding_mode == CYC_PAD_CIRCULAR and (max(p.pad_top, p.pad_bottom) > p.H
                                               or max(p.pad_left, p.pad_right) > p.W):
        return CYC_EINVAL
    # A one-tap axis never moves by its dilation: 1 keeps the drivers'
    # pointer steps (row pitch x dilation) small.
    cdef cyc_index_t dh = p.dilation_h if p.R > 1 else 1
    cdef cyc_index_t dw = p.dilation_w if p.S > 1 else 1
    cdef cyc_index_t hp = _size_add(_size_add(p.H, p.pad_top), p.pad_bottom)
    cdef cyc_index_t wp = _size_add(_size_add(p.W, p.pad_left), p.pad_right)
    cdef cyc_index_t extent_h = _size_add(_size_mul(dh, p.R - 1), 1)
    cdef cyc_index_t extent_w = _size_add(_size_mul(dw, p.S - 1), 1)
    if hp < 0 or wp < 0 or extent_h < 0 or extent_w < 0 or hp < extent_h or wp < extent_w:
        return CYC_EINVAL
    cdef cyc_index_t ho = (hp - extent_h) // p.stride_h + 1
    cdef cyc_index_t wo = (wp - extent_w) // p.stride_w + 1
    cdef cyc_index_t taps = _size_mul(_size_mul(p.C // p.groups, p.R), p.S)
    if _size_mul(_size_mul(_size_mul(_size_mul(p.N, p.C), p.H), p.W), itemsize) < 0 \
            or _size_mul(_size_mul(p.K, taps), itemsize) < 0 \
            or _size_mul(_size_mul(_size_mul(_size_mul(p.N, p.K), ho), wo), itemsize) < 0 \
            or _conv2d_work_bound(p, hp, wp, itemsize) < 0:
        return CYC_EINVAL
    g[0] = _conv_of(p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.groups, p.stride_h, p.stride_w,
                    dh, dw, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right,
                    p.padding_mode == CYC_PAD_ZEROS, itemsize == sizeof(double))
    return CYC_OK


cdef cyc_index_t _conv2d_work(const _Conv *g, cyc_index_t itemsize) noexcept nogil:
    """Bytes of `work` _conv2d_api lays out, or -1: row and column maps (Hb,
    Wb int64) and the blocks' marks (a byte each), packed weights, the padded
    input (C x Hb x Wb, or none: _padded_size), the tile scratch and the edge
    scratch, each region 64-byte aligned."""
    cdef cyc_index_t maps = _size_add(_size_mul(_size_add(g.Hb, g.Wb), sizeof(int64_t)),
                                      _size_mul(g.groups, g.blocks))
    cdef cyc_index_t padded = 0 if g.dw_lanes else _size_mul(_size_mul(g.C, g.Hb), g.Wb)
    cdef cyc_index_t values = _size_add(_size_add(g.packed_size, padded),
                                        _size_add(g.scratch_size, g.edge_size))
    return _size_add(5 * API_ALIGN, _size_add(maps, _size_mul(values, itemsize)))


cdef int conv2d_shape(const cyc_conv2d_params *p, cyc_index_t *out_h,
                      cyc_index_t *out_w) noexcept nogil:
    cdef _Conv g
    cdef int status = _conv_of_params(p, sizeof(float), &g)
    if status == CYC_OK:
        out_h[0], out_w[0] = g.Ho, g.Wo
    return status


cdef cyc_index_t conv2d_work_bytes(const cyc_conv2d_params *p, cyc_index_t itemsize) noexcept nogil:
    """Bytes of `work` conv2d_f32 (itemsize 4) or conv2d_f64 (8) needs; -1 if invalid."""
    cdef _Conv g
    if _conv_of_params(p, itemsize, &g) != CYC_OK:
        return -1
    return _conv2d_work(&g, itemsize)


cdef int _conv2d_api(const cyc_conv2d_params *p, const fp_t *input, const fp_t *weight,
                     const fp_t *bias, fp_t *out, void *work, cyc_index_t work_bytes) noexcept nogil:
    cdef _Conv g
    cdef cyc_index_t item = sizeof(fp_t)
    cdef int status = _conv_of_params(p, item, &g)
    if status != CYC_OK:
        return status
    if input == NULL or weight == NULL or out == NULL or work == NULL:
        return CYC_EINVAL
    cdef cyc_index_t need = _conv2d_work(&g, item)
    if need < 0:
        return CYC_EINVAL
    if work_bytes < need:
        return CYC_EWORK
    # From here on every size is below the checked ones: plain arithmetic.
    cdef int rule = RULE_CONSTANT
    if p.padding_mode == CYC_PAD_REFLECT:
        rule = RULE_REFLECT
    elif p.padding_mode == CYC_PAD_REPLICATE:
        rule = RULE_EDGE
    elif p.padding_mode == CYC_PAD_CIRCULAR:
        rule = RULE_WRAP
    elif p.padding_mode == CYC_PAD_SYMMETRIC:
        rule = RULE_SYMMETRIC
    cdef int64_t *row_map = <int64_t *>_align64(<char *>work)
    cdef int64_t *col_map = row_map + g.Hb
    cdef uint8_t *marks = <uint8_t *>(col_map + g.Wb)
    cdef fp_t *packed = <fp_t *>_align64(<char *>(marks + g.groups * g.blocks))
    cdef fp_t *padded = <fp_t *>_align64(<char *>(packed + g.packed_size))
    cdef fp_t *scratch = <fp_t *>_align64(<char *>(padded + _padded_size(&g)))
    cdef fp_t *edge = <fp_t *>_align64(<char *>(scratch + g.scratch_size))
    cdef Py_ssize_t i
    cdef Py_ssize_t istr[4]
    cdef Py_ssize_t ostr[4]
    cdef Py_ssize_t wstr[4]
    istr[0], istr[1], istr[2], istr[3] = g.C * g.H * g.W * item, g.H * g.W * item, g.W * item, item
    wstr[0], wstr[1], wstr[2], wstr[3] = g.Cg * g.R * g.S * item, g.R * g.S * item, g.S * item, item
    ostr[0], ostr[1], ostr[2], ostr[3] = g.K * g.Ho * g.Wo * item, g.Ho * g.Wo * item, g.Wo * item, item
    _index_map(g.H, g.top, g.Hp, rule, row_map)
    for i in range(g.Hp, g.Hb):
        row_map[i] = -1
    _index_map(g.W, g.left, g.Wb, rule, col_map)
    cdef const fp_t *weights = weight
    if g.blocked and not g.pack_inline:
        _pack_weights(&g, <const char *>weight, wstr[0], wstr[1], wstr[2], wstr[3], packed,
                      0, g.groups * g.blocks, marks)
        weights = packed
    _conv2d_range(&g, <const char *>input, istr, row_map, col_map,
                  weights, wstr, bias, <char *>out, ostr,
                  padded, scratch, edge, 1, 0, g.N, 0, g.Ho, 0, g.groups * g.blocks,
                  NULL, NULL, marks if g.blocked and not g.pack_inline else NULL, False)
    return CYC_OK


cdef int conv2d_f32(const cyc_conv2d_params *p, const float *input, const float *weight,
                    const float *bias, float *out, void *work, cyc_index_t work_bytes) noexcept nogil:
    return _conv2d_api(p, input, weight, bias, out, work, work_bytes)


cdef int conv2d_f64(const cyc_conv2d_params *p, const double *input, const double *weight,
                    const double *bias, double *out, void *work, cyc_index_t work_bytes) noexcept nogil:
    return _conv2d_api(p, input, weight, bias, out, work, work_bytes)
