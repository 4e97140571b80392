"""torch.utils.checkpoint's selective checkpointing and small helpers, torch.autograd.graph's
GradientEdge / allow_mutation_on_saved_tensors, and torch.Generator's newer methods, against
PyTorch 2.13 (values, gradients, errors)."""

import functools
import sys
import warnings

import numpy as np
import pytest
import torch
from torch.utils import checkpoint as tcp

import descent
from descent.ops.linalg import MatMul
from descent.ops.linear import Linear
from descent.utils import checkpoint as dcp

RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 5)).astype(np.float32)
Y = RNG.standard_normal((5, 5)).astype(np.float32)


def _pair(a, lib):
    return lib.tensor(a, requires_grad=True)


def _fn(lib):
    def fn(x, y):
        return lib.sigmoid(lib.matmul(lib.matmul(x, y), y)) * y

    return fn


def _run(lib, cp, policy, counter=None):
    """Checkpointed fn with a SAC policy: (output, grads, ops seen by the policy)."""
    x, y = _pair(X, lib), _pair(Y, lib)
    seen = []

    def policy_fn(ctx, op, *args, **kwargs):
        seen.append(str(op))
        assert ctx.is_recompute is False and ctx.op_output is not None
        return policy(op)

    ctx_fn = functools.partial(cp.create_selective_checkpoint_contexts, policy_fn)
    out = cp.checkpoint(_fn(lib), x, y, use_reentrant=False, context_fn=ctx_fn)
    if counter is not None:
        counter[0] = 0
    out.sum().backward()
    return out.detach().numpy(), x.grad.numpy(), y.grad.numpy(), seen


@pytest.fixture
def matmul_calls(monkeypatch):
    """Counts descent's MatMul kernel runs (the selective recomputation must skip saved ones)."""
    calls = [0]
    original = MatMul.forward

    def counting(self, *arrays):
        calls[0] += 1
        return original(self, *arrays)

    monkeypatch.setattr(MatMul, "forward", counting)
    return calls


@pytest.mark.parametrize("save_mm", [True, False])
def test_selective_checkpoint_values_grads_and_no_recompute(matmul_calls, save_mm):
    def policy_d(op):
        if save_mm and op == descent.ops.aten.mm.default:
            return dcp.CheckpointPolicy.MUST_SAVE
        return dcp.CheckpointPolicy.PREFER_RECOMPUTE

    def policy_t(op):
        if save_mm and op == torch.ops.aten.mm.default:
            return tcp.CheckpointPolicy.MUST_SAVE
        return tcp.CheckpointPolicy.PREFER_RECOMPUTE

    d = _run(descent, dcp, policy_d, matmul_calls)
    backward_calls = matmul_calls[0]
    t = _run(torch, tcp, policy_t)
    assert d[3] == t[3] == ["aten.mm.default", "aten.mm.default", "aten.sigmoid.default",
                            "aten.mul.Tensor"]  # fmt: skip
    for a, b in zip(d[:3], t[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # plain training gives the same gradients
    x, y = _pair(X, descent), _pair(Y, descent)
    _fn(descent)(x, y).sum().backward()
    np.testing.assert_array_equal(d[1], x.grad.numpy())
    np.testing.assert_array_equal(d[2], y.grad.numpy())
    # the two products run again in backward only when they were not saved (the backward's
    # own gradient products do not go through MatMul.forward)
    assert backward_calls == (0 if save_mm else 2)
    assert MatMul.forward.__name__ == "counting"  # the patch is undone


def test_selective_checkpoint_list_policy_linear_and_errors(monkeypatch):
    calls = [0]
    original = Linear.forward

    def counting(self, *arrays):
        calls[0] += 1
        return original(self, *arrays)

    monkeypatch.setattr(Linear, "forward", counting)
    w = RNG.standard_normal((3, 4)).astype(np.float32)
    grads = []
    for lib, cp in ((descent, dcp), (torch, tcp)):
        lin = lib.nn.Linear(4, 3)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.fill_(0.5)
        x = lib.tensor(X[:, :4], requires_grad=True)
        ctx_fn = functools.partial(cp.create_selective_checkpoint_contexts,
                                   [lib.ops.aten.addmm.default])  # fmt: skip
        out = cp.checkpoint(lambda v, m=lin: m(v).relu() * 2, x, use_reentrant=False,
                            context_fn=ctx_fn)  # fmt: skip
        calls[0] = 0
        out.sum().backward()
        grads.append((x.grad.numpy(), lin.weight.grad.numpy(), lin.bias.grad.numpy()))
        if lib is descent:
            assert calls[0] == 0  # the saved addmm (descent's Linear) did not run again
            with pytest.raises(RuntimeError, match="Trying to backward an extra time"):
                out2 = cp.checkpoint(lambda v, m=lin: m(v).relu() * 2, x, use_reentrant=False,
                                     context_fn=ctx_fn)  # fmt: skip
                out2.sum().backward(retain_graph=True)
                out2.sum().backward()
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for cp, lib in ((dcp, descent), (tcp, torch)):
        with pytest.raises(ValueError, match="change it to `torch.ops.aten.mm.default`"):
            cp.create_selective_checkpoint_contexts([lib.ops.aten.mm])
        with pytest.raises(TypeError, match="must be either a function or a list of ops"):
            cp.create_selective_checkpoint_contexts(3)


def test_selective_checkpoint_mutated_cache_entry():
    def fn(lib):
        def f(x, y):
            z = lib.mm(x, y)
            z.mul_(2)  # the saved mm output changes after it was saved
            return (z * z).sum()  # (allow=True: the recomputed z is doubled twice, as torch's)

        return f

    for allow in (False, True):
        results = []
        for lib, cp in ((descent, dcp), (torch, tcp)):
            x, y = _pair(X, lib), _pair(Y, lib)
            ctx_fn = functools.partial(cp.create_selective_checkpoint_contexts,
                                       [lib.ops.aten.mm.default], allow)  # fmt: skip
            out = cp.checkpoint(fn(lib), x, y, use_reentrant=False, context_fn=ctx_fn)
            if not allow:
                with pytest.raises(RuntimeError, match="has been mutated"):
                    out.backward()
                continue
            out.backward()
            results.append((x.grad.numpy(), y.grad.numpy()))
        if allow:
            for a, b in zip(*results, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_checkpoint_small_names():
    for lib, cp in ((descent, dcp), (torch, tcp)):
        a, b = lib.ones(2, requires_grad=True), lib.ones(2)
        da, db, n = cp.detach_variable((a, b, 3))
        assert da.requires_grad and not db.requires_grad and n == 3 and da.grad_fn is None
        with pytest.raises(RuntimeError, match="Only tuple of tensors is supported. Got "
                                               "Unsupported input type: list"):  # fmt: skip
            cp.detach_variable([a])
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
            cp.check_backward_validity([b, 1])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cp.check_backward_validity([a])
        state = sys.modules[cp.set_checkpoint_early_stop.__module__]  # where the settings live
        with cp.set_checkpoint_early_stop(False), cp.set_checkpoint_debug_enabled(True):
            assert state._enable_checkpoint_early_stop is False
            assert state._checkpoint_debug_enabled is True
        assert state._enable_checkpoint_early_stop is None
        assert state._checkpoint_debug_enabled is None
        assert cp.get_device_states(a, [b]) == ([], [])
        cp.set_device_states([], [])
        assert {p.name for p in cp.CheckpointPolicy} >= {"MUST_SAVE", "PREFER_RECOMPUTE"}
    assert dcp.DefaultDeviceType.get_device_type() == tcp.DefaultDeviceType.get_device_type()
    assert sorted(map(str, dcp.SAC_IGNORED_OPS)) == sorted(map(str, tcp.SAC_IGNORED_OPS))
    for cp in (dcp, tcp):
        with cp.GraphExecGroup() as group:
            assert cp.GraphExecGroup._get_current_group() is group
            with pytest.raises(RuntimeError, match="GraphExecGroup contexts cannot be nested"):
                with cp.GraphExecGroup():
                    pass
        assert cp.GraphExecGroup._get_current_group() is None


def test_checkpoint_function_reentrant():
    grads = []
    for lib, cp in ((descent, dcp), (torch, tcp)):
        lib.manual_seed(0)
        x, y = _pair(X, lib), _pair(Y, lib)
        out = cp.CheckpointFunction.apply(_fn(lib), True, x, y)
        out.sum().backward()
        grads.append((out.detach().numpy(), x.grad.numpy(), y.grad.numpy()))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_edge_as_grad_input():
    got = []
    for lib in (descent, torch):
        x, w = _pair(X[:3], lib), _pair(Y[:, :2], lib)
        h = x @ w
        loss = (h.tanh() ** 2).sum()
        g = lib.autograd.graph
        e = g.get_gradient_edge(h)
        assert e.node is h.grad_fn and e.output_nr == 0 and isinstance(e, tuple)
        ge = lib.autograd.grad(loss, e, retain_graph=True)[0]
        gh = lib.autograd.grad(loss, h, retain_graph=True)[0]
        gx, gw = lib.autograd.grad(loss, [g.get_gradient_edge(x), w], retain_graph=True)
        gb = lib.autograd.grad(loss, [g.GradientEdge(h.grad_fn, 0)])[0]
        assert type(g.get_gradient_edge(x).node).__name__ == "AccumulateGrad"
        np.testing.assert_array_equal(ge.numpy(), gh.numpy())
        np.testing.assert_array_equal(gb.numpy(), gh.numpy())
        got.append((gh.numpy(), gx.numpy(), gw.numpy()))
        with pytest.raises(RuntimeError, match="not possible to get the gradient edge for a "
                                               "Tensor that does not require"):  # fmt: skip
            g.get_gradient_edge(lib.ones(2))
        assert g.set_warn_on_accumulate_grad_stream_mismatch(False) is None
        g.set_warn_on_accumulate_grad_stream_mismatch(True)
    for a, b in zip(*got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_allow_mutation_on_saved_tensors():
    grads = []
    for lib in (descent, torch):
        g = lib.autograd.graph
        with g.allow_mutation_on_saved_tensors() as ctx:
            a = lib.tensor(X[:2, :3], requires_grad=True)
            b = a.clone()
            out = (b**2).sum() + (b * a.exp()).sum()
            b.sin_()
            out.backward()
            with pytest.raises(RuntimeError, match="contexts cannot be nested"):
                with g.allow_mutation_on_saved_tensors():
                    pass
        assert ctx is not None
        grads.append(a.grad.numpy())
        # outside: the version-counter error stays
        a = lib.tensor(X[:2, :3], requires_grad=True)
        b = a.clone()
        out = (b**2).sum()
        b.sin_()
        with pytest.raises(RuntimeError, match="modified by an inplace operation|modified in "
                                               "place"):  # fmt: skip
            out.backward()
        # a graph recorded inside, used after the block
        with g.allow_mutation_on_saved_tensors():
            a = lib.tensor(X[:2, :3], requires_grad=True)
            out = (a.clone() ** 2).sum()
        with pytest.raises(AssertionError, match="Trying to backward outside"):
            out.backward()
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    # the gradient is the one of the values before the in-place change
    np.testing.assert_allclose(grads[0], 2 * X[:2, :3] + np.exp(X[:2, :3]) * (1 + X[:2, :3]),
                               rtol=1e-5)  # fmt: skip


def test_generator_device_clone_offset_graphsafe():
    gens = (descent.Generator(), torch.Generator())
    assert str(gens[0].device) == str(gens[1].device) == "cpu"
    assert gens[0].device == descent.device("cpu")
    for lib, gen in zip((descent, torch), gens, strict=True):
        gen.manual_seed(7)
        lib.rand(2, generator=gen)
        c = gen.clone_state()
        assert c is not gen and c.initial_seed() == 7
        np.testing.assert_array_equal(lib.rand(4, generator=gen).numpy(),
                                      lib.rand(4, generator=c).numpy())  # fmt: skip
        for call in (gen.get_offset, lambda g=gen: g.set_offset(3)):
            with pytest.raises(RuntimeError, match="^CPU Generator does not use offset$"):
                call()
        with pytest.raises(RuntimeError, match="manual_offset expected a long, but got str"):
            gen.set_offset("a")
        with pytest.raises(NotImplementedError, match="graphsafe_get_state is not supported"):
            gen.graphsafe_get_state()
        with pytest.raises(NotImplementedError, match="graphsafe_set_state is not supported"):
            gen.graphsafe_set_state(gen)
        with pytest.raises(TypeError, match="expected a Generator, but got int"):
            gen.graphsafe_set_state(3)


def test_aten_names():
    a = descent.ops.aten
    assert a.mm.default is a.mm.default and a.mm.default != a.bmm.default
    t_aten = torch.ops.aten
    for d, t in ((a.mm.default, t_aten.mm.default), (a.add.Tensor, t_aten.add.Tensor),
                 (a.mm, t_aten.mm)):  # fmt: skip
        assert repr(d) == repr(t) and str(d) == str(t)
    assert a.add.Tensor.name() == torch.ops.aten.add.Tensor.name()
    m = descent.tensor(X)
    np.testing.assert_array_equal(a.mm.default(m, m).numpy(), (m @ m).numpy())


def _spd(m, seed=1):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    return (q * np.linspace(1, 5, m) ** 2) @ q.T  # distinct eigenvalues 1 .. 25


def test_lobpcg_values_against_eigh_and_torch():
    a = _spd(12)
    w = np.linalg.eigh(a)[0]
    steps = []
    for largest in (True, False):
        for method in ("ortho", "basic"):
            descent.manual_seed(0)
            e, x = descent.lobpcg(descent.tensor(a.astype(np.float32)), k=2, largest=largest,
                                  method=method, tracker=lambda wk: steps.append(
                                      wk.ivars["converged_count"]))  # fmt: skip
            et, _ = torch.lobpcg(torch.tensor(a.astype(np.float32)), k=2, largest=largest,
                                 method=method)  # fmt: skip
            want = w[::-1][:2] if largest else w[:2]
            np.testing.assert_allclose(e.numpy(), want, rtol=1e-4)
            np.testing.assert_allclose(e.numpy(), et.numpy(), rtol=1e-4)
            xn = x.numpy()
            np.testing.assert_allclose(xn.T @ xn, np.eye(2), atol=1e-4)
            np.testing.assert_allclose(a @ xn, xn * e.numpy(), atol=5e-3)
    assert steps and steps[-1] == 2
    # a batch and a generalized problem (B SPD): the eigenvalues of L^-1 A L^-T, B = L L^T
    b = _spd(12, seed=2) / 10
    e, x = descent.lobpcg(descent.tensor(np.stack([a, a])), k=1, B=descent.tensor(np.stack([b, b])))
    c = np.linalg.cholesky(b)
    ci = np.linalg.inv(c)
    wg = np.linalg.eigh(ci @ a @ ci.T)[0]
    np.testing.assert_allclose(e.numpy()[:, 0], [wg[-1]] * 2, rtol=1e-8)
    np.testing.assert_allclose(x.numpy()[0].T @ b @ x.numpy()[0], [[1.0]], rtol=1e-8)
    for lib in (descent, torch):
        with pytest.raises(ValueError, match=r"number of A rows \(=6\) is smaller than 3 x the "
                                             r"number of requested eigenpairs \(=3\)"):  # fmt: skip
            lib.lobpcg(lib.tensor(a[:6, :6]), k=3)
        with pytest.raises(ValueError, match="does not support backward with B != I"):
            a_t = lib.tensor(a, requires_grad=True)
            lib.lobpcg(a_t, k=1, B=lib.tensor(b))[0].sum().backward()


def test_lobpcg_gradient_torch_and_finite_differences():
    m, k = 12, 2
    a = _spd(m)
    x0 = np.eye(m, k) + 0.1

    def loss(lib, at, tol=None):
        e, x = lib.lobpcg(at, k=k, X=lib.tensor(x0), tol=tol)
        weights = lib.arange(m, dtype=at.dtype)[:, None]
        return e.sum() + (x**2 * weights).sum() + (x[:, 0] ** 4).sum()  # sign-invariant

    grads = []
    for lib in (descent, torch):
        at = lib.tensor(a, requires_grad=True)
        loss(lib, at).backward()
        grads.append(at.grad.numpy())
    # both iterate to tol = sqrt(eps) ~ 1.5e-8
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[0], grads[0].T, atol=1e-12)  # symmetric, as PyTorch's
    h, tight = 1e-5, 1e-13  # converged far below h^2 so that the differences are smooth
    for i, j in ((0, 0), (0, 3), (2, 5)):  # along symmetric directions E_ij + E_ji
        d = np.zeros_like(a)
        d[i, j] += h
        d[j, i] += h
        fd = (loss(descent, descent.tensor(a + d), tight).item()
              - loss(descent, descent.tensor(a - d), tight).item()) / (2 * h)  # fmt: skip
        np.testing.assert_allclose(fd, 2 * grads[0][i, j], rtol=1e-4, atol=1e-6)


def test_gradient_edges_as_outputs_pipeline_weight_step():
    """PyTorch's pipeline schedule (stage_backward_weight): the gradient kept at an
    intermediate node is pushed from GradientEdge(node, 0) to the weights' AccumulateGrad
    edges; it equals the weights' gradients of the whole loss."""
    got = []
    for lib in (descent, torch):
        g = lib.autograd.graph
        x = lib.tensor(X[:3])
        w1, w2 = _pair(Y[:, :4], lib), _pair(Y[:4, :2], lib)
        h = (x @ w1).tanh()
        loss = (h @ w2).sin().sum()
        dh = lib.autograd.grad(loss, h, retain_graph=True)[0]
        full = lib.autograd.grad(loss, w1, retain_graph=True)[0]
        (dw1,) = lib.autograd.grad([g.GradientEdge(h.grad_fn, 0)],
                                   (g.get_gradient_edge(w1),), grad_outputs=[dh])  # fmt: skip
        np.testing.assert_allclose(dw1.numpy(), full.numpy(), rtol=1e-6, atol=1e-7)
        got.append(dw1.numpy())
    np.testing.assert_allclose(got[0], got[1], rtol=1e-5, atol=1e-6)


def test_gradient_edges_as_backward_inputs():
    """backward(inputs=[edge]): a leaf's edge accumulates into its .grad; a non-leaf's edge is
    computed but stored nowhere (PyTorch's)."""
    for lib in (descent, torch):
        g = lib.autograd.graph
        x, w = _pair(X[0], lib), _pair(Y[0], lib)
        h = x * w
        loss = (h * h).sum()
        loss.backward(inputs=[g.get_gradient_edge(x)], retain_graph=True)
        np.testing.assert_allclose(x.grad.numpy(), 2 * X[0] * Y[0] ** 2, rtol=1e-6)
        assert w.grad is None
        h.retain_grad()
        lib.autograd.backward(loss, inputs=g.get_gradient_edge(h))
        np.testing.assert_allclose(h.grad.numpy(), 2 * h.detach().numpy(), rtol=1e-6)
        assert w.grad is None  # retain_grad fired as the gradient passed h (PyTorch's)
        # a retained non-leaf named in inputs gets its gradient once (descent gave twice)
        h2 = x * 3
        h2.retain_grad()
        lib.autograd.backward((h2 * h2).sum(), inputs=[h2])
        np.testing.assert_allclose(h2.grad.numpy(), 6 * X[0], rtol=1e-6)


def test_aten_packets_key_flop_counts():
    """FlopCounterMode's counts are looked up by torch.ops.aten.mm, as with PyTorch's."""
    from torch.utils.flop_counter import FlopCounterMode as TorchCounter

    from descent.utils.flop_counter import FlopCounterMode

    counts = []
    for lib, counter in ((descent, FlopCounterMode), (torch, TorchCounter)):
        a = lib.tensor(X[:4], requires_grad=True)
        with counter(display=False) as fc:
            (a @ lib.tensor(Y[:, :3])).sum().backward()
        table = fc.get_flop_counts()["Global"]
        assert lib.ops.aten.mm in table and lib.ops.aten.mm != "aten.mm"
        counts.append(table[lib.ops.aten.mm])
    assert counts[0] == counts[1] == 2 * 2 * 4 * 5 * 3
