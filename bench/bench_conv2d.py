#!/usr/bin/env python3
"""Benchmark ``cyconv.conv2d`` (NCHW, torch.nn.functional.conv2d semantics), one thread.

Shapes are the usual CNN layers (ResNet-style, batch 1 unless noted), a
depthwise and a per-channel RGB filter, ResNet-50's bottleneck layers ("R50":
1x1 layers of 64-2048 channels, strided 3x3 and 1x1 layers) and MobileNetV2's
depthwise 3x3 layers ("MNv2", 7x7 to 112x112).  Peers:

``torch.nn.functional.conv2d``
    CPU build, ``torch.set_num_threads(1)``; inputs shared with NumPy through
    ``torch.from_numpy`` (no copy), no autograd (no tensor requires grad).
``numpy im2col``
    :func:`conv2d_im2col` below: ``np.pad``, ``sliding_window_view`` for the
    patches, one copy into a (groups, C/g*R*S, N*Ho*Wo) column matrix, one
    (batched) ``matmul`` with the weights -- BLAS pinned to one thread with
    threadpoolctl.

All three outputs are compared once per case (max relative error against
cyconv, tolerance 1e-4 float32 / 1e-10 float64).  Timing is round-robin over
the peers (median of the runs, see ``_common.time_interleaved``).
GFLOP/s = 2*N*K*Ho*Wo*(C/groups)*R*S / t; "speed-up" = t_peer / t_cyconv.

Memory per call:
  * cyconv scratch -- ``tracemalloc`` peak during one call minus the output
    array: cyconv takes all its scratch (padded image copy, packed weights,
    tiles) as NumPy arrays, which NumPy reports to tracemalloc.  The same is
    given for the im2col peer (its column matrix).
  * peak RSS growth -- the case run once in a fresh interpreter, after one
    warm-up call on a tiny version of the layer (so one-off library
    initialisation is mostly excluded): peak resident set size during the
    call minus the RSS just before it (Linux ``VmHWM`` reset through
    ``/proc/self/clear_refs``), output included, for every peer, since
    torch's and BLAS's buffers are invisible to tracemalloc.  Page granular;
    memory the allocator already held (freed by the warm-up) is not counted.

    python bench/bench_conv2d.py [--quick] [--json PATH] [--markdown] [--no-rss]
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    N: int
    C: int
    K: int
    H: int
    W: int
    R: int
    S: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    dtype: str = "float32"

    @property
    def out_hw(self) -> tuple[int, int]:
        ho = (self.H + 2 * self.padding - self.R) // self.stride + 1
        wo = (self.W + 2 * self.padding - self.S) // self.stride + 1
        return ho, wo

    @property
    def flops(self) -> float:
        ho, wo = self.out_hw
        return 2.0 * self.N * self.K * ho * wo * (self.C // self.groups) * self.R * self.S

    @property
    def label(self) -> str:
        g = f" g={self.groups}" if self.groups > 1 else ""
        s = f"/{self.stride}" if self.stride > 1 else ""
        p = f" p{self.padding}" if self.padding else ""
        return (f"{self.name}: N={self.N} {self.C}→{self.K} {self.R}×{self.S}{s}{p}{g} "
                f"@{self.H}²")

    def quick(self) -> "Case":
        """A tiny version of the same layer: every code path, none of the time."""
        g, c, k = self.groups, min(self.C, 16), min(self.K, 16)
        if g == self.C == self.K:                  # depthwise: keep it depthwise
            g = c = k = min(g, 16)
        elif g > 1:
            c, k = self.C, self.K
        h = max(self.R + 1, self.H // 16)
        return dataclasses.replace(self, N=min(self.N, 2), C=c, K=k, H=h, W=h, groups=g)


_SHAPES = [
    Case("ResNet conv1", 1, 3, 64, 224, 224, 7, 7, stride=2, padding=3),
    Case("3×3", 1, 64, 64, 56, 56, 3, 3, padding=1),
    Case("3×3 batch 8", 8, 64, 64, 56, 56, 3, 3, padding=1),
    Case("3×3", 1, 128, 128, 28, 28, 3, 3, padding=1),
    Case("3×3", 1, 256, 256, 14, 14, 3, 3, padding=1),
    Case("3×3", 1, 512, 512, 7, 7, 3, 3, padding=1),
    Case("3×3 batch 8", 8, 512, 512, 7, 7, 3, 3, padding=1),
    Case("3×3 down", 1, 64, 128, 56, 56, 3, 3, stride=2, padding=1),
    Case("1×1", 1, 256, 64, 56, 56, 1, 1),
    Case("depthwise", 1, 32, 32, 112, 112, 3, 3, padding=1, groups=32),
    Case("RGB per-channel", 1, 3, 3, 512, 512, 5, 5, padding=2, groups=3),
    # ResNet-50's bottleneck layers (torchvision's v1.5: the 3x3 convolutions stride)
    Case("R50 1×1", 1, 64, 256, 56, 56, 1, 1),
    Case("R50 1×1 down", 1, 256, 512, 56, 56, 1, 1, stride=2),
    Case("R50 3×3 down", 1, 128, 128, 56, 56, 3, 3, stride=2, padding=1),
    Case("R50 3×3 down", 1, 256, 256, 28, 28, 3, 3, stride=2, padding=1),
    Case("R50 1×1", 1, 256, 1024, 14, 14, 1, 1),
    Case("R50 1×1", 1, 1024, 256, 14, 14, 1, 1),
    Case("R50 3×3 down", 1, 512, 512, 14, 14, 3, 3, stride=2, padding=1),
    Case("R50 1×1 down", 1, 1024, 2048, 14, 14, 1, 1, stride=2),
    Case("R50 1×1", 1, 512, 2048, 7, 7, 1, 1),
    Case("R50 1×1", 1, 2048, 512, 7, 7, 1, 1),
    # MobileNetV2's depthwise 3x3 layers (one channel per group)
    Case("MNv2 depthwise down", 1, 96, 96, 112, 112, 3, 3, stride=2, padding=1, groups=96),
    Case("MNv2 depthwise", 1, 144, 144, 56, 56, 3, 3, padding=1, groups=144),
    Case("MNv2 depthwise down", 1, 144, 144, 56, 56, 3, 3, stride=2, padding=1, groups=144),
    Case("MNv2 depthwise", 1, 192, 192, 28, 28, 3, 3, padding=1, groups=192),
    Case("MNv2 depthwise down", 1, 192, 192, 28, 28, 3, 3, stride=2, padding=1, groups=192),
    Case("MNv2 depthwise", 1, 384, 384, 14, 14, 3, 3, padding=1, groups=384),
    Case("MNv2 depthwise", 1, 576, 576, 14, 14, 3, 3, padding=1, groups=576),
    Case("MNv2 depthwise down", 1, 576, 576, 14, 14, 3, 3, stride=2, padding=1, groups=576),
    Case("MNv2 depthwise", 1, 960, 960, 7, 7, 3, 3, padding=1, groups=960),
]
# float64 for a few of them
CASES = _SHAPES + [dataclasses.replace(_SHAPES[i], dtype="float64") for i in (1, 3, 9)]


# --------------------------------------------------------------------------- numpy peer

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_im2col(x: np.ndarray, w: np.ndarray, stride=1, padding=0, dilation=1,
                  groups: int = 1) -> np.ndarray:
    """NCHW cross-correlation by im2col + matmul (torch.nn.functional.conv2d semantics)."""
    N, Cin, H, W = x.shape
    K, Cg, R, S = w.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    G, Kg = groups, K // groups
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    span_h, span_w = dh * (R - 1) + 1, dw * (S - 1) + 1
    # (N, C, H', W', span_h, span_w) view -> strided, dilated (N, C, Ho, Wo, R, S) view
    win = sliding_window_view(x, (span_h, span_w), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    Ho, Wo = win.shape[2], win.shape[3]
    win = win.reshape(N, G, Cg, Ho, Wo, R, S)                     # splits C: still a view
    cols = win.transpose(1, 2, 5, 6, 0, 3, 4).reshape(G, Cg * R * S, N * Ho * Wo)  # the copy
    out = np.matmul(w.reshape(G, Kg, Cg * R * S), cols)           # (G, Kg, N*Ho*Wo)
    out = out.reshape(G, Kg, N, Ho, Wo).transpose(2, 0, 1, 3, 4).reshape(N, K, Ho, Wo)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------- the suite

def _load():
    cyconv = C.import_cyconv()
    waited = 0
    while not hasattr(cyconv, "conv2d"):      # being written concurrently: poll for it
        if waited >= 40 * 60:
            raise RuntimeError("cyconv.conv2d did not appear within 40 minutes")
        C.progress("cyconv.conv2d not there yet; waiting 60 s")
        import time
        time.sleep(60)
        waited += 60
        for name in [m for m in sys.modules if m == "cyconv" or m.startswith("cyconv.")]:
            del sys.modules[name]
        cyconv = C.import_cyconv()
    torch = C.optional_import("torch")
    C.limit_threads()
    return cyconv, torch


def _inputs(case: Case, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.empty((case.N, case.C, case.H, case.W), case.dtype)
    w = np.empty((case.K, case.C // case.groups, case.R, case.S), case.dtype)
    rng.standard_normal(dtype=case.dtype, out=x)
    rng.standard_normal(dtype=case.dtype, out=w)
    return x, w


def make_callables(case: Case, x, w, cyconv, torch) -> dict:
    kw = dict(stride=case.stride, padding=case.padding, groups=case.groups)
    fns = {"cyconv": lambda: cyconv.conv2d(x, w, **kw)}
    if torch is not None:
        F = torch.nn.functional
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        fns["torch"] = lambda: F.conv2d(xt, wt, None, **kw)
    fns["numpy im2col"] = lambda: conv2d_im2col(x, w, **kw)
    return fns


_RSS_SETUP = """
import numpy as np
import bench_conv2d as B
from _common import limit_threads
{imports}
limit_threads()
# warm the library up on a tiny version of the layer (one-off init, not per call)
for case in (B.Case(**{case!r}).quick(), B.Case(**{case!r})):
    kw = dict(stride=case.stride, padding=case.padding, groups=case.groups)
    x, w = B._inputs(case)
    {prepare}
    if case.H < {H}:
        _ = {call}
        del _
"""
_RSS_PEERS = {   # name -> (imports, prepare, call)
    "cyconv": ("import cyconv", "", "cyconv.conv2d(x, w, **kw)"),
    "torch": ("import torch", "xt, wt = torch.from_numpy(x), torch.from_numpy(w)",
              "torch.nn.functional.conv2d(xt, wt, None, **kw)"),
    "numpy im2col": ("", "", "B.conv2d_im2col(x, w, **kw)"),
}


def measure_rss(case: Case, peers) -> dict:
    res = {}
    for name in peers:
        imports, prepare, call = _RSS_PEERS[name]
        setup = _RSS_SETUP.format(case=dataclasses.asdict(case), imports=imports,
                                  prepare=prepare or "pass", call=call, H=case.H)
        res[name] = C.subprocess_peak_rss(setup, call)
    return res


def run(quick: bool = False, rss: bool = True, log=C.progress) -> dict:
    cyconv, torch = _load()
    load_before = C.loadavg()
    results = []
    for case in CASES:
        if quick:
            case = case.quick()
        x, w = _inputs(case)
        fns = make_callables(case, x, w, cyconv, torch)
        ref = fns["cyconv"]()
        ho, wo = case.out_hw
        if ref.shape != (case.N, case.K, ho, wo):
            raise AssertionError(f"{case.label}: cyconv gave shape {ref.shape}")
        checks = {}
        for name, fn in fns.items():
            if name == "cyconv":
                continue
            out = fn()
            out = out.numpy() if hasattr(out, "numpy") else out
            err = C.max_rel_err(out, ref)
            checks[name] = {"max_rel_err": err, "ok": bool(err <= C.tolerance(case.dtype))}
        if quick:
            timings = C.time_interleaved(fns, repeat=1, warmup=1, min_sample=0.0)
        else:
            timings = C.time_interleaved(fns, repeat=31, budget=2.5, warmup=2)
        out_bytes = ref.nbytes
        mem = {"output_bytes": out_bytes,
               "cyconv_tracemalloc_peak": C.tracemalloc_peak(fns["cyconv"]),
               "im2col_tracemalloc_peak": C.tracemalloc_peak(fns["numpy im2col"])}
        mem["cyconv_scratch"] = max(0, mem["cyconv_tracemalloc_peak"] - out_bytes)
        mem["im2col_scratch"] = max(0, mem["im2col_tracemalloc_peak"] - out_bytes)
        if rss and not quick:
            mem["rss_growth"] = measure_rss(case, list(fns))
        t_cy = timings["cyconv"].median
        peers = {}
        for name, t in timings.items():
            peers[name] = {**t.as_dict(), "gflops": case.flops / t.median / 1e9}
            if name != "cyconv":
                peers[name]["speedup_of_cyconv"] = t.median / t_cy
                peers[name]["check"] = checks[name]
        results.append({"case": dataclasses.asdict(case), "label": case.label,
                        "out_shape": list(ref.shape), "flops": case.flops,
                        "peers": peers, "memory": mem})
        bad = [n for n, c in checks.items() if not c["ok"]]
        log(f"conv2d {case.dtype} {case.label}: "
            + ", ".join(f"{n} {C.fmt_ms(t.median)} ms" for n, t in timings.items())
            + f"; cyconv scratch {C.fmt_bytes(mem['cyconv_scratch'])}"
            + (f"  MISMATCH: {', '.join(bad)}" if bad else ""))
    names = ["cyconv", "torch", "numpy im2col"]
    return {"suite": "conv2d", "quick": quick, "machine": C.machine_info(),
            "clock": C.CLOCK, "loadavg": [load_before, C.loadavg()],
            "wall_over_cpu": C.wall_over_cpu(results),
            "peers": [n for n in names if any(n in r["peers"] for r in results)],
            "cases": results}


def markdown(result: dict) -> str:
    peers = result["peers"]
    others = [p for p in peers if p != "cyconv"]
    cases = result["cases"]
    out = ["### conv2d (NCHW, torch semantics), single thread",
           "", C.noise_note(result), "",
           "Median time per call (ms), GFLOP/s (2·N·K·Ho·Wo·C/groups·R·S / t) and "
           "cyconv's speed-up over each peer (t_peer / t_cyconv; > 1 means cyconv is faster).",
           ""]
    rows = []
    for r in cases:
        p = r["peers"]
        rows.append([r["label"], r["case"]["dtype"], f"{r['flops'] / 1e6:.0f}"]
                    + [C.fmt_ms(p[n]["median_s"]) if n in p else "-" for n in peers]
                    + [C.fmt_gflops(p[n]["gflops"]) if n in p else "-" for n in peers]
                    + [C.fmt_ratio(p[n].get("speedup_of_cyconv")) if n in p else "-"
                       for n in others])
    out.append(C.markdown_table(
        ["layer", "dtype", "MFLOP"] + [f"{n} ms" for n in peers]
        + [f"{n} GFLOP/s" for n in peers] + [f"vs {n}" for n in others],
        rows, align="llr" + "r" * (2 * len(peers) + len(others))))

    out += ["", "Memory per call. *scratch*: tracemalloc peak during one call minus the "
                "output array (NumPy allocations only). *RSS growth*: peak RSS during one "
                "call minus RSS before it, in a fresh process, output included, after a "
                "warm-up call on a tiny version of the layer (page granular).", ""]
    has_rss = any("rss_growth" in r["memory"] for r in cases)
    rows = []
    for r in cases:
        m = r["memory"]
        row = [r["label"], r["case"]["dtype"], C.fmt_bytes(m["output_bytes"]),
               C.fmt_bytes(m["cyconv_scratch"]), C.fmt_bytes(m["im2col_scratch"])]
        if has_rss:
            g = m.get("rss_growth", {})
            row += [C.fmt_bytes(g.get(n)) for n in peers]
        rows.append(row)
    headers = ["layer", "dtype", "output", "cyconv scratch", "im2col scratch"]
    if has_rss:
        headers += [f"RSS growth {n}" for n in peers]
    out.append(C.markdown_table(headers, rows, align="ll" + "r" * (len(headers) - 2)))

    out += ["", "Agreement with cyconv's output (max |peer − cyconv| / max |cyconv|, "
                "tolerance 1e-4 float32 / 1e-10 float64):", ""]
    rows = []
    for n in others:
        for dtype in ("float32", "float64"):
            cs = [r for r in cases if r["case"]["dtype"] == dtype and n in r["peers"]]
            if not cs:
                continue
            errs = [r["peers"][n]["check"]["max_rel_err"] for r in cs]
            bad = [r["label"] for r in cs if not r["peers"][n]["check"]["ok"]]
            rows.append([n, dtype, f"{len(cs) - len(bad)}/{len(cs)}", f"{max(errs):.1e}",
                         "; ".join(bad) or "none"])
    out.append(C.markdown_table(["peer", "dtype", "cases matching", "worst rel. error",
                                 "mismatches"], rows, align="llrrl"))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = C.argument_parser(__doc__, "tiny shapes, one run: checks every case runs")
    ap.add_argument("--no-rss", action="store_true",
                    help="skip the per-peer peak-RSS measurement in subprocesses")
    args = C.parse_arguments(ap, argv)
    result = run(quick=args.quick, rss=not args.no_rss)
    C.report(args, result, markdown)
    bad = [(r["label"], r["case"]["dtype"], n) for r in result["cases"]
           for n, p in r["peers"].items() if "check" in p and not p["check"]["ok"]]
    if bad:
        C.progress(f"{len(bad)} peer mismatch(es): {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
