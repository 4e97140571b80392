"""Fixes found by running PyTorch's docstring examples on descent (tests/docexamples_harness.py),
each checked against torch 2.13 directly."""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _raises(fn):
    """The exception class fn raises, or None."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the class is the result
        return e
    return None


# ---- testing.assert_close: complex tolerances (torch.fft.fft2's example) ----


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_assert_close_complex_default_tolerances(dtype):
    """torch.testing's defaults for complex64/complex128 are float32's/float64's; descent
    compared complex tensors exactly, so fft2(x) vs two 1-d ffts failed."""
    rng = np.random.default_rng(0)
    base = (rng.standard_normal(20) + 1j * rng.standard_normal(20)).astype(dtype)
    scale = 1e-6 if dtype == "complex64" else 1e-8
    for rel in (0.3, 1.0, 3.0, 30.0):  # relative perturbations around the tolerance
        other = base * (1 + rel * scale)
        t = _raises(lambda o=other: torch.testing.assert_close(torch.tensor(base), torch.tensor(o)))
        d = _raises(
            lambda o=other: descent.testing.assert_close(descent.tensor(base), descent.tensor(o))
        )
        assert (t is None) == (d is None), (rel, t, d)
        if t is not None:
            assert isinstance(d, AssertionError)


def test_fft2_separable_check_passes():
    x = np.random.default_rng(1).random((10, 10)).astype(np.complex64)
    dx = descent.tensor(x)
    fft2 = descent.fft.fft2(dx)
    two = descent.fft.fft(descent.fft.fft(dx, dim=0), dim=1)
    descent.testing.assert_close(fft2, two, check_stride=False)
    np.testing.assert_allclose(
        fft2.numpy(), torch.fft.fft2(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-5
    )


# ---- torch.empty(memory_format=) and empty_strided's strides ----


@pytest.mark.parametrize(
    "shape, fmt",
    [
        ((2, 3, 5, 7), "channels_last"),
        ((2, 3, 4, 5, 6), "channels_last_3d"),
        ((2, 3), "contiguous_format"),
        ((1, 3, 1, 2), "channels_last"),
    ],
)
def test_empty_memory_format(shape, fmt):
    t = torch.empty(shape, memory_format=getattr(torch, fmt))
    d = descent.empty(shape, memory_format=getattr(descent, fmt))
    assert d.stride() == t.stride() and tuple(d.shape) == tuple(t.shape)
    assert d.dtype == descent.float32
    if len(shape) == 4:
        assert d.dim_order() == t.dim_order()
        assert d.is_contiguous(memory_format=descent.channels_last) == t.is_contiguous(
            memory_format=torch.channels_last
        )


@pytest.mark.parametrize("fmt", ["channels_last", "preserve_format"])
def test_empty_memory_format_errors(fmt):
    t = _raises(lambda: torch.empty(2, 3, memory_format=getattr(torch, fmt)))
    d = _raises(lambda: descent.empty(2, 3, memory_format=getattr(descent, fmt)))
    assert isinstance(t, RuntimeError) and isinstance(d, RuntimeError)


@pytest.mark.parametrize(
    "size, stride",
    [
        ((2, 3), (1, 2)),
        ((2, 3), (3, 1)),
        ((2, 0), (1, 2)),
        ((2, 3), (0, 1)),
        ((), ()),
        ((3, 1, 2), (1, 7, 3)),
    ],
)
def test_empty_strided_strides(size, stride):
    """empty_strided ignored `stride` (its docstring's a.stride() gave (3, 1) for (1, 2))."""
    t = torch.empty_strided(size, stride)
    d = descent.empty_strided(size, stride)
    assert d.stride() == t.stride()
    assert tuple(d.shape) == tuple(t.shape)
    assert d.is_contiguous() == t.is_contiguous()


def test_empty_strided_values_and_gradient():
    d = descent.empty_strided((2, 3), (1, 2), dtype=descent.float64, requires_grad=True)
    assert d.dtype == descent.float64 and d.is_leaf
    w = descent.tensor(np.arange(6.0).reshape(2, 3))
    (d * w).sum().backward()
    np.testing.assert_array_equal(d.grad.numpy(), w.numpy())
    e = descent.empty_strided((2, 3), (1, 2))
    e.fill_(1.0)
    e[0, 1] = 5.0  # its own element only: the positions do not overlap
    np.testing.assert_array_equal(e.numpy(), [[1, 5, 1], [1, 1, 1]])
    assert _raises(lambda: descent.empty_strided((2, 3), (1,))) is not None
    assert isinstance(_raises(lambda: torch.empty_strided((2, 3), (1,))), RuntimeError)


# ---- isclose / allclose: PyTorch's RuntimeError for shapes that do not broadcast ----


@pytest.mark.parametrize("name", ["isclose", "allclose"])
def test_close_broadcast_error_type(name):
    """torch.qr's example compares a (3, 4, 4) product with eye(5): NumPy's ValueError leaked."""
    t = _raises(lambda: getattr(torch, name)(torch.ones(3, 4, 4), torch.eye(5)))
    d = _raises(lambda: getattr(descent, name)(descent.ones(3, 4, 4), descent.eye(5)))
    assert isinstance(t, RuntimeError) and isinstance(d, RuntimeError), (t, d)
    assert "(3, 4, 4)" in str(d) and "(5, 5)" in str(d)
    dm = _raises(lambda: getattr(descent.ones(3, 4, 4), name)(descent.eye(5)))
    assert isinstance(dm, RuntimeError)
    # broadcasting shapes still compare
    assert bool(
        getattr(descent, name)(descent.ones(3, 1), descent.ones(4)).all()
        if name == "isclose"
        else descent.allclose(descent.ones(3, 1), descent.ones(4))
    )


# ---- register_post_accumulate_grad_hook: hooks run with grad mode = create_graph ----


@pytest.mark.parametrize("create_graph", [False, True])
def test_post_accumulate_hook_grad_mode(create_graph):
    """The docstring's SGD step in the hook (p.add_(p.grad, alpha=-lr)) raised descent's
    leaf in-place error: PyTorch's engine runs hooks with grad mode = create_graph."""
    modes = {}
    for lib in (torch, descent):
        v = lib.tensor([0.0, 0.0, 0.0], requires_grad=True)
        seen = []

        def hook(p, lib=lib, seen=seen):
            seen.append(lib.is_grad_enabled())
            if not create_graph:
                p.add_(p.grad, alpha=-0.01)

        v.register_post_accumulate_grad_hook(hook)
        (v * lib.tensor([1.0, 2.0, 3.0])).sum().backward(create_graph=create_graph)
        modes[lib.__name__] = (seen, v.detach().numpy().copy(), lib.is_grad_enabled())
    assert modes["descent"][0] == modes["torch"][0] == [create_graph]
    np.testing.assert_allclose(modes["descent"][1], modes["torch"][1])
    assert modes["descent"][2] is True  # grad mode restored after backward


# ---- from_dlpack of a legacy capsule shares writable memory ----


def test_from_dlpack_capsule_writable_and_shared():
    """torch.from_dlpack's docstring writes through a tensor made from a capsule; NumPy marks
    the array of a legacy capsule read-only, so descent's write raised."""
    for lib in (torch, descent):
        t = lib.arange(4)
        t2 = lib.from_dlpack(t)
        t2[:2] = -1
        t3 = lib.from_dlpack(lib.utils.dlpack.to_dlpack(t))
        t3[0] = -9
        assert t.tolist() == t2.tolist() == t3.tolist() == [-9, -1, 2, 3], lib.__name__
    x = descent.tensor(np.arange(12.0).reshape(3, 4)).t()  # a transposed (strided) view
    y = descent.from_dlpack(descent.utils.dlpack.to_dlpack(x))
    assert y.stride() == x.stride() and bool((y == x).all())
    y[0, 0] = 100.0
    assert float(x[0, 0]) == 100.0


# ---- torch.overrides / torch.testing details their docstrings show ----


def test_is_tensor_like_counts_torch_function_types():
    class TensorLike:
        @classmethod
        def __torch_function__(cls, func, types, args, kwargs):
            return -1

    class NotATensor: ...

    for lib in (torch, descent):
        got = [lib.overrides.is_tensor_like(v) for v in (TensorLike(), NotATensor(), 6, None)]
        assert got == [True, False, False, False], lib.__name__
        assert lib.overrides.is_tensor_like(lib.ones(2))


def test_is_tensor_method_or_property():
    for lib in (torch, descent):
        f = lib.overrides.is_tensor_method_or_property
        assert f(lib.Tensor.add) and f(lib.Tensor.sum) and f(lib.Tensor.shape.__get__)
        assert not f(lib.add) and not f(len)


def test_assert_close_allow_subclasses_false():
    for lib in (torch, descent):
        a = lib.ones(3)
        lib.testing.assert_close(lib.nn.Parameter(a.clone()), a)  # related types: compared
        e = _raises(
            lambda lib=lib, a=a: lib.testing.assert_close(
                lib.nn.Parameter(a.clone()), a, allow_subclasses=False
            )
        )
        assert isinstance(e, TypeError) and "No comparison pair" in str(e), lib.__name__
        lib.testing.assert_close(a, a.clone(), allow_subclasses=False)


# ---- torch.hash_tensor (PyTorch 2.13's xor reduction of the 64-bit patterns) ----


@pytest.mark.parametrize(
    "arr, kw",
    [
        (np.array([[1.1918, -1.1813, 0.3373]], np.float32), {}),
        (np.arange(8.0).reshape(2, 4) - 3.5, {"dim": 1}),
        (
            np.linspace(-2, 2, 24).reshape(2, 4, 3).astype(np.float32),
            {"dim": (0, 2), "keepdim": True},
        ),
        (np.array([[1, 2], [3, -4]], np.int32), {"dim": -1}),
        (np.array([True, False, True]), {}),
        (np.array([-1, 5], np.int8), {}),
        (np.array([255, 3], np.uint8), {}),
        (np.array(2.0, np.float32), {"dim": 0, "keepdim": True}),
        (np.ones((2, 3), np.float16), {"dim": []}),
        (np.array([np.nan, -0.0, np.inf]), {}),
        (np.ones((0, 3), np.float32), {"dim": 1}),
    ],
)
def test_hash_tensor(arr, kw):
    t = torch.hash_tensor(torch.tensor(arr), **kw)
    d = descent.hash_tensor(descent.tensor(arr), **kw)
    assert str(d.dtype) == "descent.uint64" and tuple(d.shape) == tuple(t.shape)
    assert d.tolist() == t.tolist()


def test_hash_tensor_bfloat16_and_errors():
    t = torch.hash_tensor(torch.tensor([1.0, 2.5, -3.0]).bfloat16())
    d = descent.hash_tensor(descent.tensor([1.0, 2.5, -3.0]).bfloat16())
    assert d.item() == t.item()
    for call in (
        lambda L: L.hash_tensor(L.ones(2), mode=1),
        lambda L: L.hash_tensor(L.ones(2), 3),
        lambda L: L.hash_tensor(L.empty(0)),
        lambda L: L.hash_tensor(L.empty(0, 3), 0),
        lambda L: L.hash_tensor(L.ones(2, dtype=L.complex64)),
    ):
        te, de = _raises(lambda c=call: c(torch)), _raises(lambda c=call: c(descent))
        assert te is not None and isinstance(de, type(te)), (te, de)


# ---- Tensor.grad_dtype (PyTorch 2.13) ----


def test_grad_dtype_casts_accumulated_and_returned_gradients():
    out = {}
    for lib in (torch, descent):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        got = [str(x.grad_dtype)]
        x.grad_dtype = lib.float16
        got.append(str(x.grad_dtype))
        (x * 3).sum().backward()
        (x * 3).sum().backward()
        got += [str(x.grad.dtype), x.grad.tolist()]
        w = lib.ones(2, requires_grad=True)
        w.grad_dtype = lib.float64
        got.append(str(lib.autograd.grad((w * 2).sum(), w)[0].dtype))
        x.grad, x.grad_dtype = None, None
        got.append(x.grad_dtype)
        (x * 2).sum().backward()
        got.append(str(x.grad.dtype))
        z = lib.ones(2)  # a leaf that does not require grad still has one
        z.grad_dtype = lib.float64
        got.append(str(z.grad_dtype))
        out[lib.__name__] = [str(v).replace("descent.", "torch.") for v in got]
    assert out["descent"] == out["torch"]


def test_grad_dtype_errors():
    for lib in (torch, descent):
        y = lib.ones(2, requires_grad=True) * 2
        for call in (
            lambda y=y: y.grad_dtype,
            lambda y=y, L=lib: setattr(y, "grad_dtype", L.float64),
        ):
            assert isinstance(_raises(call), RuntimeError), lib.__name__
        x = lib.ones(2, requires_grad=True)
        assert isinstance(_raises(lambda x=x: setattr(x, "grad_dtype", 3)), RuntimeError)


# ---- torch.sparse.spdiags ----


@pytest.mark.parametrize(
    "diags, offsets, shape",
    [
        (np.arange(9).reshape(3, 3), [0, -1, -2], (3, 3)),
        (np.arange(1, 10.0).reshape(3, 3), [0, 1, 2], (3, 4)),
        (np.array([[1, 2], [3, 4]]), [0, -1], (5, 5)),
        (np.arange(1, 13.0).reshape(3, 4), [0, -1, 1], (4, 6)),
        (np.arange(4.0), [1], (3, 3)),
        (np.arange(6.0).reshape(2, 3), [-1, 2], (2, 2)),  # offset 2: outside, places nothing
    ],
)
def test_spdiags(diags, offsets, shape):
    for layout in (None, "sparse_csr", "sparse_csc"):
        kw = {} if layout is None else {"layout": getattr(torch, layout)}
        dkw = {} if layout is None else {"layout": getattr(descent, layout)}
        t = torch.sparse.spdiags(torch.tensor(diags), torch.tensor(offsets), shape, **kw)
        d = descent.sparse.spdiags(descent.tensor(diags), descent.tensor(offsets), shape, **dkw)
        np.testing.assert_array_equal(d.to_dense().numpy(), t.to_dense().numpy())
        assert str(d.layout).split(".")[-1] == str(t.layout).split(".")[-1]
        if layout is None:  # PyTorch's entry order, uncoalesced
            np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
        else:
            np.testing.assert_array_equal(d.values().numpy(), t.values().numpy())


def test_spdiags_gradient_and_errors():
    """PyTorch has no derivative for spdiags (backward raises); descent's reaches each placed
    entry of `diagonals`: d/d diagonals[i, c] = upstream[c - offsets[i], c]."""
    x = np.arange(1, 10.0).reshape(3, 3)
    w = np.linspace(-1, 1, 12).reshape(3, 4)
    dg = descent.tensor(x, requires_grad=True)
    s = descent.sparse.spdiags(dg, descent.tensor([0, 1, -1]), (3, 4))
    (s.to_dense() * descent.tensor(w)).sum().backward()
    want = np.zeros((3, 3))
    for i, k in enumerate([0, 1, -1]):
        for c in range(3):
            if 0 <= c - k < 3:
                want[i, c] = w[c - k, c]
    np.testing.assert_allclose(dg.grad.numpy(), want)
    for call in (
        lambda L: L.sparse.spdiags(L.ones(3, 3), L.tensor([0, 0, 1]), (3, 3)),
        lambda L: L.sparse.spdiags(L.ones(3, 3), L.tensor([0, 1]), (3, 3)),
        lambda L: L.sparse.spdiags(L.ones(3, 3), L.tensor([[0, 1, 2]]), (3, 3)),
        lambda L: L.sparse.spdiags(L.ones(3, 3), L.tensor([0, 1, 2]), (3, 3, 3)),
        lambda L: L.sparse.spdiags(L.ones(3, 3), L.tensor([0.0, 1, 2]), (3, 3)),
        lambda L: L.sparse.spdiags(L.ones(3, 3), L.tensor([0, 1, 2]), (3, 3), layout=L.strided),
    ):
        te, de = _raises(lambda c=call: c(torch)), _raises(lambda c=call: c(descent))
        assert isinstance(te, RuntimeError) and isinstance(de, RuntimeError), (te, de)


# ---- torch.sparse.mm(csr, dense, reduce) ----


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "max", "min"])
def test_sparse_mm_reduce(reduce):
    rng = np.random.default_rng(0)
    a = (rng.random((6, 5)) < 0.5) * rng.integers(-2, 3, (6, 5)).astype(np.float32)
    a[2] = 0  # an empty row gives 0
    b = rng.integers(-2, 3, (5, 3)).astype(np.float32)  # many ties for amax/amin
    g = rng.standard_normal((6, 3)).astype(np.float32)
    res = []
    for lib in (torch, descent):
        bb = lib.tensor(b, requires_grad=True)
        y = lib.sparse.mm(lib.tensor(a).to_sparse_csr(), bb, reduce)
        (y * lib.tensor(g)).sum().backward()
        res.append((y.detach().numpy(), bb.grad.numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-6)
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=1e-5, atol=1e-6)


def test_sparse_mm_reduce_errors():
    a = np.array([[1.0, 0, 2], [0, 3, 0]], np.float32)
    b = np.ones((3, 2), np.float32)
    for lib in (torch, descent):
        e = _raises(lambda L=lib: L.sparse.mm(L.tensor(a).to_sparse_csr(), L.tensor(b), "prod"))
        assert isinstance(e, RuntimeError), lib.__name__
        e = _raises(lambda L=lib: L.sparse.mm(L.tensor(a).to_sparse(), L.tensor(b), "sum"))
        assert isinstance(e, NotImplementedError), lib.__name__  # COO: no kernel
    # A CSR operand requiring grad gets a CSR gradient at its stored entries, as torch's (it was
    # refused before a2ee720c; never silently without a gradient)
    got = []
    for lib in (torch, descent):
        c = lib.tensor(a).to_sparse_csr().requires_grad_()
        y = lib.sparse.mm(c, lib.tensor(b) * lib.arange(3.0).reshape(3, 1), "sum")
        (y * lib.tensor([[1.0, 2], [3, 4]])).sum().backward()
        got.append((y.tolist(), c.grad.to_dense().tolist(), str(c.grad.layout).split(".")[-1]))
    assert got[0] == got[1]


def test_to_sparse_compressed_refuses_blocksize():
    """Tensor.to_sparse's docstring: a blocksize for CSR/CSC is refused (descent made a CSR)."""
    for lib in (torch, descent):
        x = lib.ones(4, 4)
        for layout in ("sparse_csr", "sparse_csc"):
            e = _raises(
                lambda L=lib, x=x, n=layout: x.to_sparse(layout=getattr(L, n), blocksize=(2, 2))
            )
            assert isinstance(e, RuntimeError) and "blocksize" in str(e), (lib.__name__, e)
        assert str(x.to_sparse(layout=lib.sparse_bsr, blocksize=(2, 2)).layout).endswith("bsr")


# ---- torch.from_file ----


def test_from_file(tmp_path):
    path = str(tmp_path / "storage.bin")
    np.arange(10, dtype=np.float64).tofile(path)
    for kw in ({"size": 4, "dtype": "float64"}, {"dtype": "float64"}, {"size": 3, "dtype": "int32"},
               {"size": 2}):  # fmt: skip
        t = torch.from_file(
            path, **{k: getattr(torch, v) if k == "dtype" else v for k, v in kw.items()}
        )
        d = descent.from_file(
            path, **{k: getattr(descent, v) if k == "dtype" else v for k, v in kw.items()}
        )
        assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(d.numpy(), t.numpy())
    private = descent.from_file(path, shared=False, size=2, dtype=descent.float64)
    private[0] = 5.0  # a private copy: the file keeps its value
    assert np.fromfile(path)[0] == 0.0
    mapped = descent.from_file(path, shared=True, size=10, dtype=descent.float64)
    mapped[0] = 99.0  # a shared map: the file changes
    assert np.fromfile(path)[0] == 99.0
    grown = str(tmp_path / "new.bin")
    assert tuple(descent.from_file(grown, shared=True, size=6, dtype=descent.int64).shape) == (6,)
    assert np.fromfile(grown, dtype=np.int64).tolist() == [0] * 6
    for lib in (torch, descent):
        too_short = _raises(lambda L=lib: L.from_file(path, size=20, dtype=L.float64))
        missing = _raises(lambda L=lib: L.from_file(str(tmp_path / "no.bin"), size=2))
        assert isinstance(too_short, RuntimeError) and isinstance(missing, RuntimeError)


# ---- nn.Module.to(complex dtype) ----


def test_module_to_complex():
    """Module.to(torch.cdouble) (its docstring's example) raised in descent: PyTorch casts the
    floating (and complex) parameters and buffers, integer buffers keep their dtype."""
    tm = torch.nn.BatchNorm1d(3)
    dm = descent.nn.BatchNorm1d(3)
    with pytest.warns(UserWarning):  # PyTorch: "Complex modules are a new feature"
        tm.to(torch.cdouble)
    dm.to(descent.cdouble)
    assert {k: str(v.dtype)[6:] for k, v in tm.state_dict().items()} == {
        k: str(v.dtype)[8:] for k, v in dm.state_dict().items()
    }
    tl = torch.nn.Linear(2, 2, bias=False)
    dl = descent.nn.Linear(2, 2, bias=False)
    dl.load_state_dict({"weight": descent.tensor(tl.weight.detach().numpy())})
    with pytest.warns(UserWarning):
        tl.to(torch.cdouble)
    dl.to(descent.cdouble)
    x = np.array([[1 + 2j, -1j], [0.5, 2]])
    np.testing.assert_allclose(dl(descent.tensor(x)).detach().numpy(),
                               tl(torch.tensor(x)).detach().numpy())  # fmt: skip
    dl.to(descent.float32)  # back to real: the real part, as PyTorch's cast
    assert str(dl.weight.dtype) == "descent.float32"
    np.testing.assert_allclose(dl.weight.detach().numpy(), tl.weight.detach().real.float().numpy())
    for lib in (torch, descent):
        assert isinstance(_raises(lambda L=lib: L.nn.Linear(2, 2).to(L.int64)), TypeError)


# ---- device=0 and torch.accelerator.device_index ----


def test_int_device_is_the_accelerator_index():
    """torch.zeros(2000, device=0) (torch.accelerator.Graph's example): an int device is the
    accelerator's index; descent raised ValueError ('unknown device') where PyTorch, on a
    machine without one, raises RuntimeError."""
    if descent.accelerator.is_available():
        assert str(descent.zeros(2, device=0).device) == "cuda:0"
    else:
        for lib in (torch, descent):
            assert isinstance(_raises(lambda L=lib: L.zeros(2, device=0)), RuntimeError)
    e = _raises(lambda: descent.zeros(2, device=-1))
    assert isinstance(e, RuntimeError) and "negative" in str(e)
    assert isinstance(_raises(lambda: torch.zeros(2, device=-1)), RuntimeError)


def test_accelerator_device_index():
    for lib in (torch, descent):
        with lib.accelerator.device_index(None):  # None: no switch
            pass
        if not lib.accelerator.is_available():

            def enter(L=lib):
                with L.accelerator.device_index(0):
                    pass

            assert isinstance(_raises(enter), RuntimeError)
            assert isinstance(
                _raises(lambda L=lib: L.accelerator.set_device_index(0)), RuntimeError
            )
