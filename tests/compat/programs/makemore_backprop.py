# Karpathy's makemore part 4 ("becoming a backprop ninja") in its own shape, written afresh: a
# character-level MLP over a block of 3 context characters from a few dozen names, an embedding
# table C indexed by Xb, a hand-written BatchNorm with Bessel's correction (bnvar with 1/(n-1)),
# tanh, and the cross-entropy broken into every intermediate (logit_maxes, norm_logits, counts,
# counts_sum_inv, probs, logprobs); each intermediate calls .retain_grad(), and the manual
# backward pass (dlogprobs by a zeros_like with -1/n scattered at range(n), Yb, the broadcast
# sums, the max's one_hot gradient, dhpreact by (1 - h**2), the BatchNorm backward in one line,
# dC by a Python loop of index additions) is compared with autograd by a cmp() of
# torch.all(dt == t.grad) and torch.allclose / max abs difference; then the training loop with the
# manual gradients plugged into p.data += -lr * grad, BatchNorm running statistics under
# torch.no_grad, and sampling names with torch.multinomial replaced by an inverse-CDF over
# NumPy uniforms (so both runs draw the same characters).
import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import report

words = """emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily
elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace chloe
penelope layla riley
zoey nora lily eleanor hannah lillian addison aubrey ellie stella natalie zoe leah hazel violet
aurora savannah audrey brooklyn bella claire skylar lucy paisley everly anna caroline nova genesis
emilia kennedy""".split()
chars = sorted(list(set("".join(words))))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
vocab_size = len(itos)
block_size = 3


def build_dataset(words):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


Xtr, Ytr = build_dataset(words)
n_embd, n_hidden = 10, 64
rng = np.random.default_rng(2197)


def param(shape, scale):
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32))


C = param((vocab_size, n_embd), 1.0)
W1 = param((n_embd * block_size, n_hidden), (5 / 3) / ((n_embd * block_size) ** 0.5))
b1 = param((n_hidden,), 0.1)
W2 = param((n_hidden, vocab_size), 0.1)
b2 = param((vocab_size,), 0.1)
bngain = param((1, n_hidden), 0.1) + 1.0
bnbias = param((1, n_hidden), 0.1)
parameters = [C, W1, b1, W2, b2, bngain, bnbias]
for p in parameters:
    p.requires_grad = True

batch_size = 32
n = batch_size
ix = torch.from_numpy(rng.integers(0, Xtr.shape[0], (batch_size,)))
Xb, Yb = Xtr[ix], Ytr[ix]

emb = C[Xb]
embcat = emb.view(emb.shape[0], -1)
hprebn = embcat @ W1 + b1
bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
bndiff = hprebn - bnmeani
bndiff2 = bndiff**2
bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)
bnvar_inv = (bnvar + 1e-5) ** -0.5
bnraw = bndiff * bnvar_inv
hpreact = bngain * bnraw + bnbias
h = torch.tanh(hpreact)
logits = h @ W2 + b2
logit_maxes = logits.max(1, keepdim=True).values
norm_logits = logits - logit_maxes
counts = norm_logits.exp()
counts_sum = counts.sum(1, keepdims=True)
counts_sum_inv = counts_sum**-1
probs = counts * counts_sum_inv
logprobs = probs.log()
loss = -logprobs[range(n), Yb].mean()
for p in parameters:
    p.grad = None
for t in [
    logprobs,
    probs,
    counts,
    counts_sum,
    counts_sum_inv,
    norm_logits,
    logit_maxes,
    logits,
    h,
    hpreact,
    bnraw,
    bnvar_inv,
    bnvar,
    bndiff2,
    bndiff,
    hprebn,
    bnmeani,
    embcat,
    emb,
]:
    t.retain_grad()
loss.backward()

checks = {}


def cmp(s, dt, t):
    ex = torch.all(dt == t.grad).item()
    app = torch.allclose(dt, t.grad, rtol=1e-4, atol=1e-6)
    maxdiff = (dt - t.grad).abs().max().item()
    checks[s] = [bool(app), maxdiff < 1e-5]
    return ex


dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0 / n
cmp("logprobs", dlogprobs, logprobs)
dprobs = (1.0 / probs) * dlogprobs
cmp("probs", dprobs, probs)
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
cmp("counts_sum_inv", dcounts_sum_inv, counts_sum_inv)
dcounts = counts_sum_inv * dprobs
dcounts_sum = (-(counts_sum**-2)) * dcounts_sum_inv
cmp("counts_sum", dcounts_sum, counts_sum)
dcounts += torch.ones_like(counts) * dcounts_sum
cmp("counts", dcounts, counts)
dnorm_logits = counts * dcounts
cmp("norm_logits", dnorm_logits, norm_logits)
dlogits = dnorm_logits.clone()
dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
cmp("logit_maxes", dlogit_maxes, logit_maxes)
dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
cmp("logits", dlogits, logits)
dh = dlogits @ W2.T
dW2 = h.T @ dlogits
db2 = dlogits.sum(0)
cmp("h", dh, h)
cmp("W2", dW2, W2)
cmp("b2", db2, b2)
dhpreact = (1.0 - h**2) * dh
cmp("hpreact", dhpreact, hpreact)
dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
dbnraw = bngain * dhpreact
dbnbias = dhpreact.sum(0, keepdim=True)
cmp("bngain", dbngain, bngain)
cmp("bnbias", dbnbias, bnbias)
dbndiff = bnvar_inv * dbnraw
dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
dbnvar = (-0.5 * (bnvar + 1e-5) ** -1.5) * dbnvar_inv
dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar
dbndiff += (2 * bndiff) * dbndiff2
dhprebn = dbndiff.clone()
dbnmeani = (-dbndiff).sum(0)
dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)
cmp("hprebn", dhprebn, hprebn)
dembcat = dhprebn @ W1.T
dW1 = embcat.T @ dhprebn
db1 = dhprebn.sum(0)
demb = dembcat.view(emb.shape)
dC = torch.zeros_like(C)
for k in range(Xb.shape[0]):
    for j in range(Xb.shape[1]):
        ix_ = Xb[k, j]
        dC[ix_] += demb[k, j]
cmp("C", dC, C)
# the fused forms from the lecture
loss_fast = F.cross_entropy(logits, Yb)
dlogits_fast = F.softmax(logits, 1)
dlogits_fast[range(n), Yb] -= 1
dlogits_fast /= n
fused_ce = (dlogits_fast - logits.grad).abs().max().item() < 1e-6
dhprebn_fast = (
    bngain
    * bnvar_inv
    / n
    * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
)
fused_bn = (dhprebn_fast - hprebn.grad).abs().max().item() < 1e-6

# training with the manual gradients
losses = []
bnmean_running = torch.zeros((1, n_hidden))
bnstd_running = torch.ones((1, n_hidden))
with torch.no_grad():
    for i in range(30):
        ix = torch.from_numpy(rng.integers(0, Xtr.shape[0], (batch_size,)))
        Xb, Yb = Xtr[ix], Ytr[ix]
        emb = C[Xb]
        embcat = emb.view(emb.shape[0], -1)
        hprebn = embcat @ W1 + b1
        bnmean = hprebn.mean(0, keepdim=True)
        bnvar = hprebn.var(0, keepdim=True, unbiased=True)
        bnvar_inv = (bnvar + 1e-5) ** -0.5
        bnraw = (hprebn - bnmean) * bnvar_inv
        hpreact = bngain * bnraw + bnbias
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Yb)
        dlogits = F.softmax(logits, 1)
        dlogits[range(n), Yb] -= 1
        dlogits /= n
        dh = dlogits @ W2.T
        dW2 = h.T @ dlogits
        db2 = dlogits.sum(0)
        dhpreact = (1.0 - h**2) * dh
        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
        dbnbias = dhpreact.sum(0, keepdim=True)
        dhprebn = (
            bngain
            * bnvar_inv
            / n
            * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
        )
        dembcat = dhprebn @ W1.T
        dW1 = embcat.T @ dhprebn
        db1 = dhprebn.sum(0)
        demb = dembcat.view(emb.shape)
        dC = torch.zeros_like(C)
        dC.index_add_(0, Xb.view(-1), demb.view(-1, n_embd))
        grads = [dC, dW1, db1, dW2, db2, dbngain, dbnbias]
        lr = 0.1 if i < 20 else 0.01
        for p, grad in zip(parameters, grads):
            p.data += -lr * grad
        bnmean_running = 0.999 * bnmean_running + 0.001 * bnmean
        bnstd_running = 0.999 * bnstd_running + 0.001 * bnvar.sqrt()
        losses.append(loss.item())

    out_names = []
    u = rng.uniform(size=(5, 20))
    for s in range(5):
        out, context = [], [0] * block_size
        for t in range(20):
            emb = C[torch.tensor([context])]
            hpre = emb.view(emb.shape[0], -1) @ W1 + b1
            hpre = bngain * (hpre - bnmean_running) / bnstd_running + bnbias
            probs = F.softmax(torch.tanh(hpre) @ W2 + b2, dim=1)
            ix = int(
                torch.searchsorted(
                    torch.cumsum(probs[0], 0), torch.tensor(u[s, t], dtype=torch.float32)
                ).clamp(max=vocab_size - 1)
            )
            context = context[1:] + [ix]
            out.append(ix)
            if ix == 0:
                break
        out_names.append("".join(itos[i] for i in out))

report(
    loss0=loss_fast.item(),
    checks=checks,
    fused_ce=bool(fused_ce),
    fused_bn=bool(fused_bn),
    losses=losses,
    bnmean_running=bnmean_running[0, :8].tolist(),
    names=out_names,
)
