"""Subword tokens, as Grok reads them: a byte-level BPE tokenizer trained on your corpus.

Built on Hugging Face `tokenizers` (the optional `subword` extra: `pip install descent[subword]`),
a well-kept Rust library; descent only wraps it in the interface of `CharTokenizer` (encode,
encode_array, decode, vocab_size, to_dict/from_dict), so the training loop, checkpoints and
`descent sample` take either.

Byte-level BPE (Radford et al. 2019, GPT-2; Sennrich et al. 2016 for BPE): the text is first
mapped to its UTF-8 bytes, each shown as one of 256 printable characters, and merges are learned
on top. Every string encodes (there is no unknown token) and decodes back to itself exactly.

Saved without pickle: `to_dict()` holds the library's own JSON serialisation as a string, which
a checkpoint stores in its JSON metadata.

Comparing a character model with a subword model by "loss per token" is meaningless: a subword
token carries several characters. `loss_in_units` converts a mean loss per token over a text
into nats per character and bits per byte, the units in which the two can be compared.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor
from .text import CharTokenizer, token_dtype

__all__ = ["SubwordTokenizer", "tokenizer_from_dict", "loss_in_units"]


def _library():
    try:
        import tokenizers  # an optional extra, imported when used
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "SubwordTokenizer needs Hugging Face `tokenizers`: pip install 'descent[subword]' "
            "(or pip install tokenizers)"
        ) from e
    return tokenizers


class SubwordTokenizer:
    """A byte-level BPE tokenizer (Hugging Face `tokenizers`) with CharTokenizer's interface.

    Build one with `SubwordTokenizer.train(text, vocab_size)`, or from `to_dict()` output.

    Example:
        >>> tok = SubwordTokenizer.train(text, vocab_size=1024)
        >>> tok.decode(tok.encode("To be, or not to be")) == "To be, or not to be"
        True
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer

    @classmethod
    def train(cls, text: str, vocab_size: int = 1024, min_frequency: int = 2) -> SubwordTokenizer:
        """Learn byte-level BPE merges on `text` until the vocabulary has `vocab_size` tokens.

        Args:
            text: the training corpus.
            vocab_size: the target vocabulary size, at least 257 (the 256 bytes + one merge);
                smaller when the text has fewer distinct merges than that.
            min_frequency: a pair must occur this often to be merged.
        """
        if not isinstance(text, str) or not text:
            raise ValueError("SubwordTokenizer.train: needs a non-empty str to learn from")
        if vocab_size < 257:
            raise ValueError(
                f"SubwordTokenizer.train: vocab_size={vocab_size} is below 257 (the 256 byte "
                "tokens plus at least one merge); use CharTokenizer for a smaller vocabulary"
            )
        tk = _library()
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=int(vocab_size),
            min_frequency=int(min_frequency),
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # Train on lines (the library splits work by input item); newlines are kept in the
        # pieces so that "\n" merges too.
        lines = text.splitlines(keepends=True)
        tok.train_from_iterator(lines, trainer=trainer, length=len(lines))
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"SubwordTokenizer(vocab_size={self.vocab_size}, byte-level BPE)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubwordTokenizer) and self._tok.to_str() == other._tok.to_str()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (any string: byte-level BPE has no unknown token)."""
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids of `text` as a compact NumPy array (uint16 when the vocabulary fits).

        The text is cut into lines (newline kept), as in training, and the lines are encoded by
        the library's parallel batch encoder: no token spans a line end, so a prompt encodes
        the same alone and inside the corpus."""
        if not isinstance(text, str):
            raise TypeError(f"SubwordTokenizer.encode expects a str, got {type(text).__name__}")
        lines = text.splitlines(keepends=True)
        encs = self._tok.encode_batch(lines, add_special_tokens=False)
        ids = [i for e in encs for i in e.ids]
        return np.asarray(ids, dtype=token_dtype(self.vocab_size))

    def decode(self, ids: Any) -> str:
        """The text of token ids (a list, NumPy array or descent Tensor of ints)."""
        if isinstance(ids, Tensor):
            ids = ids.numpy()
        arr = np.asarray(ids).reshape(-1)
        if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= len(self)):
            bad = [int(v) for v in arr.tolist() if not 0 <= v < len(self)][:5]
            raise ValueError(
                f"SubwordTokenizer.decode: ids {bad} are outside [0, {self.vocab_size}) or not "
                "integers"
            )
        return self._tok.decode(arr.tolist(), skip_special_tokens=False)

    def to_dict(self) -> dict:
        """A JSON-serialisable description: the library's own JSON as a string (no pickle)."""
        return {"type": "subword", "library": "tokenizers", "json": self._tok.to_str()}

    @classmethod
    def from_dict(cls, d: dict) -> SubwordTokenizer:
        """Rebuild a tokenizer from `to_dict()` output."""
        if not isinstance(d, dict) or d.get("type") != "subword" or not isinstance(d.get("json"),
                                                                                   str):
            raise ValueError(
                "SubwordTokenizer.from_dict: expected {'type': 'subword', 'json': str}, got "
                f"{str(d)[:80]!r}"
            )
        return cls(_library().Tokenizer.from_str(d["json"]))


def tokenizer_from_dict(d: dict):
    """A CharTokenizer or SubwordTokenizer from its `to_dict()` output (by its 'type')."""
    kind = d.get("type") if isinstance(d, dict) else None
    if kind == "subword":
        return SubwordTokenizer.from_dict(d)
    if kind == "char":
        return CharTokenizer.from_dict(d)
    raise ValueError(f"tokenizer_from_dict: unknown tokenizer type {kind!r}; expected 'char' "
                     "or 'subword'")  # fmt: skip


def loss_in_units(loss_per_token: float, num_tokens: int, text: str) -> dict[str, float]:
    """Convert a mean cross-entropy per token (nats) over `text` into comparable units.

    The total information is loss_per_token * num_tokens nats; spread over the text's
    characters and UTF-8 bytes it gives:

    Returns:
        {'per_token': nats/token, 'per_char': nats/char, 'bits_per_char': bits/char,
         'bits_per_byte': bits/byte, 'chars_per_token': characters per token}
    """
    if num_tokens <= 0 or not text:
        raise ValueError("loss_in_units: needs num_tokens > 0 and a non-empty text")
    total = float(loss_per_token) * num_tokens  # nats
    n_chars, n_bytes = len(text), len(text.encode("utf-8"))
    return {
        "per_token": float(loss_per_token),
        "per_char": total / n_chars,
        "bits_per_char": total / n_chars / math.log(2),
        "bits_per_byte": total / n_bytes / math.log(2),
        "chars_per_token": n_chars / num_tokens,
    }
