"""Disagreements with PyTorch found by running real PyTorch programs on descent
(tests/compat/programs), second file: each test compares with torch 2.13 on the case that failed.

- torch.flip / fliplr / flipud / rot90 and torch.diag of a matrix copy; descent returned NumPy's
  views, so timm's mixup (`x_flipped = x.flip(0).mul_(1 - lam); x.mul_(lam).add_(x_flipped)`,
  probed for convnext_droppath) silently scaled the batch itself and mixed wrong images.
- load_state_dict(strict=False)'s result printed as `IncompatibleKeys(...)`, PyTorch's as
  `_IncompatibleKeys(...)` (Swin's and MAE's loaders print it).
- x.expand_as(x) / x.expand(1, *x.shape) repeat nothing and PyTorch writes through them; descent
  refused them as read-only (NumPy's broadcast_to).
- zeros_like / ones_like / empty_like / full_like refused memory_format= and layout= (custom
  optimizers' `torch.zeros_like(p, memory_format=torch.preserve_format)`) and did not preserve
  channels_last.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

COPYING = {
    "flip": lambda m, x: m.flip(x, [0]),
    "flip_method_2d": lambda m, x: x.flip(0, 1),
    "fliplr": lambda m, x: m.fliplr(x),
    "flipud": lambda m, x: x.flipud(),
    "rot90": lambda m, x: m.rot90(x, 1, [0, 1]),
    "rot90_2": lambda m, x: x.rot90(2),
    "rot90_3": lambda m, x: m.rot90(x, -1, [1, 0]),
    "diag": lambda m, x: m.diag(x),
    "diag_offset": lambda m, x: x.diag(1),
    "diag_neg_offset": lambda m, x: m.diag(x, -1),
}


@pytest.mark.parametrize("name", sorted(COPYING))
def test_copying_ops_do_not_alias_their_input(name):
    """An in-place op on the result leaves the input alone, and the values are torch's."""
    results = []
    for m in (torch, ds):
        x = m.arange(12, dtype=m.float32).reshape(3, 4)
        y = COPYING[name](m, x)
        before = y.tolist()
        y.mul_(10.0).add_(1.0)
        results.append((before, y.tolist(), x.tolist()))
    assert results[1] == results[0]
    assert results[1][2] == np.arange(12.0).reshape(3, 4).tolist()


def test_mixup_in_place_pattern_values_and_gradients_match_torch():
    """timm's Mixup._mix_batch on a non-leaf batch, then backward into the leaf."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 3)).astype(np.float32)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    lam = 0.3
    results = []
    for m in (torch, ds):
        leaf = m.tensor(x0, requires_grad=True)
        x = leaf * 2.0
        x_flipped = x.flip(0).mul_(1.0 - lam)
        x.mul_(lam).add_(x_flipped)
        (x * m.from_numpy(g)).sum().backward()
        results.append((np.array(x.tolist()), np.array(leaf.grad.tolist())))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6, atol=1e-7)
    expected = 2 * (lam * x0 + (1 - lam) * x0[::-1])
    np.testing.assert_allclose(results[1][0], expected, rtol=1e-6)


def test_flip_and_diag_edge_cases_match_torch():
    for m_args in (((), [0]), ((0, 3), [0]), ((2, 0), [1])):
        shape, dims = m_args
        t = torch.ones(shape).flip(dims)
        d = ds.ones(shape).flip(dims)
        assert tuple(d.shape) == tuple(t.shape) and d.tolist() == t.tolist()
    for shape, k in (((0, 3), 0), ((2, 3), 5), ((2, 3), -4), ((3, 1), 0)):
        t = torch.diag(torch.ones(shape), k)
        d = ds.diag(ds.ones(shape), k)
        assert tuple(d.shape) == tuple(t.shape) and d.tolist() == t.tolist()
    for m in (torch, ds):
        with pytest.raises(TypeError, match="multiple values for argument 'dims'"):
            m.ones(2, 2).flip(0, dims=1)
    # a view stays a view: torch.diagonal writes through, as PyTorch's
    x = ds.zeros(2, 2)
    x.diagonal().add_(1.0)
    assert x.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_diag_of_matrix_gradient_matches_torch():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    grads = []
    for m in (torch, ds):
        x = m.tensor(w, requires_grad=True)
        (m.diag(x, 1) * m.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[1] == grads[0]


def test_incompatible_keys_repr_matches_torch():
    reprs = []
    for m in (torch, ds):
        lin = m.nn.Linear(2, 2)
        state = lin.state_dict()
        del state["bias"]
        state["extra"] = m.zeros(1)
        msg = lin.load_state_dict(state, strict=False)
        reprs.append((repr(msg), str(msg), list(msg.missing_keys), list(msg.unexpected_keys)))
        reprs.append(repr(lin.load_state_dict(lin.state_dict())))
    assert reprs[2:] == reprs[:2]


def test_expand_without_repeats_is_a_writable_view_as_torch():
    """x.expand_as(x) and x.expand(1, *x.shape) repeat nothing: PyTorch writes through them
    (descent refused: NumPy's broadcast_to is always read-only); a real repeat still refuses."""
    results = []
    for m in (torch, ds):
        x = m.zeros(2, 3)
        x.expand(1, 2, 3).add_(1.0)
        x.expand_as(x).mul_(3.0)
        x.expand(-1, 3)[0].sub_(1.0)
        s = m.tensor(5.0)
        s.expand(()).add_(1.0)  # 0-d
        leaf = m.ones(2, 3, requires_grad=True)
        b = leaf * 1.0
        b.expand(1, 2, 3).mul_(2.0)  # recorded: the gradient flows through the write
        (b * m.arange(6.0).view(2, 3)).sum().backward()
        with pytest.raises(RuntimeError, match="more than one element"):
            m.zeros(1, 3).expand(2, 3).add_(1.0)
        results.append((x.tolist(), s.item(), leaf.grad.tolist()))
    assert results[1] == results[0]


def test_like_factories_take_memory_format_and_layout():
    """torch.zeros_like(p, memory_format=torch.preserve_format), as custom optimizers write
    their state; channels_last is preserved by default, as in PyTorch."""
    for m in (torch, ds):
        x = m.ones(2, 3, 4, 5).to(memory_format=m.channels_last)
        for f, args in ((m.zeros_like, ()), (m.ones_like, ()), (m.empty_like, ()),
                        (m.full_like, (2.0,))):  # fmt: skip
            assert f(x, *args, memory_format=m.preserve_format).stride() == (60, 1, 15, 3)
            assert f(x, *args).stride() == (60, 1, 15, 3)
            assert f(x, *args, memory_format=m.contiguous_format).stride() == (60, 20, 5, 1)
            assert f(x, *args, layout=m.strided).shape == x.shape
        y = m.zeros_like(m.ones(2, dtype=m.float64), dtype=m.float32,
                         memory_format=m.preserve_format)  # fmt: skip
        assert (str(y.dtype).rpartition(".")[2], y.tolist()) == ("float32", [0.0, 0.0])
        with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last"):
            m.zeros_like(m.ones(2), memory_format=m.channels_last)


def test_underscore_assert_as_torch():
    """timm's `_assert(H == self.img_size[0], f"Input height ({H}) doesn't match ...")`."""
    for m in (torch, ds):
        m._assert(True, "unused")
        m._assert(m.tensor(True), "unused")
        for cond in (False, 0, m.tensor(False)):
            with pytest.raises(AssertionError, match=r"^Input height \(3\) doesn't match$"):
                m._assert(cond, "Input height (3) doesn't match")
        with pytest.raises(RuntimeError, match="ambiguous"):
            m._assert(m.tensor([True, False]), "m")
