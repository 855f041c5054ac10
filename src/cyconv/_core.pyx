"""Typed loops of cyconv. Internal: the Python layer validates every argument,
allocates every output and scratch buffer, and only then calls in here.
Nothing here raises for bad input; every kernel runs without the GIL."""

from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from libc.math cimport isnan, isinf, copysign, INFINITY

cdef extern from "kernels.h" nogil:
    ctypedef Py_ssize_t cyc_index
    ctypedef void (*cyc_spatial_row_f32)(const float *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                         cyc_index C, cyc_index R, cyc_index S,
                                         const float *w, float *out, cyc_index width)
    ctypedef void (*cyc_spatial_row_f64)(const double *inp, cyc_index cs, cyc_index rs, cyc_index ds,
                                         cyc_index C, cyc_index R, cyc_index S,
                                         const double *w, double *out, cyc_index width)
    ctypedef void (*cyc_spatial_rows_f32)(const float *inp, cyc_index cs, cyc_index rs,
                                          cyc_index C, cyc_index R, cyc_index S,
                                          const float *w, float *out, cyc_index os,
                                          cyc_index width, cyc_index nrows)
    ctypedef void (*cyc_spatial_rows_f64)(const double *inp, cyc_index cs, cyc_index rs,
                                          cyc_index C, cyc_index R, cyc_index S,
                                          const double *w, double *out, cyc_index os,
                                          cyc_index width, cyc_index nrows)
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
        cyc_spatial_rows_f32 spatial_rows_f32
        cyc_spatial_rows_f64 spatial_rows_f64
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

ctypedef fused part_t:   # the real type of each half of a complex number
    float
    double
    long double


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
# Padding: copy padded rows of a plane into a C-contiguous buffer
# ---------------------------------------------------------------------------

cdef void _gather_rows(const real_t[:, :] plane,      # H x W, any strides
                       const int64_t[::1] row_map,    # padded row -> source row, or -1
                       const int64_t[::1] col_map,    # padded col -> source col, or -1
                       Py_ssize_t left,               # padded cols [left, left+W) are the plane's own
                       real_t fill,                   # value where a map says -1
                       real_t *dst, Py_ssize_t width, # dst rows of `width` = len(col_map)
                       Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    """Padded rows i0 <= i < i1 into dst rows 0, 1, ...: the boundary rule is
    entirely in the two maps, so the compute loops never see a border."""
    cdef Py_ssize_t i, j, si, sj
    cdef Py_ssize_t W = plane.shape[1]
    cdef Py_ssize_t xs = plane.strides[1] // <Py_ssize_t>sizeof(real_t)
    cdef const real_t *src
    for i in range(i0, i1):
        si = row_map[i]
        if si < 0 or W == 0:
            for j in range(width):
                dst[j] = fill
        else:
            src = &plane[si, 0]
            for j in range(left):
                sj = col_map[j]
                dst[j] = src[sj * xs] if sj >= 0 else fill
            if xs == 1:
                memcpy(dst + left, src, W * sizeof(real_t))
            else:
                for j in range(W):
                    dst[left + j] = src[j * xs]
            for j in range(left + W, width):
                sj = col_map[j]
                dst[j] = src[sj * xs] if sj >= 0 else fill
        dst += width


# ---------------------------------------------------------------------------
# 2-D correlation of one plane (convolve2d / correlate2d)
# ---------------------------------------------------------------------------

cdef void _correlate_row_generic(const real_t *image, Py_ssize_t width_in,
                                 const real_t[:, ::1] kernel,
                                 real_t *out, Py_ssize_t width) noexcept nogil:
    # One output row as row-wide multiply-adds: the innermost loop runs along
    # contiguous memory with no branches, in (kernel row, kernel column) order.
    cdef Py_ssize_t u, v, j
    cdef real_t w
    cdef const real_t *irow
    for j in range(width):
        out[j] = 0
    for u in range(kernel.shape[0]):
        irow = image + u * width_in
        for v in range(kernel.shape[1]):
            w = kernel[u, v]
            for j in range(width):
                out[j] = out[j] + w * irow[j + v]


def correlate_plane(const real_t[:, :] image,      # IN  H x W, any strides
                    const int64_t[::1] row_map,    # IN  Ho+M-1 padded rows -> source row or -1
                    const int64_t[::1] col_map,    # IN  Wo+N-1 padded cols -> source col or -1
                    Py_ssize_t left,               # IN  padding before column 0
                    const real_t[::1] fill,        # IN  one value, used where a map says -1
                    const real_t[:, ::1] kernel,   # IN  M x N, M, N >= 1
                    real_t[:, ::1] out,            # OUT Ho x Wo
                    real_t[:, ::1] strip,          # scratch (rows + M - 1) x (Wo + N - 1)
                    Py_ssize_t row0, Py_ssize_t row1):
    """out[i, j] = sum_{u,v} padded[i+u, j+v] * kernel[u, v] for rows row0 <= i < row1,
    padding a strip of rows at a time into `strip` (sized to stay in cache)."""
    cdef Py_ssize_t M = kernel.shape[0], N = kernel.shape[1]
    cdef Py_ssize_t Wo = out.shape[1], Wp = strip.shape[1]
    cdef Py_ssize_t rows = strip.shape[0] - M + 1
    cdef Py_ssize_t y, y1, i
    with nogil:
        y = row0
        while y < row1:
            y1 = min(y + rows, row1)
            _gather_rows(image, row_map, col_map, left, fill[0], &strip[0, 0], Wp, y, y1 + M - 1)
            if real_t is float:
                _table.spatial_rows_f32(&strip[0, 0], 0, Wp, 1, M, N, &kernel[0, 0],
                                        &out[y, 0], Wo, Wo, y1 - y)
            elif real_t is double:
                _table.spatial_rows_f64(&strip[0, 0], 0, Wp, 1, M, N, &kernel[0, 0],
                                        &out[y, 0], Wo, Wo, y1 - y)
            else:
                for i in range(y, y1):
                    _correlate_row_generic(&strip[i - y, 0], Wp, kernel, &out[i, 0], Wo)
            y = y1


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
    strip by strip: pad rows, filter them along the row into `across`, then
    filter `across` down the columns into `out`; all in cache."""
    cdef Py_ssize_t M = kcol.shape[0], N = krow.shape[0]
    cdef Py_ssize_t Wo = out.shape[1], Wp = strip.shape[1]
    cdef Py_ssize_t rows = strip.shape[0] - M + 1
    cdef Py_ssize_t y, y1
    with nogil:
        y = row0
        while y < row1:
            y1 = min(y + rows, row1)
            _gather_rows(image, row_map, col_map, left, fill[0], &strip[0, 0], Wp, y, y1 + M - 1)
            if fp_t is float:
                _table.spatial_rows_f32(&strip[0, 0], 0, Wp, 1, 1, N, &krow[0],
                                        &across[0, 0], Wo, Wo, y1 - y + M - 1)
                _table.spatial_rows_f32(&across[0, 0], 0, Wo, 1, M, 1, &kcol[0],
                                        &out[y, 0], Wo, Wo, y1 - y)
            else:
                _table.spatial_rows_f64(&strip[0, 0], 0, Wp, 1, 1, N, &krow[0],
                                        &across[0, 0], Wo, Wo, y1 - y + M - 1)
                _table.spatial_rows_f64(&across[0, 0], 0, Wo, 1, M, 1, &kcol[0],
                                        &out[y, 0], Wo, Wo, y1 - y)
            y = y1


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

cdef inline void _store_tile(const fp_t *tile, Py_ssize_t KB, Py_ssize_t nk,
                             fp_t[:, :, :] out, Py_ssize_t k0, Py_ssize_t y, Py_ssize_t x,
                             Py_ssize_t npx, const fp_t[::1] bias, bint has_bias) noexcept nogil:
    # npx pixels of one output row from a channels-innermost tile, plus bias.
    cdef Py_ssize_t xs = out.strides[2] // <Py_ssize_t>sizeof(fp_t)
    cdef Py_ssize_t i, kk
    cdef fp_t *o
    cdef fp_t bk
    for kk in range(nk):
        o = &out[k0 + kk, y, x]
        if has_bias:
            bk = bias[k0 + kk]
            for i in range(npx):
                o[i * xs] = tile[i * KB + kk] + bk
        else:
            for i in range(npx):
                o[i * xs] = tile[i * KB + kk]


cdef void _gather_edge(const fp_t[:, :, ::1] padded, Py_ssize_t c0, Py_ssize_t Cg,
                       Py_ssize_t row, Py_ssize_t dh, Py_ssize_t x0, Py_ssize_t npx,
                       Py_ssize_t sw, Py_ssize_t dw, Py_ssize_t R, Py_ssize_t S,
                       Py_ssize_t PT, fp_t[::1] edge) noexcept nogil:
    cdef Py_ssize_t c, r, i, s
    cdef fp_t *e = &edge[0]
    for c in range(Cg):
        for r in range(R):
            for i in range(PT):
                for s in range(S):
                    e[0] = padded[c0 + c, row + r * dh, (x0 + i) * sw + s * dw] if i < npx else 0
                    e += 1


cdef void _conv2d_image_blocked(const fp_t[:, :, ::1] padded,    # C x Hb x Wb
                                const fp_t[:, :, :, ::1] wpack,  # G*blocks x Cg x R*S x KB
                                const fp_t[::1] bias, bint has_bias,
                                fp_t[:, :, :] out,               # K x Ho x Wo
                                fp_t[::1] tile,                  # PT x KB
                                fp_t[::1] edge,                  # Cg x R x PT x S
                                Py_ssize_t groups, Py_ssize_t R, Py_ssize_t S,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                                bint flat, Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """Output rows y0 <= y < y1, in tiles of PT pixels x KB channels.

    Row tiles run along one output row (any stride). Flat tiles (unit
    stride only) run along the padded image read as one long row of pitch
    Wb, so narrow images fill whole tiles; the Wb - Wo pixels per row that
    land in the padding are computed and dropped."""
    cdef Py_ssize_t K = out.shape[0], Wo = out.shape[2]
    cdef Py_ssize_t Cg = padded.shape[0] // groups, Kg = K // groups
    cdef Py_ssize_t PT = _table.tile_pixels
    cdef Py_ssize_t KB = wpack.shape[3]
    cdef Py_ssize_t nblocks = wpack.shape[0] // groups
    cdef Py_ssize_t Wb = padded.shape[2]
    cdef Py_ssize_t cs = padded.shape[1] * Wb
    cdef Py_ssize_t g, b, y, t, x, k0, nk, f, f_end, npx
    cdef const fp_t *inp
    cdef const fp_t *wp
    for g in range(groups):
        for b in range(nblocks):
            wp = &wpack[g * nblocks + b, 0, 0, 0]
            k0 = g * Kg + b * KB
            nk = min(KB, Kg - b * KB)
            if flat:
                f_end = (y1 - 1) * Wb + Wo
                f = y0 * Wb
                while f < f_end:
                    inp = &padded[g * Cg, 0, 0] + f
                    if fp_t is float:
                        _table.blocked_tile_f32(inp, cs, Wb * dh, dw, 1, Cg, R, S, wp, &tile[0])
                    else:
                        _table.blocked_tile_f64(inp, cs, Wb * dh, dw, 1, Cg, R, S, wp, &tile[0])
                    # Store the tile's pixels row by row, skipping padding columns.
                    t = 0
                    while t < PT and f + t < f_end:
                        y = (f + t) // Wb
                        x = (f + t) - y * Wb
                        npx = min(PT - t, Wb - x)
                        if x < Wo:
                            _store_tile(&tile[t * KB], KB, nk, out, k0, y, x,
                                        min(npx, Wo - x), bias, has_bias)
                        t = t + npx
                    f = f + PT
            else:
                for y in range(y0, y1):
                    for t in range((Wo + PT - 1) // PT):
                        x = t * PT
                        npx = min(PT, Wo - x)
                        if npx == PT:
                            inp = &padded[g * Cg, y * sh, x * sw]
                            if fp_t is float:
                                _table.blocked_tile_f32(inp, cs, Wb * dh, dw, sw, Cg, R, S,
                                                        wp, &tile[0])
                            else:
                                _table.blocked_tile_f64(inp, cs, Wb * dh, dw, sw, Cg, R, S,
                                                        wp, &tile[0])
                        else:
                            # A partial tile: its missing pixels would read past the
                            # row, so the pixels it needs are gathered into `edge`,
                            # laid out [c][r][pixel][s], zeros for missing pixels.
                            _gather_edge(padded, g * Cg, Cg, y * sh, dh, x, npx, sw, dw,
                                         R, S, PT, edge)
                            if fp_t is float:
                                _table.blocked_tile_f32(&edge[0], R * PT * S, PT * S, 1, S,
                                                        Cg, R, S, wp, &tile[0])
                            else:
                                _table.blocked_tile_f64(&edge[0], R * PT * S, PT * S, 1, S,
                                                        Cg, R, S, wp, &tile[0])
                        _store_tile(&tile[0], KB, nk, out, k0, y, x, npx, bias, has_bias)


cdef void _conv2d_image_spatial(const fp_t[:, :, ::1] padded,    # C x Hb x Wb
                                const fp_t[:, :, :, ::1] weight, # K x Cg x R x S
                                const fp_t[::1] bias, bint has_bias,
                                fp_t[:, :, :] out,               # K x Ho x Wo
                                fp_t[::1] rows,                  # a few dense rows of (Wo-1)*sw + 1
                                Py_ssize_t groups,
                                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                                Py_ssize_t y0, Py_ssize_t y1) noexcept nogil:
    """Output rows y0 <= y < y1, one output channel at a time, vectorized
    along the row (for few output channels per group, e.g. depthwise).
    Rows are computed at unit column stride into `rows`, then subsampled."""
    cdef Py_ssize_t K = out.shape[0], Wo = out.shape[2]
    cdef Py_ssize_t Cg = weight.shape[1], R = weight.shape[2], S = weight.shape[3]
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t cs = padded.shape[1] * padded.shape[2], rs = padded.shape[2]
    cdef Py_ssize_t dense = (Wo - 1) * sw + 1
    cdef bint multi_row = sh == 1 and dh == 1 and dw == 1
    cdef Py_ssize_t batch = max(1, rows.shape[0] // dense) if multi_row else 1
    cdef Py_ssize_t k, y, yn, i, x
    cdef Py_ssize_t xs = out.strides[2] // <Py_ssize_t>sizeof(fp_t)
    cdef const fp_t *inp
    cdef const fp_t *src
    cdef fp_t *o
    cdef fp_t bk
    for k in range(K):
        bk = bias[k] if has_bias else 0
        y = y0
        while y < y1:
            yn = min(y + batch, y1)
            inp = &padded[(k // Kg) * Cg, y * sh, 0]
            if fp_t is float:
                if multi_row:
                    _table.spatial_rows_f32(inp, cs, rs, Cg, R, S, &weight[k, 0, 0, 0],
                                            &rows[0], dense, dense, yn - y)
                else:
                    _table.spatial_row_f32(inp, cs, rs * dh, dw, Cg, R, S,
                                           &weight[k, 0, 0, 0], &rows[0], dense)
            else:
                if multi_row:
                    _table.spatial_rows_f64(inp, cs, rs, Cg, R, S, &weight[k, 0, 0, 0],
                                            &rows[0], dense, dense, yn - y)
                else:
                    _table.spatial_row_f64(inp, cs, rs * dh, dw, Cg, R, S,
                                           &weight[k, 0, 0, 0], &rows[0], dense)
            for i in range(yn - y):
                o = &out[k, y + i, 0]
                src = &rows[i * dense]
                if has_bias:
                    for x in range(Wo):
                        o[x * xs] = src[x * sw] + bk
                else:
                    for x in range(Wo):
                        o[x * xs] = src[x * sw]
            y = yn


def pack_weights(const fp_t[:, :, :, :] weight,   # IN  K x Cg x R x S, any strides
                 Py_ssize_t groups,
                 fp_t[:, :, :, ::1] packed):        # OUT groups*blocks x Cg x R*S x KB
    """Blocks of KB output channels, channels innermost, zeros past K/groups."""
    cdef Py_ssize_t K = weight.shape[0], Cg = weight.shape[1]
    cdef Py_ssize_t R = weight.shape[2], S = weight.shape[3]
    cdef Py_ssize_t KB = packed.shape[3], blocks = packed.shape[0] // groups
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t g, b, kk, nk, c, r, s
    cdef fp_t *dst = &packed[0, 0, 0, 0]
    cdef const char *src
    cdef const char *base = <const char *>&weight[0, 0, 0, 0]
    cdef Py_ssize_t sk = weight.strides[0], sc = weight.strides[1]
    cdef Py_ssize_t sr = weight.strides[2], ss = weight.strides[3]
    with nogil:
        # One (block, input channel) at a time: read each kernel's R x S
        # run once, write into an L1-sized piece of the output.
        for g in range(groups):
            for b in range(blocks):
                nk = min(KB, Kg - b * KB)
                for c in range(Cg):
                    for kk in range(KB):
                        if kk < nk:
                            src = base + (g * Kg + b * KB + kk) * sk + c * sc
                            for r in range(R):
                                for s in range(S):
                                    dst[(r * S + s) * KB + kk] = \
                                        (<const fp_t *>(src + r * sr + s * ss))[0]
                        else:
                            for r in range(R * S):
                                dst[r * KB + kk] = 0
                    dst += R * S * KB


def conv2d(const fp_t[:, :, :, :] image,      # IN  N x C x H x W, any strides
           const int64_t[::1] row_map,        # IN  Hb padded rows -> source row or -1
           const int64_t[::1] col_map,        # IN  Wb padded cols -> source col or -1
           const fp_t[:, :, :, ::1] weights,  # IN  blocked: (G*nblocks, Cg*R*S... see _api) / spatial: K x Cg x R x S
           const fp_t[::1] bias,              # IN  K values, or length 0 for none
           fp_t[:, :, :, :] out,              # OUT N x K x Ho x Wo, any strides
           fp_t[:, :, ::1] padded,            # scratch C x Hb x Wb
           fp_t[::1] scratch,                 # scratch: one tile (blocked) or dense rows (spatial)
           fp_t[::1] edge,                    # scratch: Cg x R x PT x S (blocked), else unused
           bint blocked, bint flat, Py_ssize_t groups, Py_ssize_t R, Py_ssize_t S,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t left, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t y0, Py_ssize_t y1):
    """Output rows y0 <= y < y1 of images n0 <= n < n1 (one thread's share)."""
    cdef Py_ssize_t n, c
    cdef bint has_bias = bias.shape[0] > 0
    # Padded rows these output rows read; flat tiles also read the zero
    # rows past the bottom of the padded image, where their last tile overruns.
    cdef Py_ssize_t row0 = y0 * sh
    cdef Py_ssize_t row1 = padded.shape[1] if flat else (y1 - 1) * sh + (R - 1) * dh + 1
    with nogil:
        for n in range(n0, n1):
            for c in range(padded.shape[0]):
                _gather_rows(image[n, c], row_map, col_map, left, <fp_t>0,
                             &padded[c, row0, 0], padded.shape[2], row0, row1)
            if blocked:
                _conv2d_image_blocked(padded, weights, bias, has_bias, out[n], scratch, edge,
                                      groups, R, S, sh, sw, dh, dw, flat, y0, y1)
            else:
                _conv2d_image_spatial(padded, weights, bias, has_bias, out[n], scratch,
                                      groups, sh, sw, dh, dw, y0, y1)
