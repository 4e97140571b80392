# Mixed precision by hand, as Apex's O2 "master weights" recipe, fairseq's FP16Optimizer and
# the pre-autocast tutorials wrote it: model.half() with the BatchNorm layers kept in float32
# (m.float() plus forward pre-hooks / hooks that cast around them), float32 master copies of the
# parameters driving the optimizer, the loss computed in float32 from .float() logits, a dynamic
# loss scale (start at 2**20, halve and skip the step on inf/nan found by torch.isfinite, double
# after a run of clean steps), gradient accumulation over micro-batches, unscaling into the
# master .grad, clip_grad_norm_ on the masters, copying back with p.data.copy_(master.data),
# torch.finfo(torch.float16) limits, and a float32 run of the same model for comparison.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(16)

N, D, C = 96, 12, 4
Xn = rng.standard_normal((N, D)).astype(np.float32)
Wt = rng.standard_normal((D, C))
yn = np.argmax(Xn @ Wt + 0.5 * rng.standard_normal((N, C)), axis=1)
X, y = torch.from_numpy(Xn), torch.from_numpy(yn)


def make_model():
    model = nn.Sequential(nn.Linear(D, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 32),
                          nn.ReLU(), nn.Linear(32, C))
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def bn_to_float(module):
    """BatchNorm in float32 under a half model (Apex's keep_batchnorm_fp32)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.float()
        module.register_forward_pre_hook(lambda m, inp: tuple(t.float() for t in inp))
        module.register_forward_hook(lambda m, inp, out: out.half())
    for child in module.children():
        bn_to_float(child)
    return module


class DynamicLossScaler:
    def __init__(self, init_scale=2.0 ** 20, scale_factor=2.0, scale_window=4):
        self.loss_scale = init_scale
        self.scale_factor = scale_factor
        self.scale_window = scale_window
        self._iter = 0
        self._last_overflow_iter = -1

    @staticmethod
    def has_overflow(params):
        for p in params:
            if p.grad is not None and not torch.isfinite(p.grad).all():
                return True
        return False

    def update_scale(self, overflow):
        if overflow:
            self.loss_scale /= self.scale_factor
            self._last_overflow_iter = self._iter
        elif (self._iter - self._last_overflow_iter) % self.scale_window == 0:
            self.loss_scale *= self.scale_factor
        self._iter += 1


model = bn_to_float(make_model().half())
dtypes = [p.dtype == torch.float16 for p in model.parameters()]
bn_dtype = model[1].running_mean.dtype == torch.float32
master_params = [p.detach().clone().float().requires_grad_(True) for p in model.parameters()]
optimizer = torch.optim.SGD(master_params, lr=0.1, momentum=0.9)
scaler = DynamicLossScaler()
accum = 2
log = []
for step in range(12):
    for p in model.parameters():
        p.grad = None
    total = 0.0
    for micro in range(accum):
        idx = torch.arange(micro * 16 + step * 32, micro * 16 + step * 32 + 16) % N
        logits = model(X[idx].half())
        loss = F.cross_entropy(logits.float(), y[idx]) / accum
        (loss * scaler.loss_scale).backward()
        total += loss.item()
    overflow = scaler.has_overflow(model.parameters())
    scale_used = scaler.loss_scale
    scaler.update_scale(overflow)
    if overflow:
        log.append([step, total, scale_used, True, 0.0])
        continue
    for master, p in zip(master_params, model.parameters()):
        master.grad = p.grad.detach().float() / scale_used
    norm = torch.nn.utils.clip_grad_norm_(master_params, max_norm=5.0)
    optimizer.step()
    with torch.no_grad():
        for master, p in zip(master_params, model.parameters()):
            p.data.copy_(master.data)
    log.append([step, total, scale_used, False, float(norm)])

grad_dtypes = [p.grad.dtype == p.dtype for p in model.parameters()]
model.eval()
with torch.no_grad():
    half_logits = model(X[:8].half())
    half_acc = (model(X.half()).argmax(1) == y).float().mean().item()
master_vs_model = max((m.half() - p).abs().max().item()
                      for m, p in zip(master_params, model.parameters()))

# the same recipe in float32 (no scaling) for comparison
ref = make_model()
opt32 = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
ref_losses = []
for step in range(12):
    if not log[step][3]:
        opt32.zero_grad()
        total = 0.0
        for micro in range(accum):
            idx = torch.arange(micro * 16 + step * 32, micro * 16 + step * 32 + 16) % N
            loss = F.cross_entropy(ref(X[idx]), y[idx]) / accum
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm=5.0)
        opt32.step()
        ref_losses.append(total)

fi = torch.finfo(torch.float16)
report(
    dtypes=dtypes,
    bn_dtype=bn_dtype,
    log=log,
    final_scale=scaler.loss_scale,
    grad_dtypes=grad_dtypes,
    half_logits=half_logits.float().tolist(),
    half_logits_dtype=half_logits.dtype == torch.float16,
    half_acc=half_acc,
    master_vs_model_small=master_vs_model < 1e-2,
    ref_losses=ref_losses,
    finfo=[fi.max, fi.tiny, fi.eps, fi.bits, fi.resolution],
    overflow_at=float(torch.tensor(70000.0).half()),
    subnormal=float(torch.tensor(1e-6).half()),
)
