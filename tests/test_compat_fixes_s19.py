"""Fixes found while writing session 19's compat programs (tests/compat/programs), each
differential against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import collections

import pytest

import descent

torch = pytest.importorskip("torch")


def _adam_after_one_step(lib, name="Adam", **kwargs):
    p = lib.nn.Parameter(lib.ones(3))
    opt = getattr(lib.optim, name)([p], lr=0.1, **kwargs)
    p.grad = lib.ones(3)
    opt.step()
    return p, opt


# optimizer.state_dict() holds the optimizer's own state tensors in PyTorch (no copies): a
# later step changes them, which is why the docs say copy.deepcopy. descent returned copies, so
# early_stop_resume's `best = optimizer.state_dict()` kept an old step count where PyTorch's
# had moved on.
@pytest.mark.parametrize("name,kwargs", [("Adam", {}), ("SGD", {"momentum": 0.9}),
                                         ("RMSprop", {"centered": True})])
def test_optimizer_state_dict_is_live(name, kwargs):
    def run(lib):
        p, opt = _adam_after_one_step(lib, name, **kwargs)
        sd = opt.state_dict()
        same = [sd["state"][0][k] is opt.state[p][k] for k in opt.state[p]]
        p.grad = lib.full((3,), 2.0)
        opt.step()
        return same, {k: v.tolist() for k, v in sd["state"][0].items()}

    assert run(descent) == run(torch)


# load_state_dict keeps each state tensor whose dtype and device already fit (PyTorch's
# value.to(dtype, device) returns it), so the loaded dict follows the steps; another dtype is
# a copy. early_stop_resume read checkpoint["optimizer_state_dict"]["state"][0]["step"] after
# resuming: 20 in PyTorch (the loaded tensor counted on), 12 in descent.
def test_optimizer_load_state_dict_keeps_fitting_tensors():
    def run(lib):
        _, opt = _adam_after_one_step(lib)
        sd = opt.state_dict()
        q = lib.nn.Parameter(lib.ones(3))
        fresh = lib.optim.Adam([q], lr=0.1)
        fresh.load_state_dict(sd)
        kept = [fresh.state[q][k] is sd["state"][0][k] for k in ("step", "exp_avg")]
        wide = {"state": {0: {k: (v.double() if k == "exp_avg" else v.clone())
                              for k, v in sd["state"][0].items()}},
                "param_groups": sd["param_groups"]}  # fmt: skip
        other = lib.optim.Adam([q], lr=0.1)
        other.load_state_dict(wide)
        copied = other.state[q]["exp_avg"] is wide["state"][0]["exp_avg"]
        for _ in range(2):
            q.grad = lib.full((3,), 3.0)
            fresh.step()
        return (kept, copied, float(sd["state"][0]["step"]), sd["state"][0]["exp_avg"].tolist(),
                str(other.state[q]["exp_avg"].dtype).split(".")[-1])

    assert run(descent) == run(torch)


# torch.save keeps an OrderedDict (a module's state_dict) an OrderedDict through torch.load;
# descent.load gave a plain dict.
def test_save_load_keeps_ordered_dicts(tmp_path):
    def run(lib, path):
        m = lib.nn.Linear(2, 2)
        obj = {"model": m.state_dict(), "plain": {"a": 1},
               "ints": collections.OrderedDict([(3, lib.ones(1)), (1, "x")])}
        lib.save(obj, path)
        out = lib.load(path, weights_only=True)
        return [type(out[k]).__name__ for k in obj], list(out["model"]), list(out["ints"])

    assert run(descent, tmp_path / "d.pt") == run(torch, tmp_path / "t.pt")


# torch.nn.modules.module's registration hooks (parameter / buffer / module): a global hook sees
# every registration, by attribute assignment or register_*, containers included, and may
# replace the value; descent had none (dynamic_modules_state: AttributeError).
def test_global_registration_hooks():
    def run(lib):
        mm = __import__(f"{lib.__name__}.nn.modules.module", fromlist=["x"])
        nn = lib.nn
        seen = []

        def on_param(module, name, p):
            seen.append(("p", type(module).__name__, name, tuple(p.shape)))
            if name == "scale":
                return nn.Parameter(p.detach() * 2)

        def on_buffer(module, name, t):
            seen.append(("b", type(module).__name__, name, None if t is None else tuple(t.shape)))

        def on_module(module, name, sub):
            seen.append(("m", type(module).__name__, name, type(sub).__name__))

        handles = [mm.register_module_parameter_registration_hook(on_param),
                   mm.register_module_buffer_registration_hook(on_buffer),
                   mm.register_module_module_registration_hook(on_module)]  # fmt: skip

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 3)
                self.scale = nn.Parameter(lib.ones(3))
                self.register_buffer("count", lib.zeros(1))
                self.register_buffer("empty", None)
                self.add_module("act", nn.ReLU())
                self.heads = nn.ModuleDict({"a": nn.Linear(3, 1)})
                self.emb = nn.ParameterDict({"x": lib.zeros(2)})
                self.plist = nn.ParameterList([nn.Parameter(lib.ones(1))])

        net = Net()
        net.count = lib.ones(1)  # a registered buffer reassigned: its hook runs again
        net.act = None
        net.register_parameter("gone", None)  # None parameters skip the hook
        net.heads["b"] = nn.Identity()
        net.plist.append(nn.Parameter(lib.zeros(4)))
        for h in handles:
            h.remove()
        net.other = nn.Linear(1, 1)  # removed: not seen
        return seen, net.scale.tolist()

    assert run(descent) == run(torch)
