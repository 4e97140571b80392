"""Session 19: a second backward() through freed saved values, against PyTorch 2.13, for the
ops the OpInfo survey (tests/second_backward_survey.py) still found different after session 18.

A node raises "a second time" when PyTorch's node for the public op saved a tensor (nextafter's
self and other, frexp's exponent, real angle's self, the indices of sort / max(dim) / cummax of
a 0-d tensor, fft of a real input's self, the index of index_copy / put / index_put, the mask
of masked_scatter, every x[i] = v: CopySlices); it runs again where PyTorch's saves nothing
(fill, diag_embed, an einsum of one operand, the linear interpolation modes, index_add with a
constant source, select/slice/diagonal_scatter). Each case runs in both libraries with
retain_graph False and True, then backward again: both raise or neither, and the accumulated
gradients agree (tests/test_autograd_s18.py's harness).
"""

import warnings

import numpy as np
import pytest
import torch

import descent


def _interp(M, x, mode, **kw):
    return M.nn.functional.interpolate(x, mode=mode, **kw)


def _setitem(x, index, value):
    """(x's clone with clone[index] = value).sum()"""
    c = x.clone()
    c[index] = value
    return c.sum()


def _inplace(x, f):
    """(x's clone after the in-place f(clone)).sum()"""
    c = x.clone()
    f(c)
    return c.sum()


# name -> f(M, x, y) with M the library (torch or descent), x and y (3, 4) float64 leaves
CASES = {
    # saved by PyTorch, not by descent before
    "nextafter": lambda M, x, y: M.nextafter(x, y).sum(),
    "nextafter_const_other": lambda M, x, y: M.nextafter(x, y.detach()).sum(),
    "frexp": lambda M, x, y: M.frexp(x)[0].sum(),
    "angle_real": lambda M, x, y: (M.angle(x) + x).sum(),
    # a 0-d input: PyTorch's node saves the index 0 (or self) even then
    "adaptive_avg_pool3d": lambda M, x, y: M.nn.functional.adaptive_avg_pool3d(
        x.reshape(1, 1, 2, 2, 3), (1, 2, 2)
    ).sum(),
    "adaptive_avg_pool3d_empty": lambda M, x, y: M.nn.functional.adaptive_avg_pool3d(
        x.reshape(1, 1, 2, 2, 3)[:0], (1, 2, 2)
    ).sum(),
    "to_sparse_to_dense": lambda M, x, y: x.to_sparse().to_dense().sum(),  # (ToDense: self)
    "to_sparse_csr_to_dense": lambda M, x, y: x.to_sparse_csr().to_dense().sum(),
    "to_sparse_csc_to_dense": lambda M, x, y: x.to_sparse_csc().to_dense().sum(),
    "sparse_csc_values": lambda M, x, y: x.to_sparse_csc().values().sum(),
    "sparse_coo_values": lambda M, x, y: x.to_sparse().coalesce().values().sum(),
    # index_add reads its index for the source's gradient only (IndexAddBackward0)
    "index_add_const_source": lambda M, x, y: x.index_add(
        0, M.tensor([0, 2]), y.detach()[:2]
    ).sum(),
    "index_add": lambda M, x, y: x.index_add(0, M.tensor([0, 2]), y[:2]).sum(),
    # x[i] = v: PyTorch's CopySlices (through a view) or index_put_ / masked_fill_ save; x[:] = v
    # and x[...] = v are copy_ into x itself, which saves nothing
    "setitem_row": lambda M, x, y: _setitem(x, 1, y[0]),
    "setitem_column": lambda M, x, y: _setitem(x, (slice(None), 1), y[:, 0]),
    "setitem_const": lambda M, x, y: _setitem(x, 1, 2.0),
    "setitem_list": lambda M, x, y: _setitem(x, [0, 2], y[0]),
    "setitem_mask": lambda M, x, y: _setitem(x, x.detach() > 0, 1.0),
    "setitem_all": lambda M, x, y: _setitem(x, slice(None), y),
    "setitem_ellipsis": lambda M, x, y: _setitem(x, Ellipsis, y[0]),
    "setitem_none": lambda M, x, y: _setitem(x, None, y),
    "row_add_": lambda M, x, y: _inplace(x, lambda c: c[1].add_(y[0])),
    "row_fill_": lambda M, x, y: _inplace(x, lambda c: c[1].fill_(2.0)),
    "fill_": lambda M, x, y: _inplace(x, lambda c: c.fill_(2.0)),
    "copy_": lambda M, x, y: _inplace(x, lambda c: c.copy_(y)),
    "index_copy": lambda M, x, y: x.index_copy(0, M.tensor([0, 2]), y[:2]).sum(),
    "index_copy_const_source": lambda M, x, y: x.index_copy(
        0, M.tensor([0, 2]), y.detach()[:2]
    ).sum(),
    "index_copy_": lambda M, x, y: _inplace(x, lambda c: c.index_copy_(0, M.tensor([1]), y[:1])),
    "index_put": lambda M, x, y: x.index_put((M.tensor([0, 2]),), y[0]).sum(),
    "index_put_const_values": lambda M, x, y: x.index_put((M.tensor([0, 2]),), y[0].detach()).sum(),
    "index_put_": lambda M, x, y: _inplace(x, lambda c: c.index_put_((M.tensor([1]),), y[0])),
    "put": lambda M, x, y: x.put(M.tensor([0, 5]), y[0, :2]).sum(),
    "put_": lambda M, x, y: _inplace(x, lambda c: c.put_(M.tensor([0, 5]), y[0, :2])),
    "masked_scatter": lambda M, x, y: x.masked_scatter(x.detach() > 0, y).sum(),
    "select_scatter": lambda M, x, y: x.select_scatter(y[0], 0, 1).sum(),
    "slice_scatter": lambda M, x, y: x.slice_scatter(y[:2], 0, 1).sum(),
    "diagonal_scatter": lambda M, x, y: x.diagonal_scatter(y[0, :3]).sum(),
    # (x detached: torch 2.13's gradient to x is 1 at the scattered places and 0 elsewhere,
    # the complement of d/dx, which descent gives)
    "as_strided_scatter": lambda M, x, y: x.detach().as_strided_scatter(y[0, :3], (3,), (5,)).sum(),
    "diagflat": lambda M, x, y: M.diagflat(y[0]).sum(),
    "fill_value": lambda M, x, y: M.fill(x, 2.0).sum(),
    "fill_tensor": lambda M, x, y: M.fill(x, y[0, 0]).sum(),
    # global adaptive average pooling is PyTorch's mean (saves nothing)
    "adaptive_avg_pool2d_global": lambda M, x, y: M.nn.functional.adaptive_avg_pool2d(
        x[None], 1
    ).sum(),
    "adaptive_avg_pool1d_global": lambda M, x, y: M.nn.functional.adaptive_avg_pool1d(x, 1).sum(),
    "adaptive_avg_pool3d_global": lambda M, x, y: M.nn.functional.adaptive_avg_pool3d(
        x[None, None], 1
    ).sum(),
    "adaptive_avg_pool2d_rows": lambda M, x, y: M.nn.functional.adaptive_avg_pool2d(
        x[None], (3, 1)
    ).sum(),
    "sort_0d": lambda M, x, y: M.sort(x[0, 0])[0],
    "topk_0d": lambda M, x, y: M.topk(x[0, 0], 1)[0],
    "max_dim_0d": lambda M, x, y: M.max(x[0, 0], 0)[0],
    "min_dim_0d": lambda M, x, y: M.min(x[0, 0], 0, True)[0],
    "median_dim_0d": lambda M, x, y: M.median(x[0, 0], 0)[0],
    "kthvalue_0d": lambda M, x, y: M.kthvalue(x[0, 0], 1, 0)[0],
    "mode_0d": lambda M, x, y: M.mode(x[0, 0], 0)[0],
    "cummax_0d": lambda M, x, y: M.cummax(x[0, 0], 0)[0],
    "cummin_0d": lambda M, x, y: M.cummin(x[0, 0], 0)[0],
    "logcumsumexp_0d": lambda M, x, y: M.logcumsumexp(x[0, 0], 0),
    "cumsum_0d": lambda M, x, y: M.cumsum(x[0, 0], 0),  # (saves nothing: runs again)
    # fft / ifft of a real input: PyTorch's two-sided r2c transform saves self
    "fft_real": lambda M, x, y: M.view_as_real(M.fft.fft(x)).sum(),
    "ifft_real": lambda M, x, y: M.view_as_real(M.fft.ifft(x, n=6).resolve_conj()).sum(),
    "fft2_real": lambda M, x, y: M.view_as_real(M.fft.fft2(x)).sum(),  # c2c: runs again
    "fft_complex": lambda M, x, y: M.view_as_real(M.fft.fft(M.complex(x, y) * 1)).sum(),
    # an einsum of one operand saves nothing (PyTorch: a sum or permute), of two it does
    "einsum_sum": lambda M, x, y: M.einsum("ij->i", x).sum(),
    "einsum_total": lambda M, x, y: M.einsum("ij->", x),
    "einsum_permute": lambda M, x, y: M.einsum("ij->ji", x).sum(),
    "einsum_diag": lambda M, x, y: M.einsum("ii->i", x[:, :3]).sum(),
    "einsum_two": lambda M, x, y: M.einsum("ij,kj->ik", x, y).sum(),
    # composites over constants PyTorch's node does not save: they run again
    "diag_embed": lambda M, x, y: M.diag_embed(x).sum(),
    "diag_embed_offset": lambda M, x, y: M.diag_embed(x, offset=-2, dim1=0, dim2=2).sum(),
    "linear": lambda M, x, y: _interp(M, x[None], "linear", scale_factor=1.5).sum(),
    "bilinear": lambda M, x, y: _interp(M, x[None, None], "bilinear", size=(5, 3)).sum(),
    "bilinear_corners": lambda M, x, y: _interp(
        M, x[None, None], "bilinear", scale_factor=2, align_corners=True
    ).sum(),
    "bicubic": lambda M, x, y: _interp(M, x[None, None], "bicubic", size=(4, 7)).sum(),
    "bilinear_antialias": lambda M, x, y: _interp(
        M, x[None, None], "bilinear", size=(2, 2), antialias=True
    ).sum(),
    "trilinear": lambda M, x, y: _interp(M, x[None, None, None], "trilinear", size=(2, 4, 5)).sum(),
    "upsample_bilinear": lambda M, x, y: M.nn.functional.upsample_bilinear(
        x[None, None], scale_factor=2
    ).sum(),
    "bilinear_then_mul": lambda M, x, y: (
        _interp(M, x[None, None], "bilinear", size=(5, 3)) * 2
    ).sum(),
}


def _leaves(M, seed_x=1, seed_y=2):
    def leaf(seed):
        a = np.random.default_rng(seed).standard_normal((3, 4))
        return M.tensor(a, dtype=M.float64, requires_grad=True)

    return leaf(seed_x), leaf(seed_y)


def _run(M, name, retain):
    """(raised on the second backward, x.grad, y.grad) for one library."""
    x, y = _leaves(M)
    with warnings.catch_warnings():  # (PyTorch's "Sparse CSR tensor support is in beta")
        warnings.simplefilter("ignore", UserWarning)
        out = CASES[name](M, x, y)
    out.backward(retain_graph=retain)
    try:
        out.backward()
        raised = None
    except RuntimeError as e:
        raised = str(e)
    grads = [None if t.grad is None else t.grad.detach().numpy(force=True).copy() for t in (x, y)]
    return raised, grads


@pytest.mark.parametrize("retain", [False, True], ids=["freed", "retained"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_second_backward_as_torch(name, retain):
    t_raised, t_grads = _run(torch, name, retain)
    d_raised, d_grads = _run(descent, name, retain)
    assert (t_raised is None) == (d_raised is None), (
        f"{name}: torch {'raises' if t_raised else 'runs'}, descent "
        f"{'raises: ' + d_raised if d_raised else 'runs'}"
    )
    if t_raised is not None:
        assert "second time" in t_raised and "second time" in d_raised
    for tg, dg in zip(t_grads, d_grads):
        assert (tg is None) == (dg is None)
        if tg is not None:
            np.testing.assert_allclose(dg, tg, rtol=1e-12, atol=1e-12)
