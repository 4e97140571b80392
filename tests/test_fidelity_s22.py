"""Session 22's value, sign and name fixes, differential against torch 2.13: relu keeps -0.0
(PyTorch's clamp_min(x, 0)) in every path (eager, in place, descent.compile's replay kernels and
Linear+ReLU pairs); logsigmoid(+inf) is +0.0; mse_loss's target gradient is PyTorch's
swapped-operand formula (its zeros' signs); binary_cross_entropy's gradient floor is float32's
1e-12 and its reduction is inside the node (PyTorch's order, the last bits).

Only values whose sign PyTorch gives the same wherever the element sits are compared: on this
CPU its vectorized bodies and scalar tails disagree for gelu(-0.0) in float32, softshrink(-0.0)
and the gradients of hardtanh/relu6/elu/selu/celu/hardswish/softshrink/hardshrink at NaN
(see the session notes), so those are left out."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import descent
import descent.nn.functional as DF

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = ["float32", "float64"]
SPECIAL = [-0.0, 0.0, math.inf, -math.inf, math.nan, -1.5, 2.5, -1e-30, 1e-30]


def _bits(a) -> np.ndarray:
    """The exact bits of a float array (every NaN one pattern): -0.0 and +0.0 differ."""
    a = np.asarray(a)
    a = np.where(np.isnan(a), np.nan, a).astype(a.dtype)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _same(d, t) -> None:
    dn = d.detach().numpy() if isinstance(d, descent.Tensor) else np.asarray(d)
    tn = t.detach().numpy()
    assert dn.dtype == tn.dtype, (dn.dtype, tn.dtype)
    np.testing.assert_array_equal(_bits(dn), _bits(tn), err_msg=f"descent {dn}\ntorch   {tn}")


def _pair(vals, dt, grad=True):
    d = descent.tensor(vals, dtype=getattr(descent, dt), requires_grad=grad)
    t = torch.tensor(vals, dtype=getattr(torch, dt), requires_grad=grad)
    return d, t


# -- relu keeps -0.0 -------------------------------------------------------------------------


RELUS = {
    "F.relu": (lambda L, F, x: F.relu(x)),
    "relu method": (lambda L, F, x: x.relu()),
    "torch.relu": (lambda L, F, x: L.relu(x)),
    "relu_": (lambda L, F, x: L.relu_(x * 1)),
    "F.relu inplace": (lambda L, F, x: F.relu(x * 1, inplace=True)),
    "nn.ReLU(inplace)": (lambda L, F, x: L.nn.ReLU(inplace=True)(x * 1)),
    "clamp_min(0)": (lambda L, F, x: x.clamp_min(0)),
    "leaky_relu": (lambda L, F, x: F.leaky_relu(x, 0.1)),
    "hardtanh": (lambda L, F, x: F.hardtanh(x)),
    "relu6": (lambda L, F, x: F.relu6(x)),
    "threshold": (lambda L, F, x: F.threshold(x, 0.0, 0.0)),
}


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", list(RELUS))
def test_relu_family_signed_zeros_values_and_gradients(name, dt):
    # 9 values: the -0.0 sits in the vector body, the last ones in the scalar tail
    vals = [v for v in SPECIAL if not math.isnan(v) or name not in ("hardtanh", "relu6")]
    d, t = _pair(vals * 3, dt)
    f = RELUS[name]
    yd, yt = f(descent, DF, d), f(torch, TF, t)
    _same(yd, yt)
    (gd,) = descent.autograd.grad(yd, d, descent.ones_like(yd))
    (gt,) = torch.autograd.grad(yt, t, torch.ones_like(yt))
    _same(gd, gt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("fuse", [True, False])
def test_relu_replayed_keeps_negative_zero(dt, fuse):
    # the replay's ReLU: replay_kernels' select (fuse) or NumPy's maximum into a pool buffer
    vals = np.array(SPECIAL * 5, dtype=dt)
    want = torch.relu(torch.tensor(vals)) * 1.0

    def f(x):
        return descent.relu(x * 1.0) * 1.0  # (x * 1.0: an intermediate slot)

    g = descent.compile(f, options={"fuse": fuse})
    for _ in range(4):
        out = g(descent.tensor(vals))
        _same(out, want)
    assert g.stats["replays"] >= 2


@pytest.mark.parametrize("dt", DTYPES)
def test_bias_relu_kernels_keep_negative_zero(dt):
    # the replay's Linear+ReLU pair adds the bias and applies ReLU in one numba pass (fusion's
    # row-major kernel, linear_t's transposed one): t = y + b, then relu(t) as eager's, so
    # -0.0 + -0.0 stays -0.0 (a product of BLAS's is +0.0, never -0.0, so a Linear step alone
    # does not reach it); NaN, infinities and negatives as eager's too
    from descent.compiler import fusion, linear_t

    k = fusion.bias_relu_kernel()
    ks = linear_t.kernels(dt)
    if k is None or ks is None:
        pytest.skip("needs numba (and OpenBLAS's ?omatcopy for the transposed kernel)")
    y = np.array([[-0.0, 0.0, -0.0, 1.0, -2.0, np.nan, np.inf, -0.0]] * 3, dtype=dt)
    b = np.array([-0.0, -0.0, 0.0, -1.0, 1.0, 0.0, -np.inf, 1e-30], dtype=dt)
    want = torch.relu(torch.tensor(y) + torch.tensor(b))
    got = y.copy()
    k(got.reshape(-1), b, b.size)
    _same(got, want)
    yt = np.ascontiguousarray(y.T)  # (out, M) as the transposed site computes it
    out = np.empty_like(y)
    ks[1](yt, b, out)
    _same(out, want)
    # and the step that uses them: eager's bits on replay (forward and backward)
    dl = descent.nn.Linear(8, 8).to(getattr(descent, dt))

    def step(x):
        dl.zero_grad()
        h = descent.relu(dl(x))
        (h * h).sum().backward()
        return h.detach(), dl.weight.grad.detach()

    g = descent.compile(step)
    for i in range(5):
        x = descent.tensor(np.random.default_rng(i).standard_normal((5, 8)).astype(dt))
        for a, e in zip(g(x), step(x), strict=True):
            _same(a, torch.tensor(e.numpy()))
    assert g.stats["replays"] >= 2


# -- other signed zeros: logsigmoid(+inf), mse_loss's target gradient ---------------------------


@pytest.mark.parametrize("dt", DTYPES)
def test_logsigmoid_values_gradients_and_name(dt):
    vals = [*SPECIAL, 200.0, -200.0, 30.0, -30.0]  # float32's e^-200 underflows: +0.0 too
    d, t = _pair(vals, dt)
    yd, yt = DF.logsigmoid(d), TF.logsigmoid(t)
    assert yd.grad_fn.name() == yt.grad_fn.name() == "LogSigmoidBackward0"
    finite = np.isfinite(vals) & (np.abs(vals) >= 30)  # the exact branches: + -0.0, huge |x|
    for a, b in ((yd, yt), *zip(descent.autograd.grad(yd, d, descent.ones_like(yd)),
                               torch.autograd.grad(yt, t, torch.ones_like(yt)))):  # fmt: skip
        ad, bt = a.detach().numpy(), b.detach().numpy()
        np.testing.assert_array_equal(np.isnan(ad), np.isnan(bt))
        num = ~np.isnan(bt)  # (a NaN's sign bit is not compared)
        np.testing.assert_array_equal(np.signbit(ad[num]), np.signbit(bt[num]))
        np.testing.assert_allclose(ad, bt, rtol=2e-7 if dt == "float32" else 1e-15)
        _same(a[descent.tensor(~finite)][:2], b[torch.tensor(~finite)][:2])  # -0.0, +0.0
    # second order (create_graph: the differentiable form) as torch's
    x = descent.tensor([0.3, -2.0, 0.0, 5.0], dtype=getattr(descent, dt), requires_grad=True)
    xt = torch.tensor([0.3, -2.0, 0.0, 5.0], dtype=getattr(torch, dt), requires_grad=True)
    (g,) = descent.autograd.grad(DF.logsigmoid(x).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad(TF.logsigmoid(xt).sum(), xt, create_graph=True)
    (h,) = descent.autograd.grad(g.sum(), x)
    (ht,) = torch.autograd.grad(gt.sum(), xt)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=2e-5 if dt == "float32" else 1e-12)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_target_gradient_signed_zeros(dt, reduction):
    a = [0.0, -0.0, 1.0, 2.0, 0.0, -0.0, 3.0]
    b = [0.0, 0.0, 1.0, 1.0, -0.0, -0.0, -1.0]
    (xd, xt), (yd, yt) = _pair(a, dt), _pair(b, dt)
    ld = DF.mse_loss(xd, yd, reduction=reduction)
    lt = TF.mse_loss(xt, yt, reduction=reduction)
    _same(ld, lt)
    gd = descent.autograd.grad(ld, (xd, yd), descent.ones_like(ld))
    gt = torch.autograd.grad(lt, (xt, yt), torch.ones_like(lt))
    for u, v in zip(gd, gt, strict=True):
        _same(u, v)
    # create_graph: the same values through the recorded formula
    ld = DF.mse_loss(xd, yd, reduction=reduction).sum()
    gd = descent.autograd.grad(ld, yd, create_graph=True)[0]
    _same(gd, torch.autograd.grad(TF.mse_loss(xt, yt, reduction=reduction).sum(), yt)[0])


ROBUST = [("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}), ("huber_loss", {}),
          ("huber_loss", {"delta": 2.0})]  # fmt: skip


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("name", "kw"), ROBUST)
def test_smooth_l1_and_huber_one_node_signed_zeros(name, kw, dt, reduction):
    # one node each (SmoothL1LossBackward0, HuberLossBackward0) with PyTorch's kernels: the
    # gradient at input -0.0, target 0 is -0.0 for the input and +0.0 for the target (the
    # composite's where/negation gave +0.0 and -0.0); infinities and NaN as PyTorch's
    a = [0.0, -0.0, 1.0, 2.0, 0.0, -0.0, 3.0, math.inf, -math.inf, math.nan, 0.25, -7.0]
    b = [0.0, 0.0, 1.0, 1.0, -0.0, -0.0, -1.0, 0.0, 1.0, 0.0, 0.5, 1.0]
    (xd, xt), (yd, yt) = _pair(a, dt), _pair(b, dt)
    ld = getattr(DF, name)(xd, yd, reduction=reduction, **kw)
    lt = getattr(TF, name)(xt, yt, reduction=reduction, **kw)
    assert ld.grad_fn.name() == lt.grad_fn.name()
    _same(ld, lt)
    gd = descent.autograd.grad(ld, (xd, yd), descent.ones_like(ld))
    gt = torch.autograd.grad(lt, (xt, yt), torch.ones_like(lt))
    for u, v in zip(gd, gt, strict=True):
        _same(u, v)


# -- binary_cross_entropy: PyTorch's float epsilon and its order -------------------------------


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_input_gradient_bits(dt, reduction, weighted):
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (40, 6))
    y = rng.uniform(0, 1, (40, 6))
    p[0] = [0.0, 1.0, 1e-300, 1 - 1e-16, 0.0, 1.0]  # p (1 - p) below the floor: 4e-9 off
    y[0] = [0.0, 1.0, 0.5, 1.0, 1.0, 0.0]
    w = rng.uniform(0, 2, 6)
    (pd, pt), (yd, yt) = _pair(p, dt), _pair(y, dt, grad=False)
    kw_d = {"weight": descent.tensor(w, dtype=getattr(descent, dt))} if weighted else {}
    kw_t = {"weight": torch.tensor(w, dtype=getattr(torch, dt))} if weighted else {}
    ld = DF.binary_cross_entropy(pd, yd, reduction=reduction, **kw_d)
    lt = TF.binary_cross_entropy(pt, yt, reduction=reduction, **kw_t)
    assert ld.grad_fn.name() == lt.grad_fn.name() == "BinaryCrossEntropyBackward0"
    if reduction == "none":  # elementwise: the kernel's expression (the signs of its zeros)
        np.testing.assert_array_equal(np.signbit(ld.detach().numpy()),
                                      np.signbit(lt.detach().numpy()))  # fmt: skip
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-6)
    (gd,) = descent.autograd.grad(ld, pd, descent.ones_like(ld))
    (gt,) = torch.autograd.grad(lt, pt, torch.ones_like(lt))
    _same(gd, gt)  # bit for bit: the float32 floor, then weight, then / N


def test_binary_cross_entropy_compiled_and_weight_with_grad():
    rng = np.random.default_rng(4)
    ps = [rng.uniform(0.01, 0.99, (8, 3)) for _ in range(4)]
    y = descent.tensor(rng.uniform(0, 1, (8, 3)))
    w = descent.tensor(rng.uniform(0, 2, (3,)))

    z = descent.tensor(rng.standard_normal((8, 3)), requires_grad=True)

    def f(x):  # a training step's shape: a persistent leaf, the data an argument
        z.grad = None
        loss = DF.binary_cross_entropy((z * x).sigmoid(), y, weight=w)
        loss.backward()
        return loss.detach(), z.grad.detach()

    cf = descent.compile(f)
    for p in ps + ps:
        for a, b in zip(f(descent.tensor(p)), cf(descent.tensor(p)), strict=True):
            _same(a, torch.tensor(b.numpy()))  # the replay: eager's bits
    assert cf.stats["replays"] >= 4
    # a weight that wants a gradient gets one (PyTorch has none to give: descent's extension)
    wg = descent.tensor(np.ones(3), requires_grad=True)
    DF.binary_cross_entropy(descent.tensor(ps[0]), y, weight=wg).backward()
    assert wg.grad is not None and wg.grad.shape == (3,)


# -- a Python int beyond int64 in integer arithmetic ------------------------------------------

BIG = [2**64 - 1, 2**64 - 2, 2**63, 2**63 + 5, -(2**63), 2**62, 12]
ARITH = {
    "x - c": lambda L, x, c: x - c,
    "x.sub(c)": lambda L, x, c: x.sub(c),
    "sub(x, c, alpha=2)": lambda L, x, c: L.sub(x, c, alpha=2),
    "add(x, c, alpha=-1)": lambda L, x, c: L.add(x, c, alpha=-1),
    "x.add(c, alpha=5)": lambda L, x, c: x.add(c, alpha=5),
    "x.sub_(c, alpha=3)": lambda L, x, c: x.clone().sub_(c, alpha=3),
    "x.add_(c, alpha=-3)": lambda L, x, c: x.clone().add_(c, alpha=-3),
    "x -= c": lambda L, x, c: x.clone().__isub__(c),
    "c - x": lambda L, x, c: c - x,
    "x + c": lambda L, x, c: x + c,
    "x * c": lambda L, x, c: x * c,
}


def _outcome(L, dt, f, c):
    x = L.tensor([1, -2, 3]).to(getattr(L, dt))
    try:
        r = f(L, x, c)
    except OverflowError:
        return "OverflowError"
    return str(r.dtype).split(".")[-1], r.tolist()


@pytest.mark.parametrize("dt", ["int64", "int32", "uint8", "float64", "float32"])
def test_python_int_beyond_int64_as_torch(dt):
    # PyTorch's parser takes ints in [-2**63, 2**64) and casts them to an integer tensor's
    # dtype (2**64 - 1 is -1 there): x - (2**64 - 1) is x + 1, where descent negated first
    # (-(2**64 - 1) is in no int range: OverflowError); alpha scales in the dtype, wrapping
    for name, f in ARITH.items():
        for c in BIG:
            assert _outcome(descent, dt, f, c) == _outcome(torch, dt, f, c), (name, c)


def test_python_int_beyond_int64_compiled():
    def f(x):
        return (x - (2**64 - 1)) * 2

    g = descent.compile(f)
    for i in range(4):
        x = descent.tensor([1, -2, 3 + i])
        want = (torch.tensor([1, -2, 3 + i]) - (2**64 - 1)) * 2
        assert g(x).tolist() == f(x).tolist() == want.tolist()


# -- complex pow: PyTorch's cpow (cexp(b * clog(a)) with C's complex product) --------------------

_INF, _NAN = math.inf, math.nan
CBASES = [0j, complex(-0.0, 0), complex(0, -0.0), 1 + 0j, -1 + 0j, 1j, 2 + 3j, -2.5 - 1j,
          complex(_INF, 0), complex(0, _INF), complex(_INF, _INF), complex(_NAN, 0),
          complex(-_INF, 1), 1e-30 + 0j, 1e30 + 1e30j, 0.3 - 0.7j]  # fmt: skip
CEXPS = [0j, 1 + 0j, 2 + 0j, -1 + 0j, 0.5 + 0j, -0.5 + 0j, 1j, 2 + 3j, -2 - 1j,
         complex(_INF, 0), complex(-_INF, 0), complex(_NAN, 0), 3 + 0j, -3 + 0j, 1.5 - 0.5j,
         complex(0, _INF)]  # fmt: skip


def _cbits(z) -> np.ndarray:
    z = np.array(z)
    z.real[np.isnan(z.real)] = np.nan  # (every NaN one pattern)
    z.imag[np.isnan(z.imag)] = np.nan
    return z.view(np.uint32 if z.dtype == np.complex64 else np.uint64)


@pytest.mark.parametrize("dt", ["complex64", "complex128"])
def test_complex_pow_values_as_torch(dt):
    # 0 ** 0 is nan + nan j (cexp(0 * -inf)), 0 ** -1 inf + nan j, inf ** 1 inf + nan j: NumPy's
    # power special-cases them (1, nan, inf + 0j) where PyTorch's kernel does not
    X = [b for b in CBASES for _ in CEXPS]
    Y = [e for _ in CBASES for e in CEXPS]
    D = lambda v: descent.tensor(v, dtype=getattr(descent, dt))  # noqa: E731
    T = lambda v: torch.tensor(v, dtype=getattr(torch, dt))  # noqa: E731
    re = [y.real for y in Y]
    pairs = [(D(X) ** D(Y), T(X) ** T(Y)), (D(X) ** descent.tensor(re), T(X) ** torch.tensor(re))]
    for e in [0, 1, 0.5, 1.5, 1j, 2 + 3j, -3, 4, _INF, _NAN, -0.7, 0.0, 1.0]:  # ** Python number
        pairs.append((D(CBASES) ** e, T(CBASES) ** e))
    for c in [0, 1, 2, -1, 0.5, 1j, 2 + 3j, -2.5]:  # Python number ** tensor
        pairs.append((c ** D(CEXPS), c ** T(CEXPS)))
    for i, (d, t) in enumerate(pairs):
        np.testing.assert_array_equal(_cbits(d.numpy()), _cbits(t.numpy()), err_msg=str(i))

    def f(a, b):
        return a**b

    g = descent.compile(f)
    for _ in range(3):
        np.testing.assert_array_equal(_cbits(g(D(X), D(Y)).numpy()), _cbits((T(X) ** T(Y)).numpy()))


@pytest.mark.parametrize("dt", ["complex64", "complex128"])
def test_complex_pow_gradients_as_torch(dt):
    rng = np.random.default_rng(5)
    n = 40
    a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    b = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    a[:4], b[:4] = [0, 0, 1, 2], [0, 1, 0, -1]  # 0 ** 0, 0 ** 1 (cpow's nan in a^(b - 1))
    g = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
    ad, bd = descent.tensor(a, requires_grad=True), descent.tensor(b, requires_grad=True)
    at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    gd = descent.autograd.grad(ad**bd, (ad, bd), descent.tensor(g))
    gt = torch.autograd.grad(at**bt, (at, bt), torch.tensor(g))
    for u, v in zip(gd, gt, strict=True):
        u, v = u.numpy(), v.numpy()
        np.testing.assert_array_equal(np.isnan(u), np.isnan(v))
        np.testing.assert_allclose(u, v, rtol=1e-5 if dt == "complex64" else 1e-13)


# -- mean with a complex out= (or a complex input into a real out=) ------------------------------


CASTS = [("complex64", "complex128"), ("complex128", "float32"), ("complex64", "float64"),
         ("float32", "complex128")]  # fmt: skip


@pytest.mark.parametrize(("src", "odt"), CASTS)
def test_mean_out_dtype_casts_first_as_torch(src, odt):
    # PyTorch's mean_out casts the input to out's dtype, then sums and divides there: complex64
    # into complex128 is computed in complex128 (descent summed in complex64: 3e-7 off), a
    # complex input into a real out takes its real part with a warning (descent raised)
    r = np.random.default_rng(6).standard_normal((2, 37, 53))
    vals = r[0] + 1j * r[1] if src.startswith("complex") else r[0]
    xd = descent.tensor(vals).to(getattr(descent, src))
    xt = torch.tensor(vals).to(getattr(torch, src))
    # (values of size 1: the sums' order, PyTorch's cascade and NumPy's pairwise, moves the
    # last bits; complex64 where descent summed in complex64 was 3e-8 off in absolute terms)
    atol = 1e-14 if odt in ("complex128", "float64") else 1e-6
    for dim, shape in ((0, (53,)), ((0, 1), ())):
        od = descent.empty(shape, dtype=getattr(descent, odt))
        ot = torch.empty(shape, dtype=getattr(torch, odt))
        with warnings.catch_warnings(record=True) as wd:
            warnings.simplefilter("always")
            rd = descent.mean(xd, dim, out=od)
        with warnings.catch_warnings():  # (its warning: once per process, TORCH_WARN_ONCE)
            warnings.simplefilter("ignore")
            rt = torch.mean(xt, dim, out=ot)
        assert rd is od and rd.dtype == od.dtype
        np.testing.assert_allclose(rd.numpy(), rt.numpy(), rtol=0, atol=atol)
        real_out = src.startswith("complex") and odt.startswith("float")
        assert [str(w.message) for w in wd] == (
            ["Casting complex values to real discards the imaginary part"] if real_out else []
        )


# -- masked_select's node name -------------------------------------------------------------------


def test_masked_select_grad_fn_name_eager_and_recorded():
    # PyTorch: masked_select's node is MaskedSelectBackward0, x[mask]'s IndexBackward0; descent
    # computes both as the same read (IndexGetItem eagerly, compiler.mask_read's MaskRead while
    # descent.compile records), named IndexBackward0 for both before
    vals = np.arange(6.0).reshape(2, 3)
    mask = [[True, False, True], [False, True, True]]
    want = {}
    for L in (torch, descent):
        x, m = L.tensor(vals, requires_grad=True), L.tensor(mask)
        want[L] = [x.masked_select(m).grad_fn.name(), L.masked_select(x, m).grad_fn.name(),
                   L.masked_select(x, m[0]).grad_fn.name(), x[m].grad_fn.name()]  # fmt: skip
    assert want[descent] == want[torch] == ["MaskedSelectBackward0"] * 3 + ["IndexBackward0"]
    names = []
    w = descent.tensor(vals, requires_grad=True)

    def step(x, m):  # recorded: the reads are MaskRead nodes
        w.grad = None
        y, z = (w * x).masked_select(m), (w * x)[m]
        names.append((y.grad_fn.name(), z.grad_fn.name()))
        (y.sum() + z.sum()).backward()
        return y.detach(), w.grad.detach()

    f = descent.compile(step)
    m = descent.tensor(mask)
    for i in range(4):
        f(descent.tensor(vals + i), m)
    assert names and set(names) == {("MaskedSelectBackward0", "IndexBackward0")}
    assert f.stats["recordings"] >= 1
