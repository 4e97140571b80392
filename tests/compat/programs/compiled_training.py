# A training script in the shape of the "Introduction to torch.compile" tutorial and the
# nanoGPT / gpt-fast / torchtune set-up blocks: the backend switches (cudnn.benchmark, TF32,
# set_float32_matmul_precision, torch._dynamo.config / torch._inductor.config settings), a model
# wrapped by torch.compile(model) and trained (its state_dict's "_orig_mod." keys, saving the
# unwrapped model through _orig_mod and loading it into a fresh uncompiled one), an
# @torch.compile-decorated bias-GELU helper called inside forward, torch.compiler.disable on a
# logging helper, torch.compiler.is_compiling(), a compiled evaluation function under no_grad,
# a compiled whole training step (forward, backward, clip, step) as a closure over the model and
# optimizer, and torch._dynamo.reset(). Our own program; data made with NumPy.
import io
import math

import numpy as np
import torch
import torch._dynamo
import torch._inductor.config
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

# the set-up lines found at the top of GPU training scripts; harmless on CPU
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_float32_matmul_precision("high")
torch._dynamo.config.cache_size_limit = 16
torch._inductor.config.coordinate_descent_tuning = True
device = "cuda" if torch.cuda.is_available() else "cpu"
dtype = torch.float32
precision = torch.get_float32_matmul_precision()
# "inductor" (the default) generates C++/Triton kernels; "eager" only traces, which keeps this
# CPU run in seconds. Scripts take it from a flag.
compile_backend = "eager"


@torch.compile(backend=compile_backend)
def bias_gelu(x, bias):
    x = x + bias
    return x * 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


log_lines = []


@torch.compiler.disable
def log_shape(name, t):
    log_lines.append("%s %s" % (name, list(t.shape)))


class Block(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc = nn.Linear(d, hidden, bias=False)
        self.fc_bias = nn.Parameter(torch.zeros(hidden))
        self.proj = nn.Linear(hidden, d)

    def forward(self, x):
        h = bias_gelu(self.fc(self.ln(x)), self.fc_bias)
        return x + self.proj(h)


class Net(nn.Module):
    def __init__(self, d_in=6, d=16, n_blocks=2, n_classes=4):
        super().__init__()
        self.inp = nn.Linear(d_in, d)
        self.blocks = nn.ModuleList([Block(d, 2 * d) for _ in range(n_blocks)])
        self.head = nn.Linear(d, n_classes)
        self.compiling_now = None

    def forward(self, x):
        # an attribute, not a growing list: dynamo guards on a list's length, so appending here
        # recompiled forward (and the training step around it) at every call
        self.compiling_now = torch.compiler.is_compiling()
        x = self.inp(x)
        for blk in self.blocks:
            x = blk(x)
        return self.head(x)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


rng = np.random.default_rng(113)
X = rng.standard_normal((96, 6)).astype(np.float32)
Y = (X @ rng.standard_normal((6, 4))).argmax(1)
Xv = rng.standard_normal((32, 6)).astype(np.float32)
Yv = (Xv @ rng.standard_normal((6, 4))).argmax(1)
x_all = torch.from_numpy(X).to(device, dtype)
y_all = torch.from_numpy(Y).to(device)
x_val = torch.from_numpy(Xv).to(device, dtype)
y_val = torch.from_numpy(Yv).to(device)

# 1. torch.compile(model): the returned wrapper trains like the model
model = Net().to(device)
load_reference(model)
eager_out = model(x_val).detach()
eager_forward_not_compiling = model.compiling_now
compiled = torch.compile(model, backend=compile_backend)
wrapper_type_ok = isinstance(compiled, nn.Module) and compiled._orig_mod is model
compiled_out = compiled(x_val).detach()
same_as_eager = float((compiled_out - eager_out).abs().max())
optimizer = torch.optim.AdamW(compiled.parameters(), lr=3e-3, weight_decay=0.01)
losses = []
for epoch in range(3):
    for i in range(0, 96, 32):
        xb, yb = x_all[i:i + 32], y_all[i:i + 32]
        logits = compiled(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    log_shape("epoch%d" % epoch, logits)


@torch.compile(backend=compile_backend)
def evaluate(net, x, y):
    logits = net(x)
    return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()


compiled.eval()
with torch.no_grad():
    val_loss, val_acc = evaluate(compiled, x_val, y_val)
compiled.train()

# the compiled wrapper's state_dict keys carry "_orig_mod."; scripts save the inner model's
sd_keys = [k.replace("_orig_mod.", "") for k in compiled.state_dict().keys()]
buf = io.BytesIO()
torch.save(compiled._orig_mod.state_dict(), buf)
buf.seek(0)
restored = Net().to(device)
missing, unexpected = restored.load_state_dict(torch.load(buf, weights_only=True))
with torch.no_grad():
    restored_gap = float((restored(x_val) - model(x_val)).abs().max())
# loading the prefixed keys needs the prefix stripped (the idiom from many repos)
unwanted_prefix = "_orig_mod."
state = {k[len(unwanted_prefix):] if k.startswith(unwanted_prefix) else k: v
         for k, v in compiled.state_dict().items()}
restored2 = Net()
restored2.load_state_dict(state)
restored2_keys = sorted(restored2.state_dict().keys())

# 2. a compiled training step: forward, backward, clipping and the optimizer step in one function
torch._dynamo.reset()
model2 = Net(n_blocks=1)
load_reference(model2)
opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)


def train_step(xb, yb):
    opt2.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model2(xb), yb, label_smoothing=0.05)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model2.parameters(), 1.0)
    opt2.step()
    return loss.detach(), norm


train_step = torch.compile(train_step, backend=compile_backend)
step_losses, step_norms = [], []
for epoch in range(2):
    for i in range(0, 96, 32):
        loss, norm = train_step(x_all[i:i + 32], y_all[i:i + 32])
        step_losses.append(loss.item())
        step_norms.append(norm.item())
final_w = model2.head.weight.detach().sum().item()

report(
    precision=precision,
    matmul_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
    cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
    wrapper_type_ok=bool(wrapper_type_ok),
    same_as_eager=same_as_eager,
    losses=losses,
    val_loss=val_loss.item(),
    val_acc=val_acc.item(),
    sd_keys=sd_keys,
    missing=list(missing),
    unexpected=list(unexpected),
    restored_gap=restored_gap,
    restored2_keys=restored2_keys,
    log_lines=log_lines,
    eager_forward_not_compiling=eager_forward_not_compiling,
    step_losses=step_losses,
    step_norms=step_norms,
    final_w=final_w,
)
