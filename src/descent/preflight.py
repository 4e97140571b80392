"""Checks made before anything big is built: a run must fail in a second with one clear line,
never after minutes, and never by exhausting the machine's memory.

* `gpt_config_from_checkpoint`: a checkpoint's `model_config` is type-checked and compared with
  the tensors the file really holds *before* a GPT is built from it. A 59 KB file that claims
  `n_layer=10**6` is refused instead of allocating a million blocks: once the config agrees with
  the file's tensors, the model is exactly as large as the file.
* `training_memory` / `check_training_memory`: a rough estimate of what a training run needs
  (weights, gradients, AdamW's two moments, activations of one micro-batch), compared with the
  memory this machine has available, so `--n-embd 1000000` or `--batch-size 1000000000` end
  with the estimate in one line instead of a MemoryError traceback.
* `generator_state_problem`, `tokenizer_problem`: the non-tensor parts of a checkpoint that
  resuming and sampling rely on.

Every check raises ValueError (or returns a problem string) naming the field, the value and the
fix; callers turn them into their own error types (ConfigError, UsageError).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from .models.gpt import GPTConfig

_GPT_INTS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")
_BLOCK_NAME = re.compile(r"transformer\.h\.(\d+)\.")


def _is_int(v: Any) -> bool:
    return type(v) is int  # a JSON integer: bool is an int in Python but not here


def gpt_num_elements(cfg: GPTConfig) -> int:
    """Elements of a GPT's state_dict, the tied embedding counted under both its names.

    wte (V, C) and lm_head (V, C) (one matrix under two names), wpe (T, C), per block
    ln_1/ln_2 (C each), c_attn (3C, C), attn c_proj (C, C), c_fc (4C, C), mlp c_proj (C, 4C);
    ln_f (C); with bias: 11C more per block (3C + C + 4C + C + two LayerNorm C) and C for ln_f.
    """
    c, v, t, n = cfg.n_embd, cfg.vocab_size, cfg.block_size, cfg.n_layer
    block = 12 * c * c + 2 * c + (11 * c if cfg.bias else 0)
    return 2 * v * c + t * c + n * block + c + (c if cfg.bias else 0)


def check_gpt_config(cfg: Any, where: str = "model_config") -> GPTConfig:
    """A GPTConfig from a dict read from a file, with every field's type checked.

    Each field present must have its declared type (a JSON integer for an int: no strings,
    floats or booleans; a finite number for a float; true/false for a bool); absent fields take
    their defaults (older checkpoints), unknown keys are ignored.

    Raises:
        ValueError: a field of the wrong type or out of range.
    """
    if not isinstance(cfg, Mapping):
        raise ValueError(f"{where} is a {type(cfg).__name__}, not an object")
    for f in fields(GPTConfig):
        if f.name not in cfg:
            if f.name in _GPT_INTS:
                raise ValueError(f"{where} has no {f.name}")
            continue
        value, kind = cfg[f.name], str(f.type)
        if kind == "int" and not (_is_int(value) and value > 0):
            raise ValueError(f"{where}.{f.name} is {value!r}; expected a positive integer")
        if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or not math.isfinite(value)):  # fmt: skip
            raise ValueError(f"{where}.{f.name} is {value!r}; expected a finite number")
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"{where}.{f.name} is {value!r}; expected true or false")
    try:
        return GPTConfig.from_dict(dict(cfg))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def _state_elements(cfg: GPTConfig) -> int:
    from .models.gpt import GPT

    return sum(math.prod(v.shape) for v in GPT(cfg).state_dict().values())


def check_gpt_against_tensors(cfg: GPTConfig, shapes: Mapping[str, tuple]) -> None:
    """Refuse a config that does not describe the tensors `shapes` (name -> shape).

    Checked before the model is built, in an order where each step is cheap given the last:
    the token embedding fixes vocab_size and n_embd; the first block's c_attn proves the file
    holds at least one n_embd-wide block; the number of blocks must be n_layer; and the total
    number of elements must be what a GPT of `cfg` has. That total comes from three small
    models (1 or 2 blocks, context 1 or 2; each no larger than the file's own tensors), since a
    GPT's size is linear in n_layer and in block_size, so no knowledge of the layout (options
    such as RoPE or untied heads) is needed here. A model built from `cfg` is then exactly as
    large as the file.

    Raises:
        ValueError: naming the first field that disagrees with the tensors.
    """
    c = cfg.n_embd
    disagree = "; the file's config and its tensors disagree"
    wte = tuple(shapes.get("transformer.wte.weight", ()))
    if wte != (cfg.vocab_size, c):
        raise ValueError(
            f"model_config says vocab_size={cfg.vocab_size}, n_embd={c} but "
            f"transformer.wte.weight has shape {wte or 'missing'}{disagree}"
        )
    wpe = tuple(shapes.get("transformer.wpe.weight", ()))
    if wpe and wpe != (cfg.block_size, c):  # (a GPT with RoPE has no wpe)
        raise ValueError(
            f"model_config says block_size={cfg.block_size}, n_embd={c} but "
            f"transformer.wpe.weight has shape {wpe}{disagree}"
        )
    attn = tuple(shapes.get("transformer.h.0.attn.c_attn.weight", ()))
    if attn != (3 * c, c):
        raise ValueError(f"model_config says n_embd={c} but transformer.h.0.attn.c_attn.weight "
                         f"has shape {attn or 'missing'}{disagree}")  # fmt: skip
    blocks = {int(m.group(1)) for k in shapes if (m := _BLOCK_NAME.match(k))}
    if len(blocks) != cfg.n_layer or min(blocks) != 0 or max(blocks) != cfg.n_layer - 1:
        raise ValueError(f"model_config says n_layer={cfg.n_layer} but the file holds "
                         f"{len(blocks)} blocks{disagree}")  # fmt: skip
    base = replace(cfg, n_layer=1, block_size=1)
    e11 = _state_elements(base)
    per_layer = _state_elements(replace(base, n_layer=2)) - e11
    per_position = _state_elements(replace(base, block_size=2)) - e11
    want = e11 + (cfg.n_layer - 1) * per_layer + (cfg.block_size - 1) * per_position
    have = sum(math.prod(s) for s in shapes.values())
    if want != have:
        raise ValueError(f"model_config describes a GPT of {want:,} elements but the file's "
                         f"tensors hold {have:,}{disagree}")  # fmt: skip


def gpt_config_from_checkpoint(cfg: Any, shapes: Mapping[str, tuple]) -> GPTConfig:
    """`check_gpt_config` then `check_gpt_against_tensors`: a config safe to build (a Grok's
    config, recognised by its num_experts, is checked by `GrokConfig.from_checkpoint`)."""
    if isinstance(cfg, Mapping) and "num_experts" in cfg:
        from .models.grok import GrokConfig

        return GrokConfig.from_checkpoint(dict(cfg), dict(shapes))
    config = check_gpt_config(cfg)
    check_gpt_against_tensors(config, shapes)
    return config


# ---------------------------------------------------------------------------------------------
# Memory


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, capped by a cgroup limit (None when
    the platform tells neither)."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v2: the container's limit minus what it already uses
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                found.append(int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return max(0, min(found))


def training_memory(
    cfg: GPTConfig, batch_size: int, grad_accum: int = 1, eval_iters: int = 0
) -> dict[str, int]:
    """A rough estimate (bytes, float32) of what training `cfg` needs on one process.

    Parameters: weights, gradients, AdamW's exp_avg and exp_avg_sq, and the optimizer's flat
    work buffer (5 copies). Activations kept for backward, per token of one micro-batch of
    `batch_size` sequences: about 17 C per block (LayerNorm outputs, q/k/v, the 4C MLP hidden
    layer before and after GELU, projections) plus 2 n_head T for the attention weights before
    and after softmax, and 3 V for the logits, their softmax and its gradient (cf. Korthikanti et
    al. 2022, "Reducing Activation Recomputation in Large Transformer Models", section 4). An
    estimate errs low on purpose: it is used to refuse runs that cannot fit, not to tune ones
    that may.

    Returns:
        {"parameters": elements, "weights_and_optimizer": bytes, "activations": bytes,
         "total": bytes}
    """
    params = gpt_num_elements(cfg) - cfg.vocab_size * cfg.n_embd  # the tie is one matrix
    tokens = batch_size * cfg.block_size
    per_token = cfg.n_layer * (17 * cfg.n_embd + 2 * cfg.n_head * cfg.block_size)
    per_token += 3 * cfg.vocab_size + 4 * cfg.n_embd
    weights = 5 * 4 * params
    activations = 4 * tokens * per_token
    total = weights + activations + 8 * eval_iters
    return {"parameters": params, "weights_and_optimizer": weights, "activations": activations,
            "total": total}  # fmt: skip


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**28 else f"{n / 2**20:,.0f} MiB"


def check_training_memory(
    cfg: GPTConfig, batch_size: int, grad_accum: int = 1, eval_iters: int = 0,
    available: int | None = None,
) -> dict[str, int]:  # fmt: skip
    """Raise ValueError with the estimate when training `cfg` cannot fit in memory.

    Args:
        cfg: the model's shape.
        batch_size: sequences per micro-batch on this process.
        grad_accum, eval_iters: the run's settings (eval_iters losses are kept in memory).
        available: bytes available (default: `available_memory()`; no check when unknown).
    """
    est = training_memory(cfg, batch_size, grad_accum, eval_iters)
    avail = available_memory() if available is None else available
    if avail is not None and est["total"] > avail:
        raise ValueError(
            f"this run needs about {_gib(est['total'])} of memory ({est['parameters']:,} "
            f"parameters: {_gib(est['weights_and_optimizer'])} with gradients and AdamW state; "
            f"activations of one micro-batch of {batch_size}: {_gib(est['activations'])}) but "
            f"only {_gib(avail)} is available; use a smaller --n-embd, --n-layer, --block-size "
            "or --batch-size (or more --gradient-accumulation-steps)"
        )
    return est


# ---------------------------------------------------------------------------------------------
# The non-tensor parts of a checkpoint


def generator_state_problem(state: Any) -> str | None:
    """Why `state` cannot be given to `descent.Generator.set_state`, or None when it can."""
    from .creation import Generator
    from .tensor import Tensor

    if isinstance(state, Mapping):  # the dict form of checkpoints written before 2026-12-05
        if not isinstance(state.get("state"), Mapping):
            return f"is a {type(state).__name__} without a 'state' object"
        state = dict(state)
    elif not isinstance(state, Tensor):
        return f"is a {type(state).__name__}, not a generator state (a uint8 tensor)"
    try:
        Generator(0).set_state(state)  # a scratch generator: nothing shared is touched
    except (KeyError, TypeError, ValueError, OverflowError, RuntimeError) as e:
        return f"is not a generator state ({type(e).__name__}: {e})"
    return None


def tokenizer_problem(tok: Any) -> str | None:
    """Why `tok` is not a `CharTokenizer` / `SubwordTokenizer` `to_dict()`, or None when it is."""
    from .data import tokenizer_from_dict

    try:
        tokenizer_from_dict(tok)
    except (TypeError, ValueError) as e:
        return str(e)
    return None
