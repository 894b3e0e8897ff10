"""Fusing the linears that read one input (q/k/v, gate/up) into one GEMM: same outputs, same
format on disk, no stale results, no graph break under torch.compile."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fptq
from fptq import kernels
from fptq.errors import ModelError
from fptq.methods.fptq import replace_linear
from fptq.nn.quant_linear import QuantLinear
from fptq.nn.shared_input import SharedInputLinear, fuse_shared_inputs, is_fused
from fptq.packing import unpack_int4
from tests.conftest import make_tiny


def _quantize_rtn(model, act_mode="dynamic", act_scale=None, group_size=32):
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.Linear) and ".layers." in name:
            replace_linear(model, name, QuantLinear.from_linear(mod, group_size=group_size, act_mode=act_mode,
                                                                act_scale=act_scale))
    return model


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("act_mode,act_scale", [("dynamic", None), ("static", 0.05), ("none", None)])
def test_fused_model_matches_unfused(tiny_any, act_mode, act_scale):
    model = _quantize_rtn(tiny_any, act_mode, act_scale)
    ids = torch.randint(0, 256, (2, 24))
    ref = _logits(model, ids)
    fused = copy.deepcopy(model)
    assert fuse_shared_inputs(fused) == 2 * model.config.num_hidden_layers  # q/k/v and gate/up per block
    attn = fused.model.layers[0].self_attn
    assert isinstance(attn.k_proj, SharedInputLinear)
    assert attn.q_proj.fused.out_features == attn.q_proj.out_features + attn.k_proj.out_features + attn.v_proj.out_features
    torch.testing.assert_close(_logits(fused, ids), ref, rtol=1e-5, atol=1e-5)
    # the fused weights are counted once: fusing moves bytes, it does not copy them
    size = lambda m: sum(b.numel() * b.element_size() for n, b in m.named_buffers() if "act_scale" not in n)  # noqa: E731
    assert size(fused) == size(model)
    assert fuse_shared_inputs(fused) == 0  # idempotent


def test_dense_fp16_style_model_fuses_too():
    model = make_tiny("qwen2")  # q/k/v carry biases
    ids = torch.randint(0, 256, (1, 16))
    ref = _logits(model, ids)
    fused = copy.deepcopy(model)
    assert fuse_shared_inputs(fused) == 4
    torch.testing.assert_close(_logits(fused, ids), ref, rtol=1e-5, atol=1e-5)


def test_groups_that_differ_are_left_alone(tiny_llama):
    model = _quantize_rtn(tiny_llama, "static", 0.05)
    block = model.model.layers[0]
    block.self_attn.k_proj.act_scale.fill_(0.07)  # another static scale: not one activation spec
    block.mlp.up_proj.act_mode = "dynamic"
    ids = torch.randint(0, 256, (2, 12))
    ref = _logits(model, ids)
    assert fuse_shared_inputs(model) == 2  # only block 1's two groups
    assert type(block.self_attn.q_proj) is QuantLinear and type(block.mlp.gate_proj) is QuantLinear
    torch.testing.assert_close(_logits(model, ids), ref, rtol=1e-5, atol=1e-5)


def test_members_called_alone_or_out_of_order_are_never_stale(tiny_llama):
    model = _quantize_rtn(tiny_llama)
    attn = model.model.layers[0].self_attn
    originals = {name: copy.deepcopy(getattr(attn, name)) for name in ("q_proj", "k_proj", "v_proj")}
    fuse_shared_inputs(model)
    x1, x2 = torch.randn(3, 64), torch.randn(3, 64)
    with torch.no_grad():
        for name, x in [("k_proj", x1), ("k_proj", x1), ("q_proj", x1), ("v_proj", x2), ("k_proj", x2),
                        ("q_proj", x2), ("v_proj", x1)]:
            torch.testing.assert_close(getattr(attn, name)(x), originals[name](x), rtol=1e-6, atol=1e-6)
        shared = attn.q_proj._shared
        x4 = torch.randn(2, 64)
        outs = [getattr(attn, name)(x4) for name in ("q_proj", "k_proj", "v_proj")]
        assert shared.x is None and shared.outs == ()  # every member took its slice: no refs held
        assert outs[1].data_ptr() == outs[0].data_ptr() + 4 * attn.q_proj.out_features  # one GEMM's output


def test_fused_model_refuses_to_save_and_round_trips_through_load(tmp_path, tiny_llama):
    from fptq.config import CalibConfig, QuantConfig

    model = tiny_llama
    fptq.quantize(model, None, QuantConfig(group_size=32), CalibConfig(source="random", samples=2, seqlen=32),
                  progress=False)
    fptq.save_quantized(model, tmp_path / "q")
    loaded = fptq.load_quantized(tmp_path / "q", fuse=True)
    assert is_fused(loaded) and not is_fused(fptq.load_quantized(tmp_path / "q"))  # CPU default: unfused
    assert isinstance(loaded.model.layers[0].input_layernorm, nn.Identity)  # (the norms inside: fuse_prologues)
    ids = torch.randint(0, 256, (2, 20))
    torch.testing.assert_close(_logits(loaded, ids), _logits(model, ids), rtol=1e-4, atol=1e-4)
    with pytest.raises(ModelError, match="fused"):
        fptq.save_quantized(loaded, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def _dense_backend(x, qweight, scales, zeros=None, *, bits=4, group_size, act_mode="dynamic", act_scale=None, bias=None):
    """A branch-free float kernel (weights only), traceable by Dynamo end to end."""
    codes = unpack_int4(qweight).float() - 8
    w = (codes.reshape(codes.shape[0], -1, group_size) * scales.float()[..., None]).reshape(codes.shape)
    y = x @ w.t().to(x.dtype)
    return y if bias is None else y + bias


def test_no_graph_break_under_torch_compile(monkeypatch, tiny_any):
    import torch._dynamo.testing

    kernels.register_backend(kernels.Backend("test-dense", _dense_backend, supports=lambda *a: False))
    monkeypatch.setenv("FPTQ_KERNEL", "test-dense")
    model = _quantize_rtn(tiny_any, "none")
    ids = torch.randint(0, 256, (2, 16))
    ref = _logits(model, ids)
    fuse_shared_inputs(model)
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounter()
    compiled = torch.compile(model, backend=counter, fullgraph=True)  # fullgraph: a graph break raises
    torch.testing.assert_close(_logits(compiled, ids), ref, rtol=1e-5, atol=1e-5)
    assert counter.frame_count == 1
    torch._dynamo.reset()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("act_mode,act_scale", [("dynamic", None), ("static", 0.05)])
def test_gpu_fused_model_matches_unfused(act_mode, act_scale):
    model = make_tiny("qwen2", hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)
    model = _quantize_rtn(model, act_mode, act_scale, group_size=128).half().cuda()
    ids = torch.randint(0, 256, (2, 40), device="cuda")
    for m in (40, 1):  # prefill-sized and decode-sized GEMMs
        ref = _logits(model, ids[:, :m]).double()
        fused = copy.deepcopy(model)
        fuse_shared_inputs(fused)
        assert kernels.select_backend(torch.zeros(1, 256, device="cuda").half(), 4, 128, act_mode).name == "triton"
        got = _logits(fused, ids[:, :m]).double()
        assert ((got - ref).norm() / ref.norm()).item() < 2e-2
