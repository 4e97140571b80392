# Mixed precision on the CPU as the AMP recipe writes it with device_type="cpu": a GradScaler
# built as torch.amp.GradScaler("cpu") driving an autocast(bfloat16) loop with unscale_ before
# clip_grad_norm_, scaler.step / update, a skipped step on an inf gradient (the scale backs
# off, the weights do not move), scale growth after growth_interval clean steps, the scaler's
# state_dict round trip; torch.amp.custom_fwd / custom_bwd on a custom Function (cast_inputs),
# a nested autocast(enabled=False) region for a float32 island, is_autocast_enabled /
# get_autocast_dtype queries, autocast as a decorator, and finfo limits printed for logging.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(37)
X = torch.from_numpy(rng.standard_normal((32, 8)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, 32))


def dname(dt):
    return str(dt).split(".")[-1]  # a log line's dtype name


class ScaledSquare(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(ctx, x, s):
        ctx.save_for_backward(x)
        ctx.s = s
        return x * x * s

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * ctx.s * g, None


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)
        self.ln = nn.LayerNorm(16)

    def forward(self, x):
        h = self.fc1(x)
        inside = (torch.is_autocast_enabled("cpu"), dname(h.dtype))
        with torch.autocast("cpu", enabled=False):
            h = self.ln(h.float())
            island = dname(h.dtype)
        h = ScaledSquare.apply(torch.tanh(h), 0.5)
        return self.fc2(h), inside, island


net = Net()
W = reference_weights(net)
with torch.no_grad():
    for n, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=3)
losses, scales, norms, dtypes, skipped = [], [], [], [], []
for step in range(9):
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out, inside, island = net(X)
        loss = F.cross_entropy(out, y)
        dtypes.append(
            [
                dname(out.dtype),
                dname(loss.dtype),
                *inside,
                island,
                dname(torch.get_autocast_dtype("cpu")),
            ]
        )
    if step == 4:
        loss = loss * float("inf")
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    norm = nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    before = net.fc1.weight.detach().clone()
    scaler.step(opt)
    scaler.update()
    skipped.append(bool(torch.equal(before, net.fc1.weight)))
    losses.append(loss.item())
    norms.append(norm.item())
    scales.append(scaler.get_scale())

state = scaler.state_dict()
scaler2 = torch.amp.GradScaler("cpu")
scaler2.load_state_dict(state)


@torch.autocast("cpu", dtype=torch.bfloat16)
def logits_of(x):
    return net(x)[0]


with torch.no_grad():
    lg = logits_of(X[:4])

report(
    losses=losses,
    scales=scales,
    norms=[n if np.isfinite(n) else str(n) for n in norms],
    skipped=skipped,
    dtypes=dtypes[:2],
    state={k: v for k, v in sorted(state.items())},
    scale2=scaler2.get_scale(),
    growth_tracker=scaler2._get_growth_tracker()
    if hasattr(scaler2, "_get_growth_tracker")
    else None,
    logits_dtype=dname(lg.dtype),
    logits=lg.float().tolist(),
    outside=torch.is_autocast_enabled("cpu"),
    finfo=[
        repr(torch.finfo(torch.bfloat16)),
        repr(torch.finfo(torch.float16)),
        repr(torch.iinfo(torch.int16)),
    ],
)
