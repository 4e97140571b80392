"""JAX twins of benchmarks/compile.py's three training steps, each one `jax.jit` function.

Benchmark-only (JAX is the `bench` extra). Weights are copied from the descent models, so the
first losses agree with descent's; the optimizers are written out as PyTorch defines them
(AdamW with decay on matrices, Adam, SGD with momentum) and clipping as clip_grad_norm_.
Importing this module raises ImportError when jax is missing.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", False)


def set_threads(n: int) -> None:
    """XLA's CPU thread pool is sized when the backend starts: set before the first jit."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} "
            f"intra_op_parallelism_threads={n}"
        ).strip()


def _params(model) -> dict:
    return {n: jnp.asarray(p.numpy().copy()) for n, p in model.named_parameters()}


def _ce(logits, y):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _adam(params, grads, m, v, t, lr, betas, eps, wd_of):
    """PyTorch's Adam/AdamW update (wd_of(name) > 0: decoupled decay on that tensor)."""
    b1, b2 = betas
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    new_p, new_m, new_v = {}, {}, {}
    for k, p in params.items():
        g = grads[k]
        wd = wd_of(k)
        if wd:
            p = p * (1 - lr * wd)
        mk = m[k] + (1 - b1) * (g - m[k])
        vk = b2 * v[k] + (1 - b2) * g * g
        denom = jnp.sqrt(vk) / jnp.sqrt(bc2) + eps
        new_p[k] = p - (lr / bc1) * mk / denom
        new_m[k], new_v[k] = mk, vk
    return new_p, new_m, new_v


def _runner(step, state, pool):
    """A no-argument function: one jitted step on the next batch, returning the loss."""
    batches = [tuple(jnp.asarray(a) for a in b) for b in pool]
    box = {"i": 0, "state": state}

    def run():
        x, y = batches[box["i"] % len(batches)]
        box["i"] += 1
        box["state"], loss = step(box["state"], x, y)
        return float(loss)

    return run


def _adam_runner(loss_fn, params, pool, lr, betas, eps, wd_of, clip=None):
    zeros = {k: jnp.zeros_like(p) for k, p in params.items()}
    state = (params, zeros, dict(zeros), jnp.asarray(0.0, jnp.float32))

    @jax.jit
    def step(state, x, y):
        params, m, v, t = state
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        if clip is not None:
            norm = jnp.sqrt(sum(jnp.sum(g * g) for g in grads.values()))
            coef = jnp.minimum(1.0, clip / (norm + 1e-6))
            grads = {k: g * coef for k, g in grads.items()}
        t = t + 1
        params, m, v = _adam(params, grads, m, v, t, lr, betas, eps, wd_of)
        return (params, m, v, t), loss

    return _runner(step, state, pool)


def mlp_step(model, pool, lr):
    names = [n for n, _ in model.named_parameters()]
    weights = [n for n in names if n.endswith("weight")]

    def loss_fn(params, x, y):
        h = x
        for i, w in enumerate(weights):
            h = h @ params[w].T + params[w[: -len("weight")] + "bias"]
            if i < len(weights) - 1:
                h = jax.nn.relu(h)
        return _ce(h, y)

    return _adam_runner(loss_fn, _params(model), pool, lr, (0.9, 0.999), 1e-8, lambda k: 0.0)


def lenet_step(model, pool, lr, momentum=0.9):
    def conv(x, w, b, pad):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), ((pad, pad), (pad, pad)),
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))  # fmt: skip
        return y + b[None, :, None, None]

    def pool2(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss_fn(p, x, y):
        h = pool2(jax.nn.relu(conv(x, p["conv1.weight"], p["conv1.bias"], 2)))
        h = pool2(jax.nn.relu(conv(h, p["conv2.weight"], p["conv2.bias"], 0)))
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(h @ p["fc1.weight"].T + p["fc1.bias"])
        h = jax.nn.relu(h @ p["fc2.weight"].T + p["fc2.bias"])
        return _ce(h @ p["fc3.weight"].T + p["fc3.bias"], y)

    params = _params(model)
    state = (params, {k: jnp.zeros_like(v) for k, v in params.items()})

    @jax.jit
    def step(state, x, y):
        params, buf = state
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        buf = {k: momentum * buf[k] + grads[k] for k in params}  # PyTorch: buf_1 = g_1
        params = {k: params[k] - lr * buf[k] for k in params}
        return (params, buf), loss

    return _runner(step, state, pool)


def gpt_step(model, cfg, pool, lr, betas, wd, clip):
    """nanoGPT's model (tied embedding, no bias, exact GELU) as descent's GPT names it."""
    H, C, L = cfg.n_head, cfg.n_embd, cfg.n_layer
    params = {k: v for k, v in _params(model).items() if k != "lm_head.weight"}

    def ln(x, w):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * w

    def loss_fn(p, idx, tgt):
        B, T = idx.shape
        D = C // H
        x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
        causal = jnp.tril(jnp.ones((T, T), bool))
        for i in range(L):
            pre = f"transformer.h.{i}."
            h = ln(x, p[pre + "ln_1.weight"]) @ p[pre + "attn.c_attn.weight"].T
            q, k, v = (a.reshape(B, T, H, D).transpose(0, 2, 1, 3) for a in jnp.split(h, 3, -1))
            s = jnp.where(causal, q @ k.transpose(0, 1, 3, 2) / np.sqrt(D), -jnp.inf)
            y = (jax.nn.softmax(s, -1) @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
            x = x + y @ p[pre + "attn.c_proj.weight"].T
            h = jax.nn.gelu(ln(x, p[pre + "ln_2.weight"]) @ p[pre + "mlp.c_fc.weight"].T,
                            approximate=False)  # fmt: skip
            x = x + h @ p[pre + "mlp.c_proj.weight"].T
        logits = ln(x, p["transformer.ln_f.weight"]) @ p["transformer.wte.weight"].T
        return _ce(logits.reshape(B * T, -1), tgt.reshape(-1))

    def wd_of(k):
        return wd if params[k].ndim >= 2 else 0.0

    return _adam_runner(loss_fn, params, pool_pairs(pool), lr, betas, 1e-8, wd_of, clip=clip)


def pool_pairs(pool):
    """gpt pools hold (2, B, T) arrays: (inputs, targets)."""
    return [(b[0], b[1]) for b in pool]
