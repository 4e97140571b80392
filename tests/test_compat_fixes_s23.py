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
