"""Text for language models: a character tokenizer and a token stream of random windows.

`CharTokenizer` maps each distinct character of a text to an integer (sorted by code point, as
nanoGPT's shakespeare_char does) and serialises to a small JSON dict that checkpoints carry.

`TokenStream` holds a whole encoded corpus as one compact integer array (uint16 when the
vocabulary fits), split into train and val parts, and draws batches of random windows for
next-token prediction the nanoGPT way: `y` is `x` shifted left by one token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..creation import Generator
from ..tensor import Tensor


class CharTokenizer:
    """Character-level tokenizer: the vocabulary is the sorted set of characters of `text`.

    Args:
        text: the text whose distinct characters form the vocabulary.
        chars: the vocabulary itself, in id order (used by `from_dict`); overrides `text`.

    Example:
        >>> tok = CharTokenizer("hello world")
        >>> tok.decode(tok.encode("hello")) == "hello"
        True
    """

    def __init__(self, text: str = "", *, chars: Iterable[str] | None = None) -> None:
        vocab = list(chars) if chars is not None else sorted(set(text))
        if not vocab:
            raise ValueError("CharTokenizer: the vocabulary is empty; build it from some text")
        if any(not isinstance(c, str) or len(c) != 1 for c in vocab) or len(set(vocab)) != len(
            vocab
        ):
            raise ValueError("CharTokenizer: chars must be distinct single characters")
        self.chars: list[str] = vocab
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(vocab)}
        self.itos: dict[int, str] = dict(enumerate(vocab))
        # Sorted code points and their ids, for vectorised encoding with searchsorted.
        codes = np.array([ord(c) for c in vocab], dtype=np.uint32)
        self._order = np.argsort(codes, kind="stable")
        self._sorted_codes = codes[self._order]

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is the sorted distinct characters of `text`."""
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` as a list of ints.

        Raises:
            ValueError: naming the first character that is not in the vocabulary.
        """
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids of `text` as a compact NumPy array (uint16 when the vocabulary fits)."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode expects a str, got {type(text).__name__}")
        # UTF-32 gives one uint32 code point per character, so the lookup is vectorised.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        pos = np.searchsorted(self._sorted_codes, codes)
        pos_c = np.minimum(pos, len(self._sorted_codes) - 1)
        bad = self._sorted_codes[pos_c] != codes
        if bad.any():
            i = int(np.argmax(bad))
            ch = text[i]
            raise ValueError(
                f"CharTokenizer.encode: character {ch!r} (U+{ord(ch):04X}) at position {i} is "
                f"not in the vocabulary of {self.vocab_size} characters; build the tokenizer "
                "from text that contains it"
            )
        return self._order[pos_c].astype(token_dtype(self.vocab_size))

    def decode(self, ids: Any) -> str:
        """The text of token ids (a list, NumPy array or descent Tensor of ints).

        Raises:
            ValueError: for ids outside `[0, vocab_size)`.
        """
        if isinstance(ids, Tensor):
            ids = ids.numpy()
        arr = np.asarray(ids).reshape(-1)
        if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= len(self)):
            bad = [int(v) for v in arr if not (0 <= v < len(self)) or v != int(v)][:5]
            raise ValueError(
                f"CharTokenizer.decode: ids {bad} are outside [0, {self.vocab_size}) or not "
                "integers"
            )
        chars = self.chars
        return "".join(chars[i] for i in arr.tolist())

    def to_dict(self) -> dict:
        """A JSON-serialisable description (stored in checkpoints)."""
        return {"type": "char", "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        """Rebuild a tokenizer from `to_dict()` output."""
        if (
            not isinstance(d, dict)
            or d.get("type") != "char"
            or not isinstance(d.get("chars"), str)
        ):
            raise ValueError(
                "CharTokenizer.from_dict: expected {'type': 'char', 'chars': str}, got "
                f"{str(d)[:80]!r}"
            )
        return cls(chars=list(d["chars"]))


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds ids below `vocab_size` (uint16 or uint32)."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


class TokenStream:
    """An encoded corpus, split into train/val, that serves random windows (nanoGPT's get_batch).

    The first `1 - val_fraction` of the tokens are the train split, the rest the val split
    (contiguous, as nanoGPT does, so val text is unseen text).

    Windows are drawn from the stream's own generator (seeded by `seed`) unless `get_batch` is
    given one; `state_dict()` / `load_state_dict()` save and restore that generator so a resumed
    run draws exactly the batches the uninterrupted run would have drawn.

    Sharding for distributed training: with `world_size > 1` every rank draws the same global
    batch of `batch_size * world_size` windows from the shared seed and keeps the slice
    `[rank * batch_size, (rank + 1) * batch_size)`. Ranks therefore see different windows, the
    generators of all ranks stay in step (one state to checkpoint), and `world_size` ranks with
    batch `B` see exactly the windows a single process with batch `B * world_size` would see.

    Args:
        tokens: the encoded corpus (1-D ints), or a `str` to encode with `tokenizer`.
        tokenizer: a `CharTokenizer`; built from the text when `tokens` is a str and this is None.
        val_fraction: share of tokens held out for validation (0.1 as in nanoGPT).
        seed: seed of the stream's generator.
        rank: this process's rank (distributed data parallel).
        world_size: number of ranks.
        block_size: default window length for `get_batch` (optional).

    Example:
        >>> stream = TokenStream(text, seed=1337)
        >>> x, y = stream.get_batch("train", batch_size=12, block_size=64)  # (12, 64) int64
    """

    def __init__(
        self,
        tokens: Any,
        tokenizer: CharTokenizer | None = None,
        val_fraction: float = 0.1,
        seed: int = 1337,
        rank: int = 0,
        world_size: int = 1,
        block_size: int | None = None,
    ) -> None:
        if isinstance(tokens, str):
            tokenizer = tokenizer or CharTokenizer(tokens)
            data = tokenizer.encode_array(tokens)
        else:
            if isinstance(tokens, Tensor):
                tokens = tokens.numpy()
            data = np.asarray(tokens).reshape(-1)
            if data.size and data.dtype.kind not in "iu":
                raise TypeError(f"TokenStream: tokens must be integers, got dtype {data.dtype}")
            if data.size and data.min() < 0:
                raise ValueError("TokenStream: tokens must be non-negative ids")
            vocab = tokenizer.vocab_size if tokenizer else (int(data.max()) + 1 if data.size else 1)
            data = data.astype(token_dtype(vocab))
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"TokenStream: val_fraction must be in [0, 1), got {val_fraction}")
        if not (isinstance(world_size, int) and world_size >= 1 and 0 <= rank < world_size):
            raise ValueError(
                f"TokenStream: need 0 <= rank < world_size, got rank={rank}, "
                f"world_size={world_size}"
            )
        self.tokenizer = tokenizer
        self.data = data  # (N,) uint16/uint32: 2 bytes per character for small vocabularies
        n_train = int(len(data) * (1.0 - val_fraction))
        self.splits = {"train": data[:n_train], "val": data[n_train:]}
        self.val_fraction = float(val_fraction)
        self.rank = rank
        self.world_size = world_size
        self.block_size = block_size
        self.seed = int(seed)
        self.generator = Generator(self.seed)

    @property
    def train(self) -> np.ndarray:
        return self.splits["train"]

    @property
    def val(self) -> np.ndarray:
        return self.splits["val"]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return (
            f"TokenStream(tokens={len(self.data)}, train={len(self.train)}, "
            f"val={len(self.val)}, dtype={self.data.dtype}, rank={self.rank}/{self.world_size})"
        )

    def get_batch(
        self,
        split: str,
        batch_size: int,
        block_size: int | None = None,
        generator: Generator | None = None,
        device: str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """A batch of random windows for next-token prediction.

        Args:
            split: 'train' or 'val'.
            batch_size: windows per rank (B).
            block_size: tokens per window (T); the stream's `block_size` when None.
            generator: where the window starts come from (the stream's own when None).
            device: move the batch there ('cuda'); CPU when None.

        Returns:
            `(x, y)`, int64 Tensors of shape (B, T) with `y[:, t] = x[:, t + 1]` in the corpus.

        Raises:
            ValueError: for an unknown split or a split shorter than `block_size + 1` tokens.
        """
        if split not in self.splits:
            raise ValueError(
                f"TokenStream.get_batch: split must be 'train' or 'val', got {split!r}"
            )
        data = self.splits[split]
        if block_size is None:
            if self.block_size is None:
                raise ValueError("TokenStream.get_batch: pass block_size (the stream has none)")
            block_size = self.block_size
        if len(data) <= block_size:
            raise ValueError(
                f"TokenStream.get_batch: the {split} split has {len(data)} tokens, fewer than "
                f"block_size + 1 = {block_size + 1}; use a smaller block_size or more text"
            )
        rng = (generator or self.generator).numpy_rng
        # Every rank draws the global batch, then keeps its own slice (see the class docstring).
        starts = rng.integers(0, len(data) - block_size, size=batch_size * self.world_size)
        starts = starts[self.rank * batch_size : (self.rank + 1) * batch_size]  # (B,)
        idx = starts[:, None] + np.arange(block_size + 1)  # (B, T + 1)
        window = data[idx].astype(np.int64)  # (B, T + 1)
        x = Tensor._wrap(np.ascontiguousarray(window[:, :-1]))  # (B, T)
        y = Tensor._wrap(np.ascontiguousarray(window[:, 1:]))  # (B, T)
        if device is not None:
            x, y = x.to(device), y.to(device)
        return x, y

    def state_dict(self) -> dict:
        """JSON-serialisable state (the generator), for exact resume from a checkpoint."""
        # the generator's uint8 state as a list of byte values (JSON has no tensors)
        return {"seed": self.seed, "generator": self.generator.get_state().tolist()}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output: the next batches equal those of the original run."""
        self.seed = int(state["seed"])
        gen = state["generator"]
        if isinstance(gen, list):  # (a dict: the form saved before 2026-12-05, taken as is)
            gen = Tensor._wrap(np.asarray(gen, dtype=np.uint8))
        self.generator.set_state(gen)

    def windows(self, split: str, block_size: int, stride: int | None = None) -> TokenWindows:
        """The split as a Dataset of fixed windows (for a DataLoader or a full evaluation pass)."""
        return TokenWindows(self.splits[split], block_size, stride)


class TokenWindows:
    """A map-style dataset of windows `(x, y)` of a token array, `stride` tokens apart.

    Item `i` starts at `i * stride` (default `stride = block_size`: non-overlapping windows).
    """

    def __init__(self, data: np.ndarray, block_size: int, stride: int | None = None) -> None:
        self.data = data
        self.block_size = int(block_size)
        self.stride = int(stride or block_size)
        if len(data) <= self.block_size:
            raise ValueError(
                f"TokenWindows: {len(data)} tokens is too few for block_size {block_size}"
            )

    def __len__(self) -> int:
        return (len(self.data) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.get_batch(np.array([i]))
        return Tensor._wrap(x._data[0]), Tensor._wrap(y._data[0])  # (T,), (T,)

    def get_batch(self, indices: Any) -> tuple[Tensor, Tensor]:
        """Windows `indices` stacked: `(x, y)` int64 of shape (B, T)."""
        ind = np.asarray(indices, dtype=np.int64)
        if ind.size and (ind.min() < -len(self) or ind.max() >= len(self)):
            raise IndexError(f"TokenWindows: index out of range for length {len(self)}")
        ind = ind % len(self)
        idx = (ind * self.stride)[:, None] + np.arange(self.block_size + 1)  # (B, T + 1)
        window = self.data[idx].astype(np.int64)
        return (
            Tensor._wrap(np.ascontiguousarray(window[:, :-1])),
            Tensor._wrap(np.ascontiguousarray(window[:, 1:])),
        )
