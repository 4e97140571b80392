"""descent.optim.Muon against torch.optim.Muon (PyTorch 2.13), and muon_param_groups.

PyTorch runs Muon's Newton–Schulz iteration in bfloat16; descent runs it in the parameter's
dtype. The parity oracle is therefore torch's own Muon code with its one cast to bfloat16 made
the identity (`_full_precision_torch`): everything else (momentum lerp, Nesterov, the Frobenius
normalisation, transposition of tall matrices, addmm, weight decay, lr adjustment) is torch's.
Against that, 20 steps agree to float64 rtol 1e-10 and float32 rtol 1e-5. Against the stock
bfloat16 torch.optim.Muon the updates agree to bfloat16 precision (a separate test).
"""

from __future__ import annotations

import contextlib
import json
import math

import numpy as np
import pytest

import descent
import descent.optim as optim
from descent import io, nn
from descent.models import GPT, GPTConfig
from descent.nn import Parameter
from descent.optim.muon import zeropower_via_newton_schulz

torch = pytest.importorskip("torch")

SHAPES = [(6, 4), (4, 6), (5, 5), (16, 3), (2, 9)]  # tall, wide, square, thin, short
STEPS = 20
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = [np.float64, np.float32]
CONFIGS = [
    dict(),  # torch's defaults: lr 1e-3, weight_decay 0.1, momentum 0.95, nesterov
    dict(lr=0.02, weight_decay=0.0),
    dict(lr=0.02, nesterov=False),
    dict(lr=0.05, weight_decay=0.2, momentum=0.9, adjust_lr_fn="original"),
    dict(lr=0.01, adjust_lr_fn="match_rms_adamw"),
    dict(lr=0.01, nesterov=False, adjust_lr_fn="match_rms_adamw", weight_decay=0.05),
    dict(lr=0.02, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-5, momentum=0.3),
]


@contextlib.contextmanager
def _full_precision_torch():
    """torch.optim.Muon with its Newton–Schulz iteration in the parameter's dtype."""
    orig = torch._C.TensorBase.bfloat16
    torch.Tensor.bfloat16 = lambda self: self.clone()  # the one cast in _muon.py
    try:
        yield
    finally:
        del torch.Tensor.bfloat16  # back to the C method inherited from TensorBase
        assert torch.Tensor.bfloat16 is orig


def _data(dtype, seed=0, steps=STEPS, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return init, grads


def _pair(init, dtype):
    ps = [Parameter(a.copy(), dtype=dtype) for a in init]
    qs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
    return ps, qs


def _set_grads(ps, qs, grads):
    for p, q, g in zip(ps, qs, grads, strict=True):
        p.grad = None if g is None else descent.tensor(g, dtype=g.dtype)
        q.grad = None if g is None else torch.tensor(g)


def _assert_same(ps, qs, dtype, what=""):
    for i, (p, q) in enumerate(zip(ps, qs, strict=True)):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(
            p.numpy(), q.detach().numpy(), **TOL[dtype], err_msg=f"{what} parameter {i}"
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kwargs", CONFIGS, ids=[str(k) for k in CONFIGS])
def test_muon_matches_torch_for_20_steps(kwargs, dtype):
    init, grads = _data(dtype)
    # One parameter misses its gradient at step 3 (skipped, its momentum untouched).
    grads[3][1] = None
    ps, qs = _pair(init, dtype)
    ours = optim.Muon(ps, **kwargs, ns_dtype=None)  # the full-precision iteration
    theirs = torch.optim.Muon(qs, **kwargs)
    with _full_precision_torch():
        for t in range(STEPS):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
    _assert_same(ps, qs, dtype, f"Muon{kwargs}")
    for p, q in zip(ps, qs, strict=True):
        st = ours.state[p]
        assert list(st) == list(theirs.state[q]) == ["momentum_buffer"]  # no "step", as torch's
        np.testing.assert_allclose(
            st["momentum_buffer"].numpy(), theirs.state[q]["momentum_buffer"].numpy(), **TOL[dtype]
        )


def test_muon_agrees_with_stock_bfloat16_torch_to_bfloat16_precision():
    """Stock torch.optim.Muon orthogonalises in bfloat16 (8 significant bits, rounding 2^-9 per
    operation, amplified by the iteration). descent's default (ns_dtype="bfloat16") emulates
    it and gives the same update; the full-precision iteration (ns_dtype=None) differs from it
    by 1-4% of the update's norm (measured over shapes up to 128x512), never by 0 and never
    by a lot."""
    init, grads = _data(np.float64, seed=1, steps=1)
    ps, qs = _pair(init, np.float64)
    ps_full, _ = _pair(init, np.float64)
    ours = optim.Muon(ps, lr=1.0, weight_decay=0.0)
    full = optim.Muon(ps_full, lr=1.0, weight_decay=0.0, ns_dtype=None)
    theirs = torch.optim.Muon(qs, lr=1.0, weight_decay=0.0)
    _set_grads(ps, qs, grads[0])
    _set_grads(ps_full, qs, grads[0])
    ours.step()
    full.step()
    theirs.step()
    for p, pf, q, a in zip(ps, ps_full, qs, init, strict=True):
        d_theirs = q.detach().numpy() - a
        np.testing.assert_allclose(p.numpy() - a, d_theirs, rtol=1e-12, atol=1e-14)
        d_full = pf.numpy() - a
        rel = np.linalg.norm(d_full - d_theirs) / np.linalg.norm(d_full)
        assert 1e-4 < rel < 6e-2, rel  # bfloat16 noise: present, and small


def test_newton_schulz_sets_singular_values_near_one():
    """Muon's promise: after 5 steps every singular value of the update lies in about
    [0.7, 1.2] (Keller Jordan's post), whatever the spread before."""
    rng = np.random.default_rng(2)
    u = rng.standard_normal((32, 16)) @ np.diag(np.logspace(0, -2, 16))  # spread 100x
    s_before = np.linalg.svd(u, compute_uv=False)
    o = zeropower_via_newton_schulz(u)
    s_after = np.linalg.svd(o, compute_uv=False)
    assert s_before.max() / s_before.min() > 50
    assert 0.6 < s_after.min() and s_after.max() < 1.25
    # Same singular vectors: O is about U V^T of u's SVD, so u^T O is symmetric positive.
    sym = u.T @ o
    np.testing.assert_allclose(sym, sym.T, atol=1e-10)
    assert np.linalg.eigvalsh(sym).min() > 0
    # A tall matrix is handled through its transpose: NS(u^T) = NS(u)^T.
    np.testing.assert_allclose(zeropower_via_newton_schulz(u.T), o.T, rtol=1e-12, atol=1e-14)
    # A zero update stays zero (eps guards the division).
    assert not zeropower_via_newton_schulz(np.zeros((3, 4))).any()


def _through_checkpoint(sd):
    """Tensors to NumPy, the rest through JSON, as a checkpoint stores them."""
    meta = {"state": {}, "param_groups": sd["param_groups"]}
    arrays = {}
    for idx, st in sd["state"].items():
        meta["state"][idx] = {k: v for k, v in st.items() if not isinstance(v, descent.Tensor)}
        arrays[idx] = {k: v.numpy().copy() for k, v in st.items() if isinstance(v, descent.Tensor)}
    meta = json.loads(json.dumps(meta))
    for idx, st in meta["state"].items():
        st.update(arrays[int(idx)])
    return meta


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_muon_state_dict_resume_mid_run(dtype):
    """10 steps, save (through JSON), load into a fresh optimizer, 10 more = 20 straight."""
    init, grads = _data(dtype, seed=3)
    ps, qs = _pair(init, dtype)
    kw = dict(lr=0.02, adjust_lr_fn="match_rms_adamw")
    ours = optim.Muon(
        [{"params": ps[:2]}, {"params": ps[2:], "nesterov": False}], **kw, ns_dtype=None
    )
    theirs = torch.optim.Muon([{"params": qs[:2]}, {"params": qs[2:], "nesterov": False}], **kw)
    with _full_precision_torch():
        for t in range(10):
            _set_grads(ps, qs, grads[t])
            ours.step()
            theirs.step()
        sd = _through_checkpoint(ours.state_dict())
        ours.step()  # the snapshot must not follow later steps
        ps2 = [Parameter(q.detach().numpy().copy(), dtype=dtype) for q in qs]
        fresh = optim.Muon([{"params": ps2[:2]}, {"params": ps2[2:]}], lr=5.0, ns_dtype=None)
        fresh.load_state_dict(sd)
        assert fresh.param_groups[1]["nesterov"] is False and fresh.param_groups[0]["lr"] == 0.02
        assert fresh.param_groups[0]["ns_coefficients"] == (3.4445, -4.7750, 2.0315)
        assert list(fresh.state[ps2[0]]) == ["momentum_buffer"]
        for t in range(10, STEPS):
            _set_grads(ps2, qs, grads[t])
            fresh.step()
            theirs.step()
    _assert_same(ps2, qs, dtype, "Muon after load_state_dict")


def test_muon_checkpoint_file_round_trip(tmp_path):
    """descent.io.save/load carries Muon's state: resuming gives the same next step."""
    descent.manual_seed(0)
    model = nn.Linear(5, 3, bias=False)
    opt = optim.Muon(model.parameters(), lr=0.05)
    rng = np.random.default_rng(5)
    g = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(3)]
    for t in range(2):
        model.weight.grad = descent.tensor(g[t])
        opt.step()
    io.save(tmp_path / "ck.safetensors", model, opt, step=2)
    descent.manual_seed(1)
    model2 = nn.Linear(5, 3, bias=False)
    opt2 = optim.Muon(model2.parameters(), lr=0.05)
    io.load(tmp_path / "ck.safetensors", model2, opt2)
    for m, o in ((model, opt), (model2, opt2)):
        m.weight.grad = descent.tensor(g[2])
        o.step()
    np.testing.assert_array_equal(model.weight.numpy(), model2.weight.numpy())


def test_muon_validates_its_options():
    w = Parameter(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        optim.Muon([Parameter(np.zeros(3))])
    with pytest.raises(ValueError, match="2-D"):
        optim.Muon([w, Parameter(np.zeros((2, 2, 2)))])
    for bad in (dict(lr=-1.0), dict(momentum=-0.1), dict(weight_decay=-1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            optim.Muon([w], **bad)
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        optim.Muon([w], adjust_lr_fn="sqrt")
    with pytest.raises(ValueError, match="ns_steps"):
        optim.Muon([w], ns_steps=100)
    with pytest.raises(ValueError, match="ns_coefficients"):
        optim.Muon([w], ns_coefficients=(1.0, 2.0))
    opt = optim.Muon([w])
    with pytest.raises(ValueError, match="2-D"):
        opt.add_param_group({"params": [Parameter(np.zeros(4))]})


def test_muon_adjusted_learning_rates():
    """With momentum 0, one step moves w by -lr * r(A, B) * NS(g) for each adjust_lr_fn."""
    q = np.linalg.qr(np.random.default_rng(6).standard_normal((8, 2)))[0]  # (8, 2), Q^T Q = I
    for fn, ratio in ((None, 2.0), ("original", 2.0), ("match_rms_adamw", 0.2 * math.sqrt(8))):
        w = Parameter(np.zeros((8, 2)), dtype=np.float64)
        opt = optim.Muon(
            [w], lr=0.1, weight_decay=0.0, momentum=0.0, adjust_lr_fn=fn, ns_dtype=None
        )
        w.grad = descent.tensor(q, dtype=np.float64)
        opt.step()
        # With momentum 0 the update is NS(g) (Nesterov or not), scaled by lr * ratio.
        o = zeropower_via_newton_schulz(q)
        np.testing.assert_allclose(-w.numpy(), 0.1 * ratio * o, rtol=1e-12)


def test_muon_param_groups_split_a_gpt():
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, bias=True)
    model = GPT(cfg)
    hidden, other = muon_split = optim.muon_param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    hidden_names = sorted(names[id(p)] for p in hidden)
    assert hidden_names == sorted(
        f"transformer.h.{i}.{m}.weight"
        for i in range(2)
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    )
    other_names = {names[id(p)] for p in other}
    assert "transformer.wte.weight" in other_names  # tied to lm_head: the embedding's side
    assert "transformer.wpe.weight" in other_names
    assert all(p.ndim == 1 for n, p in model.named_parameters() if n in other_names - {
        "transformer.wte.weight", "transformer.wpe.weight"})  # fmt: skip
    assert len(hidden) + len(other) == len(list(model.parameters()))
    assert {id(p) for p in hidden}.isdisjoint({id(p) for p in other})
    # Both optimizers accept their share, and one step of each trains the model.
    opt_m = optim.Muon(muon_split[0], lr=0.02, weight_decay=0.0)
    opt_a = optim.AdamW(muon_split[1], lr=1e-3)
    rng = np.random.default_rng(0)
    x = descent.tensor(rng.integers(0, 11, (2, 8)))
    _, loss0 = model(x, x)
    loss0.backward()
    opt_m.step()
    opt_a.step()
    _, loss1 = model(x, x)
    assert loss1.item() < loss0.item()


def test_muon_param_groups_untied_head_goes_to_adamw():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.hidden = nn.Linear(4, 4)
            self.lm_head = nn.Linear(4, 10, bias=False)

    net = Net()
    net.emb.weight.requires_grad_(False)
    hidden, other = optim.muon_param_groups(net)
    assert hidden == [net.hidden.weight]
    assert other == [net.hidden.bias, net.lm_head.weight]  # frozen embedding left out
    hidden, other = optim.muon_param_groups(net, head_names=())
    assert hidden == [net.hidden.weight, net.lm_head.weight]


def test_gradient_report_shows_muon_spectrum_before_and_after():
    """gradient_report(model, [muon, adamw]) gives each Muon tensor the singular values of
    its next update, before and after orthogonalisation; checked against NumPy's SVD of the
    update computed here by hand (first step: the momentum starts at zero)."""
    from descent.explain import gradient_report

    descent.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 6))
    hidden = [model[0].weight, model[2].weight]
    other = [model[0].bias, model[2].bias]
    muon = optim.Muon(hidden, lr=0.02, momentum=0.9)
    adamw = optim.AdamW(other, lr=1e-3)
    rng = np.random.default_rng(7)
    x = descent.tensor(rng.standard_normal((64, 12)), dtype=np.float32)
    # Targets dominated by one direction: the gradient's singular values spread widely.
    y = descent.tensor(np.outer(rng.standard_normal(64), rng.standard_normal(6)) * 3.0
                       + 0.01 * rng.standard_normal((64, 6)), dtype=np.float32)  # fmt: skip
    ((model(x) - y) ** 2).mean().backward()
    report = gradient_report(model, [muon, adamw])

    for name, p in model.named_parameters():
        stats = report[name]
        if p.ndim == 1:
            assert stats.muon is None  # AdamW's tensors: no spectrum
            continue
        g = p.grad.numpy().astype(np.float64)
        m = 0.1 * g  # M = 0 + (1 - mu)(g - 0)
        u = g + 0.9 * (m - g)  # Nesterov
        s_before = np.linalg.svd(u, compute_uv=False)
        # the iteration the optimizer runs: PyTorch's bfloat16 (Muon's default ns_dtype)
        o = zeropower_via_newton_schulz(u.astype(np.float32), ns_dtype=muon.ns_dtype)
        s_after = np.linalg.svd(o.astype(np.float64), compute_uv=False)
        np.testing.assert_allclose(stats.muon["before"], [s_before.min(), s_before.max()],
                                   rtol=1e-4)  # fmt: skip
        np.testing.assert_allclose(stats.muon["after"], [s_after.min(), s_after.max()],
                                   rtol=1e-3, atol=1e-4)  # fmt: skip
        # Muon's band: every singular value of the applied update lies near 1 ...
        lo, hi = stats.muon["after"]
        assert 0.5 < lo and hi < 1.5, (name, lo, hi)
        # ... while before, the largest dominates the smallest by far more.
        b_lo, b_hi = stats.muon["before"]
        assert b_hi / b_lo > 5 * (hi / lo), (name, b_lo, b_hi)
    text = str(report)
    assert "Muon: singular values" in text and "0.weight" in text
    assert report.to_dict()["params"][0]["muon"]["after"][1] < 1.5
    # Reporting changes nothing: the step after it equals a twin's step without a report.
    twins = [Parameter(p.numpy().copy()) for p in hidden]
    for t, p in zip(twins, hidden, strict=True):
        t.grad = descent.tensor(p.grad.numpy().copy())
    twin_opt = optim.Muon(twins, lr=0.02, momentum=0.9)
    assert not muon.state  # preview_update created no state
    muon.step()
    twin_opt.step()
    for p, t in zip(hidden, twins, strict=True):
        np.testing.assert_array_equal(p.numpy(), t.numpy())


def _tiny_gpt(seed=0, **options):
    descent.manual_seed(seed)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, bias=True,
                    **options)  # fmt: skip
    return GPT(cfg)


def _loss_step(model, opt, seed):
    rng = np.random.default_rng(seed)
    x = descent.tensor(rng.integers(0, 11, (2, 8)))
    y = descent.tensor(rng.integers(0, 11, (2, 8)))
    _, loss = model(x, y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.item()


def test_muon_with_adamw_equals_the_two_optimizers_side_by_side():
    """One MuonWithAdamW step = Muon on the hidden matrices + AdamW (decay on matrices only)."""
    a, b = _tiny_gpt(tie_weights=False), _tiny_gpt(tie_weights=False)
    combined = optim.MuonWithAdamW(a, lr=0.03, adamw_lr=2e-3, adamw_weight_decay=0.1)
    hidden, other = optim.muon_param_groups(b)
    muon = optim.Muon(hidden, lr=0.03, weight_decay=0.0, ns_dtype=None)  # MuonWithAdamW's
    adamw = optim.AdamW(
        [{"params": [p for p in other if p.ndim == 2], "weight_decay": 0.1},
         {"params": [p for p in other if p.ndim == 1], "weight_decay": 0.0}],
        lr=2e-3, betas=(0.9, 0.95),
    )  # fmt: skip
    assert [g["use_muon"] for g in combined.param_groups] == [True, False, False]
    assert len(combined.param_groups[0]["params"]) == 8  # 2 blocks x c_attn, c_proj, c_fc, c_proj
    for t in range(3):
        _loss_step(a, combined, t)
        rng = np.random.default_rng(t)
        x = descent.tensor(rng.integers(0, 11, (2, 8)))
        y = descent.tensor(rng.integers(0, 11, (2, 8)))
        b(x, y)[1].backward()
        muon.step()
        adamw.step()
        muon.zero_grad()
        adamw.zero_grad()
    for (n, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)
    assert "Muon" in repr(combined) and "AdamW" in repr(combined)


def test_muon_with_adamw_checkpoint_resume(tmp_path):
    """Three steps, save with descent.io, load into a fresh model and optimizer, three more:
    the same weights as six straight steps."""
    straight = _tiny_gpt(rope=True, qk_norm=True)
    opt = straight.configure_optimizers(0.1, 3e-3, (0.9, 0.95), optimizer="muon", muon_lr=0.02)
    assert isinstance(opt, optim.MuonWithAdamW)
    assert [g["lr_scale"] for g in opt.param_groups] == pytest.approx([0.02 / 3e-3, 1.0, 1.0])
    for t in range(3):
        _loss_step(straight, opt, t)
    io.save(tmp_path / "ck.safetensors", straight, opt, step=3)
    for t in range(3, 6):
        _loss_step(straight, opt, t)

    resumed = _tiny_gpt(seed=9, rope=True, qk_norm=True)
    opt2 = resumed.configure_optimizers(0.1, 1.0, (0.5, 0.5), optimizer="muon", muon_lr=1.0)
    io.load(tmp_path / "ck.safetensors", resumed, opt2)
    assert opt2.param_groups[0]["lr"] == 0.02 and opt2.param_groups[1]["betas"] == (0.9, 0.95)
    for t in range(3, 6):
        _loss_step(resumed, opt2, t)
    for (n, p), q in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)
    # A state dict from another split is refused with the reason.
    plain = _tiny_gpt().configure_optimizers(0.1, 1e-3)
    with pytest.raises(ValueError, match="use_muon"):
        opt2.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="'adamw' or 'muon'"):
        resumed.configure_optimizers(0.1, 1e-3, optimizer="sgd")
