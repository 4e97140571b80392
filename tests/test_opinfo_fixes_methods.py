"""Differences from PyTorch found by its OpInfo database (tests/opinfo_harness.py): Tensor
conversion methods, random factories, torch.signal.windows and torch.masked."""

import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

CONVERSIONS = ["bool", "byte", "char", "double", "float", "half", "int", "long", "short",
               "cdouble", "cfloat", "bfloat16"]  # fmt: skip


def _np(t):
    if str(t.dtype).endswith("bfloat16"):
        t = t.float()
    return np.asarray(t.detach().numpy())


# -- dtype methods: memory_format= -------------------------------------------------------------
@pytest.mark.parametrize("method", CONVERSIONS)
@pytest.mark.parametrize("fmt", ["contiguous_format", "preserve_format", "channels_last"])
@pytest.mark.parametrize("src_layout", ["contiguous_format", "channels_last"])
def test_conversion_takes_memory_format(method, fmt, src_layout):
    """x.float(memory_format=...) and the other shorthands: dtype, values and layout as torch
    (they refused the keyword with a TypeError)."""
    a = np.random.default_rng(0).standard_normal((2, 3, 2, 3)).astype(np.float32) * 3
    res = []
    for lib in (torch, descent):
        x = lib.tensor(a).to(memory_format=getattr(lib, src_layout))
        y = getattr(x, method)(memory_format=getattr(lib, fmt))
        res.append((y, x))
    (ty, tx), (dy, dx) = res
    assert str(ty.dtype).split(".")[-1] == str(dy.dtype).split(".")[-1]
    np.testing.assert_array_equal(_np(dy), _np(ty))
    for name in ("contiguous_format", "channels_last"):
        assert dy.is_contiguous(memory_format=getattr(descent, name)) == ty.is_contiguous(
            memory_format=getattr(torch, name)), name
    assert (dy is dx) == (ty is tx)


@pytest.mark.parametrize("method", CONVERSIONS)
def test_conversion_channels_last_needs_rank_4(method):
    for lib in (torch, descent):
        with pytest.raises(RuntimeError, match="rank 4"):
            getattr(lib.ones(3), method)(memory_format=lib.channels_last)


@pytest.mark.parametrize("method", ["float", "double", "half", "cfloat", "cdouble"])
def test_conversion_with_memory_format_is_differentiable(method):
    """The gradient flows back through the cast and the relayout, cast to the input's dtype."""
    a = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    w = np.random.default_rng(2).standard_normal((2, 3, 2, 2))
    grads = []
    for lib in (torch, descent):
        x = lib.tensor(a, requires_grad=True)
        y = getattr(x, method)(memory_format=lib.channels_last)
        y = y.real if y.is_complex() else y
        (y.double() * lib.tensor(w)).sum().backward()
        grads.append(_np(x.grad))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


def test_conversion_without_memory_format_unchanged():
    x = descent.ones(3)
    assert x.float() is x  # no copy when nothing changes (the training-loop path)
    assert x.double().dtype == descent.float64


def test_chalf_raises_clearly():
    """descent cannot hold complex32 (NumPy has none): the error names the op and the fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "ComplexHalf support is experimental"
        assert torch.ones(2).chalf().dtype == torch.complex32
    with pytest.raises(RuntimeError, match=r"chalf\(\): descent has no complex32.*cfloat"):
        descent.ones(2).chalf()
    with pytest.raises(RuntimeError, match="complex32"):
        descent.ones(2).chalf(memory_format=descent.contiguous_format)


def test_to_sparse_gives_a_sparse_tensor():
    # descent.sparse (docs/sparse.md; tests/test_sparse.py): a real COO copy since this session
    assert torch.ones(2, 2).to_sparse().layout == torch.sparse_coo
    s = descent.ones(2, 2).to_sparse()
    assert s.layout is descent.sparse_coo and s._nnz() == 4


# -- random factories --------------------------------------------------------------------------
LIKE_KWARGS = [{}, {"dtype": "float64"}, {"device": "cpu"}, {"dtype": "float32", "device": "cpu"},
               {"requires_grad": True}, {"layout": "strided"},
               {"memory_format": "contiguous_format"}]  # fmt: skip


def _kw(lib, kwargs):
    out = {}
    for k, v in kwargs.items():
        out[k] = getattr(lib, v) if k in ("dtype", "layout", "memory_format") else v
    return out


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
@pytest.mark.parametrize("kwargs", LIKE_KWARGS, ids=str)
@pytest.mark.parametrize("src", ["float32", "float64", "complex64"])
def test_random_like_keywords(name, kwargs, src):
    """rand_like/randn_like take PyTorch's keywords (they refused device=, layout=, ...)."""
    outs = []
    for lib in (torch, descent):
        x = lib.zeros(5, 2, dtype=getattr(lib, src))
        outs.append(getattr(lib, name)(x, **_kw(lib, kwargs)))
    t, d = outs
    assert str(t.dtype).split(".")[-1] == str(d.dtype).split(".")[-1]
    assert tuple(t.shape) == tuple(d.shape) and t.requires_grad == d.requires_grad
    assert d.is_leaf
    if name == "rand_like":
        v = _np(d)
        assert ((v.real >= 0) & (v.real < 1)).all()


@pytest.mark.parametrize("kwargs", LIKE_KWARGS, ids=str)
@pytest.mark.parametrize("bounds", [(10,), (2, 10)])
@pytest.mark.parametrize("src", ["float32", "int64"])
def test_randint_like_keywords(kwargs, bounds, src):
    if kwargs.get("requires_grad") and src == "int64":
        kwargs = {**kwargs, "dtype": "float32"}
    outs = []
    for lib in (torch, descent):
        x = lib.zeros(5, dtype=getattr(lib, src))
        outs.append(lib.randint_like(x, *bounds, **_kw(lib, kwargs)))
    t, d = outs
    assert str(t.dtype).split(".")[-1] == str(d.dtype).split(".")[-1]
    assert tuple(t.shape) == tuple(d.shape) and t.requires_grad == d.requires_grad
    v = _np(d)
    assert (v >= bounds[0] if len(bounds) == 2 else v >= 0).all() and (v < bounds[-1]).all()
    assert (v == np.round(v)).all()


@pytest.mark.parametrize("name", ["rand_like", "randn_like", "randint_like"])
def test_random_like_preserves_channels_last(name):
    extra = (10,) if name == "randint_like" else ()
    for lib in (torch, descent):
        x = lib.zeros(2, 3, 4, 5).to(memory_format=lib.channels_last)
        y = getattr(lib, name)(x, *extra)
        assert y.is_contiguous(memory_format=lib.channels_last)
        z = getattr(lib, name)(x, *extra, memory_format=lib.contiguous_format)
        assert z.is_contiguous() and not z.is_contiguous(memory_format=lib.channels_last)


@pytest.mark.parametrize("call", [
    lambda lib: lib.rand_like(lib.zeros(3, dtype=lib.int64)),
    lambda lib: lib.randn_like(lib.zeros(3, dtype=lib.bool)),
    lambda lib: lib.rand(3, dtype=lib.int64),
    lambda lib: lib.randn(2, dtype=lib.int32),
    lambda lib: lib.normal(1.0, 2.0, (2,), dtype=lib.int64),
])  # fmt: skip
def test_random_float_kernels_refuse_integer_dtypes(call):
    """PyTorch has no uniform/normal kernel for integers; descent gave silent zeros."""
    with pytest.raises(NotImplementedError):
        call(torch)
    with pytest.raises(NotImplementedError, match="not implemented for dtype"):
        call(descent)


@pytest.mark.parametrize("call", [
    lambda lib: lib.randint_like(lib.zeros(3), 10, dtype=lib.bool),
    lambda lib: lib.randint(0, 300, (3,), dtype=lib.uint8),
    lambda lib: lib.randint(-1, 3, (3,), dtype=lib.uint8),
])  # fmt: skip
def test_randint_bounds_must_fit_the_dtype(call):
    with pytest.raises(RuntimeError, match="out of bounds"):
        call(torch)
    with pytest.raises(RuntimeError, match="out of bounds"):
        call(descent)


def test_random_like_refuses_sparse_layout():
    with pytest.raises(NotImplementedError, match="only the strided layout"):
        descent.rand_like(descent.zeros(2), layout="sparse_coo")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_number_mean_takes_layout_and_dtype(dtype):
    """normal(mean, std, size, dtype=, layout=, device=) as torch (layout= was refused)."""
    outs = []
    for lib in (torch, descent):
        lib.manual_seed(0)
        outs.append(lib.normal(1.6, 0.3, [200, 50], dtype=getattr(lib, dtype),
                               layout=lib.strided, device="cpu", requires_grad=True))
    t, d = outs
    assert str(t.dtype).split(".")[-1] == str(d.dtype).split(".")[-1]
    assert tuple(d.shape) == (200, 50) and d.requires_grad and d.is_leaf
    v = _np(d)
    assert abs(v.mean() - 1.6) < 0.02 and abs(v.std() - 0.3) < 0.02


# -- torch.signal.windows ----------------------------------------------------------------------
WINDOWS = [
    ("hamming", {}), ("hann", {}), ("bartlett", {}), ("blackman", {}), ("cosine", {}),
    ("nuttall", {}), ("exponential", {}), ("exponential", {"tau": 0.5}),
    ("gaussian", {}), ("gaussian", {"std": 2.7}), ("kaiser", {}), ("kaiser", {"beta": 0.0}),
    ("kaiser", {"beta": 3.3}), ("general_hamming", {}), ("general_hamming", {"alpha": 0.6}),
    ("general_cosine", {"a": [0.46, 0.23, 0.31]}), ("general_cosine", {"a": (0.5, 0.5)}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs"), WINDOWS, ids=[f"{n}{k}" for n, k in WINDOWS])
@pytest.mark.parametrize("M", [0, 1, 2, 5, 10, 11])
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_signal_windows_match_torch(name, kwargs, M, sym, dtype):
    outs = []
    for lib in (torch, descent):
        kw = {**kwargs, "sym": sym}
        if dtype is not None:
            kw["dtype"] = getattr(lib, dtype)
        outs.append(getattr(lib.signal.windows, name)(M, **kw))
    t, d = outs
    assert str(t.dtype).split(".")[-1] == str(d.dtype).split(".")[-1]
    assert tuple(d.shape) == (M,)
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(_np(d), _np(t), rtol=tol, atol=tol)


def test_signal_windows_exponential_center():
    for M in (1, 4, 9):
        t = torch.signal.windows.exponential(M, center=1.3, sym=False, dtype=torch.float64)
        d = descent.signal.windows.exponential(M, center=1.3, sym=False, dtype=descent.float64)
        np.testing.assert_allclose(_np(d), _np(t), rtol=1e-12)


@pytest.mark.parametrize("name", [w for w, _ in WINDOWS[:11]])
def test_signal_windows_keywords(name):
    kw = {"a": [0.5, 0.5]} if name == "general_cosine" else {}
    d = getattr(descent.signal.windows, name)(6, sym=False, dtype=descent.float64,
                                              layout=descent.strided, device="cpu",
                                              requires_grad=True, **kw)
    assert d.requires_grad and d.dtype == descent.float64 and d.device.type == "cpu"


@pytest.mark.parametrize("call", [
    lambda w, lib: w.hann(-1),
    lambda w, lib: w.hann(4, dtype=lib.int64),
    lambda w, lib: w.kaiser(4, dtype=lib.float16),
    lambda w, lib: w.exponential(4, tau=0.0),
    lambda w, lib: w.exponential(4, center=1.0),
    lambda w, lib: w.gaussian(4, std=-1.0),
    lambda w, lib: w.kaiser(4, beta=-1.0),
    lambda w, lib: w.general_cosine(4, a=[]),
])  # fmt: skip
def test_signal_windows_refuse_as_torch(call):
    with pytest.raises(ValueError) as te:
        call(torch.signal.windows, torch)
    with pytest.raises(ValueError) as de:
        call(descent.signal.windows, descent)
    assert str(te.value).split(",")[0].split(":")[0] == str(de.value).split(",")[0].split(":")[0]


def test_signal_windows_general_cosine_needs_a_sequence():
    for lib in (torch, descent):
        with pytest.raises(TypeError, match="Coefficients must be a list/tuple"):
            lib.signal.windows.general_cosine(4, a=0.5)


def test_signal_windows_refuse_sparse_layout():
    with pytest.raises(ValueError, match="strided tensors only"):
        descent.signal.windows.hann(4, layout="sparse_coo")


# -- torch.masked ------------------------------------------------------------------------------
def _masked_data(shape=(3, 4, 5), seed=0):
    """Values, and a mask with a fully masked row along each dim (position 0 of dim 1 for
    every row; the whole first slice along dim 0), so the fully masked outputs are tested."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    mask = rng.random(shape) > 0.4
    mask[0] = False
    mask[:, 0] = False
    return x, mask


# (name, args, kwargs)
MASKED = [
    ("sum", (), {}), ("sum", (1,), {}), ("sum", ((0, 2),), {"keepdim": True}),
    ("prod", (), {}), ("prod", (2,), {}), ("prod", ([0, 1],), {"keepdim": True}),
    ("cumsum", (1,), {}), ("cumprod", (-1,), {}),
    ("amax", (), {}), ("amax", (2,), {}), ("amin", ((1, 2),), {"keepdim": True}),
    ("argmax", (2,), {}), ("argmin", (1,), {"keepdim": True}),
    ("mean", (), {}), ("mean", (1,), {}), ("mean", ((0, 2),), {"keepdim": True}),
    ("median", (2,), {}), ("median", (1,), {"keepdim": True}),
    ("norm", (2.0,), {}), ("norm", (1.0, 2), {}), ("norm", (float("inf"), 1), {}),
    ("norm", (float("-inf"), 2), {}), ("norm", (3.5, (0, 2)), {"keepdim": True}),
    ("var", (), {}), ("var", (2,), {}), ("var", (1,), {"correction": 0, "keepdim": True}),
    ("var", (2, False), {}), ("std", (2,), {}), ("std", ((0, 1),), {"unbiased": False}),
    ("logsumexp", (2,), {}), ("logsumexp", ((0, 1),), {"keepdim": True}),
    ("softmax", (2,), {}), ("softmax", (0,), {}), ("log_softmax", (1,), {}),
    ("softmin", (2,), {}), ("normalize", (2.0, 2), {}), ("normalize", (1.0, 0), {"eps": 0.5}),
]  # fmt: skip


def _lib_masked(lib, name, x, mask, args, kwargs, dtype="float32", broadcast_mask=False):
    xt = lib.tensor(x, dtype=getattr(lib, dtype), requires_grad=dtype.startswith("float"))
    m = lib.tensor(mask[:1] if broadcast_mask else mask)
    fn = getattr(lib.masked, name)
    out = fn(xt, *args, mask=m, **kwargs)
    # torch's own gradcheck wrapper: the fully masked outputs (undefined) are zeroed
    omask = lib.masked._output_mask(fn, xt, *args, mask=m, **kwargs)
    return xt, out, lib.where(omask, out, out.new_zeros([]))


def _close(d, t, tol):
    assert str(t.dtype).split(".")[-1] == str(d.dtype).split(".")[-1]
    assert tuple(d.shape) == tuple(t.shape)
    np.testing.assert_allclose(_np(d), _np(t), rtol=tol, atol=tol, equal_nan=True)


@pytest.mark.parametrize(("name", "args", "kwargs"), MASKED,
                         ids=[f"{n}{a}{k}" for n, a, k in MASKED])  # fmt: skip
@pytest.mark.parametrize("broadcast_mask", [False, True])
def test_masked_matches_torch(name, args, kwargs, broadcast_mask):
    """Values (the fully masked positions included: torch's identity, nan or -inf) and
    gradients, float32, against torch.masked."""
    x, mask = _masked_data()
    res = [_lib_masked(lib, name, x, mask, args, kwargs, broadcast_mask=broadcast_mask)
           for lib in (torch, descent)]  # fmt: skip
    (tx, tout, tz), (dx, dout, dz) = res
    _close(dout, tout, 1e-5)
    assert dout.requires_grad == tout.requires_grad
    if not tout.requires_grad:  # argmax/argmin: positions (in input's dtype, as torch.masked)
        return
    w = np.random.default_rng(3).standard_normal(tuple(tout.shape))
    (tz * torch.tensor(w, dtype=tz.dtype)).sum().backward()
    (dz * descent.tensor(w, dtype=dz.dtype)).sum().backward()
    np.testing.assert_allclose(_np(dx.grad), _np(tx.grad), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "args", "kwargs"),
                         [m for m in MASKED if m[0] not in ("argmax", "argmin", "median")],
                         ids=lambda v: str(v))  # fmt: skip
def test_masked_gradcheck_float64(name, args, kwargs):
    """Finite differences in float64 on descent's masked ops (away from ties of amax/norm)."""
    x, mask = _masked_data((2, 3, 4), seed=5)
    if name in ("var", "std"):
        # a slice with count <= correction has nan gradients in torch too (0 * 1/0): torch's
        # own samples skip those; keep two or more elements in every slice here
        mask = np.ones_like(mask)
        mask[0, 0, 0] = mask[1, 2, 3] = mask[1, 0, 1] = False
    m = descent.tensor(mask)
    fn = getattr(descent.masked, name)

    def f(t):
        out = fn(t, *args, mask=m, **kwargs)
        omask = descent.masked._output_mask(fn, t, *args, mask=m, **kwargs)
        return descent.where(omask, out, out.new_zeros([]))

    xt = descent.tensor(x, dtype=descent.float64, requires_grad=True)
    assert descent.autograd.gradcheck(f, (xt,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["sum", "prod", "amax", "amin", "argmax", "argmin", "cumsum"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_masked_integer_inputs(name, dtype):
    # (cumsum of bools: masked's dtype=bool raises, as torch's, since session 23)
    x = np.random.default_rng(1).integers(0, 5, (3, 4))
    mask = np.random.default_rng(2).random((3, 4)) > 0.3
    mask[0] = False
    outs = []
    for lib in (torch, descent):
        t = lib.tensor(x, dtype=getattr(lib, dtype))
        try:
            outs.append(getattr(lib.masked, name)(t, 1, mask=lib.tensor(mask)))
        except (TypeError, RuntimeError) as e:
            outs.append(type(e))
    if isinstance(outs[0], type):
        assert isinstance(outs[1], type), f"torch raises {outs[0]}, descent gives {outs[1]}"
        return
    _close(outs[1], outs[0], 0)


def test_masked_logaddexp():
    x, mask = _masked_data()
    y, mask2 = _masked_data(seed=4)
    res = []
    for lib in (torch, descent):
        a = lib.tensor(x, dtype=lib.float32, requires_grad=True)
        b = lib.tensor(y, dtype=lib.float32, requires_grad=True)
        out = lib.masked.logaddexp(a, b, input_mask=lib.tensor(mask),
                                   other_mask=lib.tensor(mask2[0]))  # fmt: skip
        both = lib.tensor(mask | mask2[0])
        lib.where(both, out, out.new_zeros([])).sum().backward()
        res.append((out, a.grad, b.grad))
    for t, d in zip(*res):
        _close(d, t, 1e-5)


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "softmax", "var"])
def test_masked_without_mask_is_the_plain_op(name):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    args = (1,)
    t = getattr(torch.masked, name)(torch.tensor(x), *args)
    d = getattr(descent.masked, name)(descent.tensor(x), *args)
    _close(d, t, 1e-6)


def test_masked_dtype_and_empty():
    x = np.zeros((0, 3), np.float32)
    for name in ("sum", "amax", "mean"):
        args = (1,) if name == "amax" else ()
        t = getattr(torch.masked, name)(torch.tensor(x), *args, mask=torch.zeros(0, 3).bool())
        d = getattr(descent.masked, name)(descent.tensor(x), *args,
                                          mask=descent.zeros(0, 3).bool())  # fmt: skip
        _close(d, t, 0)
    t = torch.masked.sum(torch.ones(2, 3), 1, dtype=torch.float64, mask=torch.ones(3).bool())
    d = descent.masked.sum(descent.ones(2, 3), 1, dtype=descent.float64,
                           mask=descent.ones(3).bool())  # fmt: skip
    _close(d, t, 0)


@pytest.mark.parametrize("call", [
    lambda lib: lib.masked.mean(lib.ones(3, dtype=lib.int64), mask=lib.ones(3).bool()),
    lambda lib: lib.masked.median(lib.ones(2, 3, dtype=lib.int64), 1,
                                  mask=lib.tensor([[False] * 3, [True] * 3])),
])  # fmt: skip
def test_masked_refuses_as_torch_value_error(call):
    with pytest.raises(ValueError):
        call(torch)
    with pytest.raises(ValueError):
        call(descent)


def test_masked_mask_of_higher_rank_raises():
    for lib in (torch, descent):
        with pytest.raises(IndexError, match="broadcastable mask"):
            lib.masked.sum(lib.ones(3), mask=lib.ones(2, 3).bool())


def test_random_empty_and_complex_cases_as_torch():
    """randn of an empty integer tensor is an empty tensor in torch (no kernel runs), rand's
    check runs anyway; randint refuses complex dtypes and normal a complex std."""
    for lib in (torch, descent):
        assert tuple(lib.randn(0, 5, 0, dtype=lib.int64).shape) == (0, 5, 0)
        assert lib.randn_like(lib.zeros(0, dtype=lib.bool)).dtype == lib.bool
        with pytest.raises(NotImplementedError):
            lib.rand(0, dtype=lib.int64)
        with pytest.raises(RuntimeError, match="check_random_bounds"):
            lib.randint(0, 3, (2,), dtype=lib.complex64)
        with pytest.raises(RuntimeError, match="standard deviation to be non-complex"):
            lib.normal(0.0, lib.ones(2, dtype=lib.complex64))
        z = lib.normal(lib.zeros(2, dtype=lib.complex64), 1.0)
        assert z.dtype == lib.complex64
        with pytest.raises(RuntimeError, match="automatic differentiation"):
            lib.normal(lib.zeros(2, dtype=lib.complex64, requires_grad=True), 1.0)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_vector_norm_complex_input_with_complex_dtype(dtype):
    """linalg.vector_norm(complex x, dtype=complex) is the real norm of the cast's moduli (it
    raised "complex input not supported" when dtype= was given; masked.norm passes it)."""
    a = (np.random.default_rng(0).standard_normal((3, 4))
         + 1j * np.random.default_rng(1).standard_normal((3, 4))).astype(np.complex64)
    res = []
    for lib in (torch, descent):
        x = lib.tensor(a, requires_grad=True)
        out = lib.linalg.vector_norm(x, 3.0, 1, dtype=getattr(lib, dtype))
        out.sum().backward()
        res.append((out, x.grad))
    (to, tg), (do, dg) = res
    _close(do, to, 1e-5)
    np.testing.assert_allclose(_np(dg), _np(tg), rtol=1e-4, atol=1e-6)
    for lib in (torch, descent):
        with pytest.raises(RuntimeError, match="dtype should be complex for complex inputs"):
            lib.linalg.vector_norm(lib.tensor(a), dtype=lib.float64)
        with pytest.raises(RuntimeError, match="dtype should be real for real inputs"):
            lib.linalg.vector_norm(lib.ones(3), dtype=getattr(lib, dtype))


def test_masked_norm_complex():
    x, mask = _masked_data()
    a = (x + 1j * x[::-1]).astype(np.complex64)
    res = []
    for lib in (torch, descent):
        t = lib.tensor(a, requires_grad=True)
        m = lib.tensor(mask)
        out = lib.masked.norm(t, 2.0, 2, mask=m)
        lib.masked.normalize(t, 2.0, 1, mask=m).abs().sum().backward()
        res.append((out, t.grad))
    for t, d in zip(*res):
        _close(d, t, 1e-5)
    for lib in (torch, descent):  # inf, norm -inf's identity, is not complex: torch refuses
        with pytest.raises((AssertionError, TypeError)):
            lib.masked.norm(lib.tensor(a), float("-inf"), 2, mask=lib.tensor(mask))
