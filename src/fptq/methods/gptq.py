"""GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", ICLR 2023), pure math plus the engine adapter.

For one linear layer with weight `W` `(N, K)` and calibration inputs `X`, GPTQ quantizes the
columns of `W` one at a time and spreads each column's rounding error over the columns not yet
quantized, so as to minimise the layer-wise error `‖WX − ŴX‖²` (§3, Eq. 1). With the Hessian
`H = 2XXᵀ` (Eq. 2) and `Hinv` the upper Cholesky factor of `H⁻¹` (§4, "Cholesky
reformulation"), quantizing column q gives

    err = (w_q − quant(w_q)) / Hinv[q, q]
    W[:, q+1:] −= err · Hinv[q, q+1:]                                 (Eq. 3, Alg. 1)

Updates inside a block of `block_size` columns are applied at once ("lazy batch updates",
§4): `W[:, i2:] −= Err · Hinv[i1:i2, i2:]`. `H` is dampened by `damp · mean(diag H)` (§4,
"Cholesky reformulation": 1% in the paper). Columns whose input never fired (`H_jj = 0`) are
zeroed.

Group-wise quantization: a group's scale (and zero) is chosen when its first column is reached,
from the already-updated weights, as the reference implementation does. With `act_order`
(columns in order of decreasing `diag(H)`, the reference's `--act-order`) the group scales are
fixed up front from the original weight ("static groups"), so a column that is quantized out
of order still uses the scale of the group it is stored in, and the saved layout is the
ordinary group-wise one.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from fptq.calib.engine import BlockContext
from fptq.calib.observers import Hessian
from fptq.config import QuantConfig
from fptq.errors import CalibrationError
from fptq.methods import policy
from fptq.methods.fptq import FPTQMethod
from fptq.primitives import QuantizedWeight, quantize_weight, two_level_channel_scales

__all__ = ["gptq_quantize", "GPTQMethod", "split_rows"]


def _cholesky_inverse_upper(h: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor of `(H + λI)⁻¹`, `λ = damp · mean(diag H)` (retrying with more damping)."""
    k = h.shape[0]
    idx = torch.arange(k, device=h.device)
    lam = damp * torch.mean(torch.diag(h))
    for _ in range(4):
        hd = h.clone()
        hd[idx, idx] += lam
        chol, info = torch.linalg.cholesky_ex(hd)
        if int(info) == 0:
            hinv = torch.cholesky_inverse(chol)
            chol_inv, info = torch.linalg.cholesky_ex(hinv, upper=True)
            if int(info) == 0:
                return chol_inv
        lam = lam * 10
    raise CalibrationError("GPTQ: the Hessian is not positive definite even with 1000x dampening")


@contextmanager
def _one_cpu_thread(device: torch.device):
    """The column loop is thousands of tiny ops: on CPU, one intra-op thread avoids a thread
    barrier per op, which costs more than the op itself (measured 27x on a busy 2-core box)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def gptq_quantize(
    w: torch.Tensor,
    h: torch.Tensor,
    *,
    bits: int = 4,
    group_size: int = 128,
    symmetric: bool = True,
    damp: float = 0.01,
    block_size: int = 128,
    act_order: bool = False,
    scale_format: str = "fp16",
) -> QuantizedWeight:
    """GPTQ codes for an `(N, K)` weight `w` given the `(K, K)` Hessian `h` of its inputs.

    Returns a `QuantizedWeight` in the same layout as `primitives.quantize_weight` (columns in
    their original order, `(N, K // group_size)` fp16 scales), computed in float32. Two-level scales: the
    channel scales come from the whole of `w`, each group's integer multiple when the group is reached.
    """
    n, k = w.shape
    gs = k if group_size == -1 else group_size
    if k % gs:
        raise ValueError(f"group size {gs} does not divide the input size {k}")
    W = w.detach().float().clone()  # (N, K)
    H = h.detach().float().to(W.device).clone()  # (K, K)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0

    scales = torch.empty(n, k // gs, dtype=torch.float16, device=W.device)
    zeros = torch.empty(n, k // gs, dtype=torch.float32, device=W.device)
    static_groups = act_order or gs == k  # per channel: one scale per row, from the whole row
    channel = two_level_channel_scales(W, gs, bits) if scale_format == "two-level" else None
    if static_groups:
        qw = quantize_weight(W, bits, gs, symmetric, scale_format, channel)
        scales.copy_(qw.scales)
        zeros.copy_(qw.zero_point.float() if isinstance(qw.zero_point, torch.Tensor) else torch.full_like(zeros, qw.zero_point))

    perm = torch.argsort(torch.diag(H), descending=True) if act_order else torch.arange(k, device=W.device)
    H = H[perm][:, perm]
    group_of = perm // gs  # (K,) stored group of each (permuted) column
    Hinv = _cholesky_inverse_upper(H, damp)  # (K, K) upper triangular

    # The loop works on Wᵀ (K, N), so that each column of W is one contiguous row: the per-column
    # vector ops and rank-1 updates run 1.4-2.4x faster than on strided columns (float32 rounding
    # differs from the strided version; see benchmarks/results/baselines.md).
    WT = W[:, perm].t().contiguous()  # (K, N), permuted column order
    codes_t = torch.empty(k, n, dtype=torch.uint8, device=W.device)
    with _one_cpu_thread(W.device):
        _column_loop(WT, Hinv, codes_t, scales, zeros, group_of, bits=bits, gs=gs, symmetric=symmetric,
                     static_groups=static_groups, block_size=block_size, scale_format=scale_format, channel=channel)

    out = torch.empty(n, k, dtype=torch.uint8, device=W.device)
    out[:, perm] = codes_t.t()
    return QuantizedWeight(
        codes=out.cpu(),
        scales=scales.cpu(),
        zeros=None if symmetric else zeros.to(torch.uint8).cpu(),
        bits=bits,
        group_size=gs,
        channel_scales=None if channel is None else channel.cpu(),
    )


def _column_loop(WT, Hinv, codes_t, scales, zeros, group_of, *, bits, gs, symmetric, static_groups, block_size,
                 scale_format="fp16", channel=None) -> None:
    """Alg. 1 over the (permuted) columns of W, given as the rows of `WT` (K, N), in place: fills
    `codes_t` (K, N) (and the dynamic group `scales`/`zeros`, (N, K/gs))."""
    k, n = WT.shape
    qmax = 2**bits - 1
    if static_groups:  # every column's scale and zero are known up front: gather them once
        col_scales = scales.float().t()[group_of].contiguous()  # (K, N) in permuted column order
        col_zeros = zeros.t()[group_of].contiguous()
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        W1 = WT[i1:i2].clone()  # (B, N)
        Q1 = torch.empty_like(W1)  # codes of the block, as floats
        Err1 = torch.empty_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d = torch.diagonal(Hinv1).tolist()
        if static_groups:
            S1, Z1 = col_scales[i1:i2], col_zeros[i1:i2]
        else:
            S1, Z1 = torch.empty_like(W1), torch.empty_like(W1)
        for i in range(i2 - i1):
            col = i1 + i
            if not static_groups:
                g = col // gs  # without act-order the column order is the stored order
                if col % gs == 0:
                    # the group's columns as updated so far: this block's part from W1, the rest from WT
                    take = min(gs, i2 - col)
                    cols = torch.cat([W1[i : i + take], WT[i2 : i2 + gs - take]], dim=0).t()
                    qw = quantize_weight(cols, bits, gs, symmetric, scale_format, channel)
                    scales[:, g] = qw.scales[:, 0]
                    zeros[:, g] = qw.zero_point[:, 0].float() if isinstance(qw.zero_point, torch.Tensor) else qw.zero_point
                S1[i] = scales[:, g].float()
                Z1[i] = zeros[:, g]
            s, z, wcol = S1[i], Z1[i], W1[i]
            q = torch.round(wcol / s).add_(z).clamp_(0, qmax)
            Q1[i] = q
            err = Err1[i]
            torch.sub(wcol, (q - z).mul_(s), out=err)
            err.div_(d[i])
            W1[i:].addr_(Hinv1[i, i:], err, alpha=-1)  # Eq. 3 inside the block
        codes_t[i1:i2] = Q1.to(torch.uint8)
        WT[i2:].addmm_(Hinv[i1:i2, i2:].t(), Err1, alpha=-1)  # lazy batch update of the later blocks


def split_rows(qw: QuantizedWeight, sizes: list[int]) -> list[QuantizedWeight]:
    """Split a QuantizedWeight of stacked weights back into one per linear (by output rows)."""
    parts = []
    start = 0
    for size in sizes:
        rows = slice(start, start + size)
        zeros = None if qw.zeros is None else qw.zeros[rows]
        channel = None if qw.channel_scales is None else qw.channel_scales[rows]
        parts.append(QuantizedWeight(qw.codes[rows], qw.scales[rows], zeros, qw.bits, qw.group_size, channel))
        start += size
    return parts


class GPTQMethod(FPTQMethod):
    """GPTQ rounding inside the engine; activations and equalization follow the config.

    `gptq`: no equalization, all layers static or dynamic int8 (or weight-only).
    `fptq+gptq`: FPTQ's layer-wise policy and LAE, then GPTQ rounding (the paper's ablation).

    The linears of a group read one input, so they share one Hessian and are solved together
    (their rows stacked: GPTQ treats rows independently, so this equals one solve per linear).
    The engine's calibration pass gives each group's Hessian; a group whose input was rescaled
    by an equalization fold, and with `true_sequential` every group after the first, is
    re-observed on the block as it is then (earlier groups already quantized), as the reference
    implementation's `--true-sequential` does.
    """

    def __init__(self, config: QuantConfig) -> None:
        super().__init__(config)

    def observers(self, ctx: BlockContext) -> dict[str, list]:
        # with true_sequential only the first group's Hessian comes from the calibration pass;
        # the others are observed after the groups before them are quantized
        groups = ctx.arch.groups[:1] if self.config.true_sequential else ctx.arch.groups
        return {group.linears[0]: [Hessian()] for group in groups}

    def _observe(self, ctx: BlockContext, groups: list) -> dict[str, Hessian]:
        hessians = {group.name: Hessian() for group in groups}
        ctx.observe({group.linears[0]: (lambda args, kw, obs=hessians[group.name]: obs.update(args[0]))
                     for group in groups})
        return hessians

    def _solve(self, ctx: BlockContext, group, h: torch.Tensor) -> dict[str, QuantizedWeight]:
        cfg = self.config
        weights = [ctx.block.get_submodule(p).weight.detach() for p in group.linears]
        stacked = torch.cat(weights, dim=0).to(ctx.device)  # (sum N, K)
        qw = gptq_quantize(
            stacked, h.to(ctx.device), bits=cfg.w_bits, group_size=cfg.group_size, symmetric=cfg.symmetric,
            damp=cfg.gptq_damp, block_size=cfg.gptq_block, act_order=cfg.act_order, scale_format=cfg.scale_format,
        )
        return dict(zip(group.linears, split_rows(qw, [w.shape[0] for w in weights])))

    def process_block(self, ctx: BlockContext) -> list[dict]:
        plans = self.group_plans(ctx)  # folds applied; nothing quantized yet
        stale = [p["group"] for p in plans if p["strategy"] == policy.EQUALIZED]
        hessians = {g.name: ctx.observers[g.linears[0]][0] for g in ctx.arch.groups if g.linears[0] in ctx.observers}
        if stale and not self.config.true_sequential:
            hessians.update(self._observe(ctx, stale))
        rows = []
        for i, plan in enumerate(plans):
            group = plan["group"]
            if self.config.true_sequential and (i > 0 or group in stale):
                hessians.update(self._observe(ctx, [group]))
            quantized = self._solve(ctx, group, hessians[group.name].matrix)
            rows.extend(self.quantize_weights(ctx, [plan], quantized=quantized))
        return rows
