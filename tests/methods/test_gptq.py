"""GPTQ: lower layer output error than RTN at the same bits (the claim it exists for)."""

import pytest
import torch

import fptq
from fptq.calib.observers import Hessian
from fptq.methods.gptq import gptq_quantize, split_rows
from fptq.nn.quant_linear import QuantLinear
from fptq.primitives import dequantize_weight, quantize_weight

from ..conftest import inject_outliers, make_tiny


def _layer(seed=0, n=48, k=128, tokens=512):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, k, generator=g)
    x[:, [3, 70]] *= 20.0  # outlier input channels
    x = x + 0.5 * torch.randn(tokens, 1, generator=g) * x[:, :1]  # correlated channels
    w = torch.randn(n, k, generator=g) / k**0.5
    h = Hessian()
    for part in x.split(100):
        h.update(part)
    return w, x, h.matrix


def _err(x, w, qw):
    return ((x @ w.t() - x @ dequantize_weight(qw).t()).norm() / (x @ w.t()).norm()).item()


@pytest.mark.parametrize("bits,group_size,act_order,symmetric", [
    (4, 32, False, True), (4, 32, True, True), (4, -1, False, True), (4, 32, False, False), (8, -1, True, True),
])
def test_gptq_layer_error_below_rtn(bits, group_size, act_order, symmetric):
    w, x, h = _layer()
    gptq = gptq_quantize(w, h, bits=bits, group_size=group_size, symmetric=symmetric, act_order=act_order, block_size=32)
    rtn = quantize_weight(w, bits, group_size, symmetric)
    assert _err(x, w, gptq) < _err(x, w, rtn)
    # same storage layout as RTN: codes in range, fp16 scales, one per (row, group)
    assert gptq.codes.shape == w.shape and gptq.codes.dtype == torch.uint8 and int(gptq.codes.max()) < 2**bits
    assert gptq.scales.shape == rtn.scales.shape and gptq.scales.dtype == torch.float16


def _textbook_gptq(w, h, bits, group_size, damp=0.01):
    """GPTQ as the paper's Alg. 1 states it, in float64, one column at a time, no lazy batching,
    no act-order: the group scale is taken from the updated columns when the group starts."""
    w, h = w.double().clone(), h.double().clone()
    k = w.shape[1]
    h += damp * h.diag().mean() * torch.eye(k, dtype=torch.float64)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    codes = torch.empty_like(w)
    for j in range(k):
        if j % group_size == 0:
            qw = quantize_weight(w[:, j : j + group_size].float(), bits, group_size, True)
            s = qw.scales[:, 0].double()
        q = torch.clamp(torch.round(w[:, j] / s) + 2 ** (bits - 1), 0, 2**bits - 1)
        codes[:, j] = q
        err = (w[:, j] - (q - 2 ** (bits - 1)) * s) / hinv[j, j]
        w[:, j:] -= err[:, None] * hinv[j, j:][None, :]
    return codes.to(torch.uint8)


@pytest.mark.parametrize("block_size", [16, 128])
def test_gptq_equals_the_textbook_algorithm(block_size):
    # lazy batch updates and the transposed working layout are only a reordering of Alg. 1
    w, _, h = _layer(n=32, k=128)
    ours = gptq_quantize(w, h, bits=4, group_size=32, symmetric=True, block_size=block_size).codes
    ref = _textbook_gptq(w, h, 4, 32)
    assert (ours != ref).float().mean() < 0.002  # float32 vs float64: a rare tie may round the other way


def test_hessian_is_independent_of_batching():
    x = torch.randn(300, 16)
    a, b = Hessian(), Hessian()
    a.update(x)
    for part in x.split(7):
        b.update(part)
    torch.testing.assert_close(a.matrix, b.matrix)
    torch.testing.assert_close(a.matrix, 2 * x.t() @ x / 300)


def test_dead_inputs_and_split_rows():
    w, x, _ = _layer(n=20, k=128)
    x[:, 5] = 0.0
    h = 2 * x.t() @ x / x.shape[0]
    qw = gptq_quantize(w, h, group_size=32)
    deq = dequantize_weight(qw)
    assert torch.all(deq[:, 5] == 0)  # a channel that never fires is zeroed
    parts = split_rows(qw, [8, 12])
    assert torch.equal(torch.cat([p.codes for p in parts]), qw.codes)


CALIB = fptq.CalibConfig(source="random", samples=8, seqlen=32, batch_size=4)


@pytest.mark.parametrize("a_bits,true_sequential", [(16, False), (8, False), (16, True)])
def test_gptq_model_beats_rtn_and_round_trips(tmp_path, a_bits, true_sequential):
    def run(method):
        model = make_tiny("llama", seed=5)
        inject_outliers(model, factor=20.0)
        x = torch.randint(0, 256, (4, 32))
        gptq = dict(true_sequential=true_sequential) if method == "gptq" else {}  # (rtn has no such setting)
        config = fptq.QuantConfig(method=method, a_bits=a_bits, group_size=32, **gptq)
        with torch.no_grad():
            ref = model(x).logits
            fptq.quantize(model, None, config, CALIB, progress=False)
            return model, x, ((model(x).logits - ref).norm() / ref.norm()).item()

    model, x, err = run("gptq")
    assert err < run("rtn")[2]
    assert all(isinstance(m, QuantLinear) for n, m in model.named_modules() if n.endswith("_proj"))
    fptq.save_quantized(model, tmp_path / "q")
    with torch.no_grad():
        assert torch.equal(fptq.load_quantized(tmp_path / "q")(x).logits, model(x).logits)


def test_fptq_plus_gptq_keeps_the_fptq_policy():
    model = make_tiny("llama", seed=5)
    inject_outliers(model, factor=20.0)
    fptq.quantize(model, None, fptq.QuantConfig(method="fptq+gptq", group_size=32, v0=1.0, v1=50.0), CALIB,
                  progress=False)
    strategies = {r["strategy"] for r in model.fptq_info["policy"]}
    assert "equalized+static" in strategies
    assert model.fptq_info["quantization"]["equalization"] == "lae"
