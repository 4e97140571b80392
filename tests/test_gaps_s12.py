"""Session 12's gaps against PyTorch 2.13 (the oracle): growing storages (`resize_`), the
generator state as a ByteTensor, namespace hygiene. Each test runs descent and torch side by
side; docs/torch_gaps_tensor.md and docs/torch_gaps.md describe the behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

LIBS = (ds, torch)

# ---------------------------------------------------------------------------------------------
# 1. resize_ / resize_as_ / untyped_storage().resize_: the storage grows in place


def _layout(t):
    return tuple(t.shape), t.stride(), t.storage_offset(), t.untyped_storage().nbytes()


def test_resize_shrinks_then_regrows_within_the_storage():
    # the storage keeps its size: growing back reads the old values, as torch does
    for lib in LIBS:
        a = lib.arange(6.0)
        assert a.resize_(2) is a and a.tolist() == [0.0, 1.0]
        assert a.untyped_storage().nbytes() == 24
        assert a.resize_(2, 3) is a and a.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_resize_past_the_storage_grows_it_and_keeps_views_shared():
    got = {}
    for lib in LIBS:
        a = lib.arange(6.0)
        v = a[:2]  # made before the growth: it shares the grown storage in torch
        assert a.resize_(10) is a
        assert a[:6].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # (the rest: uninitialised)
        a[0] = 100.0
        got[lib] = (_layout(a), v.tolist(),
                    v.untyped_storage().data_ptr() == a.untyped_storage().data_ptr())
    assert got[ds] == got[torch] and got[ds][1] == [100.0, 1.0]


def test_resize_reads_memory_order_and_keeps_an_equal_shape():
    for lib in LIBS:
        b = lib.arange(6.0).reshape(2, 3).t()
        assert b.resize_(3, 2).stride() == (1, 3)  # the same shape: nothing changes
        assert b.resize_(6).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # memory order
    got = {}
    for lib in LIBS:
        c = lib.arange(6.0)[2:]
        c.resize_(2, 2)
        first = (c.tolist(), _layout(c))
        c.resize_(3, 3)  # offset 2 + 9 elements: the storage grows to 44 bytes
        got[lib] = (first, _layout(c), c.flatten()[:4].tolist())
    assert got[ds] == got[torch]


def test_resize_of_a_tensor_that_requires_grad_raises_like_torch():
    for lib in LIBS:
        x = lib.ones(3, requires_grad=True)
        for t, size in ((x, 4), (x, 3), (x * 2, 4)):
            with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
                t.resize_(size)
        with lib.no_grad(), pytest.raises(RuntimeError, match="require grad"):
            x.resize_(4)
        assert tuple(x.detach().resize_(5).shape) == (5,)
    with pytest.raises(RuntimeError, match=r"shape \(3,\) to \(4,\).*detach"):
        ds.ones(3, requires_grad=True).resize_(4)  # descent names the shapes and the fix
    with pytest.raises(RuntimeError, match="negative"):
        ds.ones(3).resize_(-2)


def test_resize_as_grows_and_shrinks():
    for lib in LIBS:
        z = lib.ones(2, 3)
        assert z.resize_as_(lib.ones(4, 4)) is z and tuple(z.shape) == (4, 4)
        assert z.flatten()[:6].tolist() == [1.0] * 6 and z.untyped_storage().nbytes() == 64
        assert lib.resize_as_(z, lib.ones(1, 1)) is z and tuple(z.shape) == (1, 1)
    m = ds.empty(3, device="meta")
    assert tuple(m.resize_(5).shape) == (5,) and m.is_meta


def test_storage_resize_under_a_tensor_grows_and_frees_it():
    got = {}
    for lib in LIBS:
        x = lib.arange(4.0)
        s = x.untyped_storage()
        assert s.resize_(32) is s and x.untyped_storage() is s
        grown = (x.tolist(), s.nbytes())
        # FSDP's pattern: free a parameter's memory, later give it memory again and refill it
        p = lib.nn.Parameter(lib.ones(3))
        p.untyped_storage().resize_(0)
        freed = (p.untyped_storage().nbytes(), tuple(p.shape))
        p.untyped_storage().resize_(12)
        with lib.no_grad():
            p.copy_(lib.tensor([1.0, 2.0, 3.0]))
        got[lib] = (grown, freed, p.tolist(), p.requires_grad, p.untyped_storage().nbytes())
        with pytest.raises(RuntimeError):
            lib.ones(3).untyped_storage().resize_(-1)
    assert got[ds] == got[torch]


def test_set_past_the_end_grows_the_source_storage():
    for lib in LIBS:
        src = lib.tensor([1.0, 2.0])
        t = lib.empty(0).set_(src.untyped_storage(), 1, (3,))
        assert t.tolist()[0] == 2.0 and src.untyped_storage().nbytes() == 16
        assert src.tolist() == [1.0, 2.0]


def test_a_freed_tensor_resized_gets_memory_again():
    for lib in LIBS:
        x = lib.arange(4.0)
        x.untyped_storage().resize_(0)
        x.resize_(2)  # the storage grows to 8 bytes; x views it from offset 0
        x.fill_(7.0)
        assert x.tolist() == [7.0, 7.0] and x.untyped_storage().nbytes() == 8


# ---------------------------------------------------------------------------------------------
# 2. Generator.get_state / get_rng_state: a 1-D uint8 tensor (PyTorch's ByteTensor)


def _legacy_state(gen) -> dict:
    """The dict descent's get_state returned before 2026-12-05 (old checkpoints hold it)."""
    st = gen.numpy_rng.bit_generator.state
    return {"bit_generator": st["bit_generator"],
            "state": {k: str(v) for k, v in st["state"].items()},
            "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}  # fmt: skip


def test_generator_state_is_a_fresh_uint8_tensor_that_round_trips():
    for lib in LIBS:
        g = lib.Generator().manual_seed(3)
        s = g.get_state()
        assert s.dtype == lib.uint8 and s.ndim == 1 and not s.requires_grad
        assert s.is_contiguous() and s.data_ptr() != g.get_state().data_ptr()  # a new tensor
        assert s.numel() == (45 if lib is ds else 5056)  # NumPy PCG64's bytes, not mt19937's
        first = lib.rand(5, generator=g)
        assert g.set_state(s) is g and lib.equal(lib.rand(5, generator=g), first)
        s.zero_()  # the tensor is a copy: changing it leaves the generator alone
        assert lib.equal(g.get_state(), g.get_state())
        state = lib.get_rng_state()
        assert state.dtype == lib.uint8 and state.ndim == 1
        draw = lib.randn(4)
        assert lib.set_rng_state(state) is None and lib.equal(lib.randn(4), draw)
        # a 2-D tensor of the right size is taken, as torch's (it checks the element count)
        g.set_state(g.get_state().reshape(1, -1))


@pytest.mark.parametrize("bad, error", [
    (lambda s: s[:10], RuntimeError),  # the wrong size (PyTorch's states: 5056 bytes)
    (lambda s: s.float(), TypeError),
    (lambda s: s.to(torch.int8) if isinstance(s, torch.Tensor) else s.to(ds.int8), TypeError),
    (lambda s: s.tolist(), TypeError),
    (lambda s: s.repeat_interleave(2)[::2], RuntimeError),  # the right size, strided
])  # fmt: skip
def test_set_state_refuses_like_torch(bad, error):
    for lib in LIBS:
        g = lib.Generator().manual_seed(0)
        s = g.get_state()
        with pytest.raises(error):
            g.set_state(bad(s))
        with pytest.raises(error):
            lib.set_rng_state(bad(lib.get_rng_state()))
    with pytest.raises(RuntimeError, match="5056"):  # a PyTorch state: descent says why
        ds.set_rng_state(ds.tensor(torch.get_rng_state().numpy()))
    with pytest.raises(RuntimeError, match="Invalid PCG64 state"):
        ds.set_rng_state(ds.zeros(45, dtype=ds.uint8))


def test_old_dict_states_still_restore():
    g = ds.Generator(5)
    legacy = _legacy_state(g)
    first = ds.rand(3, generator=g)
    assert g.set_state(legacy) is g and ds.equal(ds.rand(3, generator=g), first)


def test_checkpoints_hold_the_state_without_pickle(tmp_path, monkeypatch):
    from descent import checkpoint_write
    from descent import io as dio

    model = ds.nn.Linear(2, 2)
    gen = ds.Generator(9)
    state = ds.get_rng_state()
    path = dio.save(tmp_path / "ck.safetensors", model, None, data_rng=gen.get_state())
    expected = ds.rand(3, generator=gen)
    ds.randn(10)  # move the default generator on; the checkpoint remembers the old state
    ck = dio.load(path)
    assert ck.meta["data_rng"].dtype == ds.uint8
    g2 = ds.Generator(0).set_state(ck.meta["data_rng"])
    assert ds.equal(ds.rand(3, generator=g2), expected)
    ck.restore_rng()
    assert ds.equal(ds.get_rng_state(), state)
    # a checkpoint written before 2026-12-05 holds the dict form: it still restores
    monkeypatch.setattr(checkpoint_write, "default_generator",
                        lambda: type("Old", (), {"get_state": lambda self: _legacy_state(
                            ds.default_generator())})())  # fmt: skip
    old = dio.save(tmp_path / "old.safetensors", model, None, rng=_legacy_state(gen))
    draw = ds.rand(4)
    monkeypatch.undo()
    ck = dio.load(old)
    ck.restore_rng()
    assert ds.equal(ds.rand(4), draw)
    assert ds.equal(ds.rand(3, generator=ds.Generator(0).set_state(ck.meta["rng"])),
                    ds.rand(3, generator=gen))
    # torch.save-style: descent.save / descent.load of a dict holding the state
    ds.save({"rng": state}, tmp_path / "state.pt")
    assert ds.equal(ds.load(tmp_path / "state.pt")["rng"], state)


# ---------------------------------------------------------------------------------------------
# 3. Namespace hygiene: descent's public names in torch's namespaces are torch's names


# Public names descent has there and torch does not, each one on purpose.
_ALLOWED_EXTRAS = {
    # descent.distributions' implementation submodules (attributes once imported, as torch's
    # own submodules torch.distributions.normal, ... are; torch's have other file names)
    "distributions": {"continuous", "discrete", "extra", "extra2", "kl_extra", "relaxed",
                      "transforms_extra"},  # fmt: skip
}
# PyTorch keeps these two in submodules (torch.distributions.relaxed_categorical, ...);
# descent exports them at the package level too (docs/distributions.md)
_ALLOWED_EXTRAS["distributions"] |= {"ExpRelaxedCategorical", "LogitRelaxedBernoulli"}


# descent.cuda's error for a call that needs a GPU where there is none: both torch's types
# (AssertionError on a CPU build, RuntimeError on a CUDA build without a GPU)
_ALLOWED_EXTRAS["cuda"] = {"CudaUnavailableError"}
# descent.nested's classes (its __all__, docs/nested.md: torch keeps its NestedTensor private) and
# implementation submodules
_ALLOWED_EXTRAS["nested"] = {"NestedTensor", "NestedInt", "NestedUnsupportedError", "functional",
                             "storage", "tensor"}  # fmt: skip


@pytest.mark.parametrize("name", ["linalg", "fft", "special", "nn.functional", "nn.init",
                                  "distributions", "distributions.constraints",
                                  "distributions.transforms", "nn.utils.rnn", "testing",
                                  "signal.windows", "cuda", "nested"])  # fmt: skip
def test_public_names_are_torchs(name):
    import importlib

    d = importlib.import_module(f"descent.{name}")
    t = importlib.import_module(f"torch.{name}")

    def public(m):
        # (`annotations`: the `from __future__ import annotations` feature object)
        return {n for n in dir(m) if not n.startswith("_")} - {"annotations"}

    extra = public(d) - public(t) - _ALLOWED_EXTRAS.get(name, set())
    assert not extra, f"descent.{name} leaks {sorted(extra)} (torch.{name} has no such names)"


def test_moved_names_still_work():
    # torch's top-level and method forms of special functions (now in descent.special_torch)
    x = ds.tensor([0.5, 1.5])
    y = torch.tensor([0.5, 1.5])
    for f in ("igamma", "igammac"):
        assert np.allclose(getattr(ds, f)(x, x).numpy(), getattr(torch, f)(y, y).numpy())
    assert np.allclose(ds.mvlgamma(x + 2, 2).numpy(), torch.mvlgamma(y + 2, 2).numpy())
    assert np.allclose(x.clone().erf_().numpy(), y.clone().erf_().numpy())
    assert np.allclose(ds.i0(x).numpy(), torch.i0(y).numpy())
    out = ds.empty(2)
    assert ds.igamma(x, x, out=out) is out
    # linalg's results print as torch's return types
    r = ds.linalg.slogdet(ds.eye(2))
    assert type(r).__name__ == type(torch.linalg.slogdet(torch.eye(2))).__name__
    assert repr(r).startswith("descent.return_types.linalg_slogdet(\nsign=")
    # the fft nodes keep their class names, which grad_fn names are keyed by: torch's (a real
    # input's fft is FftR2CBackward0 in torch 2.13, a complex one's FftC2CBackward0)
    for x in (ds.randn(4, requires_grad=True), ds.randn(4, dtype=ds.complex64, requires_grad=True)):
        tx = torch.tensor(x.detach().numpy(), requires_grad=True)
        assert ds.fft.fft(x).grad_fn.name() == torch.fft.fft(tx).grad_fn.name()


# ---------------------------------------------------------------------------------------------
# 4. fx.replace_pattern with patterns that return several values


def _fx_cases(lib):
    """(model, pattern, replacement) pairs: two independent results; two results sharing an
    inner node (readers after the match); a returned value also read inside the pattern; an
    inner value read outside (no match); `a + b` against `x + x` (no match: one node)."""

    class Two(lib.nn.Module):
        def forward(self, x, y):
            a, b = lib.sin(x), lib.cos(y)
            return a + b, a * b

    class Shared(lib.nn.Module):
        def forward(self, x):
            h = x * 2
            a, b = lib.relu(h), lib.sigmoid(h)
            c = a - b
            return a + b, lib.relu(c * 3), lib.sigmoid(c * 3)

    class ReadInside(lib.nn.Module):
        def forward(self, x):
            a = lib.relu(x)
            return a.sum(), (a * 3).sum()

    class Leaks(lib.nn.Module):
        def forward(self, x):
            h = x * 2
            return lib.relu(h), lib.sigmoid(h), h

    class SameInput(lib.nn.Module):
        def forward(self, x, y):
            return lib.relu(x + x), lib.relu(x + y)

    def shared_pattern(x):
        h = x * 2
        return lib.relu(h), lib.sigmoid(h)

    def shared_replacement(x):
        h = x + x
        return lib.tanh(h), lib.exp(h)

    def read_inside_pattern(x):
        a = lib.relu(x)
        return a, a * 3

    def read_inside_replacement(x):
        a = lib.sigmoid(x)
        return a, a + a

    return [
        (Two(), lambda x, y: (lib.sin(x), lib.cos(y)), lambda x, y: (lib.tanh(x), lib.relu(y))),
        (Shared(), shared_pattern, shared_replacement),
        (ReadInside(), read_inside_pattern, read_inside_replacement),
        (Leaks(), shared_pattern, lambda x: (lib.tanh(x), lib.exp(x))),
        (SameInput(), lambda a, b: lib.relu(a + b), lambda a, b: lib.sigmoid(a - b)),
    ]


@pytest.mark.parametrize("case", range(5))
def test_multi_output_replace_pattern_writes_torchs_code(case):
    got = {}
    for lib in LIBS:
        model, pattern, replacement = _fx_cases(lib)[case]
        gm = lib.fx.symbolic_trace(model)
        done = lib.fx.replace_pattern(gm, pattern, replacement)
        got[lib] = ([(m.anchor.name, sorted(k.name for k in m.nodes_map)) for m in done],
                    gm.code.replace("descent.", "torch."), gm)
    assert got[ds][:2] == got[torch][:2]
    args = [np.linspace(-1, 1, 6).astype(np.float32)] * (2 if case in (0, 4) else 1)
    for d, t in zip(got[ds][2](*map(ds.tensor, args)), got[torch][2](*map(torch.tensor, args)),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-6)


def test_multi_output_filters_and_errors():
    from descent.fx import subgraph_rewriter

    model, pattern, _ = _fx_cases(ds)[1]
    gm = ds.fx.symbolic_trace(model)
    seen = []

    def keep(match, original, pattern_graph):
        seen.append(([n.name for n in match.anchors], [n.name for n in match.returning_nodes]))
        return True

    subgraph_rewriter.replace_pattern_with_filters(gm, pattern, lambda x: (x, x),
                                                   match_filters=[keep])  # fmt: skip
    assert seen == [(["relu", "sigmoid"], ["relu", "sigmoid"])]
    with pytest.raises(ValueError, match="returns 2 values and the replacement 1"):
        ds.fx.replace_pattern(ds.fx.symbolic_trace(model), pattern, lambda x: ds.exp(x))


# ---------------------------------------------------------------------------------------------
# 1 (continued): the link from a tensor to its storage object is not copied


def test_copies_of_a_tensor_do_not_carry_its_storage():
    import copy
    import pickle

    x = ds.arange(4.0)
    s = x.untyped_storage()
    for y in (copy.deepcopy(x), pickle.loads(pickle.dumps(x))):
        assert y.tolist() == x.tolist()
        assert y.untyped_storage() is not s and y.untyped_storage().data_ptr() != s.data_ptr()
        y.untyped_storage().resize_(32)
        assert x.untyped_storage().nbytes() == 16 and y.untyped_storage().nbytes() == 32
