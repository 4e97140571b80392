"""A compiled call asks whether its captured modules have hooks only when a hook registry changed
(session 31, helper-237: nn/module_hooks.VERSION, bumped by every write to a HookDict registry and
by assigning a registry whole). Each way of adding a hook after the first compiled calls must be
seen (the call runs eagerly so that the hook runs), and each way of removing it must bring the
replay back: with a stale version the hook would be skipped, or eager would stay."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytest

import descent
import descent.compiler as compiler
from descent import nn
from descent.compiler import CompileWarning
from descent.nn import module_hooks


def _model():
    descent.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))


def _call(f, x, n=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompileWarning)
        for _ in range(n):
            f(x)


def _replaying(m, grad=False):
    """A compiled step over `m` that has recorded and replayed (the hook scan cached)."""
    if grad:
        f = descent.compile(lambda x: m(x).sum().backward())
    else:
        f = descent.compile(lambda x: m(x).sum())
    x = descent.randn(2, 4)
    with descent.set_grad_enabled(grad):
        _call(f, x, 5)  # (the first calls record: the leaves' .grad None, then not)
    assert f.stats["replays"] >= 2 and f.stats["eager"] == 0
    return f, x


def _fwd(seen):
    return lambda mod, inp, out: seen.append("fwd")


def _pre(seen):
    return lambda mod, inp: seen.append("pre")


def _bwd(seen):
    return lambda mod, gin, gout: seen.append("bwd")


def _bpre(seen):
    return lambda mod, gout: seen.append("bpre")


def _handle_remover(h):
    return h.remove


def _ctx_remover(h):
    return lambda: h.__exit__(None, None, None)


# (name, needs grad, add(model, seen) -> remove())
_WAYS = [
    ("register_forward_hook", False, lambda m, s: m[2].register_forward_hook(_fwd(s)).remove),
    (
        "register_forward_hook prepend",
        False,
        lambda m, s: m[0].register_forward_hook(_fwd(s), prepend=True).remove,
    ),
    (
        "register_forward_hook with_kwargs always_call",
        False,
        lambda m, s: (
            m[0]
            .register_forward_hook(
                lambda mod, a, k, o: s.append("fwd"), with_kwargs=True, always_call=True
            )
            .remove
        ),
    ),
    (
        "register_forward_pre_hook",
        False,
        lambda m, s: m[1].register_forward_pre_hook(_pre(s)).remove,
    ),
    (
        "register_forward_pre_hook, the handle as a context",
        False,
        lambda m, s: _ctx_remover(m[0].register_forward_pre_hook(_pre(s)).__enter__()),
    ),
    ("the top module's forward hook", False, lambda m, s: m.register_forward_hook(_fwd(s)).remove),
    (
        "register_full_backward_hook",
        True,
        lambda m, s: m[0].register_full_backward_hook(_bwd(s)).remove,
    ),
    (
        "register_full_backward_pre_hook",
        True,
        lambda m, s: m[2].register_full_backward_pre_hook(_bpre(s)).remove,
    ),
    (
        "global forward hook",
        False,
        lambda m, s: module_hooks.register_module_forward_hook(_fwd(s)).remove,
    ),
    (
        "global forward pre-hook",
        False,
        lambda m, s: module_hooks.register_module_forward_pre_hook(_pre(s)).remove,
    ),
    (
        "global full backward hook",
        True,
        lambda m, s: module_hooks.register_module_full_backward_hook(_bwd(s)).remove,
    ),
    (
        "global full backward pre-hook",
        True,
        lambda m, s: module_hooks.register_module_full_backward_pre_hook(_bpre(s)).remove,
    ),
]


def _direct(kind):
    """Hooks written into the registry by hand, removed by hand."""

    def add(m, s):
        d = m[2]._forward_hooks
        if kind == "setitem / del":
            d[10**9] = _fwd(s)
            return lambda: d.__delitem__(10**9)
        if kind == "update / pop":
            d.update({10**9: _fwd(s)})
            return lambda: d.pop(10**9)
        if kind == "setdefault / popitem":
            d.setdefault(10**9, _fwd(s))
            return d.popitem
        if kind == "|= / clear":
            d |= {10**9: _fwd(s)}
            return d.clear
        if kind == "assigned whole (OrderedDict) / assigned {}":
            m[2]._forward_hooks = OrderedDict([(10**9, _fwd(s))])
            return lambda: setattr(m[2], "_forward_hooks", {})
        if kind == "pre-hooks assigned whole (HookDict) / handle":
            m[1]._forward_pre_hooks = module_hooks.HookDict({10**9: _pre(s)})
            return lambda: m[1]._forward_pre_hooks.pop(10**9)
        raise AssertionError(kind)

    return add


_WAYS += [(f"direct {k}", False, _direct(k)) for k in (
    "setitem / del", "update / pop", "setdefault / popitem", "|= / clear",
    "assigned whole (OrderedDict) / assigned {}", "pre-hooks assigned whole (HookDict) / handle",
)]  # fmt: skip


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # (x needs no gradient)
@pytest.mark.parametrize("name,grad,add", _WAYS, ids=[w[0] for w in _WAYS])
def test_hook_added_after_compiled_calls_forces_eager_and_removal_replays(name, grad, add):
    m = _model()
    f, x = _replaying(m, grad)
    seen: list = []
    replays = f.stats["replays"]
    remove = add(m, seen)
    try:
        with descent.set_grad_enabled(grad):
            with pytest.warns(CompileWarning, match="forward hooks or backward hooks"):
                f(x)
            _call(f, x, 2)
        assert f.stats["eager"] == 3, name
        assert f.stats["replays"] == replays, name
        assert len(seen) >= 3, (name, seen)  # the hook ran on every call
    finally:
        remove()
    seen.clear()
    with descent.set_grad_enabled(grad):
        _call(f, x, 3)
    assert f.stats["replays"] == replays + 3 and f.stats["eager"] == 3, name
    assert seen == [], name


def test_scan_runs_only_when_a_registry_changed(monkeypatch):
    """The hook scan over the captured modules runs on the first call, after a registry write
    (here to a module the step does not capture: the version is global), and not otherwise."""
    scans = []
    real = compiler.modules_hooked

    def counting(modules):
        scans.append(len(modules))
        return real(modules)

    monkeypatch.setattr(compiler, "modules_hooked", counting)
    m = _model()
    f, x = _replaying(m)
    assert len(scans) == 1 and scans[0] == 4  # the Sequential and its three layers
    with descent.no_grad():
        _call(f, x, 5)
    assert len(scans) == 1
    other = nn.Linear(2, 2)
    other.register_forward_hook(lambda *a: None).remove()
    with descent.no_grad():
        _call(f, x, 3)
    assert len(scans) == 2 and f.stats["replays"] == 11


def test_untracked_registry_is_asked_every_call():
    """A plain dict assigned as a registry does not count its writes: the scan then runs on every
    call, so a hook written into that dict later is still seen."""
    m = _model()
    f, x = _replaying(m)
    plain: dict = {}
    m[0]._forward_hooks = plain
    with descent.no_grad():
        _call(f, x, 2)
    assert f.stats["replays"] == 5 and f.stats["eager"] == 0
    seen: list = []
    plain[1] = _fwd(seen)  # not a HookDict: VERSION does not move
    with descent.no_grad():
        _call(f, x, 2)
    assert f.stats["eager"] == 2 and seen == ["fwd", "fwd"]
    del plain[1]
    with descent.no_grad():
        _call(f, x, 1)
    assert f.stats["replays"] == 6


def test_hook_dicts_are_counted_registries_and_survive_deepcopy():
    import copy

    m = _model()
    for name in module_hooks.HOOK_DICTS:
        assert type(getattr(m, name)) is module_hooks.HookDict
    for d in module_hooks.GLOBAL:
        assert type(d) is module_hooks.HookDict
    m[0].register_forward_hook(lambda *a: None)
    c = copy.deepcopy(m)
    assert type(c[0]._forward_hooks) is module_hooks.HookDict and len(c[0]._forward_hooks) == 1
    v = module_hooks.VERSION[0]
    c[0]._forward_hooks.clear()
    assert module_hooks.VERSION[0] > v


def test_captured_non_leaf_does_not_warn_about_its_grad():
    """The call reads each captured tensor's gradient slot for its key; through the `.grad`
    property a captured non-leaf warned on every call (PyTorch's non-leaf .grad warning)."""
    w = descent.randn(3, requires_grad=True)
    non_leaf = w * 2.0
    f = descent.compile(lambda x: (x * non_leaf).sum())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with descent.no_grad():
            for _ in range(4):
                f(descent.randn(3))
    assert f.stats["replays"] == 2
    assert [str(r.message) for r in rec if "not a leaf" in str(r.message)] == []
