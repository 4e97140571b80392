"""Sampling text from a trained GPT: `load_checkpoint` and `generate_text` (`descent sample`).

A checkpoint is validated completely (descent.runfolder.read_run_checkpoint) before a model is
built from it, so a damaged or crafted file gives one clear error, never a half-built model or
an allocation sized by a forged config.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import descent

from . import backend, runfolder
from .models import build_model
from .models.gpt import GPT
from .runfolder import CHECKPOINT_NAME


def generate_text(
    model: GPT,
    tokenizer,
    prompt: str | None,
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int = 1337,
    device: str = "cpu",
) -> str:
    """Encode `prompt`, sample `max_new_tokens` more tokens, and decode prompt + continuation.

    Raises:
        ValueError: the prompt has characters outside the tokenizer's vocabulary.
    """
    if not prompt:
        # A subword tokenizer encodes any text; a character one only its own characters.
        prompt = "\n" if "\n" in getattr(tokenizer, "stoi", "\n") else tokenizer.decode([0])
    try:
        ids = tokenizer.encode(prompt)
    except (KeyError, ValueError) as e:
        raise ValueError(
            f"the prompt has characters the model never saw ({e}); use characters of its "
            "training text"
        ) from e
    idx = descent.tensor(np.asarray([ids], dtype=np.int64), device=device)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                         generator=descent.Generator(seed))  # fmt: skip
    return tokenizer.decode(backend.as_numpy(out._data[0]).tolist())


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """Load a trained GPT and its tokenizer from a checkpoint file or a run's output folder.

    The file is validated completely (its model config against its tensors, its tokenizer
    against the vocabulary) before the model is built, so a damaged or crafted file gives a
    clear error rather than a half-built model or a huge allocation.

    Returns:
        (model, tokenizer, meta): the GPT in eval mode, its `CharTokenizer`, the metadata dict.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the file is damaged, foreign, or not written by `descent train`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    ckpt = runfolder.read_run_checkpoint(path, resume=False)
    model = build_model(ckpt.model_config)  # a GPT or a Grok
    try:
        model.load_state_dict(ckpt.state_dict)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"{str(path)!r} does not fit its own model_config: {e}") from None
    if device != "cpu":
        model.to(device)
    model.eval()
    return model, ckpt.tokenizer, ckpt.meta
