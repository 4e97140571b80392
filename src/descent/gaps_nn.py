"""PyTorch's top-level names for neural-network functions (`torch.conv2d`, `torch.dropout`,
`torch.layer_norm`, ...) that descent lacked until 2026-12-04 (docs/torch_gaps_nn.md).

Each keeps torch's own top-level (ATen) signature, which differs from torch.nn.functional's in
places: `torch.embedding(weight, indices)` takes the weight first, `torch.dropout(input, p,
train)` has no default for `train`, `torch.batch_norm` lists weight and bias before the running
statistics, and the losses take `reduction` as an int (0 'none', 1 'mean', 2 'sum'). Each maps
its arguments onto descent.nn.functional, which it imports on first call: `import descent`
does not load descent.nn (a module above this one in the layers, see pyproject.toml).

This file holds convolutions, dropout, embeddings, normalization and losses; activations,
pooling, the recurrent cells, sampling grids and the `native_*` functions are in
`gaps_nn_more.py`, re-exported here.
"""

from __future__ import annotations

import numbers

from . import backend
from .errors import DescentError
from .gaps_nn_more import *  # noqa: F403
from .gaps_nn_more import _F, _nn_inplace
from .gaps_nn_more import __all__ as _more_all
from .ops._common import as_tensor

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "convolution", "conv_tbc",
    "dropout", "dropout_", "alpha_dropout", "alpha_dropout_", "feature_dropout",
    "feature_dropout_", "feature_alpha_dropout", "feature_alpha_dropout_",
    "embedding", "embedding_bag", "embedding_renorm_",
    "layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm",
    "kl_div", "binary_cross_entropy_with_logits", "poisson_nll_loss", "cosine_embedding_loss",
    "hinge_embedding_loss", "margin_ranking_loss", "triplet_margin_loss", "ctc_loss",
    *_more_all,
]  # fmt: skip

# ATen's reduction enum (at::Reduction): the top-level losses take it as an int. The schemas
# give reduction=1 (Mean) as the default, but torch 2.13's Python binding applies 0 (none) when
# the argument is left out (torch.kl_div(x, t) has x's shape): the defaults here follow what
# torch does, so a program that leaves it out gets the same tensor.
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(reduction, op: str) -> str:
    """The nn.functional name of ATen's int reduction; a string or other value is an error, as
    in torch (whose top-level losses accept only the int)."""
    if isinstance(reduction, bool) or not isinstance(reduction, numbers.Integral):
        raise TypeError(
            f"{op}(): reduction must be an int (0 'none', 1 'mean', 2 'sum'), got "
            f"{reduction!r}; torch.nn.functional.{op} takes the string"
        )
    if int(reduction) not in _REDUCTIONS:
        raise DescentError(f"{op}(): reduction must be 0 (none), 1 (mean) or 2 (sum), got "
                         f"{reduction}")  # fmt: skip
    return _REDUCTIONS[int(reduction)]


# -- convolutions -------------------------------------------------------------------------------
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.conv1d: as torch.nn.functional.conv1d (padding may be 'valid' or 'same')."""
    return _F().conv1d(input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.conv2d: as torch.nn.functional.conv2d."""
    return _F().conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.conv3d: as torch.nn.functional.conv3d."""
    return _F().conv3d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):  # fmt: skip
    """torch.conv_transpose1d: as torch.nn.functional.conv_transpose1d (groups before
    dilation)."""
    return _F().conv_transpose1d(input, weight, bias, stride, padding, output_padding, groups,
                                 dilation)  # fmt: skip


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):  # fmt: skip
    """torch.conv_transpose2d: as torch.nn.functional.conv_transpose2d."""
    return _F().conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
                                 dilation)  # fmt: skip


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):  # fmt: skip
    """torch.conv_transpose3d: as torch.nn.functional.conv_transpose3d."""
    return _F().conv_transpose3d(input, weight, bias, stride, padding, output_padding, groups,
                                 dilation)  # fmt: skip


def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
                groups):  # fmt: skip
    """torch.convolution: the convolution (or, `transposed`, its transpose) of as many spatial
    dims as `weight` has beyond two; every argument is required, as in torch. `output_padding`
    counts only when transposed (torch ignores it otherwise).

    Raises:
        DescentError (a RuntimeError): the weight is not 3-, 4- or 5-dimensional.
    """
    w = as_tensor(weight)
    dims = w.ndim - 2
    if dims not in (1, 2, 3):
        raise DescentError(
            f"convolution: weight must have 3, 4 or 5 dims (out, in/groups, *kernel), got shape "
            f"{tuple(w.shape)}"
        )
    F = _F()
    if transposed:
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[dims - 1]
        return fn(input, w, bias, stride, padding, output_padding, groups, dilation)
    fn = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    return fn(input, w, bias, stride, padding, dilation, groups)


def conv_tbc(input, weight, bias, pad=0):
    """torch.conv_tbc: a 1-d convolution in (time, batch, channel) layout.

    input (T, B, Cin), weight (K, Cin, Cout), bias (Cout,) -> (T + 2 pad - K + 1, B, Cout): the
    conv1d of input.permute(1, 2, 0) with weight.permute(2, 1, 0), permuted back.

    Raises:
        DescentError (a RuntimeError): the shapes do not fit that layout.
    """
    x, w, b = as_tensor(input), as_tensor(weight), as_tensor(bias)
    if (
        x.ndim != 3
        or w.ndim != 3
        or b.ndim != 1
        or x.shape[2] != w.shape[1]
        or (b.shape[0] != w.shape[2])
    ):
        raise DescentError(
            f"conv_tbc: expected input (T, B, Cin), weight (K, Cin, Cout) and bias (Cout,), got "
            f"{tuple(x.shape)}, {tuple(w.shape)} and {tuple(b.shape)}"
        )
    out = _F().conv1d(x.permute(1, 2, 0), w.permute(2, 1, 0), b, 1, pad)  # (B, Cout, T')
    return out.permute(2, 0, 1)


# -- dropout (train is required, as in torch) ---------------------------------------------------
def _check_p(p, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise DescentError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def dropout(input, p, train):
    """torch.dropout(input, p, train): torch.nn.functional.dropout with `train` required."""
    _check_p(p, "dropout")
    return _F().dropout(input, p, bool(train))


def alpha_dropout(input, p, train):
    """torch.alpha_dropout: SELU-preserving dropout (torch.nn.functional.alpha_dropout)."""
    _check_p(p, "alpha_dropout")
    return _F().alpha_dropout(input, p, bool(train))


def feature_dropout(input, p, train):
    """torch.feature_dropout: zero whole channels, input (N, C, *): one draw per (n, c).

    Raises:
        RuntimeError: the input has fewer than 2 dims (torch's rule).
    """
    _check_p(p, "feature_dropout")
    x = as_tensor(input)
    if x.ndim < 2:
        raise DescentError(f"feature_dropout: Feature dropout requires at least 2 dimensions in "
                           f"the input, got shape {tuple(x.shape)}")  # fmt: skip
    if not train or p == 0.0:
        return x
    from .nn.functional._dropout import _feature_dropout  # noqa: PLC0415 - nn loads on first use

    return _feature_dropout(x, p, batched=True)


def feature_alpha_dropout(input, p, train):
    """torch.feature_alpha_dropout: alpha dropout of whole channels, input (N, C, *)."""
    _check_p(p, "feature_alpha_dropout")
    x = as_tensor(input)
    if x.ndim < 2:
        raise DescentError(f"feature_alpha_dropout: Feature dropout requires at least 2 "
                           f"dimensions in the input, got shape {tuple(x.shape)}")  # fmt: skip
    return _F().feature_alpha_dropout(x, p, bool(train))


def dropout_(input, p, train):
    """torch.dropout_: dropout written into `input` (descent's in-place rules)."""
    return _nn_inplace(input, lambda t: dropout(t, p, train), "dropout_")


def alpha_dropout_(input, p, train):
    """torch.alpha_dropout_: alpha_dropout written into `input`."""
    return _nn_inplace(input, lambda t: alpha_dropout(t, p, train), "alpha_dropout_")


def feature_dropout_(input, p, train):
    """torch.feature_dropout_: feature_dropout written into `input`."""
    return _nn_inplace(input, lambda t: feature_dropout(t, p, train), "feature_dropout_")


def feature_alpha_dropout_(input, p, train):
    """torch.feature_alpha_dropout_: feature_alpha_dropout written into `input`."""
    fn = lambda t: feature_alpha_dropout(t, p, train)  # noqa: E731
    return _nn_inplace(input, fn, "feature_alpha_dropout_")


# -- embeddings (the weight comes first) -------------------------------------------------------
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """torch.embedding(weight, indices, ...): rows of `weight` (note the order: F.embedding
    takes the indices first). padding_idx -1 (any negative) means none, as in ATen: the row at
    padding_idx gets no gradient. scale_grad_by_freq divides each row's gradient by the count
    of its index in `indices`; `sparse=True` gives the weight a sparse COO gradient (both as
    F.embedding's).
    """
    pad = None if padding_idx is None or padding_idx < 0 else int(padding_idx)
    return _F().embedding(indices, weight, pad, None, 2.0, scale_grad_by_freq, sparse)


def embedding_bag(
    weight,
    indices,
    offsets,
    scale_grad_by_freq=False,
    mode=0,
    sparse=False,
    per_sample_weights=None,
    include_last_offset=False,
    padding_idx=None,
):
    """torch.embedding_bag: (output, offset2bag, bag_size, max_indices), mode 0 sum, 1 mean,
    2 max; the weight comes first.

    `output` is torch.nn.functional.embedding_bag's. The other three are ATen's bookkeeping,
    given as torch's CPU kernel gives them: offset2bag (the bag of each index; empty for a
    float32 sum), bag_size (non-padding indices per bag; zeros for sum) and max_indices (the
    weight row of each maximum for max; bag_size for mean; zeros for sum). No gradient.
    """
    import numpy as np  # noqa: PLC0415

    from .creation import tensor  # noqa: PLC0415

    if mode not in (0, 1, 2):
        raise DescentError(f"embedding_bag: mode must be 0 (sum), 1 (mean) or 2 (max), got {mode}")
    w, idx, off = as_tensor(weight), as_tensor(indices), as_tensor(offsets)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += w.shape[0]
    out = _F().embedding_bag(
        idx, w, off, None, 2, scale_grad_by_freq, ("sum", "mean", "max")[mode], sparse,
        per_sample_weights, include_last_offset, padding_idx,
    )  # fmt: skip
    i, o = np.asarray(idx.numpy()).reshape(-1), np.asarray(off.numpy()).reshape(-1)
    bags = out.shape[0]
    starts = o[:bags]
    ends = np.append(o[1:], i.size)[:bags] if not include_last_offset else o[1 : bags + 1]
    offset2bag = np.repeat(np.arange(bags), np.maximum(ends - starts, 0)).astype(np.int64)
    keep = i != padding_idx if padding_idx is not None else np.ones(i.size, bool)
    bag_size = np.array([keep[s:e].sum() for s, e in zip(starts, ends)], np.int64)
    if mode == 0:  # torch's float32 sum kernel leaves offset2bag empty; others fill it
        if w._data.dtype == np.float32 and padding_idx is None:
            offset2bag = np.zeros(0, np.int64)
        bag_size = max_indices = np.zeros(o.size, np.int64)  # one per offset, as torch
    elif mode == 1:
        max_indices = bag_size
    else:  # the row of each column's maximum, per bag
        wd = w.detach().numpy()
        max_indices = np.zeros((bags, w.shape[1]), np.int64)
        for b, (s, e) in enumerate(zip(starts, ends)):
            rows = i[s:e][keep[s:e]]
            if rows.size:
                max_indices[b] = rows[np.argmax(wd[rows], axis=0)]
    return (out, tensor(offset2bag), tensor(bag_size), tensor(max_indices))


def embedding_renorm_(weight, indices, max_norm, norm_type):
    """torch.embedding_renorm_: rescale, in place, each row of `weight` named in `indices`
    whose norm_type-norm exceeds max_norm to norm max_norm / (norm + 1e-7) * norm (PyTorch's
    constant). Not recorded by autograd (as torch: F.embedding's max_norm runs it under
    no_grad); the version counter goes up. Returns `weight`."""
    import numpy as np  # noqa: PLC0415

    from .inplace_unary import write_values  # noqa: PLC0415

    w = as_tensor(weight)
    rows = np.unique(np.asarray(as_tensor(indices).numpy()).reshape(-1))
    if rows.size == 0:
        return w
    xp = backend.get_array_module(w._data)
    sel = w._data[xp.asarray(rows)]  # (R, dim)
    norms = (xp.abs(sel) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(sel.dtype)
    new = w._data.copy()
    new[xp.asarray(rows)] = sel * scale[:, None]
    write_values(w, new)
    w._version += 1
    return w


# -- normalization (ATen's argument order) ------------------------------------------------------
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    """torch.layer_norm: torch.nn.functional.layer_norm (cudnn_enable is ignored)."""
    return _F().layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    """torch.group_norm: torch.nn.functional.group_norm (cudnn_enabled is ignored)."""
    return _F().group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps,
               cudnn_enabled):  # fmt: skip
    """torch.batch_norm: every argument required, weight and bias BEFORE the running statistics
    (torch.nn.functional.batch_norm takes the statistics first). Training updates the running
    statistics in place, as F.batch_norm."""
    from .nn.functional._normalization import batch_norm_unchecked  # noqa: PLC0415

    # (the kernel: F.batch_norm's Python checks of eps and of one value per channel are not
    # torch.batch_norm's)
    return batch_norm_unchecked(input, running_mean, running_var, weight, bias, bool(training),
                                momentum, eps)  # fmt: skip


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps,
                  cudnn_enabled):  # fmt: skip
    """torch.instance_norm: every argument required, weight and bias first."""
    return _F().instance_norm(input, running_mean, running_var, weight, bias,
                              bool(use_input_stats), momentum, eps)  # fmt: skip


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """torch.rms_norm: torch.nn.functional.rms_norm (eps None: the dtype's machine epsilon)."""
    return _F().rms_norm(input, normalized_shape, weight, eps)


# -- losses (reduction is an int) ---------------------------------------------------------------
def kl_div(input, target, reduction=0, *, log_target=False):
    """torch.kl_div: reduction 1 is the elementwise mean ('mean', not 'batchmean')."""
    red = _reduction(reduction, "kl_div")
    return _F().kl_div(input, target, reduction=red, log_target=log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):
    """torch.binary_cross_entropy_with_logits: pos_weight before reduction (an int)."""
    red = _reduction(reduction, "binary_cross_entropy_with_logits")
    return _F().binary_cross_entropy_with_logits(input, target, weight, reduction=red,
                                                 pos_weight=pos_weight)  # fmt: skip


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    """torch.poisson_nll_loss: every argument required, reduction an int."""
    red = _reduction(reduction, "poisson_nll_loss")
    return _F().poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=red)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    """torch.cosine_embedding_loss."""
    red = _reduction(reduction, "cosine_embedding_loss")
    return _F().cosine_embedding_loss(input1, input2, target, margin, reduction=red)


def hinge_embedding_loss(input, target, margin=1.0, reduction=0):
    """torch.hinge_embedding_loss."""
    red = _reduction(reduction, "hinge_embedding_loss")
    return _F().hinge_embedding_loss(input, target, margin, reduction=red)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    """torch.margin_ranking_loss."""
    red = _reduction(reduction, "margin_ranking_loss")
    return _F().margin_ranking_loss(input1, input2, target, margin, reduction=red)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        reduction=0):  # fmt: skip
    """torch.triplet_margin_loss."""
    red = _reduction(reduction, "triplet_margin_loss")
    return _F().triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                    reduction=red)  # fmt: skip


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=0,
             zero_infinity=False):  # fmt: skip
    """torch.ctc_loss: reduction 1 divides each loss by its target length, then averages."""
    red = _reduction(reduction, "ctc_loss")
    return _F().ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, red,
                         zero_infinity)  # fmt: skip
