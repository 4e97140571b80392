"""Session 17: inference tensors (made under inference_mode), differential against PyTorch 2.13:
saving one for backward raises at the op, an in-place change outside inference_mode raises
after the write, requires_grad_ outside raises; views, clone(), detach() and .data as PyTorch."""

import copy
import pickle

import pytest
import torch

import descent


def _run(lib, program):
    """program(lib) -> ("ok", values) or (exception class name, message)."""
    try:
        out = program(lib)
    except Exception as e:  # noqa: BLE001 - the comparison is the point
        return type(e).__name__, str(e)
    if isinstance(out, (lib.Tensor,)):
        out = out.detach().tolist()
    return "ok", out


def _inf(lib, *shape):
    with lib.inference_mode():
        n = float(lib.tensor(shape).prod())
        return lib.arange(1.0, 1.0 + n, dtype=lib.float64).reshape(shape)


def _w(lib, *shape):
    return lib.ones(*shape, dtype=lib.float64, requires_grad=True)


PROGRAMS = {
    "is_inference": lambda L: (_inf(L, 3).is_inference(), L.ones(3).is_inference()),
    "op_result_normal": lambda L: (_inf(L, 3).exp().is_inference(),
                                   (_inf(L, 3) * 2).is_inference()),
    "mul_saves": lambda L: _w(L, 3) * _inf(L, 3),
    "rmul_saves": lambda L: _inf(L, 3) * _w(L, 3),
    "div_saves": lambda L: _w(L, 3) / _inf(L, 3),
    "div_saves_self": lambda L: _inf(L, 3) / _w(L, 3),
    "pow_saves": lambda L: _w(L, 3) ** _inf(L, 3),
    "matmul_saves": lambda L: _w(L, 2, 3) @ _inf(L, 3, 2),
    "linear_saves": lambda L: L.nn.functional.linear(_inf(L, 1, 3), _w(L, 2, 3)),
    "mse_saves": lambda L: L.nn.functional.mse_loss(_w(L, 3), _inf(L, 3)),
    "embedding_indices": lambda L: L.nn.functional.embedding(_inf(L, 2).long(), _w(L, 3, 2)),
    "embedding_inf_indices": lambda L: L.nn.functional.embedding(_inf_long(L), _w(L, 3, 2)),
    "ce_target": lambda L: L.nn.functional.cross_entropy(_w(L, 2, 3), _inf_long(L)),
    "nll_target": lambda L: L.nn.functional.nll_loss(_w(L, 2, 3), _inf_long(L)),
    "ce_target_no_grad": lambda L: L.nn.functional.cross_entropy(L.ones(2, 3), _inf_long(L)),
        "gather_index": lambda L: _w(L, 2, 3).gather(1, _inf_long(L).view(1, 2)),
    "index_select_index": lambda L: _w(L, 3).index_select(0, _inf_long(L)),
    "getitem_index": lambda L: _w(L, 3)[_inf_long(L)],
    "getitem_index_no_grad": lambda L: L.ones(3)[_inf_long(L)],
    "getitem_slice": lambda L: _grad(L, lambda w: w[1:].sum()),
    "masked_select_mask": lambda L: _w(L, 3).masked_select(_inf_long(L).bool().repeat(2)[:3]),
    "scatter_add_index": lambda L: L.zeros(2, 3, dtype=L.float64).scatter_add(
        1, _inf_long(L).view(1, 2), _w(L, 1, 2)),
    "scatter_add_self_only": lambda L: _w(L, 2, 3).scatter_add(
        1, _inf_long(L).view(1, 2), L.ones(1, 2, dtype=L.float64)),
    "index_add_index": lambda L: L.zeros(3, dtype=L.float64).index_add(0, _inf_long(L), _w(L, 2)),
        "add_saves_nothing": lambda L: _grad(L, lambda w: (w + _inf(L, 3)).sum()),
    "cat_saves_nothing": lambda L: _grad(L, lambda w: L.cat([w, _inf(L, 3)]).sum()),
    "where_branch": lambda L: _grad(L, lambda w: L.where(_inf(L, 3) > 1, w, _inf(L, 3)).sum()),
    "where_cond": lambda L: L.where(_inf(L, 3) > 1, _w(L, 3), 0.0),
    "no_grad_mul": lambda L: L.ones(3, dtype=L.float64) * _inf(L, 3),
    "clone_normal": lambda L: _grad(L, lambda w: (w * _inf(L, 3).clone()).sum()),
    "op_result_saved": lambda L: _grad(L, lambda w: (w * _inf(L, 3).sin()).sum()),
    "view_saves": lambda L: _w(L, 2) * _inf(L, 3)[1:],
    "detach_saves": lambda L: _w(L, 3) * _inf(L, 3).detach(),
    "views_are_inference": lambda L: (_inf(L, 3)[1:].is_inference(),
                                      _inf(L, 2, 3).t().is_inference(),
                                      _inf(L, 3).detach().is_inference(),
                                      _inf(L, 3).data.is_inference()),
    "requires_grad_": lambda L: _inf(L, 3).requires_grad_(),
    "requires_grad_false": lambda L: _inf(L, 3).requires_grad_(False).is_inference(),
    "requires_grad_inside": lambda L: _inside(L, lambda t: t.requires_grad_().requires_grad),
    "inplace_add": lambda L: _inplace(L, lambda t: t.add_(1)),
    "inplace_mul": lambda L: _inplace(L, lambda t: t.mul_(2)),
    "inplace_setitem": lambda L: _inplace(L, lambda t: t.__setitem__(0, 5.0)),
    "inplace_zero": lambda L: _inplace(L, lambda t: t.zero_()),
    "inplace_copy": lambda L: _inplace(L, lambda t: t.copy_(L.zeros(3, dtype=L.float64))),
    "inplace_exp": lambda L: _inplace(L, lambda t: t.exp_()),
    "inplace_clamp": lambda L: _inplace(L, lambda t: t.clamp_(0, 2)),
    "inplace_relu": lambda L: _inplace(L, lambda t: L.nn.functional.relu(t - 9, inplace=True)),
    "inplace_relu_inf": lambda L: _inplace(L, lambda t: L.nn.functional.relu(t, inplace=True)),
    "inplace_uniform": lambda L: _inplace(L, lambda t: t.uniform_(5, 5)),
    "inplace_unsqueeze": lambda L: _inplace_shape(L, lambda t: t.unsqueeze_(0)),
    "inplace_t": lambda L: _inplace_shape(L, lambda t: t.view(1, 3).t_()),
    "inplace_transpose": lambda L: _inplace_shape(L, lambda t: t.transpose_(0, 0)),
    "inplace_resize": lambda L: _inplace_shape(L, lambda t: t.resize_(2)),
        "inplace_view": lambda L: _inplace(L, lambda t: t[1:].add_(1)),
    "inplace_no_grad": lambda L: _inplace(L, lambda t: _no_grad_add(L, t)),
    "inplace_inside": lambda L: _inside(L, lambda t: t.add_(1)),
    "inplace_inside_view": lambda L: _inside(L, lambda t: t[1:].mul_(3)),
    "inplace_detach": lambda L: _inplace(L, lambda t: t.detach().add_(1)),
    "inplace_data": lambda L: _inplace(L, lambda t: t.data.mul_(2)),
    "inplace_clone": lambda L: _inplace(L, lambda t: t.clone().add_(1)),
    "copy_from_inference": lambda L: L.zeros(3, dtype=L.float64).copy_(_inf(L, 3)),
    "view_in_mode_of_normal": lambda L: _view_in_mode(L),
    "copies_are_normal": lambda L: (copy.deepcopy(_inf(L, 3)).is_inference(),
                                    pickle.loads(pickle.dumps(_inf(L, 3))).is_inference(),
                                    _inf(L, 3).double().is_inference(),
                                    _inf(L, 3).contiguous().is_inference(),
                                    L.as_tensor(_inf(L, 3)).is_inference()),
}


def _inf_long(L):
    with L.inference_mode():
        return L.tensor([0, 2])


def _grad(L, f):
    w = _w(L, 3)
    f(w).backward()
    return w.grad.tolist()


def _inplace(L, f):
    """f(t) on an inference tensor t outside inference_mode; t's values after (PyTorch writes,
    then raises) and the outcome."""
    t = _inf(L, 3)
    try:
        f(t)
        outcome = "ok"
    except RuntimeError as e:
        outcome = str(e)
    return outcome, t.tolist()


def _inplace_shape(L, f):
    t = _inf(L, 3)
    try:
        f(t)
        outcome = "ok"
    except RuntimeError as e:
        outcome = str(e)
    return outcome, tuple(t.shape)


def _inside(L, f):
    with L.inference_mode():
        t = L.ones(3, dtype=L.float64)
        out = f(t)
        return out.tolist() if isinstance(out, L.Tensor) else out


def _no_grad_add(L, t):
    with L.no_grad():
        t.add_(1)


def _view_in_mode(L):
    x = L.ones(3, dtype=L.float64)
    with L.inference_mode():
        v, d, n = x[1:], x.detach(), L.ones(2)
    return v.is_inference(), d.is_inference(), d[1:].is_inference(), n.is_inference()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_inference_tensors_as_torch(name):
    got = _run(descent, PROGRAMS[name])
    want = _run(torch, PROGRAMS[name])
    assert got == want


def test_tensor_made_in_another_thread_while_one_is_in_inference_mode():
    # the open inference_mode of one thread marks nothing made by another (PyTorch's mode is
    # per thread), and making a tensor there does not fail
    import threading

    made = []
    with descent.inference_mode():
        th = threading.Thread(target=lambda: made.append(descent.ones(2)))
        th.start()
        th.join()
    assert len(made) == 1 and not made[0].is_inference()
