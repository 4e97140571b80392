"""descent.compile replays in-place writes that autograd does not record (recorder.Write), and
the ops without a gradient that run on arrays directly (ops/untracked.py: comparisons, logic,
bitwise ops, conversions to integer and bool dtypes).

Under no_grad, or on a tensor that does not require grad, an in-place op writes into the
tensor's array without a graph node. When the write's eager path describes itself
(`view_write.written(t, redo)`: in-place activations, `x.relu_()` and the other unary methods,
`add_`/`mul_`/... with a scalar or a tensor the call computed, `clamp_`, `fill_`/`zero_`,
`copy_`, basic-index `x[i] = v`, `masked_fill_` with a mask the call computed) and writes into
a tensor the call computed, the recording keeps it as an instruction and the replay repeats it
in place, in eager's order; the results are eager's, bitwise, on every call. Writes into an
argument or a captured tensor (the caller's state), and writes whose operands were made outside
descent's ops, still run the function eagerly, with a warning that names the reason.
"""

import warnings

import numpy as np
import pytest

import descent
import descent.nn as nn
import descent.nn.functional as F
from compile_harness import assert_replayed, compare_calls


def _x(shape, dtype=np.float32, seed=0):
    """Call k's argument: one draw of a generator per call, the same for eager and compiled."""
    rng = np.random.default_rng(seed)
    drawn: list = []

    def args(k):
        while len(drawn) <= k:
            drawn.append(rng.standard_normal(shape).astype(dtype))
        return (descent.tensor(drawn[k]),)

    return args


# -- inference models with in-place activations --------------------------------------------------


def _cnn():
    descent.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    ).eval()  # fmt: skip


class _Block(nn.Module):
    """A ResNet basic block: `out += identity` and in-place ReLUs, as torchvision writes it."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


@pytest.mark.parametrize("grad_mode", ["no_grad", "inference_mode", "requires_grad_off"])
def test_cnn_inplace_relu_inference_replays(grad_mode):
    model = _cnn()

    def infer(x):
        if grad_mode == "no_grad":
            with descent.no_grad():
                return model(x)
        if grad_mode == "inference_mode":
            with descent.inference_mode():
                return model(x)
        return model(x)

    if grad_mode == "requires_grad_off":
        for p in model.parameters():
            p.requires_grad_(False)
    compiled, warned = compare_calls(infer, _x((2, 3, 8, 8)))
    assert_replayed(compiled, warned)


def test_resnet_block_residual_add_inplace_replays():
    descent.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), _Block(8), _Block(8)).eval()

    def infer(x):
        with descent.no_grad():
            return model(x)

    compiled, warned = compare_calls(infer, _x((2, 3, 6, 6)))
    assert_replayed(compiled, warned)


@pytest.mark.parametrize("sizes", [(784, 256, 256, 10), (16, 48, 40, 8), (64, 64, 64, 64)])
def test_mlp_inplace_relu_between_linears(sizes):
    """Linear -> ReLU(inplace) -> Linear: the replay's transposed Linear path (linear_t) keeps
    a transposed twin of a Linear's output for the next Linear; the in-place ReLU rewrites that
    output after the twin was made, so a replayed write drops the twins."""
    descent.manual_seed(2)
    a, b, c, d = sizes
    model = nn.Sequential(nn.Linear(a, b), nn.ReLU(inplace=True), nn.Linear(b, c),
                          nn.ReLU(inplace=True), nn.Linear(c, d))  # fmt: skip

    def infer(x):
        with descent.no_grad():
            return model(x)

    compiled, warned = compare_calls(infer, _x((32, a)))
    assert_replayed(compiled, warned)


# -- the write kinds -----------------------------------------------------------------------------


def _unary(x):
    h = x * 1.5
    h.tanh_()
    h.abs_()
    h.sqrt_()
    return h + x


def _functional_inplace(x):
    h = x - 0.25
    F.relu_(h)
    g = x * 3
    F.leaky_relu(g, 0.1, inplace=True)
    F.elu(g, inplace=True)
    F.silu(g, inplace=True)
    return h * g


def _arith_tensor(x):
    h = x * 2
    y = x.exp()
    h.add_(y)
    h.mul_(y)
    h.sub_(x, alpha=2)
    h.div_(y + 1)
    h += 1
    h *= y
    return h


def _clamp_fill(x):
    h = x * 4
    h.clamp_(-1.0, 2.0)
    z = x + 0
    z.zero_()
    z.fill_(0.5)
    o = x * 0
    o.copy_(h)
    return h, z, o


def _setitem(x):
    h = x * 1
    h[0] = 7.0
    h[:, 1] = x[:, 2] * 2
    h[..., -1] = -1.0
    h[1:3, None, ::2] = 0.0
    return h


def _masked(x):
    h = x * 2
    m = x.exp() > 1.0  # (a comparison: an op the recorder sees, ops/untracked.py)
    h.masked_fill_(m, 0.0)
    return h


def _view_write(x):
    y = x * 2
    v = y.view(-1)
    v.relu_()
    t = y.t()
    t.add_(1.0)
    return y, v


def _int_tensor(x):
    i = (x * 10).round().to(descent.int64)
    i.add_(3)
    i.mul_(2)
    i.clamp_(min=-5)
    return i


def _loop_writes(x):
    h = x * 1
    for k in range(3):
        h.mul_(0.5)
        h[k] = h[k] + k
    return h


@pytest.mark.parametrize(
    "fn", [_unary, _functional_inplace, _arith_tensor, _clamp_fill, _setitem, _view_write,
           _int_tensor, _loop_writes, _masked], ids=lambda f: f.__name__)  # fmt: skip
@pytest.mark.parametrize("grad", ["no_grad", "plain"])
def test_write_kinds_replay_bitwise(fn, grad):
    def run(x):
        if grad == "no_grad":
            with descent.no_grad():
                return fn(x)
        return fn(x)

    compiled, warned = compare_calls(run, _x((4, 5), seed=3))
    assert_replayed(compiled, warned)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_low_precision_scalar_writes(dtype):
    dt = getattr(descent, dtype)

    def fn(x):
        h = x.to(dt) * 2
        h.mul_(-1e9 if dtype == "float16" else 3.0)  # (float16 and a scalar: the copy path)
        h.add_(0.5)
        h.relu_()
        return h.float()

    compiled, warned = compare_calls(fn, _x((3, 4), seed=4))
    assert_replayed(compiled, warned)


# -- a training step with writes into tensors that do not require grad ----------------------------


def test_training_step_with_nograd_writes():
    descent.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = descent.optim.AdamW(model.parameters(), lr=1e-2)

    def step(x, y):
        opt.zero_grad()
        out = model(x)
        weight = x.abs().sum(1)  # no grad: x does not require grad
        weight.div_(weight.max())
        weight.clamp_(min=0.1)
        loss = ((out - y) ** 2).mean(1).mul(weight).mean()
        loss.backward()
        opt.step()
        return loss

    rng = np.random.default_rng(6)
    data = [(descent.tensor(rng.standard_normal((8, 6)).astype(np.float32)),
             descent.tensor(rng.standard_normal((8, 3)).astype(np.float32)))
            for _ in range(6)]  # fmt: skip
    state = {k: v.clone() for k, v in model.state_dict().items()}
    want = [step(*d).item() for d in data]
    want_w = [p.detach().numpy().copy() for p in model.parameters()]
    model.load_state_dict(state)
    opt2 = descent.optim.AdamW(model.parameters(), lr=1e-2)
    opt.__dict__.update(opt2.__dict__)
    compiled = descent.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [compiled(*d).item() for d in data]
    assert not [w for w in caught if "runs eagerly" in str(w.message)]
    assert got == want
    for p, w in zip(model.parameters(), want_w, strict=True):
        assert np.array_equal(p.detach().numpy(), w)
    assert compiled.stats["replays"] == 4


# -- what ran eagerly until session 20 ------------------------------------------------------------


def _into_argument(x):
    x.add_(1.0)  # the caller's tensor: its state, not the call's
    return x * 2


_BUFFER = descent.zeros(4, 5)


def _into_captured(x):
    _BUFFER.add_(x)  # a captured tensor: state outside the call
    return _BUFFER * 1


def _numpy_operand(x):
    h = x * 1
    h.add_(descent.tensor(np.ones((4, 5), np.float32)))  # made outside the ops: a constant
    return h


def _converted_operand(x):
    h = x * 1
    h.add_((x * 3).to(descent.int64))  # float32 += int64: the operand is converted first
    return h


@pytest.mark.parametrize("fn", [_into_argument, _into_captured, _numpy_operand,
                                _converted_operand], ids=lambda f: f.__name__)  # fmt: skip
def test_writes_into_the_callers_state_or_of_converted_operands_replay(fn):
    """These fell back until session 20: the replay writes into the argument's or the captured
    tensor's memory as eager does, a descent.tensor made in the call is a constant, and a
    converted operand is converted again (tests/test_compile_s20_writes.py)."""
    def run(x):
        with descent.no_grad():
            return fn(x)

    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((4, 5)).astype(np.float32) for _ in range(5)]
    _BUFFER.zero_()
    want = [run(descent.tensor(a)).numpy() for a in xs]
    _BUFFER.zero_()
    compiled = descent.compile(run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [compiled(descent.tensor(a)).numpy() for a in xs]
    for w, g in zip(want, got, strict=True):
        assert np.array_equal(w, g)
    assert compiled.stats["replays"] == 3 and compiled.stats["fallbacks"] == 0
    assert not any("runs eagerly" in str(w.message) for w in caught)


def test_the_write_is_an_instruction_in_the_program():
    def fn(x):
        with descent.no_grad():
            h = x * 2
            h.relu_()
            h[0] = 1.0
            return h

    compiled, warned = compare_calls(fn, _x((3, 3), seed=8), calls=3)
    (prog,) = compiled.programs() if callable(getattr(compiled, "programs", None)) else (None,)
    if prog is None:
        prog = next(e.program for e in compiled._cache.values() if e.program is not None)
    kinds = [type(ins).__name__ for ins in prog.rec.program]
    assert kinds.count("Write") == 2, kinds


# -- ops without a gradient (ops/untracked.py) ---------------------------------------------------


def _masks(x):
    m = (x > 0.1) & (x < 1.0)
    n = ~m | (x == 0) | (x.abs() >= 2)
    k = descent.logical_and(m, x != 0.5) ^ descent.isnan(x)
    i = descent.isfinite(x / 0.0) | descent.isinf(x) | descent.logical_not(x)
    return descent.where(m, x, -x), n, k, i, (0.5 < x) | (x <= -0.5)


def _casts(x):
    i = (x * 10).long()
    j = (x * 100).to(descent.int32) // 7
    b = x.bool() | (x * 3).int().bool()
    u = (x.abs() * 50).to(descent.uint8) >> 1
    return i, j + 1, b, u & 6, (i << 2) | 1, (i * 2 == j.long()).float()


def _mixed_promotions(x):
    i = (x * 4).round().long()
    return (i > 1.5), (i == x), (1.5 < i), (x.double() > x), (i.int() != i)


def _clip_family(x):
    return (F.hardtanh(x, -0.5, 0.5), F.relu6(x * 4), F.hardsigmoid(x), F.hardswish(x),
            F.threshold(x, 0.2, -1.0), F.softshrink(x, 0.3), F.hardshrink(x, 0.3))  # fmt: skip


@pytest.mark.parametrize("fn", [_masks, _casts, _mixed_promotions, _clip_family],
                         ids=lambda f: f.__name__)  # fmt: skip
def test_untracked_ops_replay_bitwise(fn):
    compiled, warned = compare_calls(fn, _x((5, 6), seed=9))
    assert_replayed(compiled, warned)


def test_mobilenet_relu6_inference_and_training_replay():
    """ReLU6 (hardtanh) compares x against its bounds: the masks are ops now, so a compiled
    MobileNet-style block replays (it ran eagerly before) in inference and in training."""
    def make(track):
        descent.manual_seed(10)
        return nn.Sequential(
            nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8, track_running_stats=track),
            nn.ReLU6(inplace=True), nn.Conv2d(8, 8, 3, padding=1, groups=8),
            nn.BatchNorm2d(8, track_running_stats=track), nn.Hardswish(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
        )  # fmt: skip

    model = make(True).eval()

    def infer(x):
        with descent.no_grad():
            return model(x)

    compiled, warned = compare_calls(infer, _x((2, 3, 6, 6), seed=11))
    assert_replayed(compiled, warned)
    # (training: batch statistics only; a running statistic's update still runs eagerly)
    model = make(False).train()
    opt = descent.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(12)
    data = [descent.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
            for _ in range(5)]  # fmt: skip

    def step(x):
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, (out.detach().argmax(1) + 1) % 4)
        loss.backward()
        opt.step()
        return loss

    state = {k: v.clone() for k, v in model.state_dict().items()}
    want = [step(x).item() for x in data]
    model.load_state_dict(state)
    opt.state.clear()
    compiled = descent.compile(step)
    got = [compiled(x).item() for x in data]
    assert got == want
    assert compiled.stats["replays"] == 3 and compiled.stats["fallbacks"] == 0


def test_untracked_ops_do_not_enter_the_graph():
    """The hook sees the ops; autograd still records nothing for them (PyTorch's comparisons
    and integer conversions never require grad)."""
    x = descent.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)
    for t in (x > 0, x.long(), ~(x > 0), (x > 0) & (x < 1), x.isnan(), x.to(descent.bool)):
        assert not t.requires_grad and t.grad_fn is None


def test_argmax_results_are_recomputed_not_frozen():
    """Indices from argmax/argmin/max(dim) used inside the function: the first two calls give
    the same indices here, later calls others. Before ops/untracked.py the indices were
    constants that the two recordings agreed on, and the replay froze them (wrong results)."""
    base = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    xs = [base, base + 0.01, base[::-1].copy(), base[:, ::-1].copy(), base]

    def fn(x):
        i = x.argmax(1)
        j = x.argmin(dim=1, keepdim=True)
        v, k = x.max(1)
        return x[descent.arange(2), i] * 2 + j.squeeze(1) + k, v

    compiled, warned = compare_calls(fn, lambda k: (descent.tensor(xs[k]),), calls=5)
    assert_replayed(compiled, warned, calls=5)


def test_index_tensors_follow_their_slots():
    """x[arange, y] with y an argument: GetItem's index tuple holds y's array, which the replay
    must take from this call (before: the first recordings' indices, frozen, when the first two
    calls had the same y: wrong values from the third call on)."""
    rng = np.random.default_rng(13)
    x = descent.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    ys = [[0, 1, 2, 0], [0, 1, 2, 0], [2, 2, 2, 2], [1, 0, 1, 0], [0, 0, 1, 2]]

    def fn(x, y):
        return x[descent.arange(4), y] * 2, x[y][:, y[:3]]

    compiled, warned = compare_calls(fn, lambda k: (x, descent.tensor(ys[k])), calls=5)
    assert_replayed(compiled, warned, calls=5)


@pytest.mark.parametrize("num_classes", [6, -1])
def test_descent_one_hot_replays(num_classes):
    """descent.one_hot (ops/indexing.py; F.one_hot has its own path): with num_classes the
    kernel replays on each call's indices; without, the width depends on the values: a guarded
    op since session 23 (it ran eagerly before), a program per width."""
    rng = np.random.default_rng(14)
    a0 = rng.standard_normal((4, 6)).astype(np.float32)
    xs = [a0, a0.copy()] + [rng.standard_normal((4, 6)).astype(np.float32) for _ in range(3)]

    def fn(x):
        return descent.one_hot(x.argmax(1), num_classes) * 2

    compiled, warned = compare_calls(fn, lambda k: (descent.tensor(xs[k]),), calls=5)
    if num_classes > 0:
        assert_replayed(compiled, warned, calls=5)
    else:
        assert not warned and compiled.stats["fallbacks"] == 0, (compiled.stats, warned)
