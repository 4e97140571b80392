"""`torch.nn.attention.flex_attention`: attention with a user's score and mask functions.

    from descent.nn.attention.flex_attention import flex_attention, create_block_mask

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    def alibi(score, b, h, q_idx, kv_idx):
        return score - slopes[h] * (q_idx - kv_idx)

    mask = create_block_mask(causal, B=None, H=None, Q_LEN=T, KV_LEN=T)
    out = flex_attention(q, k, v, score_mod=alibi, block_mask=mask)   # (B, H, T, Ev)

PyTorch compiles `score_mod(score, b, h, q_idx, kv_idx)` and `mask_mod(b, h, q_idx, kv_idx)`
(written for one score, over scalar indices) into a fused kernel that skips the blocks the mask
empties. descent calls them once on broadcast index tensors (`b` of shape (B, 1, 1, 1), `h`
(1, H, 1, 1), `q_idx` (1, 1, L, 1), `kv_idx` (1, 1, 1, S), int64), which is the same function
for any score_mod made of tensor operations (arithmetic, comparisons, `where`, indexing a
captured tensor such as a bias table), and computes the dense attention: `softmax(score_mod(q
k^T * scale) masked to -inf) v`. Its gradients (with respect to q, k, v and any tensor the
score_mod captures) are the ops' own: descent trains through flex_attention on the CPU, where
PyTorch 2.13's refuses backward. A row that the mask empties gives zeros (and a log-sum-exp of
-inf), as PyTorch's does. Memory is O(L * S) per head: the blocks are not skipped.

`BlockMask` keeps PyTorch's block-sparse description (`kv_num_blocks`, `kv_indices`,
`full_kv_num_blocks`, `full_kv_indices`, the q-side ones, `to_dense()`, `sparsity()`, the printed
grid) computed from the mask at `BLOCK_SIZE` granularity; `create_mask` gives the dense boolean
mask; `and_masks`, `or_masks` and `noop_mask` combine mask functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ... import creation
from ...tensor import Tensor
from .. import functional as F

__all__ = ["flex_attention", "create_block_mask", "create_mask", "BlockMask", "and_masks",
           "or_masks", "noop_mask", "AuxRequest", "AuxOutput"]  # fmt: skip


def noop_mask(b, h, q_idx, kv_idx):
    """Every query sees every key."""
    return q_idx >= q_idx.new_full((), -1) if isinstance(q_idx, Tensor) else True


def and_masks(*mask_mods: Callable) -> Callable:
    """A mask_mod true where every one of `mask_mods` is."""
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def mask(b, h, q_idx, kv_idx):
        out = _true(q_idx)
        for m in mask_mods:
            out = out & m(b, h, q_idx, kv_idx)
        return out

    return mask


def or_masks(*mask_mods: Callable) -> Callable:
    """A mask_mod true where any one of `mask_mods` is."""
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def mask(b, h, q_idx, kv_idx):
        out = ~_true(q_idx)
        for m in mask_mods:
            out = out | m(b, h, q_idx, kv_idx)
        return out

    return mask


def _true(like: Tensor) -> Tensor:
    return creation.ones((), dtype="bool", device=like.device)


def _indices(B: int, H: int, L: int, S: int, device=None):
    """Broadcast int64 index tensors b, h, q_idx, kv_idx for a (B, H, L, S) score grid."""
    def ar(n, shape):
        return creation.arange(n, dtype="int64", device=device).reshape(shape)

    return (ar(B, (B, 1, 1, 1)), ar(H, (1, H, 1, 1)), ar(L, (1, 1, L, 1)),
            ar(S, (1, 1, 1, S)))  # fmt: skip


def _dense_mask(mask_mod: Callable, B: int, H: int, L: int, S: int, device=None) -> Tensor:
    b, h, qi, ki = _indices(B, H, L, S, device)
    m = mask_mod(b, h, qi, ki)
    if not isinstance(m, Tensor):
        m = creation.full((1, 1, 1, 1), bool(m), dtype="bool", device=device)
    if str(m.dtype) != "descent.bool":
        raise TypeError(f"flex_attention: mask_mod must return a bool tensor, got {m.dtype}")
    return m.expand(B, H, L, S)


def create_mask(mod_fn: Callable, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int,
                device=None) -> Tensor:  # fmt: skip
    """The dense (B, H, Q_LEN, KV_LEN) bool mask of a mask_mod (B or H None: 1)."""
    return _dense_mask(mod_fn, B or 1, H or 1, Q_LEN, KV_LEN, device).contiguous()


class AuxRequest:
    """PyTorch's request for auxiliary outputs (`lse=True`, `max_scores=True`)."""

    def __init__(self, lse: bool = False, max_scores: bool = False) -> None:
        self.lse, self.max_scores = lse, max_scores


class AuxOutput:
    """The auxiliary outputs: `lse` (natural log-sum-exp per row) and `max_scores`."""

    def __init__(self, lse=None, max_scores=None) -> None:
        self.lse, self.max_scores = lse, max_scores


class BlockMask:
    """A mask_mod over a (B, H, Q_LEN, KV_LEN) grid with its block-sparse description.

    A (q block, kv block) pair is empty (all False: skipped by PyTorch's kernel), full (all
    True: no mask needed) or partial; `kv_num_blocks` / `kv_indices` list each q block's
    partial kv blocks first, `full_kv_*` its full ones; the `q_*` fields are the transpose."""

    def __init__(self, mask_mod: Callable, shape: tuple, block_size: tuple, dense: np.ndarray,
                 device=None) -> None:  # fmt: skip
        self.mask_mod = mask_mod
        self.shape = tuple(shape)
        self.seq_lengths = (shape[2], shape[3])
        self.BLOCK_SIZE = block_size
        self._device = device
        bq, bk = block_size
        B, H, L, S = shape
        nq, nk = -(-L // bq), -(-S // bk)
        # a block that reaches past the sequence's end is never full (PyTorch's rule: the
        # padding counts as masked)
        pad = np.zeros((B, H, nq * bq, nk * bk), dtype=bool)
        pad[:, :, :L, :S] = dense
        blocks = pad.reshape(B, H, nq, bq, nk, bk)
        any_true = blocks.any(axis=(3, 5))
        all_true = blocks.all(axis=(3, 5))
        self._partial = any_true & ~all_true
        self._full = all_true
        self.kv_num_blocks, self.kv_indices = self._lists(self._partial)
        self.full_kv_num_blocks, self.full_kv_indices = self._lists(self._full)
        tp = np.swapaxes(self._partial, 2, 3)
        tf = np.swapaxes(self._full, 2, 3)
        self.q_num_blocks, self.q_indices = self._lists(tp)
        self.full_q_num_blocks, self.full_q_indices = self._lists(tf)

    @staticmethod
    def _lists(flags: np.ndarray):
        counts = flags.sum(-1).astype(np.int32)
        order = np.argsort(~flags, axis=-1, kind="stable").astype(np.int32)
        return Tensor._wrap(counts), Tensor._wrap(order)

    def to_dense(self) -> Tensor:
        """(B, H, q blocks, kv blocks) int32: 1 where a block is not empty."""
        return Tensor._wrap((self._partial | self._full).astype(np.int32))

    def numel(self) -> int:
        return int(np.prod(self._partial.shape))

    def sparsity(self) -> float:
        """PyTorch's figure: 100 * (1 - (non-empty blocks x block area) / (B H Q_LEN KV_LEN))."""
        B, H, L, S = self.shape
        computed = (self._partial | self._full).sum() * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1]
        return 100.0 * (1.0 - float(computed) / (B * H * L * S))

    def to_string(self, grid_size=(20, 20), limit: int = 4) -> str:
        dense = self._partial | self._full
        out = []
        B, H = dense.shape[:2]
        for n, (b, h) in enumerate((b, h) for b in range(B) for h in range(H)):
            if n >= limit:
                out.append("...")
                break
            out.append(f"({b}, {h})")
            grid = dense[b, h][: grid_size[0], : grid_size[1]]
            for row in grid:
                out.append("".join("██" if v else "  " for v in row))
            out.append("")
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n"
                f"{self.to_string()})")  # fmt: skip

    def to(self, device) -> BlockMask:
        return self

    def _dense(self, device=None) -> Tensor:
        return _dense_mask(self.mask_mod, *self.shape, device=device)


def create_block_mask(mask_mod: Callable, B: int | None, H: int | None, Q_LEN: int,
                      KV_LEN: int, device=None, BLOCK_SIZE: int | tuple[int, int] = 128,
                      _compile: bool = False, separate_full_blocks: bool = True,
                      compute_dq_write_order: bool = False,
                      dq_kv_order: bool = True) -> BlockMask:  # fmt: skip
    """A BlockMask for `mask_mod` (B or H None: one mask broadcast over that dimension)."""
    bs = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    shape = (B or 1, H or 1, Q_LEN, KV_LEN)
    dense = _dense_mask(mask_mod, *shape, device=device).numpy()
    return BlockMask(mask_mod, shape, bs, dense, device)


def flex_attention(query: Tensor, key: Tensor, value: Tensor, score_mod: Callable | None = None,
                   block_mask: BlockMask | None = None, scale: float | None = None,
                   enable_gqa: bool = False, return_lse: bool = False, kernel_options=None,
                   *, return_aux: AuxRequest | None = None):  # fmt: skip
    """Attention with `score_mod` applied to every score and `block_mask` masking keys (see the
    module docstring). Returns the output (B, Hq, L, Ev), or (output, lse) with return_lse,
    or (output, AuxOutput) with return_aux."""
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise ValueError(
            f"flex_attention: query, key and value must be 4-d (B, H, L, E); got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    B, Hq, L, E = query.shape
    Bk, Hkv, S, Ek = key.shape
    if Ek != E or value.shape[2] != S or value.shape[1] != Hkv:
        raise ValueError(f"flex_attention: key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)} do not fit query {tuple(query.shape)}")  # fmt: skip
    if B != Bk and Bk != 1:
        raise ValueError(f"flex_attention: batch sizes differ: query {B}, key {Bk}")
    if Hq != Hkv:
        if not enable_gqa:
            raise ValueError(f"flex_attention: Expect query and key/value to have the same "
                             f"number of heads but got Hq={Hq} and Hkv={Hkv}. Try setting "
                             f"enable_gqa=True for GQA.")  # fmt: skip
        if Hq % Hkv:
            raise ValueError(f"flex_attention: Expect number of query heads to be a multiple "
                             f"of kv heads for GQA but got Hq={Hq} and Hkv={Hkv}.")  # fmt: skip
        key = key.repeat_interleave(Hq // Hkv, dim=1)
        value = value.repeat_interleave(Hq // Hkv, dim=1)
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    scores = query.matmul(key.transpose(-2, -1)) * scale
    if score_mod is not None:
        scores = score_mod(scores, *_indices(B, Hq, L, S, query.device))
        if tuple(scores.shape) != (B, Hq, L, S):
            scores = scores.expand(B, Hq, L, S)
    keep = None
    if block_mask is not None:
        bB, bH, bL, bS = block_mask.shape
        if (bL, bS) != (L, S):
            raise ValueError(f"flex_attention: block_mask was made for Q_LEN={bL}, KV_LEN={bS} "
                             f"but the inputs have {L} and {S}; create it with their "
                             "lengths")  # fmt: skip
        keep = _dense_mask(block_mask.mask_mod, bB, bH, L, S, query.device)
        scores = scores.masked_fill(keep.logical_not(), float("-inf"))
    lse = scores.logsumexp(dim=-1)
    if keep is not None:
        # a row the mask empties: PyTorch gives zeros (and lse -inf), not softmax's NaN
        empty = keep.any(dim=-1, keepdim=True).logical_not()
        probs = F.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    else:
        probs = F.softmax(scores, dim=-1)
    out = probs.matmul(value).to(query.dtype)
    if return_aux is not None:
        return out, AuxOutput(lse=lse if return_aux.lse else None,
                              max_scores=scores.amax(dim=-1) if return_aux.max_scores else None)
    if return_lse:
        return out, lse
    return out
