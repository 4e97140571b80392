"""Train a character-level GPT on tinyshakespeare, the whole loop on one screen (nanoGPT style).

    .venv/bin/python examples/train_gpt.py

`descent train` runs the same recipe with checkpoints, resume, metrics and a progress bar
(src/descent/train.py); this script shows the bare loop. Change the constants to experiment.
"""

import math
import os
import time

import descent
from descent import io as dio
from descent.data import CharTokenizer, TokenStream, load_corpus
from descent.models import GPT, GPTConfig
from descent.optim import clip_grad_norm_
from descent.optim.lr_scheduler import warmup_cosine_lr

# -- the recipe: nanoGPT's "baby GPT" (config/train_shakespeare_char.py, CPU settings) ------------
DATA = descent.settings.data_path() or "shakespeare"  # $DESCENT_DATA, a path, 'python'
SEED = 1337
N_LAYER, N_HEAD, N_EMBD, BLOCK_SIZE, DROPOUT = 4, 4, 128, 64, 0.0
BATCH_SIZE = 12
MAX_ITERS = 2000
LEARNING_RATE, MIN_LR, WARMUP_ITERS, LR_DECAY_ITERS = 1e-3, 1e-4, 100, 2000
WEIGHT_DECAY, BETAS, GRAD_CLIP = 0.1, (0.9, 0.99), 1.0
EVAL_INTERVAL, EVAL_ITERS = 250, 20
OUT = "out/example-gpt.safetensors"

# This script owns its process: keep a step's freed temporaries on the heap (docs/settings.md).
descent.backend.tune_malloc()

# -- data: characters -> ids; the first 90% train, the rest validation ----------------------------
descent.manual_seed(SEED)
text = load_corpus(DATA)
tokenizer = CharTokenizer(text)
stream = TokenStream(tokenizer.encode_array(text), tokenizer=tokenizer, val_fraction=0.1)
batches = descent.Generator(SEED)  # where the training windows come from
print(f"{len(text):,} characters, vocabulary of {tokenizer.vocab_size}")

# -- model and optimizer --------------------------------------------------------------------------
config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=BLOCK_SIZE, n_layer=N_LAYER,
                   n_head=N_HEAD, n_embd=N_EMBD, dropout=DROPOUT, bias=False)  # fmt: skip
model = GPT(config)
optimizer = model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
print(f"{model.num_parameters() / 1e6:.2f}M parameters")


@descent.no_grad()
def estimate_loss() -> dict:
    """Mean loss over EVAL_ITERS random batches of each split, without dropout."""
    model.eval()
    gen = descent.Generator(SEED + 1)
    out = {}
    for split in ("train", "val"):
        total = 0.0
        for _ in range(EVAL_ITERS):
            x, y = stream.get_batch(split, BATCH_SIZE, BLOCK_SIZE, gen)
            total += model(x, y)[1].item()
        out[split] = total / EVAL_ITERS
    model.train()
    return out


# -- the loop -------------------------------------------------------------------------------------
t0 = time.perf_counter()
for it in range(MAX_ITERS + 1):
    if it % EVAL_INTERVAL == 0 or it == MAX_ITERS:
        losses = estimate_loss()
        print(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    if it == MAX_ITERS:
        break
    lr = warmup_cosine_lr(it, WARMUP_ITERS, LR_DECAY_ITERS, LEARNING_RATE, MIN_LR)
    for group in optimizer.param_groups:
        group["lr"] = lr
    x, y = stream.get_batch("train", BATCH_SIZE, BLOCK_SIZE, batches)  # (B, T) ids, targets
    logits, loss = model(x, y)  # forward: the scorecard
    loss.backward()  # every parameter's partial derivative
    norm = clip_grad_norm_(model.parameters(), GRAD_CLIP)  # keep a bad batch from jumping far
    optimizer.step()  # the descent: a step against the gradient
    optimizer.zero_grad(set_to_none=True)
    if it % 50 == 0:
        ms = (time.perf_counter() - t0) / (it + 1) * 1e3
        print(f"iter {it}: loss {loss.item():.4f}, lr {lr:.2e}, grad norm {float(norm):.2f}, "
              f"{ms:.0f} ms/iter")  # fmt: skip

# -- save and write -------------------------------------------------------------------------------
os.makedirs(os.path.dirname(OUT), exist_ok=True)
dio.save(OUT, model, optimizer, tokenizer=tokenizer.to_dict(), step=MAX_ITERS)
prompt = descent.tensor([tokenizer.encode("\n")])
sample = model.generate(prompt, 300, temperature=0.8, top_k=200, generator=descent.Generator(0))
print(tokenizer.decode(sample[0].numpy()))
print(f"saved {OUT}; final val loss {losses['val']:.4f} (nanoGPT: 1.88); "
      f"{math.floor(time.perf_counter() - t0)} s")  # fmt: skip
