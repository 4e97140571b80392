"""Quantized tensors, observers and dynamic quantization, differential against torch 2.13
(the x86 engine, fbgemm): int_repr bits, dequantized bits, qparams, the dynamic Linear's
outputs bit for bit, printing and errors (docs/quantization.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

QDTYPES = ("quint8", "qint8", "qint32")
RANGES = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-(2**31), 2**31 - 1)}


def _pair(x: np.ndarray):
    return descent.tensor(x), torch.from_numpy(x.copy())


def _halfway(rng, shape, scale) -> np.ndarray:
    """Values on and next to rounding midpoints of x / scale (where the kernels' rounding
    order decides the integer), plus ordinary values and some far outside the range."""
    s32 = np.float32(scale)
    x = (rng.integers(-300, 300, shape) * 0.5 * s32).astype(np.float32)
    x = np.where(rng.random(shape) < 0.3, np.nextafter(x, np.float32(np.inf)), x)
    x = np.where(rng.random(shape) < 0.3, rng.standard_normal(shape) * 3, x).astype(np.float32)
    return x


def _same_bits(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.mark.parametrize("qname", QDTYPES)
def test_quantize_per_tensor_bits(qname):
    rng = np.random.default_rng(0)
    lo, hi = RANGES[qname]
    for scale in (0.1, 0.05, 1 / 3, 0.0123, 2.5):
        for zp in (0, 3, -7, 100):
            if not lo <= zp <= hi:
                continue
            x = _halfway(rng, (5, 13), scale)  # 65 values: the 8-wide loop and its remainder
            dx, tx = _pair(x)
            q = descent.quantize_per_tensor(dx, scale, zp, getattr(descent, qname))
            tq = torch.quantize_per_tensor(tx, scale, zp, getattr(torch, qname))
            _same_bits(q.int_repr().numpy(), tq.int_repr().numpy())
            _same_bits(q.dequantize().numpy(), tq.dequantize().numpy())
            assert q.q_scale() == tq.q_scale() and q.q_zero_point() == tq.q_zero_point()
            assert q.dtype is getattr(descent, qname) and q.qscheme() is descent.per_tensor_affine


@pytest.mark.parametrize("qname", QDTYPES)
def test_quantize_per_channel_bits(qname):
    rng = np.random.default_rng(1)
    for axis, shape in ((0, (3, 20)), (1, (2, 4, 9)), (2, (3, 2, 5))):
        c = shape[axis]
        scales = rng.uniform(0.01, 0.5, c)
        zps = rng.integers(-20, 20, c) + (100 if qname == "quint8" else 0)
        x = _halfway(rng, shape, 0.1)
        dx, tx = _pair(x)
        q = descent.quantize_per_channel(dx, descent.tensor(scales), descent.tensor(zps), axis,
                                         getattr(descent, qname))  # fmt: skip
        tq = torch.quantize_per_channel(tx, torch.from_numpy(scales), torch.from_numpy(zps),
                                        axis, getattr(torch, qname))  # fmt: skip
        _same_bits(q.int_repr().numpy(), tq.int_repr().numpy())
        _same_bits(q.dequantize().numpy(), tq.dequantize().numpy())
        _same_bits(q.q_per_channel_scales().numpy(), tq.q_per_channel_scales().numpy())
        _same_bits(q.q_per_channel_zero_points().numpy(), tq.q_per_channel_zero_points().numpy())
        assert q.q_per_channel_axis() == tq.q_per_channel_axis()


@pytest.mark.parametrize("qname", ("quint8", "qint8"))
def test_quantize_per_tensor_dynamic_qparams(qname):
    rng = np.random.default_rng(2)
    cases = [rng.standard_normal(40) * s + o for s in (1e-7, 1e-4, 1.0, 300.0) for o in (0, 2, -2)]
    cases += [np.full(7, 0.5), np.zeros(3), np.array([-1.0, -3.0]), np.array([1e-30, 2e-30])]
    for x in cases:
        x = x.astype(np.float32)
        for rr in (False, True):
            q = descent.quantize_per_tensor_dynamic(descent.tensor(x), getattr(descent, qname), rr)
            tq = torch.quantize_per_tensor_dynamic(torch.from_numpy(x), getattr(torch, qname), rr)
            assert (q.q_scale(), q.q_zero_point()) == (tq.q_scale(), tq.q_zero_point())
            _same_bits(q.int_repr().numpy(), tq.int_repr().numpy())


def _observer_pair(name, **kw):
    tkw = {k: getattr(torch, v.name) if hasattr(v, "name") and hasattr(torch, v.name) else v
           for k, v in kw.items()}  # fmt: skip
    return (getattr(descent.ao.quantization, name)(**kw),
            getattr(torch.ao.quantization, name)(**tkw))  # fmt: skip


OBSERVER_CASES = [
    ("MinMaxObserver", {}),
    ("MinMaxObserver", {"dtype": descent.qint8, "qscheme": descent.per_tensor_symmetric}),
    ("MinMaxObserver", {"dtype": descent.quint8, "qscheme": descent.per_tensor_symmetric}),
    ("MinMaxObserver", {"reduce_range": True}),
    ("MinMaxObserver", {"dtype": descent.qint8, "reduce_range": True}),
    ("MinMaxObserver", {"quant_min": 0, "quant_max": 15}),
    ("MinMaxObserver", {"dtype": descent.qint32}),
    ("MovingAverageMinMaxObserver", {}),
    (
        "MovingAverageMinMaxObserver",
        {
            "averaging_constant": 0.3,
            "dtype": descent.qint8,
            "qscheme": descent.per_tensor_symmetric,
        },
    ),  # fmt: skip
    ("PerChannelMinMaxObserver", {}),
    (
        "PerChannelMinMaxObserver",
        {"ch_axis": 1, "dtype": descent.qint8, "qscheme": descent.per_channel_symmetric},
    ),  # fmt: skip
    ("PerChannelMinMaxObserver", {"ch_axis": 1, "reduce_range": True}),
]


@pytest.mark.parametrize(("name", "kw"), OBSERVER_CASES)
def test_observer_qparams(name, kw):
    rng = np.random.default_rng(3)
    ours, theirs = _observer_pair(name, **kw)
    for step in range(3):
        x = (rng.standard_normal((4, 6, 3)) * (step + 1) + rng.uniform(-1, 1)).astype(np.float32)
        if step == 1:
            x = np.abs(x)  # all positive: min clipped at 0
        dx, tx = _pair(x)
        assert ours(dx) is dx
        theirs(tx)
        _same_bits(ours.min_val.numpy(), theirs.min_val.numpy())
        _same_bits(ours.max_val.numpy(), theirs.max_val.numpy())
        scale, zp = ours.calculate_qparams()
        tscale, tzp = theirs.calculate_qparams()
        _same_bits(scale.numpy(), tscale.numpy())
        _same_bits(zp.numpy(), tzp.numpy())
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert repr(ours).replace("descent.", "torch.") == repr(theirs)


def test_observer_before_data_and_errors():
    ours, theirs = _observer_pair("MinMaxObserver")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scale, zp = ours.calculate_qparams()
    assert any("must run observer" in str(w.message) for w in caught)
    tscale, tzp = theirs.calculate_qparams()
    _same_bits(scale.numpy(), tscale.numpy())
    _same_bits(zp.numpy(), tzp.numpy())
    with pytest.raises(NotImplementedError, match="per_tensor_symmetric"):
        descent.ao.quantization.MinMaxObserver(qscheme=descent.per_channel_affine)
    with pytest.raises(NotImplementedError, match="symmetric quantization for quint8"):
        descent.ao.quantization.MinMaxObserver(qscheme=descent.per_tensor_symmetric,
                                               reduce_range=True)  # fmt: skip


def _models(rng):
    """(descent model, torch model) pairs with the same weights."""
    for sizes, bias in (([7, 5], True), ([33, 17, 9], True), ([64, 40], False), ([3, 1], True)):
        layers, tlayers = [], []
        for i, (k, m) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            t = torch.nn.Linear(k, m, bias=bias)
            with torch.no_grad():
                t.weight.mul_(float(rng.uniform(0.2, 3)))
            d = descent.nn.Linear(k, m, bias=bias)
            d.load_state_dict({n: descent.tensor(p.detach().numpy()) for n, p in
                               t.state_dict().items()})  # fmt: skip
            layers.append(d)
            tlayers.append(t)
            if i < len(sizes) - 2:
                layers.append(descent.nn.ReLU())
                tlayers.append(torch.nn.ReLU())
        yield descent.nn.Sequential(*layers), torch.nn.Sequential(*tlayers), sizes[0]


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_dynamic_linear_bitwise(per_channel):
    """quantize_dynamic's Linear gives torch's fbgemm outputs bit for bit."""
    rng = np.random.default_rng(4)
    aq, tq = descent.ao.quantization, torch.ao.quantization
    for model, tmodel, k in _models(rng):
        if per_channel:
            spec = {descent.nn.Linear: aq.per_channel_dynamic_qconfig}
            tspec = {torch.nn.Linear: tq.per_channel_dynamic_qconfig}
        else:
            spec, tspec = {descent.nn.Linear}, {torch.nn.Linear}
        qm = aq.quantize_dynamic(model, spec, dtype=descent.qint8)
        tqm = tq.quantize_dynamic(tmodel, tspec, dtype=torch.qint8)
        assert isinstance(model[0], descent.nn.Linear)  # inplace=False: a copy was quantized
        for shape in ((6, k), (2, 3, k), (1, k)):
            x = rng.standard_normal(shape) * rng.choice([0.01, 1, 50]) + rng.choice([0, 1])
            x = x.astype(np.float32)
            if rng.random() < 0.5:  # inputs on the quantization grid's midpoints
                x = np.round(x * 8) / 8
            dx, tx = _pair(x)
            _same_bits(qm(dx).numpy(), tqm(tx).numpy())
        w, tw = qm[0].weight(), tqm[0].weight()
        _same_bits(w.int_repr().numpy(), tw.int_repr().numpy())
        assert w.qscheme().name == tw.qscheme().__repr__().split(".")[-1]
        assert repr(qm).replace("descent.", "torch.") == repr(tqm)
        assert list(qm.state_dict()) == list(tqm.state_dict())


def test_quantize_dynamic_spec_by_name_and_default():
    rng = np.random.default_rng(5)
    model, tmodel, k = next(_models(rng))
    aq = descent.ao.quantization
    qm = aq.quantize_dynamic(model, {"0": aq.default_dynamic_qconfig})
    tqm = torch.ao.quantization.quantize_dynamic(
        tmodel, {"0": torch.ao.quantization.default_dynamic_qconfig}
    )
    assert repr(qm).replace("descent.", "torch.") == repr(tqm)
    x = rng.standard_normal((4, k)).astype(np.float32)
    _same_bits(qm(descent.tensor(x)).numpy(), tqm(torch.from_numpy(x)).numpy())
    # the default spec; a bare Linear as the model stays float (torch converts children only)
    bare = descent.nn.Linear(3, 2)
    assert type(aq.quantize_dynamic(bare)) is descent.nn.Linear
    assert type(aq.quantize_dynamic(descent.nn.Sequential(bare))[0]).__name__ == (
        "DynamicQuantizedLinear"
    )
    import descent.ao.nn.quantized.dynamic as nnqd  # torch's import path

    assert isinstance(aq.quantize_dynamic(descent.nn.Sequential(bare))[0], nnqd.Linear)
    with pytest.raises(NotImplementedError, match="qconfig_spec"):
        aq.quantize_dynamic(descent.nn.Sequential(descent.nn.LSTM(3, 2)))
    with pytest.raises(NotImplementedError, match="qint8 or float16"):
        aq.quantize_dynamic(descent.nn.Sequential(bare), dtype=descent.quint8)


def test_repr_matches_torch():
    x = np.array([[-1.0, 0.25, 2.0], [0.5, 3.0, -0.125]], np.float32)
    dx, tx = _pair(x)
    cases = [
        (descent.quantize_per_tensor(dx, 0.1, 3, descent.quint8),
         torch.quantize_per_tensor(tx, 0.1, 3, torch.quint8)),
        (descent.quantize_per_tensor_dynamic(dx, descent.qint8, False),
         torch.quantize_per_tensor_dynamic(tx, torch.qint8, False)),
        (descent.quantize_per_channel(dx, descent.tensor([0.1, 0.2]), descent.tensor([1, 2]), 0,
                                      descent.qint8),
         torch.quantize_per_channel(tx, torch.tensor([0.1, 0.2], dtype=torch.float64),
                                    torch.tensor([1, 2]), 0, torch.qint8)),
    ]  # fmt: skip
    for q, tq in cases:
        assert repr(q).replace("descent.", "torch.") == repr(tq)
    assert repr(descent.quint8) == "descent.quint8"
    assert isinstance(descent.qint8, descent.dtype) and descent.qint8 != descent.int8
    assert (descent.quint8.itemsize, descent.qint32.itemsize) == (1, 4)


def test_shape_methods_and_copies():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    dx, tx = _pair(x)
    q = descent.quantize_per_tensor(dx, 0.05, 10, descent.quint8)
    tq = torch.quantize_per_tensor(tx, 0.05, 10, torch.quint8)
    for f in (lambda a: a.view(6, 4), lambda a: a.reshape(-1), lambda a: a.transpose(0, 2),
              lambda a: a.permute(2, 0, 1), lambda a: a[1], lambda a: a[:, 1:], lambda a: a.clone(),
              lambda a: a.detach(), lambda a: a.flatten(1)):  # fmt: skip
        r, tr = f(q), f(tq)
        _same_bits(r.int_repr().numpy(), tr.int_repr().contiguous().numpy())
        assert (r.q_scale(), r.q_zero_point(), r.is_quantized) == (
            tr.q_scale(),
            tr.q_zero_point(),
            True,
        )
    assert q.size() == descent.Size([2, 3, 4]) and q.numel() == 24 and q.element_size() == 1
    assert not q.requires_grad and dx.dequantize() is dx
    qs = descent.quantize_per_tensor([dx, dx], descent.tensor([0.1, 0.2]), descent.tensor([1, 2]),
                                     descent.quint8)  # fmt: skip
    tqs = torch.quantize_per_tensor([tx, tx], torch.tensor([0.1, 0.2]), torch.tensor([1, 2]),
                                    torch.quint8)  # fmt: skip
    assert [(a.q_scale(), a.q_zero_point()) for a in qs] == [
        (b.q_scale(), b.q_zero_point()) for b in tqs
    ]
    d1, d2 = descent.dequantize([q, q])
    _same_bits(d1.numpy(), tq.dequantize().numpy())


def test_errors_name_the_op_and_the_fix():
    dx = descent.randn(2, 3)
    q = descent.quantize_per_tensor(dx, 0.1, 3, descent.quint8)
    qc = descent.quantize_per_channel(dx, descent.tensor([0.1, 0.2]), descent.tensor([0, 0]), 0,
                                      descent.qint8)  # fmt: skip
    for f, op in ((lambda: q + q, "Add"), (lambda: q.sum(), "sum"), (lambda: q.exp(), "exp"),
                  (lambda: descent.relu(q), "relu"), (lambda: q @ q.t(), "matmul"),
                  (lambda: q.float(), "(cast|float)"), (lambda: q.tolist(), "tolist")):  # fmt: skip
        # the op's name: its Function, or the Tensor method that reached the storage first
        # (which depends on the dispatch other tests installed: bfloat16's reads dtype.num)
        with pytest.raises(NotImplementedError, match=f"(?si){op}.*dequantize"):
            f()
    with pytest.raises(TypeError, match="int_repr"):
        q.numpy()
    with pytest.raises(RuntimeError, match="floating point"):
        q.requires_grad_()
    with pytest.raises(RuntimeError, match="above upper bound"):
        descent.quantize_per_tensor(dx, 0.1, 300, descent.quint8)
    with pytest.raises(RuntimeError, match="Float Tensor"):
        descent.quantize_per_tensor(dx.double(), 0.1, 3, descent.quint8)
    with pytest.raises(RuntimeError, match="not a quantized dtype"):
        descent.quantize_per_tensor(dx, 0.1, 3, descent.float32)
    with pytest.raises(RuntimeError, match="length of scales"):
        descent.quantize_per_channel(dx, descent.tensor([0.1, 0.2]), descent.tensor([0, 0]), 1,
                                     descent.qint8)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"per_channel_affine \(axis 0\); use q_per_channel_sc"):
        qc.q_scale()
    with pytest.raises(RuntimeError, match="q_scale"):
        q.q_per_channel_axis()
    with pytest.raises(NotImplementedError, match="per-channel"):
        qc.view(6)
    with pytest.raises(TypeError, match="quint8"):
        descent.zeros(2, dtype=descent.quint8)
    with pytest.raises(RuntimeError, match="empty"):
        descent.quantize_per_tensor_dynamic(descent.zeros(0), descent.quint8, False)
    # empty tensors otherwise work, as in torch: a quantized (0, 3), a Linear over no rows
    empty = descent.quantize_per_tensor(descent.zeros(0, 3), 0.1, 2, descent.quint8)
    tempty = torch.quantize_per_tensor(torch.zeros(0, 3), 0.1, 2, torch.quint8)
    assert repr(empty).replace("descent.", "torch.") == repr(tempty)
    qm = descent.ao.quantization.quantize_dynamic(descent.nn.Sequential(descent.nn.Linear(3, 2)))
    assert qm(descent.zeros(0, 3)).shape == (0, 2)


def _round_f32(v) -> np.float32:
    """The float32 nearest the Fraction v (ties to even): the reference for one rounding."""
    from fractions import Fraction

    f = np.float32(float(v))
    cands = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    dist = [abs(Fraction(float(c)) - v) for c in cands]
    best = min(dist)
    ties = [c for c, d in zip(cands, dist, strict=True) if d == best]
    return min(ties, key=lambda c: int(np.array(c).view(np.uint32)) & 1)


def test_fma_f32_rounds_once():
    """kernels.fma_f32 is a fused multiply-add: where a * b + c rounded to float64 lands on a
    float32 midpoint (so rounding twice would pick the even neighbour) it rounds once."""
    from fractions import Fraction

    from descent.quantization.kernels import fma_f32

    a, b, c = [], [], []
    for x in (np.float32(3.0000002), np.float32(-5.0000005), np.float32(1.1754944e-38 * 3)):
        half_ulp = (np.nextafter(x, np.float32(np.inf)) - x) / np.float32(2)
        a.append(np.float32(1 + 2**-23))  # (1 + 2**-23)(1 - 2**-23) = 1 - 2**-46
        b.append(np.float32(abs(half_ulp) * np.float32(1 - 2**-23)))
        c.append(x)
    rng = np.random.default_rng(7)
    a += list(rng.standard_normal(200).astype(np.float32))
    b += list(rng.standard_normal(200).astype(np.float32))
    c += list((rng.integers(-200, 200, 200)).astype(np.float32))
    a, b, c = (np.array(v, np.float32) for v in (a, b, c))
    got = fma_f32(a, b, c)
    want = [_round_f32(Fraction(float(p)) * Fraction(float(q)) + Fraction(float(r)))
            for p, q, r in zip(a, b, c, strict=True)]  # fmt: skip
    _same_bits(got, np.array(want, np.float32))
    naive = (a.astype(np.float64) * b + c).astype(np.float32)
    assert (naive != got).sum() >= 2  # the constructed midpoints: rounding twice differs


def test_dynamic_linear_wide_inputs_stay_exact():
    """The integer matmul runs in float32 while every partial sum stays below 2**24 (K = 1000:
    127 * 127 * 1000) and in float64 past it (K = 1100): both give torch's bits."""
    rng = np.random.default_rng(8)
    for k, wide in ((1000, False), (1100, True)):
        t = torch.nn.Linear(k, 3)
        d = descent.nn.Linear(k, 3)
        d.load_state_dict(
            {n: descent.tensor(p.detach().numpy()) for n, p in t.state_dict().items()}
        )
        qm = descent.ao.quantization.quantize_dynamic(descent.nn.Sequential(d), {descent.nn.Linear})
        tqm = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(t), {torch.nn.Linear})
        x = np.abs(rng.standard_normal((5, k))).astype(np.float32)  # zero point 0: |qx| to 127
        _same_bits(qm(descent.tensor(x)).numpy(), tqm(torch.from_numpy(x)).numpy())
        assert (qm[0]._packed_params._packed_weight._wt64 is not None) == wide


def test_copies_pickles_and_engine():
    """deepcopy and pickle keep quantized tensors and models (the dtypes and schemes are one
    object each); torch.backends.quantized.engine accepts fbgemm's names and refuses others."""
    import copy
    import pickle

    model = descent.nn.Sequential(descent.nn.Linear(5, 4))
    qm = descent.ao.quantization.quantize_dynamic(model, {descent.nn.Linear})
    x = descent.randn(3, 5)
    _same_bits(copy.deepcopy(qm)(x).numpy(), qm(x).numpy())
    w = qm[0].weight()
    for w2 in (copy.deepcopy(w), pickle.loads(pickle.dumps(w))):
        assert w2.dtype is descent.qint8 and w2.qscheme() is descent.per_tensor_affine
        assert w2.q_scale() == w.q_scale()
        _same_bits(w2.int_repr().numpy(), w.int_repr().numpy())
    quantized = descent.backends.quantized
    assert quantized.engine == "x86"
    try:
        quantized.engine = "fbgemm"
        assert quantized.engine == "fbgemm"
        with pytest.raises(RuntimeError, match="qnnpack"):
            quantized.engine = "qnnpack"
    finally:
        quantized.engine = "x86"


def test_save_load_quantized_state_dict(tmp_path):
    """descent.save / load keep quantized tensors (the integers and parameters) and dtypes:
    the tutorials' print_size_of_model saves a quantized model's state_dict."""
    from descent.serialization import _decode_quantized

    model = descent.nn.Sequential(descent.nn.Linear(64, 32))
    qm = descent.ao.quantization.quantize_dynamic(model, {descent.nn.Linear})
    qc = descent.quantize_per_channel(descent.randn(3, 4), descent.tensor([0.1, 0.2, 0.3]),
                                      descent.tensor([0, 1, 2]), 0, descent.quint8)  # fmt: skip
    descent.save({"sd": qm.state_dict(), "qc": qc, "scheme": descent.per_channel_affine},
                 tmp_path / "q.pt")  # fmt: skip
    descent.save(model.state_dict(), tmp_path / "f.pt")
    assert (tmp_path / "q.pt").stat().st_size < (tmp_path / "f.pt").stat().st_size / 2
    back = descent.load(tmp_path / "q.pt")
    assert list(back["sd"]) == list(qm.state_dict())
    assert back["sd"]["0._packed_params.dtype"] is descent.qint8
    assert back["scheme"] is descent.per_channel_affine
    w, b = back["sd"]["0._packed_params._packed_params"]
    for got, want in ((w, qm[0].weight()), (back["qc"], qc)):
        assert got.dtype is want.dtype and got.qscheme() is want.qscheme()
        _same_bits(got.int_repr().numpy(), want.int_repr().numpy())
        _same_bits(got.dequantize().numpy(), want.dequantize().numpy())
    _same_bits(b.detach().numpy(), qm[0].bias().detach().numpy())
    with pytest.raises(ValueError, match="no quantized dtype or scheme"):
        _decode_quantized({"__quantized__": "np"}, {})
    with pytest.raises(ValueError, match="holds int64"):
        node = {"__qtensor__": "k", "dtype": "qint8", "qscheme": "per_tensor_affine"}
        _decode_quantized({**node, "scale": 0.1, "zero_point": 0}, {"k": np.zeros(2, np.int64)})


def test_load_state_dict_into_a_quantized_model(tmp_path):
    """A saved quantized state_dict loads into another quantized model (PyTorch's keys:
    scale, zero_point, _packed_params.dtype / _packed_params), which then computes the same."""

    def make():
        layers = (descent.nn.Linear(6, 5), descent.nn.ReLU(), descent.nn.Linear(5, 2))
        return descent.ao.quantization.quantize_dynamic(descent.nn.Sequential(*layers))

    qm, other = make(), make()
    x = descent.randn(4, 6)
    descent.save(qm.state_dict(), tmp_path / "q.pt")
    assert str(other.load_state_dict(descent.load(tmp_path / "q.pt"))) == (
        "<All keys matched successfully>"
    )
    _same_bits(other(x).numpy(), qm(x).numpy())
    sd = qm.state_dict()
    del sd["2._packed_params._packed_params"]
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*2\._packed_params\._packed_params"):
        other.load_state_dict(sd)


@pytest.mark.parametrize("qname", QDTYPES)
def test_quantize_special_values(qname):
    """NaN, infinities and values past the int32 range quantize as torch's kernels do (NaN:
    fbgemm's per-tensor u8/s8 kernel gives the maximum, the others 0 or the int32 minimum)."""
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 1.0, -0.0, 1e-45], np.float32)
    dx, tx = _pair(x)
    q = descent.quantize_per_tensor(dx, 0.1, 3, getattr(descent, qname))
    tq = torch.quantize_per_tensor(tx, 0.1, 3, getattr(torch, qname))
    _same_bits(q.int_repr().numpy(), tq.int_repr().numpy())
    scales, zps = np.full(8, 0.1), np.full(8, 3)
    qc = descent.quantize_per_channel(dx, descent.tensor(scales), descent.tensor(zps), 0,
                                      getattr(descent, qname))  # fmt: skip
    tqc = torch.quantize_per_channel(tx, torch.from_numpy(scales), torch.from_numpy(zps), 0,
                                     getattr(torch, qname))  # fmt: skip
    _same_bits(qc.int_repr().numpy(), tqc.int_repr().numpy())


def test_quantize_dynamic_float16():
    """dtype=float16: fp16 weights (weight() their float32 values, saturated at fp16's max),
    products in float32, the bias added as a tensor op (its gradient flows, as torch's). fbgemm's
    fp16 GEMM sums in its own blocked order: outputs agree to a few float32 ulps, not bitwise."""
    rng = np.random.default_rng(9)
    t = torch.nn.Linear(300, 20)
    with torch.no_grad():
        t.weight[0, 0] = 1e6  # past fp16's range
    d = descent.nn.Linear(300, 20)
    d.load_state_dict({n: descent.tensor(p.detach().numpy()) for n, p in t.state_dict().items()})
    qm = descent.ao.quantization.quantize_dynamic(
        descent.nn.Sequential(d), {descent.nn.Linear}, dtype=descent.float16
    )
    tqm = torch.ao.quantization.quantize_dynamic(
        torch.nn.Sequential(t), {torch.nn.Linear}, dtype=torch.float16
    )
    assert repr(qm).replace("descent.", "torch.") == repr(tqm)
    assert list(qm.state_dict()) == list(tqm.state_dict())
    _same_bits(qm[0].weight().numpy(), tqm[0].weight().numpy())
    x = rng.standard_normal((6, 300)).astype(np.float32)
    y, ty = qm(descent.tensor(x)), tqm(torch.from_numpy(x))
    assert y.requires_grad == ty.requires_grad
    # any two summation orders of K float32 products differ by at most 2 (K - 1) eps sum|x w|
    # (plus the bias's rounding): the a-priori bound, whatever fbgemm's blocking on this CPU
    w16 = qm[0].weight().numpy().astype(np.float64)
    bound = (
        2 * 300 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(w16).T + np.abs(d.bias.numpy()))
    )
    diff = np.abs(y.detach().numpy().astype(np.float64) - ty.detach().numpy())
    assert (diff <= bound).all()
