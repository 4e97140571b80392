"""check_model_gradients: passes on MLP, CNN and GPT; fails, naming the parameter, on a bug."""

import numpy as np
import pytest

import descent as ds
import descent.nn as nn
import descent.nn.functional as F
from descent.autograd import Function
from descent.explain import check_model_gradients
from descent.models import GPT, MLP, GPTConfig, LeNet


def _ce(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def test_mlp_passes():
    ds.manual_seed(0)
    model = MLP([5, 7, 3], activation="tanh")
    rng = np.random.default_rng(0)
    batch = (ds.tensor(rng.standard_normal((4, 5)).astype(np.float32)), ds.tensor([0, 2, 1, 2]))
    before = {n: p._data.copy() for n, p in model.named_parameters()}
    res = check_model_gradients(model, _ce, batch)
    assert res.passed, str(res)
    assert len(res.params) == len(list(model.named_parameters()))
    assert {p.method for p in res.params} == {"full", "projections"}
    # the user's model is untouched (float32, same values)
    for n, p in model.named_parameters():
        assert p._data.dtype == np.float32
        np.testing.assert_array_equal(p._data, before[n])
    text = str(res)
    assert "all parameters passed" in text and "max rel err" in text
    assert res.to_dict()["passed"] is True


def test_cnn_passes():
    ds.manual_seed(1)
    model = LeNet(num_classes=3, channels=(2, 3), hidden=(8, 6))
    rng = np.random.default_rng(1)
    x = ds.tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
    res = check_model_gradients(model, _ce, (x, ds.tensor([1, 2])), num_projections=2)
    assert res.passed, str(res)


def test_gpt_passes():
    ds.manual_seed(2)
    cfg = GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8, dropout=0.1)
    model = GPT(cfg)
    rng = np.random.default_rng(2)
    idx = ds.tensor(rng.integers(0, 11, (2, 6)))
    tgt = ds.tensor(rng.integers(0, 11, (2, 6)))
    res = check_model_gradients(model, lambda m, b: m(*b)[1], (idx, tgt), num_projections=2)
    assert res.passed, str(res)
    assert model.training  # the copy went to eval mode, not the model


class WrongScale(Function):
    """y = x * s, with a planted bug: d/ds is returned as gy (the factor x is missing)."""

    save_inputs = True

    def forward(self, x, s):
        return x * s

    def backward(self, gy, F):
        x, s = self.inputs(F)
        return gy * s, gy  # WRONG second gradient: should be gy * x


class Buggy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.scale = nn.Parameter(ds.ones(3))

    def forward(self, x):
        return WrongScale.apply(self.lin(x), self.scale)


def test_planted_wrong_backward_is_named():
    ds.manual_seed(3)
    model = Buggy()
    rng = np.random.default_rng(3)
    batch = (ds.tensor(rng.standard_normal((5, 4)).astype(np.float32)), ds.tensor([0, 1, 2, 0, 1]))
    res = check_model_gradients(model, _ce, batch)
    assert not res.passed
    assert res.failed == ["scale"]  # the Linear before it still gets correct gradients
    text = str(res)
    assert "FAILED: scale" in text and "WRONG" in text
    with pytest.raises(AssertionError, match="scale"):
        check_model_gradients(model, _ce, batch, raise_on_failure=True)
