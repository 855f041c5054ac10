"""Typed loops of cyconv. Internal: the Python layer validates every argument,
allocates every output and scratch buffer, and only then calls in here.
Nothing here raises for bad input; every kernel runs without the GIL."""

from libc.stdint cimport int64_t

cdef extern from "kernels.h" nogil:
    ctypedef Py_ssize_t cyc_index
    ctypedef void (*cyc_spatial_row_f32)(const float *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                         cyc_index C, cyc_index R, cyc_index S,
                                         const float *w, float *out, cyc_index width)
    ctypedef void (*cyc_spatial_row_f64)(const double *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                         cyc_index C, cyc_index R, cyc_index S,
                                         const double *w, double *out, cyc_index width)
    ctypedef void (*cyc_blocked_tile_f32)(const float *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                          cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                          const float *wp, float *tile)
    ctypedef void (*cyc_blocked_tile_f64)(const double *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                          cyc_index sx, cyc_index C, cyc_index R, cyc_index S,
                                          const double *wp, double *tile)
    ctypedef struct cyc_kernel_table:
        const char *name
        cyc_spatial_row_f32 spatial_row_f32
        cyc_spatial_row_f64 spatial_row_f64
        cyc_blocked_tile_f32 blocked_tile_f32
        cyc_blocked_tile_f64 blocked_tile_f64
        cyc_index tile_pixels
        cyc_index block_f32
        cyc_index block_f64
    int cyc_detect_level()
    int cyc_detect_features()
    const cyc_kernel_table *cyc_kernels(int level)


ctypedef fused real_t:
    float
    double
    long double
    unsigned long long   # every integer type: sums wrap modulo 2**64, then get truncated

ctypedef fused fp_t:
    float
    double


cdef const cyc_kernel_table *_table = cyc_kernels(cyc_detect_level())


def detect_level():
    """Highest kernel level this CPU and OS support: 0 baseline, 1 avx2, 2 avx512."""
    return cyc_detect_level()


def detect_features():
    """Bitmask of detected CPU features (see kernels.h)."""
    return cyc_detect_features()


def set_level(int level):
    """Use the kernels of `level` (the caller checked level <= detect_level())."""
    global _table
    _table = cyc_kernels(level)


def level_name():
    return _table.name.decode()


def blocked_geometry(bint double_precision):
    """(pixels, channels) of one blocked conv2d tile at the current level."""
    return _table.tile_pixels, (_table.block_f64 if double_precision else _table.block_f32)


# ---------------------------------------------------------------------------
# 2-D correlation of one padded plane ("valid" over the padded image)
# ---------------------------------------------------------------------------

cdef void _correlate_rows_generic(const real_t[:, ::1] image, const real_t[:, ::1] kernel,
                                  real_t[:, ::1] out, Py_ssize_t row0, Py_ssize_t row1) noexcept nogil:
    # Row-at-a-time multiply-add: the innermost loop runs along contiguous
    # memory with no branches, in (kernel row, kernel column) order per pixel.
    cdef Py_ssize_t i, u, v, j
    cdef Py_ssize_t width = out.shape[1]
    cdef real_t w
    cdef real_t *orow
    cdef const real_t *irow
    for i in range(row0, row1):
        orow = &out[i, 0]
        for j in range(width):
            orow[j] = 0
        for u in range(kernel.shape[0]):
            irow = &image[i + u, 0]
            for v in range(kernel.shape[1]):
                w = kernel[u, v]
                for j in range(width):
                    orow[j] = orow[j] + w * irow[j + v]


cdef void _correlate_rows(const real_t[:, ::1] image, const real_t[:, ::1] kernel,
                          real_t[:, ::1] out, Py_ssize_t row0, Py_ssize_t row1) noexcept nogil:
    cdef Py_ssize_t i
    if real_t is float:
        for i in range(row0, row1):
            _table.spatial_row_f32(&image[i, 0], 0, image.shape[1], 1, 1,
                                   kernel.shape[0], kernel.shape[1], &kernel[0, 0],
                                   &out[i, 0], out.shape[1])
    elif real_t is double:
        for i in range(row0, row1):
            _table.spatial_row_f64(&image[i, 0], 0, image.shape[1], 1, 1,
                                   kernel.shape[0], kernel.shape[1], &kernel[0, 0],
                                   &out[i, 0], out.shape[1])
    else:
        _correlate_rows_generic(image, kernel, out, row0, row1)


def correlate_valid(const real_t[:, ::1] image,   # IN  padded plane, (Ho+M-1) x (Wo+N-1)
                    const real_t[:, ::1] kernel,  # IN  M x N, M, N >= 1
                    real_t[:, ::1] out,           # OUT Ho x Wo
                    Py_ssize_t row0, Py_ssize_t row1):
    """out[i, j] = sum_{u,v} image[i+u, j+v] * kernel[u, v] for rows row0 <= i < row1."""
    with nogil:
        _correlate_rows(image, kernel, out, row0, row1)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

cdef void _gather_padded(const fp_t[:, :, :] image,      # C x H x W, any strides
                         const int64_t[::1] row_map,     # padded row -> source row, or -1
                         const int64_t[::1] col_map,     # padded col -> source col, or -1
                         fp_t[:, :, ::1] padded,
                         Py_ssize_t row0, Py_ssize_t row1) noexcept nogil:
    # Only padded rows row0 <= i < row1 are filled: those the caller's output rows read.
    cdef Py_ssize_t c, i, j, si, sj
    for c in range(padded.shape[0]):
        for i in range(row0, row1):
            si = row_map[i]
            if si < 0:
                for j in range(padded.shape[2]):
                    padded[c, i, j] = 0
                continue
            for j in range(padded.shape[2]):
                sj = col_map[j]
                padded[c, i, j] = image[c, si, sj] if sj >= 0 else 0


cdef void _conv2d_image_blocked(const fp_t[:, :, ::1] padded,    # C x Hb x Wb
                                const fp_t[:, :, :, ::1] wpack,  # G*nblocks x (Cg*R*S) x KB ... flattened
                                const fp_t[::1] bias, bint has_bias,
                                fp_t[:, :, :] out,               # K x Ho x Wo
                                fp_t[::1] tile,
                                Py_ssize_t groups, Py_ssize_t R, Py_ssize_t S,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                                Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    cdef Py_ssize_t K = out.shape[0], Wo = out.shape[2]
    cdef Py_ssize_t Cg = padded.shape[0] // groups, Kg = K // groups
    cdef Py_ssize_t PT = _table.tile_pixels
    cdef Py_ssize_t KB = wpack.shape[3]
    cdef Py_ssize_t nblocks = wpack.shape[0] // groups
    cdef Py_ssize_t cs = padded.shape[1] * padded.shape[2], rs = padded.shape[2]
    cdef Py_ssize_t g, b, y, t, x0, i, k, kk, nk, npx
    cdef const fp_t *inp
    cdef const fp_t *wp
    cdef fp_t v
    for g in range(groups):
        for b in range(nblocks):
            wp = &wpack[g * nblocks + b, 0, 0, 0]
            nk = min(KB, Kg - b * KB)
            for y in range(y0, y1):
                for t in range((Wo + PT - 1) // PT):
                    x0 = t * PT
                    inp = &padded[g * Cg, y * sh, x0 * sw]
                    if fp_t is float:
                        _table.blocked_tile_f32(inp, cs, rs * dh, dw, sw, Cg, R, S, wp, &tile[0])
                    else:
                        _table.blocked_tile_f64(inp, cs, rs * dh, dw, sw, Cg, R, S, wp, &tile[0])
                    npx = min(PT, Wo - x0)
                    for kk in range(nk):
                        k = g * Kg + b * KB + kk
                        for i in range(npx):
                            v = tile[i * KB + kk]
                            if has_bias:
                                v = v + bias[k]
                            out[k, y, x0 + i] = v


cdef void _conv2d_image_spatial(const fp_t[:, :, ::1] padded,    # C x Hb x Wb
                                const fp_t[:, :, :, ::1] weight, # K x Cg x R x S
                                const fp_t[::1] bias, bint has_bias,
                                fp_t[:, :, :] out,               # K x Ho x Wo
                                fp_t[::1] row,                   # >= (Wo-1)*sw + 1
                                Py_ssize_t groups,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                                Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    cdef Py_ssize_t K = out.shape[0], Wo = out.shape[2]
    cdef Py_ssize_t Cg = weight.shape[1], R = weight.shape[2], S = weight.shape[3]
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t cs = padded.shape[1] * padded.shape[2], rs = padded.shape[2]
    cdef Py_ssize_t dense = (Wo - 1) * sw + 1
    cdef Py_ssize_t k, y, x
    cdef fp_t bk
    for k in range(K):
        bk = bias[k] if has_bias else 0
        for y in range(y0, y1):
            if fp_t is float:
                _table.spatial_row_f32(&padded[(k // Kg) * Cg, y * sh, 0], cs, rs * dh, dw,
                                       Cg, R, S, &weight[k, 0, 0, 0], &row[0], dense)
            else:
                _table.spatial_row_f64(&padded[(k // Kg) * Cg, y * sh, 0], cs, rs * dh, dw,
                                       Cg, R, S, &weight[k, 0, 0, 0], &row[0], dense)
            if has_bias:
                for x in range(Wo):
                    out[k, y, x] = row[x * sw] + bk
            else:
                for x in range(Wo):
                    out[k, y, x] = row[x * sw]


def conv2d(const fp_t[:, :, :, :] image,      # IN  N x C x H x W, any strides
           const int64_t[::1] row_map,        # IN  Hb padded rows -> source row or -1
           const int64_t[::1] col_map,        # IN  Wb padded cols -> source col or -1
           const fp_t[:, :, :, ::1] weights,  # IN  blocked: (G*nblocks, Cg*R*S... see _api) / spatial: K x Cg x R x S
           const fp_t[::1] bias,              # IN  K values, or length 0 for none
           fp_t[:, :, :, :] out,              # OUT N x K x Ho x Wo, any strides
           fp_t[:, :, ::1] padded,            # scratch C x Hb x Wb
           fp_t[::1] scratch,                 # scratch: one tile (blocked) or one dense row (spatial)
           bint blocked, Py_ssize_t groups, Py_ssize_t R, Py_ssize_t S,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t y0, Py_ssize_t y1):
    """Output rows y0 <= y < y1 of images n0 <= n < n1 (one thread's share)."""
    cdef Py_ssize_t n
    cdef bint has_bias = bias.shape[0] > 0
    cdef Py_ssize_t row0 = y0 * sh, row1 = (y1 - 1) * sh + (R - 1) * dh + 1
    with nogil:
        for n in range(n0, n1):
            _gather_padded(image[n], row_map, col_map, padded, row0, row1)
            if blocked:
                _conv2d_image_blocked(padded, weights, bias, has_bias, out[n], scratch,
                                      groups, R, S, sh, sw, dh, dw, y0, y1)
            else:
                _conv2d_image_spatial(padded, weights, bias, has_bias, out[n], scratch,
                                      groups, sh, sw, dh, dw, y0, y1)
