"""In-place ops on jagged nested tensors against PyTorch 2.13 (docs/nested.md): what torch's
jagged layout supports writes into the nested tensor (its values views see it); what it lacks
raises its NotImplementedError (`aten.abs_.default`, ...).

Every test makes the same nested tensors in both libraries: each new offsets tensor takes the
next ragged-size number (`j7`) in its library, and test_docexamples compares printed shapes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds

LIBS = (ds, torch)


def _nt(lib, lens=(2, 1), scale=1.0):
    seqs = [lib.tensor(np.arange(3.0 * n, dtype=np.float32).reshape(n, 3) * scale - 2.0)
            for n in lens]  # fmt: skip
    return lib.nested.nested_tensor(seqs, layout=lib.jagged)


def _seqs(nt):
    return [np.asarray(t.detach().tolist()) for t in nt.unbind()]


SUPPORTED = {
    "mul_(2)": lambda lib, nt: nt.mul_(2),
    "add_(1)": lambda lib, nt: nt.add_(1.5),
    "add_(nt, alpha=2)": lambda lib, nt: nt.add_(nt * 3, alpha=2),
    "sub_(nt)": lambda lib, nt: nt.sub_(nt.clone().exp()),
    "div_(2)": lambda lib, nt: nt.div_(4),
    "relu_": lambda lib, nt: nt.relu_(),
    "F.relu(inplace)": lambda lib, nt: lib.nn.functional.relu(nt, inplace=True),
    "ReLU(inplace)": lambda lib, nt: lib.nn.ReLU(inplace=True)(nt),
    "exp_": lambda lib, nt: nt.exp_(),
    "sigmoid_": lambda lib, nt: nt.sigmoid_(),
    "tanh_": lambda lib, nt: nt.tanh_(),
    "neg_": lambda lib, nt: nt.neg_(),
    "pow_(2)": lambda lib, nt: nt.pow_(2),
    "clamp_(-1, 1)": lambda lib, nt: nt.clamp_(-1, 1),
    "clamp_min_": lambda lib, nt: nt.clamp_min_(0.5),
    "fill_(3)": lambda lib, nt: nt.fill_(3),
    "zero_": lambda lib, nt: nt.zero_(),
    "lerp_": lambda lib, nt: nt.lerp_(nt * 2, 0.25),
    "add_(dense row)": lambda lib, nt: nt.add_(lib.tensor([1.0, 2.0, 3.0])),
    "add_((B, 1, 1))": lambda lib, nt: nt.add_(lib.tensor([[[10.0]], [[20.0]]])),
    "mul_(0-d)": lambda lib, nt: nt.mul_(lib.tensor(2.0)),
    "copy_(same lengths)": lambda lib, nt: nt.copy_(_nt(lib, scale=5.0)),
    "round_": lambda lib, nt: nt.div_(3).round_(),
    "clamp_(nt bound)": lambda lib, nt: nt.clamp_(nt * 0 + 0.5),
    "xlogy_(nt)": lambda lib, nt: nt.exp_().xlogy_(nt * 0 + 0.5),
    "ldexp_(nt)": lambda lib, nt: nt.ldexp_(nt * 0 + 2),
    "round(decimals=1)": lambda lib, nt: nt.copy_(lib.round(nt / 3, decimals=1)),
}


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_supported_in_place_ops_write_into_the_tensor(name):
    got = {}
    for lib in LIBS:
        nt = _nt(lib)
        values = nt.values()  # a view: it sees the write
        out = SUPPORTED[name](lib, nt)
        assert out is nt and out.is_nested
        got[lib] = (_seqs(nt), np.asarray(values.tolist()))
    for d, t in zip(got[ds][0], got[torch][0], strict=True):
        np.testing.assert_allclose(d, t, rtol=1e-6)
    np.testing.assert_allclose(got[ds][1], got[torch][1], rtol=1e-6)


def test_augmented_assignment_and_autograd():
    got = {}
    for lib in LIBS:
        nt = _nt(lib)
        y = nt
        y += 1
        y *= 2
        assert y is nt
        leaf = _nt(lib).requires_grad_()
        z = leaf * 1
        z.mul_(3)  # recorded: the gradient flows through the update
        z.exp_()
        z.values().sum().backward()
        with lib.no_grad():  # an optimizer-style update of a leaf
            leaf.mul_(0.5)
        got[lib] = (_seqs(nt), _seqs(leaf.grad), _seqs(leaf))
    for a, b in zip(got[ds], got[torch], strict=True):
        for d, t in zip(a, b, strict=True):
            np.testing.assert_allclose(d, t, rtol=1e-5)
    for lib in LIBS:
        with pytest.raises(RuntimeError):  # torch: its view message; descent: the leaf's
            _nt(lib).requires_grad_().mul_(2)


REFUSED = {  # name -> (call, torch's message)
    "abs_": (lambda lib, nt: nt.abs_(), "aten.abs_.default"),
    "masked_fill_": (lambda lib, nt: nt.masked_fill_(nt > 0, 0.0), "aten.masked_fill_.Scalar"),
    "normal_": (lambda lib, nt: nt.normal_(), "aten.normal_.default"),
    "uniform_": (lambda lib, nt: nt.uniform_(), "aten.uniform_.default"),
    "bernoulli_": (lambda lib, nt: nt.bernoulli_(0.5), "aten.bernoulli_.float"),
    "Dropout(inplace)": (lambda lib, nt: lib.nn.Dropout(0.5, inplace=True)(nt),
                         "aten.bernoulli_.float"),
    "addcmul_": (lambda lib, nt: nt.addcmul_(nt, nt), "aten.addcmul_.default"),
    "fill_(tensor)": (lambda lib, nt: nt.fill_(lib.tensor(3.0)), "aten.fill_.Tensor"),
    "transpose_": (lambda lib, nt: nt.transpose_(1, 2), "aten.transpose_.default"),
    "unsqueeze_": (lambda lib, nt: nt.unsqueeze_(0), "aten.unsqueeze_.default"),
    "xlogy_(scalar)": (lambda lib, nt: nt.xlogy_(2.0), "aten.xlogy_.Scalar_Other"),
    "copysign_": (lambda lib, nt: nt.copysign_(-1.0), "aten.copysign_.Scalar"),
    "eq_": (lambda lib, nt: nt.eq_(nt.clone()), "aten.eq_.Tensor"),
    "lt_": (lambda lib, nt: nt.lt_(0.0), "aten.lt_.Scalar"),
    "floor_divide_": (lambda lib, nt: nt.floor_divide_(2), "aten.floor_divide_.Tensor"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_torchs_jagged_layout_lacks_is_refused_with_its_error(name):
    call, message = REFUSED[name]
    for lib in LIBS:
        nt = _nt(lib)
        with warnings.catch_warnings(), pytest.raises(NotImplementedError, match=message):
            warnings.simplefilter("ignore")
            call(lib, nt)


def test_errors_match_torch():
    for lib in LIBS:
        with pytest.raises(RuntimeError, match=r"cannot call binary pointwise function mul_\."):
            _nt(lib).mul_(_nt(lib))  # two structures (different offsets tensors)
        with pytest.raises(ValueError, match="expected src to be a jagged layout NestedTensor"):
            _nt(lib).copy_(lib.ones(3))
        with pytest.raises(RuntimeError, match="expected compatible input and src shapes"):
            _nt(lib).copy_(_nt(lib, lens=(1, 2)))
        ints = lib.nested.nested_tensor([lib.ones(2, 3, dtype=lib.int64),
                                         lib.ones(1, 3, dtype=lib.int64)], layout=lib.jagged)
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            ints.mul_(1.5)
        with pytest.raises(RuntimeError, match="Can't detach views in-place"):
            _nt(lib).detach_()
        # descent's message adds the fix
        fix = r"nt\.values\(\)\.abs_" if lib is ds else "aten.abs_.default"
        with pytest.raises(NotImplementedError, match=fix):
            _nt(lib).abs_()


def test_writes_reach_the_values_a_nested_tensor_views():
    got = {}
    for lib in LIBS:
        values = lib.arange(6.0).reshape(3, 2)
        nt = lib.nested.nested_tensor_from_jagged(values, lib.tensor([0, 2, 3]))
        nt.mul_(2)
        first = values.tolist()
        nt.relu_().fill_(1.0)
        holes = lib.nested.narrow(lib.arange(12.0).reshape(2, 6), 1, lib.tensor([0, 1]),
                                  lib.tensor([3, 2]), layout=lib.jagged)  # fmt: skip
        holes.mul_(10)  # a non-contiguous tensor (lengths): its sequences only
        got[lib] = (first, values.tolist(), [t.tolist() for t in holes.unbind()])
    assert got[ds] == got[torch]
