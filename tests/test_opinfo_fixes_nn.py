"""Differences from PyTorch found by its OpInfo database (tests/opinfo_harness.py), nn.functional.

Each test runs the case that differed in descent and in torch 2.13 and compares dtype, shape,
values and (float inputs) the gradients of a fixed linear function of the output.
"""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _both(fn, arrays, grad=True, rtol=1e-5, atol=1e-6):
    """Run fn(lib, *tensors) in torch and descent; compare outputs and, when `grad`, the
    gradients of sum(out * w) for a fixed w with respect to every float input."""
    results = []
    for lib in (torch, descent):
        ts = [
            lib.tensor(a, requires_grad=grad and a.dtype.kind in "fc")
            if isinstance(a, np.ndarray)
            else a
            for a in arrays
        ]
        out = fn(lib, *ts)
        res = [out.detach().numpy().copy(), str(out.dtype).split(".")[-1]]
        if grad and out.requires_grad:
            w = np.linspace(-1, 2, out.numel()).reshape(tuple(out.shape)).astype(np.float64)
            if out.dtype.is_complex:  # a real loss: Re(sum(out * w)) with a complex w
                w = w + 1j * np.linspace(2, -3, out.numel()).reshape(w.shape)
                (out * lib.tensor(w, dtype=out.dtype)).sum().real.backward()
            else:
                (out * lib.tensor(w, dtype=out.dtype)).sum().backward()
            grads = [t.grad for t in ts if hasattr(t, "grad") and t.requires_grad]
            res += [None if g is None else g.numpy().copy() for g in grads]
        results.append(res)
    theirs, ours = results
    assert ours[1] == theirs[1], f"dtype: torch {theirs[1]}, descent {ours[1]}"
    assert len(ours) == len(theirs)
    for t, o in zip([theirs[0], *theirs[2:]], [ours[0], *ours[2:]], strict=True):
        if t is None or o is None:  # an input the output does not depend on: no gradient
            assert t is None and o is None
            continue
        assert o.shape == t.shape
        np.testing.assert_allclose(o, t, rtol=rtol, atol=atol)
    return ours


# -- cosine_similarity: broadcasting along `dim` ---------------------------------------------
@pytest.mark.parametrize(
    ("s1", "s2", "dim"),
    [((1, 2, 3), (2, 1, 3), -2), ((4, 1), (1, 3), 0), ((2, 1, 5), (3, 5), 1), ((3,), (2, 3), -1)],
)
def test_cosine_similarity_broadcasts_before_the_norms(s1, s2, dim):
    """descent normalised each input along `dim` before broadcasting: a size-1 dim counted
    once in its norm but several times in the dot product, so cosines exceeded 1."""
    out = _both(
        lambda lib, a, b: lib.nn.functional.cosine_similarity(a, b, dim=dim),
        [_rand(s1, 1), _rand(s2, 2)],
    )
    assert np.all(np.abs(out[0]) <= 1 + 1e-6)


def test_cosine_similarity_unbroadcastable_shapes_raise():
    a, b = descent.ones(2, 3), descent.ones(4, 3)
    with pytest.raises(RuntimeError):
        torch.nn.functional.cosine_similarity(torch.ones(2, 3), torch.ones(4, 3))
    with pytest.raises(RuntimeError, match="broadcast"):
        descent.nn.functional.cosine_similarity(a, b)


# -- pad circular with negative amounts ------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "pads"),
    [
        ((1, 3, 4, 4), (-1, 1, -2, 1)),
        ((2, 3, 5), (-2, 3)),
        ((2, 3, 5), (2, -1)),
        ((1, 2, 3, 4, 5), (-1, 2, 1, -1, -1, 2)),
        ((1, 3, 4, 4), (-1, -1, 0, 0)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_pad_circular_crops_before_wrapping(shape, pads, dtype):
    """ATen crops the negative sides first and wraps the cropped tensor: (-1, 1) on [a, b, c, d]
    is [b, c, d, b]; descent wrapped first and then cropped ([b, c, d, a])."""
    x = (_rand(shape, 3) * 10).astype(dtype)
    _both(lambda lib, t: lib.nn.functional.pad(t, pads, mode="circular"), [x])


def test_pad_circular_negative_1d_by_hand():
    x = descent.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    y = descent.nn.functional.pad(x, (-1, 1), mode="circular")
    assert y.tolist() == [[[2.0, 3.0, 4.0, 2.0]]]


# -- max_unpool with repeated indices ------------------------------------------------------
def _repeated_indices(nd, seed):
    """A max_pool's indices over overlapping windows (kernel 3, stride 2): neighbours share
    their winners, so positions repeat; the values are distinct."""
    shape = (2, 3) + (5,) * nd
    x = torch.tensor(_rand(shape, seed))
    pool = getattr(torch.nn.functional, f"max_pool{nd}d")
    _, idx = pool(x, 3, 2, return_indices=True)
    assert any(len(set(r)) < len(r) for r in idx.reshape(6, -1).tolist())
    vals = _rand(tuple(idx.shape), seed + 1)
    return vals, idx.numpy()


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_repeated_indices_write_not_add(nd):
    """PyTorch's kernel writes (the last value at a position wins); descent summed them.
    The gradient gathers for every input, the overwritten ones included (PyTorch's)."""
    vals, idx = _repeated_indices(nd, nd)

    def fn(lib, v):
        unpool = getattr(lib.nn.functional, f"max_unpool{nd}d")
        return unpool(v, lib.tensor(idx), 3, 2, output_size=(5,) * nd)

    _both(fn, [vals])


def test_max_unpool_last_write_wins_by_hand():
    v = descent.tensor([[[1.0, 2.0, 3.0]]], requires_grad=True)
    # stride 1, padding 1: a length-2 output (output_size=[2] is outside PyTorch's range here)
    y = descent.nn.functional.max_unpool1d(v, descent.tensor([[[1, 1, 0]]]), 2, 1, 1)
    assert y.tolist() == [[[3.0, 2.0]]]
    (y * descent.tensor([[[10.0, 20.0]]])).sum().backward()
    assert v.grad.tolist() == [[[20.0, 20.0, 10.0]]]


def test_max_unpool_gradcheck_float64():
    """Without repeats the gather is the true derivative (with repeats PyTorch's derivative,
    which descent follows, also credits the overwritten inputs: not a finite difference)."""
    x = torch.tensor(_rand((2, 3, 6, 6), 7))
    _, idx = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    v = descent.tensor(_rand(tuple(idx.shape), 8).astype(np.float64), requires_grad=True)
    i = descent.tensor(idx.numpy())
    fn = lambda t: descent.nn.functional.max_unpool2d(t, i, 2, 2)  # noqa: E731
    assert descent.autograd.gradcheck(fn, (v,))
    assert descent.autograd.gradgradcheck(fn, (v,))


# -- multi_margin_loss / multilabel_margin_loss: 0-d inputs, repeated targets ------------------
REDUCTIONS = ["none", "mean", "sum"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("xs", "ys"),
    [((), 0), ((), [0]), ((5,), [3]), ((5,), 2), ((1, 4), 1), ((3, 4), [0, 3, 1])],
)
def test_multi_margin_loss_shapes_as_aten(xs, ys, reduction):
    """A 0-d input is one sample of one class; the target needs N classes in at most one dim;
    the unreduced loss is (N,) unless the target is 0-d. descent refused 0-d and (C,) + (1,)."""
    x = _rand(xs, 4) if xs else np.float32(0.3).reshape(())
    for p in (1, 2):
        _both(
            lambda lib, t, p=p: lib.nn.functional.multi_margin_loss(
                t, lib.tensor(ys), p=p, margin=1.5, reduction=reduction
            ),
            [np.asarray(x)],
        )


@pytest.mark.parametrize(("xs", "ys"), [((5,), [1, 2]), ((2, 5), [[1], [2]]), ((2, 5), 1)])
def test_multi_margin_loss_inconsistent_target_raises(xs, ys):
    for lib in (torch, descent):
        with pytest.raises(RuntimeError, match="target tensor should be 1-D"):
            lib.nn.functional.multi_margin_loss(lib.ones(xs), lib.tensor(ys))


def test_multi_margin_loss_weight_must_be_1d():
    for lib in (torch, descent):
        with pytest.raises(ValueError, match="one-dimensional"):
            lib.nn.functional.multi_margin_loss(lib.ones(()), lib.tensor(0), weight=lib.tensor(2.0))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("xs", "ys"),
    [
        ((), 0),
        ((), [-1]),
        ((5,), [1, 1, 2, -1, 0]),  # class 1 listed twice: summed twice
        ((2, 4), [[3, 3, 3, 0], [2, -1, 2, 2]]),
        ((3, 4), [[0, 1, 2, 3], [-1, 0, 0, 0], [1, 0, -1, 3]]),
    ],
)
def test_multilabel_margin_loss_counts_repeated_targets(xs, ys, reduction):
    """ATen sums over the listed targets, so a class listed twice counts twice; descent summed
    over the set of targets (a smaller loss). 0-d inputs were refused."""
    x = _rand(xs, 5) if xs else np.float32(0.3).reshape(())
    _both(
        lambda lib, t: lib.nn.functional.multilabel_margin_loss(
            t, lib.tensor(ys), reduction=reduction
        ),
        [np.asarray(x)],
    )


@pytest.mark.parametrize(
    ("xs", "ys", "match"),
    [
        ((3,), [5, 0, 0], "out of range"),
        ((3,), [-2, 0, 0], "out of range"),
        ((1, 3), [0, 0, 0], "inconsistent target size"),
        ((3,), [[0, 0, 0]], "inconsistent target size"),
        ((3, 0), np.zeros((3, 0), np.int64), "non-empty"),
    ],
)
def test_multilabel_margin_loss_errors_as_torch(xs, ys, match):
    for lib in (torch, descent):
        with pytest.raises(RuntimeError, match=match):
            lib.nn.functional.multilabel_margin_loss(lib.ones(xs), lib.tensor(ys))


def test_margin_losses_gradcheck_float64():
    x = descent.tensor(_rand((3, 4), 6).astype(np.float64), requires_grad=True)
    y = descent.tensor([[3, 3, 0, -1], [1, -1, 0, 0], [2, 1, 0, 3]])
    fn = lambda t: descent.nn.functional.multilabel_margin_loss(t, y, reduction="none")  # noqa: E731
    assert descent.autograd.gradcheck(fn, (x,))
    x0 = descent.tensor(0.4, dtype=descent.float64, requires_grad=True)
    fn0 = lambda t: descent.nn.functional.multi_margin_loss(t, descent.tensor(0), p=2)  # noqa: E731
    assert descent.autograd.gradcheck(fn0, (x0,))


# -- pooling: one-element argument lists, int64 averages, integer max_pool3d ----------------
@pytest.mark.parametrize(
    ("name", "shape", "args"),
    [
        ("avg_pool2d", (2, 3, 9, 9), ([3, 3], [1, 1], [1], True, False, 2)),
        ("avg_pool2d", (1, 2, 6, 6), ([4], [2], [2], True, True, None)),
        ("avg_pool2d", (1, 1, 4, 4), ([2, 2], [], [0], False, True, -2)),
        ("max_pool2d", (1, 2, 7, 7), ([3], [], [1], [2])),
        ("avg_pool3d", (1, 2, 5, 5, 5), ([3], [2], [1], True, False)),
        ("max_pool3d", (1, 2, 5, 5, 5), ([3], [], [1], [1], True)),
    ],
)
def test_pooling_takes_one_element_argument_lists(name, shape, args):
    """ATen repeats a one-element kernel_size / stride / padding / dilation for every
    dimension; descent refused padding=[1] ('must be a tuple of 2 ints')."""
    _both(lambda lib, t: getattr(lib.nn.functional, name)(t, *args), [_rand(shape, 9)])


def test_pooling_two_element_padding_for_3d_still_raises():
    for lib in (torch, descent):
        with pytest.raises(RuntimeError):
            lib.nn.functional.avg_pool3d(lib.ones(1, 1, 4, 4, 4), 2, 2, [1, 1])


INT_POOLS = [
    ("avg_pool1d", (2, 3, 9), ([3],)),
    ("avg_pool1d", (1, 3, 9), (3, 1, 1, True, False)),
    ("avg_pool1d", (1, 2, 9), ([6], [3], [2], True, True)),
    ("avg_pool2d", (1, 3, 9, 9), (3, 1, 1, True, False, 2)),
    ("avg_pool2d", (1, 3, 9, 9), ([4, 4], [2, 3], 1, True, False)),
    ("avg_pool2d", (1, 1, 4, 4), ([2, 2], [], [0], False, True, -2)),
    ("avg_pool2d", (0, 3, 6, 6), (2,)),
    ("avg_pool3d", (2, 3, 3, 4, 4), ([2, 2, 2],)),
    ("avg_pool3d", (1, 2, 4, 4, 4), (2, 1, 1, True, False, 2)),
    ("avg_pool3d", (1, 1, 7, 5, 7), ([6, 3, 4], [2, 3, 2], [3, 1, 0], False, False)),
    ("avg_pool3d", (1, 1, 4, 5, 4), ([2, 2, 3], [2, 2, 1], 0, False, True, -2)),
    ("max_pool3d", (1, 2, 3, 6, 5), (3, 2, 0, 1, True)),
    ("max_pool3d", (1, 2, 4, 4, 4), (3, 2, 1, 1, False)),
]


@pytest.mark.parametrize(("name", "shape", "args"), INT_POOLS)
def test_integer_pooling_as_aten(name, shape, args):
    """ATen averages int64 with C++'s division (truncated toward zero) and max-pools
    integers in 3-D; descent refused them ('expected a floating tensor')."""
    x = (_rand(shape, 10) * 20).astype(np.int64)
    _both(lambda lib, t: getattr(lib.nn.functional, name)(t, *args), [x], grad=False, atol=0)


def test_integer_average_truncates_toward_zero_by_hand():
    x = descent.tensor([[[-7, 2, 3, -1, 5]]])
    assert descent.nn.functional.avg_pool1d(x, 2, 1).tolist() == [[[-2, 2, 1, 2]]]
    y = descent.nn.functional.max_pool3d(x[None], (1, 1, 2), 1, return_indices=True)
    assert y[0].dtype == descent.int64 and y[0].tolist() == [[[[2, 3, 3, 5]]]]
    assert y[1].tolist() == [[[[1, 2, 2, 4]]]]


@pytest.mark.parametrize("name", ["avg_pool2d", "avg_pool3d"])
def test_avg_pool_divisor_zero_raises(name):
    shape = (1, 1, 4, 4) if name == "avg_pool2d" else (1, 1, 4, 4, 4)
    for lib in (torch, descent):
        with pytest.raises(RuntimeError, match="divisor must be not zero"):
            getattr(lib.nn.functional, name)(lib.ones(shape), 2, divisor_override=0)


# -- batch_norm on a (0,) input; native_group_norm's statistics are differentiable ----------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_empty_1d_input_is_returned(training, affine):
    """ATen returns an empty input as a copy before any shape check; descent raised
    'expected (N, C, *) input'."""
    wb = (np.ones(3, np.float32) * 2, np.ones(3, np.float32)) if affine else (None, None)

    def fn(lib, x, w, b):
        return lib.nn.functional.batch_norm(x, None, None, w, b, training=training)

    _both(fn, [np.zeros(0, np.float32), *wb], grad=not affine)


def test_batch_norm_empty_1d_with_empty_weight_raises_index_error():
    for lib in (torch, descent):
        with pytest.raises(IndexError):
            lib.nn.functional.batch_norm(
                lib.zeros(0), lib.zeros(0), lib.ones(0), lib.ones(0), training=False
            )


@pytest.mark.parametrize(
    ("shape", "group"), [((1, 6, 3), 2), ((2, 6, 3), 3), ((3, 4), 2), ((0, 2), 1)]
)
@pytest.mark.parametrize("affine", [False, True])
def test_native_group_norm_statistics_carry_gradients(shape, group, affine):
    """PyTorch's mean and rstd outputs require grad and take gradients; descent detached them
    (and refused N = 0: a reshape with -1). Compared through a function of all three outputs,
    and of the two statistics: PyTorch drops the gradient of one statistic alone (its backward
    adds the statistics' term only when both have a gradient), where descent gives the true
    derivative (test_native_group_norm_gradcheck_float64)."""
    n, c = shape[0], shape[1]
    hw = int(np.prod(shape[2:]))
    arrays = [_rand(shape, 11)]
    if affine:
        arrays += [_rand((c,), 12), _rand((c,), 13)]

    for first in (0, 1):

        def fn(lib, x, w=None, b=None, first=first):
            outs = lib.native_group_norm(x, w, b, n, c, hw, group, 0.5)
            return lib.cat([o.reshape(-1) for o in outs[first:]])

        _both(fn, arrays, rtol=1e-4, atol=1e-5)


def test_native_group_norm_gradcheck_float64():
    x = descent.tensor(_rand((2, 4, 3), 14).astype(np.float64), requires_grad=True)

    for k in (1, 2):  # each statistic alone (PyTorch's backward has no gradient there)
        fn = lambda t, k=k: descent.native_group_norm(t, None, None, 2, 4, 3, 2, 0.1)[k]  # noqa: E731
        assert descent.autograd.gradcheck(fn, (x,))


# -- convolutions on int64 and complex, unfold on complex and bool ----------------------------
CONVS = [
    ("conv1d", (2, 4, 7), (6, 2, 3), 6, dict(stride=2, padding=2, groups=2)),
    ("conv1d", (4, 7), (3, 4, 3), 3, dict(padding="same", dilation=2)),
    ("conv2d", (1, 3, 5, 5), (3, 3, 3, 3), 3, dict(stride=[2, 2], padding=2)),
    ("conv2d", (2, 4, 5, 6), (4, 2, 2, 3), None, dict(padding="same", groups=2)),
    ("conv3d", (1, 2, 4, 4, 4), (3, 2, 2, 2, 2), 3, dict(stride=2, padding=1)),
    ("conv_transpose1d", (1, 3, 4), (3, 3, 3), 3, dict(stride=2, padding=2, output_padding=1)),
    ("conv_transpose2d", (2, 4, 3, 3), (4, 1, 3, 2), 2, dict(stride=2, groups=2, dilation=2)),
    ("conv_transpose3d", (1, 2, 3, 3, 3), (2, 2, 2, 2, 2), None, dict(stride=2, padding=1)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize(("name", "xs", "ws", "b", "kw"), CONVS, ids=[c[0] for c in CONVS])
@pytest.mark.parametrize("dtype", [np.int64, np.complex64])
def test_convolutions_on_int64_and_complex(name, xs, ws, b, kw, dtype):
    """ATen convolves int64 (integer arithmetic) and complex inputs on the CPU; descent refused
    both ('expected a floating tensor'). Complex values and gradients as PyTorch's."""

    def make(shape, seed):
        if dtype == np.int64:
            return (_rand(shape, seed) * 5).astype(np.int64)
        return (_rand(shape, seed) + 1j * _rand(shape, seed + 50)).astype(np.complex64)

    arrays = [make(xs, 20), make(ws, 21)] + ([make((b,), 22)] if b else [])

    def fn(lib, x, w, bias=None):
        return getattr(lib.nn.functional, name)(x, w, bias, **kw)

    _both(fn, arrays, grad=dtype != np.int64, rtol=1e-4, atol=1e-4)


def test_conv_integer_operands_must_share_the_dtype():
    for lib in (torch, descent):
        with pytest.raises(RuntimeError):
            lib.nn.functional.conv2d(lib.ones(1, 2, 4, 4, dtype=lib.int64), lib.ones(3, 2, 2, 2))
        with pytest.raises(RuntimeError, match="bias type"):
            lib.nn.functional.conv2d(
                lib.ones(1, 2, 4, 4, dtype=lib.int64),
                lib.ones(3, 2, 2, 2, dtype=lib.int64),
                lib.ones(3),
            )


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d", "unfold"])
def test_conv_refuses_what_aten_refuses(name):
    """bool convolutions, int32 transposed convolutions and integer unfold: PyTorch has no
    kernel (NotImplementedError); descent raises its DtypeError (a TypeError and a
    RuntimeError)."""
    cases = {"conv2d": ["bool"], "conv_transpose2d": ["bool", "int32"], "unfold": ["int64"]}
    for dt in cases[name]:
        for lib in (torch, descent):
            x = lib.ones(1, 2, 4, 4, dtype=getattr(lib, dt))
            fn = getattr(lib.nn.functional, name)
            err = NotImplementedError if lib is torch else TypeError
            with pytest.raises(err):
                fn(x, 2) if name == "unfold" else fn(x, lib.ones(2, 2, 2, 2, dtype=x.dtype))


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_])
def test_unfold_complex_and_bool(dtype):
    x = _rand((2, 3, 5, 5), 30)
    x = (x + 1j * _rand((2, 3, 5, 5), 31)).astype(dtype) if dtype != np.bool_ else x > 0
    _both(
        lambda lib, t: lib.nn.functional.unfold(t, (2, 3), dilation=1, padding=1, stride=2),
        [x],
        grad=dtype != np.bool_,
    )


def test_complex_conv_gradcheck_complex128():
    x = descent.tensor(
        (_rand((1, 2, 4, 4), 40) + 1j * _rand((1, 2, 4, 4), 41)).astype(np.complex128),
        requires_grad=True,
    )
    w = descent.tensor(
        (_rand((2, 2, 2, 2), 42) - 1j * _rand((2, 2, 2, 2), 43)).astype(np.complex128),
        requires_grad=True,
    )
    fn = lambda a, b: descent.nn.functional.conv2d(a, b, stride=2, padding=1)  # noqa: E731
    assert descent.autograd.gradcheck(fn, (x, w))
    fnt = lambda a, b: descent.nn.functional.conv_transpose2d(a, b, stride=2)  # noqa: E731
    assert descent.autograd.gradcheck(fnt, (x, w))


# -- rms_norm and silu on complex, poisson_nll_loss on int64 --------------------------------
def _complex(shape, seed, dtype=np.complex64):
    return np.asarray(_rand(shape, seed) + 1j * _rand(shape, seed + 100)).astype(dtype)


@pytest.mark.parametrize(
    ("shape", "ns", "affine", "eps"),
    [
        ((1, 2, 3), [1, 2, 3], True, 0.5),
        ((2, 2, 3), [2, 3], True, -0.5),
        ((1, 2), [2], False, None),
        ((0, 1), [1], True, None),
    ],  # fmt: skip
)
def test_rms_norm_complex(shape, ns, affine, eps):
    """ATen's composite rms_norm takes complex input: x rsqrt(mean(x^2) + eps), the complex
    square; descent refused it."""
    arrays = [_complex(shape, 50)] + ([_complex(tuple(ns), 51)] if affine else [])

    def fn(lib, x, w=None):
        return lib.nn.functional.rms_norm(x, ns, w, eps=eps)

    _both(fn, arrays, rtol=1e-4, atol=1e-5)


def test_rms_norm_real_weight_on_complex_input():
    _both(
        lambda lib, x, w: lib.nn.functional.rms_norm(x, [3], w),
        [_complex((2, 3), 52), _rand((3,), 53)],
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("shape", [(20,), (1, 0, 3), ()])
@pytest.mark.parametrize("inplace", [False, True])
def test_silu_complex(shape, inplace):
    """ATen's silu has a complex kernel, x / (1 + e^-x); descent's op refused complex."""

    def fn(lib, x):
        return lib.nn.functional.silu(x * 1 if inplace else x, inplace=inplace)

    _both(fn, [np.asarray(_complex(shape, 54) * 3)], grad=False, rtol=1e-4, atol=1e-5)


def test_silu_complex_refuses_autograd_as_torch():
    for lib in (torch, descent):
        x = lib.tensor(_complex((3,), 57), requires_grad=True)
        with pytest.raises(RuntimeError, match="does not support automatic differentiation"):
            lib.nn.functional.silu(x)
        with lib.no_grad():
            assert lib.nn.functional.silu(x).dtype == lib.complex64


def test_complex_rms_norm_gradcheck_complex128():
    x = descent.tensor(_complex((2, 3), 55, np.complex128), requires_grad=True)
    w = descent.tensor(_complex((3,), 56, np.complex128), requires_grad=True)
    fn = lambda a, b: descent.nn.functional.rms_norm(a, [3], b, eps=0.1)  # noqa: E731
    assert descent.autograd.gradcheck(fn, (x, w))


@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_poisson_nll_loss_int64(log_input, full, reduction):
    """ATen's composite takes integer rates and counts (float32 result, torch's promotion);
    descent refused them."""
    x = np.array([0, 1, 2, 3, 4, 1], np.int64)
    t = np.array([0, 2, 1, 5, 3, 7], np.int64)
    _both(
        lambda lib, a, b: lib.nn.functional.poisson_nll_loss(
            a, b, log_input=log_input, full=full, reduction=reduction
        ),
        [x, t],
        grad=False,
    )


# -- fractional_max_pool on an empty batch ----------------------------------------------------
@pytest.mark.parametrize("return_indices", [False, True])
@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_max_pool_empty_batch(nd, return_indices):
    """N = 0: descent's reshape with -1 was ambiguous ('cannot reshape ... into (0, 1, -1)')."""
    shape = (0, 1, 4, 5, 4)[: 2 + nd]
    for lib in (torch, descent):
        fn = getattr(lib.nn.functional, f"fractional_max_pool{nd}d")
        out = fn(lib.zeros(shape), 2, output_size=2, return_indices=return_indices)
        outs = out if return_indices else (out,)
        assert [tuple(o.shape) for o in outs] == [(0, 1) + (2,) * nd] * len(outs)
    x = descent.zeros(shape, requires_grad=True)
    fn = getattr(descent.nn.functional, f"fractional_max_pool{nd}d")
    fn(x, 2, output_size=2).sum().backward()
    assert tuple(x.grad.shape) == shape


# -- softmin(dtype=) negates before the cast ---------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmin_uint8_with_dtype_negates_first(dim):
    """torch computes (-input).softmax(dim, dtype): a uint8 input wraps (256 - x) before the
    cast; descent cast first and negated the floats (silently other values)."""
    x = np.random.default_rng(60).integers(0, 255, (5, 5)).astype(np.uint8)
    _both(lambda lib, t: lib.nn.functional.softmin(t, dim, dtype=lib.float64), [x], grad=False)


def test_softmin_float_with_dtype_values_and_gradients():
    _both(
        lambda lib, t: lib.nn.functional.softmin(t, 1, dtype=lib.float64),
        [_rand((3, 4), 61)],
    )
