"""conv2d_backward and conv_transpose2d without PyTorch.

conv2d is linear in its input and in its weight, so its gradients are the
transposes of two linear maps that cyconv.conv2d (tested against SciPy and
PyTorch elsewhere) already defines:

* basis: on tiny problems the transpose is built column by column, one
  conv2d call per basis vector, and compared entry by entry;
* adjoint identity: <conv2d(x, w), g> == <x, grad_input> == <w, grad_weight>
  on random arrays of every argument combination, in float64;
* finite differences of a nonlinear loss through conv2d;
* conv_transpose2d is conv2d's input gradient as a layer (plus its bias).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cyconv

MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def rand(rng, shape, dtype=F64):
    return rng.standard_normal(shape).astype(dtype)


def problem(seed, N=2, C=4, K=6, H=7, W=8, R=3, S=2, groups=2, **conv):
    rng = np.random.default_rng(seed)
    x = rand(rng, (N, C, H, W))
    w = rand(rng, (K, C // groups, R, S))
    y = cyconv.conv2d(x, w, groups=groups, **conv)
    g = rand(rng, y.shape)
    return x, w, g, dict(groups=groups, **conv)


def transpose_by_basis(f, shape, g):
    """Column i of f's transpose applied to g: <f(e_i), g>, for the linear f."""
    out = np.empty(int(np.prod(shape)))
    for i in range(out.size):
        e = np.zeros(out.size)
        e[i] = 1.0
        out[i] = np.vdot(f(e.reshape(shape)), g)
    return out.reshape(shape)


# --------------------------------------------------------------------------- exact transposes

BASIS_CASES = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 3), padding=1),
    dict(stride=3, dilation=2, padding=(2, 1)),
    dict(padding=(1, 2, 0, 1)),
    dict(padding="same"),
    dict(padding="same", stride=2),
    dict(padding="same", stride=(3, 2), dilation=(1, 2)),
    dict(dilation=(2, 1), padding="valid"),
] + [dict(padding=(1, 2, 2, 1), stride=s, padding_mode=m)
     for m in MODES[1:] for s in (1, 2)] + [dict(padding="same", stride=2, padding_mode=m)
                                            for m in MODES[1:]]


@pytest.mark.parametrize("conv", BASIS_CASES, ids=repr)
@pytest.mark.parametrize("groups", [2, 1])   # (strided, one group: the products)
def test_gradients_are_the_exact_transposes(conv, groups):
    x, w, g, kw = problem(1, N=2, C=2, K=4, H=5, W=6, R=3, S=2, groups=groups, **conv)
    gi, gw, gb = cyconv.conv2d_backward(g, x, w, **kw)
    want_gi = transpose_by_basis(lambda e: cyconv.conv2d(e, w, **kw), x.shape, g)
    want_gw = transpose_by_basis(lambda e: cyconv.conv2d(x, e, **kw), w.shape, g)
    np.testing.assert_allclose(gi, want_gi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("K", [3, 6], ids=["depthwise", "multiplier 2"])
@pytest.mark.parametrize("conv", [dict(), dict(stride=2, padding=1),
                                  dict(dilation=2, padding="same", padding_mode="reflect")],
                         ids=repr)
def test_depthwise_weight_gradient_over_images(K, conv):
    # One input channel per group: every group's taps at once, image by image
    # (18x18 unpadded at unit stride: one product per image) or all together.
    x, w, g, kw = problem(2, N=3, C=3, K=K, H=18, W=18, R=3, S=3, groups=3, **conv)
    gw = cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1]
    want = transpose_by_basis(lambda e: cyconv.conv2d(x, e, **kw), w.shape, g)
    np.testing.assert_allclose(gw, want, rtol=1e-12, atol=1e-12)


def weight_gradient_by_taps(g, x, w_shape, stride, padding, dilation, groups, mode):
    """The weight gradient in float64, one einsum per tap over a padded copy."""
    (sh, sw), (dh, dw) = stride, dilation
    left, right, top, bottom = padding   # as conv2d's four-number padding
    K, Cg, R, S = w_shape
    G, (N, _, Ho, Wo) = groups, g.shape
    np_mode = {"zeros": "constant", "circular": "wrap", "replicate": "edge",
               "symmetric": "symmetric", "reflect": "reflect"}[mode]
    xp = np.pad(x.astype(F64), ((0, 0), (0, 0), (top, bottom), (left, right)), mode=np_mode)
    xp = xp.reshape(N, G, Cg, *xp.shape[2:])
    gg = g.astype(F64).reshape(N, G, K // G, Ho, Wo)
    out = np.empty((G, K // G, Cg, R, S))
    for r in range(R):
        for s_ in range(S):
            taps = xp[..., r * dh:r * dh + sh * (Ho - 1) + 1:sh, s_ * dw:s_ * dw + sw * (Wo - 1) + 1:sw]
            out[..., r, s_] = np.einsum("ngkyx,ngcyx->gkc", gg, taps)
    return out.reshape(w_shape)


def assert_weight_gradient(got, g, x, w, stride, padding, dilation, groups, mode):
    """got within a few roundings per summed product of the float64 sums."""
    want = weight_gradient_by_taps(g, x, w.shape, stride, padding, dilation, groups, mode)
    scale = weight_gradient_by_taps(abs(g), abs(x), w.shape, stride, padding, dilation, groups,
                                    mode)
    tol = 8 * np.finfo(x.dtype).eps * (g.shape[0] * g.shape[2] * g.shape[3])
    assert got.dtype == x.dtype
    assert np.all(abs(got - want) <= tol * scale + np.finfo(x.dtype).tiny)


# Channel counts either side of the tiles' widths (AVX-512: 14 pixels, the
# narrow ones 10 and 5, blocks of 32 float32 / 16 float64 channels; AVX2: 6,
# 4, 2 and 16 / 8; AVX-512's narrow tiles where 512-bit FMAs run at full
# width, for 16 / 8 channels and fewer: 24, 16, 12 and 8 elements): fewer
# input channels than a tile are copied channels last (a kernel row's taps
# and channels side by side), more are read in place; the last tile of a
# tap set is narrower or moved back.
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("N, Cg, Kg, groups, H, W, R, S, stride, dilation, padding, mode", [
    (4, 1, 16, 1, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),   # one input channel
    (2, 1, 33, 1, 13, 12, 7, 7, (2, 2), (1, 1), (3, 3, 3, 3), "zeros"),
    (3, 1, 5, 1, 9, 10, 5, 3, (1, 2), (2, 1), (2, 1, 0, 1), "reflect"),
    (1, 2, 5, 1, 9, 11, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),
    (2, 3, 64, 1, 23, 21, 7, 7, (2, 2), (1, 1), (3, 3, 3, 3), "zeros"),
    (1, 5, 33, 2, 12, 10, 3, 2, (1, 2), (2, 1), (2, 1, 0, 1), "reflect"),
    (2, 6, 16, 1, 8, 9, 3, 3, (1, 1), (1, 2), (1, 1, 2, 2), "circular"),
    (1, 7, 17, 1, 10, 10, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), "zeros"),
    (1, 13, 40, 1, 9, 8, 2, 3, (2, 1), (1, 1), (0, 1, 1, 0), "replicate"),
    (3, 14, 32, 1, 7, 7, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),
    (1, 15, 8, 2, 11, 9, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1), "symmetric"),
    (2, 19, 31, 1, 6, 13, 3, 1, (1, 3), (2, 1), (2, 2, 0, 0), "zeros"),
    (1, 24, 48, 1, 9, 9, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "reflect"),
    (1, 33, 65, 1, 7, 7, 1, 1, (2, 2), (1, 1), (0, 0, 0, 0), "zeros"),
    (2, 64, 20, 1, 5, 6, 3, 3, (1, 1), (1, 2), (1, 1, 2, 2), "zeros"),
    (2, 1, 12, 1, 10, 9, 5, 5, (1, 1), (1, 1), (2, 2, 2, 2), "zeros"),   # 5 taps a row
    (1, 30, 16, 1, 7, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),   # 24, then 8 moved back
    (2, 40, 9, 1, 6, 6, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), "zeros"),    # 24 + 16
    # tiny images: the batch as one tall image (_kernel_rows_stacked)
    (5, 24, 40, 1, 2, 2, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),
    (4, 16, 33, 1, 4, 3, 3, 3, (2, 1), (1, 1), (1, 1, 1, 1), "zeros"),
    (3, 8, 16, 2, 3, 3, 3, 3, (1, 1), (2, 1), (2, 2, 1, 1), "zeros"),
    (3, 6, 16, 1, 3, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "reflect"),
])
def test_weight_gradient_tiles(N, Cg, Kg, groups, H, W, R, S, stride, dilation, padding, mode,
                               dtype, monkeypatch, rows_512_restored):
    from cyconv import _conv2d_grad
    monkeypatch.setattr(_conv2d_grad, "_PIXEL_TAPS", False)   # (tested below)
    rng = np.random.default_rng(Cg * 100 + Kg)
    x = rand(rng, (N, Cg * groups, H, W), dtype)
    w = rand(rng, (Kg * groups, Cg, R, S), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=mode)
    g = rand(rng, cyconv.conv2d(x, w, **kw).shape, dtype)
    got = cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1]
    assert_weight_gradient(got, g, x, w, stride, padding, dilation, groups, mode)
    # The same sums in the same order: the same bits in either layout, with
    # one output row per pass (partial sums kept between passes), and for
    # any thread count.
    same = [cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), workers=3,
                                   **kw)[1]]
    # and in the other tiles of narrow layers (AVX-512's or AVX2's: rows_512)
    from cyconv import _core
    _core.set_rows_512(not _core.rows_512())
    same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1])
    _core.set_rows_512(not _core.rows_512())
    # and with the products of zero padding rows kept, and the images one
    # by one or as one tall image, whatever their size
    for skip, stacked in ((False, 0), (True, 0), (True, 1 << 30)):
        monkeypatch.setattr(_conv2d_grad, "_SKIP_PADDING_ROWS", skip)
        monkeypatch.setattr(_conv2d_grad, "_STACKED_ROWS_PIXELS", stacked)
        same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1])
    monkeypatch.setattr(_conv2d_grad, "_FORCE_CHANNELS_LAST", True)
    same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1])
    # (the channels-last copy's padding frame zeroed alone, not the whole copy)
    monkeypatch.setattr(_conv2d_grad, "_ZEROED_BYTES", 0)
    same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1])
    monkeypatch.setattr(_conv2d_grad, "_BAND_BYTES", 1)
    same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1])
    # and for any split of the units into pieces: one unit each, or all in one
    from cyconv import _parallel
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), workers=1,
                                       **kw)[1])
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1 << 40)
    monkeypatch.setattr(_conv2d_grad, "_PIECE_SCRATCH_BYTES", 1 << 40)
    same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), workers=1,
                                       **kw)[1])
    # and with grad_output copied channels last whole before the pieces, or
    # by each piece band by band: pieces of one unit or of all, bands of
    # one row or of several (which cross images when tiny images go as one
    # tall image)
    monkeypatch.setattr(_conv2d_grad, "_FORCE_CHANNELS_LAST", False)
    for copies in (0, float("inf")):
        monkeypatch.setattr(_conv2d_grad, "_BAND_COPIES", copies)
        for band_bytes, stacked, chunk_work in ((65536, 1 << 30, 1), (65536, 0, 1 << 40),
                                                (1, 0, 1)):
            monkeypatch.setattr(_conv2d_grad, "_BAND_BYTES", band_bytes)
            monkeypatch.setattr(_conv2d_grad, "_STACKED_ROWS_PIXELS", stacked)
            monkeypatch.setattr(_parallel, "CHUNK_WORK", chunk_work)
            same.append(cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False),
                                               workers=1, **kw)[1])
    for other in same:
        np.testing.assert_array_equal(other, got)


def test_weight_gradient_band_copies_per_block_and_thread():
    """_band_copies: how many times the pieces would copy each block of
    grad_output's bands, per thread (units u = (set * blocks + block) *
    tiles + tile; a piece copies the blocks its units use)."""
    from cyconv._conv2d_grad import _band_copies
    tiles, blocks, sets = 2, 3, 4
    units = sets * blocks * tiles
    assert _band_copies([(0, 0, units)], tiles, blocks, 1) == 1
    one_each = [(0, u, u + 1) for u in range(units)]
    assert _band_copies(one_each, tiles, blocks, 1) == units / blocks
    assert _band_copies(one_each, tiles, blocks, 2) == units / blocks / 2
    # a piece of the second tile of (set 0, block 2) and the first of (set 1, block 0)
    assert _band_copies([(0, 5, 7)], tiles, blocks, 1) == 2 / 3
    # the same pieces in two groups: each group's blocks are its own
    assert _band_copies([(0, 0, units), (1, 0, units)], tiles, blocks, 1) == 1


@pytest.mark.parametrize("copies, band_bytes", [(0, 65536), (float("inf"), 65536),
                                                (float("inf"), 1)])
@pytest.mark.parametrize("value", [np.inf, np.nan])
@pytest.mark.parametrize("H", [3, 9])
def test_weight_gradient_keeps_padding_products_of_nonfinite_grad_output(H, value, copies,
                                                                         band_bytes, monkeypatch):
    """Zero padding rows' products are left out of the weight gradient's
    sums only while grad_output is finite: inf x 0 is NaN. (grad_output
    copied whole and checked first, or band by band, each band checked as
    it is copied: with one row a band, the other bands leave them out.)"""
    from cyconv import _conv2d_grad
    monkeypatch.setattr(_conv2d_grad, "_PIXEL_TAPS", False)
    monkeypatch.setattr(_conv2d_grad, "_BAND_COPIES", copies)
    monkeypatch.setattr(_conv2d_grad, "_BAND_BYTES", band_bytes)
    rng = np.random.default_rng(H)
    x, w = rand(rng, (3, 16, H, H), F32), rand(rng, (24, 16, 3, 3), F32)
    g = rand(rng, (3, 24, H, H), F32)
    g[1, 5, 0, 0] = value   # reads the top padding row through kernel row 0
    got = cyconv.conv2d_backward(g, x, w, padding=1, output_mask=(False, True, False))[1]
    assert np.isnan(got[5, :, 0, :]).all()
    monkeypatch.setattr(_conv2d_grad, "_SKIP_PADDING_ROWS", False)
    kept = cyconv.conv2d_backward(g, x, w, padding=1, output_mask=(False, True, False))[1]
    np.testing.assert_array_equal(got, kept)


# Layers of few taps with the output pixels in the vector lanes
# (_core.pixel_taps): blocks of 3 channels x 9 taps (AVX-512, NEON) or 2 x 5
# (AVX2, SSE2), the last moved back (fewer channels or taps than a block:
# repeated); row widths either side of the vectors (AVX-512: a masked last
# vector; AVX2: half vectors, then single pixels); strides (across the rows:
# the padded input split into column phases), dilations, padding modes and
# groups.
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("N, Cg, Kg, groups, H, W, R, S, stride, dilation, padding, mode", [
    (4, 1, 16, 1, 8, 8, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),
    (3, 2, 1, 1, 9, 17, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),     # one channel out
    (2, 1, 2, 1, 10, 33, 2, 2, (1, 1), (1, 1), (0, 0, 0, 0), "zeros"),    # four taps
    (2, 3, 5, 1, 12, 28, 3, 3, (2, 1), (1, 1), (1, 1, 1, 1), "reflect"),  # 27 taps
    (3, 2, 7, 1, 11, 15, 1, 3, (1, 1), (1, 2), (0, 2, 2, 0), "circular"),
    (2, 1, 6, 1, 14, 13, 5, 5, (1, 1), (1, 1), (0, 0, 0, 0), "zeros"),    # LeNet-like
    (1, 1, 4, 3, 9, 31, 3, 2, (3, 1), (2, 1), (2, 0, 1, 1), "replicate"),
    (5, 2, 3, 2, 7, 1, 3, 1, (1, 1), (1, 1), (1, 1, 0, 0), "symmetric"),  # one column
    (2, 1, 20, 1, 6, 16, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), "zeros"),    # rows of 16
    (2, 3, 9, 1, 5, 47, 3, 3, (1, 1), (2, 2), (2, 2, 2, 2), "zeros"),
    (2, 3, 8, 1, 7, 135, 3, 3, (2, 2), (1, 1), (1, 1, 1, 1), "zeros"),   # column phases
    (2, 1, 5, 1, 9, 200, 5, 5, (1, 3), (1, 2), (2, 1, 0, 3), "reflect"),
    (1, 2, 4, 2, 5, 259, 2, 3, (1, 4), (1, 1), (0, 0, 0, 0), "zeros"),    # stride past the taps
])
def test_weight_gradient_pixel_taps(N, Cg, Kg, groups, H, W, R, S, stride, dilation, padding,
                                    mode, dtype, monkeypatch):
    from cyconv import _conv2d_grad, _core, _parallel
    rng = np.random.default_rng(Cg * 100 + Kg + W)
    x = rand(rng, (N, Cg * groups, H, W), dtype)
    w = rand(rng, (Kg * groups, Cg, R, S), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=mode)
    g = rand(rng, cyconv.conv2d(x, w, **kw).shape, dtype)
    calls = []
    pixel_taps = _core.pixel_taps
    monkeypatch.setattr(_core, "pixel_taps", lambda *a: (calls.append(a), pixel_taps(*a)))

    def grad(**extra):
        return cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw,
                                      **extra)[1]

    got = grad()
    assert calls
    assert_weight_gradient(got, g, x, w, stride, padding, dilation, groups, mode)
    # the same bits for any thread count, pieces of images cut alike
    np.testing.assert_array_equal(grad(workers=3), got)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    np.testing.assert_array_equal(grad(workers=2), got)
    # and the other routes agree to rounding
    monkeypatch.setattr(_conv2d_grad, "_PIXEL_TAPS", False)
    calls.clear()
    other = grad()
    assert not calls
    assert_weight_gradient(other, g, x, w, stride, padding, dilation, groups, mode)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("W", [7, 16, 21, 28, 40])
def test_weight_gradient_pixel_taps_reads_only_its_pixels(W, dtype):
    """The row's last vector reads no pixel past the taps' windows: with a
    NaN in the input's last column and no padding, the taps of kernel
    column 0 never see it, so their sums stay finite (and exact: every value
    here is an integer)."""
    rng = np.random.default_rng(W)
    x = rng.integers(-4, 5, (2, 1, 6, W)).astype(dtype)
    x[:, :, :, -1] = np.nan
    w = np.ones((5, 1, 3, 3), dtype)
    g = rng.integers(-4, 5, cyconv.conv2d(x, w).shape).astype(dtype)
    got = cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False))[1]
    assert np.isnan(got[:, :, :, 2]).all()
    want = np.einsum("nkyx,ncyx->kc", g.astype(np.float64), x[:, :, :4, :W - 2].astype(np.float64))
    np.testing.assert_array_equal(got[:, :, 0, 0], want)


def test_weight_gradient_pieces_share_grad_output(monkeypatch):
    """_grad_weight_tiles cuts its units into pieces of up to _PIECE_CHUNKS
    CHUNK_WORKs, so that each piece reads grad_output once for many units,
    and no larger than _PIECE_SCRATCH_BYTES of partial sums between passes
    (never smaller than CHUNK_WORK)."""
    from cyconv import _conv2d_grad, _parallel
    seen = []
    run_work = _parallel.run_work

    def record(job, chunks, work, workers):
        seen.append([u1 - u0 for _, u0, u1 in chunks])
        run_work(job, chunks, work, workers)

    monkeypatch.setattr(_parallel, "run_work", record)
    rng = np.random.default_rng(5)
    x = rand(rng, (8, 3, 64, 64), np.float32)   # conv1-like: few channels, many pixels
    w = rand(rng, (64, 3, 7, 7), np.float32)
    g = rand(rng, cyconv.conv2d(x, w, stride=2, padding=3).shape, np.float32)
    grad = cyconv.conv2d_backward(g, x, w, stride=2, padding=3,
                                  output_mask=(False, True, False), workers=1)[1]
    PT, KB = cyconv._core.weight_grad_plan(64, 3 * 7, False)
    units = 7 * -(-64 // KB) * -(-7 * 3 // PT)   # kernel rows x blocks x tiles
    work_per_unit = 8 * 32 * 32 * PT * KB
    per_piece = min(_conv2d_grad._PIECE_CHUNKS * _parallel.CHUNK_WORK // work_per_unit,
                    _conv2d_grad._PIECE_SCRATCH_BYTES // (PT * KB * 4))
    assert per_piece > _parallel.CHUNK_WORK // work_per_unit   # larger pieces than before
    assert seen == [[min(per_piece, units - u) for u in range(0, units, per_piece)]]
    monkeypatch.setattr(_conv2d_grad, "_PIECE_SCRATCH_BYTES", 1)   # never below CHUNK_WORK
    seen.clear()
    again = cyconv.conv2d_backward(g, x, w, stride=2, padding=3,
                                   output_mask=(False, True, False), workers=1)[1]
    small = max(1, _parallel.CHUNK_WORK // work_per_unit)
    assert seen == [[min(small, units - u) for u in range(0, units, small)]]
    np.testing.assert_array_equal(again, grad)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C, H, W, R, S, stride, dilation, padding, mode", [
    (16, 14, 13, 3, 3, 2, 1, 1, "zeros"),
    (20, 15, 16, 3, 3, (2, 3), 1, 1, "zeros"),      # a part group of channels (both levels)
    (33, 9, 11, 5, 5, 2, (2, 1), 2, "zeros"),
    (8, 12, 10, 3, 2, (1, 2), 1, (0, 1, 1, 0), "zeros"),   # (float32 AVX-512: conv2d)
    (16, 11, 12, 3, 3, 3, 2, 1, "zeros"),            # phases the taps never reach
    (16, 13, 13, 2, 2, 4, 1, 0, "zeros"),            # stride above the kernel
    (16, 40, 9, 3, 3, 2, 1, 1, "zeros"),             # bands of rows (float32 at 16 lanes)
    (16, 12, 12, 3, 3, 2, 1, 1, "reflect"),          # the whole padded gradient, then folded
    (24, 10, 11, 3, 3, (2, 1), 1, "same", "circular"),
], ids=str)
def test_depthwise_input_gradient_channels_in_lanes(C, H, W, R, S, stride, dilation, padding,
                                                     mode, dtype, monkeypatch):
    """Strided depthwise input gradients with the channels in the vector
    lanes (_core.depthwise_transpose): the exact transpose (adjoint identity
    in float64), and bitwise the polyphase conv2d calls they replace; the
    same for conv_transpose2d with a bias into a strided `out`."""
    from cyconv import _conv2d_grad, _core
    taken = []
    lanes_path = _conv2d_grad._grad_input_depthwise_lanes
    monkeypatch.setattr(_conv2d_grad, "_grad_input_depthwise_lanes",
                        lambda *a: (taken.append(1), lanes_path(*a)))
    rng = np.random.default_rng(C * H + W)
    x, w = rand(rng, (2, C, H, W), dtype), rand(rng, (C, 1, R, S), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=C, padding_mode=mode)
    g = rand(rng, cyconv.conv2d(x, w, **kw).shape, dtype)
    b = rand(rng, (C,), dtype)
    gi = cyconv.conv2d_backward(g, x, w, output_mask=(True, False, False), **kw)[0]
    tw = dict(stride=stride, dilation=dilation, groups=C)
    if mode == "zeros" and not isinstance(padding, tuple):   # (conv_transpose2d's padding)
        out = np.full((2, C, H, 2 * W), np.nan, dtype)[..., ::2]
        # (the transposed layer of the same geometry: g's shape back to x's)
        extra = [h - ((gh - 1) * s - 2 * p + d * (k - 1) + 1) for h, gh, s, p, d, k in zip(
            (H, W), g.shape[2:], _pair(stride), _pair(padding), _pair(dilation), (R, S))]
        ct = cyconv.conv_transpose2d(g, w, b, padding=padding, output_padding=extra, out=out,
                                     **tw)
    transposed = mode == "zeros" and not isinstance(padding, tuple)
    lanes = _core.tile_sizes()["dw_lanes_f64" if dtype == F64 else "dw_lanes_f32"]
    assert len(taken) == (1 + transposed if C >= lanes else 0)   # (fewer: conv2d calls)
    if dtype == F64:
        y = cyconv.conv2d(x, w, **kw)
        scale = np.vdot(np.abs(y), np.abs(g))
        assert abs(np.vdot(y, g) - np.vdot(x, gi)) < 1e-13 * scale
    old = _core.set_depthwise_lanes(False)
    try:
        want = cyconv.conv2d_backward(g, x, w, output_mask=(True, False, False), **kw)[0]
        if transposed:
            want_ct = cyconv.conv_transpose2d(g, w, b, padding=padding, output_padding=extra,
                                              **tw)
    finally:
        _core.set_depthwise_lanes(old)
    assert len(taken) == (1 + transposed if C >= lanes else 0)   # the switch turns it off
    np.testing.assert_array_equal(gi.view(np.uint8), want.view(np.uint8))
    if transposed:
        assert ct is out
        np.testing.assert_array_equal(ct.copy().view(np.uint8), want_ct.view(np.uint8))


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


# --------------------------------------------------------------------------- adjoint identity

GRID = list(itertools.product(
    [(1, 1), (3, 3), (2, 4), (5, 3)],               # kernel
    [1, 2, (2, 3)],                                 # stride
    [0, 2, (1, 0, 2, 1), "same", "valid"],           # padding
    [1, (2, 1)],                                    # dilation
    [1, 2],                                         # groups
    MODES,
))


def adjoint_errors(x, w, g, kw, **extra):
    gi, gw, gb = cyconv.conv2d_backward(g, x, w, **kw, **extra)
    y = cyconv.conv2d(x, w, **kw)
    lhs = np.vdot(y, g)
    scale = np.vdot(np.abs(y), np.abs(g)) + 1e-300
    return abs(lhs - np.vdot(x, gi)) / scale, abs(lhs - np.vdot(w, gw)) / scale, gb


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,mode", GRID)
def test_adjoint_identity(kernel, stride, padding, dilation, groups, mode):
    rng = np.random.default_rng(abs(hash((kernel, stride, str(padding), dilation, groups, mode)))
                                % 2**32)
    H, W = rng.integers(9, 14, size=2)
    x = rand(rng, (2, 4, H, W))
    w = rand(rng, (6, 4 // groups) + kernel)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    try:
        y = cyconv.conv2d(x, w, **kw)
    except ValueError:                      # e.g. reflect padding >= size: both must refuse
        with pytest.raises(ValueError):
            cyconv.conv2d_backward(np.zeros((2, 6, 1, 1)), x, w, **kw)
        return
    g = rand(rng, y.shape)
    e_in, e_w, gb = adjoint_errors(x, w, g, kw)
    assert e_in < 1e-13 and e_w < 1e-13, (e_in, e_w)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-13)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 3), Cg=st.integers(1, 3), Kg=st.integers(1, 3), groups=st.integers(1, 3),
       H=st.integers(1, 12), W=st.integers(1, 12), R=st.integers(1, 4), S=st.integers(1, 4),
       sh=st.integers(1, 4), sw=st.integers(1, 4), dh=st.integers(1, 3), dw=st.integers(1, 3),
       pads=st.tuples(*[st.integers(0, 4)] * 4), mode=st.sampled_from(MODES),
       seed=st.integers(0, 2**32 - 1))
def test_adjoint_identity_property(N, Cg, Kg, groups, H, W, R, S, sh, sw, dh, dw, pads, mode,
                                   seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, (N, Cg * groups, H, W))
    w = rand(rng, (Kg * groups, Cg, R, S))
    kw = dict(stride=(sh, sw), padding=pads, dilation=(dh, dw), groups=groups, padding_mode=mode)
    try:
        y = cyconv.conv2d(x, w, **kw)
    except ValueError:
        return
    g = rand(rng, y.shape)
    e_in, e_w, gb = adjoint_errors(x, w, g, kw)
    assert e_in < 1e-12 and e_w < 1e-12, (e_in, e_w)


def test_float32():
    x, w, g, kw = problem(3, stride=2, padding=1)
    got = cyconv.conv2d_backward(*(a.astype(F32) for a in (g, x, w)), **kw)
    want = cyconv.conv2d_backward(g, x, w, **kw)
    for a, b in zip(got, want):
        assert a.dtype == F32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def test_dtype_rules():
    x, w, g, kw = problem(4)
    for dx, dw_, dg, want in [(F32, F32, F32, F32), (F32, F32, F64, F64), (np.float16, F32, F32, F32),
                              (np.int64, F32, F32, F64), (F64, F32, F32, F64)]:
        out = cyconv.conv2d_backward(g.astype(dg), x.astype(dx), w.astype(dw_), **kw)
        assert all(a.dtype == want for a in out)


# --------------------------------------------------------------------------- finite differences

@pytest.mark.parametrize("conv", BASIS_CASES[:6] + [dict(padding=2, padding_mode="reflect")],
                         ids=repr)
def test_finite_differences(conv):
    """d/dt loss(x + t dx, w + t dw, b + t db) for loss = sum(tanh(conv2d(...)) * g)."""
    x, w, g, kw = problem(5, **conv)
    rng = np.random.default_rng(6)
    b = rand(rng, w.shape[0])
    dx, dw, db = rand(rng, x.shape), rand(rng, w.shape), rand(rng, b.shape)

    def loss(t):
        return np.sum(np.tanh(cyconv.conv2d(x + t * dx, w + t * dw, b + t * db, **kw)) * g)

    y = cyconv.conv2d(x, w, b, **kw)
    gy = g * (1 - np.tanh(y) ** 2)
    gi, gw, gb = cyconv.conv2d_backward(gy, x, w, **kw)
    analytic = np.vdot(gi, dx) + np.vdot(gw, dw) + np.vdot(gb, db)
    h = 1e-5
    numeric = (loss(h) - loss(-h)) / (2 * h)
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(analytic))


# --------------------------------------------------------------------------- options

def test_output_mask_and_unbatched():
    x, w, g, kw = problem(7, N=1, stride=2, padding="same", padding_mode="circular")
    full = cyconv.conv2d_backward(g, x, w, **kw)
    for mask in itertools.product([False, True], repeat=3):
        got = cyconv.conv2d_backward(g, x, w, output_mask=mask, **kw)
        for m, a, b in zip(mask, got, full):
            assert (a is None) if not m else np.array_equal(a, b)
    gi, gw, gb = cyconv.conv2d_backward(g[0], x[0], w, **kw)
    assert gi.shape == x.shape[1:]
    np.testing.assert_array_equal(gi, full[0][0])
    np.testing.assert_array_equal(gw, full[1])
    np.testing.assert_array_equal(gb, full[2])


@pytest.mark.parametrize("conv", [dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                  dict(stride=(1, 3), padding=2, padding_mode="reflect")], ids=repr)
def test_workers_do_not_change_the_bits(conv):
    x, w, g, kw = problem(8, N=3, C=8, K=12, H=40, W=37, R=3, S=3, **conv)
    x, w, g = (a.astype(F32) for a in (x, w, g))
    one = cyconv.conv2d_backward(g, x, w, workers=1, **kw)
    for workers in (2, 3, -1):
        for a, b in zip(one, cyconv.conv2d_backward(g, x, w, workers=workers, **kw)):
            assert np.array_equal(a, b)
    t1 = cyconv.conv_transpose2d(g, w, stride=2, padding=1, groups=2, workers=1)
    assert np.array_equal(t1, cyconv.conv_transpose2d(g, w, stride=2, padding=1, groups=2,
                                                      workers=3))


def test_inputs_not_modified_and_any_layout():
    x, w, g, kw = problem(9, stride=2, padding=1, padding_mode="replicate")
    want = cyconv.conv2d_backward(g, x, w, **kw)
    xf, wf, gf = np.asfortranarray(x), w[..., ::-1][..., ::-1], g.astype(">f8")
    copies = [a.copy() for a in (xf, wf, gf)]
    got = cyconv.conv2d_backward(gf, xf, wf, **kw)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    for a, b in zip((xf, wf, gf), copies):
        np.testing.assert_array_equal(a, b)


def test_empty_problems():
    gi, gw, gb = cyconv.conv2d_backward(np.zeros((0, 4, 3, 3)), np.zeros((0, 2, 5, 5)),
                                        np.ones((4, 2, 3, 3)))
    assert gi.shape == (0, 2, 5, 5) and gw.shape == (4, 2, 3, 3) and gb.shape == (4,)
    assert not gw.any() and not gb.any()
    gi, gw, gb = cyconv.conv2d_backward(np.ones((1, 0, 3, 3)), np.ones((1, 2, 5, 5)),
                                        np.ones((0, 2, 3, 3)))
    assert gi.shape == (1, 2, 5, 5) and not gi.any() and gw.shape == (0, 2, 3, 3)


# --------------------------------------------------------------------------- conv_transpose2d

TRANSPOSE_CASES = [
    dict(), dict(stride=2), dict(stride=2, output_padding=1), dict(stride=(3, 2), padding=(1, 2)),
    dict(stride=3, output_padding=(2, 1), dilation=2), dict(dilation=3, output_padding=2),
    dict(padding=1, groups=2), dict(stride=2, padding=2, groups=2, dilation=(1, 2)),
]


def small_image_width(K, dtype):
    """A row width whose small images a 3x3 layer with zero padding runs in
    small-image tiles: narrower than the level's tiles and none of their
    widths (row tiles, which leave out the padding's products, take those)."""
    from cyconv import _core
    plan = _core.conv2d_plan((1, 8, 8, 8), K, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1),
                             dtype == F64, zero_padding=True)
    return max(w for w in range(1, plan.tile_pixels) if w not in plan.tile_widths)


@pytest.mark.parametrize("case,R", [   # (N, C, K, H, W, small-image tiles)
    ((1, 40, 36, 5, None, True), 3), ((2, 24, 33, 4, None, True), 3),   # small-image tiles
    # stage it (None: small_image_width)
    ((2, 40, 36, 9, 11, False), 3), ((3, 72, 40, 7, 7, False), 3),  # blocked tiles pack it
    ((2, 40, 36, 9, 9, False), 5), ((2, 40, 70, 8, 8, False), 1),   # (a short last block)
    ((1, 160, 160, 12, 12, False), 3),   # one image: each block packed as it starts
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_input_gradient_reads_the_weights_as_a_view(case, R, dtype):
    """At unit stride the input gradient hands conv2d the layer's weights
    transposed and flipped as a view where its tiles take one (small-image
    tiles stage it, blocked tiles pack it, each run of taps turned round):
    bitwise conv2d on the copied weights."""
    from cyconv import _conv2d
    N, C, K, H, W, small = case
    W = W or small_image_width(C, dtype)   # (its conv2d has the layer's C output channels)
    rng = np.random.default_rng(12)
    x, w, g = rand(rng, (N, C, H, W), dtype), rand(rng, (K, C, R, R), dtype), rand(
        rng, (N, K, H, W), dtype)
    wt = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    view = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    plan = _conv2d._prepared_call(g, wt, None, 1, R // 2, 1, 1, "zeros", None).plan
    assert (plan.weight_stage > 0) == small and plan.blocked != small
    assert plan.pack_inline == (N == 1 and not small)
    assert _conv2d.reads_weight_views(g, view, 1, R // 2, 1, 1)
    want = cyconv.conv2d(g, wt, padding=R // 2)
    np.testing.assert_array_equal(cyconv.conv2d(g, view, padding=R // 2).view(np.uint8),
                                  want.view(np.uint8))
    for workers in (1, 2):
        got = cyconv.conv2d_backward(g, x, w, padding=R // 2, output_mask=(True, False, False),
                                     workers=workers)[0]
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


PRODUCT_LAYERS = [   # (N, C, K, H, W, R, S, conv): strided, one group
    (1, 24, 20, 13, 11, 3, 3, dict(stride=2, padding=1)),
    (2, 3, 17, 19, 16, 7, 7, dict(stride=2, padding=3)),             # few channels (conv1)
    (1, 20, 18, 16, 12, 4, 4, dict(stride=4)),                        # taps that do not overlap
    (3, 5, 9, 11, 14, 3, 2, dict(stride=(3, 2), dilation=(2, 1), padding=(2, 1))),
    (2, 6, 8, 10, 9, 3, 3, dict(stride=2, padding=2, padding_mode="reflect")),
    (1, 4, 7, 9, 12, 2, 5, dict(stride=(1, 3), padding="same")),     # one strided axis
    (2, 40, 36, 7, 7, 3, 3, dict(stride=2, padding=1)),               # small-image tiles
]


@pytest.mark.parametrize("layer", PRODUCT_LAYERS, ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_strided_input_gradient_as_products(layer, dtype, monkeypatch):
    """A strided layer's input gradient as every tap's products (one 1x1
    conv2d on the transposed weights) summed onto the pixels they came
    from: the phases' values to rounding (the sums run in another order),
    the same bits on any number of threads and for any images per piece."""
    from cyconv import _conv2d_grad
    N, C, K, H, W, R, S, conv = layer
    rng = np.random.default_rng(13)
    x, w = rand(rng, (N, C, H, W), dtype), rand(rng, (K, C, R, S), dtype)
    g = rand(rng, cyconv.conv2d(x, w, **conv).shape, dtype)
    geo = _conv2d_grad._resolve(x, w, g, conv["stride"], conv.get("padding", 0),
                                conv.get("dilation", 1), 1, conv.get("padding_mode", "zeros"),
                                None)
    assert _conv2d_grad._products_images(geo, H, W) > 0

    def grad(workers=1):
        return cyconv.conv2d_backward(g, x, w, **conv, output_mask=(True, False, False),
                                      workers=workers)[0]

    got = grad()
    np.testing.assert_array_equal(grad(2).view(np.uint8), got.view(np.uint8))
    monkeypatch.setattr(_conv2d_grad, "_PRODUCTS_BYTES", 1)   # an image per piece
    np.testing.assert_array_equal(grad().view(np.uint8), got.view(np.uint8))
    monkeypatch.setattr(_conv2d_grad, "_products_images", lambda *args: 0)
    want = grad()
    tol = 2e-6 if dtype == F32 else 1e-13
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def col2im_reference(cols, C, R, S, stride, dilation, y0, x0, Hx, Wx, bias):
    """Each tap's plane added onto its pixels, tap by tap in (r, s) order."""
    N, _, Ho, Wo = cols.shape
    taps = cols.reshape(N, C, R, S, Ho, Wo)
    out = np.zeros((N, C, Hx, Wx), cols.dtype)
    for r in range(R):
        ys = np.arange(Ho) * stride[0] + r * dilation[0] - y0
        rows = (ys >= 0) & (ys < Hx)
        for s_ in range(S):
            xs = np.arange(Wo) * stride[1] + s_ * dilation[1] - x0
            cols_in = (xs >= 0) & (xs < Wx)
            out[:, :, ys[rows, None], xs[None, cols_in]] += taps[:, :, r, s_][:, :, rows][
                :, :, :, cols_in]
    return out if bias is None else out + bias[:, None, None]


@settings(max_examples=150, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 3), R=st.integers(1, 4), S=st.integers(1, 4),
       stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       Ho=st.integers(1, 6), Wo=st.integers(1, 6), y0=st.integers(0, 4), x0=st.integers(0, 4),
       Hx=st.integers(1, 13), Wx=st.integers(1, 13), dtype=st.sampled_from([F32, F64]),
       with_bias=st.booleans(), strided_out=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_col2im_sums_each_tap_onto_its_pixels(N, C, R, S, stride, dilation, Ho, Wo, y0, x0, Hx,
                                              Wx, dtype, with_bias, strided_out, seed):
    """_core.col2im against the sums made tap by tap in NumPy, in the same
    (r, s) order: the same bits, into any layout, for any split of the
    planes; nothing written outside `out`."""
    from cyconv import _core
    rng = np.random.default_rng(seed)
    cols = rand(rng, (N, C * R * S, Ho, Wo), dtype)
    bias = rand(rng, C, dtype) if with_bias else None
    want = col2im_reference(cols, C, R, S, stride, dilation, y0, x0, Hx, Wx, bias)
    big = np.full((N, C, Hx, 2 * Wx + 1), np.nan, dtype)
    out = big[:, :, ::-1, 1::2] if strided_out else big[:, :, :, :Wx]
    sums = np.full(stride[0] * stride[1] * -(-Hx // stride[0]) * -(-Wx // stride[1]) + 1, np.nan,
                   dtype)   # (one element past the plane, which must stay NaN)
    bias_arr = np.empty(0, dtype) if bias is None else bias
    split = rng.integers(0, N * C + 1)
    for u0, u1 in ((0, split), (split, N * C)):
        _core.col2im(cols, R, S, *stride, *dilation, y0, x0, bias_arr, out, sums[:-1], u0, u1)
    np.testing.assert_array_equal(out, want)
    assert np.isnan(sums[-1])
    assert np.isnan(big[:, :, :, 0 if strided_out else Wx:][..., ::2 if strided_out else 1]).all()


def test_strided_transpose_as_products_with_bias_into_a_view(monkeypatch):
    """conv_transpose2d's bias and a strided `out` (every other column of a
    larger array, rows reversed) on the products' path."""
    from cyconv import _conv2d_grad
    rng = np.random.default_rng(14)
    for dtype in (F32, F64):
        x, w, b = rand(rng, (2, 12, 6, 7), dtype), rand(rng, (12, 5, 3, 3), dtype), rand(
            rng, 5, dtype)
        kw = dict(stride=2, padding=1, output_padding=1)
        big = np.full((2, 5, 12, 28), np.nan, dtype)
        out = big[:, :, ::-1, 1::2]
        assert cyconv.conv_transpose2d(x, w, b, **kw, out=out) is out
        assert np.isnan(big[..., ::2]).all()
        monkeypatch.setattr(_conv2d_grad, "_products_images", lambda *args: 0)
        want = cyconv.conv_transpose2d(x, w, b, **kw)
        monkeypatch.undo()
        tol = 2e-6 if dtype == F32 else 1e-13
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("conv", TRANSPOSE_CASES, ids=repr)
@pytest.mark.parametrize("batched", [True, False])
def test_conv_transpose2d_is_the_input_gradient(conv, batched):
    rng = np.random.default_rng(10)
    groups = conv.get("groups", 1)
    x = rand(rng, (2, 4, 6, 5))
    w = rand(rng, (4, 6 // groups, 3, 2))
    b = rand(rng, 6)
    y = cyconv.conv_transpose2d(x if batched else x[0], w, b, **conv)
    # conv2d with weight w (in, out/g, ...) read as (K=in, Cg=out/g): its
    # input gradient at the output size, padding as conv_transpose2d's.
    s = conv.get("stride", 1)
    s = (s, s) if isinstance(s, int) else s
    p = conv.get("padding", 0)
    p = (p, p) if isinstance(p, int) else p
    d = conv.get("dilation", 1)
    d = (d, d) if isinstance(d, int) else d
    Ho, Wo = y.shape[-2:]
    assert Ho == (6 - 1) * s[0] - 2 * p[0] + d[0] * 2 + np.broadcast_to(
        conv.get("output_padding", 0), 2)[0] + 1
    x_shape = (2, 6, Ho, Wo)
    kw = dict(stride=s, padding=p, dilation=d, groups=groups)
    # output_padding >= stride (allowed when < dilation) adds rows that no
    # output of that conv2d reaches: its outputs past x's size are dropped.
    want = transpose_by_basis(lambda e: cyconv.conv2d(e, w, **kw)[:, :, :6, :5], x_shape, x)
    want += b[:, None, None]
    np.testing.assert_allclose(y, want if batched else want[0], rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_out_and_dtype():
    rng = np.random.default_rng(11)
    x, w = rand(rng, (1, 3, 4, 4), F32), rand(rng, (3, 2, 3, 3), F32)
    want = cyconv.conv_transpose2d(x, w, stride=2)
    assert want.dtype == F32 and want.shape == (1, 2, 9, 9)
    out = np.full_like(want, np.nan)
    assert cyconv.conv_transpose2d(x, w, stride=2, out=out) is out
    np.testing.assert_array_equal(out, want)
    assert cyconv.conv_transpose2d(x, w.astype(F64)).dtype == F64
    with pytest.raises(ValueError, match="out must have shape"):
        cyconv.conv_transpose2d(x, w, stride=2, out=np.empty((1, 2, 9, 8), F32))
    with pytest.raises(ValueError, match="overlap"):
        cyconv.conv_transpose2d(x, w, padding=1, out=x[:, :2])


# --------------------------------------------------------------------------- errors

def test_backward_errors_name_the_argument():
    x, w, g, kw = problem(12, groups=1)
    bad = [
        (dict(grad_output=g[:, :, :-1]), ValueError, "grad_output must have the shape"),
        (dict(grad_output=g[0]), ValueError, "grad_output must be 4-D"),
        (dict(input=x[0, 0]), ValueError, "input must be 4-D"),
        (dict(weight=w[0]), ValueError, "weight must be 4-D"),
        (dict(weight=w[:, :3]), ValueError, "input channels"),
        (dict(groups=4), ValueError, "groups=4"),
        (dict(groups=0), ValueError, "groups"),
        (dict(stride=0), ValueError, "stride"),
        (dict(stride=(1, 2, 3)), ValueError, "stride"),
        (dict(dilation=1.5), TypeError, "dilation"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding="full"), ValueError, "padding"),
        (dict(padding_mode="wrap"), ValueError, "padding_mode"),
        (dict(padding=7, padding_mode="reflect"), ValueError, "reflect"),
        (dict(output_mask=(True, False)), ValueError, "output_mask"),
        (dict(output_mask=(1, 0, 1)), ValueError, "output_mask"),
        (dict(output_mask=None), TypeError, "output_mask"),
        (dict(workers=0), ValueError, "workers"),
        (dict(input=x.astype(complex)), TypeError, "input"),
        (dict(grad_output=g.astype(object)), TypeError, "grad_output"),
        (dict(weight=np.ones((6, 4, 30, 3))), ValueError, "kernel"),
    ]
    for change, exc, msg in bad:
        args = dict(grad_output=g, input=x, weight=w) | change
        with pytest.raises(exc, match=msg):
            cyconv.conv2d_backward(**args)


def test_conv_transpose2d_errors_name_the_argument():
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 3, 3, 3))
    bad = [
        (dict(output_padding=1), ValueError, "output_padding"),
        (dict(stride=2, output_padding=2), ValueError, "output_padding"),
        (dict(stride=2, output_padding=(1, 2)), ValueError, "output_padding"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(padding="same"), TypeError, "padding"),
        (dict(padding=4), ValueError, "output size"),
        (dict(groups=4), ValueError, "groups"),
        (dict(stride=0), ValueError, "stride"),
        (dict(dilation=(1, 0)), ValueError, "dilation"),
        (dict(bias=np.zeros(2)), ValueError, "bias"),
        (dict(input=np.zeros((1, 3, 5, 5))), ValueError, "input channels"),
        (dict(input=np.zeros((2, 5))), ValueError, "input must be 4-D"),
        (dict(weight=np.zeros((2, 3, 3))), ValueError, "weight must be 4-D"),
        (dict(input=np.zeros((1, 2, 5, 5), complex)), TypeError, "input"),
        (dict(workers=0), ValueError, "workers"),
    ]
    for change, exc, msg in bad:
        args = dict(input=x, weight=w) | change
        with pytest.raises(exc, match=msg):
            cyconv.conv_transpose2d(**args)


@pytest.mark.parametrize("stride", [(2 ** 62, 1), (1, 2 ** 62), (2 ** 62, 2 ** 62), (40, 3)],
                         ids=str)
@pytest.mark.parametrize("C, K", [(1, 8), (4, 6)])
def test_gradients_of_a_lone_output_row_take_any_stride(stride, C, K):
    """Along an axis of one output row (or column) the stride reaches no
    sum: the gradients (and conv_transpose2d) equal those of the smallest
    stride that keeps the output's shape, whatever its size (2**62 made
    the input gradient loop over 2**62 stride phases, or ask for planes
    that large)."""
    rng = np.random.default_rng(C * 10 + K)
    x = rand(rng, (2, C, 5, 9))
    w = rand(rng, (K, C, 3, 2))
    y = cyconv.conv2d(x, w, stride=stride, padding=1)
    small = tuple(s if n > 1 else min(s, extent - span + 1)
                  for s, n, extent, span in zip(stride, y.shape[2:], (7, 11), (3, 2)))
    assert cyconv.conv2d(x, w, stride=small, padding=1).shape == y.shape
    g = rand(rng, y.shape)
    got = cyconv.conv2d_backward(g, x, w, stride=stride, padding=1)
    want = cyconv.conv2d_backward(g, x, w, stride=small, padding=1)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    t = cyconv.conv_transpose2d(g, w, stride=stride)   # (padding 1: no columns at Wo = 1)
    np.testing.assert_allclose(t, cyconv.conv_transpose2d(g, w, stride=small),
                               rtol=1e-12, atol=1e-12)


def test_repeated_gradients_reuse_their_arguments():
    """A repeated conv2d_backward call reuses its resolved arguments (a cache
    by shapes, dtypes and arguments): the same bits as the first call, the
    result dtype of each call's own dtypes, and invalid arguments still
    raise after valid calls of the same shapes."""
    from cyconv import _conv2d_grad
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6, 5, 5)).astype(np.float32)
    w = rng.standard_normal((8, 6, 3, 3)).astype(np.float32)
    gout = rng.standard_normal((4, 8, 5, 5)).astype(np.float32)
    _conv2d_grad._resolved.clear()
    first = cyconv.conv2d_backward(gout, x, w, padding=1)
    assert len(_conv2d_grad._resolved) == 1
    again = cyconv.conv2d_backward(gout, x, w, padding=1)
    assert len(_conv2d_grad._resolved) == 1
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    as64 = cyconv.conv2d_backward(gout.astype(np.float64), x, w, padding=1)
    assert all(g.dtype == np.float64 for g in as64)
    for a, b in zip(as64, first):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="workers"):
        cyconv.conv2d_backward(gout, x, w, padding=1, workers=0)
    with pytest.raises(TypeError, match="workers"):
        cyconv.conv2d_backward(gout, x, w, padding=1, workers="2")
    with pytest.raises(ValueError, match="grad_output must have the shape"):
        cyconv.conv2d_backward(gout[:, :, :4], x, w, padding=1)
    # the threads are part of the call: two give the same bits
    for a, b in zip(cyconv.conv2d_backward(gout, x, w, padding=1, workers=2), first):
        np.testing.assert_array_equal(a, b)


def forget_transposes():
    """Clear what repeated input gradients and transposes reuse."""
    from cyconv import _conv2d, _conv2d_grad
    _conv2d_grad._resolved.clear()
    _conv2d_grad._phase_plans.clear()
    _conv2d._prepared.clear()


@pytest.mark.parametrize("conv", TRANSPOSE_CASES, ids=repr)
@pytest.mark.parametrize("phases", [True, False], ids=["phases", "any route"])
def test_repeated_transposes_are_bitwise_a_first_call(conv, phases, monkeypatch):
    """conv_transpose2d and the input gradient keep their resolved
    arguments and phase plans (_resolved, _phase_plans) for the next call
    of the same shapes and arguments: new data, with and without a bias,
    batched or not, into a fresh array or `out`, gives the bits of a first
    call with nothing kept, for one thread and two."""
    from cyconv import _conv2d_grad
    if phases:   # every layer by its stride phases (_grad_input_phases)
        monkeypatch.setattr(_conv2d_grad, "_products_images", lambda *args: 0)
    rng = np.random.default_rng(len(repr(conv)))
    C_in, C_out, groups = 4, 6, conv.get("groups", 1)
    w = rand(rng, (C_in, C_out // groups, 3, 2), F32)
    calls = [(rand(rng, batch + (C_in, H, W), F32), bias, workers)
             for batch in [(2,), ()] for H, W in [(5, 6), (7, 4)]
             for bias in (None, rand(rng, C_out, F32)) for workers in (1, 2)]
    firsts = []   # of x, then of x + 1 (new data: nothing of it is kept)
    for x, bias, workers in calls:
        for data in (x, x + 1):
            forget_transposes()
            firsts.append(cyconv.conv_transpose2d(data, w, bias, **conv, workers=workers))
            if phases:
                assert len(_conv2d_grad._phase_plans) == 1
    forget_transposes()
    for round in range(2):   # every call again, each kept beside the others
        for i, (x, bias, workers) in enumerate(calls):
            first = firsts[2 * i + round]
            got = cyconv.conv_transpose2d(x + round, w, bias, **conv, workers=workers)
            assert got.tobytes() == first.tobytes()
            out = np.full(first.shape, np.nan, F32)
            assert cyconv.conv_transpose2d(x + round, w, bias, **conv, out=out,
                                           workers=workers) is out
            assert out.tobytes() == first.tobytes()
    # the input gradient of the conv2d it transposes (weight w: C_in outputs)
    conv2d_kw = {k: v for k, v in conv.items() if k != "output_padding"}
    y = rand(rng, (2, C_out, 9, 8), F32)
    gout = rand(rng, cyconv.conv2d(y, w, **conv2d_kw).shape, F32)
    forget_transposes()
    first = cyconv.conv2d_backward(gout, y, w, **conv2d_kw, output_mask=(True, False, False))[0]
    for _ in range(2):
        got = cyconv.conv2d_backward(gout, y, w, **conv2d_kw, output_mask=(True, False, False))
        assert got[0].tobytes() == first.tobytes()


@pytest.mark.parametrize("good,bad,error", [
    ({"stride": 2}, {"stride": 2.0}, TypeError),
    ({"stride": 1}, {"stride": True}, TypeError),
    ({"padding": 1}, {"padding": "same"}, TypeError),
    ({"padding": (1, 1)}, {"padding": (1, 1.0)}, TypeError),
    ({"groups": 2}, {"groups": 2.0}, TypeError),
    ({"dilation": [1, 1]}, {"dilation": [1, True]}, TypeError),
    ({"stride": 2, "output_padding": 1}, {"stride": 2, "output_padding": 2}, ValueError),
    ({"workers": 1}, {"workers": 0}, ValueError),
    ({"workers": 1}, {"workers": 1.5}, TypeError),
])
def test_transpose_errors_stay_after_a_call_was_kept(good, bad, error):
    x = np.ones((1, 4, 6, 6), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    forget_transposes()
    with pytest.raises(error) as full:
        cyconv.conv_transpose2d(x, w, **bad)
    for _ in range(2):
        cyconv.conv_transpose2d(x, w, **good)
    from cyconv import _conv2d_grad
    assert _conv2d_grad._resolved
    with pytest.raises(error) as kept:
        cyconv.conv_transpose2d(x, w, **bad)
    assert str(kept.value) == str(full.value)


def test_weight_tile_plans_follow_the_tuning(monkeypatch):
    """A weight gradient's plan is kept by geometry (_weight_tiles), and
    made again when a tuning constant changes: the tests that change them
    run what they mean to, not a plan kept from before."""
    from cyconv import _conv2d_grad, _parallel
    rng = np.random.default_rng(3)
    x, w = rand(rng, (4, 8, 6, 6), F32), rand(rng, (16, 8, 3, 3), F32)
    g = rand(rng, (4, 16, 6, 6), F32)
    geo = _conv2d_grad._resolve(x, w, g, 1, 1, 1, 1, "zeros", 1)
    plan = _conv2d_grad._weight_tiles_plan(geo)
    assert _conv2d_grad._weight_tiles_plan(geo) is plan
    monkeypatch.setattr(_conv2d_grad, "_BAND_BYTES", 1)
    assert _conv2d_grad._weight_tiles_plan(geo).band == 1 < plan.band
    monkeypatch.setattr(_conv2d_grad, "_STACKED_ROWS_PIXELS", 1 << 30)
    assert _conv2d_grad._weight_tiles_plan(geo).tall
    monkeypatch.setattr(_conv2d_grad, "_STACKED_ROWS_PIXELS", 0)
    assert not _conv2d_grad._weight_tiles_plan(geo).tall
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    monkeypatch.setattr(_conv2d_grad, "_PIECE_SCRATCH_BYTES", 1)
    assert len(_conv2d_grad._weight_tiles_plan(geo).chunks) > len(plan.chunks)
    monkeypatch.setattr(_conv2d_grad, "_FORCE_CHANNELS_LAST", True)
    assert _conv2d_grad._weight_tiles_plan(geo).channels_last
    monkeypatch.setattr(_conv2d_grad, "_BAND_COPIES", -1)
    assert not _conv2d_grad._weight_tiles_plan(geo).copy_bands
