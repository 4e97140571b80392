"""GPTConfig's speedrun options, each against a PyTorch twin written here with torch.nn.

Options: rope, qk_norm, relu2, logit_softcap, zero_init_proj, tie_weights=False. For each (and
all together), the same weights give the same logits, loss and every gradient (float32 to
~1e-5, float64 to ~1e-10). The twin's rotary embedding is written independently, with complex
numbers: channel pair (i, i + D/2) is the complex number x_i + i x_{i+D/2}, turned by e^{i m
theta_i}.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import descent
from descent import io
from descent.models import GPT, GPTConfig

torch = pytest.importorskip("torch")
tnn = torch.nn
tF = torch.nn.functional

OPTIONS = {
    "rope": dict(rope=True),
    "qk_norm": dict(qk_norm=True),
    "relu2": dict(relu2=True),
    "logit_softcap": dict(logit_softcap=2.0),  # small: the cap bites on these logits
    "zero_init_proj": dict(zero_init_proj=True),
    "untied_head": dict(tie_weights=False),
    "all": dict(rope=True, qk_norm=True, relu2=True, logit_softcap=2.0, zero_init_proj=True,
                tie_weights=False),
}  # fmt: skip
TOL = {
    np.float32: dict(rtol=1e-4, atol=1e-5),
    np.float64: dict(rtol=1e-10, atol=1e-12),
}


def _rope(x, base):
    """x (B, H, T, D) rotated by position, through complex multiplication (float64)."""
    d, t = x.shape[-1], x.shape[-2]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (D/2,)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * theta[None, :]  # (T, D/2)
    turn = torch.polar(torch.ones_like(ang), ang)  # e^{i m theta}
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double()) * turn
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


class TorchAttention(tnn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c = c
        self.c_attn = tnn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.c.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.c.n_head, hs).transpose(1, 2) for t in (q, k, v))
        if self.c.qk_norm:
            q, k = tF.rms_norm(q, (hs,)), tF.rms_norm(k, (hs,))
        if self.c.rope:
            q, k = _rope(q, self.c.rope_base), _rope(k, self.c.rope_base)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))


class TorchMLP(tnn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.relu2 = c.relu2
        self.c_fc = tnn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        h = self.c_fc(x)
        h = tF.relu(h).square() if self.relu2 else tF.gelu(h)
        return self.c_proj(h)


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
        self.c = c
        mods = dict(wte=tnn.Embedding(c.vocab_size, c.n_embd))
        if not c.rope:
            mods["wpe"] = tnn.Embedding(c.block_size, c.n_embd)
        mods["h"] = tnn.ModuleList(TorchBlock(c) for _ in range(c.n_layer))
        mods["ln_f"] = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.transformer = tnn.ModuleDict(mods)
        self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_weights:
            self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.transformer.wte(idx)
        if not self.c.rope:
            x = x + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if self.c.logit_softcap > 0:
            logits = self.c.logit_softcap * torch.tanh(logits / self.c.logit_softcap)
        loss = tF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                ignore_index=-1)  # fmt: skip
        return logits, loss


_TIED = {"transformer.wte.weight": "lm_head.weight", "lm_head.weight": "transformer.wte.weight"}


def _lookup(params: dict, name: str):
    return params[name] if name in params else params[_TIED[name]]


def _twin(model: GPT, dtype) -> TorchGPT:
    tmodel = TorchGPT(model.config).to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in tmodel.named_parameters():
            p.copy_(torch.from_numpy(_lookup(ours, name).numpy().copy()))
    return tmodel


def _model(dtype, seed=0, **options) -> GPT:
    cfg = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16, **options)
    descent.manual_seed(seed)
    model = GPT(cfg)
    if dtype == np.float64:
        model.double()
    if options.get("zero_init_proj"):
        # Zero projections make several gradients exactly zero at init; give them values so
        # that the comparison sees every path (the zero init itself is tested below).
        rng = np.random.default_rng(seed + 1)
        for name, p in model.named_parameters():
            if name.endswith("c_proj.weight"):
                p._data[...] = 0.02 * rng.standard_normal(p.shape)
    return model


def _batch(cfg: GPTConfig, B: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, cfg.vocab_size, size=(B, cfg.block_size))
    tgt = rng.integers(0, cfg.vocab_size, size=(B, cfg.block_size))
    tgt[0, :2] = -1
    return idx, tgt


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_gpt_option_matches_torch_twin(option, dtype):
    model = _model(dtype, **OPTIONS[option])
    # Larger weights than the init make the options matter: logits beyond the soft cap,
    # rotations that change the scores.
    for p in model.parameters():
        if p.ndim == 2:
            p._data[...] = p._data * 20
    tmodel = _twin(model, dtype)
    idx, tgt = _batch(model.config)

    logits, loss = model(descent.tensor(idx), descent.tensor(tgt))
    loss.backward()
    tlogits, tloss = tmodel(torch.from_numpy(idx), torch.from_numpy(tgt))
    tloss.backward()

    assert logits.dtype == dtype
    np.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(loss.item(), tloss.item(), **TOL[dtype])
    if model.config.logit_softcap:
        assert np.abs(logits.numpy()).max() < model.config.logit_softcap
        assert np.abs(tlogits.detach().numpy()).max() > 0.9 * model.config.logit_softcap

    tparams = dict(tmodel.named_parameters())
    names = [n for n, _ in model.named_parameters()]
    assert len(names) == len(tparams)  # a tied matrix counted once on both sides
    for name, p in model.named_parameters():
        tp = _lookup(tparams, name)
        assert p.grad is not None, f"no gradient for {name}"
        np.testing.assert_allclose(
            p.grad.numpy(), tp.grad.numpy(), **TOL[dtype], err_msg=f"gradient of {name}"
        )


def test_defaults_are_nanogpt():
    """Off by default: the default model has nanoGPT's parameters, names and count."""
    cfg = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    assert not (cfg.rope or cfg.qk_norm or cfg.relu2 or cfg.zero_init_proj)
    assert cfg.logit_softcap == 0.0 and cfg.tie_weights
    model = GPT(cfg)
    names = [n for n, _ in model.named_parameters()]
    assert "transformer.wpe.weight" in names and "lm_head.weight" not in names
    C, L, V, T = 128, 4, 65, 64
    per_block = 2 * C + 3 * C * C + C * C + 2 * 4 * C * C  # ln_1, ln_2, c_attn, c_proj, mlp
    assert model.num_parameters() == L * per_block + V * C + T * C + C  # 804,096 (tied head)
    assert type(model.transformer.h[0].attn).__name__ == "CausalSelfAttention"


def test_option_structure_and_initialisation():
    descent.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16,
                          rope=True, zero_init_proj=True, tie_weights=False))  # fmt: skip
    names = dict(model.named_parameters())
    assert "transformer.wpe.weight" not in names  # RoPE replaces the learned positions
    assert names["lm_head.weight"] is not names["transformer.wte.weight"]  # untied
    assert model.lm_head.weight.numpy().std() == pytest.approx(0.02, rel=0.2)
    for name, p in names.items():
        if name.endswith("c_proj.weight"):
            assert not p.numpy().any(), name  # zero-initialised
    assert model.num_parameters(non_embedding=True) == model.num_parameters()
    # A zero projection still gets a gradient (its input is not zero): training can start.
    idx, tgt = _batch(model.config)
    _, loss = model(descent.tensor(idx), descent.tensor(tgt))
    loss.backward()
    assert np.abs(model.transformer.h[0].mlp.c_proj.weight.grad.numpy()).max() > 0


def test_rope_generation_and_crop():
    """Inference (last position only) equals the training forward's last row; crop keeps RoPE."""
    model = _model(np.float32, rope=True, qk_norm=True, logit_softcap=5.0)
    model.eval()
    idx = descent.tensor(_batch(model.config)[0])
    full, _ = model(idx, descent.tensor(np.zeros(idx.shape, np.int64)))
    last, _ = model(idx)
    np.testing.assert_allclose(last.numpy()[:, 0], full.numpy()[:, -1], rtol=1e-5, atol=1e-6)
    out = model.generate(idx[:1, :3], 10, temperature=0.0)
    assert out.shape == (1, 13)  # the context is cropped past block_size = 8
    model.crop_block_size(4)
    assert model.transformer.h[0].attn.rotary.max_seq_len == 4
    logits, _ = model(idx[:, :4])
    assert logits.shape == (3, 1, 13)
    with pytest.raises(ValueError, match="block_size"):
        model(idx[:, :5])


def test_checkpoint_round_trips_the_options(tmp_path):
    options = OPTIONS["all"] | dict(rope_base=500.0)
    model = _model(np.float32, seed=3, **options)
    io.save(tmp_path / "ck.safetensors", model, step=0)
    ck = io.load(tmp_path / "ck.safetensors")
    cfg = GPTConfig.from_dict(ck.model_config)
    assert cfg == model.config
    model2 = GPT(cfg)
    io.load(tmp_path / "ck.safetensors", model2)
    idx, tgt = _batch(cfg)
    a, _ = model(descent.tensor(idx), descent.tensor(tgt))
    b, _ = model2(descent.tensor(idx), descent.tensor(tgt))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A checkpoint written before the options existed loads with all of them off.
    old = {k: v for k, v in model.config.to_dict().items() if k not in options}
    assert GPTConfig.from_dict(old) == GPTConfig(**{**old})
    assert not GPTConfig.from_dict(old).rope


def test_option_errors_are_explained():
    with pytest.raises(ValueError, match="even"):
        GPTConfig(n_embd=12, n_head=4, rope=True)  # head width 3
    with pytest.raises(ValueError, match="logit_softcap"):
        GPTConfig(logit_softcap=-1.0)
    with pytest.raises(ValueError, match="rope_base"):
        GPTConfig(rope=True, rope_base=1.0)
