"""The cost model method="auto" decides with: seconds on one core per method.

Every method's time is modelled as a sum of constant * feature, where the
features are counts worked out from the shapes alone (output pixels,
multiply-adds, FFT tile points, ...), never from the data. The constants
below are all of the model: `python bench/bench_methods.py --fit` times the
forced methods over a grid of images and kernels and prints a fresh copy of
them (a least-squares fit of relative error, per method and itemsize) to
paste here after a kernel changes. The FFT's tile shape is chosen with the
same model (`tile_shape`).
"""

from __future__ import annotations

import functools
import math

# Fitted on the development machine (AMD EPYC Zen 4, AVX-512, 1 MB L2, 2
# cores shared by other jobs; one thread; images 64-1024, kernels 3-101;
# refitted 2026-12-07 after the kernels of issue 11 cut direct calls' fixed
# cost from 40 to 4 us and separable ones' from 250 to 16 us; see
# bench/RESULTS.md), keyed by the itemsize of the real type (4: float32,
# 8: float64). "call": fixed cost of a call; "pixel": per output pixel;
# "mac": per multiply-add.
DIRECT = {
    4: {"call": 4.7e-6, "pixel": 0.0, "mac": 2.35e-11},
    8: {"call": 4.5e-6, "pixel": 0.0, "mac": 4.52e-11},
}
SEPARABLE = {
    4: {"call": 16.2e-6, "pixel": 2.37e-10, "mac": 3.18e-11},
    8: {"call": 15.9e-6, "pixel": 3.74e-10, "mac": 6.48e-11},
}
# FFT, by (backend, itemsize of the real type the transforms run in; complex
# data counts twice). "point_log": per tile point * log2(tile points) of a
# forward + inverse transform; "point": per tile point (gather, spectrum
# product, output); "band": per band of tiles (NumPy call overheads). The
# fit cannot tell "point" from "point_log" apart well over the measured tile
# sizes (one of them may come out near 0): both are the fit's. NumPy's FFT
# transforms float32 in float64, so it has no itemsize-4 row.
FFT = {
    ("scipy", 4): {"call": 57e-6, "band": 106e-6, "point": 1.72e-9, "point_log": 0.362e-9},
    ("scipy", 8): {"call": 45e-6, "band": 121e-6, "point": 0.0, "point_log": 0.757e-9},
    ("numpy", 8): {"call": 28e-6, "band": 152e-6, "point": 1.25e-9, "point_log": 0.665e-9},
}
FFT_MIN_CALL = min(c["call"] for c in FFT.values())

# A tile of more bytes than this (its transforms and spectrum product touch
# about three times as many) runs from memory rather than from the caches:
# its points cost this factor more. Measured with forced square tiles on a
# 1024^2 image (Zen 4, 1 MB L2, one thread), time per modelled point
# against 256^2 tiles': tiles of 0.5-2.9 MB 0.95-1.2x, 4.5-5.7 MB
# 1.3-1.9x, 10 MB (float64 1152^2, the whole image in one tile) 1.3-2.6x.
FFT_CACHE_BYTES = 4 << 20
FFT_SPILL_FACTOR = 1.6


def cost(constants: dict, features: dict) -> float:
    return sum(constants[name] * value for name, value in features.items())


def direct_features(out_shape, kernel_shape) -> dict:
    (Ho, Wo), (M, N) = out_shape, kernel_shape
    return {"call": 1.0, "pixel": Ho * Wo, "mac": Ho * Wo * M * N}


def separable_features(out_shape, kernel_shape, strip_rows: int) -> dict:
    """The 1-D pass along rows (N taps) over each strip of `strip_rows` output
    rows plus its M - 1 rows of overlap, the pass down columns (M taps) once."""
    (Ho, Wo), (M, N) = out_shape, kernel_shape
    strips = -(-Ho // strip_rows)
    return {"call": 1.0, "pixel": Ho * Wo,
            "mac": (Ho + strips * (M - 1)) * Wo * N + Ho * Wo * M}


def fft_features(out_shape, kernel_shape, tile, itemsize: int) -> dict:
    (Ho, Wo), (M, N), (th, tw) = out_shape, kernel_shape, tile
    bands = -(-Ho // (th - M + 1))
    points = bands * -(-Wo // (tw - N + 1)) * th * tw
    spill = FFT_SPILL_FACTOR if th * tw * itemsize > FFT_CACHE_BYTES else 1.0
    return {"call": 1.0, "band": bands, "point": points * spill,
            "point_log": points * spill * math.log2(max(th * tw, 2))}


def fast_lengths(limit: int, factors=(2, 3, 5)) -> list[int]:
    """All 2**a 3**b (5**c if 5 is in `factors`) up to `limit`, sorted."""
    out = []
    p5 = 1
    while p5 <= limit and (p5 == 1 or 5 in factors):
        p35 = p5
        while p35 <= limit:
            p = p35
            while p <= limit:
                out.append(p)
                p *= 2
            p35 *= 3
        p5 *= 5
    return sorted(out)


def _axis_tiles(out_len: int, k: int, lengths: list[int]) -> list[int]:
    """Candidate tile lengths along an axis: from k up to the first that holds
    the whole axis in a single tile."""
    whole = out_len + k - 1
    cands = []
    for t in lengths:
        if t >= k:
            cands.append(t)
            if t >= whole:
                break
    return cands


@functools.lru_cache(maxsize=256)
def tile_shape(out_shape: tuple, kernel_shape: tuple, key: tuple, complex_: bool):
    """(Th, Tw, seconds): the FFT tile shape of least modelled cost for FFT[key]."""
    constants = FFT[key]
    itemsize = key[1] * (2 if complex_ else 1)
    scale = 2.0 if complex_ else 1.0   # complex transforms: about twice the real ones
    (Ho, Wo), (M, N) = out_shape, kernel_shape
    # Tile lengths 2**a 3**b: measured faster per point than those with 5s.
    lengths = fast_lengths(2 * max(Ho + M, Wo + N, 8), (2, 3))
    best = None
    for th in _axis_tiles(Ho, M, lengths):
        for tw in _axis_tiles(Wo, N, lengths):
            seconds = scale * cost(constants, fft_features(out_shape, kernel_shape, (th, tw),
                                                           itemsize))
            if best is None or seconds < best[2]:
                best = (th, tw, seconds)
    return best
