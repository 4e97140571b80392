"""PyTorch's known-zero gradient (the zero tensor sgn's backward returns for real inputs)
through reductions and copies, differential against torch 2.13: where PyTorch's backward
formula keeps the zero tensor (sum's expand, logsumexp's product, clone, diag, ...), a nan in
an op's derivative below does not turn it into nan; where PyTorch materializes it (max(x) of
all elements: evenly_distribute_backward), the nan shows, as in PyTorch. Found by
tests/fuzz_extra_dtypes.py (x ** x > sum > sgn: descent's gradient was nan, PyTorch's 0)."""

import math

import numpy as np
import pytest
import torch

import descent

CASES = {
    "sum": lambda m, y: y.sum(),
    "sum dim": lambda m, y: y.sum(0),
    "sum keepdim": lambda m, y: y.sum(0, keepdim=True),
    "mean": lambda m, y: y.mean(),
    "expand sum": lambda m, y: y.expand(3, 2).sum(0),
    "cumsum": lambda m, y: y.cumsum(0),
    "prod": lambda m, y: y.prod(0),
    "amax": lambda m, y: y.amax(0),
    "max all": lambda m, y: y.max(),
    "min dim": lambda m, y: y.min(0)[0],
    "logsumexp": lambda m, y: y.logsumexp(0),
    "nansum": lambda m, y: y.nansum(0),
    "norm": lambda m, y: y.norm(),
    "var": lambda m, y: y.var(0),
    "clone": lambda m, y: y.clone(),
    "diag": lambda m, y: y.diag(),
    "index": lambda m, y: y[0],
    "index_select": lambda m, y: y.index_select(0, m.tensor([1, 0])),
    "gather": lambda m, y: y.gather(0, m.tensor([1, 1])),
    "cat": lambda m, y: m.cat([y, y]),
    "stack": lambda m, y: m.stack([y, y]),
    "repeat": lambda m, y: y.repeat(2),
    "flip": lambda m, y: y.flip(0),
    "roll": lambda m, y: y.roll(1),
    "pad": lambda m, y: m.nn.functional.pad(y, (1, 1)),
    "tril": lambda m, y: y.unsqueeze(0).expand(2, 2).tril(),
    "sort": lambda m, y: y.sort(0)[0],
    "topk": lambda m, y: y.topk(1)[0],
    "softmax": lambda m, y: y.softmax(0),
    "log_softmax": lambda m, y: y.log_softmax(0),
    "where": lambda m, y: m.where(y > 0, y, y * 2),
    "masked_fill": lambda m, y: y.masked_fill(m.tensor([True, False]), 0.0),
    "abs": lambda m, y: y.abs(),
    "exp": lambda m, y: y.exp(),
    "relu": lambda m, y: y.relu(),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_tensor_through_op_as_torch(name, dtype):
    f = CASES[name]
    grads = []
    for m in (torch, descent):
        x = m.tensor(np.array([-0.37, 0.5], dtype), requires_grad=True)
        y = x**x  # nan at -0.37: its derivative too, so only a passed zero keeps x.grad finite
        f(m, y).sgn().sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
    if name in PASSES:  # where descent gave nan before (PyTorch passes its zero tensor)
        assert grads[1][0] == 0.0
    if name == "max all":  # descent gave 0 before (PyTorch materializes the zero tensor)
        assert math.isnan(grads[1][0])


# The cases whose gradient was wrong before the fix (sum, logsumexp, clone, diag's IndexGrad)
PASSES = {"sum", "sum dim", "sum keepdim", "logsumexp", "nansum", "clone", "diag"}
