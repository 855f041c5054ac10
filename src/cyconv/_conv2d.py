"""conv2d: torch.nn.functional.conv2d semantics on NumPy arrays.

This layer validates the arguments, resolves padding into per-side amounts
and source-index maps, packs the weights, allocates the output and the
scratch buffers, and calls the compiled core once.
"""

from __future__ import annotations

import operator
from typing import Literal, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, _parallel
from ._padding import aligned, index_map

IntPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], Literal["valid", "same"]]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular", "symmetric"]

# padding_mode -> the np.pad mode that extends an axis the same way.
_PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",      # mirror without repeating the edge (PyTorch, np.pad)
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",  # extension: mirror with the edge repeated (SciPy's 'symm')
}
_MAX_BYTES = 2 ** 62  # beyond this no allocation can succeed; refuse before trying


def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
           stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1,
           groups: int = 1, *, padding_mode: PaddingMode = "zeros",
           out: NDArray | None = None, workers: int | None = None) -> NDArray:
    """2-D convolution layer (cross-correlation), like ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    input : array_like, (N, C, H, W) or unbatched (C, H, W)
    weight : array_like, (K, C // groups, R, S)
    bias : array_like (K,), optional
    stride, dilation : int or (int, int), positive
    padding : int, (ph, pw), (left, right, top, bottom), "valid" or "same"
        "same" keeps ``ceil(H / stride)`` rows: with stride 1 exactly
        PyTorch's padding (total ``dilation * (R - 1)``, the smaller half
        before); with stride > 1 TensorFlow's ``SAME`` rule. The 4-tuple
        (asymmetric padding, in ``torch.nn.functional.pad`` order) is an
        extension.
    groups : int
        Splits input and output channels into this many independent groups.
    padding_mode : {"zeros", "reflect", "replicate", "circular", "symmetric"}
        As ``torch.nn.Conv2d``; "symmetric" (edge sample repeated) is an extension.
    out : ndarray, optional
        Writeable array of the exact result shape and dtype, not overlapping
        the inputs; filled and returned.
    workers : int, optional
        Threads to use; None: the process default (see :func:`set_num_threads`).
        Threads share out images, or output rows, never a sum: the result
        is bitwise the same for any value.

    Returns
    -------
    ndarray (N, K, Ho, Wo) or (K, Ho, Wo)
        float32 when every array argument is float32 or float16, else float64.
    """
    x = np.asarray(input)
    w = np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    dtype = _compute_dtype(x, w, b)

    if x.ndim not in (3, 4):
        raise ValueError(f"input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (K, C/groups, R, S), got shape {w.shape}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[np.newaxis]
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    groups = _positive_int(groups, "groups")
    if C % groups or K % groups:
        raise ValueError(f"groups={groups} must divide both the input channels ({C}) "
                         f"and the output channels ({K})")
    if Cg * groups != C:
        raise ValueError(f"weight of shape {w.shape} expects {Cg * groups} input channels "
                         f"with groups={groups}, but input has {C}")
    if b is not None and b.shape != (K,):
        raise ValueError(f"bias must have shape ({K},), one value per output channel, "
                         f"got shape {b.shape}")
    workers = _parallel.resolve_workers(workers)
    sh, sw = _int_pair(stride, "stride")
    dh, dw = _int_pair(dilation, "dilation")
    if not isinstance(padding_mode, str) or padding_mode not in _PAD_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(map(repr, _PAD_MODES))}, "
                         f"got {padding_mode!r}")
    top, bottom, left, right = _resolve_padding(padding, (H, W), (R, S), (sh, sw), (dh, dw))
    _check_pad_fits(padding_mode, (top, bottom), H, "height")
    _check_pad_fits(padding_mode, (left, right), W, "width")

    span_h, span_w = dh * (R - 1) + 1, dw * (S - 1) + 1
    Hp, Wp = H + top + bottom, W + left + right
    if Hp < span_h or Wp < span_w:
        raise ValueError(f"kernel of size ({R}, {S}) with dilation ({dh}, {dw}) spans "
                         f"({span_h}, {span_w}), larger than the padded input ({Hp}, {Wp})")
    Ho, Wo = (Hp - span_h) // sh + 1, (Wp - span_w) // sw + 1
    shape = (N, K, Ho, Wo)
    _check_size(shape, dtype, "output")

    result = _check_out(out, shape[1:] if unbatched else shape, dtype, (x, w, b))
    out4 = result[np.newaxis] if unbatched else result
    if out4.size == 0:
        return result
    if Cg == 0 or R == 0 or S == 0:
        # A reduction over nothing: only the bias remains.
        out4[...] = 0 if b is None else b.astype(dtype)[:, None, None]
        return result

    if x.dtype != dtype:  # also fixes a non-native byte order; any strides are fine
        x = x.astype(dtype)
    x, w = aligned(x), aligned(w)
    bias_arr = np.empty(0, dtype) if b is None else aligned(np.ascontiguousarray(b, dtype=dtype))

    plan = _core.conv2d_plan(N, C, H, W, K, R, S, groups, sh, sw, dh, dw,
                             top, bottom, left, right, dtype == np.float64)
    Hb, Wb = plan["Hb"], plan["Wb"]
    _check_size((C, Hb, Wb), dtype, "padded input")
    if plan["blocked"]:
        weights = np.empty(plan["packed_shape"], dtype)
        _core.pack_weights(w.astype(dtype, copy=False), groups, weights)
    else:
        weights = np.ascontiguousarray(w, dtype=dtype)
    mode = _PAD_MODES[padding_mode]
    row_map = np.concatenate([index_map(H, top, bottom, mode),
                              np.full(Hb - Hp, -1, np.int64)])  # flat tiles' zero rows
    col_map = index_map(W, left, right, mode)

    def scratch():
        # Each thread pads its own copy of one image at a time.
        return (np.empty((C, Hb, Wb), dtype), np.empty(plan["scratch"], dtype),
                np.empty(plan["edge"], dtype))

    def job(buffers, n0, n1, y0, y1):
        padded, tiles, edge = buffers
        _core.conv2d(x, row_map, col_map, weights, bias_arr, out4, padded, tiles, edge,
                     R, S, groups, sh, sw, dh, dw, top, bottom, left, right, n0, n1, y0, y1)

    # Pieces of about CHUNK_WORK: whole images when they are small, else row ranges.
    per_row = K * Wo * Cg * R * S
    rows = max(plan["min_rows"], int(_parallel.CHUNK_WORK // per_row))
    if rows >= Ho:
        images = rows // Ho
        chunks = [(n, min(n + images, N), 0, Ho) for n in range(0, N, images)]
    else:
        chunks = [(n, n + 1, y, min(y + rows, Ho)) for n in range(N) for y in range(0, Ho, rows)]
    nthreads = _parallel.threads_for(workers, N * Ho * per_row, len(chunks))
    _parallel.run(job, chunks, nthreads, scratch)
    return result


def _compute_dtype(x, w, b) -> np.dtype:
    arrays = [("input", x), ("weight", w)] + ([("bias", b)] if b is not None else [])
    for name, a in arrays:
        if a.dtype.kind == "c":
            raise TypeError(f"{name} is complex ({a.dtype}); conv2d supports real "
                            "float, integer and bool arrays")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} has unsupported dtype {a.dtype}; conv2d supports "
                            "float, integer and bool arrays")
    if all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for _, a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _int_at_least(value, name: str, minimum: int) -> int:
    """`value` as an int >= minimum (bools refused), or a TypeError/ValueError naming `name`."""
    what = "a positive integer" if minimum == 1 else "a non-negative integer"
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {what}, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be {what}, got {v}")
    return v


def _positive_int(value, name: str) -> int:
    return _int_at_least(value, name, 1)


def _int_pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return _positive_int(value[0], name), _positive_int(value[1], name)
    v = _positive_int(value, name)
    return v, v


def _non_negative(value, name: str) -> int:
    return _int_at_least(value, name, 0)


def _resolve_padding(padding, size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for every accepted form of `padding`."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            sides = []
            for n, k, s, d in zip(size, kernel, stride, dilation):
                # Keep ceil(n / s) outputs; the smaller half of the padding goes first.
                total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                sides += [total // 2, total - total // 2]
            return tuple(sides)
        raise ValueError(f"padding must be an int, a pair, a 4-tuple, 'valid' or 'same', "
                         f"got {padding!r}")
    if isinstance(padding, (tuple, list)):
        p = [_non_negative(v, "padding") for v in padding]
        if len(p) == 2:
            return p[0], p[0], p[1], p[1]
        if len(p) == 4:  # (left, right, top, bottom), as torch.nn.functional.pad
            return p[2], p[3], p[0], p[1]
        raise ValueError(f"padding must have 2 (ph, pw) or 4 (left, right, top, bottom) "
                         f"values, got {len(p)}")
    p = _non_negative(padding, "padding")
    return p, p, p, p


def _check_pad_fits(mode: str, pads: tuple[int, int], n: int, axis: str) -> None:
    if max(pads) == 0 or mode == "zeros":
        return
    if n == 0:
        raise ValueError(f"padding_mode={mode!r} cannot pad an input of {axis} 0")
    if mode == "reflect" and max(pads) >= n:
        raise ValueError(f"padding_mode='reflect' needs padding smaller than the input "
                         f"{axis} ({n}), got {pads}")
    if mode == "circular" and max(pads) > n:
        raise ValueError(f"padding_mode='circular' wraps at most once: padding must not exceed "
                         f"the input {axis} ({n}), got {pads}")


def _check_size(shape, dtype: np.dtype, what: str) -> None:
    n = 1
    for s in shape:
        n *= int(s)
    if n * dtype.itemsize >= _MAX_BYTES:
        raise ValueError(f"the {what} of shape {tuple(shape)} would need {n * dtype.itemsize} "
                         "bytes, more than can be allocated")


def _check_out(out, shape, dtype, inputs) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out must have shape {tuple(shape)} and dtype {dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.aligned:
        raise ValueError("out must be aligned for its dtype (it is written through typed pointers)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if any(a is not None and np.may_share_memory(out, a) for a in inputs):
        raise ValueError("out must not overlap input, weight or bias")
    return out
