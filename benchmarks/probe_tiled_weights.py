"""Session 29 probe: does a weight layout with one contiguous block per ring slot lift the M <= 16 decode loop?

    PYTHONPATH=src python3 benchmarks/probe_tiled_weights.py [--ms 1,4] [--two-level] [--json OUT]

The TMA decode kernel reads each ring slot as BLOCK_N weight rows of one box (64 or, paired, 128 bytes) each, the rows
K / 2 bytes apart. Here the weights are also copied box-major (box `b` of row `n` at row `b * n_pad + n`, so that a
slot is one contiguous BLOCK_N x box block) and the kernel reads that copy (`gluon_decode` TILED). At prefill sizes
(M >= 256) the swap kernel reads a copy in 128-byte boxes, rows padded to 256, its [rows, 64 B] tile of a K step a
plain 2-D box of it (`gluon_swap` TILED): the layout a decode-friendly format would give the prefill. Every LLaMA
shape and the fused ones, dynamic int8 activations, groups of 128: the outputs of the two layouts compared bit for
bit, each layout timed twice (alternated) in CUDA graphs over copies of the layer, cuBLAS fp16 in the same run.
Nothing in the library uses the box-major layout: this only measures whether it would pay."""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_gemm import FUSED_SHAPES, SHAPES, bench_fp16, make_layer, ours_calls, time_graph  # noqa: E402

from fptq.kernels import gluon_decode, gluon_swap  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402

PROBE = {"on": False, "copies": {}}


def box_major(qweight: torch.Tensor, box: int, block_n: int) -> torch.Tensor:
    """(n_boxes * n_pad, box) uint8: box `b` of row `n` of `qweight` (N, K / 2) at row `b * n_pad + n`, zero padded."""
    n, kb = qweight.shape
    n_pad, boxes = -(-n // block_n) * block_n, -(-kb // box)
    padded = torch.zeros(n_pad, boxes * box, dtype=qweight.dtype, device=qweight.device)
    padded[:n, :kb] = qweight
    return padded.view(n_pad, boxes, box).transpose(0, 1).contiguous().view(boxes * n_pad, box)


def install() -> None:
    """The probe's hooks: with PROBE["on"], every TMA decode launch reads a box-major copy of its weights (made on
    the first, uncaptured call and kept) with TILED set."""
    real_descriptors, real_init = gluon_decode.tma_descriptors, tw._DecodeTmaLaunch.__init__
    real_swap_init = gluon_swap.SwapLaunch.__init__

    def copy_of(qweight, box, block_n):
        key = (qweight.data_ptr(), box, block_n)
        if key not in PROBE["copies"]:
            PROBE["copies"][key] = box_major(qweight, box, block_n)
        return PROBE["copies"][key]

    def descriptors(a, qweight, block_n, sub, pair=False):
        w_desc, a_desc = real_descriptors(a, qweight, block_n, sub, pair)
        if not PROBE["on"]:
            return w_desc, a_desc
        box = (1 + pair) * (sub // 2)
        copy = copy_of(qweight, box, block_n)
        return gluon_decode.TensorDescriptor.from_tensor(copy, [block_n, box], gluon_decode._tile_layout()), a_desc

    def init(self, *args, **kw):
        real_init(self, *args, **kw)
        if PROBE["on"]:
            self.constexprs["TILED"] = True

    def swap_init(self, a, qweight, *args, **kw):
        real_swap_init(self, a, qweight, *args, **kw)
        if PROBE["on"]:
            rows = self.w_desc.block_shape[0]
            self.w_desc = gluon_swap.TensorDescriptor.from_tensor(copy_of(qweight, 128, 256), [rows, 64],
                                                                 gluon_swap._packed_layout())
            self.constexprs["TILED"] = True

    gluon_decode.tma_descriptors, tw._DecodeTmaLaunch.__init__ = descriptors, init
    gluon_swap.SwapLaunch.__init__ = swap_init


def same_output(m: int, n: int, k: int, two_level: bool) -> bool:
    qweight, scales, _, _, *chan = make_layer(n, k, 128, True, two_level=two_level)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16)
    outs = []
    for on in (False, True):
        PROBE["on"] = on
        outs.append(tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode="dynamic",
                                   channel_scales=chan[0] if chan else None))
    PROBE["on"] = False
    PROBE["copies"].clear()
    return torch.equal(outs[0], outs[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ms", default="1,4")
    ap.add_argument("--two-level", action="store_true", help="two-level group scales (the W4A8 default)")
    ap.add_argument("--shapes", default="all", help="indices into SHAPES + FUSED_SHAPES, e.g. 0,3,6,7")
    ap.add_argument("--rounds", type=int, default=2, help="timings of each layout, alternated")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    install()
    results = []
    for m in (int(v) for v in args.ms.split(",")):
        shapes = SHAPES + FUSED_SHAPES
        for name, n, k in shapes if args.shapes == "all" else [shapes[int(i)] for i in args.shapes.split(",")]:
            exact = same_output(m, n, k, args.two_level)
            fp16 = bench_fp16(m, n, k)
            times = {}
            for _ in range(args.rounds):  # (alternated: the card's clocks and power cap drift between timings)
                for layout, on in (("row-major", False), ("box-major", True)):
                    PROBE["on"] = on
                    times.setdefault(layout, []).append(time_graph(
                        lambda copies, m=m, n=n, k=k: ours_calls(m, n, k, copies, "dynamic", two_level=args.two_level),
                        n * k // 2))
                    PROBE["on"] = False
                    PROBE["copies"].clear()
            best = {layout: min(t) for layout, t in times.items()}
            results.append(dict(m=m, shape=name, n=n, k=k, exact=exact, fp16_us=fp16, **times))
            print(f"tiled M={m} {name} ({n}x{k}): {'equal' if exact else 'DIFFERENT'}; fp16 {fp16:.1f}us | "
                  + "; ".join(f"{layout} {' '.join(f'{t:.1f}' for t in ts)}us" for layout, ts in times.items())
                  + f" | best row-major x{fp16 / best['row-major']:.2f}, box-major x{fp16 / best['box-major']:.2f} fp16",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
