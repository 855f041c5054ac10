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

import cyconv

pytest.importorskip("Cython")

PYX = textwrap.dedent('''
    # cython: language_level=3, boundscheck=False, wraparound=False
    from libc.stdlib cimport malloc, free
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

    API_VERSION = cyconv.CYC_API_VERSION
    ''')

SETUP = textwrap.dedent('''
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    import numpy, cyconv
    ext = Extension("capi_user", ["capi_user.pyx"],
                    include_dirs=[numpy.get_include(), cyconv.get_include()])
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
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_matches_python_api(capi_user, case, bias):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, case["C"], case["H"], case["W"])).astype(np.float32)
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
