"""float8 (e4m3fn, e5m2, e4m3fnuz, e5m2fnuz, e8m0fnu) and uint16/32/64 against PyTorch 2.13.

The spec is what PyTorch's CPU does with these "limited support" dtypes (docs/dtypes.md): the
dtype objects and finfo / iinfo; conversions, compared bitwise over all 256 float8 bit patterns
and adversarial float32 / float64 / float16 / int64 inputs (saturation, ties, subnormals, nan,
inf, -0.0); the ops PyTorch moves, computes or refuses on float8 (and its messages); promotion
(`promote_types`, `result_type`, what `a + b` says); printing; safetensors checkpoints in both
directions; `torch._scaled_mm`; and the uint ops PyTorch computes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import descent as ds

F8 = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"]
UINT = ["uint16", "uint32", "uint64"]
OTHERS = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64", "complex64", "complex128"]  # fmt: skip
BITS = np.arange(256, dtype=np.uint8)
rng = np.random.default_rng(0)


def _t8(name, bits):
    """The same float8 bit patterns as (torch tensor, descent tensor)."""
    bits = np.ascontiguousarray(bits, dtype=np.uint8)
    return (torch.from_numpy(bits.copy()).view(getattr(torch, name)),
            ds.tensor(bits).view(getattr(ds, name)))  # fmt: skip


def _bits(t) -> np.ndarray:
    """A tensor's bytes as uint8, from either library."""
    if isinstance(t, torch.Tensor):
        return t.contiguous().view(torch.uint8).numpy()
    return np.ascontiguousarray(t._data).view(np.uint8)


def _name(dtype) -> str:
    return str(dtype).rpartition(".")[2]


def _adversarial_float32(name) -> np.ndarray:
    """Every float8 value, the midpoints between neighbours and their float32 neighbours (the
    ties), values past the largest finite one, subnormals, nan, +-inf, -0.0, random spreads."""
    vals = BITS.view(_np8(name)).astype(np.float32)
    reps = np.unique(vals[np.isfinite(vals)])
    mids = ((reps[1:].astype(np.float64) + reps[:-1]) / 2).astype(np.float32)
    big = float(reps.max())
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, big, -big, big * 1.0625,
                        big * 1.125, big * 2, 1e30, -1e30, 3.4e38, 1e-45, -1e-45, 1e-40,
                        float(reps[reps > 0].min()) / 2, float(reps[reps > 0].min()) * 0.75],
                       dtype=np.float32)  # fmt: skip
    up, down = np.float32(np.inf), np.float32(-np.inf)
    spread = np.concatenate([rng.standard_normal(2000) * big / 4, rng.standard_normal(2000) * 4,
                             np.exp2(rng.uniform(-140, 128, 2000))]).astype(np.float32)  # fmt: skip
    with np.errstate(over="ignore"):
        return np.concatenate([special, reps, -reps, mids, -mids, np.nextafter(mids, up),
                               np.nextafter(mids, down), spread]).astype(np.float32)  # fmt: skip


def _np8(name):
    import ml_dtypes

    return np.dtype(getattr(ml_dtypes, name))


# -- the dtype objects --------------------------------------------------------------------------


@pytest.mark.parametrize("name", F8 + UINT)
def test_dtype_attributes_match_torch(name):
    d, t = getattr(ds, name), getattr(torch, name)
    assert str(d) == "descent." + name and repr(d) == "descent." + name
    assert (d.itemsize, d.is_floating_point, d.is_signed, d.is_complex) == (
        t.itemsize,
        t.is_floating_point,
        t.is_signed,
        t.is_complex,
    )
    xd, xt = ds.zeros(3, dtype=d), torch.zeros(3, dtype=t)
    assert xd.element_size() == xt.element_size() and xd.is_floating_point() == (
        xt.is_floating_point()
    )
    assert xd.type().replace("descent.", "torch.") == xt.type()  # torch.Float8_e4m3fnTensor
    assert xd.dtype is d and ds.empty(2, 2, dtype=d).shape == (2, 2)


@pytest.mark.parametrize("name", F8)
def test_finfo_matches_torch(name):
    fd, ft = ds.finfo(getattr(ds, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(fd, field) == getattr(ft, field), field
    assert fd.dtype == ft.dtype == name
    with pytest.raises(TypeError, match=r"torch.iinfo\(\) requires an integer input type"):
        ds.iinfo(getattr(ds, name))


@pytest.mark.parametrize("name", UINT)
def test_iinfo_matches_torch(name):
    idt, it = ds.iinfo(getattr(ds, name)), torch.iinfo(getattr(torch, name))
    assert (idt.min, idt.max, idt.bits) == (it.min, it.max, it.bits)
    with pytest.raises(TypeError, match=r"torch.finfo\(\) requires a floating point input"):
        ds.finfo(getattr(ds, name))


def test_finfo_iinfo_refusals_as_torch():
    with pytest.raises(TypeError, match="torch.bool is not supported by torch.iinfo"):
        ds.iinfo(ds.bool)
    with pytest.raises(TypeError, match=r"requires a floating point input type"):
        ds.finfo(ds.int64)
    assert ds.finfo(ds.complex64).eps == torch.finfo(torch.complex64).eps


def test_set_default_dtype_refuses_float8_and_uint():
    for name in ("float8_e4m3fn", "float8_e5m2", "uint16"):
        with pytest.raises(TypeError):
            torch.set_default_dtype(getattr(torch, name))
        with pytest.raises(TypeError):
            ds.set_default_dtype(getattr(ds, name))
    assert ds.get_default_dtype() is ds.float32


def test_dtypes_pickle_and_spellings():
    import copy
    import pickle

    for name in F8 + UINT:
        d = getattr(ds, name)
        assert pickle.loads(pickle.dumps(d)) is d and copy.deepcopy(d) is d
    x = ds.tensor(np.array([1.5, -2.0], dtype=_np8("float8_e5m2")))  # an ml_dtypes array
    assert x.dtype is ds.float8_e5m2
    assert ds.tensor([1.0], dtype="float8_e4m3fn").dtype is ds.float8_e4m3fn


# -- conversions, bitwise -------------------------------------------------------------------------


@pytest.mark.parametrize("name", F8)
def test_all_256_bit_patterns_convert_as_torch(name):
    t, d = _t8(name, BITS)
    for target in ("float32", "float64", "float16", "bfloat16", *F8):
        rt, rd = t.to(getattr(torch, target)), d.to(getattr(ds, target))
        assert _name(rd.dtype) == _name(rt.dtype)
        np.testing.assert_array_equal(_bits(rd), _bits(rt), err_msg=f"{name} -> {target}")
    finite = np.isfinite(t.float().numpy())  # nan -> integer is undefined behaviour in C++
    for target in ("int64", "int32", "uint8", "bool"):
        rt, rd = t.to(getattr(torch, target)), d.to(getattr(ds, target))
        np.testing.assert_array_equal(rd.numpy()[finite], rt.numpy()[finite], err_msg=target)
    assert d.tolist() == pytest.approx(t.tolist(), nan_ok=True)
    assert d[7].item() == t[7].item()


@pytest.mark.parametrize("name", F8)
def test_adversarial_float32_to_float8_bitwise(name):
    x = _adversarial_float32(name)
    rt = torch.from_numpy(x).to(getattr(torch, name))
    rd = ds.tensor(x).to(getattr(ds, name))
    np.testing.assert_array_equal(_bits(rd), _bits(rt))
    # tensor(list, dtype=) and the other source dtypes (float64 rounds to float32 first, as c10)
    np.testing.assert_array_equal(
        _bits(ds.tensor(x[:60].tolist(), dtype=getattr(ds, name))),
        _bits(torch.tensor(x[:60].tolist(), dtype=getattr(torch, name))),
    )
    x64 = np.concatenate([x.astype(np.float64), x.astype(np.float64) * (1 + 1e-9)])
    np.testing.assert_array_equal(
        _bits(ds.tensor(x64).to(getattr(ds, name))),
        _bits(torch.from_numpy(x64).to(getattr(torch, name))),
    )
    with np.errstate(over="ignore"):
        x16 = x.astype(np.float16)
    np.testing.assert_array_equal(
        _bits(ds.tensor(x16).to(getattr(ds, name))),
        _bits(torch.from_numpy(x16).to(getattr(torch, name))),
    )
    ints = np.array([0, 1, -1, 3, 17, 447, 448, 449, 464, 480, 57344, 61440, 2**40, -(2**40)])
    np.testing.assert_array_equal(
        _bits(ds.tensor(ints).to(getattr(ds, name))),
        _bits(torch.from_numpy(ints).to(getattr(torch, name))),
    )


def test_e8m0_rounding_over_float32_bit_patterns():
    """float8_e8m0fnu's c10 rounding (exponent + guard-bit rounding, sign dropped) over a
    stride through all float32 bit patterns, both signs, subnormals and nan included."""
    bits = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    rt = torch.from_numpy(x.copy()).to(torch.float8_e8m0fnu)
    rd = ds.tensor(x).to(ds.float8_e8m0fnu)
    np.testing.assert_array_equal(_bits(rd), _bits(rt))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"])
def test_creation_and_views(name):
    d, t = getattr(ds, name), getattr(torch, name)
    for make in (lambda lib, dt: lib.zeros(2, 3, dtype=dt), lambda lib, dt: lib.ones(4, dtype=dt),
                 lambda lib, dt: lib.full((2,), 3.3, dtype=dt),
                 lambda lib, dt: lib.tensor([[0.5, 1e9], [-0.0, 2.0]], dtype=dt)):  # fmt: skip
        rt, rd = make(torch, t), make(ds, d)
        assert rd.shape == tuple(rt.shape) and _name(rd.dtype) == name
        np.testing.assert_array_equal(_bits(rd), _bits(rt))
    tt, dd = _t8(name, BITS[:8])
    assert dd.view(ds.uint8).dtype is ds.uint8
    np.testing.assert_array_equal(dd.view(ds.uint8).numpy(), tt.view(torch.uint8).numpy())
    np.testing.assert_array_equal(
        _bits(dd.view(ds.uint8).view(ds.float8_e5m2)),
        _bits(tt.view(torch.uint8).view(torch.float8_e5m2)),
    )
    with pytest.raises(TypeError, match=f"Got unsupported ScalarType {'F' + name[1:]}"):
        dd.numpy()


# -- ops: moved, computed, refused ----------------------------------------------------------------

MOVES = {
    "cat": lambda lib, a, b: lib.cat([a, b]),
    "stack": lambda lib, a, b: lib.stack([a, b], 1),
    "reshape_t": lambda lib, a, b: a.reshape(4, 4).t().contiguous(),
    "basic_index": lambda lib, a, b: a[1:9:2],
    "tensor_index": lambda lib, a, b: a[lib.tensor([3, 0, 3])],
    "bool_mask": lambda lib, a, b: a[lib.tensor([True, False] * 8)],
    "index_select": lambda lib, a, b: a.index_select(0, lib.tensor([2, 5])),
    "clone": lambda lib, a, b: a.clone(),
    "copy_": lambda lib, a, b: lib.empty_like(a).copy_(b),
    "where": lambda lib, a, b: lib.where(lib.arange(16) % 2 == 0, a, b),
    "repeat": lambda lib, a, b: a.repeat(2),
    "roll": lambda lib, a, b: a.roll(3),
    "expand": lambda lib, a, b: a.reshape(1, 16).expand(2, 16).contiguous(),
    "setitem": lambda lib, a, b: _setitem(a.clone(), b),
    "mul": lambda lib, a, b: a * b,
    "matmul": lambda lib, a, b: a.reshape(4, 4) @ b.reshape(4, 4),
    "abs": lambda lib, a, b: a.abs(),
    "eq": lambda lib, a, b: a == b,
    "ne": lambda lib, a, b: a != b,
    "eq_scalar": lambda lib, a, b: a == 1.0,
    "isnan": lambda lib, a, b: a.isnan(),
}


def _setitem(x, y):
    x[2:5] = y[:3]
    return x


@pytest.mark.parametrize("name", F8)
def test_ops_torch_supports_match_bitwise(name):
    """Moves, comparisons, mul and matmul (computed in float32, rounded once) and abs (on the
    bits) on every format, over finite values and over random bit patterns (nan, inf, -0)."""
    finite = np.array([1, -2, 0.25, 300, 0.0, 448, -0.0, 3, 7.5, -1.5, 2, 96, 0.125, 5, 6, -8],
                      np.float32)  # fmt: skip
    t, d = getattr(torch, name), getattr(ds, name)
    for a, b in ((finite, finite[::-1].copy()),
                 (rng.integers(0, 256, 16), rng.integers(0, 256, 16))):  # fmt: skip
        if a.dtype == np.float32:
            ta, tb = torch.from_numpy(a).to(t), torch.from_numpy(b).to(t)
            da, db = ds.tensor(a).to(d), ds.tensor(b).to(d)
        else:
            (ta, da), (tb, db) = _t8(name, a), _t8(name, b)
        for op, f in MOVES.items():
            try:
                rt = f(torch, ta, tb)
            except NotImplementedError as e:  # e8m0fnu: no matmul, no abs
                with pytest.raises(NotImplementedError, match=_msg(str(e))):
                    f(ds, da, db)
                continue
            rd = f(ds, da, db)
            assert _name(rd.dtype) == _name(rt.dtype), op
            if op == "matmul" and a.dtype != np.float32:  # nan's sign: accumulation order
                np.testing.assert_array_equal(rd.float().numpy(), rt.float().numpy())
            else:
                np.testing.assert_array_equal(_bits(rd), _bits(rt), err_msg=op)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz"])
def test_linear_and_writes_match_torch(name):
    """F.linear (PyTorch's float8 addmm: float32 inside, one rounding) and values written into
    a float8 tensor from float32 or Python numbers (copy_, x[i] = c, fill_, full): rounded and
    saturated by PyTorch's conversion, not ml_dtypes' cast, and c10's overflow error where
    PyTorch checks (fill_ and full; PyTorch's one-element fill_ does not check: not tested)."""
    t, d = getattr(torch, name), getattr(ds, name)
    x, w = rng.standard_normal((5, 16)).astype(np.float32) * 3, rng.standard_normal((7, 16))
    w, b = w.astype(np.float32), rng.standard_normal(7).astype(np.float32)
    rt = torch.nn.functional.linear(*(torch.from_numpy(a).to(t) for a in (x, w, b)))
    rd = ds.nn.functional.linear(*(ds.tensor(a).to(d) for a in (x, w, b)))
    np.testing.assert_array_equal(_bits(rd), _bits(rt))
    src = np.array([500.0, 1.0, -1e9, np.nan, 0.3], np.float32)
    rt = torch.zeros(5, dtype=t).copy_(torch.from_numpy(src))
    np.testing.assert_array_equal(_bits(ds.zeros(5, dtype=d).copy_(ds.tensor(src))), _bits(rt))
    for value in (500.0, -1e9, float("inf"), float("nan"), 0.3, 61439.0):
        zt, zd = torch.zeros(2, dtype=t), ds.zeros(2, dtype=d)
        zt[0], zd[0] = value, value  # one element: converted (saturated) without a check
        np.testing.assert_array_equal(_bits(zd), _bits(zt))
        # fill_ and full of several elements: c10's overflow check first
        for make in (lambda lib, dt, v=value: lib.zeros(3, dtype=dt).fill_(v),
                     lambda lib, dt, v=value: lib.full((2,), v, dtype=dt)):  # fmt: skip
            try:
                want = _bits(make(torch, t))
            except RuntimeError as e:
                with pytest.raises(RuntimeError, match=str(e)):
                    make(ds, d)
                continue
            np.testing.assert_array_equal(_bits(make(ds, d)), want)
    assert ds.zeros(1, dtype=d).is_signed() is torch.zeros(1, dtype=t).is_signed() is True
    assert ds.zeros(1, dtype=ds.float8_e8m0fnu).is_signed() is False
    assert ds.zeros(1, dtype=ds.uint16).is_signed() is False


def _msg(torch_message: str) -> str:
    """The part of PyTorch's message that descent repeats (the kernel name may differ)."""
    return "not implemented for '" + torch_message.rpartition("for '")[2].rstrip("'") + "'"


REFUSED = {
    "add": lambda x: x + x, "sub": lambda x: x - x, "neg": lambda x: -x, "div": lambda x: x / x,
    "add_scalar": lambda x: x + 1, "mul_scalar": lambda x: x * 2.0, "sum": lambda x: x.sum(),
    "mean": lambda x: x.mean(), "max": lambda x: x.max(), "exp": lambda x: x.exp(),
    "sqrt": lambda x: x.sqrt(), "relu": lambda x: x.relu(), "flip": lambda x: x.flip(0),
    "sort": lambda x: x.sort(), "pow": lambda x: x**2, "sigmoid": lambda x: x.sigmoid(),
}  # fmt: skip


@pytest.mark.parametrize("name", F8)
def test_refusals_match_torch(name):
    t, d = _t8(name, BITS[56:60])
    for f in REFUSED.values():
        with pytest.raises(NotImplementedError) as info:
            f(t)
        with pytest.raises(NotImplementedError, match=_msg(str(info.value))):
            f(d)
    if name != "float8_e4m3fn":  # kernel names where descent knows them
        return
    for op, kernel in (("add", "add_stub"), ("neg", "neg_cpu"), ("div", "div_cpu"),
                       ("sum", "sum_cpu"), ("mul_scalar", "mul_cpu_reduced_float")):  # fmt: skip
        with pytest.raises(NotImplementedError, match=f'"{kernel}" not implemented'):
            REFUSED[op](d)


# -- promotion ------------------------------------------------------------------------------------


def _outcome(fn):
    try:
        return _name(fn())
    except RuntimeError as e:
        return str(e).split(";")[0]


@pytest.mark.parametrize("name", F8 + UINT)
def test_promotion_table_matches_torch(name):
    for other in F8 + UINT + OTHERS:
        for a, b in ((name, other), (other, name)):
            got = _outcome(lambda a=a, b=b: ds.promote_types(getattr(ds, a), getattr(ds, b)))
            want = _outcome(
                lambda a=a, b=b: torch.promote_types(getattr(torch, a), getattr(torch, b))
            )
            assert got == want, (a, b)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "uint16", "uint64"])
def test_result_type_and_mixed_operands(name):
    x_t, x_d = torch.zeros(2, dtype=getattr(torch, name)), ds.zeros(2, dtype=getattr(ds, name))
    operands = [
        (1.0, 1.0),
        (3, 3),
        (True, True),
        (torch.tensor(1.0), ds.tensor(1.0)),
        (torch.tensor(1), ds.tensor(1)),
        (torch.zeros(2), ds.zeros(2)),
        (torch.zeros(2, dtype=torch.int64), ds.zeros(2, dtype=ds.int64)),
        (torch.zeros(2, dtype=torch.float8_e5m2), ds.zeros(2, dtype=ds.float8_e5m2)),
    ]
    for ot, od in operands:
        assert _outcome(lambda od=od: ds.result_type(x_d, od)) == _outcome(
            lambda ot=ot: torch.result_type(x_t, ot)
        )
        want = _outcome(lambda ot=ot: (x_t * ot).dtype)
        if want.startswith("Promotion"):
            with pytest.raises(RuntimeError, match=want):
                x_d * od
            with pytest.raises(RuntimeError, match=want):
                x_d + od


# -- uint16 / uint32 / uint64 -------------------------------------------------------------------

UINT_OPS = {
    "mul": lambda lib, a, b: a * b, "div": lambda lib, a, b: a / b,
    "sum": lambda lib, a, b: a.sum(), "sum_dim": lambda lib, a, b: a.reshape(2, 2).sum(0),
    "eq": lambda lib, a, b: a == b, "bitand": lambda lib, a, b: a & b,
    "sort": lambda lib, a, b: a.sort().values, "unique": lambda lib, a, b: lib.unique(a),
    "sqrt": lambda lib, a, b: a.sqrt(), "cumsum": lambda lib, a, b: a.cumsum(0),
    "prod": lambda lib, a, b: a.prod(), "cat": lambda lib, a, b: lib.cat([a, b]),
    "where": lambda lib, a, b: lib.where(a == b, a, b), "to_float": lambda lib, a, b: a.float(),
    "mul_int": lambda lib, a, b: a * 3, "index": lambda lib, a, b: a[lib.tensor([3, 0])],
}  # fmt: skip


@pytest.mark.parametrize("name", UINT)
def test_uint_ops_torch_computes(name):
    top = int(torch.iinfo(getattr(torch, name)).max)
    vals = [[0, 7, top, 12], [5, 7, 1, top]]
    ta, tb = (torch.tensor(v, dtype=getattr(torch, name)) for v in vals)
    da, db = (ds.tensor(v, dtype=getattr(ds, name)) for v in vals)
    for op, f in UINT_OPS.items():
        rt, rd = f(torch, ta, tb), f(ds, da, db)
        assert _name(rd.dtype) == _name(rt.dtype), op
        np.testing.assert_array_equal(rd.numpy(), rt.numpy(), err_msg=op)


def test_uint_arithmetic_descent_computes_where_torch_refuses():
    """PyTorch 2.13 refuses add/neg/max/... on uint16/32/64 ("limited support"); descent
    computes them (NumPy's wrapping arithmetic): documented in docs/dtypes.md."""
    with pytest.raises(NotImplementedError, match="add_stub"):
        torch.tensor([1], dtype=torch.uint16) + 1
    u = ds.tensor([1, 65535], dtype=ds.uint16)
    assert (u + 1).tolist() == [2, 0] and (u + 1).dtype is ds.uint16
    assert u.max().item() == 65535


# -- printing, checkpoints, _scaled_mm ----------------------------------------------------------


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", *UINT])
def test_printing_matches_torch(name):
    if name.startswith("uint"):
        top = int(torch.iinfo(getattr(torch, name)).max)
        t = torch.tensor([3, top], dtype=getattr(torch, name))
        d = ds.tensor([3, top], dtype=getattr(ds, name))
    else:
        t, d = _t8(name, np.array([56, 57, 40, 121, 0, 8], np.uint8))
    for rt, rd in ((t, d), (t[:0], d[:0]), (t[1], d[1])):
        assert repr(rd).replace("descent.", "torch.") == repr(rt)


def test_checkpoints_round_trip_bitwise(tmp_path):
    sd = {n: ds.tensor(BITS.reshape(16, 16)).view(getattr(ds, n)) for n in F8[:4]}
    for n in UINT:
        sd[n] = ds.tensor(np.array([0, 1, np.iinfo(n).max], dtype=n))
    path = tmp_path / "a.safetensors"
    ds.io.save_state_dict(path, sd)
    back = ds.io.load_state_dict(path)
    for n, x in sd.items():
        assert back[n].dtype is x.dtype and np.array_equal(_bits(back[n]), _bits(x)), n
    theirs = load_file(path)  # safetensors.torch reads descent's file
    for n, x in sd.items():
        assert _name(theirs[n].dtype) == n and np.array_equal(_bits(theirs[n]), _bits(x)), n
    save_file(theirs, tmp_path / "b.safetensors")  # and descent reads PyTorch's
    again = ds.io.load_state_dict(tmp_path / "b.safetensors", verify=False)
    for n, x in sd.items():
        assert again[n].dtype is x.dtype and np.array_equal(_bits(again[n]), _bits(x)), n
    with pytest.raises(TypeError, match="safetensors cannot store"):
        ds.io.save_state_dict(tmp_path / "c.safetensors",
                              {"s": ds.ones(2, dtype=ds.float8_e8m0fnu)})  # fmt: skip


def test_module_state_dict_and_save_load_keep_float8(tmp_path):
    m = ds.nn.Linear(4, 3)
    m.register_buffer("w8", ds.tensor(BITS[:12].reshape(3, 4)).view(ds.float8_e4m3fn))
    path = tmp_path / "m.safetensors"
    ds.save(m.state_dict(), path)
    m2 = ds.nn.Linear(4, 3)
    m2.register_buffer("w8", ds.zeros(3, 4, dtype=ds.float8_e4m3fn))
    m2.load_state_dict(ds.load(path))
    assert m2.w8.dtype is ds.float8_e4m3fn
    np.testing.assert_array_equal(_bits(m2.w8), BITS[:12].reshape(3, 4))


def _mat(lib, m, n, name, colmajor=False):
    x = (torch.from_numpy(rng.standard_normal((m, n)).astype(np.float32)) * 8).to(
        getattr(torch, name)
    )
    if lib is ds:
        return x
    return x.t().contiguous().t() if colmajor else x


def test_scaled_mm_matches_torch():
    for na, nb in (("float8_e4m3fn", "float8_e4m3fn"), ("float8_e5m2", "float8_e4m3fn")):
        at, bt = _mat(torch, 16, 32, na), _mat(torch, 32, 8, nb, colmajor=True)
        ad, bd = (ds.tensor(_bits(x)).view(getattr(ds, _name(x.dtype))).reshape(x.shape)
                  for x in (at, bt))  # fmt: skip
        sa, sb = torch.rand(16, 1) + 0.5, torch.rand(1, 8) + 0.5  # per row and per column
        bias = torch.randn(8)
        for kw in ({"out_dtype": torch.float32}, {"out_dtype": torch.bfloat16}, {},
                   {"out_dtype": torch.float16, "bias": bias}):  # fmt: skip
            rt = torch._scaled_mm(at, bt, sa, sb, **kw)
            kd = {k: (getattr(ds, _name(v)) if k == "out_dtype" else ds.tensor(v.numpy()))
                  for k, v in kw.items()}  # fmt: skip
            rd = ds._scaled_mm(ad, bd, ds.tensor(sa.numpy()), ds.tensor(sb.numpy()), **kd)
            assert _name(rd.dtype) == _name(rt.dtype)
            # float32 sums in another order than PyTorch's matmul (an ulp or so apart), then one
            # rounding to the output dtype by PyTorch's rule
            kd32 = {k: v for k, v in kd.items() if k != "out_dtype"}
            r32 = ds._scaled_mm(ad, bd, ds.tensor(sa.numpy()), ds.tensor(sb.numpy()),
                                out_dtype=ds.float32, **kd32).numpy()  # fmt: skip
            kt32 = {k: v for k, v in kw.items() if k != "out_dtype"}
            np.testing.assert_allclose(
                r32,
                torch._scaled_mm(at, bt, sa, sb, out_dtype=torch.float32, **kt32),
                rtol=1e-5,
                atol=1e-3,
            )
            np.testing.assert_array_equal(_bits(rd), _bits(torch.from_numpy(r32).to(rt.dtype)))
        # one scale per tensor: oneDNN applies it after its own accumulation (a rounding apart)
        rt = torch._scaled_mm(at, bt, torch.tensor(0.3), torch.tensor(1.7),
                              out_dtype=torch.float32)  # fmt: skip
        rd = ds._scaled_mm(ad, bd, ds.tensor(0.3), ds.tensor(1.7), out_dtype=ds.float32)
        np.testing.assert_allclose(rd.numpy(), rt.numpy(), rtol=1e-5, atol=1e-4)


def test_scaled_mm_refusals_as_torch():
    a, b = ds.ones(16, 32, dtype=ds.float8_e4m3fn), ds.ones(32, 16, dtype=ds.float8_e4m3fn)
    one = ds.tensor(1.0)
    with pytest.raises(RuntimeError, match="Expected mat1 to be Float8 matrix got Float"):
        ds._scaled_mm(a.float(), b, one, one)
    with pytest.raises(RuntimeError, match="mat1 must be a matrix"):
        ds._scaled_mm(a.unsqueeze(0), b, one, one)
    with pytest.raises(RuntimeError, match=r"shapes cannot be multiplied \(16x32 and 16x16\)"):
        ds._scaled_mm(a, b[:16], one, one)
    with pytest.raises(ValueError, match="Invalid scaling configuration"):
        ds._scaled_mm(a, b, ds.ones(16, 1, dtype=ds.float8_e8m0fnu), one)
