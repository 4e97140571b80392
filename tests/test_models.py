"""descent.models: GPT against a PyTorch implementation of the same architecture, MLP and LeNet.

The PyTorch GPT below is written here with torch.nn (nanoGPT's model.py layout and names), so
the two models share weights name for name; given the same weights the logits, the loss and every
gradient must agree to float32 precision.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import descent
from descent.models import GPT, MLP, PRESETS, GPTConfig, LeNet

torch = pytest.importorskip("torch")
tnn = torch.nn
tF = torch.nn.functional


# ---------------------------------------------------------------------------------------------
# The oracle: nanoGPT's architecture in PyTorch


class TorchAttention(tnn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd = c.n_head, c.n_embd
        self.c_attn = tnn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.c_proj(y)


class TorchMLP(tnn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c_fc = tnn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        return self.c_proj(tF.gelu(self.c_fc(x)))


class TorchBlock(tnn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.attn = TorchAttention(c)
        self.ln_2 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = TorchMLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TorchGPT(tnn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.transformer = tnn.ModuleDict(
            dict(
                wte=tnn.Embedding(c.vocab_size, c.n_embd),
                wpe=tnn.Embedding(c.block_size, c.n_embd),
                h=tnn.ModuleList(TorchBlock(c) for _ in range(c.n_layer)),
                ln_f=tnn.LayerNorm(c.n_embd, bias=c.bias),
            )
        )
        self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = tF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                ignore_index=-1)  # fmt: skip
        return logits, loss


# The tied matrix is listed once, under whichever name each library meets first.
_TIED = {"transformer.wte.weight": "lm_head.weight", "lm_head.weight": "transformer.wte.weight"}


def _lookup(params: dict, name: str):
    return params[name] if name in params else params[_TIED[name]]


def _torch_twin(model: GPT) -> TorchGPT:
    """A TorchGPT holding exactly the descent model's weights."""
    tmodel = TorchGPT(model.config)
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(_lookup(ours, name).numpy().copy()))
    return tmodel


def _batch(cfg: GPTConfig, B: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, cfg.vocab_size, size=(B, cfg.block_size))
    tgt = rng.integers(0, cfg.vocab_size, size=(B, cfg.block_size))
    tgt[0, :2] = -1  # ignored positions, as nanoGPT's ignore_index=-1
    return idx, tgt


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_gpt_matches_torch_logits_loss_and_gradients(bias):
    cfg = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=bias)
    descent.manual_seed(0)
    model = GPT(cfg)
    tmodel = _torch_twin(model)
    idx, tgt = _batch(cfg)

    logits, loss = model(descent.tensor(idx), descent.tensor(tgt))
    loss.backward()
    tlogits, tloss = tmodel(torch.from_numpy(idx), torch.from_numpy(tgt))
    tloss.backward()

    assert logits.shape == (3, cfg.block_size, cfg.vocab_size)
    np.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5, atol=1e-5)

    tgrads = dict(tmodel.named_parameters())
    names = list(dict(model.named_parameters()))
    assert len(names) == len(tgrads)  # tied weights counted once on both sides
    for name, p in model.named_parameters():
        tp = _lookup(tgrads, name)
        assert p.grad is not None, f"no gradient for {name}"
        np.testing.assert_allclose(
            p.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"gradient of {name}"
        )


def test_gpt_inference_returns_last_position_logits():
    cfg = GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8)
    descent.manual_seed(1)
    model = GPT(cfg)
    idx, tgt = _batch(cfg, B=2)
    full, _ = model(descent.tensor(idx), descent.tensor(tgt))
    last, none = model(descent.tensor(idx))
    assert none is None
    assert last.shape == (2, 1, cfg.vocab_size)
    np.testing.assert_allclose(last.numpy()[:, 0], full.numpy()[:, -1], rtol=1e-5, atol=1e-6)


def test_gpt_tied_weights_and_initialisation():
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=4, n_head=4, n_embd=64)
    descent.manual_seed(0)
    model = GPT(cfg)
    assert model.transformer.wte.weight is model.lm_head.weight
    params = dict(model.named_parameters())
    assert "lm_head.weight" not in params or "transformer.wte.weight" not in params
    # nanoGPT's init: N(0, 0.02), c_proj scaled by 1/sqrt(2 n_layer), LayerNorm gains 1.
    assert abs(model.transformer.wte.weight.numpy().std() - 0.02) < 0.002
    c_proj = model.transformer.h[0].mlp.c_proj.weight.numpy()
    assert abs(c_proj.std() - 0.02 / math.sqrt(2 * cfg.n_layer)) < 0.001
    np.testing.assert_array_equal(model.transformer.ln_f.weight.numpy(), 1.0)
    # Counted once: the same number as the PyTorch twin.
    tmodel = _torch_twin(model)
    assert model.num_parameters() == sum(p.numel() for p in tmodel.parameters())
    assert model.num_parameters(non_embedding=True) == model.num_parameters() - 16 * 64


def test_gpt_same_seed_same_weights():
    cfg = GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8)
    descent.manual_seed(123)
    a = GPT(cfg)
    descent.manual_seed(123)
    b = GPT(cfg)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())


def test_configure_optimizers_decays_only_matrices():
    cfg = GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8, bias=True)
    model = GPT(cfg)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.99))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    assert all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    # wte (tied with lm_head), wpe, and per layer c_attn, attn.c_proj, c_fc, mlp.c_proj.
    assert len(decay["params"]) == 2 + 4 * cfg.n_layer
    assert opt.param_groups[0]["lr"] == 3e-4
    assert tuple(opt.param_groups[0]["betas"]) == (0.9, 0.99)


def test_generate_greedy_matches_argmax_and_crops_context():
    cfg = GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=1, n_embd=8)
    descent.manual_seed(3)
    model = GPT(cfg)
    tmodel = _torch_twin(model)
    prompt = np.array([[1, 2, 3]])
    out = model.generate(descent.tensor(prompt), 6, temperature=0.0)
    assert out.shape == (1, 9)
    # The same greedy decode with the PyTorch twin, cropping to block_size.
    seq = torch.from_numpy(prompt)
    with torch.no_grad():
        for _ in range(6):
            ctx = seq[:, -cfg.block_size :]
            logits, _ = tmodel(ctx, torch.zeros_like(ctx))
            seq = torch.cat([seq, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    np.testing.assert_array_equal(out.numpy(), seq.numpy())
    # top_k=1 is greedy too, whatever the temperature.
    out_k1 = model.generate(descent.tensor(prompt), 6, temperature=1.5, top_k=1)
    np.testing.assert_array_equal(out_k1.numpy(), out.numpy())
    assert model.training  # generate restores the mode it found


def test_generate_is_reproducible_with_a_generator():
    cfg = GPTConfig(vocab_size=9, block_size=5, n_layer=1, n_head=1, n_embd=8)
    model = GPT(cfg)
    prompt = descent.tensor(np.array([[0, 1]]))
    a = model.generate(prompt, 10, top_k=5, generator=descent.Generator(7)).numpy()
    b = model.generate(prompt, 10, top_k=5, generator=descent.Generator(7)).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() < cfg.vocab_size


def test_gpt_errors_are_explained():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    with pytest.raises(ValueError, match="block_size"):
        model(descent.tensor(np.zeros((1, 5), dtype=np.int64)))


def test_presets_follow_nanogpt():
    baby = PRESETS["baby-gpt"]
    assert (baby["n_layer"], baby["n_head"], baby["n_embd"], baby["block_size"]) == (4, 4, 128, 64)
    assert (baby["batch_size"], baby["max_iters"], baby["lr_decay_iters"]) == (12, 2000, 2000)
    assert (baby["learning_rate"], baby["min_lr"], baby["warmup_iters"]) == (1e-3, 1e-4, 100)
    assert (baby["beta2"], baby["weight_decay"], baby["grad_clip"], baby["dropout"]) == (
        0.99, 0.1, 1.0, 0.0,
    )  # fmt: skip
    big = PRESETS["shakespeare-char"]
    assert (big["n_layer"], big["n_head"], big["n_embd"], big["block_size"]) == (6, 6, 384, 256)
    assert (big["batch_size"], big["dropout"], big["max_iters"]) == (64, 0.2, 5000)


def test_mlp_shapes_and_activations():
    descent.manual_seed(0)
    model = MLP([5, 7, 3], activation="tanh")
    assert [tuple(p.shape) for p in model.parameters()] == [(7, 5), (7,), (3, 7), (3,)]
    x = descent.randn(4, 5)
    y = model(x)
    assert y.shape == (4, 3)
    w1, b1, w2, b2 = (p.numpy() for p in model.parameters())
    ref = np.tanh(x.numpy() @ w1.T + b1) @ w2.T + b2
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        MLP([2, 2], activation="nope")
    with pytest.raises(ValueError, match="sizes"):
        MLP([3])


def test_lenet_shapes_and_gradients():
    descent.manual_seed(0)
    model = LeNet(num_classes=10)
    x = descent.randn(2, 1, 28, 28)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all()
               for p in model.parameters())  # fmt: skip
    # 6*1*25+6 + 16*6*25+16 + 400*120+120 + 120*84+84 + 84*10+10 = 61,706 (LeNet-5's count).
    assert model.num_parameters() == 61706
    with pytest.raises(ValueError, match="28, 28"):
        model(descent.randn(2, 1, 32, 32))


def test_gpt_training_steps_match_torch():
    """Five steps of the recipe (AdamW with the two groups, clipping, warm-up) agree with torch."""
    from descent.optim import clip_grad_norm_

    cfg = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=True)
    descent.manual_seed(0)
    model = GPT(cfg)
    tmodel = _torch_twin(model)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.99))
    decay = [p for p in tmodel.parameters() if p.dim() >= 2]
    no_decay = [p for p in tmodel.parameters() if p.dim() < 2]
    topt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-2, betas=(0.9, 0.99),
    )  # fmt: skip
    for step in range(5):
        idx, tgt = _batch(cfg, seed=10 + step)
        lr = 1e-2 * (step + 1) / 5  # a warm-up, applied by hand as the trainer does
        for group in opt.param_groups:
            group["lr"] = lr
        for group in topt.param_groups:
            group["lr"] = lr
        _, loss = model(descent.tensor(idx), descent.tensor(tgt))
        loss.backward()
        norm = clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        opt.zero_grad()
        _, tloss = tmodel(torch.from_numpy(idx), torch.from_numpy(tgt))
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 0.5)
        topt.step()
        topt.zero_grad()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
        np.testing.assert_allclose(float(norm), tnorm.item(), rtol=1e-4)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), _lookup(tparams, name).detach().numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)  # fmt: skip
