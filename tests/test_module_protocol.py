"""nn.Module's overridable protocol against torch 2.13 (docs/nn.md): `_load_from_state_dict`,
`_save_to_state_dict` and `_apply` overrides run where PyTorch runs them (descent ignored all
three: a renamed old key silently stayed unloaded, an extra tensor stayed float32 after
.double()), the private hook registrations, and state_dict()._metadata."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def _classes(lib):
    nn = lib.nn

    class Legacy(nn.Module):
        """Renames an old key on load, adds a derived entry on save, moves a cache on .to()."""

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("scale", lib.ones(2))
            self.cache = lib.arange(3.0)  # neither a parameter nor a buffer
            self.applied = 0

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                                  missing_keys, unexpected_keys, error_msgs):  # fmt: skip
            old = prefix + "old_scale"
            if old in state_dict:
                state_dict[prefix + "scale"] = state_dict.pop(old)
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                          missing_keys, unexpected_keys, error_msgs)  # fmt: skip

        def _save_to_state_dict(self, destination, prefix, keep_vars):
            super()._save_to_state_dict(destination, prefix, keep_vars)
            destination[prefix + "scale_sum"] = self.scale.sum().reshape(1)

        def _apply(self, fn, recurse=True):
            self.applied += 1
            self.cache = fn(self.cache)
            return super()._apply(fn, recurse)

    class OldBN(nn.BatchNorm1d):
        """A BatchNorm subclass with its own _load_from_state_dict (calls super)."""

        def _load_from_state_dict(self, state_dict, prefix, *args):
            state_dict.pop(prefix + "ignored", None)
            super()._load_from_state_dict(state_dict, prefix, *args)

    return Legacy, OldBN


def _model(lib):
    Legacy, OldBN = _classes(lib)
    lib.manual_seed(0)
    return lib.nn.Sequential(Legacy(), OldBN(2))


def _np(v):
    return v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)


def test_save_override_and_metadata_match_torch():
    d, t = _model(ds), _model(torch)
    sd, st = d.state_dict(), t.state_dict()
    assert list(sd) == list(st)  # "0.scale_sum" from the override, in torch's order
    assert dict(sd._metadata) == dict(st._metadata)  # versions: 1, and 2 for the norm
    np.testing.assert_array_equal(_np(sd["0.scale_sum"]), _np(st["0.scale_sum"]))


@pytest.mark.parametrize("strict", [True, False])
def test_load_override_renames_old_keys_as_in_torch(strict):
    results = {}
    for lib in (ds, torch):
        m = _model(lib)
        sd = {k: v.clone() for k, v in m.state_dict().items() if k != "0.scale_sum"}
        sd["0.old_scale"] = sd.pop("0.scale") * 3
        sd["1.ignored"] = lib.zeros(1)
        if not strict:
            sd["stray"] = lib.zeros(1)
            del sd["1.bias"]
        r = m.load_state_dict(sd, strict=strict)
        results[lib.__name__] = (sorted(r.missing_keys), sorted(r.unexpected_keys),
                                 m[0].scale.tolist())  # fmt: skip
    assert results["descent"] == results["torch"]
    assert results["descent"][2] == [3.0, 3.0]  # the renamed key was loaded


def test_strict_errors_in_the_per_module_path_match_torch():
    msgs = []
    for lib in (ds, torch):
        m = _model(lib)
        sd = {k: v for k, v in m.state_dict().items() if k not in ("1.bias", "0.scale_sum")}
        sd["0.lin.weight"] = lib.zeros(3, 2)
        sd["extra"] = lib.zeros(1)
        with pytest.raises(RuntimeError) as e:
            m.load_state_dict(sd)
        msgs.append(str(e.value).replace("torch.Size([", "(").replace("])", ")"))
    assert msgs[0] == msgs[1]


def test_old_norm_checkpoints_without_num_batches_tracked():
    for lib in (ds, torch):
        m = _model(lib)
        m[1].num_batches_tracked.fill_(5)
        sd = m.state_dict()
        del sd["1.num_batches_tracked"], sd["0.scale_sum"]
        sd._metadata["1"]["version"] = 1  # saved before PyTorch 0.4.1
        m.load_state_dict(sd)  # the count is filled with the current one, as PyTorch's
        assert int(m[1].num_batches_tracked) == 5


def test_apply_override_runs_on_every_conversion():
    counts = []
    for lib in (ds, torch):
        m = _model(lib)
        m.double()
        assert m[0].cache.dtype == lib.float64 and m[0].lin.weight.dtype == lib.float64
        m.to(lib.float32)
        m.half()
        m.float()
        assert m[0].cache.dtype == lib.float32
        counts.append(m[0].applied)
    assert counts[0] == counts[1]
    p = ds.nn.Linear(2, 2)
    w = p.weight
    p.double()
    assert p.weight is w and w.dtype == ds.float64  # identity kept: optimizers keep working


def _hooked(lib, log):
    m = _model(lib)
    m._register_state_dict_hook(lambda mod, sd, prefix, meta: log.append(("post", prefix)))
    m._register_load_state_dict_pre_hook(
        lambda sd, prefix, meta, strict, mk, uk, em: log.append(("pre", prefix))
    )
    m._register_load_state_dict_pre_hook(
        lambda mod, sd, prefix, *a: log.append(("pre_mod", type(mod).__name__)),
        with_module=True,
    )
    return m


def test_private_hook_registrations_match_torch():
    logs = []
    for lib in (ds, torch):
        log: list = []
        m = _hooked(lib, log)
        m.load_state_dict(m.state_dict(), strict=False)
        logs.append(log)
    assert logs[0] == logs[1]
    assert ds.nn.Module.call_super_init is False and ds.nn.Module.dump_patches is False


def test_assign_in_the_per_module_path():
    m = _model(ds)
    sd = {k: v.clone().double() for k, v in m.state_dict().items() if k != "0.scale_sum"}
    m.load_state_dict(sd, assign=True)
    assert m[0].lin.weight.dtype == ds.float64 and isinstance(m[0].lin.weight, ds.nn.Parameter)
