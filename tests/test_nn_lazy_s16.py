"""Lazy modules' placeholders against torch 2.13: UninitializedParameter / UninitializedBuffer
(`is_lazy`) before the first input, in `state_dict` too; `has_uninitialized_params`;
`initialize_parameters` materialises without changing the class, forward changes it;
load_state_dict from a real or a lazy checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

MAKERS = {
    "LazyLinear": (lambda nn: nn.LazyLinear(3), (2, 5)),
    "LazyConv2d": (lambda nn: nn.LazyConv2d(4, 3), (2, 3, 6, 6)),
    "LazyConvTranspose1d": (lambda nn: nn.LazyConvTranspose1d(4, 3), (2, 3, 6)),
    "LazyBatchNorm1d": (lambda nn: nn.LazyBatchNorm1d(), (2, 5)),
    "LazyBatchNorm2d": (lambda nn: nn.LazyBatchNorm2d(), (2, 3, 4, 4)),
    "LazyBatchNorm3d-noaffine": (lambda nn: nn.LazyBatchNorm3d(affine=False), (2, 3, 2, 2, 2)),
    "LazyInstanceNorm2d": (lambda nn: nn.LazyInstanceNorm2d(), (2, 3, 4, 4)),
}


def _kinds(lib, m):
    is_lazy = lib.nn.parameter.is_lazy
    return (
        [(n, type(p).__name__, is_lazy(p)) for n, p in m.named_parameters()],
        [(n, type(b).__name__, is_lazy(b)) for n, b in m.named_buffers()],
        [(k, type(v).__name__, is_lazy(v)) for k, v in m.state_dict().items()],
        m.has_uninitialized_params() if hasattr(m, "has_uninitialized_params") else None,
    )


@pytest.mark.parametrize("name", list(MAKERS))
def test_placeholders_and_materialisation_as_torch(name):
    make, shape = MAKERS[name]
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    d, t = make(ds.nn), make(torch.nn)
    assert _kinds(ds, d) == _kinds(torch, t)
    become = t.cls_to_become.__name__
    assert d.cls_to_become.__name__ == become
    for lib, m in ((ds, d), (torch, t)):
        m.initialize_parameters(lib.tensor(x))  # materialised; still the lazy class
    assert type(d).__name__ == type(t).__name__ == name.split("-")[0]
    assert _kinds(ds, d) == _kinds(torch, t)
    assert [tuple(p.shape) for p in d.parameters()] == [tuple(p.shape) for p in t.parameters()]
    for lib, m in ((ds, d), (torch, t)):
        m(lib.tensor(x))
    assert type(d).__name__ == type(t).__name__ == become
    assert _kinds(ds, d) == _kinds(torch, t)  # (has_uninitialized_params gone with the class)
    assert [tuple(b.shape) for b in d.buffers()] == [tuple(b.shape) for b in t.buffers()]


def test_load_state_dict_into_a_lazy_module():
    src = torch.nn.BatchNorm1d(5)
    src.running_mean.fill_(0.5)
    for lib in (ds, torch):
        m = lib.nn.LazyBatchNorm1d()
        state = {k: lib.tensor(v.numpy()) for k, v in src.state_dict().items()}
        m.load_state_dict(state)
        assert type(m).__name__ == "LazyBatchNorm1d" and not m.has_uninitialized_params()
        assert type(m.running_mean).__name__ == "Tensor" and m.running_mean.tolist() == [0.5] * 5
        # a lazy module's own state_dict loads into a lazy twin (nothing to copy)
        twin = lib.nn.LazyLinear(3)
        twin.load_state_dict(lib.nn.LazyLinear(3).state_dict())
        assert twin.has_uninitialized_params() and type(twin).__name__ == "LazyLinear"
        with pytest.raises(RuntimeError):  # but not into a materialised Linear
            lib.nn.Linear(4, 3).load_state_dict(lib.nn.LazyLinear(3).state_dict())


def test_is_lazy_and_partial_materialize():
    for lib in (ds, torch):
        P = lib.nn.parameter
        assert P.is_lazy(P.UninitializedParameter()) and P.is_lazy(P.UninitializedBuffer())
        assert not P.is_lazy(lib.zeros(1)) and not P.is_lazy(lib.nn.Parameter(lib.zeros(1)))
        m = lib.nn.LazyLinear(3)
        m.weight.materialize((3, 2))
        assert m.has_uninitialized_params()  # the bias still waits
        assert type(m.weight).__name__ == "Parameter"
        assert type(m.bias).__name__ == "UninitializedParameter"
