"""The nn modules issue 12 adds, against torch.nn (the oracle): the loss modules, GroupNorm,
InstanceNorm1d/2d, Dropout1d/2d, ParameterList/ParameterDict, TransformerEncoderLayer and
TransformerEncoder. Same weights (PyTorch's state_dict loaded unchanged) -> same outputs and
gradients (float32: rtol 1e-5; float64: rtol 1e-10).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _close(a, b, dtype=np.float32, what=""):
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(np.asarray(a.numpy()), b, **TOL[dtype], err_msg=what)


def _leaf(arr):
    return descent.tensor(arr, dtype=arr.dtype, requires_grad=True)


def _load(ours, theirs):
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd)
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})


# -- loss modules ---------------------------------------------------------------------------------
rng0 = np.random.default_rng(0)
LOGITS = rng0.standard_normal((6, 5)).astype(np.float32)
LOGITS_4D = rng0.standard_normal((2, 5, 3, 2)).astype(np.float32)
CLASSES = np.array([0, 4, 2, -100, 1, 3])
CLASSES_4D = rng0.integers(0, 5, size=(2, 3, 2))
PROBS = rng0.dirichlet(np.ones(5), size=6).astype(np.float32)
X = rng0.standard_normal((4, 3)).astype(np.float32)
Y = rng0.standard_normal((4, 3)).astype(np.float32)
P01 = rng0.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
T01 = (rng0.random((4, 3)) < 0.5).astype(np.float32)
W5 = rng0.uniform(0.5, 2.0, 5).astype(np.float32)
W3 = rng0.uniform(0.5, 2.0, 3).astype(np.float32)

LOSSES = [
    ("CrossEntropyLoss", dict(), LOGITS, CLASSES),
    ("CrossEntropyLoss", dict(weight=W5, label_smoothing=0.1), LOGITS, CLASSES),
    ("CrossEntropyLoss", dict(reduction="sum", ignore_index=2), LOGITS, CLASSES % 5),
    ("CrossEntropyLoss", dict(reduction="none"), LOGITS_4D, CLASSES_4D),
    ("CrossEntropyLoss", dict(label_smoothing=0.2), LOGITS, PROBS),  # probability targets
    ("CrossEntropyLoss", dict(size_average=False), LOGITS, CLASSES),  # legacy -> "sum"
    ("NLLLoss", dict(), LOGITS, CLASSES),
    ("NLLLoss", dict(weight=W5, reduction="sum"), LOGITS, CLASSES),
    ("NLLLoss", dict(reduce=False), LOGITS, CLASSES),  # legacy -> "none"
    ("MSELoss", dict(), X, Y),
    ("MSELoss", dict(reduction="sum"), X, Y),
    ("L1Loss", dict(reduction="none"), X, Y),
    ("L1Loss", dict(), X, Y),
    ("SmoothL1Loss", dict(beta=0.5), X, Y),
    ("SmoothL1Loss", dict(beta=0.0, reduction="sum"), X, Y),
    ("HuberLoss", dict(delta=0.7), X, Y),
    ("HuberLoss", dict(reduction="none"), X, Y),
    ("BCELoss", dict(), P01, T01),
    ("BCELoss", dict(weight=W3, reduction="sum"), P01, T01),
    ("BCEWithLogitsLoss", dict(), X, T01),
    ("BCEWithLogitsLoss", dict(pos_weight=W3, weight=W3), X, T01),
    ("KLDivLoss", dict(reduction="batchmean"), np.log(PROBS), PROBS[::-1].copy()),
    ("KLDivLoss", dict(log_target=True, reduction="sum"), np.log(PROBS), np.log(PROBS[::-1])),
    ("KLDivLoss", dict(), np.log(PROBS), PROBS[::-1].copy()),
]


def _loss_kwargs(kwargs, lib):
    conv = descent.tensor if lib == "ours" else torch.tensor
    return {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


@pytest.mark.parametrize(
    ("name", "kwargs", "inp", "target"),
    LOSSES,
    ids=[f"{n}-{i}" for i, (n, *_) in enumerate(LOSSES)],
)
def test_loss_modules_match_torch(name, kwargs, inp, target):
    ours = getattr(nn, name)(**_loss_kwargs(kwargs, "ours"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's deprecation warning for size_average/reduce
        theirs = getattr(torch.nn, name)(**_loss_kwargs(kwargs, "torch"))
    assert ours.reduction == theirs.reduction
    assert list(ours.state_dict()) == list(theirs.state_dict())  # weight/pos_weight buffers
    x, tx = _leaf(inp), torch.tensor(inp, requires_grad=True)
    if target.dtype.kind == "f":
        t, tt = descent.tensor(target, dtype=target.dtype), torch.tensor(target)
    else:
        t, tt = descent.tensor(target), torch.tensor(target)
    loss, tloss = ours(x, t), theirs(tx, tt)
    _close(loss, tloss, what="loss")
    rng = np.random.default_rng(1)
    w = rng.standard_normal(tuple(tloss.shape)).astype(np.float32)
    (loss * descent.tensor(w)).sum().backward()
    (tloss * torch.tensor(w)).sum().backward()
    _close(x.grad, tx.grad, what="input grad")


def test_loss_module_errors_and_buffers():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="batchmean")
    nn.KLDivLoss(reduction="batchmean")  # only KLDivLoss knows batchmean
    with pytest.raises(RuntimeError, match="label_smoothing"):  # at the call, as PyTorch
        nn.CrossEntropyLoss(label_smoothing=1.5)(descent.zeros(2, 3), descent.tensor([0, 1]))
    with pytest.raises(ValueError, match="delta"):
        nn.HuberLoss(delta=0.0)
    ce = nn.CrossEntropyLoss(weight=descent.tensor(W5))
    assert "weight" in dict(ce.named_buffers()) and not list(ce.parameters())
    # PyTorch's losses print no settings (descent printed reduction='sum')
    assert repr(nn.MSELoss()) == "MSELoss()" and repr(nn.L1Loss(reduction="sum")) == repr(
        torch.nn.L1Loss(reduction="sum")
    )


# -- GroupNorm and InstanceNorm ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("groups", "channels", "shape", "kwargs"),
    [(2, 6, (3, 6, 4, 5), {}), (3, 3, (2, 3, 7), dict(eps=1e-3)), (1, 4, (2, 4), {}),
     (2, 4, (2, 4, 3), dict(affine=False)), (2, 4, (2, 4, 3), dict(bias=False))],
)  # fmt: skip
def test_group_norm_matches_torch(groups, channels, shape, kwargs, dtype):
    ours = nn.GroupNorm(groups, channels, **kwargs, dtype=dtype)
    theirs = torch.nn.GroupNorm(groups, channels, **kwargs).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(0.5, 1.5)
    _load(ours, theirs)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    xs, xt = _leaf(x), torch.tensor(x, requires_grad=True)
    y, ty = ours(xs), theirs(xt)
    _close(y, ty, dtype)
    w = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    (y * descent.tensor(w, dtype=dtype)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    _close(xs.grad, xt.grad, dtype)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, tp[name].grad, dtype, name)
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(4, 6)


@pytest.mark.parametrize(
    ("kind", "shape", "kwargs"),
    [
        ("InstanceNorm1d", (3, 4, 7), {}),
        ("InstanceNorm1d", (4, 7), dict(affine=True)),  # unbatched
        ("InstanceNorm2d", (2, 3, 4, 5), dict(affine=True, eps=1e-3)),
        ("InstanceNorm2d", (3, 4, 5), {}),  # unbatched
        ("InstanceNorm1d", (3, 4, 7), dict(track_running_stats=True, momentum=0.3)),
        ("InstanceNorm2d", (2, 3, 4, 5), dict(track_running_stats=True, affine=True)),
        ("InstanceNorm2d", (2, 3, 4, 5), dict(track_running_stats=True, momentum=None)),
    ],
)
def test_instance_norm_matches_torch(kind, shape, kwargs):
    c = shape[1] if len(shape) == (3 if kind == "InstanceNorm1d" else 4) else shape[0]
    ours, theirs = getattr(nn, kind)(c, **kwargs), getattr(torch.nn, kind)(c, **kwargs)
    if theirs.affine:
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(0.5, 1.5)
    _load(ours, theirs)
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(4)
    for step in range(3):  # training steps update the running statistics alike
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(np.float32)
        xs, xt = _leaf(x), torch.tensor(x, requires_grad=True)
        y, ty = ours(xs), theirs(xt)
        _close(y, ty, what="train output")
        # A random weighting: sum(y^2) would have a zero input gradient (rounding noise only).
        w = rng.standard_normal(shape).astype(np.float32)
        (y * descent.tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        _close(xs.grad, xt.grad, what="input grad")
        for name, p in ours.named_parameters():
            _close(p.grad, dict(theirs.named_parameters())[name].grad, what=name)
    for name, b in ours.named_buffers():
        _close(b, dict(theirs.named_buffers())[name], what=name)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    _close(ours(descent.tensor(x)), theirs(torch.tensor(x)), what="eval output")


def test_instance_norm_errors():
    with pytest.raises(ValueError, match="2D"):
        nn.InstanceNorm1d(3)(descent.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="num_features"):
        nn.InstanceNorm2d(3, affine=True)(descent.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="spatial"):
        nn.InstanceNorm1d(3)(descent.randn(2, 3, 1))


# -- Dropout1d / Dropout2d ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "shape", "lead"),
    [("Dropout1d", (8, 16, 5), 2), ("Dropout1d", (16, 5), 1), ("Dropout2d", (8, 16, 3, 4), 2)],
)
def test_channel_dropout_drops_whole_channels(kind, shape, lead):
    descent.manual_seed(0)
    m = getattr(nn, kind)(p=0.4)
    x = descent.tensor(np.random.default_rng(5).uniform(1, 2, shape).astype(np.float32),
                       requires_grad=True)  # fmt: skip
    y = m(x)
    ratio = (y.numpy() / x.numpy()).reshape(int(np.prod(shape[:lead])), -1)
    for row in ratio:  # each (sample, channel): all dropped or all kept and scaled by 1/(1-p)
        assert np.allclose(row, 0.0) or np.allclose(row, 1 / 0.6)
    dropped = np.mean([np.allclose(row, 0.0) for row in ratio])
    assert 0.2 < dropped < 0.6
    y.sum().backward()  # the gradient is the mask
    np.testing.assert_allclose(x.grad.numpy(), y.numpy() / x.numpy(), rtol=1e-6)
    m.eval()
    assert m(x) is x or np.array_equal(m(x).numpy(), x.numpy())
    m.train()
    m.p = 1.0
    assert np.all(m(x).numpy() == 0)
    assert repr(m) == repr(getattr(torch.nn, kind)(p=1.0))


def test_channel_dropout_shapes_and_errors():
    with pytest.raises(ValueError, match="2D or 3D"):
        nn.Dropout1d()(descent.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout2d(p=1.5)
    descent.manual_seed(1)
    with pytest.warns(UserWarning, match="3D"):  # PyTorch: a 3D input is (N, C, L)
        y = nn.Dropout2d(0.5)(descent.ones(4, 8, 6))
    rows = y.numpy().reshape(32, 6)
    assert all(np.allclose(r, 0) or np.allclose(r, 2) for r in rows)


# -- ParameterList / ParameterDict -------------------------------------------------------------
def test_parameter_list_matches_torch_layout():
    shapes = [(2, 3), (4,), (1, 1)]
    ours = nn.ParameterList([descent.zeros(*s) for s in shapes[:2]])
    ours.append(nn.Parameter(descent.ones(*shapes[2])))
    theirs = torch.nn.ParameterList([torch.zeros(*s) for s in shapes[:2]])
    theirs.append(torch.nn.Parameter(torch.ones(*shapes[2])))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["0", "1", "2"]
    assert all(isinstance(p, nn.Parameter) for p in ours)
    assert [p.shape for p in ours.parameters()] == shapes
    assert len(ours) == 3 and ours[-1].shape == (1, 1) and len(ours[1:]) == 2
    ours[0] = descent.ones(5)
    assert ours[0].shape == (5,) and isinstance(ours[0], nn.Parameter)
    ours += [descent.zeros(2)]
    assert len(ours) == 4 and list(ours.state_dict())[-1] == "3"
    with pytest.raises(IndexError):
        ours[4]
    with pytest.raises(TypeError):
        ours.extend(descent.zeros(3))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = nn.ParameterList([nn.Parameter(descent.ones(3)) for _ in range(2)])

        def forward(self, x):
            for w in self.ws:
                x = x * w
            return x.sum()

    m = Model()
    opt = descent.optim.SGD(m.parameters(), lr=0.1)
    m(descent.ones(3)).backward()
    opt.step()
    assert np.allclose(m.ws[0].numpy(), 0.9) and list(m.state_dict()) == ["ws.0", "ws.1"]


def test_parameter_dict_matches_torch_layout():
    values = {"b": np.zeros(2, np.float32), "a": np.ones(3, np.float32)}
    ours = nn.ParameterDict({k: descent.tensor(v) for k, v in values.items()})
    theirs = torch.nn.ParameterDict({k: torch.tensor(v) for k, v in values.items()})
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["a", "b"]  # sorted
    ordered = nn.ParameterDict(OrderedDict([("z", descent.zeros(1)), ("y", descent.zeros(1))]))
    assert list(ordered) == ["z", "y"]
    pairs = nn.ParameterDict([("q", descent.zeros(1)), ("p", descent.zeros(2))])
    assert list(pairs.keys()) == ["q", "p"]
    ours["c"] = descent.zeros(4)
    assert isinstance(ours["c"], nn.Parameter) and "c" in ours and len(ours) == 3
    assert [k for k, _ in ours.items()] == ["a", "b", "c"]
    assert ours.pop("b").shape == (2,) and "b" not in ours and len(list(ours.parameters())) == 2
    assert ours.get("missing") is None and ours.setdefault("d", descent.ones(1)).shape == (1,)
    del ours["a"]
    assert list(ours.state_dict()) == ["c", "d"]
    with pytest.raises(KeyError):
        ours["a"]
    with pytest.raises(KeyError):
        ours["x.y"] = descent.zeros(1)
    ours.clear()
    assert len(ours) == 0 and not list(ours.parameters())


# -- TransformerEncoderLayer / TransformerEncoder ----------------------------------------------
E, H, FF, S, B = 8, 2, 16, 5, 3

ENCODER_CASES = [
    dict(),
    dict(norm_first=True),
    dict(activation="gelu", batch_first=True),
    dict(activation=torch.nn.functional.gelu, norm_first=True, batch_first=True),
    dict(bias=False, layer_norm_eps=1e-3),
]


def _ours_kwargs(kwargs):
    out = dict(kwargs)
    if callable(out.get("activation")):
        out["activation"] = nn.functional.gelu
    return out


def _src(kwargs, dtype=np.float32, seed=6):
    shape = (B, S, E) if kwargs.get("batch_first") else (S, B, E)
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _close_chain(a, b, what=""):
    """float32 against PyTorch for the encoder layer, where gradients are sums with
    cancellation: an element's rounding error is bounded relative to the magnitudes summed,
    not to the element. Each value here comes from at most 12 chained products (6 forward:
    in_proj, scores, attention output, out_proj, linear1, linear2; as many backward; layer
    norm's reductions are shorter) of inner length at most 16 (FF; B*S = 15 rows for weight
    gradients), each within gamma_16 ~ 16u of exact in either library, so the two differ by at
    most 2 * 12 * 16 u = 384 u of the largest magnitude involved, taken as max|b|. (rtol 1e-5 alone
    put weight-gradient elements at 0.87 of the tolerance with OPENBLAS_CORETYPE=Prescott and
    0.81 with SkylakeX; measured normwise the differences stay within 8 u max|b|.)"""
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    bound = 384 * 2.0**-24 * float(np.abs(b).max())
    np.testing.assert_allclose(np.asarray(a.numpy()), b, rtol=TOL[np.float32]["rtol"],
                               atol=max(TOL[np.float32]["atol"], bound), err_msg=what)  # fmt: skip


@pytest.mark.parametrize("kwargs", ENCODER_CASES, ids=[str(i) for i in range(5)])
def test_encoder_layer_matches_torch_in_eval(kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(E, H, FF, **kwargs).eval()
    ours = nn.TransformerEncoderLayer(E, H, FF, **_ours_kwargs(kwargs)).eval()
    _load(ours, theirs)
    x = _src(kwargs)
    xs, xt = _leaf(x), torch.tensor(x, requires_grad=True)
    y, ty = ours(xs), theirs(xt)
    _close_chain(y, ty, what="output")
    # A random weighting (after a final LayerNorm, sum(y^2) has a zero gradient).
    w = np.random.default_rng(8).standard_normal(x.shape).astype(np.float32)
    (y * descent.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    _close_chain(xs.grad, xt.grad, what="input grad")
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close_chain(p.grad, tp[name].grad, what=name)


def test_encoder_layer_masks_match_torch():
    """A causal float mask, a boolean src_mask and is_causal; a key padding mask in training
    mode with dropout 0 (PyTorch's eval fast path zeroes padded positions instead)."""
    torch.manual_seed(1)
    theirs = torch.nn.TransformerEncoderLayer(E, H, FF, dropout=0.0)
    ours = nn.TransformerEncoderLayer(E, H, FF, dropout=0.0)
    _load(ours, theirs)
    x = _src({})
    causal_bool = np.triu(np.ones((S, S), bool), k=1)
    causal_float = np.where(causal_bool, -np.inf, 0.0).astype(np.float32)
    for mask in (causal_bool, causal_float):
        _close(ours(descent.tensor(x), src_mask=descent.tensor(mask)),
               theirs(torch.tensor(x), src_mask=torch.tensor(mask)), what="src_mask")  # fmt: skip
    _close(ours(descent.tensor(x), src_mask=descent.tensor(causal_bool), is_causal=True),
           theirs(torch.tensor(x), src_mask=torch.tensor(causal_bool), is_causal=True))  # fmt: skip
    pad = np.zeros((B, S), bool)
    pad[0, -2:] = True
    pad[2, -1] = True
    y = ours(descent.tensor(x), src_key_padding_mask=descent.tensor(pad))
    _close(y, theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(pad)), what="padding")


@pytest.mark.parametrize("norm", [False, True])
def test_encoder_stack_matches_torch(norm):
    torch.manual_seed(2)
    t_layer = torch.nn.TransformerEncoderLayer(E, H, FF, batch_first=True)
    t_norm = torch.nn.LayerNorm(E) if norm else None
    theirs = torch.nn.TransformerEncoder(t_layer, num_layers=3, norm=t_norm).eval()
    layer = nn.TransformerEncoderLayer(E, H, FF, batch_first=True)
    ours = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(E) if norm else None).eval()
    _load(ours, theirs)
    # deep copies: independent parameters
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight
    x = _src(dict(batch_first=True))
    mask = np.triu(np.ones((S, S), bool), k=1)
    _close(ours(descent.tensor(x), mask=descent.tensor(mask)),
           theirs(torch.tensor(x), mask=torch.tensor(mask)))  # fmt: skip
    _close(ours(descent.tensor(x)), theirs(torch.tensor(x)))


def test_encoder_training_mode_uses_dropout_and_trains():
    descent.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, H, FF, dropout=0.5)
    x = descent.tensor(_src({}))
    layer.train()
    a, b = layer(x), layer(x)
    assert not np.allclose(a.numpy(), b.numpy())  # fresh dropout masks
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, FF, dropout=0.0), 2)
    opt = descent.optim.Adam(enc.parameters(), lr=1e-2)
    target = descent.tensor(_src({}, seed=7))
    losses = []
    for _ in range(20):
        loss = nn.functional.mse_loss(enc(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(E, H, activation="tanh")


# torch's loss modules that take no required argument (LinearCrossEntropyLoss needs a layer)
LOSS_NAMES = sorted(
    n
    for n in dir(torch.nn)
    if n.endswith("Loss") and n not in ("AdaptiveLogSoftmaxWithLoss", "LinearCrossEntropyLoss")
)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_reprs_and_children_match_torch(name):
    # printed models and named_modules() read the same: no reduction in the repr, and
    # TripletMarginWithDistanceLoss's default distance is a PairwiseDistance child
    for kw in ({}, {"reduction": "sum"}):
        ours, theirs = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
        assert repr(ours) == repr(theirs)
        assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]


POOLS = [
    ("AvgPool1d", (3,)), ("AvgPool1d", (3, 2, 1)), ("MaxUnpool1d", (2,)), ("MaxUnpool2d", (2,)),
    ("MaxUnpool2d", ((2, 3), 1, 1)), ("MaxUnpool3d", (2, None, 1)),
]  # fmt: skip


@pytest.mark.parametrize("name,args", POOLS, ids=[f"{n}{a}" for n, a in POOLS])
def test_pooling_sizes_are_tuples_as_torch(name, args):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    for attr in ("kernel_size", "stride", "padding"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    if name == "AvgPool1d":  # and it still pools as torch's
        x = np.random.default_rng(0).standard_normal((2, 3, 9)).astype(np.float32)
        np.testing.assert_allclose(
            ours(descent.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-6
        )


REPRS = [
    ("Hardtanh", (), {"inplace": True}), ("ReLU6", (), {"inplace": True}),
    ("SELU", (), {"inplace": True}), ("SELU", (), {}), ("Mish", (), {"inplace": True}),
    ("CELU", (0.5,), {"inplace": True}), ("RReLU", (), {"inplace": True}),
    ("Threshold", (0.1, 0.0), {"inplace": True}), ("Threshold", (0.1, 0.0), {}),
    ("RNNCell", (3, 4), {"nonlinearity": "relu", "bias": False}),
    ("RNNCell", (3, 4), {"nonlinearity": "tanh"}), ("GRUCell", (3, 4), {"bias": False}),
    ("Embedding", (10, 3), {"max_norm": 2, "sparse": True}), ("Embedding", (10, 3), {}),
    ("Upsample", (), {"scale_factor": (2, 3), "mode": "bilinear"}),
    ("Upsample", (), {"scale_factor": 2}), ("Upsample", (), {"size": (4, 5)}),
    ("UpsamplingNearest2d", (), {"scale_factor": (2, 2)}),
    ("UpsamplingBilinear2d", (), {"scale_factor": 2}),
]  # fmt: skip


@pytest.mark.parametrize("name,args,kw", REPRS, ids=[f"{n}-{sorted(k)}" for n, _, k in REPRS])
def test_module_reprs_match_torch(name, args, kw):
    # inplace=True, RNNCell's nonlinearity, Embedding's sparse and Upsample's float factors
    # were missing from descent's reprs; printed models must read as PyTorch's
    ours, theirs = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(ours) == repr(theirs)
    if name.startswith("Upsampl"):
        assert ours.scale_factor == theirs.scale_factor
