"""Session 18: a second backward() through a graph whose saved values were freed, against
PyTorch 2.13 op by op.

PyTorch raises "Trying to backward through the graph a second time" as soon as the second
pass reaches a node whose saved tensors the first pass (without retain_graph) freed. Which
nodes save a tensor is PyTorch's per-op choice: `x * 2` saves the wrapped number 2 as a tensor
(MulBackward0) and raises, while `add(x, y, alpha=2)`, trapezoid or lerp with a scalar weight
keep their numbers as numbers and run again; gather, sort or `x[[0, 2]]` save their indices
and raise, `x[1]` and `x.view(-1)` save nothing and run again. Each case runs in both
libraries with retain_graph False and True, then backward again: both raise or neither, and
the accumulated gradients agree.
"""

import numpy as np
import pytest
import torch

import descent

# name -> f(M, x, y) with M the library (torch or descent), x and y (3, 4) float64 leaves
CASES = {
    # scalar operands: PyTorch's Python-level x * c / x / c save c as a tensor
    "mul_int": lambda M, x, y: (x * 2).sum(),
    "mul_float": lambda M, x, y: (x * 2.5).sum(),
    "rmul": lambda M, x, y: (2.5 * x).sum(),
    "mul_method": lambda M, x, y: x.mul(3.0).sum(),
    "mul_bool": lambda M, x, y: (x * True).sum(),
    "div_float": lambda M, x, y: (x / 2.5).sum(),
    "div_int": lambda M, x, y: (x / 2).sum(),
    "true_divide": lambda M, x, y: M.true_divide(x, 3.0).sum(),
    "rdiv": lambda M, x, y: (2.5 / x).sum(),
    "sum_then_mul": lambda M, x, y: x.sum() * 2,
    "mean_then_mul": lambda M, x, y: x.mean() * 2.5,
    "add_then_mul": lambda M, x, y: ((x + 1) * 2).sum(),
    "transpose_mul": lambda M, x, y: (x.t() * 3).sum(),
    "mul_0d_tensor": lambda M, x, y: (x * M.tensor(2.5, dtype=M.float64)).sum(),
    # scalar operands that PyTorch keeps as numbers: a second backward runs again
    "add_scalar": lambda M, x, y: (x + 2.5).sum(),
    "sub_scalar": lambda M, x, y: (x - 2.5).sum(),
    "rsub_scalar": lambda M, x, y: (2.5 - x).sum(),
    "neg": lambda M, x, y: (-x).sum(),
    "add_alpha": lambda M, x, y: M.add(x, y, alpha=2.5).sum(),
    "sub_alpha": lambda M, x, y: M.sub(x, y, alpha=2.5).sum(),
    "add_scalar_alpha": lambda M, x, y: M.add(x, 2.0, alpha=3).sum(),
    "method_add_alpha": lambda M, x, y: x.add(y, alpha=0.5).sum(),
    "rsub_alpha": lambda M, x, y: M.rsub(x, y, alpha=2).sum(),
    "trapezoid": lambda M, x, y: M.trapezoid(x).sum(),
    "trapezoid_dx": lambda M, x, y: M.trapezoid(x, dx=0.5).sum(),
    "trapezoid_x": lambda M, x, y: M.trapezoid(x, y).sum(),
    "cumulative_trapezoid": lambda M, x, y: M.cumulative_trapezoid(x, dx=0.5).sum(),
    "gradient": lambda M, x, y: M.gradient(x, spacing=0.5)[0].sum(),
    "gradient_order2": lambda M, x, y: M.gradient(x, dim=1, edge_order=2)[0].sum(),
    "deg2rad": lambda M, x, y: M.deg2rad(x).sum(),
    "rad2deg": lambda M, x, y: M.rad2deg(x).sum(),
    "lerp_scalar": lambda M, x, y: M.lerp(x, y, 0.3).sum(),
    "matrix_power_0": lambda M, x, y: M.linalg.matrix_power(x[:, :3], 0).sum(),
    # ops that save tensors either way
    "pow2": lambda M, x, y: x.pow(2).sum(),
    "pow_tensor": lambda M, x, y: x.abs().pow(y).sum(),
    "rpow": lambda M, x, y: (2.0**x).sum(),
    "mul": lambda M, x, y: (x * y).sum(),
    "div": lambda M, x, y: (x / y).sum(),
    "exp": lambda M, x, y: x.exp().sum(),
    "addmm": lambda M, x, y: M.addmm(x[:, :3], x, y.t()[:, :3], beta=0.5, alpha=2.0).sum(),
    "addmv": lambda M, x, y: M.addmv(x[:, 0], x, y[0], beta=0.5, alpha=2.0).sum(),
    "lerp_tensor": lambda M, x, y: M.lerp(x, y, y.detach()).sum(),
    "clamp": lambda M, x, y: x.clamp(-0.5, 0.5).sum(),
    "where": lambda M, x, y: M.where(x > 0, x, y).sum(),
    "addcmul": lambda M, x, y: M.addcmul(x, x, y, value=0.5).sum(),
    # ops that save nothing
    "add": lambda M, x, y: (x + y).sum(),
    "sum": lambda M, x, y: x.sum(),
    "mean": lambda M, x, y: x.mean(),
    "view": lambda M, x, y: x.view(-1).sum(),
    "basic_index": lambda M, x, y: x[1].sum(),
    "slice_none": lambda M, x, y: x[:, None, 1:3].sum(),
    "cat": lambda M, x, y: M.cat([x, y]).sum(),
    "diag": lambda M, x, y: x[:3, :3].diag().sum(),
    "diagonal": lambda M, x, y: x.diagonal().sum(),
    "trace": lambda M, x, y: x[:3, :3].trace(),
    "unfold": lambda M, x, y: x.unfold(1, 2, 1).sum(),
    "repeat_interleave": lambda M, x, y: x.repeat_interleave(2, dim=0).sum(),
    "nearest": lambda M, x, y: M.nn.functional.interpolate(x[None], scale_factor=2).sum(),
    # indices saved by PyTorch: a second backward raises
    "adv_index": lambda M, x, y: x[[0, 2]].sum(),
    "mask_index": lambda M, x, y: x[x > 0].sum(),
    "masked_select": lambda M, x, y: x.masked_select(y > 0).sum(),
    "gather": lambda M, x, y: x.gather(1, M.tensor([[0], [1], [2]])).sum(),
    "take_along_dim": lambda M, x, y: M.take_along_dim(x, M.tensor([[0], [1], [2]]), 1).sum(),
    "index_select": lambda M, x, y: x.index_select(0, M.tensor([0, 2])).sum(),
    "take": lambda M, x, y: x.take(M.tensor([0, 5])).sum(),
    "sort": lambda M, x, y: x.sort(1)[0].sum(),
    "topk": lambda M, x, y: x.topk(2)[0].sum(),
    "max_dim": lambda M, x, y: x.max(0)[0].sum(),
    "kthvalue": lambda M, x, y: x.kthvalue(2, 1)[0].sum(),
    "scatter_add": lambda M, x, y: (
        M.zeros(3, 4, dtype=M.float64)
        .scatter_add(1, M.tensor([[0, 1], [1, 2], [2, 3]]), x[:, :2])
        .sum()
    ),
    "index_add": lambda M, x, y: x.index_add(0, M.tensor([0, 2]), y[:2], alpha=2.0).sum(),
    "embedding": lambda M, x, y: M.nn.functional.embedding(M.tensor([0, 2, 2]), x).sum(),
    "median": lambda M, x, y: x.median(),
    "nanmedian": lambda M, x, y: x.nanmedian(),
    "nansum": lambda M, x, y: x.nansum(),
    "avg_pool2d": lambda M, x, y: M.nn.functional.avg_pool2d(x[None, None], 2).sum(),
    "avg_pool1d": lambda M, x, y: M.nn.functional.avg_pool1d(x[None], 2).sum(),
    "max_unpool1d": lambda M, x, y: M.nn.functional.max_unpool1d(
        x[None], M.tensor([[[0, 2, 4, 6]] * 3]), 2
    ).sum(),
    # saved only for the divisor's gradient (PyTorch's FmodBackward1 / RemainderBackward1)
    "fmod_scalar": lambda M, x, y: M.fmod(x, 1.5).sum(),
    "remainder_scalar": lambda M, x, y: M.remainder(x, 1.5).sum(),
    "fmod_const": lambda M, x, y: M.fmod(x, y.detach().abs() + 1).sum(),
    "fmod_both": lambda M, x, y: M.fmod(x, y.abs() + 1).sum(),
    "remainder_both": lambda M, x, y: M.remainder(x, y.abs() + 1).sum(),
    # constant padding saves nothing, the other modes their input
    "pad_constant": lambda M, x, y: M.nn.functional.pad(x, (1, 1)).sum(),
    "pad_value": lambda M, x, y: M.nn.functional.pad(x, (1, 2, 0, 1), value=2.0).sum(),
    "pad_reflect": lambda M, x, y: M.nn.functional.pad(x[None], (1, 1), mode="reflect").sum(),
    "block_diag": lambda M, x, y: M.block_diag(x, y).sum(),
    # complex and FFT nodes that save their inputs in PyTorch
    "rfft": lambda M, x, y: M.view_as_real(M.fft.rfft(x)).sum(),
    "irfft": lambda M, x, y: M.fft.irfft(M.complex(x, y).detach() + x).sum(),
    "complex": lambda M, x, y: M.view_as_real(M.complex(x, y)).sum(),
    "sgn": lambda M, x, y: (x.sgn() + x).sum(),  # (+ x: a .grad that is no ZeroTensor)
    "sign": lambda M, x, y: x.sign().sum(),
}


def _leaves(M, seed_x=1, seed_y=2):
    def leaf(seed):
        a = np.random.default_rng(seed).standard_normal((3, 4))
        return M.tensor(a, dtype=M.float64, requires_grad=True)

    return leaf(seed_x), leaf(seed_y)


def _run(M, name, retain):
    """(raised on the second backward, x.grad, y.grad) for one library."""
    x, y = _leaves(M)
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


def test_freed_message_names_the_node_and_retain_graph():
    x = descent.tensor([1.0, 2.0], requires_grad=True)
    out = (x * 2).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        out.backward()


def test_composite_scaling_nodes_have_torch_names():
    """A composite op's scaling by a number is PyTorch's MulBackward1 / DivBackward1 (the
    Scalar overloads, which keep the number), not the user's MulBackward0 / DivBackward0."""
    x = descent.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    from descent.ops.arithmetic import scale, scale_div

    assert scale(x, 0.5).grad_fn.name() == "MulBackward1"
    assert scale_div(x, 3).grad_fn.name() == "DivBackward1"
    assert descent.trapezoid(x).grad_fn.name() == "DivBackward1"
    assert (x * 0.5).grad_fn.name() == "MulBackward0"
    assert (x / 3).grad_fn.name() == "DivBackward0"


def _double_backward(M, first_y):
    """y = sum((2.5 x)^2); g = dy/dx with create_graph; then y.backward() and d(sum g)/dx in
    the given order: (which raised, x.grad)."""
    x = M.tensor([1.0, 2.0], dtype=M.float64, requires_grad=True)
    y = ((x * 2.5) ** 2).sum()
    (g,) = M.autograd.grad(y, x, create_graph=True)
    steps = [lambda: y.backward(), lambda: M.autograd.grad(g.sum(), x)]
    raised = []
    for k, step in enumerate(steps if first_y else steps[::-1]):
        try:
            step()
        except RuntimeError as e:
            assert "second time" in str(e)
            raised.append(k)
    return raised, None if x.grad is None else x.grad.detach().numpy()


@pytest.mark.parametrize("first_y", [True, False])
def test_double_backward_then_second_pass_as_torch(first_y):
    """The create_graph pass shares the forward nodes (the scalar multiply, the square's saved
    input): whichever pass runs second without retain_graph raises, in both libraries."""
    t_raised, t_grad = _double_backward(torch, first_y)
    d_raised, d_grad = _double_backward(descent, first_y)
    assert d_raised == t_raised
    if t_grad is None:
        assert d_grad is None
    else:
        np.testing.assert_allclose(d_grad, t_grad)


@pytest.mark.parametrize("lib", [torch, descent], ids=["torch", "descent"])
def test_fmod_dividend_changed_in_place_is_no_error(lib):
    """fmod(x, c) saves nothing for x's gradient: changing x in place afterwards is no error
    (a tensor divisor that requires grad would be read: then it is)."""
    x = lib.tensor([1.0, 2.5], requires_grad=True)
    h = x * 1.0
    out = lib.fmod(h, 1.5).sum()
    h.add_(1)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
    y = lib.tensor([1.5, 1.5], requires_grad=True)
    h = x * 1.0
    out = lib.fmod(h, y).sum()
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified"):
        out.backward()


# ---------------------------------------------------------------------------------------------
# x[i] = x through a None index (view fuzz programs 40000558-style): PyTorch's copy_to copies
# v as it is when the shapes match (the same view: a full overlap, no error), else v with its
# leading 1s dropped and expanded (a partial overlap: an error). NumPy's stride 0 for None must
# not count.

_NONE_SETITEM = [
    ((1,), lambda L: (None, -1)),
    ((1,), lambda L: (None, 0)),
    ((), lambda L: None),
    ((), lambda L: (None, None)),
    ((1, 1), lambda L: (None, 0)),
    ((1, 1), lambda L: (0, None)),
    ((1,), lambda L: (None, slice(None))),
    ((2,), lambda L: (None, slice(None))),
    ((1,), lambda L: None),
    ((2,), lambda L: None),
    ((1,), lambda L: (None, 0, None)),
    ((1,), lambda L: (0, None)),
    ((1, 2), lambda L: (None, 0)),
    ((2, 1), lambda L: (slice(None), None, 0)),
    ((1,), lambda L: (None, L.tensor([True]))),
    ((3,), lambda L: (None, L.tensor([0, 1, 2]))),
]


def _none_setitem(L, shape, index, rg):
    n = int(np.prod(shape)) if shape else 1
    x = L.arange(1.0, n + 1, dtype=L.float64).reshape(shape)
    if rg:
        x = x.requires_grad_().clone()
    try:
        x[index(L)] = x
    except RuntimeError:
        return "raises"
    return x.tolist()


@pytest.mark.parametrize("rg", [False, True], ids=["plain", "recorded"])
@pytest.mark.parametrize("k", range(len(_NONE_SETITEM)))
def test_setitem_from_itself_through_none_as_torch(k, rg):
    shape, index = _NONE_SETITEM[k]
    assert _none_setitem(descent, shape, index, rg) == _none_setitem(torch, shape, index, rg)


# ---------------------------------------------------------------------------------------------
# Inference tensors (session 17's leftovers), as tests/test_autograd_s17.py compares them: the
# outcome and PyTorch's message


def _inf_index(L):
    with L.inference_mode():
        return L.tensor([0, 2])


def _setitem_inference_index(L):
    x = L.ones(3, dtype=L.float64, requires_grad=True).clone()
    x[_inf_index(L)] = L.ones(2, dtype=L.float64, requires_grad=True)
    return x


def _set_on_inference(L, *args):
    """set_ on an inference tensor outside inference_mode: PyTorch takes the new memory, then
    raises."""
    with L.inference_mode():
        t = L.arange(1.0, 4.0, dtype=L.float64)
    try:
        t.set_(*args)
        outcome = "ok"
    except RuntimeError as e:
        outcome = str(e)
    return outcome, t.tolist()


def _set_inside(L):
    with L.inference_mode():
        t = L.ones(3, dtype=L.float64)
        t.set_(L.zeros(2, dtype=L.float64))
        return t.tolist()


_INFERENCE = {
    "set_": lambda L: _set_on_inference(L, L.zeros(2, dtype=L.float64)),
    "set_empty": lambda L: _set_on_inference(L),
    "set_inside": _set_inside,
    "set_from_inference": lambda L: _set_from_inference(L),
    "put_index_self": lambda L: L.ones(3, dtype=L.float64, requires_grad=True).put(
        _inf_index(L), L.ones(2, dtype=L.float64)
    ),
    "put_index_source": lambda L: L.zeros(3, dtype=L.float64).put(
        _inf_index(L), L.ones(2, dtype=L.float64, requires_grad=True)
    ),
    "put_no_grad": lambda L: L.zeros(3, dtype=L.float64).put(
        _inf_index(L), L.ones(2, dtype=L.float64)
    ),
    "index_copy_source": lambda L: L.zeros(3, dtype=L.float64).index_copy(
        0, _inf_index(L), L.ones(2, dtype=L.float64, requires_grad=True)
    ),
    "index_copy_self": lambda L: L.ones(3, dtype=L.float64, requires_grad=True).index_copy(
        0, _inf_index(L), L.ones(2, dtype=L.float64)
    ),
    "setitem_index": _setitem_inference_index,
}


def _set_from_inference(L):
    with L.inference_mode():
        s = L.arange(1.0, 4.0, dtype=L.float64)
    return L.zeros(2, dtype=L.float64).set_(s).tolist()


def _outcome(L, program):
    try:
        out = program(L)
    except Exception as e:  # noqa: BLE001 - the comparison is the point
        return type(e).__name__, str(e)
    if isinstance(out, L.Tensor):
        out = out.detach().tolist()
    return "ok", out


@pytest.mark.parametrize("name", sorted(_INFERENCE))
def test_inference_tensor_leftovers_as_torch(name):
    assert _outcome(descent, _INFERENCE[name]) == _outcome(torch, _INFERENCE[name])


def test_setitem_stride_zero_selection_of_one_element_is_a_partial_overlap_as_torch():
    """An expanded view's selection of one element has stride 0 in both libraries (expand's,
    not None's): against v's stride 1 it is a partial overlap (view fuzz program 42000922)."""
    res = []
    for L in (torch, descent):
        x = L.tensor([1.0], requires_grad=True)
        e = x.expand(2, 3)
        try:
            with L.no_grad():
                e[0, -3::3] = x.reshape(-1)
            res.append("ok")
        except RuntimeError:
            res.append("raises")
    assert res == ["raises", "raises"]
