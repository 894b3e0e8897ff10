"""Two-level group scales: integer multiples in [1, 16] of a per-channel scale (`fptq.primitives`)."""

import json

import pytest
import torch

import fptq
from fptq.compare import parse_variant
from fptq.errors import CheckpointError, ConfigError
from fptq.kernels.reference import quant_linear_reference
from fptq.methods.gptq import gptq_quantize
from fptq.nn.quant_linear import QuantLinear
from fptq.nn.shared_input import fuse_shared_inputs
from fptq.primitives import (
    INT_SCALE_MAX,
    dequantize_weight,
    int_group_scales,
    quantize_weight,
    two_level_channel_scales,
)

from .conftest import make_tiny

CALIB = fptq.CalibConfig(source="random", samples=8, seqlen=32, batch_size=4)


def _weights(n=48, k=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, k, generator=g) - 0.5
    w = -0.02 * torch.sign(u) * torch.log1p(-2 * u.abs())  # Laplace: heavy-tailed, as LLM weights
    w *= 1 + 4 * torch.rand(1, k, generator=g)  # columns of different ranges: groups of different scales
    w[5] = 0.0  # an all-zero row
    return w


def _err(qw, w):
    return float(((dequantize_weight(qw) - w) ** 2).sum())


def test_scales_are_exact_integer_multiples_of_a_seven_bit_channel_scale():
    w = _weights()
    qw = quantize_weight(w, 4, 64, True, "two-level")
    s1 = qw.channel_scales
    assert s1.dtype == torch.float16 and s1.shape == (48,) and qw.scales.dtype == torch.float16
    s2 = int_group_scales(qw.scales, s1)  # raises unless integers in [1, 16]
    assert torch.equal((s1.float()[:, None] * s2).half(), qw.scales)  # s1 * s2 exact in fp16
    assert (s2 >= 12).any() and (s2 <= 6).any()  # groups of different ranges: multiples far apart
    mant, _ = torch.frexp(s1.float())
    assert torch.equal(mant * 128, torch.round(mant * 128))  # at most 7 significant bits
    assert s1[5] == 1 and (qw.codes[5] == 8).all()  # the zero row: scale 1, code 8 (zero)
    assert int(qw.codes.min()) >= 0 and int(qw.codes.max()) <= 15
    # the channel scales given up front (GPTQ's groups one at a time) give the same result
    again = quantize_weight(w, 4, 64, True, "two-level", two_level_channel_scales(w, 64))
    assert torch.equal(again.codes, qw.codes) and torch.equal(again.scales, qw.scales)


def test_each_group_takes_the_multiple_with_the_least_error():
    w = _weights(n=6, k=128, seed=1)
    qw = quantize_weight(w, 4, 32, True, "two-level")
    s1 = qw.channel_scales.float()
    s2 = int_group_scales(qw.scales, qw.channel_scales)
    wg = w.reshape(6, 4, 32)
    for n in range(6):
        for g in range(4):
            errs = [float(((torch.clamp(torch.round(wg[n, g] / (s1[n] * c)), -8, 7) * s1[n] * c - wg[n, g]) ** 2).sum())
                    for c in range(1, INT_SCALE_MAX + 1)]
            assert errs[int(s2[n, g]) - 1] == min(errs)
    # which, with clipping allowed, is below plain round-to-nearest at max|w| / 7 (fp16 scales)
    assert _err(qw, w) < _err(quantize_weight(w, 4, 32), w)


def test_scales_that_are_not_two_level_are_rejected():
    qw = quantize_weight(_weights(), 4, 64)
    with pytest.raises(ValueError, match="integer multiples"):
        int_group_scales(qw.scales, qw.scales[:, 0] / 3)
    with pytest.raises(ValueError, match="symmetric 4-bit"):
        quantize_weight(_weights(), 4, 64, False, "two-level")
    with pytest.raises(ValueError, match="scale format"):
        quantize_weight(_weights(), 4, 64, True, "fp32")


def test_config_resolves_two_level_for_w4a8_groups_only():
    assert fptq.QuantConfig().scale_format == "two-level"
    assert fptq.QuantConfig(a_bits=16).scale_format == "fp16"  # weight-only: no int8 MMA to feed
    assert fptq.QuantConfig(group_size=-1).scale_format == "fp16"
    assert fptq.QuantConfig(symmetric=False).scale_format == "fp16"
    assert fptq.QuantConfig(method="fp8", w_bits=8).scale_format == "fp16"
    assert fptq.QuantConfig(scale_format="fp16").to_dict().get("scale_format") is None  # old keys stay valid
    assert fptq.QuantConfig().to_dict()["scale_format"] == "two-level"
    with pytest.raises(ConfigError, match="two-level"):
        fptq.QuantConfig(group_size=-1, scale_format="two-level")
    with pytest.raises(ConfigError, match="scale-format"):
        fptq.QuantConfig(scale_format="int")
    assert parse_variant("rtn-w4a8").config.scale_format == "two-level"
    assert parse_variant("fptq-w4a8-fp16s").config.scale_format == "fp16"
    assert parse_variant("gptq-w4a16-2l").config.scale_format == "two-level"


def test_quant_linear_keeps_complete_scales():
    """A two-level layer's `scales` are the whole story: the reference (which ignores `channel_scales`) computes
    the same as from its dequantized weight."""
    linear = torch.nn.Linear(256, 48, bias=True)
    with torch.no_grad():
        linear.weight.copy_(_weights())
    q = QuantLinear.from_linear(linear, group_size=64, scale_format="two-level", act_mode="none")
    assert q.channel_scales is not None and "two-level" in repr(q)
    assert torch.equal(q.dequantized_weight(), dequantize_weight(quantize_weight(linear.weight, 4, 64, True, "two-level")))
    x = torch.randn(5, 256)
    ref = quant_linear_reference(x, q.qweight, q.scales, None, group_size=64, act_mode="none", bias=q.bias)
    assert torch.equal(q(x), fptq.kernels.quant_linear(x, q.qweight, q.scales, None, group_size=64, act_mode="none",
                                                       bias=q.bias, channel_scales=q.channel_scales))
    assert torch.allclose(q(x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="two-level"):
        QuantLinear(256, 48, group_size=64, symmetric=False, scale_format="two-level")


@pytest.mark.parametrize("act_order", [True, False])
def test_gptq_gives_two_level_scales(act_order):
    w = _weights(n=32, k=128)
    x = torch.randn(256, 128)
    qw = gptq_quantize(w, x.t() @ x, bits=4, group_size=32, act_order=act_order, scale_format="two-level")
    assert torch.equal(qw.channel_scales, two_level_channel_scales(w, 32))
    int_group_scales(qw.scales, qw.channel_scales)  # integers in [1, 16]
    # GPTQ minimises the output error, which is below two-level RTN's on these inputs
    rtn = quantize_weight(w, 4, 32, True, "two-level")
    out = lambda q: float(((x @ (dequantize_weight(q) - w).t()) ** 2).sum())  # noqa: E731
    assert out(qw) < out(rtn)


def test_save_load_and_a_damaged_channel_scale(tmp_path):
    model = make_tiny()
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32), CALIB, progress=False)
    layers = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert layers and all(m.scale_format == "two-level" and m.channel_scales is not None for m in layers)
    x = torch.randint(0, 256, (1, 12))
    with torch.no_grad():
        ref = model(x).logits
    folder = fptq.save_quantized(model, tmp_path / "q")
    assert json.loads((folder / "fptq_config.json").read_text())["quantization"]["scale_format"] == "two-level"
    loaded = fptq.load_quantized(folder)
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, ref)
    fuse_shared_inputs(loaded)  # q/k/v and gate/up as one layer: the channel scales concatenated
    with torch.no_grad():
        assert torch.allclose(loaded(x).logits, ref, atol=1e-4)
    # channel scales that do not divide the group scales: a clear error, not a silently wrong kernel
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    key = next(k for k in tensors if k.endswith("channel_scales"))
    tensors[key] = tensors[key] * 3
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="integer multiples"):
        fptq.load_quantized(folder)


def test_checkpoints_without_a_scale_format_have_fp16_scales(tmp_path):
    """Checkpoints written before two-level scales (no `scale_format` key) load as fp16 scales."""
    model = make_tiny()
    fptq.quantize(model, None, fptq.QuantConfig(group_size=32, scale_format="fp16"), CALIB, progress=False)
    folder = fptq.save_quantized(model, tmp_path / "q")
    info = json.loads((folder / "fptq_config.json").read_text())
    assert "scale_format" not in info["quantization"]
    loaded = fptq.load_quantized(folder)
    assert all(m.channel_scales is None for m in loaded.modules() if isinstance(m, QuantLinear))


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["fptq", "gptq"])
def test_gpu_pipeline_two_level(monkeypatch, method):
    """Calibration and two-level quantization on CUDA (the default format for W4A8), then a 300-token forward through
    the CUDA kernels (the swap kernel's two-level mode where it applies: K and groups multiples of 128) against the
    reference backend and the per-group-scaled kernels on the same GPU, and the CPU reference (fp32) loosely."""
    import copy
    import os

    from transformers import LlamaConfig, LlamaForCausalLM

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from fptq.kernels import gluon_swap

    plans, schedule = [], gluon_swap._schedule  # (each swap launch's plan: `_schedule` keeps them per shape)
    monkeypatch.setattr(gluon_swap, "_schedule", lambda *args: plans.append(schedule(*args)[0]) or schedule(*args))
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, vocab_size=1000, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg).half().eval()
    thresholds = dict(v0=0.5, v1=50.0) if method == "fptq" else {}  # (gptq has no layer-wise policy to set)
    fptq.quantize(model, None, fptq.QuantConfig(method=method, group_size=128, **thresholds),
                  fptq.CalibConfig(source="random", samples=4, seqlen=64), device="cuda", progress=False)
    layers = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert layers and all(m.scale_format == "two-level" for m in layers)
    for m in layers:
        int_group_scales(m.scales.cpu(), m.channel_scales.cpu())
    ids = torch.randint(0, 1000, (2, 150))
    ref_model = copy.deepcopy(model).cpu().float()
    model = model.cuda()

    def logits(m, x, kernel=None):
        if kernel:
            os.environ["FPTQ_KERNEL"] = kernel
        try:
            with torch.no_grad():
                return m(input_ids=x).logits.double().cpu()
        finally:
            os.environ.pop("FPTQ_KERNEL", None)

    rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
    out = logits(model, ids.cuda())
    assert torch.isfinite(out).all()
    assert rel(out, logits(model, ids.cuda(), "reference")) < 5e-3  # the same fp16 model through the reference
    monkeypatch.setattr(gluon_swap, "USE_TWO_LEVEL", False)
    assert rel(out, logits(model, ids.cuda())) < 5e-3  # the fp16 group scales per group: accumulation order only
    monkeypatch.setattr(gluon_swap, "USE_TWO_LEVEL", True)
    # fp16 on the GPU against fp32 on the CPU: flipped int8 activation codes compound over the layers
    assert rel(out, logits(ref_model, ids, "reference")) < 5e-2
    if gluon_swap.gluon is not None and torch.cuda.get_device_capability()[0] == 9:
        assert any(p["TL"] for p in plans)  # the 300-row layers took the swap kernel's two-level mode
