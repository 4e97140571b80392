"""Fixes found by session 16's new compat programs (tests/compat/programs), each differential
against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _run_both(fn):
    """fn(lib) -> a JSON-like result, run with descent and with torch."""
    return fn(descent), fn(torch)


# extending_autograd: a pack hook that returns a new tensor (`t.double()`, as the "Hooks for
# saved tensors" tutorial's compressing hooks) on a saved tensor whose version is not 0 (a
# weight written by copy_ under no_grad) made backward raise descent's "modified in place"
# error: the slot compared the new tensor's version (0) with the saved one's (2).
def test_saved_tensor_pack_to_new_tensor_after_inplace_writes():
    def run(lib):
        w = lib.zeros(3, 4, requires_grad=True)
        with lib.no_grad():
            w.copy_(lib.arange(12.0).reshape(3, 4) / 100)
            w.mul_(2)
        x = lib.ones(2, 4)
        with lib.autograd.graph.saved_tensors_hooks(
                lambda t: t.double() if t.is_floating_point() else t,
                lambda t: t.float() if t.dtype == lib.float64 else t):
            y = lib.nn.functional.linear(x, w).tanh().sum()
        y.backward()
        return w.grad.tolist()

    ours, theirs = _run_both(run)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# extending_autograd: the private `_register_state_dict_hook` (used by many libraries) may return
# the state dict; descent raised "post-hook must return None" (the public hook's rule).
def test_private_state_dict_hook_may_return_a_dict():
    def run(lib):
        net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Linear(2, 1))

        def child_hook(module, state_dict, prefix, local_metadata):
            state_dict[prefix + "tag"] = lib.tensor(1)
            return state_dict

        def root_hook(module, state_dict, prefix, local_metadata):
            return {k: v for k, v in state_dict.items() if not k.endswith("bias")}

        net[0]._register_state_dict_hook(child_hook)
        keys_child_only = list(net.state_dict())
        net._register_state_dict_hook(root_hook)
        keys_root = list(net.state_dict())

        def public(module, state_dict, prefix, local_metadata):
            return state_dict

        net[1].register_state_dict_post_hook(public)
        try:
            net.state_dict()
            public_error = None
        except RuntimeError:
            public_error = "RuntimeError"
        return keys_child_only, keys_root, public_error

    ours, theirs = _run_both(run)
    assert ours == theirs


# extending_autograd: grad_fn.register_prehook ran before a tensor hook registered later on the
# node's output; PyTorch runs the tensor hooks first, then fills retain_grad's .grad, then the
# node's pre-hooks (engine.cpp: call_tensor_pre_hooks, then call_pre_hooks).
def test_tensor_hooks_run_before_node_prehooks():
    def run(lib):
        log = []
        x = lib.arange(4.0, requires_grad=True)
        mid = x.exp()
        mid.grad_fn.register_prehook(lambda g: (log.append(("pre", g[0].tolist())), (g[0] + 1,))[1])
        mid.register_hook(lambda g: g * 2)
        mid.retain_grad()
        mid.register_hook(lambda g: g - 0.5)
        (mid * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        return log, mid.grad.tolist(), x.grad.tolist()

    ours, theirs = _run_both(run)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)


# text_data_pipeline: `list(ChainDataset([...]))` over IterableDatasets without __len__ raised
# NotImplementedError from descent's Dataset.__len__; PyTorch's len() raises TypeError there,
# which list() (operator.length_hint) takes as "no length".
def test_list_of_chain_dataset_without_len():
    def run(lib):
        class Countdown(lib.utils.data.IterableDataset):
            def __init__(self, start, stop):
                self.start, self.stop = start, stop

            def __iter__(self):
                return iter(range(self.start, self.stop, -1))

        chain = lib.utils.data.ChainDataset([Countdown(5, 2), Countdown(10, 7)])
        with pytest.raises(TypeError):
            len(Countdown(3, 1))
        with pytest.raises(TypeError):
            len(lib.utils.data.Dataset())
        return list(chain), list(Countdown(4, 0))

    ours, theirs = _run_both(run)
    assert ours == theirs


# text_data_pipeline: PyTorch's unpad_sequence transposes a time-major argument in place
# (`padded_sequences.transpose_(0, 1)`) and returns masked copies; descent left the argument
# as it was and returned views into it.
def test_unpad_sequence_transposes_its_argument_and_returns_copies():
    def run(lib):
        rnn = lib.nn.utils.rnn
        seqs = [lib.arange(1.0, n + 1).unsqueeze(-1) * (i + 1) for i, n in enumerate([3, 1, 2])]
        padded = rnn.pad_sequence(seqs)
        out = rnn.unpad_sequence(padded, lib.tensor([3, 1, 2]))
        out[0][0] = -5.0
        bf = rnn.pad_sequence(seqs, batch_first=True)
        out_bf = rnn.unpad_sequence(bf, lib.tensor([3, 1, 2]), batch_first=True)
        return (list(padded.shape), padded.tolist(), [o.tolist() for o in out],
                list(bf.shape), [o.tolist() for o in out_bf])

    ours, theirs = _run_both(run)
    assert ours == theirs


def test_unpad_sequence_gradient():
    def run(lib):
        x = lib.arange(12.0).reshape(4, 3, 1).requires_grad_()
        padded = x * 1.0
        outs = lib.nn.utils.rnn.unpad_sequence(padded, lib.tensor([4, 2, 3]))
        sum((o * (i + 1)).sum() for i, o in enumerate(outs)).backward()
        return x.grad.tolist()

    ours, theirs = _run_both(run)
    assert ours == theirs


# qat_fake_quant: torch.fake_quantize_per_tensor_affine / per_channel_affine were missing
# (AttributeError). Values bit for bit as PyTorch's CPU kernels (x * (1/scale) in float32,
# round half to even, the dequantised grid in double), the straight-through gradient masked
# where the rounded value falls outside [quant_min, quant_max].
@pytest.mark.parametrize("args", [(0.1, 0, -128, 127), (0.0473, 3, 0, 255), (0.25, -2, -8, 7),
                                  (0.05, 0, -32, 31)])
def test_fake_quantize_per_tensor_matches_torch(args):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 7)) * 2).astype(np.float32)
    x[0, :4] = [0.05, 0.15, -0.25, 0.35]  # ties at scale 0.1: half to even after float32 scaling
    xd, xt = descent.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd = descent.fake_quantize_per_tensor_affine(xd, *args)
    yt = torch.fake_quantize_per_tensor_affine(xt, *args)
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    w = rng.standard_normal((6, 7)).astype(np.float32)
    (yd * descent.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
    sd = descent.fake_quantize_per_tensor_affine(
        descent.tensor(x), descent.tensor([args[0]]),
        descent.tensor([args[1]], dtype=descent.int32), args[2], args[3])
    st = torch.fake_quantize_per_tensor_affine(
        torch.tensor(x), torch.tensor([args[0]]), torch.tensor([args[1]], dtype=torch.int32),
        args[2], args[3])
    np.testing.assert_array_equal(sd.numpy(), st.numpy())


def test_fake_quantize_per_channel_refuses_a_negative_axis():
    for lib in (descent, torch):
        with pytest.raises(RuntimeError):
            lib.fake_quantize_per_channel_affine(lib.ones(2, 3), lib.ones(3),
                                                 lib.zeros(3, dtype=lib.int32), -1, 0, 255)


def test_fake_quantize_per_channel_qparam_dtypes_as_torch():
    for lib in (descent, torch):
        x = lib.ones(3, 2)
        for sc, zp in [(lib.ones(3, dtype=lib.float64), lib.zeros(3, dtype=lib.int32)),
                       (lib.ones(3), lib.zeros(3, dtype=lib.int64)),
                       (lib.ones(3), lib.zeros(3, dtype=lib.float64))]:
            with pytest.raises(RuntimeError, match="must be"):
                lib.fake_quantize_per_channel_affine(x, sc, zp, 0, 0, 255)


def test_fake_quantize_float64_inputs_match_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 6)) * 2
    for args in [(0.0086, 3, 0, 255), (0.1, 0, -128, 127)]:
        np.testing.assert_array_equal(
            descent.fake_quantize_per_tensor_affine(descent.tensor(x), *args).numpy(),
            torch.fake_quantize_per_tensor_affine(torch.tensor(x), *args).numpy())
    sc = rng.uniform(0.01, 0.1, 20).astype(np.float32)
    zp = rng.integers(-2, 3, 20).astype(np.int32)
    np.testing.assert_array_equal(
        descent.fake_quantize_per_channel_affine(descent.tensor(x), descent.tensor(sc),
                                                 descent.tensor(zp), 0, -128, 127).numpy(),
        torch.fake_quantize_per_channel_affine(torch.tensor(x), torch.tensor(sc),
                                               torch.tensor(zp), 0, -128, 127).numpy())


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_fake_quantize_per_channel_matches_torch(axis):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 5, 3)) * 3).astype(np.float32)
    n = x.shape[axis]
    sc = rng.uniform(0.02, 0.5, n).astype(np.float32)
    zp = rng.integers(-3, 4, n).astype(np.int32)
    for zero_points in (zp, zp.astype(np.float32)):
        xd, xt = descent.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yd = descent.fake_quantize_per_channel_affine(xd, descent.tensor(sc),
                                                      descent.tensor(zero_points), axis, -8, 7)
        yt = torch.fake_quantize_per_channel_affine(xt, torch.tensor(sc),
                                                    torch.tensor(zero_points), axis, -8, 7)
        np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
        yd.pow(2).sum().backward()
        yt.pow(2).sum().backward()
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


# qat_fake_quant: nn.Conv1d/2d/3d had no `_conv_forward(input, weight, bias)`, the method that
# QAT convs, weight-standardised convs and torch.ao's own modules call with a transformed weight
# (AttributeError); PyTorch's forward goes through it, so an override is used by forward too.
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_forward_hook_for_subclasses(dims):
    def run(lib):
        base = {1: lib.nn.Conv1d, 2: lib.nn.Conv2d, 3: lib.nn.Conv3d}[dims]

        class ScaledConv(base):  # a transformed weight, as weight standardisation or QAT
            def forward(self, x):
                w = self.weight * self.weight.abs().mean(dim=0, keepdim=True) + 0.01
                return self._conv_forward(x, w, self.bias)

        class Doubled(base):
            def _conv_forward(self, x, weight, bias):
                return super()._conv_forward(x, 2 * weight, bias)

        lib.manual_seed(0)
        out = []
        for cls, kw in ((ScaledConv, {}), (Doubled, {"padding": 1, "padding_mode": "reflect"})):
            conv = cls(3, 4, 3, **kw)
            with lib.no_grad():
                conv.weight.copy_(lib.linspace(-1, 1, conv.weight.numel()).view(
                    conv.weight.shape))
                conv.bias.fill_(0.1)
            x = lib.linspace(-2, 2, 2 * 3 * 5 ** dims).view(2, 3, *([5] * dims))
            x.requires_grad_(True)
            y = conv(x)
            y.pow(2).sum().backward()
            out.append((y.detach().numpy(), x.grad.numpy(), conv.weight.grad.numpy()))
        return out

    for a, b in zip(*_run_both(run), strict=True):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
