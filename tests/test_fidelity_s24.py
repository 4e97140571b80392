"""Session 24's fidelity fixes at the edges (helper-172; the probe is
/work/notes/s24/h172/probe.py): results, dtypes and error classes where descent differed from
PyTorch 2.13 (the oracle), each case compared with torch computed here."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from fidelity_helpers import results_or_same_error

torch = pytest.importorskip("torch")


def _same(fn, rtol=1e-6):
    """fn(torch) raises X => fn(descent) raises an X; fn(torch) computes => fn(descent)
    computes the same dtype, shape and values."""
    pair = results_or_same_error(fn, torch, descent)
    if pair is None:
        return
    tr, dr = pair
    assert str(dr.dtype).split(".")[-1] == str(tr.dtype).split(".")[-1], (tr.dtype, dr.dtype)
    assert tuple(dr.shape) == tuple(tr.shape)
    if dr.dtype == descent.bfloat16:  # NumPy has no bfloat16: compare the float32 values
        dr, tr = dr.float(), tr.float()
    np.testing.assert_allclose(dr.detach().numpy(), tr.detach().resolve_conj().numpy(), rtol=rtol)


# -- an optimizer given the same parameter more than once in a group ---------------------------
@pytest.mark.parametrize(
    "name,kw",
    [("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}),
     ("Adam", {"lr": 0.1, "weight_decay": 0.1}), ("AdamW", {"lr": 0.1}),
     ("RMSprop", {"lr": 0.01}), ("Adafactor", {"lr": 0.1})],
)  # fmt: skip
def test_duplicate_parameter_is_stepped_once_per_listing(name, kw):
    got = []
    for m in (torch, descent):
        p = m.nn.Parameter(m.tensor([1.0, 2.0, -0.5]))
        q = m.nn.Parameter(m.tensor([0.3, -1.0]))
        with pytest.warns(UserWarning, match="duplicate parameters"):
            opt = getattr(m.optim, name)([p, q, p], **kw)  # foreach=None: the for-loop rule
        for _ in range(2):
            opt.zero_grad()
            ((p * p).sum() + p.sum() * q.sum() + q.pow(3).sum()).backward()
            opt.step()
        got.append(np.concatenate([p.detach().numpy(), q.detach().numpy()]))
    np.testing.assert_allclose(got[1], got[0], rtol=1e-5, atol=1e-6)


# -- conjugate transposes of 0-d tensors -------------------------------------------------------
@pytest.mark.parametrize("what", ["mT", "mH", "adjoint"])
@pytest.mark.parametrize("value", [3.0, 3.0 - 2.0j])
def test_matrix_transposes_of_a_0d_tensor_return_it_with_a_warning(what, value):
    def fn(m):
        x = m.tensor(value)
        return x.adjoint() if what == "adjoint" else getattr(x, what)

    with pytest.warns(UserWarning, match="deprecated on 0-D tensors"):  # torch's warns once
        fn(descent)
    _same(fn)
    x = descent.tensor(1.5)
    with pytest.warns(UserWarning):
        assert x.mT is x


# -- fold of bools / complex, affine_grid of ints, float16 linalg -----------------------------
@pytest.mark.parametrize("dtype", ["bool", "complex64", "int64", "float16"])
def test_fold_dtypes(dtype):
    cols = [[[1, 0, 1, 0], [0, 1, 1, 1]], [[0, 0, 0, 0], [1, 0, 0, 1]]]
    _same(lambda m: m.nn.functional.fold(m.tensor(cols).to(getattr(m, dtype)), (3, 2), (2, 1)))


@pytest.mark.parametrize("dtype", ["int64", "bool", "complex64"])
def test_affine_grid_of_a_non_floating_theta_is_a_value_error(dtype):
    _same(lambda m: m.nn.functional.affine_grid(m.ones(1, 2, 3).to(getattr(m, dtype)),
                                                (1, 1, 2, 2), align_corners=False))  # fmt: skip


@pytest.mark.parametrize("op", ["det", "solve", "lu_factor", "eigh", "svd", "qr", "cholesky",
                                "inv", "slogdet"])  # fmt: skip
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_linalg_error_classes(op, dtype):
    def fn(m):
        a = (m.eye(2) * 2).to(getattr(m, dtype))
        return getattr(m.linalg, op)(*((a, a) if op == "solve" else (a,)))

    _same(fn)


# -- CPU bfloat16 autocast: PyTorch's float32 list and prelu / conv3d lowered ------------------
def _b(m, *shape):
    g = np.random.default_rng(sum(shape)).standard_normal(shape) * 0.5
    return m.tensor(g, dtype=m.float32).to(m.bfloat16)


_AUTOCAST = {
    "l1": lambda m, F: F.l1_loss(_b(m, 3), _b(m, 3)),
    "smooth_l1": lambda m, F: F.smooth_l1_loss(_b(m, 3), _b(m, 3)),
    "huber": lambda m, F: F.huber_loss(_b(m, 3), _b(m, 3)),
    "kl_div": lambda m, F: F.kl_div(_b(m, 3), _b(m, 3).abs(), reduction="batchmean"),
    "bce": lambda m, F: F.binary_cross_entropy(_b(m, 3).sigmoid(), _b(m, 3).sigmoid()),
    "bce_logits": lambda m, F: F.binary_cross_entropy_with_logits(_b(m, 3), _b(m, 3).sigmoid()),
    "cos_emb": lambda m, F: F.cosine_embedding_loss(_b(m, 2, 3), _b(m, 2, 3), m.tensor([1, -1])),
    "triplet": lambda m, F: F.triplet_margin_loss(_b(m, 2, 3), _b(m, 2, 3), _b(m, 2, 3) + 1),
    "multi_margin": lambda m, F: F.multi_margin_loss(_b(m, 2, 3), m.tensor([0, 1])),
    "hinge": lambda m, F: F.hinge_embedding_loss(_b(m, 3), _b(m, 3).sign()),
    "margin_rank": lambda m, F: F.margin_ranking_loss(_b(m, 3), _b(m, 3) + 1, _b(m, 3).sign()),
    "soft_margin": lambda m, F: F.soft_margin_loss(_b(m, 3), _b(m, 3).sign()),
    "multilabel_soft": lambda m, F: F.multilabel_soft_margin_loss(_b(m, 2, 3), _b(m, 2, 3)),
    "gaussian_nll": lambda m, F: F.gaussian_nll_loss(_b(m, 3), _b(m, 3), _b(m, 3).abs()),
    "prod": lambda m, F: _b(m, 2, 3).prod(1),
    "trace": lambda m, F: _b(m, 3, 3).trace(),
    "solve": lambda m, F: m.linalg.solve(m.eye(3) * 2, _b(m, 3, 1)),
    "lstsq_f32": lambda m, F: m.linalg.lstsq(m.eye(3) * 2 + 0.1, m.ones(3, 1)).solution,
    "cholesky_solve": lambda m, F: m.cholesky_solve(_b(m, 3, 1), m.eye(3) * 2),
    "pad_reflect": lambda m, F: F.pad(_b(m, 1, 1, 4), (2, 1), mode="reflect"),
    "pad_circular": lambda m, F: F.pad(_b(m, 1, 1, 4), (2, 1), mode="circular"),
    "avg_pool3d": lambda m, F: F.avg_pool3d(_b(m, 1, 1, 2, 2, 2), 2),
    "grid_sample": lambda m, F: F.grid_sample(
        _b(m, 1, 1, 2, 2), _b(m, 1, 2, 2, 2), align_corners=False
    ),
    "prelu": lambda m, F: F.prelu(_b(m, 2, 3).float(), m.tensor([0.25])),
    "conv3d": lambda m, F: F.conv3d(_b(m, 1, 1, 2, 2, 2).float(), m.ones(1, 1, 1, 1, 1)),
}


@pytest.mark.parametrize("name", list(_AUTOCAST))
def test_cpu_bfloat16_autocast_op_lists(name):
    def fn(m):
        with m.autocast("cpu", dtype=m.bfloat16):
            return _AUTOCAST[name](m, m.nn.functional)

    _same(fn, rtol=1e-2)


# -- nn.functional and Tensor methods at edge shapes (the probe's findings) --------------------
def _r(m, *shape):
    return m.arange(float(np.prod(shape))).reshape(*shape).sin()


_EDGES = {
    # a raise where PyTorch computes
    "max_pool2d_ceil_dilated": lambda m, F: F.max_pool2d(_r(m, 1, 2, 5, 4), 3, 2, 0, 2, True),
    "avg_pool2d_ceil_past_end": lambda m, F: F.avg_pool2d(_r(m, 1, 1, 3, 2), 3, 2, 0, True),
    "layer_norm_empty_rows": lambda m, F: F.layer_norm(m.ones(2, 0), (0,)),
    "interpolate_area_to_0": lambda m, F: F.interpolate(_r(m, 1, 1, 4, 3), size=0, mode="area"),
    "pad_nothing_0d": lambda m, F: F.pad(m.tensor(1.5), ()),
    "cumsum_bool_0d": lambda m, F: m.tensor(True).cumsum_(0),
    "exponential_int_empty": lambda m, F: m.zeros(0, 3, dtype=m.int64).exponential_(),
    # computes where PyTorch raises
    "pad_constant_crop_below_0": lambda m, F: F.pad(_r(m, 1, 1, 1), (-2, -2)),
    "pad_reflect_to_0": lambda m, F: F.pad(_r(m, 1, 2, 4), (-2, -2), mode="reflect"),
    "pad_replicate_to_0": lambda m, F: F.pad(_r(m, 2, 4), (-4, 0), mode="replicate"),
    "pad_circular_crop_below_0": lambda m, F: F.pad(_r(m, 2, 4), (-5, 0), mode="circular"),
    "pad_reflect_bool": lambda m, F: F.pad(m.ones(1, 2, 4, dtype=m.bool), (1, 1), mode="reflect"),
    "conv2d_no_out_channels": lambda m, F: F.conv2d(_r(m, 1, 2, 4, 3), m.ones(0, 2, 2, 2)),
    "max_unpool_bad_size": lambda m, F: F.max_unpool2d(
        *F.max_pool2d(_r(m, 1, 1, 4, 4), 2, return_indices=True), 2, output_size=(9, 9)
    ),
    "exponential_int": lambda m, F: m.zeros(2, dtype=m.int64).exponential_(),
    "random_complex": lambda m, F: m.zeros(2, dtype=m.complex64).random_(1, 2),
    "bernoulli_complex": lambda m, F: m.zeros(2, dtype=m.complex64).bernoulli_(0.5),
    "cumsum_bool": lambda m, F: m.tensor([True, False]).cumsum_(0),
    # error classes
    "conv2d_bias_size": lambda m, F: F.conv2d(_r(m, 1, 2, 4, 4), m.ones(3, 2, 2, 2), m.ones(2)),
    "conv1d_bias_size": lambda m, F: F.conv1d(_r(m, 1, 2, 4), m.ones(3, 2, 2), m.ones(2)),
    "conv_transpose2d_output_padding": lambda m, F: F.conv_transpose2d(
        _r(m, 1, 2, 3, 3), m.ones(2, 3, 2, 2), stride=1, output_padding=1
    ),
    "adaptive_avg_pool2d_empty_plane": lambda m, F: F.adaptive_avg_pool2d(m.ones(1, 2, 5, 0), 2),
    "interpolate_2d_input": lambda m, F: F.interpolate(_r(m, 2, 3), scale_factor=2),
    "glu_0d": lambda m, F: F.glu(m.tensor(1.0)),
    "batch_norm_1d": lambda m, F: F.batch_norm(_r(m, 3), m.zeros(3), m.ones(3)),
    "unfold_kernel_too_big": lambda m, F: F.unfold(_r(m, 1, 1, 3, 3), 4),
    "trace_bool_0d": lambda m, F: m.tensor(True).trace(),
}


@pytest.mark.parametrize("name", list(_EDGES))
def test_edges_as_torch(name):
    _same(lambda m: _EDGES[name](m, m.nn.functional), rtol=1e-5)


def test_max_pool2d_ceil_mode_window_past_the_input_gradient():
    got = []
    for m in (torch, descent):
        x = _r(m, 1, 2, 5, 4).detach().requires_grad_(True)
        y = m.nn.functional.max_pool2d(x, 3, 2, 0, 2, ceil_mode=True)
        (y * m.tensor([[[[2.0]], [[-1.0]]]])).sum().backward()
        got.append(x.grad.numpy())
    np.testing.assert_array_equal(got[1], got[0])
