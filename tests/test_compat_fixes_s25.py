"""Differential tests for what session 25's compat programs found (tests/compat/programs and
/work/notes/s25/h180/programs), each against torch 2.13."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _roundtrip(lib, obj):
    buf = io.BytesIO()
    lib.save(obj, buf)
    buf.seek(0)
    return lib.load(buf)


def _saved_views(lib):
    """A base and its views saved together, loaded, then written through the views."""
    base = lib.arange(12.0).view(3, 4)
    loaded = _roundtrip(lib, {"b": base, "t": base.t(), "col": base[:, 2], "flat": base.view(-1)})
    loaded["t"][0, 1] = -1.0
    loaded["col"][0] = -2.0
    loaded["flat"][11] = -3.0
    return {
        "b": loaded["b"].tolist(),
        "t_stride": tuple(loaded["t"].stride()),
        "col_offset": loaded["col"].storage_offset(),
        "col": loaded["col"].tolist(),
        "flat_contiguous": loaded["flat"].is_contiguous(),
    }


def test_save_keeps_a_view_of_a_saved_base_as_torch():
    """torch.save keeps storages: a slice saved with its base loads as a view of the loaded
    base (writes show through, storage_offset and strides kept). descent stored each as a
    copy of its own (python_protocols_io)."""
    assert _saved_views(descent) == _saved_views(torch)


def _saved_params(lib):
    """Parameters in one flat buffer (descent's optimizers keep one) stay separate tensors,
    as torch's separate storages; a view of a Parameter loads as a leaf."""
    model = lib.nn.Linear(3, 2)
    with lib.no_grad():
        model.weight.copy_(lib.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3)))
        model.bias.fill_(0.5)
    model(lib.ones(1, 3)).sum().backward()
    if lib is descent:  # descent's SGD moves the parameters into one flat buffer
        descent.optim.SGD(model.parameters(), lr=0.1).step()
    else:  # (torch.optim's first use imports torch._dynamo: 5 s)
        with torch.no_grad():
            for q in model.parameters():
                q -= 0.1 * q.grad
    p = lib.nn.Parameter(lib.arange(6.0))
    loaded = _roundtrip(lib, {"sd": model.state_dict(), "p": p, "pv": p.detach()[2:4]})
    loaded["sd"]["bias"][0] = 100.0
    pv = loaded["pv"]
    return (
        loaded["sd"]["weight"].tolist(),
        loaded["sd"]["bias"].tolist(),
        [v.storage_offset() for v in loaded["sd"].values()],
        type(loaded["p"]).__name__,
        (pv.requires_grad, pv.is_leaf, pv.storage_offset()),
    )


def test_save_keeps_side_by_side_tensors_apart():
    assert _saved_params(descent) == _saved_params(torch)


def test_transformer_layer_blocks_default_is_causal():
    """rtdl-style code calls TransformerEncoderLayer._sa_block(x, None, None) / _ff_block
    directly; torch's is_causal defaults to False (descent required it)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    outs = []
    for lib in (torch, descent):
        lib.manual_seed(0)
        enc = lib.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
        dec = lib.nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
        for m in (enc, dec):
            with lib.no_grad():
                for i, (_, p) in enumerate(sorted(m.named_parameters())):
                    rng = np.random.default_rng(i)
                    p.copy_(lib.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32)))
        t = lib.tensor(x)
        y = enc._sa_block(t, None, None) + dec._sa_block(t, None, None)
        y = y + dec._mha_block(t, t, None, None)
        outs.append(y.detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)


def test_nn_modules_utils_is_the_argument_helpers():
    """`torch.nn.modules.utils._pair` by attribute (no import of the submodule first): descent
    gave torch.nn.utils there, which has no _pair."""
    for lib in (torch, descent):
        assert lib.nn.modules.utils._pair(3) == (3, 3)
        assert lib.nn.modules.utils._triple((1, 2, 3)) == (1, 2, 3)
    assert descent.nn.utils.clip_grad_norm_ is not None  # torch.nn.utils unchanged


@pytest.mark.parametrize("name", ["FloatTensor", "LongTensor", "HalfTensor", "BFloat16Tensor"])
def test_cuda_legacy_tensor_types(name):
    """PyTorch-GAN's `Tensor = torch.cuda.FloatTensor if cuda else torch.FloatTensor` and
    isinstance checks: the names exist, no CPU tensor is one, and building one without a GPU
    raises torch's TypeError."""
    for lib in (torch, descent):
        cls = getattr(lib.cuda, name)
        assert not isinstance(lib.zeros(2), cls)
        if not lib.cuda.is_available():
            with pytest.raises(TypeError, match=f"torch.cuda.{name} not available"):
                cls(2)


def test_sdp_kernel_context_restores_switches():
    """`with torch.backends.cuda.sdp_kernel(enable_flash=False):` (deprecated, still in LLM
    code) was missing; it warns as torch does and sets the switches for the block only."""
    for lib in (torch, descent):
        before = lib.backends.cuda.flash_sdp_enabled()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with lib.backends.cuda.sdp_kernel(enable_flash=False, enable_math=True):
                inside = lib.backends.cuda.flash_sdp_enabled()
        assert inside is False
        assert lib.backends.cuda.flash_sdp_enabled() is before
        assert any(issubclass(w.category, FutureWarning) for w in caught)
