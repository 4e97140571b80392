"""gradient_report: flags fire on vanishing, exploding, dead, NaN gradients; silent if healthy."""

import json

import numpy as np

import descent as ds
import descent.nn as nn
import descent.nn.functional as F
import descent.optim as optim
from descent.explain import Thresholds, gradient_report
from descent.models import MLP


def _data(n=16, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = ds.tensor(rng.standard_normal((n, d)).astype(np.float32))
    y = ds.tensor(rng.integers(0, 3, n))
    return x, y


def test_healthy_model_is_silent_and_figures_are_right():
    ds.manual_seed(0)
    model = MLP([6, 16, 3])
    x, y = _data()
    F.cross_entropy(model(x), y).backward()
    rep = gradient_report(model)
    assert rep.healthy and rep.flagged == {}, str(rep)
    names = [n for n, _ in model.named_parameters()]
    assert [p.name for p in rep.params] == names
    for (_, p), s in zip(model.named_parameters(), rep.params):
        g = p.grad.numpy().astype(np.float64)
        assert np.isclose(s.norm, np.linalg.norm(g), rtol=1e-5)
        assert np.isclose(s.mean_abs, np.abs(g).mean(), rtol=1e-5)
        assert np.isclose(s.max_abs, np.abs(g).max(), rtol=1e-6)
        assert np.isclose(s.frac_pos, (g > 0).mean()) and np.isclose(s.frac_neg, (g < 0).mean())
    text = str(rep)
    assert "all gradients healthy" in text and "vanishing: RMS <" in text  # thresholds stated
    d = json.loads(rep.to_json())
    assert d["params"][0]["name"] == names[0] and "thresholds" in d


class Deep(nn.Module):
    """Linear layers; a gradient hook scales what flows back into `first` (to starve it)."""

    def __init__(self, scale_in=1.0):
        super().__init__()
        self.first = nn.Linear(6, 8)
        self.second = nn.Linear(8, 8)
        self.dead = nn.Linear(8, 8)
        self.out = nn.Linear(8, 3)
        self.scale_in = scale_in

    def forward(self, x):
        a = self.first(x)
        if a.requires_grad:
            a.register_hook(lambda g: g * self.scale_in)
        h = ds.tanh(self.second(ds.tanh(a)))
        # relu of a large negative pre-activation: no gradient ever flows into `dead`
        z = ds.relu(self.dead(h) - 1e3)
        return self.out(h + z)


def test_vanishing_and_dead_flags():
    ds.manual_seed(1)
    model = Deep(scale_in=1e-9)  # gradients into `first` are scaled by 1e-9: vanishing
    x, y = _data()
    F.cross_entropy(model(x), y).backward()
    rep = gradient_report(model)
    flagged = rep.flagged
    assert flagged["first.weight"] == ["vanishing"]
    assert flagged["first.bias"] == ["vanishing"]
    assert flagged["dead.weight"] == ["dead"] and flagged["dead.bias"] == ["dead"]
    assert "second.weight" not in flagged and "out.weight" not in flagged
    assert "first.weight: vanishing" in str(rep)


def test_exploding_flag():
    ds.manual_seed(2)
    model = MLP([6, 16, 3])
    x, y = _data()
    (F.cross_entropy(model(x), y) * 1e6).backward()
    rep = gradient_report(model)
    assert all("exploding" in f for f in rep.flagged.values())
    assert set(rep.flagged) == {n for n, _ in model.named_parameters()}


def test_nan_flag_and_no_grad_is_dead():
    ds.manual_seed(3)
    model = MLP([6, 16, 3])
    x, y = _data()
    F.cross_entropy(model(x), y).backward()
    params = dict(model.named_parameters())
    name = next(iter(params))
    g = params[name].grad.data
    g[0, 0] = np.nan
    last = list(params)[-1]
    params[last].grad = None  # a parameter the loss never reached
    rep = gradient_report(model)
    assert rep.flagged[name] == ["non-finite"] and rep[name].nonfinite == 1
    assert rep.flagged[last] == ["dead"] and not rep[last].has_grad
    assert json.loads(rep.to_json())  # NaN figures serialise (as null)


def test_relative_thresholds_configurable():
    ds.manual_seed(4)
    model = MLP([6, 16, 3])
    x, y = _data()
    F.cross_entropy(model(x), y).backward()
    rep = gradient_report(model, thresholds=Thresholds(vanishing_rms=1e3))
    assert all(f == ["vanishing"] for f in rep.flagged.values())


def test_update_ratio_from_watched_optimizer_and_before():
    ds.manual_seed(5)
    model = MLP([6, 16, 3])
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()
    rep0 = gradient_report(model, opt)  # starts watching; no step yet
    assert all(p.update_ratio is None for p in rep0.params)
    before = {n: p._data.copy() for n, p in model.named_parameters()}
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    rep = gradient_report(model, opt)
    rep_b = gradient_report(model, before=before)
    for s, sb, (n, p) in zip(rep.params, rep_b.params, model.named_parameters()):
        expect = np.linalg.norm(p._data - before[n]) / np.linalg.norm(before[n])
        assert np.isclose(s.update_ratio, expect, rtol=1e-5)
        assert np.isclose(sb.update_ratio, expect, rtol=1e-5)
        # plain SGD: the update is exactly -lr * g
        assert np.isclose(s.update_ratio, 0.1 * s.norm / np.linalg.norm(before[n]), rtol=1e-4)
