"""The torch.nn names a probe found missing, against PyTorch (the oracle): 1-d pooling, the
padding layers, PReLU, CosineEmbeddingLoss, ChannelShuffle, EmbeddingBag, the Transformer
decoder and encoder-decoder, F.instance_norm / InstanceNorm3d and F.gumbel_softmax.

Same inputs (and PyTorch's state_dict loaded unchanged) -> same outputs and gradients in
float32 and float64; float64 finite-difference checks for every new differentiable function;
PyTorch's error types for bad arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn
import descent.nn.functional as F
from descent.explain import gradcheck

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [np.float32, np.float64]


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def _close(a, b, dtype=np.float32, what=""):
    np.testing.assert_allclose(_np(a), _np(b), **TOL[np.dtype(dtype).type], err_msg=what)


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _pair(arr, grad=True):
    """The same array as a descent leaf and a torch leaf."""
    g = grad and arr.dtype.kind == "f"
    return descent.tensor(arr, dtype=arr.dtype, requires_grad=g), torch.tensor(arr, requires_grad=g)


def _backward_both(y, ty, seed=1):
    """Backpropagate the same random weighting of both outputs."""
    w = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(_np(ty).dtype)
    (y * descent.tensor(w, dtype=w.dtype)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()


def _load(ours, theirs):
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd)
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(sd[k].shape), k
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})


def _check_module(ours, theirs, arr, dtype):
    x, tx = _pair(arr.astype(dtype))
    y, ty = ours(x), theirs(tx)
    _close(y, ty, dtype, "output")
    assert y.dtype == arr.astype(dtype).dtype
    _backward_both(y, ty)
    _close(x.grad, tx.grad, dtype, "input grad")


# -- 1-d pooling ---------------------------------------------------------------------------------
POOL1D = [
    ("MaxPool1d", dict(kernel_size=3), (2, 3, 10)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, dilation=2), (2, 3, 11)),
    ("MaxPool1d", dict(kernel_size=4, stride=3, ceil_mode=True), (3, 10)),  # unbatched
    ("MaxPool1d", dict(kernel_size=7), (2, 2, 7)),  # kernel = input length
    ("AvgPool1d", dict(kernel_size=3), (2, 3, 10)),
    ("AvgPool1d", dict(kernel_size=4, stride=2, padding=2, count_include_pad=False), (2, 3, 9)),
    ("AvgPool1d", dict(kernel_size=3, stride=2, ceil_mode=True), (3, 8)),
    ("AvgPool1d", dict(kernel_size=6), (1, 2, 6)),
    ("AdaptiveAvgPool1d", dict(output_size=3), (2, 3, 10)),
    ("AdaptiveAvgPool1d", dict(output_size=5), (2, 3, 10)),
    ("AdaptiveAvgPool1d", dict(output_size=7), (3, 5)),  # more cells than inputs
    ("AdaptiveAvgPool1d", dict(output_size=1), (2, 4, 6)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "kw", "shape"), POOL1D, ids=[str(i) for i in range(12)])
def test_pool1d_modules_match_torch(name, kw, shape, dtype):
    _check_module(getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw), _rand(shape), dtype)


def test_pool1d_indices_errors_and_functional():
    x = _rand((2, 3, 9))
    y, i = nn.MaxPool1d(3, 2, return_indices=True)(descent.tensor(x))
    ty, ti = torch.nn.MaxPool1d(3, 2, return_indices=True)(torch.tensor(x))
    _close(y, ty)
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert F.adaptive_avg_pool1d(descent.tensor(x), 0).shape == (2, 3, 0)
    with pytest.raises(ValueError):  # PyTorch: RuntimeError "Invalid computed output size"
        F.max_pool1d(descent.tensor(x), 10)
    with pytest.raises((RuntimeError, ValueError)):
        F.adaptive_avg_pool1d(descent.tensor(x[0, 0]), 3)  # 1-D input
    assert gradcheck(lambda t: F.adaptive_avg_pool1d(t, 4), [_rand((2, 2, 7), np.float64)])


# -- padding layers ----------------------------------------------------------------------------
PADS = [
    ("ZeroPad1d", (2,), (2, 3, 4)),
    ("ZeroPad1d", ((1, 3),), (3, 4)),
    ("ZeroPad2d", (2,), (2, 3, 4, 5)),
    ("ZeroPad2d", ((1, 0, 2, 3),), (4, 5)),  # constant padding pads any rank
    ("ZeroPad2d", ((-1, 1, 0, 2),), (3, 4)),  # a negative amount crops
    ("ZeroPad3d", ((1, 0, 2, 1, 0, 1),), (1, 2, 3, 3, 3)),
    ("ConstantPad1d", (2, 3.5), (5,)),
    ("ConstantPad2d", ((1, 2, 0, 1), -1.0), (2, 3, 3)),
    ("ConstantPad3d", (1, 0.5), (2, 2, 2, 2)),
    ("ReflectionPad1d", (2,), (2, 3, 5)),
    ("ReflectionPad1d", ((3, 1),), (3, 4)),  # largest allowed: size - 1
    ("ReflectionPad2d", ((1, 2, 2, 0),), (2, 3, 4, 5)),
    ("ReflectionPad2d", ((1, -1, 0, 0),), (1, 3, 4)),
    ("ReflectionPad3d", (1,), (1, 2, 3, 3, 3)),
    ("ReplicationPad1d", (5,), (2, 3, 3)),  # larger than the input: fine for edge padding
    ("ReplicationPad2d", ((2, 0, 1, 3),), (3, 4, 5)),
    ("ReplicationPad3d", ((1, 2, 0, 1, 2, 0),), (2, 2, 3, 3)),
    ("CircularPad1d", ((3, 3),), (2, 3, 3)),  # one full wrap
    ("CircularPad2d", ((1, 2, 2, 1),), (1, 2, 3, 4)),
    ("CircularPad3d", (1,), (2, 2, 3, 3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "args", "shape"), PADS, ids=[str(i) for i in range(20)])
def test_padding_modules_match_torch(name, args, shape, dtype):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert ours.padding == theirs.padding
    _check_module(ours, theirs, _rand(shape), dtype)


@pytest.mark.parametrize(
    ("module", "shape", "error"),
    [
        (nn.ReflectionPad1d(3), (1, 2, 3), RuntimeError),  # padding = input size
        (nn.ReflectionPad2d((0, 0, 4, 0)), (1, 4, 5), RuntimeError),
        (nn.CircularPad1d(4), (1, 2, 3), RuntimeError),  # wraps more than once
        (nn.ReflectionPad1d(2), (3,), NotImplementedError),  # 1-D: no channel dim
        (nn.ReflectionPad1d(2), (2, 2, 2, 3), NotImplementedError),
        (nn.ReplicationPad2d(1), (3, 4), NotImplementedError),
        (nn.ReplicationPad1d(5), (2, 0), RuntimeError),  # an empty spatial dim
        (nn.ZeroPad2d(2), (3,), RuntimeError),  # more padded dims than the input has
    ],
)
def test_padding_errors_match_torch(module, shape, error):
    x = np.zeros(shape, np.float32)
    theirs = getattr(torch.nn, type(module).__name__)(module.padding)
    with pytest.raises(error):
        theirs(torch.tensor(x))
    with pytest.raises(error):
        module(descent.tensor(x))
    with pytest.raises(ValueError):
        nn.ReflectionPad2d((1, 2, 3))  # 3 amounts for 2 dims


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "constant"])
def test_pad_gradcheck(mode):
    x = _rand((2, 3, 4), np.float64)
    assert gradcheck(lambda t: F.pad(t, (2, 1, 1, -1), mode=mode), [x])


# -- PReLU -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("num", "init", "shape"),
    [
        (1, 0.25, (4, 3, 5)),
        (3, 0.1, (4, 3, 5)),
        (3, -0.5, (2, 3)),
        (1, 0.3, (6,)),
        (2, 0.2, (2, 2, 3, 3)),
    ],  # fmt: skip
)
def test_prelu_matches_torch(num, init, shape, dtype):
    ours, theirs = nn.PReLU(num, init), torch.nn.PReLU(num, init)
    assert ours.weight.dtype == np.float32 and tuple(ours.weight.shape) == (num,)
    _load(ours, theirs)
    ours.to(dtype)
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    x = _rand(shape, dtype)
    x[..., 0] = 0.0  # the kink: the slope's derivative, as PyTorch
    _check_module(ours, theirs, x, dtype)
    _close(ours.weight.grad, theirs.weight.grad, dtype, "weight grad")


def test_prelu_errors_and_gradcheck():
    with pytest.raises(RuntimeError, match="parameter numbers"):
        nn.PReLU(3)(descent.ones(3))  # a 1-D input has one channel
    with pytest.raises(RuntimeError, match="parameter numbers"):
        F.prelu(descent.ones(2, 3), descent.ones(2))
    assert F.prelu(descent.ones(3), descent.tensor(0.2)).shape == (3,)
    x, w = _rand((3, 2, 4), np.float64), np.array([0.3, -0.2])
    assert gradcheck(F.prelu, [x, w])
    assert "num_parameters=2" in repr(nn.PReLU(2))


# -- CosineEmbeddingLoss -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("kw", "target"),
    [
        (dict(), [1, -1, 1, -1, 1]),
        (dict(margin=0.2, reduction="sum"), [-1, -1, 1, -1, -1]),
        (dict(margin=-0.3, reduction="none"), [1, 0, -1, 1, -1]),
    ],  # fmt: skip
)
def test_cosine_embedding_loss_matches_torch(kw, target, dtype):
    a, b = _rand((5, 4), dtype, 1), _rand((5, 4), dtype, 2)
    b[1] = a[1] * 2  # cos = 1
    xa, ta = _pair(a)
    xb, tb = _pair(b)
    y = nn.CosineEmbeddingLoss(**kw)(xa, xb, descent.tensor(np.array(target)))
    ty = torch.nn.CosineEmbeddingLoss(**kw)(ta, tb, torch.tensor(target))
    _close(y, ty, dtype)
    _backward_both(y, ty)
    _close(xa.grad, ta.grad, dtype)
    _close(xb.grad, tb.grad, dtype)


def test_cosine_embedding_loss_unbatched_errors_gradcheck():
    a, b = _rand(4, np.float64, 3), _rand(4, np.float64, 4)
    for y in (1, -1):
        _close(F.cosine_embedding_loss(descent.tensor(a), descent.tensor(b), descent.tensor(y),
                                       margin=-0.5),
               torch.nn.functional.cosine_embedding_loss(torch.tensor(a), torch.tensor(b),
                                                         torch.tensor(y), margin=-0.5),
               np.float64)  # fmt: skip
    with pytest.raises(RuntimeError, match="0D target"):
        F.cosine_embedding_loss(descent.ones(2, 3), descent.ones(2, 3), descent.tensor(1))
    with pytest.raises(RuntimeError):
        F.cosine_embedding_loss(descent.ones(2, 3), descent.ones(2, 4), descent.tensor([1, -1]))
    t = descent.tensor([1, -1, -1])
    x1, x2 = _rand((3, 4), np.float64, 5), _rand((3, 4), np.float64, 6)
    assert gradcheck(lambda p, q: F.cosine_embedding_loss(p, q, t, margin=-0.9), [x1, x2])


# -- ChannelShuffle ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 6, 4), (2, 6, 3, 3), (4, 6, 2, 2), (1, 6, 2, 1, 2)])
def test_channel_shuffle_matches_torch(shape):
    _check_module(nn.ChannelShuffle(3), torch.nn.ChannelShuffle(3), _rand(shape), np.float32)


def test_channel_shuffle_errors():
    for shape, groups in (((2, 6), 3), ((2, 6, 4), 4), ((6, 4, 4), 3)):
        with pytest.raises(RuntimeError):
            torch.nn.functional.channel_shuffle(torch.zeros(shape), groups)
        with pytest.raises(RuntimeError):
            F.channel_shuffle(descent.zeros(*shape), groups)
    assert gradcheck(lambda t: F.channel_shuffle(t, 2), [_rand((2, 4, 3), np.float64)])


# -- EmbeddingBag ------------------------------------------------------------------------------
IDX = np.array([1, 2, 4, 5, 4, 3, 2, 0, 5, 5])
BAG_CASES = [
    (dict(mode="sum"), IDX, [0, 3, 3, 7], {}),  # an empty bag
    (dict(mode="mean"), IDX, [0, 3, 3, 7], {}),
    (dict(mode="max"), IDX, [0, 3, 3, 7], {}),
    (dict(mode="mean", padding_idx=5), IDX, [0, 2, 8], {}),  # padding: left out, not counted
    (dict(mode="max", padding_idx=2), IDX, [0, 4, 9], {}),
    (dict(mode="sum", include_last_offset=True), IDX, [0, 2, 6, 10], {}),
    (dict(mode="sum"), IDX, [0, 4, 6], dict(psw=True)),
    (dict(mode="mean"), IDX.reshape(2, 5), None, {}),  # fixed-length bags
    (dict(mode="max"), IDX.reshape(5, 2), None, {}),
    (dict(mode="sum", padding_idx=4), IDX.reshape(2, 5), None, dict(psw=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kw", "idx", "offsets", "extra"), BAG_CASES,
                         ids=[str(i) for i in range(len(BAG_CASES))])  # fmt: skip
def test_embedding_bag_matches_torch(kw, idx, offsets, extra, dtype):
    torch.manual_seed(0)
    theirs = torch.nn.EmbeddingBag(6, 3, **kw).to(torch.float64 if dtype == np.float64 else
                                                  torch.float32)  # fmt: skip
    ours = nn.EmbeddingBag(6, 3, **kw).to(dtype)
    _load(ours, theirs)
    args, targs = [descent.tensor(idx)], [torch.tensor(idx)]
    args.append(None if offsets is None else descent.tensor(np.array(offsets)))
    targs.append(None if offsets is None else torch.tensor(offsets))
    if extra.get("psw"):
        p, tp = _pair(np.random.default_rng(3).uniform(0.5, 2.0, idx.shape).astype(dtype))
        args.append(p)
        targs.append(tp)
    y, ty = ours(*args), theirs(*targs)
    _close(y, ty, dtype)
    _backward_both(y, ty)
    _close(ours.weight.grad, theirs.weight.grad, dtype, "weight grad")
    if extra.get("psw"):
        _close(args[2].grad, targs[2].grad, dtype, "per_sample_weights grad")


def test_embedding_bag_errors_and_gradcheck():
    w = descent.randn(5, 2)
    idx = descent.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="offsets\\[0\\]"):
        F.embedding_bag(idx, w, descent.tensor([1]))
    with pytest.raises(ValueError, match="offsets has to be a 1D"):
        F.embedding_bag(idx, w)
    with pytest.raises(ValueError, match="2D"):
        F.embedding_bag(descent.tensor([[1, 2, 3]]), w, descent.tensor([0]))
    with pytest.raises(NotImplementedError, match="per_sample_weights"):
        F.embedding_bag(idx, w, descent.tensor([0, 1]), mode="max",
                        per_sample_weights=descent.ones(3))  # fmt: skip
    with pytest.raises(RuntimeError, match="valid range"):
        F.embedding_bag(descent.tensor([1, 2, 7]), w, descent.tensor([0, 1]))
    with pytest.raises(ValueError, match="mode"):
        F.embedding_bag(idx, w, descent.tensor([0, 1]), mode="foo")
    with pytest.raises(RuntimeError):
        F.embedding_bag(descent.tensor([1.0, 2.0]), w, descent.tensor([0, 1]))
    off = descent.tensor([0, 2, 2])
    ids = descent.tensor([1, 2, 4, 0, 3])
    wt = _rand((5, 3), np.float64)
    psw = np.random.default_rng(1).uniform(0.5, 1.5, 5)
    for mode in ("sum", "mean", "max"):
        assert gradcheck(lambda t, m=mode: F.embedding_bag(ids, t, off, mode=m), [wt])
    assert gradcheck(lambda t, p: F.embedding_bag(ids, t, off, mode="sum",
                                                  per_sample_weights=p), [wt, psw])  # fmt: skip
    bag = nn.EmbeddingBag.from_pretrained(descent.tensor(wt), mode="sum")
    assert not bag.weight.requires_grad and bag.mode == "sum"


# -- TransformerDecoderLayer / TransformerDecoder / Transformer --------------------------------
E, H, FF, T, S, B = 8, 2, 16, 4, 5, 3

DECODER_CASES = [
    dict(),
    dict(norm_first=True),
    dict(activation="gelu", batch_first=True),
    dict(bias=False, layer_norm_eps=1e-3, norm_first=True, batch_first=True),
]


def _seq(n, batch_first, dtype=np.float32, seed=0, batched=True):
    if not batched:
        return _rand((n, E), dtype, seed)
    return _rand((B, n, E) if batch_first else (n, B, E), dtype, seed)


def _close_chain(a, b, dtype, what=""):
    """float32 through a chain of matmuls: the error is bounded by the magnitudes summed (see
    test_nn_modules_extra._close_chain), taken here as 512 u max|b|."""
    b = _np(b)
    if dtype == np.float64:
        np.testing.assert_allclose(_np(a), b, rtol=1e-9, atol=1e-11, err_msg=what)
        return
    bound = 512 * 2.0**-24 * float(np.abs(b).max())
    np.testing.assert_allclose(_np(a), b, rtol=1e-5, atol=max(1e-6, bound), err_msg=what)


def _cast(ours, theirs, dtype):
    ours.to(dtype)
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", DECODER_CASES, ids=[str(i) for i in range(4)])
def test_decoder_layer_matches_torch(kwargs, dtype):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, **kwargs)
    ours = nn.TransformerDecoderLayer(E, H, FF, dropout=0.0, **kwargs)
    _load(ours, theirs)
    _cast(ours, theirs, dtype)
    bf = kwargs.get("batch_first", False)
    (x, tx), (m, tm) = _pair(_seq(T, bf, dtype, 1)), _pair(_seq(S, bf, dtype, 2))
    causal = np.triu(np.ones((T, T), bool), k=1)
    pad = np.zeros((B, S), bool)
    pad[0, -2:] = True
    y = ours(x, m, tgt_mask=descent.tensor(causal), memory_key_padding_mask=descent.tensor(pad))
    ty = theirs(tx, tm, tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(pad))
    _close_chain(y, ty, dtype, "output")
    _backward_both(y, ty)
    _close_chain(x.grad, tx.grad, dtype, "tgt grad")
    _close_chain(m.grad, tm.grad, dtype, "memory grad")
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close_chain(p.grad, tp[name].grad, dtype, name)


def test_decoder_layer_unbatched_masks_and_causal_flag():
    torch.manual_seed(1)
    theirs = torch.nn.TransformerDecoderLayer(E, H, FF).eval()
    ours = nn.TransformerDecoderLayer(E, H, FF).eval()
    _load(ours, theirs)
    x, m = _seq(T, False, batched=False), _seq(S, False, seed=3, batched=False)
    causal = np.triu(np.ones((T, T), bool), k=1)
    mem_mask = np.where(np.random.default_rng(0).random((T, S)) < 0.3, -1e4, 0.0)
    mem_mask = mem_mask.astype(np.float32)
    y = ours(descent.tensor(x), descent.tensor(m), tgt_mask=descent.tensor(causal),
             memory_mask=descent.tensor(mem_mask))  # fmt: skip
    ty = theirs(torch.tensor(x), torch.tensor(m), tgt_mask=torch.tensor(causal),
                memory_mask=torch.tensor(mem_mask))  # fmt: skip
    _close_chain(y, ty, np.float32)
    # tgt_is_causal with no mask: descent applies the causal mask (torch requires the mask).
    y2 = ours(descent.tensor(x), descent.tensor(m), tgt_is_causal=True)
    y3 = ours(descent.tensor(x), descent.tensor(m), tgt_mask=descent.tensor(causal))
    np.testing.assert_allclose(y2.numpy(), y3.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("norm", [False, True])
def test_decoder_stack_matches_torch(norm):
    torch.manual_seed(2)
    t_layer = torch.nn.TransformerDecoderLayer(E, H, FF, batch_first=True)
    theirs = torch.nn.TransformerDecoder(t_layer, 3, norm=torch.nn.LayerNorm(E) if norm else None)
    layer = nn.TransformerDecoderLayer(E, H, FF, batch_first=True)
    ours = nn.TransformerDecoder(layer, 3, norm=nn.LayerNorm(E) if norm else None)
    _load(ours, theirs)
    ours.eval(), theirs.eval()
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight
    x, m = _seq(T, True), _seq(S, True, seed=4)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T)
    _close_chain(ours(descent.tensor(x), descent.tensor(m), tgt_mask=descent.tensor(mask.numpy())),
                 theirs(torch.tensor(x), torch.tensor(m), tgt_mask=mask), np.float32)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [dict(), dict(batch_first=True, norm_first=True)])
def test_transformer_matches_torch(kwargs, dtype):
    torch.manual_seed(3)
    cfg = dict(d_model=E, nhead=H, num_encoder_layers=2, num_decoder_layers=2,
               dim_feedforward=FF, dropout=0.0, **kwargs)  # fmt: skip
    theirs = torch.nn.Transformer(**cfg)
    descent.manual_seed(0)
    ours = nn.Transformer(**cfg)
    _load(ours, theirs)
    _cast(ours, theirs, dtype)
    bf = kwargs.get("batch_first", False)
    (src, tsrc), (tgt, ttgt) = _pair(_seq(S, bf, dtype, 5)), _pair(_seq(T, bf, dtype, 6))
    mask = nn.Transformer.generate_square_subsequent_mask(T, dtype=dtype)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.tensor(
        np.zeros(0, dtype)).dtype)  # fmt: skip
    np.testing.assert_array_equal(mask.numpy(), tmask.numpy())
    pad = np.zeros((B, S), bool)
    pad[1, -1] = True
    y = ours(src, tgt, tgt_mask=mask, src_key_padding_mask=descent.tensor(pad),
             memory_key_padding_mask=descent.tensor(pad))  # fmt: skip
    ty = theirs(tsrc, ttgt, tgt_mask=tmask, src_key_padding_mask=torch.tensor(pad),
                memory_key_padding_mask=torch.tensor(pad))  # fmt: skip
    _close_chain(y, ty, dtype, "output")
    _backward_both(y, ty)
    _close_chain(src.grad, tsrc.grad, dtype, "src grad")
    _close_chain(tgt.grad, ttgt.grad, dtype, "tgt grad")


def test_transformer_init_and_errors():
    descent.manual_seed(0)
    model = nn.Transformer(E, H, 1, 1, FF)
    theirs = torch.nn.Transformer(E, H, 1, 1, FF)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    w = model.encoder.layers[0].linear1.weight.numpy()
    bound = np.sqrt(6.0 / (E + FF))  # xavier_uniform_ on every matrix
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound
    with pytest.raises(RuntimeError, match="batch number"):
        model(descent.zeros(S, 2, E), descent.zeros(T, 3, E))
    with pytest.raises(RuntimeError, match="d_model"):
        model(descent.zeros(S, 2, E), descent.zeros(T, 2, E + 1))
    assert model(descent.zeros(S, E), descent.zeros(T, E)).shape == (T, E)  # unbatched
    mask = nn.Transformer.generate_square_subsequent_mask(3).numpy()
    assert mask.dtype == np.float32 and np.isneginf(mask[0, 1]) and mask[1, 0] == 0


# -- instance_norm -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_instance_norm_functional_matches_torch(dtype):
    x = _rand((3, 4, 5, 2), dtype)
    wt, b = _rand(4, dtype, 1), _rand(4, dtype, 2)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    (xs, xt), (ws, wtt), (bs, bt) = _pair(x), _pair(wt), _pair(b)
    rms, rvs = descent.tensor(rm.copy(), dtype=dtype), descent.tensor(rv.copy(), dtype=dtype)
    rmt, rvt = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    y = F.instance_norm(xs, rms, rvs, ws, bs, momentum=0.3, eps=1e-3)
    ty = torch.nn.functional.instance_norm(xt, rmt, rvt, wtt, bt, momentum=0.3, eps=1e-3)
    _close(y, ty, dtype)
    _close(rms, rmt, dtype, "running_mean")
    _close(rvs, rvt, dtype, "running_var")
    _backward_both(y, ty)
    for a, t in ((xs, xt), (ws, wtt), (bs, bt)):
        _close(a.grad, t.grad, dtype)
    # use_input_stats=False: the running statistics
    _close(F.instance_norm(descent.tensor(x), rms, rvs, use_input_stats=False),
           torch.nn.functional.instance_norm(torch.tensor(x), rmt, rvt, use_input_stats=False),
           dtype)  # fmt: skip
    with pytest.raises(ValueError, match="spatial"):
        F.instance_norm(descent.ones(2, 3, 1))
    assert gradcheck(
        lambda t, g: F.instance_norm(t, weight=g),
        [_rand((2, 3, 4), np.float64), _rand(3, np.float64, 3)],
    )


@pytest.mark.parametrize("kw", [dict(), dict(affine=True, track_running_stats=True)])
def test_instance_norm3d_matches_torch(kw):
    ours, theirs = nn.InstanceNorm3d(3, **kw), torch.nn.InstanceNorm3d(3, **kw)
    _load(ours, theirs)
    for shape in ((2, 3, 2, 3, 4), (3, 2, 2, 3)):
        _check_module(ours, theirs, _rand(shape), np.float32)
    if kw:
        _close(ours.running_var, theirs.running_var)
        ours.eval(), theirs.eval()
        _check_module(ours, theirs, _rand((2, 3, 2, 3, 4), seed=5), np.float32)


# -- gumbel_softmax ----------------------------------------------------------------------------
def test_gumbel_softmax_samples_and_straight_through():
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32))
    descent.manual_seed(0)
    a = F.gumbel_softmax(descent.tensor(logits), tau=0.5)
    descent.manual_seed(0)
    b = F.gumbel_softmax(descent.tensor(logits), tau=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # drawn from descent's generator
    np.testing.assert_allclose(a.numpy().sum(-1), 1.0, rtol=1e-6)
    assert a.dtype == np.float32
    # hard: one-hot forward at the soft sample's argmax, the soft sample's gradient backward
    x = descent.tensor(logits, requires_grad=True)
    descent.manual_seed(1)
    h = F.gumbel_softmax(x, tau=0.7, hard=True, dim=0)
    x2 = descent.tensor(logits, requires_grad=True)
    descent.manual_seed(1)
    s = F.gumbel_softmax(x2, tau=0.7, dim=0)
    assert set(np.unique(h.numpy())) <= {0.0, 1.0}
    np.testing.assert_array_equal(h.numpy().sum(0), 1.0)
    np.testing.assert_array_equal(h.numpy().argmax(0), s.numpy().argmax(0))
    w = descent.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    (h * w).sum().backward()
    (s * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-6, atol=1e-7)
    # The Gumbel-max trick: argmax frequencies follow softmax(logits).
    descent.manual_seed(2)
    many = descent.tensor(np.repeat(logits[:1], 20000, axis=0))
    freq = F.gumbel_softmax(many, hard=True).numpy().mean(0)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.015)
    assert F.gumbel_softmax(descent.tensor(logits, dtype=np.float64)).dtype == np.float64
