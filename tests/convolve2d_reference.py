"""Brute-force convolve2d / correlate2d from their definitions, and the
rounding-error bound of a floating result, shared by the convolve2d test
files (integers summed exactly as Python ints, floats in long double)."""

from __future__ import annotations

import numpy as np

FILL_BOUNDARIES = ("fill", "pad")
# NumPy 1.x wraps some out-of-range Python int fills into the type (SciPy with it)
NUMPY_1 = np.lib.NumpyVersion(np.__version__) < "2.0.0"


def output_shape(shape1, shape2, mode):
    """SciPy's output shape (None when 'valid' has no input that contains the other)."""
    (H, W), (M, N) = shape1, shape2
    if mode == "full":
        return (H + M - 1, W + N - 1)
    if mode == "same":
        return (H, W)
    if H >= M and W >= N:
        return (H - M + 1, W - N + 1)
    if M >= H and N >= W:
        return (M - H + 1, N - W + 1)
    return None


def _extend_index(idx, size, boundary):
    """Map integer positions outside [0, size) the way `boundary` extends an image."""
    if boundary in ("wrap", "circular"):
        return idx % size
    if boundary in ("symm", "symmetric"):
        j = idx % (2 * size)
        return np.where(j < size, j, 2 * size - 1 - j)
    return idx


def _valid_reference(name, in1, in2, dtype, shape):
    """'valid' from the definition: only products of actual samples, where the
    smaller input lies entirely inside the larger one (no boundary values)."""
    (H, W), (M, N) = in1.shape, in2.shape
    Ho, Wo = shape
    if dtype.kind in "iu":
        x, y, acc = in1.astype(object), in2.astype(object), np.zeros(shape, object)
    else:
        acc_t = np.clongdouble if dtype.kind == "c" else np.longdouble
        x, y, acc = in1.astype(acc_t), in2.astype(acc_t), np.zeros(shape, acc_t)
        if name == "correlate2d" and dtype.kind == "c":
            y = np.conj(y)
    correlate = name == "correlate2d"
    if H >= M and W >= N:   # in2 slides over in1
        for m in range(M):
            for n in range(N):
                if correlate:   # out[k, l] = sum conj(in2[m, n]) * in1[k + m, l + n]
                    acc += y[m, n] * x[m:m + Ho, n:n + Wo]
                else:           # out[k, l] = sum in2[m, n] * in1[k + M-1 - m, l + N-1 - n]
                    acc += y[m, n] * x[M - 1 - m:M - 1 - m + Ho, N - 1 - n:N - 1 - n + Wo]
    else:                   # in1 slides over in2
        for i in range(H):
            for j in range(W):
                if correlate:   # z[k, l] = sum in1[i, j] * conj(in2[i + M-H - k, j + N-W - l])
                    acc += x[i, j] * y[i:i + Ho, j:j + Wo][::-1, ::-1]
                else:           # out[k, l] = sum in1[i, j] * in2[k + H-1 - i, l + W-1 - j]
                    acc += x[i, j] * y[H - 1 - i:H - 1 - i + Ho, W - 1 - j:W - 1 - j + Wo]
    return _finish(acc, dtype)


def _finish(acc, dtype):
    """Exact integer sums wrapped into `dtype`; long-double sums rounded to it."""
    if dtype.kind in "iu":
        bits = 8 * dtype.itemsize
        vals = [int(v) % (1 << bits) for v in acc.ravel()]
        if dtype.kind == "i":
            vals = [v - (1 << bits) if v >> (bits - 1) else v for v in vals]
        return np.array(vals, dtype).reshape(acc.shape)
    if dtype.kind != "c":
        acc = acc.real
    return np.ascontiguousarray(acc.astype(dtype))


def reference(name, in1, in2, mode="full", boundary="fill", fillvalue=0):
    """Brute-force convolve2d/correlate2d from the definitions.

    Integers are summed exactly as Python ints and wrapped into the result
    type; floats are summed in long double. Raises ValueError where the
    contract says cyconv raises.
    """
    in1, in2 = np.asarray(in1), np.asarray(in2)
    dtype = np.result_type(in1, in2)
    (H, W), (M, N) = in1.shape, in2.shape
    if mode == "valid":
        out_shape = output_shape(in1.shape, in2.shape, "valid")
        if out_shape is None:
            raise ValueError("valid mode: neither input contains the other")
        if in1.size == 0 or in2.size == 0:
            # the smaller input has an empty dimension: every output sums nothing
            return np.zeros(out_shape, dtype)
        return _valid_reference(name, in1, in2, dtype, out_shape)
    out_full = (H + M - 1, W + N - 1)
    if mode == "full" and min(out_full) < 0:
        raise ValueError("negative output size")
    out_shape = out_full if mode == "full" else (H, W)
    if min(out_shape) == 0 or in2.size == 0:
        return np.zeros(out_shape, dtype)
    if in1.size == 0 and boundary not in FILL_BOUNDARIES:
        raise ValueError("cannot extend an empty in1 periodically or symmetrically")

    exact_int = dtype.kind in "iu"
    if exact_int:
        img = in1.astype(object)
        ker = in2.astype(object)
        fill = int(fillvalue)
        acc = np.zeros(out_full, dtype=object)
    else:
        acc_t = np.clongdouble if dtype.kind == "c" else np.longdouble
        img = in1.astype(acc_t)
        ker = in2.astype(acc_t)
        fill = np.asarray(fillvalue).astype(acc_t)
        acc = np.zeros(out_full, dtype=acc_t)
    correlate = name == "correlate2d"
    if correlate and dtype.kind == "c":
        ker = np.conj(ker)
    # e(i, j): the extended image, for i in [-(M-1), H+M-1), j in [-(N-1), W+N-1).
    rows = np.arange(-(M - 1), H + M - 1)
    cols = np.arange(-(N - 1), W + N - 1)
    if boundary in FILL_BOUNDARIES:
        ext = np.full((rows.size, cols.size), fill, dtype=acc.dtype)
        ext[M - 1:M - 1 + H, N - 1:N - 1 + W] = img
    else:
        ext = img[np.ix_(_extend_index(rows, H, boundary), _extend_index(cols, W, boundary))]
    for m in range(M):
        for n in range(N):
            if correlate:
                # out[k, l] = sum conj(in2[m, n]) * e(k - (M-1) + m, l - (N-1) + n)
                acc += ker[m, n] * ext[m:m + out_full[0], n:n + out_full[1]]
            else:
                # out[k, l] = sum in2[m, n] * e(k - m, l - n)
                acc += ker[m, n] * ext[M - 1 - m:M - 1 - m + out_full[0],
                                       N - 1 - n:N - 1 - n + out_full[1]]
    if mode == "same":
        r0 = M // 2 if correlate else (M - 1) // 2
        c0 = N // 2 if correlate else (N - 1) // 2
        acc = acc[r0:r0 + H, c0:c0 + W]
    return _finish(acc, dtype)


def _abs(x, to=np.float64):
    """|x| as `to` (complex magnitudes, no integer overflow), non-finite -> 0."""
    a = np.abs(np.asarray(x).astype(np.clongdouble)).astype(to)
    a[~np.isfinite(a)] = 0
    return a


def error_bound(name, in1, in2, mode, boundary, fillvalue, dtype=None):
    """Per-element bound on |result - exact| for a floating result of `dtype`
    (default: the inputs' result type), loose enough for cyconv's and SciPy's.

    Each output is a sum of K products (K = in2.size; the smaller size in
    'valid'); a recursive sum of K terms is off by at most ~K*eps*sum|terms|,
    and sum|terms| is the same filter applied to the absolute values. Plus
    the (small) allowance of :func:`transform_error_term`.
    """
    a, b = _abs(in1), _abs(in2)
    fill = abs(complex(np.asarray(fillvalue).reshape(-1)[0])) if boundary in FILL_BOUNDARIES else 0.0
    fill = fill if np.isfinite(fill) else 0.0
    dtype = np.result_type(np.asarray(in1), np.asarray(in2)) if dtype is None else dtype
    eps = float(np.finfo(dtype).eps)
    terms = min(a.size, b.size) if mode == "valid" else b.size   # products per output
    # sum|terms| and the bound in long double: for a long double result of
    # terms near float64's smallest, eps * sum|terms| underflowed to a zero
    # bound in float64 (fill 2.2e-309 with a complex256 kernel)
    ld = np.longdouble
    magnitude = reference(name, _abs(in1, ld), _abs(in2, ld), mode, boundary, ld(fill))
    return 8 * (terms + 2) * ld(eps) * magnitude.astype(ld) + ld(np.finfo(dtype).tiny) \
        + transform_error_term(a, b, boundary, fill, eps)


def transform_error_term(a, b, boundary, fill, eps):
    """Allowance for a result computed by transform (FFT) rather than by direct
    summation, which the contract permits ("within rounding"): the error of an
    FFT convolution of the extended image x with b spreads over every element
    at the scale eps * log2(P) * ||x||_2 * ||b||_2 (P transform points).
    `a`, `b`: absolute values, non-finite entries zeroed; `fill`: |fillvalue|."""
    (H, W), (M, N) = a.shape, b.shape
    if a.size == 0 or b.size == 0:
        return 0.0
    rows, cols = H + 2 * M, W + 2 * N
    P = rows * cols
    if boundary in FILL_BOUNDARIES:
        x2 = np.sqrt((a * a).sum() + fill * fill * (P - a.size))
    else:   # the extension is made of (partial) copies of the image
        x2 = np.sqrt((a * a).sum() * (-(-rows // H)) * (-(-cols // W)))
    return 4.0 * eps * np.log2(P + 2) * x2 * np.sqrt((b * b).sum())
