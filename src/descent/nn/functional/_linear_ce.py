"""F.linear_cross_entropy (torch 2.13): cross_entropy(linear(input, linear_weight), target).

`linear_weight` is (C, *out_features, in_features) and `linear_bias` (C, *out_features): the
logits are (N, C, *out_features), a K-dimensional loss when out_features is not empty.
`ignore_index=None` (the default) ignores no target. `options` (PyTorch's chunking of the
vocabulary, to avoid materialising the logits) is accepted; descent computes the logits whole,
with the same values.
"""

from __future__ import annotations

from ...ops._common import as_tensor
from ._loss import cross_entropy

__all__ = ["linear_cross_entropy"]

_NO_IGNORE = -(2**62)  # no class index reaches it: "ignore nothing"


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction: str = "mean", ignore_index=None, label_smoothing: float = 0.0,
                         options=None):  # fmt: skip
    x, w = as_tensor(input), as_tensor(linear_weight)
    c, out_features, in_features = w.shape[0], tuple(w.shape[1:-1]), w.shape[-1]
    if x.ndim == 1 and w.ndim > 2:
        raise RuntimeError(
            f"linear_cross_entropy: K-dimensional loss defined by linear_weight shape "
            f"{tuple(w.shape)} requires batched input, (N, {in_features}), got input of shape "
            f"{tuple(x.shape)}"
        )
    if ignore_index is not None and as_tensor(target)._data.dtype.kind in "fcV":
        raise RuntimeError(
            f"linear_cross_entropy: ignore_index cannot be specified when target contains "
            f"probabilities (target dtype {as_tensor(target).dtype}); drop ignore_index or "
            f"pass class indices"
        )
    if x.shape[-1] != in_features:
        raise RuntimeError(
            f"linear_cross_entropy: input has {x.shape[-1]} features, linear_weight "
            f"{tuple(w.shape)} expects {in_features}"
        )
    w2 = w.reshape(-1, in_features)
    logits = x @ w2.transpose(0, 1)
    if linear_bias is not None:
        logits = logits + as_tensor(linear_bias).reshape(-1)
    logits = logits.reshape(tuple(x.shape[:-1]) + (c,) + out_features)
    return cross_entropy(logits, target, weight=weight, reduction=reduction,
                         ignore_index=_NO_IGNORE if ignore_index is None else ignore_index,
                         label_smoothing=label_smoothing)  # fmt: skip
