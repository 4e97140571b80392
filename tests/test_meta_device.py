"""The meta device (descent.meta, docs/meta_device.md) against PyTorch 2.13's: shapes, dtypes,
devices, errors, module materialisation and shape propagation through common ops."""

import copy
import warnings

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F

# (name, function of (lib, F, inputs), input shapes): each runs on meta inputs in both
# libraries; the output's shape, dtype and device must agree.
OPS = [
    ("add", lambda t, F, a, b: a + b, [(2, 3), (3,)]),
    ("mul_scalar", lambda t, F, a: a * 2.5, [(2, 3)]),
    ("sub_rsub", lambda t, F, a, b: 1 - a - b, [(4, 1), (1, 5)]),
    ("div", lambda t, F, a, b: a / b, [(2, 3), (2, 3)]),
    ("pow", lambda t, F, a: a**2, [(3,)]),
    ("matmul", lambda t, F, a, b: a @ b, [(2, 3), (3, 4)]),
    ("matmul_batched", lambda t, F, a, b: a @ b, [(5, 1, 2, 3), (4, 3, 6)]),
    ("matmul_vec", lambda t, F, a, b: a @ b, [(3,), (2, 3, 4)]),
    ("linear", lambda t, F, a, w, b: F.linear(a, w, b), [(5, 3), (4, 3), (4,)]),
    ("relu", lambda t, F, a: F.relu(a), [(2, 3)]),
    ("gelu", lambda t, F, a: F.gelu(a), [(2, 3)]),
    ("softmax", lambda t, F, a: F.softmax(a, dim=-1), [(2, 3)]),
    ("log_softmax", lambda t, F, a: F.log_softmax(a, dim=0), [(2, 3)]),
    ("exp_tanh", lambda t, F, a: t.tanh(t.exp(a)), [(2, 3)]),
    ("sum", lambda t, F, a: a.sum(), [(2, 3)]),
    ("sum_dim", lambda t, F, a: a.sum(1, keepdim=True), [(2, 3, 4)]),
    ("mean", lambda t, F, a: a.mean((0, 2)), [(2, 3, 4)]),
    ("amax", lambda t, F, a: a.amax(-1), [(2, 3)]),
    ("max_dim", lambda t, F, a: a.max(dim=1)[0], [(2, 3)]),
    ("argmax", lambda t, F, a: a.argmax(1), [(2, 3)]),
    ("var", lambda t, F, a: a.var(0), [(4, 3)]),
    ("reshape", lambda t, F, a: a.reshape(3, -1), [(2, 3, 4)]),
    ("view", lambda t, F, a: a.view(6, 4), [(2, 3, 4)]),
    ("transpose", lambda t, F, a: a.transpose(0, 2), [(2, 3, 4)]),
    ("permute", lambda t, F, a: a.permute(2, 0, 1), [(2, 3, 4)]),
    ("unsqueeze_expand", lambda t, F, a: a.unsqueeze(0).expand(5, 2, 3), [(2, 3)]),
    ("flatten", lambda t, F, a: a.flatten(1), [(2, 3, 4)]),
    ("slice", lambda t, F, a: a[:, 1:, None, ::2], [(2, 3, 4)]),
    ("int_index", lambda t, F, a: a[1], [(2, 3)]),
    ("cat", lambda t, F, a, b: t.cat([a, b], dim=1), [(2, 3), (2, 5)]),
    ("stack", lambda t, F, a, b: t.stack([a, b]), [(2, 3), (2, 3)]),
    ("chunk", lambda t, F, a: a.chunk(2, dim=-1)[1], [(2, 6)]),
    ("where", lambda t, F, a, b: t.where(a > b, a, b), [(2, 3), (3,)]),
    ("eq", lambda t, F, a, b: a == b, [(2, 3), (2, 3)]),
    ("layer_norm", lambda t, F, a: F.layer_norm(a, (3,)), [(2, 3)]),
    ("dropout_eval", lambda t, F, a: F.dropout(a, 0.5, training=False), [(2, 3)]),
    (
        "embedding",
        lambda t, F, w: F.embedding(t.zeros(2, 5, dtype=t.int64, device="meta"), w),
        [(10, 4)],
    ),
    ("conv2d", lambda t, F, x, w: F.conv2d(x, w, padding=1), [(1, 2, 5, 5), (3, 2, 3, 3)]),
    ("cast", lambda t, F, a: a.to(t.float64), [(2, 3)]),
    (
        "cross_entropy",
        lambda t, F, a: F.cross_entropy(a, t.zeros(4, dtype=t.int64, device="meta")),
        [(4, 5)],
    ),
    ("topk", lambda t, F, a: a.topk(2, dim=1)[1], [(4, 5)]),
    ("gather", lambda t, F, a: a.gather(1, t.zeros(4, 2, dtype=t.int64, device="meta")), [(4, 5)]),
    ("erf", lambda t, F, a: t.erf(a), [(4, 5)]),
    ("int_scalar", lambda t, F, a: a.long() // 2 + 1, [(4, 5)]),
    ("bool_and", lambda t, F, a: (a > 0) & (a < 1), [(4, 5)]),
    ("conv_transpose2d", lambda t, F, x, w: F.conv_transpose2d(x, w), [(1, 2, 4, 4), (2, 3, 3, 3)]),
    ("lstm", lambda t, F, a: t.nn.LSTM(8, 4, device="meta")(a)[0], [(3, 2, 8)]),
    (
        "sdpa",
        lambda t, F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        [(1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8)],
    ),
]


def _run(lib, F_, name, fn, shapes):
    ins = [lib.empty(*s, device="meta") for s in shapes]
    return fn(lib, F_, *ins)


@pytest.mark.parametrize("name,fn,shapes", OPS, ids=[o[0] for o in OPS])
def test_shape_propagation_matches_torch_meta(name, fn, shapes):
    want = _run(torch, torch.nn.functional, name, fn, shapes)
    got = _run(descent, F, name, fn, shapes)
    assert got.is_meta and got.device.type == "meta", (name, got.device)
    assert tuple(got.shape) == tuple(want.shape), name
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], name


def test_creation_device_dtype_and_repr_match_torch():
    for lib in (torch, descent):
        x = lib.empty(2, 3, device="meta")
        assert x.is_meta and x.device.type == "meta" and str(x.device) == "meta"
    assert repr(descent.empty(2, 3, device="meta")) == "tensor(..., device='meta', size=(2, 3))"
    assert repr(descent.empty(0, device="meta")) == "tensor(..., device='meta', size=(0,))"
    assert repr(descent.empty((), device="meta")) == "tensor(..., device='meta', size=())"
    d = descent.zeros(3, dtype=descent.int64, device="meta")
    assert repr(d) == "tensor(..., device='meta', size=(3,), dtype=descent.int64)"
    for make in ("zeros", "ones", "randn", "rand", "empty"):
        for lib in (torch, descent):
            t = getattr(lib, make)(4, 5, device="meta")
            assert t.is_meta and tuple(t.shape) == (4, 5) and str(t.dtype).endswith("float32")
    x = descent.empty(2, 3, device="meta")
    for like in (descent.empty_like(x), descent.zeros_like(x), x.new_empty(4), x.new_zeros(2),
                 x.clone(), x.contiguous(), x.to("meta"), x.detach()):  # fmt: skip
        assert like.is_meta
    assert not descent.ones_like(x, device="cpu").is_meta
    assert descent.ones_like(x, device="cpu").tolist() == [[1.0] * 3] * 2
    assert descent.device("meta").type == "meta" and descent.device("meta").index is None
    assert repr(descent.device("meta")) == repr(torch.device("meta"))
    assert not descent.randn(2).is_meta  # CPU tensors say no
    # no memory for any shape: a 10^12-element meta tensor and a 10^9 x 10^9 product
    big = descent.empty(10**6, 10**6, device="meta")
    assert big._data.nbytes > 10**12 and big._data.base.nbytes == 4
    w = descent.empty(10**6, 10**3, device="meta")
    assert tuple((big @ w).shape) == (10**6, 10**3)
    assert tuple(descent.cat([big, big]).sum(0).shape) == (10**6,)
    assert tuple(descent.stack([w, w], dim=1).shape) == (10**6, 2, 10**3)


def _errors(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 (the type and message are compared)
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize(
    "what",
    ["item", "numpy", "tolist", "to_cpu", "cpu", "bool", "float", "equal", "sum_item"],
)
def test_reading_values_raises_torch_errors(what):
    calls = {
        "item": lambda x: x[0, 0].item(), "numpy": lambda x: x.numpy(),
        "tolist": lambda x: x.tolist(), "to_cpu": lambda x: x.to("cpu"),
        "cpu": lambda x: x.cpu(), "bool": lambda x: bool(x.sum()),
        "float": lambda x: float(x.sum()),
        "sum_item": lambda x: (x == x).all().item(),
    }  # fmt: skip
    if what == "equal":
        want = _errors(lambda: torch.equal(*[torch.empty(2, device="meta")] * 2))
        got = _errors(lambda: descent.equal(*[descent.empty(2, device="meta")] * 2))
        assert got[0] == want[0] == "NotImplementedError"
        assert got[1].startswith("aten::equal: attempted to run this operator with Meta")
        return
    want = _errors(lambda: calls[what](torch.empty(2, 3, device="meta")))
    got = _errors(lambda: calls[what](descent.empty(2, 3, device="meta")))
    assert want is not None and got == want


def test_module_to_meta_to_empty_and_load_state_dict():
    src = descent.nn.Linear(3, 4)
    m = copy.deepcopy(src).to("meta")
    assert m.weight.is_meta and m.bias.is_meta and isinstance(m.weight, descent.nn.Parameter)
    assert m.weight.requires_grad
    # copying real values into a meta model is a no-op, with PyTorch's warning
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m.load_state_dict(src.state_dict())
    assert m.weight.is_meta and "which is a no-op" in str(w[0].message)
    # copying out of a meta model raises (PyTorch's message inside its usual header)
    with pytest.raises(RuntimeError, match="Cannot copy out of meta tensor; no data!"):
        descent.nn.Linear(3, 4).load_state_dict(m.state_dict())
    # assign=True takes the checkpoint's tensors (their device), the Parameters stay Parameters
    m.load_state_dict(src.state_dict(), assign=True)
    assert not m.weight.is_meta and isinstance(m.weight, descent.nn.Parameter)
    x = descent.randn(2, 3)
    assert np.array_equal(m(x).numpy(), src(x).numpy())
    # to_empty: same Parameter objects, real storage, shapes and dtypes kept; recurse=False
    seq = descent.nn.Sequential(descent.nn.Linear(3, 4), descent.nn.Linear(4, 2)).to("meta")
    p0 = seq[0].weight
    seq.to_empty(device="cpu", recurse=False)
    assert p0.is_meta
    seq.to_empty(device="cpu")
    assert seq[0].weight is p0 and not p0.is_meta and tuple(p0.shape) == (4, 3)
    seq.load_state_dict({k: descent.ones(*v.shape) for k, v in seq.state_dict().items()})
    assert seq(descent.ones(1, 3)).tolist() == [[17.0, 17.0]]  # 4 * (3 + 1) + 1


class _Block(torch.nn.Module):
    """A pre-norm transformer block, written once for both libraries."""

    def __init__(self, lib, d=16, heads=2):
        lib.nn.Module.__init__(self)
        self.ln1, self.ln2 = lib.nn.LayerNorm(d), lib.nn.LayerNorm(d)
        self.attn = lib.nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = lib.nn.Sequential(
            lib.nn.Linear(d, 4 * d), lib.nn.GELU(), lib.nn.Linear(4 * d, d)
        )

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


def _block(lib):
    cls = type("Block", (lib.nn.Module,), dict(_Block.__dict__))
    with lib.device("meta"):
        return cls(lib)


def test_context_manager_transformer_block_then_materialise():
    tb, db = _block(torch), _block(descent)
    assert all(p.is_meta for p in db.parameters())
    assert [(n, tuple(p.shape)) for n, p in db.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in tb.named_parameters()
    ]
    assert not descent.empty(2).is_meta  # the block's end restores the CPU default
    x_meta = descent.empty(2, 5, 16, device="meta", requires_grad=True)
    out = db(x_meta)
    assert out.is_meta and tuple(out.shape) == tuple(tb(torch.empty(2, 5, 16, device="meta")).shape)
    # backward on meta: gradients of the right shapes, on the meta device
    out.sum().backward()
    assert x_meta.grad.is_meta and tuple(x_meta.grad.shape) == (2, 5, 16)
    for p in db.parameters():
        assert p.grad is not None and p.grad.is_meta and p.grad.shape == p.shape
    # materialise: to_empty + load PyTorch's weights; the outputs then agree with PyTorch's
    tb.to_empty(device="cpu")
    db.to_empty(device="cpu")
    torch.manual_seed(0)
    sd = {k: torch.randn(v.shape) * 0.2 for k, v in tb.state_dict().items()}
    tb.load_state_dict(sd)
    db.load_state_dict({k: descent.tensor(v.numpy()) for k, v in sd.items()})
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    want = tb(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(db(descent.tensor(x)).detach().numpy(), want, atol=2e-5)


def test_mixing_meta_and_cpu_raises_and_hook_detaches():
    from descent import hooks

    a, b = descent.empty(2, 3, device="meta"), descent.randn(2, 3)
    with pytest.raises(RuntimeError, match="meta"):
        a + b
    with pytest.raises(RuntimeError, match="meta"):
        descent.nn.functional.linear(b, descent.empty(4, 3, device="meta"))
    del a
    import gc

    gc.collect()
    assert not any(getattr(h, "__name__", "") == "_op_hook" for h in hooks._forward_hooks)


def test_init_optimizer_and_tensor_api_on_meta():
    with descent.device("meta"):
        m = descent.nn.Sequential(descent.nn.Linear(8, 16), descent.nn.LayerNorm(16))
    assert sum(p.numel() for p in m.parameters()) == 8 * 16 + 16 + 2 * 16  # counting: no memory
    # initialisers draw nothing and keep the tensors meta (trunc_normal_'s loop reads values)
    for init in (descent.nn.init.trunc_normal_, descent.nn.init.kaiming_uniform_,
                 descent.nn.init.normal_, descent.nn.init.zeros_):  # fmt: skip
        assert init(m[0].weight).is_meta
    # an optimizer step on meta gradients keeps parameters and state meta (flat buffers too)
    opt = descent.optim.AdamW(m.parameters())
    m(descent.empty(2, 8, device="meta")).sum().backward()
    opt.step()
    assert all(p.is_meta for p in m.parameters())
    assert opt.state[m[0].weight]["exp_avg"].is_meta
    assert all(v.is_meta for v in m.state_dict().values())
    # in-place ops, copy_ from CPU (a no-op), default device, strides, formatting
    x = descent.empty(3, 4, device="meta")
    assert x.add_(1).is_meta and x.fill_(2).is_meta and x.copy_(descent.ones(3, 4)).is_meta
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        descent.empty(3, 4).copy_(x)
    for lib in (torch, descent):
        lib.set_default_device("meta")
        try:
            assert lib.zeros(2).is_meta and str(lib.get_default_device()) == "meta"
        finally:
            lib.set_default_device(None)
        assert not lib.zeros(2).is_meta
        t = lib.empty(2, 3, 4, device="meta")
        assert t.stride() == (12, 4, 1) and t.is_contiguous()
        assert f"{lib.empty((), device='meta')}".startswith("tensor(..., device='meta'")
        one_hot = lib.nn.functional.one_hot(lib.zeros(3, dtype=lib.int64, device="meta"), 5)
        assert one_hot.is_meta and tuple(one_hot.shape) == (3, 5)
        # data-dependent shapes raise, as PyTorch's meta kernels
        with pytest.raises(NotImplementedError):
            t.nonzero()


def test_no_computation_on_huge_meta_shapes():
    """Each of these would allocate 4-40 GB (or run for minutes) if computed on the data."""
    big = descent.empty(10**5, 10**5, device="meta", requires_grad=True)
    idx = descent.zeros(10**5, 3, dtype=descent.int64, device="meta")
    outs = {
        "cumsum": big.cumsum(1),
        "argmax": big.argmax(1),
        "sort": big.sort(1)[0],
        "einsum": descent.einsum("ij,jk->ik", big, big),
        "softmax": descent.nn.functional.softmax(big, -1),
        "gather": big.gather(1, idx),
        "embedding": descent.nn.functional.embedding(idx, big),
    }
    want = {"cumsum": (10**5, 10**5), "argmax": (10**5,), "sort": (10**5, 10**5),
            "einsum": (10**5, 10**5), "softmax": (10**5, 10**5), "gather": (10**5, 3),
            "embedding": (10**5, 3, 10**5)}  # fmt: skip
    for name, out in outs.items():
        assert out.is_meta and tuple(out.shape) == want[name], name
    # backward: the gradients' zeros and scatter-adds are meta too (no (1e5, 1e5) buffer)
    (outs["gather"].sum() + outs["embedding"].sum() + outs["einsum"].sum()).backward()
    assert big.grad.is_meta and tuple(big.grad.shape) == (10**5, 10**5)
    # a convolution over a 4 GB input: padding and the im2col unfolding are shape-only too
    x = descent.empty(64, 256, 256, 256, device="meta", requires_grad=True)
    y = descent.nn.functional.conv2d(x, descent.empty(8, 256, 3, 3, device="meta"), padding=1)
    y.sum().backward()
    assert tuple(y.shape) == (64, 8, 256, 256) and x.grad.is_meta
