"""prod, cumprod and normalisations in float16/bfloat16 (and prod in float32/float64) as
PyTorch's CPU kernels compute them, bit for bit against torch 2.13.

PyTorch's prod multiplies in the input's dtype, each product rounded, in the order of its
vectorized reduction (4 vectors of 32 bytes / itemsize lanes along a contiguous dim, a
sequential product along any other, one share per thread for a product of all elements from
32,768 on: the oracle runs at descent's thread count). cumprod accumulates in PyTorch's CPU
acc_type (float32 for float16/bfloat16) and its backward is a chain of low-precision ops.
"""

import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

DTYPES = {
    "float16": (torch.float16, descent.float16),
    "bfloat16": (torch.bfloat16, descent.bfloat16),
    "float32": (torch.float32, descent.float32),
    "float64": (torch.float64, descent.float64),
}


def _pair(a, dn):
    tdt, ddt = DTYPES[dn]
    t = torch.tensor(np.asarray(a, np.float64)).to(tdt).requires_grad_(True)
    d = descent.tensor(t.detach().double().numpy()).to(ddt).requires_grad_(True)
    return t, d


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().double().numpy()
    return np.asarray(x.detach().to(descent.float64).numpy())


def _same(a, b, bad=0):
    """Bitwise equal (nan where nan), or at most `bad` elements one float16 unit apart."""
    assert a.shape == b.shape
    off = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    assert off.sum() <= bad, (int(off.sum()), a.size, a[off][:4], b[off][:4])
    if off.any():
        np.testing.assert_allclose(b[off], a[off], rtol=2.0**-10, atol=0)


def _compare(fn, a, dn, seed=1):
    """fn(torch, t) against fn(descent, d): values and the gradient of sum(out * w), bitwise,
    with torch at descent's thread count."""
    t, d = _pair(a, dn)
    threads = torch.get_num_threads()
    torch.set_num_threads(descent.get_num_threads())
    try:
        ty = fn(torch, t)
        w = np.asarray(np.random.default_rng(seed).standard_normal(tuple(ty.shape)))
        tg = torch.autograd.grad(ty, t, torch.tensor(w).to(t.dtype))[0]
    finally:
        torch.set_num_threads(threads)
    dy = fn(descent, d)
    dg = descent.autograd.grad(dy, d, descent.tensor(w).to(d.dtype))[0]
    assert str(dy.dtype).endswith(dn) and str(dg.dtype).endswith(dn)
    _same(_np(ty), _np(dy))
    _same(_np(tg), _np(dg))


def _near_one(shape, seed=0, spread=0.25):
    """Values in [1 - spread, 1 + spread]: long products stay finite."""
    return np.random.default_rng(seed).uniform(1 - spread, 1 + spread, shape)


PROD_CASES = [
    ((3000,), None), ((3000,), 0), ((5, 1000), 1), ((5, 1000), -1), ((1000, 5), 0),
    ((1000, 5), 1), ((4, 6, 133), 1), ((4, 6, 133), 2), ((4, 6, 133), None), ((7,), 0),
    ((), None), ((2, 0, 3), 1), ((31,), 0), ((64,), 0), ((129,), 0),
]


@pytest.mark.parametrize("dn", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize(("shape", "dim"), PROD_CASES)
def test_prod_in_pytorchs_order(dn, shape, dim):
    # Was off in values for 2/14 (float16), 8/14 (bfloat16: rounded once), 7/14 (float32)
    # and 8/14 (float64) of these cases (NumPy multiplies sequentially, and float16 along a
    # contiguous axis in float32); bfloat16 gradients in 8/14 (grad * (result / input): the
    # quotient is rounded first).
    fn = (lambda m, x: m.prod(x)) if dim is None else (lambda m, x: m.prod(x, dim))
    _compare(fn, _near_one(shape), dn)


@pytest.mark.parametrize("dn", ["float16", "bfloat16", "float32"])
def test_prod_keepdim_strided_and_split(dn):
    a = _near_one((40, 50), seed=3)
    _compare(lambda m, x: m.prod(x, 1, keepdim=True), a, dn)
    _compare(lambda m, x: m.prod(x.t(), 1), a, dn)  # contiguous along dim 0 of the view
    _compare(lambda m, x: m.prod(x.t()), a, dn)  # all elements: the memory order
    _compare(lambda m, x: m.prod(x[:, ::2], 1), a, dn)  # strided rows: sequential
    # 40,000 values: split over the threads (two_pass_reduction), also through a dim
    b = _near_one((40000,), seed=4, spread=1e-3)
    _compare(lambda m, x: m.prod(x), b, dn)
    _compare(lambda m, x: m.prod(x.reshape(1, -1), 1), b, dn)


def test_prod_edge_values():
    a = np.array([[2.0, -0.0, 3.0, np.inf], [np.nan, 1.0, 2.0, 3.0], [1e-7, 1e-7, 5.0, 7.0]])
    for dn in DTYPES:
        _compare(lambda m, x: m.prod(x, 1), np.tile(a, (1, 20)), dn)
        _compare(lambda m, x: m.prod(x, 0), a, dn)


def test_prod_numpy_path_same_bits():
    # DESCENT_KERNELS=numpy's NumPy form of the order gives the kernel's bits
    from descent.kernels import cpu as kcpu

    a = _near_one((6, 1000), seed=5).astype(np.float32)
    on = descent.tensor(a).prod(1).numpy()
    prev = kcpu.set_enabled(False)
    try:
        off = descent.tensor(a).prod(1).numpy()
    finally:
        kcpu.set_enabled(prev)
    assert (on == off).all()


CUMPROD_CASES = [((3000,), 0), ((5, 600), 1), ((600, 5), 0), ((4, 6, 133), 2)]


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize(("shape", "dim"), CUMPROD_CASES)
def test_cumprod_low_precision(dn, shape, dim):
    # The forward accumulates in float32 (was float64: 9 (float16) and 3 (bfloat16) of
    # ~55,000 values off); bfloat16's backward rounds y * gy, the reversed cumulative sum and
    # the quotient (81 of 300 gradient elements were off, rounded once).
    _compare(lambda m, x: m.cumprod(x, dim), _near_one(shape, seed=7), dn)


def _bn_case(dn, shape, seed):
    tdt, ddt = DTYPES[dn]
    rng = np.random.default_rng(seed)
    c = shape[1]
    arrays = [
        rng.standard_normal(shape) * 2 + 0.5, rng.uniform(0.5, 1.5, c), rng.standard_normal(c),
        rng.standard_normal(c), rng.uniform(0.5, 2, c), rng.standard_normal(shape),
    ]  # x, weight, bias, running mean, running var, grad
    tt = [torch.tensor(a, dtype=torch.float32).to(tdt) for a in arrays]
    dd = [descent.tensor(t.float().numpy()).to(ddt) for t in tt]
    for t in tt[:3]:
        t.requires_grad_(True)
    for d in dd[:3]:
        d.requires_grad_(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(descent.get_num_threads())  # (its (N, C) loop splits rows per thread)
    try:
        ty = torch.nn.functional.batch_norm(tt[0], tt[3], tt[4], tt[1], tt[2], training=True)
        tg = torch.autograd.grad(ty, tt[:3], tt[5])
    finally:
        torch.set_num_threads(threads)
    dy = descent.nn.functional.batch_norm(dd[0], dd[3], dd[4], dd[1], dd[2], training=True)
    dg = descent.autograd.grad(dy, dd[:3], dd[5])
    assert str(dy.dtype).endswith(dn) and str(dd[3].dtype).endswith(dn)
    for a, b in [(ty, dy), (tt[3], dd[3]), (tt[4], dd[4])]:
        _same(_np(a), _np(b))
    # dx: one element near a float16 tie may land a unit apart (the last bit of PyTorch's
    # float32 intermediate; 1 of 24,588 for (3, 4, 2049))
    _same(_np(tg[0]), _np(dg[0]), bad=1 if dn == "float16" else 0)
    _same(_np(tg[1]), _np(dg[1]))
    _same(_np(tg[2]), _np(dg[2]))


BN_SHAPES = [(8, 4, 100), (4, 3, 5, 7), (16, 5, 64), (2, 3, 33), (64, 7), (5, 3, 1),
             (3, 4, 2049), (256, 16)]  # fmt: skip


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_training_low_precision(dn, shape):
    # PyTorch's kernel: float32 sums in its vector order, the saved mean and 1/std rounded to
    # the dtype, y = x alpha + beta fused, running statistics with its roundings (bfloat16
    # holds var_sum and var / n in bfloat16), dx with one fused multiply-add. Was off in 10/10
    # (y, dx), 9/10 (float16 running mean) and 7-8/10 (dw) cases of a probe; 0 after (in ~50
    # random cases one float16 dx element in 5,000 stays a unit apart).
    _bn_case(dn, shape, seed=0)


LN_SHAPES = [(64, 40), (10, 3, 33), (7, 100), (3, 2, 2, 8)]


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", LN_SHAPES)
def test_layer_norm_weight_bias_grads(dn, shape):
    # PyTorch's kernel accumulates dw and db per thread share of rows in a buffer of the low
    # dtype, rounded after every row, then sums the buffers in float32: 6/6 cases of a probe
    # had dw and db elements off (float32 column sums rounded once), 0-1/6 now (the one: a
    # row whose saved mean differs in its last bit, (300, 17)).
    d = shape[-1]
    rng = np.random.default_rng(2)
    a = rng.standard_normal(shape) * 2 + 0.5
    w, b, g = rng.uniform(0.5, 1.5, d), rng.standard_normal(d), rng.standard_normal(shape)

    def fn(m, x):
        tdt = x.dtype
        wt = m.tensor(w).to(tdt).requires_grad_(True)
        bt = m.tensor(b).to(tdt).requires_grad_(True)
        y = m.nn.functional.layer_norm(x, (d,), wt, bt)
        gw, gb = m.autograd.grad(y, (wt, bt), m.tensor(g).to(tdt))
        return m.cat([gw, gb])

    tdt, ddt = DTYPES[dn]
    t = torch.tensor(a).to(tdt).requires_grad_(True)
    dx = descent.tensor(t.detach().double().numpy()).to(ddt).requires_grad_(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(descent.get_num_threads())  # (the row shares follow the threads)
    try:
        ty = fn(torch, t)
    finally:
        torch.set_num_threads(threads)
    _same(_np(ty), _np(fn(descent, dx)))


def _norm_case(dn, fn, shape, c, seed=0, bad=0):
    """fn(module, x, w, b) against torch: values and the gradients of x, w, b, bitwise (at
    most `bad` elements of each a float16 unit apart)."""
    tdt, ddt = DTYPES[dn]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) * 2 + 0.5, rng.uniform(0.5, 1.5, c),
              rng.standard_normal(c), rng.standard_normal(shape)]  # fmt: skip
    tt = [torch.tensor(a, dtype=torch.float32).to(tdt) for a in arrays]
    dd = [descent.tensor(t.float().numpy()).to(ddt) for t in tt]
    for t, d in zip(tt[:3], dd[:3]):
        t.requires_grad_(True)
        d.requires_grad_(True)
    ty = fn(torch, *tt[:3])
    dy = fn(descent, *dd[:3])
    tg = torch.autograd.grad(ty, tt[:3], tt[3])
    dg = descent.autograd.grad(dy, dd[:3], dd[3])
    for a, b in [(ty, dy), *zip(tg, dg)]:
        _same(_np(a), _np(b), bad)


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(4, 6, 50), (8, 4, 7, 7), (2, 8, 3), (2, 32, 20)])
def test_group_norm_low_precision_grads(dn, shape):
    # PyTorch's reduced-precision group norm backward reads its saved mean and rstd rounded
    # to the dtype, sums in its vector order: gx was off in 11-519 of up to 1,568 elements,
    # dw in 1-4 channels (rounded once from float32); 0 now, but for a float16 element at a
    # tie (one y of 1,200 in the forward, which still rounds once; one gx of 1,568)
    _norm_case(dn, lambda m, x, w, b: m.nn.functional.group_norm(x, 2, w, b), shape, shape[1],
               bad=1 if dn == "float16" else 0)  # fmt: skip


@pytest.mark.parametrize("dn", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(4, 6, 50), (8, 4, 7, 7)])
def test_instance_norm_low_precision(dn, shape):
    # PyTorch runs instance_norm as batch_norm of the (1, N C, *) view: y was off in 373-691
    # of ~1,200 elements (group_norm's rounding), gx in 426-716, dw/db in 1-4 channels; 0 now
    _norm_case(dn, lambda m, x, w, b: m.nn.functional.instance_norm(x, weight=w, bias=b),
               shape, shape[1])  # fmt: skip


@pytest.mark.parametrize("dn", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("fn", ["var", "std"])
def test_var_backward_without_degrees_of_freedom(dn, fn):
    # PyTorch's var_backward over all elements (or of a 0-d tensor) with n - correction <= 0:
    # grad * (nan where x == mean, inf elsewhere); along a dim 2 / (n - correction) stays.
    # descent used the formula everywhere (-0.0 for a 0-d var with correction=2: found by
    # fuzz_extra_dtypes half, seed 18124001; 112 of 672 probe cases differed, 0 now).
    tdt, ddt = DTYPES[dn]
    for vals in ([1.0], [2.0], [1.0, 1.0], [1.0, 2.0], [np.inf, 1.0]):
        for corr in (1, 2, 3):
            for zero_d in (True, False):
                for dim in (None, -1):
                    a = vals[0] if zero_d and len(vals) == 1 else vals
                    grads = []
                    for m, dt in ((torch, tdt), (descent, ddt)):
                        x = m.tensor(a, dtype=dt, requires_grad=True)
                        kw = {"correction": corr} if dim is None else {"dim": dim}
                        if dim is not None:
                            kw["correction"] = corr
                        with np.errstate(all="ignore"), warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            y = getattr(m, fn)(x, **kw)
                            (y * m.ones_like(y)).sum().backward()
                        grads.append(_np(x.grad))
                    _same(*grads)


def test_cumprod_bfloat16_gradient_with_zeros():
    # PyTorch's cumprod_backward with zeros (before the first zero: reversed cumsum of y gy
    # over x; at it: y_{z-1} times the sum of cumprods times gy) as bfloat16 ops, each
    # rounded: 89 of 300 random cases with zeros had elements off (rounded once), 0 now
    rng = np.random.default_rng(3)
    edge = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-7, 3.0, -2.5, 1.0, 0.5]
    for _ in range(60):
        shape = (int(rng.integers(1, 6)), int(rng.integers(2, 6)))
        a = rng.standard_normal(shape) * 2
        m = rng.random(shape) < 0.3
        a[m] = rng.choice(edge, m.sum())
        a[0, 0] = 0.0
        dim = int(rng.integers(0, 2))
        _compare(lambda mod, x, d=dim: mod.cumprod(x, d), a, "bfloat16", seed=int(m.sum()))


@pytest.mark.parametrize("fn", ["var", "std"])
def test_var_of_all_elements_overflowing_mean(fn):
    # One output: PyTorch's std_var_all_cpu takes x.mean() in float32, which is -inf for two
    # values of -3e38, so var/std are inf and the gradient nan (descent's float64 mean gave a
    # finite 1.549e38 and an inf gradient: found by fuzz_extra_dtypes half, seed 18124002)
    a = [[1.0, 1.0], [1.0, -3e38], [-3e38, 1.0]]
    out = []
    for m in (torch, descent):
        x = m.tensor(a, dtype=m.float32, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = getattr(m, fn)(x)
            y.backward()
        out += [_np(y), _np(x.grad)]
    _same(out[0], out[2])
    _same(out[1], out[3])
    b = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3 + 5
    _same(_np(getattr(torch.tensor(b), fn)()), _np(getattr(descent.tensor(b), fn)()))


def test_logcumsumexp_bfloat16_gradient():
    # PyTorch's logcumsumexp_backward (log space, split by the sign of gy) as bfloat16 ops,
    # its reversed scan accumulating in float32: 11,053 of 11,605 gradient elements of a
    # probe were off (float32 formula rounded once), 2 now (a last float32 bit before a
    # rounding); these rows match bit for bit
    rng = np.random.default_rng(0)
    for shape in [(3, 50), (2, 4, 17), (40,)]:
        _compare(lambda m, x: m.logcumsumexp(x, -1), rng.standard_normal(shape) * 3,
                 "bfloat16", seed=len(shape))  # fmt: skip


@pytest.mark.parametrize("dn", ["float16", "bfloat16", "float32"])
def test_prod_gradient_with_zeros(dn):
    # prod_safe_zeros_backward: grad * (exclusive cumprod from the left * from the right), in
    # bfloat16 each op rounded and the cumprods accumulated in float32 (2 of ~140 bfloat16
    # cases of an edge sweep were off); 300 random edge cases per dtype agree
    rng = np.random.default_rng(5)
    edge = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-7, 3.0, -2.5, 1.0, 0.5]
    for _ in range(60):
        shape = (int(rng.integers(1, 6)), int(rng.integers(2, 6)))
        a = rng.standard_normal(shape) * 2
        m = rng.random(shape) < 0.3
        a[m] = rng.choice(edge, m.sum())
        a[0, 0] = 0.0
        dim = int(rng.integers(0, 2))
        _compare(lambda mod, x, d=dim: mod.prod(x, d), a, dn, seed=int(m.sum()))
