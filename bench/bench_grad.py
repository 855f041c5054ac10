#!/usr/bin/env python3
"""Benchmark conv2d's gradients and conv_transpose2d against PyTorch, one thread.

Layers: the ResNet layers of ``bench_conv2d.py`` (conv1 7×7/2, the 3×3
stages, the 3×3 stride-2 downsampling, the 1×1), float32, batch 1 and 8;
and its MobileNetV2 depthwise 3×3 layers (unit stride and stride 2), batch 1.
For each layer, three operations, each timed against the exact PyTorch call
that autograd makes for it:

``grad_input``
    ``cyconv.conv2d_backward(..., output_mask=(True, False, False))`` vs
    ``torch.nn.grad.conv2d_input`` (``aten.convolution_backward`` with
    output_mask [True, False, False]).
``grad_weight``
    ``output_mask=(False, True, False)`` vs ``torch.nn.grad.conv2d_weight``.
``conv_transpose2d``
    the layer's transpose (input shaped like the layer's output, producing
    the layer's input shape) vs ``torch.nn.functional.conv_transpose2d``.

Every result is compared once with torch's (max relative error). Timing is
round-robin (``_common.time_interleaved``), CPU-time medians; ratio =
t_torch / t_cyconv (> 1: cyconv faster).

A last case times one training step of ``examples/numpy_cnn`` (batch 32,
float32: forward, backward, SGD update) against its PyTorch twin
(``torch_twin.py``: the same net with ``loss.backward()`` and
``torch.optim.SGD``); ``--train-step`` runs only that case.

``--small`` runs, instead of the ResNet set, the small layers a CNN written
in NumPy has (MNIST- and CIFAR-sized images, 1-128 channels, batches of
32-64, 3×3 with padding 1, one with stride 2), each with its forward pass
too (``conv2d`` vs ``torch.nn.functional.conv2d``).

``--tiny`` runs one-image layers and the DQN Atari net (batches 1 and 32),
with conv_transpose2d and the whole backward pass too.

    python bench/bench_grad.py [--quick] [--train-step] [--small | --tiny] [--json PATH]
                               [--markdown]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

import bench_conv2d as B  # noqa: E402

LAYERS = [c for c in B._SHAPES if c.name in ("ResNet conv1", "3×3", "3×3 down", "1×1")]
CASES = [dataclasses.replace(c, N=n) for n in (1, 8) for c in LAYERS] \
    + [c for c in B._SHAPES if c.name.startswith("MNv2 depthwise")]
OPS = ("grad_input", "grad_weight", "conv_transpose2d")
SMALL_CASES = [B.Case("small", n, c, k, h, h, 3, 3, stride=st, padding=1)
               for n, c, k, h, st in [(64, 1, 16, 28, 1), (64, 16, 32, 14, 1), (64, 3, 16, 32, 1),
                                      (64, 3, 64, 32, 1), (32, 16, 16, 16, 1), (8, 32, 16, 56, 1),
                                      (64, 32, 64, 16, 2), (64, 16, 16, 8, 1), (64, 24, 24, 8, 1),
                                      (64, 64, 64, 8, 1), (64, 64, 64, 4, 1), (64, 32, 32, 3, 1),
                                      (64, 128, 128, 2, 1)]]
SMALL_OPS = ("forward", "grad_input", "grad_weight")
# --tiny: layers called on one image at a time (online learning, a
# reinforcement-learning agent's steps), where each call's fixed cost
# shows, and the DQN Atari net's three layers ("valid" padding) at batches
# of 1 and 32; "backward" is conv2d_backward's three gradients against
# autograd's one convolution_backward call.
TINY_CASES = [B.Case("tiny", 1, c, k, h, h, r, r, stride=st, padding=p)
              for c, k, h, r, st, p in [(1, 1, 8, 3, 1, 1), (1, 8, 28, 3, 1, 1),
                                        (3, 8, 16, 3, 1, 1), (8, 16, 14, 3, 1, 1),
                                        (16, 32, 16, 3, 2, 1)]] \
    + [B.Case("DQN", n, c, k, h, h, r, r, stride=st)
       for n in (1, 32) for c, k, h, r, st in [(4, 32, 84, 8, 4), (32, 64, 20, 4, 2),
                                              (64, 64, 9, 3, 1)]]
TINY_OPS = SMALL_OPS + ("conv_transpose2d", "backward")


def callables(case: B.Case, op: str, cyconv, torch):
    rng = np.random.default_rng(0)
    x, w = B._inputs(case)
    Ho, Wo = case.out_hw
    g = rng.standard_normal((case.N, case.K, Ho, Wo), dtype=np.float32)
    kw = dict(stride=case.stride, padding=case.padding, groups=case.groups)
    nn_grad = torch.nn.grad
    xt, wt, gt = (torch.from_numpy(a) for a in (x, w, g))
    if op == "forward":
        return (lambda: cyconv.conv2d(x, w, **kw),
                lambda: torch.nn.functional.conv2d(xt, wt, **kw).numpy())
    if op == "grad_input":
        return (lambda: cyconv.conv2d_backward(g, x, w, output_mask=(True, False, False), **kw)[0],
                lambda: nn_grad.conv2d_input(x.shape, wt, gt, **kw).numpy())
    if op == "grad_weight":
        return (lambda: cyconv.conv2d_backward(g, x, w, output_mask=(False, True, False), **kw)[1],
                lambda: nn_grad.conv2d_weight(xt, w.shape, gt, **kw).numpy())
    if op == "backward":   # the three gradients (tuples: _flat joins them to compare)
        pair = [case.stride] * 2, [case.padding] * 2
        return (lambda: cyconv.conv2d_backward(g, x, w, **kw),
                lambda: torch.ops.aten.convolution_backward(
                    gt, xt, wt, [case.K], *pair, [1, 1], False, [0, 0], case.groups,
                    [True, True, True]))
    # The transpose of the layer: (N, K, Ho, Wo) -> (N, C, H, W).
    op_h = case.H + 2 * case.padding - ((Ho - 1) * case.stride + case.R)
    op_w = case.W + 2 * case.padding - ((Wo - 1) * case.stride + case.S)
    tkw = dict(stride=case.stride, padding=case.padding, output_padding=(op_h, op_w),
               groups=case.groups)
    F = torch.nn.functional
    return (lambda: cyconv.conv_transpose2d(g, w, **tkw),
            lambda: F.conv_transpose2d(gt, wt, **tkw).numpy())


def _flat(result):
    """A result as one array: a tuple of gradients (arrays or tensors) joined."""
    if not isinstance(result, tuple):
        return result
    return np.concatenate([np.asarray(a).ravel() for a in result])


def train_step(torch, repeat: int = 15) -> dict:
    """One training step of the example, NumPy + cyconv vs the PyTorch twin."""
    sys.path.insert(0, str(C.REPO / "examples" / "numpy_cnn"))
    import cnn
    import torch_twin

    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    labels = rng.integers(0, 10, 32)
    params = cnn.init_params(0, np.float32)
    opt = cnn.SGD(params, 0.01, 0.9)
    torch_step, _ = torch_twin.make_step(cnn.init_params(0, np.float32), 0.01, 0.9)

    def ours():
        loss, grads = cnn.loss_and_grads(params, x, labels)
        opt.step(grads)

    t = C.time_interleaved({"cyconv": ours, "torch": lambda: torch_step(x, labels)},
                           repeat=repeat)
    ratio = t["torch"].median / t["cyconv"].median
    C.progress(f"training step (examples/numpy_cnn, batch 32, float32): cyconv "
               f"{t['cyconv'].median * 1e3:.2f} ms  torch {t['torch'].median * 1e3:.2f} ms  "
               f"{ratio:.2f}x")
    return dict(cyconv=t["cyconv"].as_dict(), torch=t["torch"].as_dict(), ratio=ratio)


def run(quick: bool = False, only_train_step: bool = False, small: bool = False,
        tiny: bool = False) -> dict:
    cyconv = C.import_cyconv()
    torch = C.optional_import("torch")
    if torch is None:
        raise SystemExit("bench_grad.py compares with PyTorch: install torch")
    C.limit_threads()
    step = train_step(torch, repeat=3 if quick else 15)
    if only_train_step:
        return dict(machine=C.machine_info(), rows=[], summary={}, train_step=step)
    cases, ops = ((TINY_CASES, TINY_OPS) if tiny else (SMALL_CASES, SMALL_OPS) if small
                  else (CASES, OPS))
    cases = [c.quick() for c in cases] if quick else cases
    rows = []
    for case in cases:
        for op in ops:
            ours, theirs = callables(case, op, cyconv, torch)
            err = C.max_rel_err(_flat(ours()), _flat(theirs()))
            t = C.time_interleaved({"cyconv": ours, "torch": theirs},
                                   repeat=3 if quick else 7, budget=None if quick else 4.0)
            ratio = t["torch"].median / t["cyconv"].median
            flops = case.flops * (2 if op == "backward" else 1)   # (two products' worth)
            rows.append(dict(case=case.label, N=case.N, op=op, flops=flops,
                             cyconv=t["cyconv"].as_dict(), torch=t["torch"].as_dict(),
                             ratio=ratio, max_rel_err=err))
            C.progress(f"{case.label:42s} {op:17s} cyconv {t['cyconv'].median * 1e3:8.2f} ms  "
                       f"torch {t['torch'].median * 1e3:8.2f} ms  {ratio:5.2f}x  err {err:.1e}")
    summary = {}
    for op in ops:
        for n in sorted({r["N"] for r in rows}) + [None]:
            rs = [r["ratio"] for r in rows if r["op"] == op and (n is None or r["N"] == n)]
            summary[f"{op} N={n or 'all'}"] = dict(
                geomean=math.exp(sum(map(math.log, rs)) / len(rs)), min=min(rs), max=max(rs))
    return dict(machine=C.machine_info(), rows=rows, summary=summary, train_step=step)


def markdown(result: dict) -> str:
    step = result["train_step"]
    out = [f"Training step of examples/numpy_cnn (batch 32, float32): cyconv "
           f"{C.fmt_ms(step['cyconv']['median_s'])} ms, torch {C.fmt_ms(step['torch']['median_s'])}"
           f" ms, speed-up {C.fmt_ratio(step['ratio'])}", ""]
    if not result["rows"]:
        return "\n".join(out)
    out += [C.markdown_table(
        ["layer", "op", "cyconv ms", "torch ms", "cyconv GFLOP/s", "speed-up vs torch", "rel. err"],
        [(r["case"], r["op"], C.fmt_ms(r["cyconv"]["median_s"]), C.fmt_ms(r["torch"]["median_s"]),
          C.fmt_gflops(r["flops"] / r["cyconv"]["median_s"] / 1e9), C.fmt_ratio(r["ratio"]),
          f"{r['max_rel_err']:.1e}") for r in result["rows"]],
        align="llrrrrr"), ""]
    out.append(C.markdown_table(
        ["op, batch", "geomean speed-up", "min", "max"],
        [(k, C.fmt_ratio(v["geomean"]), C.fmt_ratio(v["min"]), C.fmt_ratio(v["max"]))
         for k, v in result["summary"].items()], align="lrrr"))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny shapes: checks the script only")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables to stdout")
    ap.add_argument("--train-step", action="store_true", help="only the training-step case")
    ap.add_argument("--small", action="store_true",
                    help="the small layers of MNIST/CIFAR-sized nets instead of the ResNet set")
    ap.add_argument("--tiny", action="store_true",
                    help="one-image layers and the DQN net instead of the ResNet set")
    args = ap.parse_args(argv)
    result = run(args.quick, args.train_step, args.small, args.tiny)
    if args.json:
        C.write_json(args.json, result)
    if args.markdown:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
