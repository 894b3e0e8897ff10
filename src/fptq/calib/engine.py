"""The one calibration engine: block by block, for every method.

1. Capture the inputs of block 0 (hidden states plus the keyword arguments the model passes
   its blocks: attention mask, position embeddings, ...) for every calibration batch.
2. For each block: move it to the device, run the calibration batches through it while
   observers record what the method needs (per-channel `max|X|` for every linear group, plus
   the method's own observers, e.g. Hessians), let the method transform and quantize the
   block, then feed the block's outputs to the next block. With `sequential=True` those are
   the outputs of the *quantized* block, so later blocks calibrate on what they will see.

Peak memory is one block on the device plus the captured activations, which is what lets a
large model quantize on one GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from fptq.calib.observers import ChannelAbsMax, check_finite
from fptq.models.arch import ArchSpec

__all__ = ["BlockContext", "Method", "run_engine"]


class _InputsCaptured(Exception):
    """Raised by our own pre-hooks to stop a forward pass once the inputs we need are saved."""


@dataclass
class BlockContext:
    """Everything a method sees of one block during calibration."""

    index: int
    prefix: str  # e.g. "model.layers.3"
    block: nn.Module
    arch: ArchSpec
    model_config: Any
    inputs: list[torch.Tensor]  # per calibration batch, (B, T, hidden), on `device`
    kwargs: list[dict]  # per batch, the keyword arguments of the block's forward
    device: torch.device
    absmax: dict[str, ChannelAbsMax] = field(default_factory=dict)  # per linear-group name
    observers: dict[str, list] = field(default_factory=dict)  # per linear path, the method's own

    def run(self, block: nn.Module | None = None) -> list[torch.Tensor]:
        """Outputs of `block` (default: this block as it is now) on every calibration batch."""
        block = self.block if block is None else block
        return [_block_output(block(x, **kw)) for x, kw in zip(self.inputs, self.kwargs)]

    def observe(self, hooks: dict[str, Callable[[tuple, dict], None]]) -> None:
        """Run the calibration batches through the block as it is now, calling `hooks[path](args,
        kwargs)` with the inputs of each listed submodule, and stop each batch's forward pass as
        soon as every listed submodule has been reached (what comes after cannot change their
        inputs). Re-observing a layer deep in the block costs only the part of the block before it.
        """
        handles, seen = [], set()

        def make(path, fn):
            def pre_hook(module, args, kwargs):
                fn(args, kwargs)
                seen.add(path)
                if len(seen) == len(hooks):
                    raise _InputsCaptured

            return pre_hook

        for path, fn in hooks.items():
            module = self.block.get_submodule(path)
            handles.append(module.register_forward_pre_hook(make(path, fn), with_kwargs=True))
        try:
            for x, kw in zip(self.inputs, self.kwargs):
                seen.clear()
                try:
                    self.block(x, **kw)
                except _InputsCaptured:
                    pass
        finally:
            for handle in handles:
                handle.remove()


class Method(Protocol):
    """What a quantization method contributes to the engine."""

    def observers(self, ctx: BlockContext) -> dict[str, list]:
        """Extra observers per linear path (relative to the block); each gets `.update(x)`."""
        ...

    def process_block(self, ctx: BlockContext) -> list[dict]:
        """Transform and quantize `ctx.block` in place; return one policy row per linear."""
        ...


def _block_output(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple | list):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


_DROP_KWARGS = ("cache", "past_key_values", "past_key_value", "use_cache", "output_attentions")


def capture_block_inputs(model, arch: ArchSpec, tokens: torch.Tensor, batch_size: int, device: torch.device):
    """Hidden states and forward kwargs at the entrance of block 0, per calibration batch."""
    blocks = model.get_submodule(arch.blocks)
    inputs: list[torch.Tensor] = []
    kwargs: list[dict] = []

    def hook(module, args, kw):
        hidden = args[0] if args else kw.pop("hidden_states")
        inputs.append(hidden.detach())
        kwargs.append({k: v for k, v in kw.items() if k not in _DROP_KWARGS})
        raise _InputsCaptured

    pre_block = [model.get_submodule(name) for name in arch.pre_block if _has_submodule(model, name)]
    for module in pre_block:
        module.to(device)
    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for batch in tokens.split(batch_size):
                try:
                    model(input_ids=batch.to(device), use_cache=False)
                except _InputsCaptured:
                    pass
    finally:
        handle.remove()
        for module in pre_block:
            module.to("cpu")
    return inputs, kwargs


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def run_engine(
    model,
    arch: ArchSpec,
    tokens: torch.Tensor,
    method: Method,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    sequential: bool = True,
    progress: bool = True,
    on_block: Callable[[int, float], None] | None = None,
) -> list[dict]:
    """Calibrate and quantize `model` in place, block by block. Returns the policy rows."""
    device = torch.device(device)
    inputs, kwargs = capture_block_inputs(model, arch, tokens, batch_size, device)
    blocks = model.get_submodule(arch.blocks)
    rows: list[dict] = []
    bar = tqdm(range(len(blocks)), desc="calibrating blocks", unit="block", disable=not progress)
    for i in bar:
        start = time.perf_counter()
        block = blocks[i].to(device)
        ctx = BlockContext(i, f"{arch.blocks}.{i}", block, arch, model.config, inputs, kwargs, device)
        handles = _attach_observers(ctx, method)
        try:
            with torch.no_grad():
                outputs = ctx.run()
        finally:
            for h in handles:
                h.remove()
        with torch.no_grad():
            rows.extend(method.process_block(ctx))
            if sequential:
                outputs = ctx.run()
        for out in outputs:
            check_finite(out, f"the output of block {i}")
        blocks[i] = block.to("cpu") if device.type != "cpu" else block
        inputs = outputs
        if on_block is not None:
            on_block(i, time.perf_counter() - start)
    return rows


def _attach_observers(ctx: BlockContext, method: Method) -> list:
    handles = []
    for group in ctx.arch.groups:
        observer = ChannelAbsMax()
        ctx.absmax[group.name] = observer
        first = ctx.block.get_submodule(group.linears[0])
        where = f"{ctx.prefix}.{group.linears[0]}"

        def absmax_hook(module, args, observer=observer, where=where):
            check_finite(args[0], where)
            observer.update(args[0])

        handles.append(first.register_forward_pre_hook(absmax_hook))
    ctx.observers = method.observers(ctx) or {}
    for path, observers in ctx.observers.items():
        module = ctx.block.get_submodule(path)

        def extra_hook(module, args, observers=observers):
            for obs in observers:
                obs.update(args[0])

        handles.append(module.register_forward_pre_hook(extra_hook))
    return handles
