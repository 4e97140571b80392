"""descent.utils.flop_counter and module_tracker against PyTorch 2.13's (the oracle): the same
models in both libraries, the same counts per module and per op (torch's op keys compared by
their names: descent's keys are strings "aten.mm" whose repr is torch's)."""

import pytest
import torch
import torch.utils.flop_counter

import descent
from descent.utils.flop_counter import FlopCounterMode, OpKey, register_flop_formula
from descent.utils.module_tracker import ModuleTracker

LIBS = (torch, descent)


def counts(lib, fn, **kw):
    """fn(lib) under lib's FlopCounterMode: {module: {op name: flops}} and the total."""
    fcm = torch.utils.flop_counter if lib is torch else descent.utils.flop_counter
    with fcm.FlopCounterMode(display=False, **kw) as fc:
        fn(lib)
    per = {m: {str(op): n for op, n in ops.items()} for m, ops in fc.get_flop_counts().items()}
    return per, fc.get_total_flops()


def same(fn):
    want, got = counts(torch, fn), counts(descent, fn)
    assert got == want
    return got


def r(lib, *shape, g=True):
    return lib.randn(*shape, requires_grad=g)


OPS = {
    "linear 3-D bias": lambda L: L.nn.functional.linear(r(L, 2, 3, 4), r(L, 5, 4), r(L, 5)),
    "linear no bias": lambda L: L.nn.functional.linear(r(L, 2, 3, 4), r(L, 5, 4)),
    "linear transposed input": lambda L: L.nn.functional.linear(
        r(L, 3, 2, 4).transpose(0, 1), r(L, 5, 4, g=False), r(L, 5)
    ),
    "linear 1-D": lambda L: L.nn.functional.linear(r(L, 4, g=False), r(L, 5, 4), r(L, 5)),
    "matmul broadcast": lambda L: r(L, 2, 1, 3, 4) @ r(L, 5, 4, 6),
    "matmul fold": lambda L: r(L, 2, 3, 4) @ r(L, 4, 6),
    "matmul 2d@3d frozen": lambda L: r(L, 3, 4, g=False) @ r(L, 2, 4, 6),
    "vector @ matrix": lambda L: r(L, 4) @ r(L, 4, 6),
    "mv (not counted)": lambda L: r(L, 3, 4) @ r(L, 4),
    "addmm": lambda L: L.addmm(r(L, 3, 6), r(L, 3, 4), r(L, 4, 6)),
    "baddbmm": lambda L: L.baddbmm(r(L, 2, 3, 6), r(L, 2, 3, 4, g=False), r(L, 2, 4, 6)),
    "bmm": lambda L: L.bmm(r(L, 2, 3, 4), r(L, 2, 4, 6)),
    "einsum": lambda L: L.einsum("bhqd,bhkd->bhqk", r(L, 2, 3, 4, 5), r(L, 2, 3, 6, 5)),
    "einsum chain": lambda L: L.einsum("ij,jk,kl->il", r(L, 2, 3), r(L, 3, 4), r(L, 4, 5)),
    "einsum chain, opt_einsum's order": lambda L: L.einsum(
        "ij,jk,kl->il", r(L, 30, 2), r(L, 2, 30), r(L, 30, 2)
    ),
    "einsum outer": lambda L: L.einsum("i,j->ij", r(L, 3), r(L, 4)),
    "conv2d groups stride dilation": lambda L: L.nn.functional.conv2d(
        r(L, 2, 4, 9, 9), r(L, 6, 2, 3, 3), r(L, 6), stride=2, padding=1, dilation=2, groups=2
    ),
    "conv2d data input": lambda L: L.nn.functional.conv2d(
        r(L, 2, 4, 9, 9, g=False), r(L, 6, 4, 3, 3)
    ),  # fmt: skip
    "conv_transpose2d": lambda L: L.nn.functional.conv_transpose2d(
        r(L, 2, 4, 9, 9), r(L, 4, 3, 3, 3), stride=2, padding=1, output_padding=1
    ),
    "conv_transpose2d groups": lambda L: L.nn.functional.conv_transpose2d(
        r(L, 2, 4, 5, 5), r(L, 4, 3, 3, 3), stride=2, groups=2
    ),
    "conv1d unbatched": lambda L: L.nn.functional.conv1d(r(L, 4, 9), r(L, 6, 4, 3)),
    "conv3d": lambda L: L.nn.functional.conv3d(r(L, 1, 2, 4, 4, 4), r(L, 3, 2, 3, 3, 3)),
    "sdpa math (Ev != E)": lambda L: L.nn.functional.scaled_dot_product_attention(
        r(L, 2, 3, 5, 4), r(L, 2, 3, 6, 4), r(L, 2, 3, 6, 7)
    ),
    "sdpa flash-cpu (not counted)": lambda L: L.nn.functional.scaled_dot_product_attention(
        r(L, 2, 3, 5, 4), r(L, 2, 3, 6, 4), r(L, 2, 3, 6, 4), is_causal=True
    ),
    "sdpa broadcast, frozen k": lambda L: L.nn.functional.scaled_dot_product_attention(
        r(L, 2, 3, 5, 4), r(L, 1, 3, 6, 4, g=False), r(L, 1, 3, 6, 4)
    ),
    "sdpa broadcast heads": lambda L: L.nn.functional.scaled_dot_product_attention(
        r(L, 2, 3, 5, 4), r(L, 2, 1, 6, 4), r(L, 2, 1, 6, 4)
    ),
    "sdpa gqa": lambda L: L.nn.functional.scaled_dot_product_attention(
        r(L, 2, 4, 5, 4), r(L, 2, 2, 6, 4), r(L, 2, 2, 6, 4), enable_gqa=True
    ),
    "sdpa 3-D mask": lambda L: L.nn.functional.scaled_dot_product_attention(
        r(L, 3, 5, 4), r(L, 3, 6, 4), r(L, 3, 6, 4), attn_mask=L.ones(5, 6, dtype=L.bool).tril()
    ),
    "nn.Bilinear (not counted)": lambda L: L.nn.Bilinear(3, 4, 5)(r(L, 2, 3), r(L, 2, 4)),
    "bilinear (not counted)": lambda L: L.nn.functional.bilinear(
        r(L, 3, 4), r(L, 3, 5), r(L, 6, 4, 5)
    ),  # fmt: skip
}


def test_ops_forward_and_backward_match_torch():
    """Each op's forward alone, then forward + backward: the same keys and counts."""
    for name, op in OPS.items():
        fwd = counts(descent, op)
        assert fwd == counts(torch, op), name
        both = counts(descent, lambda L, op=op: op(L).sum().backward())
        assert both == counts(torch, lambda L, op=op: op(L).sum().backward()), name

    def scaled_mm(L):
        a, b = L.randn(4, 8).to(L.float8_e4m3fn), L.randn(16, 8).to(L.float8_e4m3fn).t()
        one = L.tensor(1.0)
        return L._scaled_mm(a, b, one, one, out_dtype=L.float32)

    assert same(scaled_mm) == ({"Global": {"aten._scaled_mm": 1024}}, 1024)
    # a few of them count something: the comparison above cannot pass vacuously
    assert counts(descent, OPS["conv3d"])[1] == 2592


def _mlp(L):
    nn = L.nn
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 8), nn.Tanh()),
                         nn.Linear(8, 3))  # fmt: skip


def _cnn(L):
    nn = L.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, stride=2, groups=4, dilation=2, padding=2),
        nn.ConvTranspose2d(8, 4, 2, stride=2),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 5),
    )


def _block(L, attention):
    nn, F = L.nn, L.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = nn.LayerNorm(8)
            self.qkv = nn.Linear(8, 24)
            self.proj = nn.Linear(8, 8, bias=False)
            self.mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln(x)).split(8, dim=2)
            q, k, v = (z.view(b, t, 2, 4).transpose(1, 2) for z in (q, k, v))
            if attention == "causal":
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif attention == "mask":  # Ev != E: torch's math path, counted
                mask = L.ones(t, t, dtype=L.bool).tril()
                y = F.scaled_dot_product_attention(q, k, L.cat([v, v], -1), attn_mask=mask)
                y = y[..., :4]
            else:  # einsum attention, as minGPT-style code writes it
                att = L.einsum("bhqd,bhkd->bhqk", q, k) * 0.5
                y = L.einsum("bhqk,bhkd->bhqd", att.softmax(-1), v)
            y = self.proj(y.transpose(1, 2).reshape(b, t, c))
            x = x + y
            return x + self.mlp(x)

    return nn.Sequential(nn.Embedding(11, 8), Block(), nn.Linear(8, 11))


MODELS = {
    "mlp": (_mlp, lambda L: L.randn(4, 6)),
    "cnn": (_cnn, lambda L: L.randn(2, 3, 8, 8)),
    "gpt causal": (lambda L: _block(L, "causal"), lambda L: L.tensor([[1, 2, 3, 4, 5]])),
    "gpt mask": (lambda L: _block(L, "mask"), lambda L: L.tensor([[1, 2, 3, 4, 5]])),
    "gpt einsum": (lambda L: _block(L, "einsum"), lambda L: L.tensor([[1, 2, 3, 4, 5]])),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_models_match_torch_per_module(name):
    """Forward + backward, forward under no_grad, and with some parameters frozen: the same
    counts per module (backward attributed as torch's ModuleTracker does)."""
    make, data = MODELS[name]
    models = {}
    for L in LIBS:
        L.manual_seed(0)
        models[L] = make(L)

    def step(L):
        models[L](data(L)).sum().backward()

    def infer(L):
        with L.no_grad():
            models[L](data(L))

    got = same(step)
    assert got[1] > 0 and len(got[0]) > 2
    same(infer)
    for L in LIBS:  # freeze the first parametrised child and the last layer's weight
        first = next(m for m in models[L] if list(m.parameters()))
        first.requires_grad_(False)
        models[L][-1].weight.requires_grad_(False)
    frozen = same(step)
    assert frozen[1] < got[1]
    if name != "gpt causal":  # torch's CPU flash attention kernel: not counted (see the docs)
        assert "aten.bmm" in got[0]["Global"] or name in ("mlp", "cnn")


# torch 2.13 + tabulate 0.10 (preserve_whitespace=True, what torch's PRESERVE_WHITESPACE asks)
# on the MLP above, forward and backward
MLP_TABLE = """\
Module            FLOP    % Total
--------------  ------  ---------
Sequential        5952    100.00%
 - aten.addmm     1984     33.33%
 - aten.mm        3968     66.67%
 Sequential.0     2304     38.71%
  - aten.addmm     768     12.90%
  - aten.mm       1536     25.81%
 Sequential.2     3072     51.61%
  - aten.addmm    1024     17.20%
  - aten.mm       2048     34.41%
 Sequential.3      576      9.68%
  - aten.addmm     192      3.23%
  - aten.mm        384      6.45%"""


def test_table_text_matches_torch(capsys):
    descent.manual_seed(0)
    model = _mlp(descent)
    x = descent.randn(4, 6, requires_grad=True)
    with FlopCounterMode(depth=2) as fc:  # display=True prints the table on exit
        model(x).sum().backward()
    printed = capsys.readouterr().out
    assert fc.get_table() + "\n" == printed
    assert fc.get_table().splitlines() == MLP_TABLE.splitlines()
    depth1 = [line.split() for line in fc.get_table(1).splitlines()[2:]]  # the root only
    assert depth1 == [line.split() for line in MLP_TABLE.splitlines()[2:5]]
    with FlopCounterMode(display=False) as empty:
        pass
    assert (
        empty.get_table()
        == "Module      FLOP    % Total\n--------  ------  ---------\nGlobal         0         0%"
    )


class Scale3(descent.autograd.Function):
    """A user's autograd Function: y = 3 x (counted only through a user formula)."""

    @staticmethod
    def forward(ctx, x):
        return x * 3

    @staticmethod
    def backward(ctx, gy):
        return gy * 3


def test_custom_mapping_and_register_flop_formula():
    seen = []

    def formula(x_shape, out_shape=None):
        seen.append((x_shape, out_shape))
        return 7 * x_shape[0]

    x = descent.randn(5, 2, requires_grad=True)
    with FlopCounterMode(display=False, custom_mapping={Scale3: formula}) as fc:
        y = Scale3.apply(x)
        descent.nn.functional.linear(y, descent.randn(3, 2)).sum().backward()
    with FlopCounterMode(display=False, custom_mapping={Scale3: formula}) as fc2:
        with descent.no_grad():  # an unrecorded call is counted too
            Scale3.apply(x)
    assert fc2.get_flop_counts() == {"Global": {Scale3: 35}}
    assert seen == [((5, 2), (5, 2))] * 2
    assert fc.get_flop_counts()["Global"] == {Scale3: 35, "aten.mm": 60 + 60}
    assert repr(next(iter(fc.get_flop_counts()["Global"].keys() - {Scale3}))) == (
        "<OpOverloadPacket(op='aten.mm')>"
    )
    # the flash-attention CPU kernel torch has no formula for counts once one is registered
    key = "aten._scaled_dot_product_flash_attention_for_cpu"
    q = descent.randn(1, 2, 3, 4)
    with FlopCounterMode(display=False, custom_mapping={key: lambda q, k, v, out_shape: 11}) as fc:
        descent.nn.functional.scaled_dot_product_attention(q, q, q)
    assert fc.get_flop_counts()["Global"] == {key: 11}
    # the docs' recipe: torch's fused-kernel formulas for the flash kernel, forward and backward
    from descent.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    mapping = {
        key: lambda q, k, v, *a, out_shape=None, **kw: sdpa_flop_count(q, k, v),
        key + "_backward": lambda g, q, k, v, *a, out_shape=None, **kw: sdpa_backward_flop_count(
            g, q, k, v
        ),
    }
    q = descent.randn(1, 2, 3, 4, requires_grad=True)
    with FlopCounterMode(display=False, custom_mapping=mapping) as fc:
        descent.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
    assert fc.get_total_flops() == 2 * 2 * (2 * 3 * 3 * 4) + 5 * (2 * 2 * 3 * 3 * 4)
    assert isinstance(next(iter(fc.get_flop_counts()["Global"])), OpKey)
    name = "h79test.unique_op"
    register_flop_formula(name)(lambda *a, out_shape=None: 1)
    with pytest.raises(RuntimeError, match="duplicate"):
        register_flop_formula(name)(lambda *a, out_shape=None: 1)
    with pytest.raises(ValueError, match="autograd Function class"):
        register_flop_formula(3.5)(lambda *a, out_shape=None: 0)


def test_module_tracker_parents_and_is_bw():
    nn = descent.nn
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((sorted(tracker.parents), tracker.is_bw))
            return x * 2

    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(Probe()))
    with ModuleTracker() as tracker:
        x = model(descent.randn(1, 2))
        assert tracker.parents == {"Global"} and not tracker.is_bw

        def grad_hook(g):
            seen.append((sorted(tracker.parents), tracker.is_bw))

        x.register_hook(grad_hook)
        x.sum().backward()
        assert tracker.parents == {"Global"} and not tracker.is_bw  # reset when the pass ends
    assert seen[0] == (["Global", "Sequential", "Sequential.1", "Sequential.1.0"], False)
    assert seen[1] == (["Global", "Sequential", "Sequential.1", "Sequential.1.0"], True)


def test_retain_graph_and_double_backward_match_torch():
    """A second backward through a retained graph counts again; under create_graph the
    backward's own products are not counted twice, and a double backward counts its own."""
    import warnings

    models = {}
    for L in LIBS:
        L.manual_seed(0)
        models[L] = L.nn.Sequential(L.nn.Linear(3, 5), L.nn.Tanh(), L.nn.Linear(5, 2))

    def twice(L):
        y = models[L](L.randn(4, 3)).sum()
        y.backward(retain_graph=True)
        y.backward()

    def penalty(L):
        x = L.randn(4, 3, requires_grad=True)
        models[L](x).sum().backward(create_graph=True)
        x.grad.pow(2).sum().backward()

    assert same(twice)[1] == 200 + 2 * (80 + 80 + 120)  # data x: no input gradient for fc0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warning about backward(create_graph=True)
        assert same(penalty)[1] == 1160


def test_multihead_attention_and_transformer_layers_match_torch():
    """descent's fused MultiheadAttention is counted as PyTorch's F.multi_head_attention_forward
    (batch_first transposes, packed projections, bmm/baddbmm with weights, the uncounted flash
    kernel without, its fused inference kernel); encoder/decoder layers per module."""

    def mha(L, bf=True, bias=True, drop=0.0, train=True, frozen=False):
        L.manual_seed(0)
        m = L.nn.MultiheadAttention(8, 2, batch_first=bf, bias=bias, dropout=drop).train(train)
        m.in_proj_weight.requires_grad_(not frozen)
        return m

    def call(L, make=mha, cross=False, grad=True, **kw):
        x, kv = L.ones(2, 5, 8), L.ones(2, 3, 8)
        m = make(L)
        with L.set_grad_enabled(grad):
            out = m(x, kv, kv, **kw) if cross else m(x, x, x, **kw)
        if grad:
            out[0].sum().backward()

    cases = {
        "self": {},
        "cross": {"cross": True},
        "need_weights=False": {"need_weights": False},
        "mask": {"mask": True},
        "sequence first": {"make": lambda L: mha(L, bf=False)},
        "no bias, frozen in_proj": {"make": lambda L: mha(L, bias=False, frozen=True)},
        "dropout, no weights": {"make": lambda L: mha(L, drop=0.5), "need_weights": False},
        "eval no_grad (fused)": {"make": lambda L: mha(L, train=False), "grad": False},
    }
    for name, kw in cases.items():

        def run(L, kw=kw):
            kw = dict(kw)
            if kw.pop("mask", False):
                kw["attn_mask"] = L.ones(5, 5, dtype=L.bool).triu(1)
            call(L, **kw)

        assert counts(descent, run) == counts(torch, run), name
    assert same(lambda L: call(L, cross=True))[1] == 8192 + 2880 + 1280

    def general(L):  # kdim/vdim and bias_kv: PyTorch's functional form in both libraries
        L.manual_seed(0)
        m = L.nn.MultiheadAttention(8, 2, batch_first=True, kdim=6, vdim=7, add_bias_kv=True)
        m(L.ones(2, 5, 8), L.ones(2, 3, 6), L.ones(2, 3, 7))[0].sum().backward()

    same(general)

    def layers(L, train=True):
        L.manual_seed(0)
        enc = L.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        dec = L.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        enc.train(train)
        x = L.ones(2, 5, 8)
        if train:
            dec(enc(x), L.ones(2, 3, 8)).sum().backward()
        else:
            with L.no_grad():
                enc(x)

    assert same(layers)[1] > 0
    assert same(lambda L: layers(L, train=False)) == ({}, 0)  # torch's fused inference kernel


def test_recurrent_layers_match_torch():
    """RNN/GRU as PyTorch's CPU path (one projection of the sequence, one addmm per step),
    LSTM as nothing (its fused kernel has no formula), the cells op by op."""

    def run(L, cls, use="out", x_grad=False, **kw):
        L.manual_seed(0)
        m = getattr(L.nn, cls)(4, 5, **kw)
        out, h = m(L.ones(2, 3, 4, requires_grad=x_grad))
        h = h[0] if cls == "LSTM" else h
        (out if use == "out" else h).sum().backward()

    for cls in ("RNN", "GRU", "LSTM"):
        same(lambda L, cls=cls: run(L, cls, batch_first=True))
        same(lambda L, cls=cls: run(L, cls, "h", True, num_layers=2, bidirectional=True))
    assert same(lambda L: run(L, "GRU", batch_first=True))[1] == 2940 + 900

    def no_grad_gru(L):
        L.manual_seed(0)
        with L.no_grad():
            L.nn.GRU(4, 5, batch_first=True, bias=False)(L.ones(2, 3, 4))

    same(no_grad_gru)

    def packed(L):
        L.manual_seed(0)
        m = L.nn.RNN(4, 5, batch_first=True, num_layers=2, bidirectional=True)
        seqs = L.nn.utils.rnn.pack_padded_sequence(L.ones(3, 4, 4), [4, 2, 1], batch_first=True)
        m(seqs)[0].data.sum().backward()

    assert same(packed)[1] == 3360 + 5760  # a step has as many rows as sequences running
    for cls in ("RNNCell", "GRUCell", "LSTMCell"):

        def cell(L, cls=cls):
            L.manual_seed(0)
            out = getattr(L.nn, cls)(4, 5)(L.ones(3, 4))
            (out[0] if isinstance(out, tuple) else out).sum().backward()

        same(cell)


def test_meta_device_measure_flops_matches_torch():
    """lit-gpt's `measure_flops`: a model built on the meta device, counted without data."""

    def measure(L):
        with L.device("meta"):
            mlp = L.nn.Sequential(L.nn.Linear(8, 16), L.nn.ReLU(), L.nn.Linear(16, 4))
            att = L.nn.MultiheadAttention(8, 2, batch_first=True)
            x = L.randn(2, 5, 8)
        mlp(x).sum().backward()
        att(x, x, x)[0].sum().backward()
        q = x.view(2, 5, 2, 4).transpose(1, 2)  # meta: torch's math path, counted
        L.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)

    got = same(measure)
    assert got[0]["Global"]["aten.addmm"] == 5120 and got[0]["Global"]["aten.bmm"] == 6400


# torch 2.13 + tabulate: FLOPs outside every module put "Global" first, modules indented
GLOBAL_TABLE = """\
Module                 FLOP    % Total
-----------------  --------  ---------
Global             576.000K    100.00%
 - aten.addmm      128.000K     22.22%
 - aten.mm         448.000K     77.78%
 Sequential        336.000K     58.33%
  - aten.addmm     128.000K     22.22%
  - aten.mm        208.000K     36.11%
  Sequential.0      96.000K     16.67%
   - aten.addmm     48.000K      8.33%
   - aten.mm        48.000K      8.33%
  Sequential.1     240.000K     41.67%
   - aten.addmm     80.000K     13.89%
   - aten.mm       160.000K     27.78%
   Sequential.1.0  240.000K     41.67%
    - aten.addmm    80.000K     13.89%
    - aten.mm      160.000K     27.78%"""


def test_table_with_flops_outside_modules_matches_torch():
    descent.manual_seed(0)
    nn = descent.nn
    m = nn.Sequential(nn.Linear(30, 40), nn.Sequential(nn.Linear(40, 50)))
    with FlopCounterMode(display=False) as fc:
        (m(descent.randn(20, 30)) @ descent.randn(50, 60)).sum().backward()
    assert fc.get_table(3).splitlines() == GLOBAL_TABLE.splitlines()


def test_a_dropped_graph_is_freed_while_counting():
    """The counter and the tracker hold no graph: a forward with grad on whose result is
    dropped (an evaluation without no_grad) frees its saved values inside the block."""
    import gc
    import weakref

    m = descent.nn.Sequential(descent.nn.Linear(16, 16))
    with FlopCounterMode(display=False) as fc:
        y = m(descent.randn(4, 16))
        node = weakref.ref(y.grad_fn)
        del y
        gc.collect()
        assert node() is None
    assert fc.get_total_flops() == 2 * 4 * 16 * 16


def test_edge_cases_match_torch():
    """Empty batches count 0 under the op's key; integer and float64/float16 inputs count as
    floating ones (the formulas read shapes only)."""

    def empty(L):
        x, w = L.ones(0, 4, requires_grad=True), L.ones(3, 4, requires_grad=True)
        L.nn.functional.linear(x, w, L.ones(3)).sum().backward()
        (L.ones(0, 3, 4, requires_grad=True) @ L.ones(0, 4, 5)).sum().backward()

    assert same(empty) == ({"Global": {"aten.addmm": 0, "aten.mm": 0, "aten.bmm": 0}}, 0)

    def dtypes(L):
        L.ones(2, 3, dtype=L.int64) @ L.ones(3, 4, dtype=L.int64)
        L.nn.functional.conv1d(L.ones(1, 2, 5, dtype=L.int64), L.ones(3, 2, 3, dtype=L.int64))
        x16 = L.ones(2, 3, 4, dtype=L.float16)
        w16 = L.ones(5, 4, dtype=L.float16, requires_grad=True)
        L.nn.functional.linear(x16, w16, L.ones(5, dtype=L.float16)).sum().backward()

    assert same(dtypes)[1] == 48 + 108 + 240 + 240


def test_sdpa_kernel_choice_matches_torch():
    """sdpa_kernel([MATH]) and backends.cuda.enable_flash_sdp(False) make torch run (and count)
    its math kernel on the CPU; the switches are restored after the block."""

    def run(L):
        from importlib import import_module

        attention = import_module(L.__name__ + ".nn.attention")
        q = L.ones(2, 3, 5, 4, requires_grad=True)
        with attention.sdpa_kernel([attention.SDPBackend.MATH]):
            L.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()
        L.nn.functional.scaled_dot_product_attention(q, q, q).sum().backward()  # flash again
        L.backends.cuda.enable_flash_sdp(False)
        try:
            L.nn.functional.scaled_dot_product_attention(q, q, q)
        finally:
            L.backends.cuda.enable_flash_sdp(True)

    assert same(run)[1] == 7200 + 2400
