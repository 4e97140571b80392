"""AdaptiveLogSoftmaxWithLoss (Grave et al. 2017, "Efficient softmax approximation for GPUs"):
a softmax over a large vocabulary split by frequency into a head (the `cutoffs[0]` most frequent
classes plus one entry per tail cluster) and tail clusters computed through smaller
projections (width in_features / div_value^(i+1)).

    log p(c | x) = head_logprob(x)[c]                                   c in the shortlist
                 = head_logprob(x)[cluster i] + tail_i_logprob(x)[c - cutoff_i]    otherwise

Same arguments, submodules (`head`, `tail.i.0`, `tail.i.1`), initialisation and results
(`output`, `loss`; `log_prob`, `predict`) as torch.nn.AdaptiveLogSoftmaxWithLoss, so a
PyTorch state_dict loads. Built from descent ops: the gradients come from the engine.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import backend
from ..errors import DescentError
from ..ops.indexing import index_add, index_select, take_along_axis
from ..ops.shape import concatenate
from ..tensor import Tensor
from . import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Args:
        in_features: the input width.
        n_classes: the number of classes.
        cutoffs: increasing class indices in [1, n_classes - 1] splitting the clusters.
        div_value: the projection width of cluster i is in_features // div_value^(i+1).
        head_bias: learn a bias in the head.

    Raises:
        ValueError: cutoffs that are empty, unsorted, repeated or out of range.
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (
            cutoffs != sorted(cutoffs)
            or min(cutoffs) <= 0
            or max(cutoffs) > n_classes - 1
            or len(set(cutoffs)) != len(cutoffs)
            or any(int(c) != c for c in cutoffs)
        ):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an "
                "increasing order, where each value is between 1 and n_classes-1"
            )
        kw = dict(device=device, dtype=dtype)
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))  # fmt: skip

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor):
        """(output, loss): output (N,) the log-probability of each target, loss = -mean.

        Raises:
            RuntimeError: mismatched shapes, or targets outside [0, n_classes - 1].
        """
        t = target_._data if isinstance(target_, Tensor) else np.asarray(target_)
        if t.ndim == 1:
            if input_.shape[0] != t.shape[0]:
                raise DescentError(
                    "Input and target should have the same size in the batch dimension."
                )
            if input_.ndim != 2:
                raise DescentError(
                    f"1D target tensor expects 2D input tensors, but found inputs with size "
                    f"{tuple(input_.shape)}"
                )
        elif t.ndim == 0:
            if input_.ndim != 1:
                raise DescentError(
                    f"0D target tensor expects 1D input tensors, but found inputs with size "
                    f"{tuple(input_.shape)}"
                )
        else:
            raise DescentError("0D or 1D target tensor expected, multi-target not supported")
        batched = t.ndim > 0
        x = input_ if batched else input_.unsqueeze(0)
        target = backend.as_numpy(t).astype(np.int64).reshape(-1)  # (N,)
        n = target.shape[0]
        if n and (target.min() < 0 or target.max() > self.n_classes - 1):
            raise DescentError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{int(target.min())}, {int(target.max())}] were found. "
            )
        xp = backend.get_array_module(x._data)
        # The head's entry for each row: the class itself, or its cluster's entry.
        gather = target.copy()
        output = Tensor._wrap(xp.zeros(n, dtype=x._data.dtype))  # (N,) the tails' log-probs
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            rows = np.flatnonzero((target >= low) & (target < high))
            if rows.size == 0:
                continue
            gather[rows] = self.shortlist_size + i
            subset = index_select(x, 0, xp.asarray(rows))  # (r, in)
            cluster_logprob = F.log_softmax(self.tail[i](subset), dim=1)  # (r, osz)
            local = take_along_axis(cluster_logprob, xp.asarray((target[rows] - low)[:, None]),
                                    axis=1)  # fmt: skip
            output = index_add(output, 0, xp.asarray(rows), local.reshape(-1))
        head_logprob = F.log_softmax(self.head(x), dim=1)  # (N, head_size)
        output = output + take_along_axis(head_logprob, xp.asarray(gather[:, None]), axis=1)[:, 0]
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, x: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = F.log_softmax(head_output, dim=1)  # (N, head_size)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](x), dim=1)
            entry = self.shortlist_size + i
            parts.append(cluster_logprob + head_logprob[:, entry : entry + 1])
        return concatenate(parts, axis=1)  # (N, n_classes)

    def log_prob(self, input: Tensor) -> Tensor:
        """log p(c | x) for every class: (N, n_classes) (or (n_classes,) for a 1-D input)."""
        batched = input.ndim > 1
        x = input if batched else input.unsqueeze(0)
        out = self._get_full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each row (int64): the argmax of log_prob."""
        return self.log_prob(input).argmax(dim=-1)
