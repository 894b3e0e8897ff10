"""Prologues: the RMSNorms and the gated MLP's SiLU * up moved into the linears that read them
(`fptq.fuse_prologues`): the same outputs, the norms taken out, the MLP a `GatedMLP`, what cannot be moved left
alone, no save, no graph break under torch.compile; on a GPU the kernels compute them (the one-token GEMM, the
activation quantization at more rows)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fptq
from fptq import kernels
from fptq.errors import ModelError
from fptq.kernels.prologue import Prologue, apply_prologue
from fptq.nn.prologue import GatedMLP, fuse_prologues
from fptq.nn.quant_linear import QuantLinear
from fptq.nn.shared_input import fuse_shared_inputs, is_fused
from tests.conftest import make_tiny
from tests.test_shared_input import _dense_backend, _logits, _quantize_rtn


def _fused(model):
    fused = copy.deepcopy(model)
    fuse_shared_inputs(fused)
    return fused


@pytest.mark.parametrize("act_mode,act_scale", [("dynamic", None), ("static", 0.05)])
def test_prologues_give_the_same_logits(tiny_any, act_mode, act_scale):
    """On the CPU the prologues run as torch ops, the very ops of the modules they replace: equal logits, bit for
    bit; two norms and one SiLU * up per block are moved; a second call, or `fuse_shared_inputs` again, moves
    nothing."""
    model = _fused(_quantize_rtn(tiny_any, act_mode, act_scale))
    ids = torch.randint(0, 256, (2, 24))
    ref = _logits(model, ids)
    moved = copy.deepcopy(model)
    assert fuse_prologues(moved) == 3 * model.config.num_hidden_layers
    block = moved.model.layers[0]
    assert isinstance(block.input_layernorm, nn.Identity) and isinstance(block.post_attention_layernorm, nn.Identity)
    assert block.self_attn.q_proj.fused.prologue.kind == "rmsnorm" and type(block.mlp) is GatedMLP
    assert block.mlp.gate_up.prologue.kind == "rmsnorm" and block.mlp.down_proj.prologue.kind == "silu_glu"
    assert "prologue=rmsnorm" in repr(block.self_attn.q_proj.fused)
    assert torch.equal(_logits(moved, ids), ref)
    assert torch.equal(_logits(moved, ids[:, :1]), _logits(model, ids[:, :1]))  # (one token)
    assert fuse_prologues(moved) == 0 and fuse_shared_inputs(moved) == 0
    assert is_fused(moved)


def test_unfused_groups_keep_their_norms(tiny_llama):
    """Without `fuse_shared_inputs` each norm feeds two or three layers: nothing is moved."""
    model = _quantize_rtn(tiny_llama)
    assert fuse_prologues(model) == 0
    assert not isinstance(model.model.layers[0].input_layernorm, nn.Identity)


def test_a_norm_that_computes_something_else_stays(tiny_llama):
    """A norm whose output differs from the RMSNorm prologue (a LayerNorm; an RMSNorm whose epsilon attribute is not
    the one it uses) stays where it is; the rest is moved."""
    model = _fused(_quantize_rtn(tiny_llama))
    model.model.layers[0].input_layernorm = nn.LayerNorm(model.config.hidden_size)
    odd = model.model.layers[1].post_attention_layernorm
    odd.forward = lambda x, norm=odd, eps=odd.variance_epsilon: apply_prologue(x, Prologue("rmsnorm", norm.weight,
                                                                                           eps * 100))
    ids = torch.randint(0, 256, (1, 12))
    ref = _logits(model, ids)
    assert fuse_prologues(model) == 3 * model.config.num_hidden_layers - 2
    assert isinstance(model.model.layers[0].input_layernorm, nn.LayerNorm)
    assert model.model.layers[1].post_attention_layernorm is odd
    assert torch.equal(_logits(model, ids), ref)


def test_a_norm_named_before_two_groups_stays(monkeypatch, tiny_llama):
    """An architecture whose norm feeds two groups (a parallel block): no group may take the norm inside."""
    import dataclasses

    from fptq.models import arch as arch_mod

    spec = arch_mod.get_arch(tiny_llama)
    groups = tuple(dataclasses.replace(g, prev="input_layernorm") if g.name == "mlp_in" else g for g in spec.groups)
    monkeypatch.setattr(arch_mod, "get_arch", lambda model: dataclasses.replace(spec, groups=groups))
    model = _fused(_quantize_rtn(tiny_llama))
    assert fuse_prologues(model) == model.config.num_hidden_layers  # (the MLPs' SiLU * up only)


def test_an_mlp_that_computes_something_else_stays(tiny_llama):
    """An MLP whose activation is not SiLU (checked on a random row), or whose gate / up are two layers, keeps its
    module; the norms are moved all the same."""
    model = _fused(_quantize_rtn(tiny_llama))
    model.model.layers[0].mlp.act_fn = nn.GELU()
    ids = torch.randint(0, 256, (1, 12))
    ref = _logits(model, ids)
    assert fuse_prologues(model) == 3 * model.config.num_hidden_layers - 1
    mlp = model.model.layers[0].mlp
    assert type(mlp) is not GatedMLP and mlp.down_proj.prologue is None
    assert torch.equal(_logits(model, ids), ref)
    unfused = _quantize_rtn(tiny_llama)
    assert fuse_prologues(unfused) == 0 and type(unfused.model.layers[0].mlp) is not GatedMLP


def test_apply_prologue_matches_the_modules(tiny_llama):
    norm = tiny_llama.model.layers[0].input_layernorm
    with torch.no_grad():
        norm.weight.copy_(torch.rand_like(norm.weight) + 0.5)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        norm = norm.to(dtype)
        x = (torch.randn(5, norm.weight.shape[0]) * 7).to(dtype)
        got = apply_prologue(x, Prologue("rmsnorm", norm.weight.detach(), norm.variance_epsilon))
        assert torch.equal(got, norm(x)), dtype
    mlp = tiny_llama.model.layers[0].mlp
    x = torch.randn(5, mlp.gate_proj.in_features)
    gate_up = torch.cat([mlp.gate_proj(x), mlp.up_proj(x)], dim=-1)
    assert torch.equal(apply_prologue(gate_up, Prologue("silu_glu")), mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))
    with pytest.raises(ValueError, match="unknown prologue"):
        apply_prologue(x, Prologue("gelu"))
    with pytest.raises(ValueError, match="unknown prologue"):
        QuantLinear(32, 8, group_size=32).set_prologue("gelu")
    with pytest.raises(ValueError, match="needs the norm's weight of 32"):
        QuantLinear(32, 8, group_size=32).set_prologue("rmsnorm", torch.ones(16), 1e-5)


def test_prologue_layers_move_and_cast_with_the_model(tiny_llama):
    model = _fused(_quantize_rtn(tiny_llama))
    fuse_prologues(model)
    model.to(torch.bfloat16)
    layer = model.model.layers[0].self_attn.q_proj.fused
    assert layer.prologue_weight.dtype == torch.bfloat16 and layer.scales.dtype == torch.float16
    assert not any("prologue" in key for key in model.state_dict())  # (not part of the stored format)


def test_a_model_with_prologues_is_not_saved(tmp_path, tiny_llama):
    model = _quantize_rtn(tiny_llama)
    model.fptq_info = {}
    moved = _fused(model)
    fuse_prologues(moved)
    with pytest.raises(ModelError, match="fused"):
        fptq.save_quantized(moved, tmp_path / "q")
    assert not (tmp_path / "q").exists()


def test_no_graph_break_under_torch_compile(monkeypatch, tiny_any):
    """A backend without prologues gets them applied by `kernels.quant_linear`, traced in the same graph."""
    import torch._dynamo.testing

    kernels.register_backend(kernels.Backend("test-dense", _dense_backend, supports=lambda *a: False))
    monkeypatch.setenv("FPTQ_KERNEL", "test-dense")
    model = _fused(_quantize_rtn(tiny_any, "none"))
    ids = torch.randint(0, 256, (2, 16))
    ref = _logits(model, ids)
    fuse_prologues(model)
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounter()
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    torch.testing.assert_close(_logits(compiled, ids), ref, rtol=1e-5, atol=1e-5)
    assert counter.frame_count == 1
    torch._dynamo.reset()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_gpu_prologue_model_matches(monkeypatch, arch):
    """On a GPU with the Triton kernels: one token runs the one-launch op with its norm inside (two per block; SiLU *
    up in the quantization kernel from SILU_MIN_ROWS rows on, else in torch ops), 40 tokens the quantization kernel
    with the norm or SiLU * up (no other torch prologue runs), and the logits match the model without prologues."""
    from fptq.kernels import triton_w4a8 as tw

    model = make_tiny(arch, hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)
    model = _fused(_quantize_rtn(model, "dynamic", None, group_size=128).half().cuda())
    ids = torch.randint(0, 256, (2, 40), device="cuda")
    moved = copy.deepcopy(model)
    assert fuse_prologues(moved) == 3 * model.config.num_hidden_layers
    launches = []  # the prologue of each one-launch M = 1 op that ran
    real = tw._launch_fused_m1

    def spy(*args, prologue=None, **kwargs):
        launches.append(prologue)
        return real(*args, prologue=prologue, **kwargs)

    monkeypatch.setattr(tw, "_launch_fused_m1", spy)
    norms = []  # the norms run in torch ops by the Triton backend
    real_norm = tw.apply_prologue
    monkeypatch.setattr(tw, "apply_prologue", lambda x, p: (norms.append(p is not None and (
        p.kind == "rmsnorm" or x.shape[:-1].numel() >= tw.SILU_MIN_ROWS)), real_norm(x, p))[1])
    for rows in (ids[:1, :40], ids[:1, :1]):
        ref = _logits(model, rows).double()
        del launches[:], norms[:]
        got = _logits(moved, rows).double()
        assert ((got - ref).norm() / ref.norm()).item() < 2e-2
        assert not any(norms), rows.shape
    assert sum(p is not None for p in launches) == 2 * model.config.num_hidden_layers  # (the one-token forward)
