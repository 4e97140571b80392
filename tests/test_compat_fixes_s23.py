"""Differential tests for what session 23's compat programs found (tests/compat/programs),
each against torch 2.13."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _pair(make):
    """The same module built by `make(lib)` in torch and descent, with torch's weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_mod, d_mod = make(torch), make(descent)
    state = {k: descent.tensor(v.detach().numpy()) for k, v in t_mod.state_dict().items()}
    d_mod.load_state_dict(state)
    return t_mod, d_mod


def _encoder(lib, nhead=2, norm_first=False, batch_first=True):
    layer = lib.nn.TransformerEncoderLayer(
        8, nhead, 16, dropout=0.0, batch_first=batch_first, norm_first=norm_first
    )
    norm = lib.nn.LayerNorm(8)
    enc = lib.nn.TransformerEncoder(layer, 2, norm=norm)
    with lib.no_grad():
        norm.bias.fill_(0.25)  # padded rows come back as norm(0) = bias
    return enc


def _inputs(left_aligned=True):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 8)).astype(np.float32)
    pad = np.zeros((3, 5), dtype=bool)
    pad[0, 3:] = True
    pad[1, 4:] = True
    if not left_aligned:
        pad[2, 0] = True
    return x, pad


@pytest.mark.parametrize(
    "case", ["no_grad", "inference_mode", "grad", "fastpath_off", "right_pad", "float_mask"]
)
def test_transformer_encoder_eval_zeroes_padding_as_torch(case):
    """PyTorch's eval fast path (nested tensors) returns 0 at the padded positions before the
    final norm; descent computed them (the training path's values)."""
    t_enc, d_enc = _pair(_encoder)
    t_enc.eval()
    d_enc.eval()
    x, pad = _inputs(left_aligned=case != "right_pad")
    outs = []
    for lib, enc in ((torch, t_enc), (descent, d_enc)):
        src, mask = lib.tensor(x), lib.tensor(pad)
        if case == "float_mask":
            mask = lib.zeros(pad.shape).masked_fill(mask, float("-inf"))
        if case == "grad":
            out = enc(src, src_key_padding_mask=mask).detach()
        elif case == "inference_mode":
            with lib.inference_mode():
                out = enc(src, src_key_padding_mask=mask)
        else:
            lib.backends.mha.set_fastpath_enabled(case != "fastpath_off")
            try:
                with lib.no_grad():
                    out = enc(src, src_key_padding_mask=mask)
            finally:
                lib.backends.mha.set_fastpath_enabled(True)
        outs.append(out.numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)
    zeroed = case in ("no_grad", "inference_mode", "float_mask")
    assert np.allclose(outs[1][pad], 0.25) == zeroed


@pytest.mark.parametrize("kw", [{}, {"nhead": 1}, {"norm_first": True}, {"batch_first": False}])
def test_transformer_encoder_use_nested_tensor_as_torch(kw):
    """use_nested_tensor (and the warning when enable_nested_tensor cannot be honoured), and
    the layers' activation_relu_or_gelu marker."""
    with warnings.catch_warnings(record=True) as t_warn:
        warnings.simplefilter("always")
        t_enc = _encoder(torch, **kw)
    with warnings.catch_warnings(record=True) as d_warn:
        warnings.simplefilter("always")
        d_enc = _encoder(descent, **kw)
    assert d_enc.use_nested_tensor == t_enc.use_nested_tensor
    assert [str(w.message) for w in d_warn] == [str(w.message) for w in t_warn]
    for act in ("relu", "gelu", torch.nn.functional.gelu, lambda v: v):
        t_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, activation=act)
        d_act = descent.nn.functional.gelu if act is torch.nn.functional.gelu else act
        d_layer = descent.nn.TransformerEncoderLayer(8, 2, 16, activation=d_act)
        assert d_layer.activation_relu_or_gelu == t_layer.activation_relu_or_gelu
    for lib in (torch, descent):
        layer = lib.nn.TransformerEncoderLayer(8, 2, 16, activation=lib.nn.GELU())
        assert layer.activation_relu_or_gelu == 2


# CPU autocast's op lists (amp_cpu_bf16_ops): PyTorch runs addmm / baddbmm / addbmm / einsum
# contractions / conv_transpose / linalg.vecdot in bfloat16, leaves dot / mv / addmv / vdot /
# bilinear in float32 and never casts float64. Each case: an expression of L (the library), F
# (its nn.functional) and a (the input tensors), and the inputs' shapes.
_S2, _S3 = [(2, 3), (3, 4)], [(2, 3, 2), (2, 3, 4), (2, 4, 2)]
_AUTOCAST_CASES = {
    "addmm": ("L.addmm(a[0][:, :2], a[1][:, :3], a[2][:3, :2])", [(3, 3), (3, 4), (4, 2)]),
    "baddbmm": ("L.baddbmm(a[0], a[1], a[2], beta=0.5)", _S3),
    "addbmm": ("L.addbmm(a[0][0], a[1], a[2])", _S3),
    "einsum_bmm": ("L.einsum('bij,bjk->bik', a[1], a[2])", _S3),
    "einsum_rowdot": ("L.einsum('ij,ij->i', a[0], a[0])", _S2),
    "einsum_outer": ("L.einsum('i,j->ij', a[0][0], a[1][0])", _S2),
    "einsum_one": ("L.einsum('ij->j', a[0])", _S2),
    "einsum_chain": ("L.einsum('ij,jk,kl->il', a[0], a[1], a[1].T)", _S2),
    "conv_transpose1d": ("F.conv_transpose1d(a[0], a[1])", [(1, 2, 5), (2, 3, 3)]),
    "conv_transpose2d": (
        "F.conv_transpose2d(a[0], a[1], a[2][0])",
        [(1, 2, 4, 4), (2, 3, 3, 3), (1, 3)],
    ),
    "vecdot": ("L.linalg.vecdot(a[1], a[1])", _S2),
    "dot": ("L.dot(a[1][0], a[1][1])", _S2),
    "mv": ("L.mv(a[1], a[1][0])", [(2, 3), (4, 4)]),
    "addmv": ("L.addmv(a[0][0, :2], a[1][:2], a[1][0])", [(2, 3), (4, 4)]),
    "vdot": ("L.vdot(a[1][0], a[1][1])", _S2),
    "bilinear": ("F.bilinear(a[0], a[1], a[2])", [(2, 3), (2, 4), (5, 3, 4)]),
    "mm_float64": ("L.mm(a[0].double(), a[1].double())", _S2),
    "linear_float64": ("F.linear(a[0].double(), a[1].T.double())", _S2),
    "conv_float64": ("F.conv1d(a[0].double(), a[1].double())", [(1, 2, 5), (3, 2, 3)]),
    "einsum_float64": ("L.einsum('ij,jk->ik', a[0].double(), a[1].double())", _S2),
    "addmm_float64": ("L.addmm(a[0][:, :1].double(), a[0].double(), a[1].double())", _S2),
    # PyTorch's float32 list: a bfloat16 input (a product's output) is computed in float32
    "cdist": ("L.cdist(a[0] @ a[1], a[0][:1] @ a[1])", _S2),
    "inv": ("L.linalg.inv(a[2] @ a[2].mT + L.eye(3))", _S2 + [(3, 3)]),
    "svd": ("L.linalg.svd(a[2] @ a[2])[1]", _S2 + [(3, 3)]),
    "eigh": ("L.linalg.eigh(a[2] @ a[2].mT)[0]", _S2 + [(3, 3)]),
    "qr": ("L.linalg.qr(a[2] @ a[2])[1].abs()", _S2 + [(3, 3)]),
    "cholesky": ("L.linalg.cholesky(a[2] @ a[2].mT + L.eye(3))", _S2 + [(3, 3)]),
}


@pytest.mark.parametrize("case", sorted(_AUTOCAST_CASES))
def test_cpu_autocast_op_lists_as_torch(case):
    expr, shapes = _AUTOCAST_CASES[case]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    outs = []
    for lib in (torch, descent):
        env = {"L": lib, "F": lib.nn.functional, "a": [lib.tensor(x) for x in arrays]}
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = eval(expr, env)
        outs.append((str(out.dtype).split(".")[-1], out.float().numpy().astype(np.float64)))
    assert outs[1][0] == outs[0][0]
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_nn_init_fills_complex_tensors_as_torch(dtype):
    """nn.Linear(..., dtype=torch.cfloat) (complex_valued_net): nn.init refused complex
    tensors. PyTorch draws the real and imaginary parts each from U(a, b), and for normal_
    each from N(mean, std^2 / 2)."""
    for lib in (torch, descent):
        dt = getattr(lib, dtype)
        layer = lib.nn.Linear(64, 32, dtype=dt)
        bound = 1 / np.sqrt(64)
        parts = [layer.weight.detach().real.numpy(), layer.weight.detach().imag.numpy()]
        assert layer.weight.dtype == dt and layer.bias.dtype == dt
        for part in parts:
            assert np.abs(part).max() <= bound and part.std() > bound / 3
        t = lib.empty(40000, dtype=dt)
        lib.nn.init.normal_(t, 1.0, 2.0)
        re, im = t.real.numpy(), t.imag.numpy()
        np.testing.assert_allclose([re.mean(), im.mean()], [1.0, 1.0], atol=0.05)
        np.testing.assert_allclose([re.std(), im.std()], [2 / np.sqrt(2)] * 2, rtol=0.03)
        lib.nn.init.uniform_(t, 2.0, 3.0)
        assert t.real.min() >= 2 and t.imag.min() >= 2 and t.real.max() <= 3
