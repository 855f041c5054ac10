"""The C-level API, used the way a downstream Cython package uses it: a tiny
extension that cimports cyconv is compiled in a temporary folder, calls the
functions inside `with nogil:`, and must agree with the Python API."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import cyconv
from cyconv import _core

pytest.importorskip("Cython")

PYX = textwrap.dedent('''
    # cython: language_level=3, boundscheck=False, wraparound=False
    from libc.stdlib cimport malloc, free
    from libc.string cimport memset
    cimport cyconv
    from cyconv cimport cyc_index_t, cyc_conv2d_params, CYC_OK
    import numpy as np

    def filter2d(double[:, ::1] a, double[:, ::1] k, int mode, int boundary, double fill,
                 bint convolve):
        cdef cyc_index_t oh = 0, ow = 0
        cdef int status = cyconv.filter2d_shape(a.shape[0], a.shape[1], k.shape[0], k.shape[1],
                                                mode, &oh, &ow)
        if status != CYC_OK:
            return status, None
        out = np.empty((oh, ow))
        cdef double[:, ::1] o = out
        cdef cyc_index_t nbytes = cyconv.filter2d_work_bytes(a.shape[0], a.shape[1], k.shape[0],
                                                             k.shape[1], mode, 8)
        cdef void *work = malloc(nbytes)
        with nogil:
            if convolve:
                status = cyconv.convolve2d_f64(&a[0, 0], a.shape[0], a.shape[1], a.shape[1],
                                               &k[0, 0], k.shape[0], k.shape[1], k.shape[1],
                                               mode, boundary, fill, &o[0, 0], ow, work, nbytes)
            else:
                status = cyconv.correlate2d_f64(&a[0, 0], a.shape[0], a.shape[1], a.shape[1],
                                                &k[0, 0], k.shape[0], k.shape[1], k.shape[1],
                                                mode, boundary, fill, &o[0, 0], ow, work, nbytes)
        free(work)
        return status, out

    def filter2d_f32_small_work(float[:, ::1] a, float[:, ::1] k):
        cdef cyc_index_t oh = a.shape[0], ow = a.shape[1]
        cdef float[:, ::1] o = np.empty((oh, ow), np.float32)
        cdef char work[16]
        return cyconv.correlate2d_f32(&a[0, 0], oh, ow, ow, &k[0, 0], k.shape[0], k.shape[1],
                                      k.shape[1], cyconv.CYC_SAME, cyconv.CYC_FILL, 0,
                                      &o[0, 0], ow, work, 16)

    def conv2d(x, w, b, stride, padding, dilation, int groups, int padding_mode):
        cdef cyc_conv2d_params p
        p.N, p.C, p.H, p.W = x.shape
        p.K, _, p.R, p.S = w.shape
        p.groups = groups
        p.stride_h, p.stride_w = stride
        p.dilation_h, p.dilation_w = dilation
        p.pad_top, p.pad_bottom, p.pad_left, p.pad_right = padding
        p.padding_mode = padding_mode
        cdef cyc_index_t oh = 0, ow = 0
        cdef int status = cyconv.conv2d_shape(&p, &oh, &ow)
        if status != CYC_OK:
            return status, None
        cdef float[:, :, :, ::1] xv = x
        cdef float[:, :, :, ::1] wv = w
        cdef float[::1] bv
        cdef const float *bias = NULL
        if b is not None:
            bv = b
            bias = &bv[0]
        out = np.empty((p.N, p.K, oh, ow), np.float32)
        cdef float[:, :, :, ::1] ov = out
        cdef cyc_index_t nbytes = cyconv.conv2d_work_bytes(&p, 4)
        cdef void *work = malloc(nbytes)
        with nogil:
            status = cyconv.conv2d_f32(&p, &xv[0, 0, 0, 0], &wv[0, 0, 0, 0], bias,
                                       &ov[0, 0, 0, 0], work, nbytes)
        free(work)
        return status, out

    # --- raw size queries and calls with a work buffer of exactly the reported size ---

    def filter2d_query(cyc_index_t h, cyc_index_t w, cyc_index_t m, cyc_index_t n, int mode,
                       cyc_index_t itemsize):
        cdef cyc_index_t oh = -7, ow = -7
        cdef int status = cyconv.filter2d_shape(h, w, m, n, mode, &oh, &ow)
        return status, oh, ow, cyconv.filter2d_work_bytes(h, w, m, n, mode, itemsize)

    cdef cyc_conv2d_params params_of(tuple t):
        cdef cyc_conv2d_params p
        (p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.groups, p.stride_h, p.stride_w, p.dilation_h,
         p.dilation_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, p.padding_mode) = t
        return p

    def conv2d_query(tuple t, cyc_index_t itemsize):
        cdef cyc_conv2d_params p = params_of(t)
        cdef cyc_index_t oh = -7, ow = -7
        cdef int status = cyconv.conv2d_shape(&p, &oh, &ow)
        return status, oh, ow, cyconv.conv2d_work_bytes(&p, itemsize)

    cdef char *exact_work(cyc_index_t nbytes, int offset, int guard):
        # `offset` bytes, then the work, then `guard` bytes: both ends filled with
        # a pattern that check_guards() expects back. With guard == 0 the work
        # ends where the allocation ends (AddressSanitizer sees any overrun).
        cdef char *base = <char *>malloc(offset + nbytes + guard)
        memset(base, 0xA5, offset)
        memset(base + offset + nbytes, 0xA5, guard)
        return base

    cdef bint check_guards(char *base, cyc_index_t nbytes, int offset, int guard):
        cdef cyc_index_t i
        for i in range(offset):
            if <unsigned char>base[i] != 0xA5:
                return False
        for i in range(guard):
            if <unsigned char>base[offset + nbytes + i] != 0xA5:
                return False
        return True

    def filter2d_exact(a, k, out, cyc_index_t w, cyc_index_t n, cyc_index_t ow, int mode,
                       int boundary, double fill, bint convolve, int offset, int guard):
        """a, k, out: C-contiguous planes whose first w, n, ow columns are used
        (row strides = their widths); returns (status, guards intact)."""
        cdef cyc_index_t h = a.shape[0], m = k.shape[0], item = a.itemsize
        cdef cyc_index_t nbytes = cyconv.filter2d_work_bytes(h, w, m, n, mode, item)
        if nbytes < 0:
            return -100, True
        cdef char *base = exact_work(nbytes, offset, guard)
        cdef float[:, ::1] a4, k4, o4
        cdef double[:, ::1] a8, k8, o8
        cdef int status
        if item == 4:
            a4, k4, o4 = a, k, out
            with nogil:
                if convolve:
                    status = cyconv.convolve2d_f32(&a4[0, 0], h, w, a4.shape[1], &k4[0, 0], m, n,
                                                   k4.shape[1], mode, boundary, <float>fill,
                                                   &o4[0, 0], o4.shape[1], base + offset, nbytes)
                else:
                    status = cyconv.correlate2d_f32(&a4[0, 0], h, w, a4.shape[1], &k4[0, 0], m, n,
                                                    k4.shape[1], mode, boundary, <float>fill,
                                                    &o4[0, 0], o4.shape[1], base + offset, nbytes)
        else:
            a8, k8, o8 = a, k, out
            with nogil:
                if convolve:
                    status = cyconv.convolve2d_f64(&a8[0, 0], h, w, a8.shape[1], &k8[0, 0], m, n,
                                                   k8.shape[1], mode, boundary, fill,
                                                   &o8[0, 0], o8.shape[1], base + offset, nbytes)
                else:
                    status = cyconv.correlate2d_f64(&a8[0, 0], h, w, a8.shape[1], &k8[0, 0], m, n,
                                                    k8.shape[1], mode, boundary, fill,
                                                    &o8[0, 0], o8.shape[1], base + offset, nbytes)
        intact = check_guards(base, nbytes, offset, guard)
        free(base)
        return status, intact

    def conv2d_exact(tuple t, x, w, b, out, int offset, int guard):
        """conv2d_f32/_f64 (by x's dtype) with exactly conv2d_work_bytes() of work."""
        cdef cyc_conv2d_params p = params_of(t)
        cdef cyc_index_t item = x.itemsize
        cdef cyc_index_t nbytes = cyconv.conv2d_work_bytes(&p, item)
        if nbytes < 0:
            return -100, True
        cdef char *base = exact_work(nbytes, offset, guard)
        cdef float[:, :, :, ::1] x4, w4, o4
        cdef double[:, :, :, ::1] x8, w8, o8
        cdef float[::1] b4
        cdef double[::1] b8
        cdef const float *bias4 = NULL
        cdef const double *bias8 = NULL
        cdef int status
        if item == 4:
            x4, w4, o4 = x, w, out
            if b is not None:
                b4 = b
                bias4 = &b4[0]
            with nogil:
                status = cyconv.conv2d_f32(&p, &x4[0, 0, 0, 0], &w4[0, 0, 0, 0], bias4,
                                           &o4[0, 0, 0, 0], base + offset, nbytes)
        else:
            x8, w8, o8 = x, w, out
            if b is not None:
                b8 = b
                bias8 = &b8[0]
            with nogil:
                status = cyconv.conv2d_f64(&p, &x8[0, 0, 0, 0], &w8[0, 0, 0, 0], bias8,
                                           &o8[0, 0, 0, 0], base + offset, nbytes)
        intact = check_guards(base, nbytes, offset, guard)
        free(base)
        return status, intact

    def correlate2d_strides(cyc_index_t h, cyc_index_t w, cyc_index_t in1_stride, cyc_index_t m,
                            cyc_index_t n, cyc_index_t in2_stride, cyc_index_t out_stride):
        """Status of a call on tiny dummy buffers: only for arguments it must reject."""
        cdef double dummy[4]
        cdef char work[64]
        return cyconv.correlate2d_f64(dummy, h, w, in1_stride, dummy, m, n, in2_stride,
                                      cyconv.CYC_VALID, cyconv.CYC_FILL, 0, dummy, out_stride,
                                      work, 64)

    API_VERSION = cyconv.CYC_API_VERSION
    ''')

SETUP = textwrap.dedent('''
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    import cyconv
    # cyconv's headers only: the C-level API needs no NumPy headers
    ext = Extension("capi_user", ["capi_user.pyx"], include_dirs=[cyconv.get_include()])
    setup(ext_modules=cythonize([ext]), script_args=["build_ext", "--inplace", "-q"])
    ''')


@pytest.fixture(scope="module")
def capi_user(tmp_path_factory):
    folder = tmp_path_factory.mktemp("capi_user")
    (folder / "capi_user.pyx").write_text(PYX)
    (folder / "setup.py").write_text(SETUP)
    proc = subprocess.run([sys.executable, "setup.py"], cwd=folder, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = next(p for p in folder.iterdir() if p.name.startswith("capi_user.")
                 and p.suffix in (".so", ".pyd"))
    spec = importlib.util.spec_from_file_location("capi_user", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODES = {"full": 0, "same": 1, "valid": 2}
BOUNDARIES = {"fill": 0, "wrap": 1, "symm": 2}
PADDING_MODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3, "symmetric": 4}


def test_include_folder_has_headers():
    assert os.path.isfile(os.path.join(cyconv.get_include(), "kernels.h"))


def test_api_version(capi_user):
    assert capi_user.API_VERSION == 1


@pytest.mark.parametrize("convolve", [False, True])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("boundary", list(BOUNDARIES))
@pytest.mark.parametrize("shapes", [((13, 17), (3, 3)), ((9, 8), (4, 5)), ((5, 6), (7, 9)),
                                    ((40, 33), (1, 11))])
def test_filter2d_matches_python_api(capi_user, convolve, mode, boundary, shapes):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(shapes[0])
    k = rng.standard_normal(shapes[1])
    valid_ok = all(x >= y for x, y in zip(*shapes))
    status, got = capi_user.filter2d(a, k, MODES[mode], BOUNDARIES[boundary], 1.5, convolve)
    if mode == "valid" and not valid_ok:
        assert status == -1  # CYC_EINVAL: the C API does not swap the inputs
        return
    assert status == 0
    fn = cyconv.convolve2d if convolve else cyconv.correlate2d
    expected = fn(a, k, mode, boundary, 1.5, method="direct")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_filter2d_reports_bad_arguments(capi_user):
    a = np.ones((4, 4))
    assert capi_user.filter2d(a, np.ones((2, 2)), 7, 0, 0.0, False)[0] == -1   # mode
    assert capi_user.filter2d(a, np.ones((2, 2)), 0, 9, 0.0, False)[0] == -1   # boundary
    assert capi_user.filter2d(a, np.ones((0, 2)), 0, 0, 0.0, False)[0] == -1   # empty kernel
    small = capi_user.filter2d_f32_small_work(np.ones((8, 8), np.float32),
                                              np.ones((3, 3), np.float32))
    assert small == -2  # CYC_EWORK


@pytest.mark.parametrize("case", [
    dict(C=3, K=40, H=12, W=15, R=3, S=3, stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1),
         groups=1, mode="zeros"),
    dict(C=8, K=8, H=11, W=9, R=3, S=2, stride=(2, 1), padding=(1, 2, 0, 1), dilation=(1, 2),
         groups=8, mode="reflect"),
    dict(C=4, K=64, H=7, W=7, R=3, S=3, stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1),
         groups=2, mode="circular"),
    dict(C=6, K=12, H=20, W=5, R=5, S=1, stride=(3, 1), padding=(2, 2, 0, 0), dilation=(1, 1),
         groups=3, mode="symmetric"),
    dict(C=2, K=32, H=9, W=30, R=2, S=4, stride=(1, 3), padding=(0, 0, 1, 3), dilation=(2, 1),
         groups=1, mode="replicate"),
    # 1x1 layer in channel chunks; small-image tiles with a shared padding column
    dict(C=200, K=64, H=9, W=13, R=1, S=1, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
         groups=1, mode="zeros"),
    dict(C=8, K=32, H=7, W=7, R=3, S=3, stride=(1, 1), padding=(1, 1, 1, 2), dilation=(1, 1),
         groups=1, mode="zeros"),
    # 1x1 layers with the blocks outer: one strip, each block's chunk packed
    # as it runs (N=1); two strips, packed first
    dict(N=1, C=512, K=160, H=5, W=6, R=1, S=1, stride=(1, 1), padding=(0, 0, 0, 0),
         dilation=(1, 1), groups=1, mode="zeros"),
    dict(N=1, C=1024, K=600, H=3, W=5, R=1, S=1, stride=(1, 1), padding=(0, 0, 0, 0),
         dilation=(1, 1), groups=2, mode="zeros"),
    dict(C=1024, K=600, H=3, W=5, R=1, S=1, stride=(1, 1), padding=(0, 0, 0, 0),
         dilation=(1, 1), groups=2, mode="zeros"),
    # depthwise with the channels in the vector lanes (a group of them and a
    # part group), strided and dilated
    dict(C=20, K=20, H=9, W=11, R=3, S=3, stride=(2, 1), padding=(1, 1, 2, 0),
         dilation=(1, 2), groups=20, mode="reflect"),
    dict(C=48, K=48, H=7, W=7, R=3, S=3, stride=(1, 1), padding=(1, 1, 1, 1),
         dilation=(1, 1), groups=48, mode="zeros"),
    dict(C=20, K=40, H=8, W=9, R=3, S=3, stride=(1, 2), padding=(1, 1, 1, 1),
         dilation=(1, 1), groups=20, mode="zeros"),   # a depth multiplier
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_matches_python_api(capi_user, case, bias):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((case.get("N", 2), case["C"], case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((case["K"], case["C"] // case["groups"], case["R"], case["S"]))
    w = w.astype(np.float32)
    b = rng.standard_normal(case["K"]).astype(np.float32) if bias else None
    top, bottom, left, right = case["padding"]
    status, got = capi_user.conv2d(x, w, b, case["stride"], (top, bottom, left, right),
                                   case["dilation"], case["groups"], PADDING_MODES[case["mode"]])
    assert status == 0
    expected = cyconv.conv2d(x, w, b, case["stride"], (left, right, top, bottom),
                             case["dilation"], case["groups"], padding_mode=case["mode"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("H, W", [(7, 7), (14, 14), (5, 29)])
def test_conv2d_infinite_weights_give_the_reference_nans(capi_user, H, W):
    """Row tiles leave out zero-padding products only for blocks of finite
    weights: the C API marks the blocks it packs as conv2d does."""
    from conv2d_reference import conv2d_direct
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, H, W)).astype(np.float32)
    w = rng.standard_normal((40, 8, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = np.inf
    w[1, 2, 2, 1] = -np.inf
    status, got = capi_user.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, 0)
    assert status == 0
    with np.errstate(all="ignore"):
        expected = conv2d_direct(x, w, None, 1, 1)
    assert np.isnan(expected[:, :2]).any()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, equal_nan=True)


def test_conv2d_reports_bad_arguments(capi_user):
    x = np.ones((1, 4, 5, 5), np.float32)
    w = np.ones((6, 2, 3, 3), np.float32)
    ok = capi_user.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 2, 0)
    assert ok[0] == 0
    assert capi_user.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 3, 0)[0] == -1  # groups
    assert capi_user.conv2d(x, w, None, (0, 1), (0, 0, 0, 0), (1, 1), 2, 0)[0] == -1  # stride
    assert capi_user.conv2d(x, w, None, (1, 1), (5, 0, 0, 0), (1, 1), 2, 1)[0] == -1  # reflect
    assert capi_user.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (3, 3), 2, 0)[0] == -1  # too big
    assert capi_user.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 2, 9)[0] == -1  # mode


# ---------------------------------------------------------------------------
# Size queries never wrap: each answer is -1 / CYC_EINVAL or the exact byte
# count of the layout, computed here with Python's unbounded integers.
# ---------------------------------------------------------------------------

MAX = sys.maxsize  # PY_SSIZE_T_MAX
# conv2d's check uses an upper bound of its work (at most a few hundred times
# the exact size): below this, a valid problem must get its exact answer.
EXACT_BELOW = MAX >> 12
EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None)
TILES = _core.tile_sizes()


def filter2d_expected(h, w, m, n, mode, itemsize):
    """(output shape or None, work bytes or -1) of the filter2d API."""
    if min(h, w, m, n) < 1 or mode not in (0, 1, 2) or (mode == 2 and (h < m or w < n)):
        return None, -1
    ho, wo = {0: (h + m - 1, w + n - 1), 1: (h, w), 2: (h - m + 1, w - n + 1)}[mode]
    if ho * wo * 4 > MAX:  # the float32 output would not fit
        return None, -1
    if itemsize not in (4, 8):
        return (ho, wo), -1
    hp, wp = ho + m - 1, wo + n - 1
    # row and column maps (int64), kernel, strip; three 64-byte aligned regions
    work = 3 * TILES["align"] + 8 * (hp + wp) \
        + itemsize * (m * n + (min(ho, TILES["strip_rows"]) + m - 1) * wp)
    return (ho, wo), work if work <= MAX else -1


def conv2d_expected(t, itemsize):
    """(output shape, work bytes, largest array or work in bytes) of the
    conv2d API, mirroring _core._conv_plan; None for invalid arguments."""
    N, C, H, W, K, R, S, groups, sh, sw, dh, dw, top, bottom, left, right, mode = t
    if min(N, C, H, W, K, R, S, groups, sh, sw, dh, dw) < 1 or min(top, bottom, left, right) < 0 \
            or C % groups or K % groups or mode not in range(5):
        return None
    if mode == 1 and (max(top, bottom) >= H or max(left, right) >= W):
        return None
    if mode == 3 and (max(top, bottom) > H or max(left, right) > W):
        return None
    Hp, Wp = H + top + bottom, W + left + right
    eh, ew = dh * (R - 1) + 1, dw * (S - 1) + 1
    if Hp < eh or Wp < ew:
        return None
    Ho, Wo = (Hp - eh) // sh + 1, (Wp - ew) // sw + 1
    Cg, Kg = C // groups, K // groups
    # the kernels' tiles for this layer: AVX-512's, or AVX2's for layers of
    # fewer channels than an AVX-512 block
    TILES = _core.tile_sizes(Kg, itemsize == 8)
    PT, FK = TILES["tile_pixels"], TILES["flat_channels"]
    KB = TILES["block_f64" if itemsize == 8 else "block_f32"]
    FP = TILES["flat_f64" if itemsize == 8 else "flat_f32"]
    Hb, Wb, packed, edge, marks = Hp, Wp, 0, 0, 0
    padded = None   # C x Hb x Wb
    blocked = 2 * Kg >= KB
    # flat tiles' row pitch: zero padding shares a padding column between rows
    flat_pitch = max(Wo, W + max(left, right)) if mode == 0 else Wp
    widths = (PT, (2 * PT + 2) // 3, PT // 2, (PT + 2) // 3)
    # 3x3 layers with zero padding run row tiles, which leave out the
    # padding's products, on rows of at least a tile or of a tile width,
    # with up to 16 MB of packed weights
    rows_beat_small = R == S == 3 and dh == dw == 1 and mode == 0 \
        and top + bottom + left + right > 0 and (Wo >= PT or Wo in widths) \
        and groups * -(-Kg // KB) * Cg * 9 * KB * itemsize <= 16 << 20
    small = blocked and sh == 1 and sw == 1 and N * Ho * Wo < TILES["small_pixels"] \
        and not R == S == 1 and not rows_beat_small   # (1x1 layers pack on any image)
    # where 512-bit FMAs run at full width, layers of AVX2's blocks, and of
    # AVX-512's with at most 27 taps a pixel, run the level's small-image
    # tiles when at least 70 % of the flat pixels those compute are output
    # pixels (AVX2's blocks: counted in vectors from one whole tile on)
    OWN = _core.tile_sizes(None, itemsize == 8)
    own_fp = OWN["flat_f64" if itemsize == 8 else "flat_f32"]
    lanes = OWN["block_f64" if itemsize == 8 else "block_f32"] // 2
    pixels = (Ho - 1) * flat_pitch + Wo
    computed = -(-pixels // own_fp) * own_fp if TILES == OWN or pixels < own_fp \
        else -(-pixels // lanes) * lanes
    if blocked and not small and _core.rows_512() and sh == sw == 1 and not R == S == 1 \
            and (TILES != OWN or Cg * R * S <= 27) and 100 * Ho * Wo >= 70 * computed:
        small, TILES, FK, FP = True, OWN, OWN["flat_channels"], own_fp
    if small:
        Wb = flat_pitch
        Hb = Hp + -(-(FP + Wp - Wb) // Wb)
        scratch = FK * FP
    elif blocked:
        # row tiles step by a narrower width when that computes fewer pixels
        # (each row's last tile: the narrowest width that holds it)
        fit = (lambda n: min([w for w in widths if w >= n], default=PT))
        row_pixels = (lambda step: Wo - Wo % step + (fit(Wo % step) if Wo % step else 0))
        step = PT
        if Wo > PT and row_pixels(fit(-(-Wo // -(-Wo // PT)))) < row_pixels(PT):
            step = fit(-(-Wo // -(-Wo // PT)))
        # a row narrower than the tile that would hold it: narrower tiles
        narrower = [w for w in widths[1:] if w < Wo]
        if Wo < PT and fit(Wo) != Wo and narrower:
            step = min(narrower, key=row_pixels)
        if step == PT:
            flat = sh == 1 and sw == 1 and flat_pitch - Wo < -(-Wo // PT) * PT - Wo
        else:
            flat = sh == 1 and sw == 1 and flat_pitch <= row_pixels(step)
        # a row of one tile width, zero padding above or below: row tiles,
        # which leave out the kernel rows on the padding
        if R > 1 and mode == 0 and top + bottom > 0 and Wo in widths:
            flat = False
        if flat and flat_pitch < Wp:
            Wb, Hb = flat_pitch, Hb + 1
        if (Hb * Wb * itemsize) % 1024 == 0:  # a spare row against L1 set aliasing
            Hb += 1
        packed = groups * -(-Kg // KB) * Cg * R * S * KB
        marks = groups * -(-Kg // KB)   # a byte per block, after the maps
        scratch = PT * KB
        # 1x1 layers of few channels, unpadded, one group: pixel tiles, no chunks
        lanes = R == S == sh == sw == groups == 1 and top == bottom == left == right == 0 \
            and Cg <= TILES["lanes_max_channels"]
        if lanes:
            LP = TILES["pixel_f64" if itemsize == 8 else "pixel_f32"]
            scratch = max(scratch, TILES["pixel_channels"] * LP)
        # 1x1 flat tiles in channel chunks: partial sums of a strip of tiles;
        # with more packed weights than 256 KB, chunks of one block (8 KB)
        # over strips whose partial sums fill 512 KB (an image smaller than
        # the weights: the whole image, as many blocks at a time as fit);
        # with a single strip each chunk is packed as it starts (no packed
        # weights; the chunk's, 64-byte aligned)
        # R x S flat tiles: blocks outer, chunks of 18 KB of one block's
        # weights, strips whose partial sums fill 32 KB (at least 16 tiles)
        nb = groups * -(-Kg // KB)
        # (fewer weights for 1x1 layers on inputs of at most 2 MB: 32 KB
        # float32, 128 KB float64)
        small_input = R == S == 1 and C * Hb * Wb * itemsize <= 2097152
        limit = (32768 if itemsize == 4 else 131072) if small_input else 262144
        blocks_outer = packed * itemsize > limit or R * S > 1
        chunk = (18432 // (R * S * KB * itemsize) if R * S > 1
                 else 8192 // (KB * itemsize) if blocks_outer
                 else 16384 // (nb * KB * itemsize))
        if flat and not lanes and 32 <= chunk < Cg:
            partial = 32768 if R * S > 1 else 524288 if blocks_outer else 131072
            pixels = (Ho - 1) * Wb + Wo
            tiles, tile_bytes = -(-pixels // PT), PT * KB * itemsize
            if blocks_outer and C * pixels < packed and tiles * tile_bytes <= partial:
                strip, strip_blocks = tiles, min(nb, partial // (tiles * tile_bytes))
            else:
                strip, strip_blocks = max(1, partial // (nb * tile_bytes)), nb
            if R * S > 1 and strip < 16:   # passes of as many blocks as leave 16 tiles
                strip_blocks = min(nb, max(1, partial // (16 * tile_bytes)))
                strip = max(1, partial // (strip_blocks * tile_bytes))
            scratch += strip * strip_blocks * PT * KB
            if blocks_outer and R == S == 1 and N * tiles <= strip:   # a single strip
                # (and a piece of less than a tile packs its whole block)
                packed, scratch = 0, max(scratch + chunk * KB, PT * KB + Cg * KB) + 64 // itemsize
        elif not lanes and packed * itemsize > limit and N == 1 \
                and Cg * R * S * KB * itemsize <= 655360:
            # unchunked, blocks outer, one image: each block packed as its
            # tiles start (no packed weights; one block's, 64-byte aligned)
            packed, scratch = 0, scratch + Cg * R * S * KB + 64 // itemsize
        edge = Cg * R * PT * S
    else:
        dense = (Wo - 1) * sw + 1
        scratch = TILES["spatial_rows"] * dense
        lanes = TILES["row_lanes_f64" if itemsize == 8 else "row_lanes_f32"]
        # (a one-tap axis's dilation is 1 to the plan)
        dh1, dw1 = (dh if R > 1 else 1), (dw if S > 1 else 1)
        G = TILES["dw_lanes_f64" if itemsize == 8 else "dw_lanes_f32"]
        vector = G * itemsize   # (unit stride: planes up to a size that shrinks with it)
        if Cg == 1 and 0 < G <= C and (max(sh, sw, dh1, dw1) > 1 or Ho * Wo * itemsize
                                             <= TILES["dw_max_bytes"] * vector**2 // 4096):
            # depthwise, G channels in the vector lanes: taps, bias, and a
            # band's input and output rows
            band = max(1, min(Ho, TILES["dw_band_bytes"] // (itemsize * G * Wp * sh)))
            scratch = G * (R * S + 1 + ((band - 1) * sh + (R - 1) * dh1 + 1) * Wp + band * Wo)
            padded = 0   # (its rows gathered into scratch)
        elif dw1 == 1 and (sh == dh1 == 1 or Cg == 1) and dense < 2 * lanes:
            # many rows per call, under two of the row kernels' vectors
            # wide: computed whole vectors wide, with spare zero rows for
            # the columns past the dense ones
            width = -(-dense // lanes) * lanes
            Hb += max(1, -(-(width - dense) // Wb))
            scratch = min(Ho, TILES["narrow_rows"]) * width
    padded = C * Hb * Wb if padded is None else padded
    # maps and marks, packed weights, padded input, scratch, edge: five aligned regions
    work = 5 * TILES["align"] + 8 * (Hb + Wb) + marks \
        + itemsize * (packed + padded + scratch + edge)
    largest = max(work, itemsize * N * C * H * W, itemsize * K * Cg * R * S,
                  itemsize * N * K * Ho * Wo)
    return (Ho, Wo), work, largest


def check_filter2d_query(capi_user, h, w, m, n, mode, itemsize):
    status, oh, ow, work = capi_user.filter2d_query(h, w, m, n, mode, itemsize)
    shape, expected_work = filter2d_expected(h, w, m, n, mode, itemsize)
    assert (status, oh, ow) == ((0, *shape) if shape else (-1, -7, -7))
    assert work == expected_work


def check_conv2d_query(capi_user, t, itemsize):
    status, oh, ow, work = capi_user.conv2d_query(t, itemsize)
    shape = conv2d_expected(t, 4)  # the shape query checks float32 sizes
    if shape is None or shape[2] > MAX:
        assert status == -1
    elif shape[2] <= EXACT_BELOW or status != -1:
        assert (status, oh, ow) == (0, *shape[0])
    expected = conv2d_expected(t, itemsize) if itemsize in (4, 8) else None
    if expected is None or expected[2] > MAX:
        assert work == -1
    elif expected[2] <= EXACT_BELOW or work != -1:
        assert work == expected[1]


EDGE_VALUES = [-2**63, -2**62, -2, -1, 0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 + 1, 2**60,
               2**61 - 1, 2**61, 2**62 - 1, 2**62, 2**62 + 1, 2**63 - 1]
size_values = st.one_of(
    st.integers(-1, 9), st.sampled_from(EDGE_VALUES),
    st.builds(lambda e, d: min(2**e + d, MAX), st.integers(0, 63), st.integers(-3, 3)),
    st.integers(-2**63, MAX))
itemsizes = st.one_of(st.sampled_from([4, 8]), st.integers(-2, 17), st.sampled_from(EDGE_VALUES))


@st.composite
def small_conv2d_params(draw):
    """A valid small conv2d problem (tuple in cyc_conv2d_params order)."""
    groups = draw(st.integers(1, 3))
    mode = draw(st.integers(0, 4))
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    top, bottom, left, right = (draw(st.integers(0, 2)) for _ in range(4))
    if mode == 1:
        top, bottom, left, right = min(top, H - 1), min(bottom, H - 1), min(left, W - 1), \
            min(right, W - 1)
    t = (draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), H, W,
         groups * draw(st.sampled_from([1, 2, 5, 16, 40])), draw(st.integers(1, 3)),
         draw(st.integers(1, 3)), groups, draw(st.integers(1, 3)), draw(st.integers(1, 3)),
         draw(st.integers(1, 2)), draw(st.integers(1, 2)), top, bottom, left, right, mode)
    assume(conv2d_expected(t, 4) is not None)
    return t


@st.composite
def huge_conv2d_params(draw):
    """A valid small problem with a few fields replaced by huge, negative or
    boundary values."""
    t = list(draw(small_conv2d_params()))
    for field in draw(st.sets(st.integers(0, 15), min_size=1, max_size=4)):
        t[field] = draw(size_values)
    if draw(st.booleans()):
        t[16] = draw(st.integers(-1, 6))
    return tuple(t)


@SETTINGS
@given(h=size_values, w=size_values, m=size_values, n=size_values,
       mode=st.integers(-1, 3), itemsize=itemsizes)
def test_filter2d_size_queries_never_wrap(capi_user, h, w, m, n, mode, itemsize):
    check_filter2d_query(capi_user, h, w, m, n, mode, itemsize)


@SETTINGS
@given(t=huge_conv2d_params(), itemsize=itemsizes)
def test_conv2d_size_queries_never_wrap(capi_user, t, itemsize):
    check_conv2d_query(capi_user, t, itemsize)


PLANNED_LAYOUTS = [
    (2, 200, 9, 13, 64, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),    # 1x1 in channel chunks
    (1, 96, 30, 31, 160, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),   # chunks over strips
    (1, 512, 7, 7, 512, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),    # blocks outer, packed inline
    (1, 1024, 3, 5, 600, 1, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0),   # the same, grouped
    (2, 1024, 3, 5, 600, 1, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0),   # two strips: packed first
    (1, 512, 14, 14, 1024, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0), # one strip, blocks in groups
    (1, 128, 28, 28, 512, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),  # 256 KB of weights, 392 KB input
    (1, 512, 56, 56, 128, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),  # 256 KB of weights, 6 MB input
    (1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0),    # small tiles, shared column
    (1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0),    # flat tiles, shared column
    (1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),    # the same, reflect: no sharing
    (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0),    # 3x3 in channel chunks
    (1, 512, 28, 28, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0),  # 3x3, fewer blocks per pass
    (2, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0),  # passes of some blocks
    (1, 200, 20, 21, 96, 2, 2, 2, 1, 1, 1, 1, 0, 1, 0, 1, 0),   # 2x2, grouped
    # depthwise, channels in the vector lanes: small planes, strided, dilated,
    # channels not a multiple of the lanes, bands of rows; and a large plane
    # at unit stride (row kernels)
    (1, 960, 7, 7, 960, 3, 3, 960, 1, 1, 1, 1, 1, 1, 1, 1, 0),
    (2, 96, 112, 112, 96, 3, 3, 96, 2, 2, 1, 1, 1, 1, 1, 1, 0),
    (1, 40, 30, 33, 40, 5, 3, 40, 1, 2, 2, 1, 2, 2, 1, 1, 1),
    (1, 24, 9, 300, 24, 3, 3, 24, 3, 1, 1, 3, 0, 0, 3, 3, 3),
    (1, 32, 56, 56, 32, 3, 3, 32, 1, 1, 1, 1, 1, 1, 1, 1, 0),
    (1, 32, 20, 20, 96, 3, 3, 32, 2, 2, 1, 1, 1, 1, 1, 1, 0),    # depth multiplier 3
    # blocks outer, chunks packed inline, an image of less than a tile: the
    # whole block packed unchunked
    (1, 512, 2, 2, 160, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
    (1, 576, 1, 3, 128, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
]


@pytest.mark.parametrize("t", PLANNED_LAYOUTS)
@pytest.mark.parametrize("itemsize", [4, 8])
def test_conv2d_size_query_of_planned_layouts(capi_user, t, itemsize):
    """The exact work size of plans with channel chunks and shared padding columns."""
    check_conv2d_query(capi_user, t, itemsize)


@pytest.mark.parametrize("t", PLANNED_LAYOUTS)
@pytest.mark.parametrize("itemsize", [4, 8])
def test_conv2d_planned_layouts_stay_in_their_work(capi_user, t, itemsize):
    """Each planned layout in a work buffer of exactly the queried size,
    guarded on both sides: nothing is written outside it, and the result is
    conv2d's."""
    check_conv2d_exact(capi_user, t, itemsize, bias=True, offset=8, guard=64, seed=0)


def _threshold(fits, lo=1, hi=MAX):
    """The smallest value in (lo, hi] for which fits() is False (fits(lo) is True)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return hi


CONV_BASE = (2, 3, 5, 7, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0)   # blocked, zeros padding
CONV_FIELDS = {"N": 0, "C": 1, "H": 2, "W": 3, "K": 4, "pad_top": 12, "pad_bottom": 13,
               "pad_left": 14, "pad_right": 15}


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("field", list(CONV_FIELDS))
@pytest.mark.parametrize("base", [CONV_BASE, CONV_BASE[:4] + (1,) + CONV_BASE[5:]],
                         ids=["blocked", "spatial"])
def test_conv2d_queries_around_the_overflow_threshold(capi_user, itemsize, field, base):
    def with_value(v):
        t = list(base)
        t[CONV_FIELDS[field]] = v
        return tuple(t)

    for limit in (MAX, EXACT_BELOW):
        edge = _threshold(lambda v: conv2d_expected(with_value(v), itemsize)[2] <= limit)
        for v in range(edge - 3, edge + 3):
            check_conv2d_query(capi_user, with_value(v), itemsize)


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("field", range(4))
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_filter2d_queries_around_the_overflow_threshold(capi_user, itemsize, field, mode):
    base = [6, 7, 3, 2]

    def with_value(v):
        args = list(base)
        args[field] = v
        if mode == 2:   # valid: the image grows with the kernel
            args[field - 2 if field >= 2 else field] = max(args[field - 2 if field >= 2 else field], v)
        return args

    for fits in (lambda v: filter2d_expected(*with_value(v), mode, itemsize)[1] != -1,
                 lambda v: filter2d_expected(*with_value(v), mode, itemsize)[0] is not None):
        if fits(MAX):
            continue
        edge = _threshold(fits)
        for v in range(edge - 3, edge + 3):
            check_filter2d_query(capi_user, *with_value(v), mode, itemsize)


def test_issue_examples_are_rejected(capi_user):
    # pad_top=2**61, W=4 used to report 1008 bytes; pad_top=2**60, W=16 a negative number
    for pad, W in ((2**61, 4), (2**60, 16)):
        t = (1, 1, 1, W, 1, 1, 1, 1, 1, 1, 1, 1, pad, 0, 0, 0, 0)
        assert capi_user.conv2d_query(t, 4) == (-1, -7, -7, -1)
        assert capi_user.conv2d_query(t, 8) == (-1, -7, -7, -1)


def test_itemsize_must_be_the_dtypes(capi_user):
    t = (1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0)
    for bad in (-8, -1, 0, 1, 2, 3, 5, 12, 16, 2**62):
        assert capi_user.filter2d_query(5, 5, 3, 3, 0, bad)[3] == -1
        assert capi_user.conv2d_query(t, bad)[3] == -1
    assert capi_user.filter2d_query(5, 5, 3, 3, 0, 4)[3] > 0
    assert capi_user.conv2d_query(t, 8)[3] > 0


@pytest.mark.parametrize("args", [
    (3, 4, 3, 2, 2, 2, 3),          # in1 stride below its width
    (3, 4, 4, 2, 2, 1, 3),          # in2 stride below its width
    (3, 4, 4, 2, 2, 2, 2),          # out stride below its width
    (2, 4, 2**62, 1, 1, 1, 4),      # h * in1_stride * 8 bytes overflow
    (1, 4, 2**62, 1, 1, 1, 4),      # a one-row plane too: the stride is still multiplied
    (3, 4, 4, 1, 1, 2**61, 4),      # in2 plane overflows
    (3, 4, 4, 1, 1, 1, 2**61),      # out plane overflows
    (3, 4, -1, 1, 1, 1, 4),         # negative stride
])
def test_filter2d_rejects_bad_strides(capi_user, args):
    assert capi_user.correlate2d_strides(*args) == -1


DTYPES = {4: np.float32, 8: np.float64}
PADDING_NAMES = {v: k for k, v in PADDING_MODES.items()}


@SETTINGS
@given(t=small_conv2d_params(), itemsize=st.sampled_from([4, 8]), bias=st.booleans(),
       offset=st.integers(0, 63), guard=st.sampled_from([0, 64]), seed=st.integers(0, 2**32 - 1))
def test_conv2d_exact_work_buffer_is_enough(capi_user, t, itemsize, bias, offset, guard, seed):
    check_conv2d_exact(capi_user, t, itemsize, bias, offset, guard, seed)


def check_conv2d_exact(capi_user, t, itemsize, bias, offset, guard, seed):
    N, C, H, W, K, R, S, groups, sh, sw, dh, dw, top, bottom, left, right, mode = t
    (Ho, Wo), _, _ = conv2d_expected(t, itemsize)
    rng = np.random.default_rng(seed)
    dtype = DTYPES[itemsize]
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // groups, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    out = np.full((N, K, Ho, Wo), np.nan, dtype)
    status, intact = capi_user.conv2d_exact(t, x, w, b, out, offset, guard)
    assert (status, intact) == (0, True)
    expected = cyconv.conv2d(x, w, b, (sh, sw), (left, right, top, bottom), (dh, dw), groups,
                             padding_mode=PADDING_NAMES[mode])
    tol = 1e-4 if itemsize == 4 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max()))


@SETTINGS
@given(h=st.integers(1, 12), w=st.integers(1, 12), m=st.integers(1, 6), n=st.integers(1, 6),
       pads=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
       mode=st.integers(0, 2), boundary=st.integers(0, 2), convolve=st.booleans(),
       itemsize=st.sampled_from([4, 8]), offset=st.integers(0, 63), guard=st.sampled_from([0, 64]),
       seed=st.integers(0, 2**32 - 1))
def test_filter2d_exact_work_buffer_is_enough(capi_user, h, w, m, n, pads, mode, boundary,
                                              convolve, itemsize, offset, guard, seed):
    shape, _ = filter2d_expected(h, w, m, n, mode, itemsize)
    assume(shape is not None)
    rng = np.random.default_rng(seed)
    dtype = DTYPES[itemsize]
    # each plane is the first columns of a wider C-contiguous array: row stride > width
    a = rng.standard_normal((h, w + pads[0])).astype(dtype)
    k = rng.standard_normal((m, n + pads[1])).astype(dtype)
    out = np.full((shape[0], shape[1] + pads[2]), np.nan, dtype)
    status, intact = capi_user.filter2d_exact(a, k, out, w, n, shape[1], mode, boundary, 0.5,
                                              convolve, offset, guard)
    assert (status, intact) == (0, True)
    fn = cyconv.convolve2d if convolve else cyconv.correlate2d
    expected = fn(a[:, :w], k[:, :n], list(MODES)[mode], list(BOUNDARIES)[boundary], 0.5,
                  method="direct")
    tol = 1e-4 if itemsize == 4 else 1e-12
    np.testing.assert_allclose(out[:, :shape[1]], expected, rtol=tol,
                               atol=tol * (1 + np.abs(expected).max()))
    assert np.isnan(out[:, shape[1]:]).all()  # nothing written past the output's width
