# Semi-supervised learning as kekmodel/FixMatch-pytorch and the MixMatch / Mean Teacher ports write
# it: FixMatch's interleave / de_interleave (the labelled, weak and strong batches concatenated
# and shuffled for BatchNorm statistics), pseudo-labels from the detached weak view by
# torch.max(softmax) with a confidence mask (ge(threshold)), the strong view's masked
# cross-entropy, distribution alignment, a ModelEMA class updating parameters and copying
# buffers under no_grad, a cosine schedule with warmup by LambdaLR, no-decay groups by name;
# MixMatch's label guessing over K augmentations, temperature sharpening, MixUp with
# lam = max(lam, 1 - lam), the interleave across mixed batches and a linear ramp of the
# unsupervised MSE; Mean Teacher's sigmoid rampup and a softmax-MSE consistency; UDA's
# training-signal annealing. Augmentations are NumPy noise and flips. Our own program.
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(8)
N_CLS, D = 3, 6
MU, B = 2, 6  # unlabelled ratio, labelled batch


def make_data(n):
    y = rng.integers(0, N_CLS, size=n)
    centers = np.array(
        [[2, 0, 0, 1, 0, 0], [0, 2, 0, 0, 1, 0], [0, 0, 2, 0, 0, 1]], dtype=np.float32
    )
    x = centers[y] + rng.normal(scale=0.8, size=(n, D)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def weak(x):
    return x + 0.05 * torch.from_numpy(rng.normal(size=x.shape).astype(np.float32))


def strong(x):
    mask = torch.from_numpy((rng.uniform(size=x.shape) > 0.2).astype(np.float32))
    return x.flip(1).flip(1) * mask + 0.3 * torch.from_numpy(
        rng.normal(size=x.shape).astype(np.float32)
    )


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 32)
        self.bn = nn.BatchNorm1d(32, momentum=0.001)
        self.fc2 = nn.Linear(32, N_CLS)

    def forward(self, x):
        return self.fc2(F.leaky_relu(self.bn(self.fc1(x)), 0.1))


def fresh():
    m = Net()
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


def interleave(x, size):
    s = list(x.shape)
    return x.reshape([-1, size] + s[1:]).transpose(0, 1).reshape([-1] + s[1:])


def de_interleave(x, size):
    s = list(x.shape)
    return x.reshape([size, -1] + s[1:]).transpose(0, 1).reshape([-1] + s[1:])


class ModelEMA:
    def __init__(self, model, decay):
        self.ema = copy.deepcopy(model)
        self.ema.eval()
        self.decay = decay
        self.param_keys = [k for k, _ in self.ema.named_parameters()]
        self.buffer_keys = [k for k, _ in self.ema.named_buffers()]
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        with torch.no_grad():
            msd = model.state_dict()
            esd = self.ema.state_dict()
            for k in self.param_keys:
                model_v = msd[k].detach()
                ema_v = esd[k]
                esd[k].copy_(ema_v * self.decay + (1.0 - self.decay) * model_v)
            for k in self.buffer_keys:
                esd[k].copy_(msd[k])


def get_cosine_schedule_with_warmup(
    optimizer, num_warmup_steps, num_training_steps, num_cycles=7.0 / 16.0, last_epoch=-1
):
    def _lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        no_progress = float(current_step - num_warmup_steps) / float(
            max(1, num_training_steps - num_warmup_steps)
        )
        return max(0.0, math.cos(math.pi * num_cycles * no_progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda, last_epoch)


x_lab, y_lab = make_data(30)
x_unl, y_unl_true = make_data(120)
x_test, y_test = make_data(60)

# ---- FixMatch
model = fresh()
no_decay = ["bias", "bn"]
grouped = [
    {
        "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
        "weight_decay": 5e-4,
    },
    {
        "params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
        "weight_decay": 0.0,
    },
]
optimizer = torch.optim.SGD(grouped, lr=0.05, momentum=0.9, nesterov=True)
STEPS = 14
scheduler = get_cosine_schedule_with_warmup(optimizer, 2, STEPS)
ema = ModelEMA(model, 0.9)
p_model = torch.ones(N_CLS) / N_CLS
fix_log = []
for step in range(STEPS):
    li = rng.choice(30, B, replace=False)
    ui = rng.choice(120, B * MU, replace=False)
    inputs_x, targets_x = weak(x_lab[li]), y_lab[li]
    inputs_u_w, inputs_u_s = weak(x_unl[ui]), strong(x_unl[ui])
    inputs = interleave(torch.cat((inputs_x, inputs_u_w, inputs_u_s)), 2 * MU + 1)
    logits = model(inputs)
    logits = de_interleave(logits, 2 * MU + 1)
    logits_x = logits[:B]
    logits_u_w, logits_u_s = logits[B:].chunk(2)
    del logits
    Lx = F.cross_entropy(logits_x, targets_x, reduction="mean")
    pseudo_label = torch.softmax(logits_u_w.detach() / 1.0, dim=-1)
    p_model = 0.9 * p_model + 0.1 * pseudo_label.mean(0)
    aligned = pseudo_label / p_model
    aligned = aligned / aligned.sum(dim=1, keepdim=True)
    max_probs, targets_u = torch.max(aligned, dim=-1)
    mask = max_probs.ge(0.6).float()
    Lu = (F.cross_entropy(logits_u_s, targets_u, reduction="none") * mask).mean()
    loss = Lx + 1.0 * Lu
    loss.backward()
    optimizer.step()
    scheduler.step()
    ema.update(model)
    model.zero_grad()
    fix_log.append([Lx.item(), Lu.item(), mask.mean().item(), scheduler.get_last_lr()[0]])
with torch.no_grad():
    ema_acc = (ema.ema(x_test).argmax(1) == y_test).float().mean().item()
    ema_logits = ema.ema(x_test[:5]).tolist()


# ---- MixMatch
def sharpen(p, T):
    pt = p ** (1 / T)
    return pt / pt.sum(dim=1, keepdim=True)


def linear_rampup(current, rampup_length=10):
    if rampup_length == 0:
        return 1.0
    current = np.clip(current / rampup_length, 0.0, 1.0)
    return float(current)


model = fresh()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
mix_log = []
for step in range(10):
    li = rng.choice(30, B, replace=False)
    ui = rng.choice(120, B, replace=False)
    inputs_x = weak(x_lab[li])
    targets_x = torch.zeros(B, N_CLS).scatter_(1, y_lab[li].view(-1, 1).long(), 1)
    inputs_u, inputs_u2 = weak(x_unl[ui]), weak(x_unl[ui])
    with torch.no_grad():
        outputs_u = model(inputs_u)
        outputs_u2 = model(inputs_u2)
        p = (torch.softmax(outputs_u, dim=1) + torch.softmax(outputs_u2, dim=1)) / 2
        targets_u = sharpen(p, 0.5).detach()
    all_inputs = torch.cat([inputs_x, inputs_u, inputs_u2], dim=0)
    all_targets = torch.cat([targets_x, targets_u, targets_u], dim=0)
    lam = np.random.default_rng(step).beta(0.75, 0.75)
    lam = max(lam, 1 - lam)
    idx = torch.from_numpy(rng.permutation(all_inputs.size(0)))
    mixed_input = lam * all_inputs + (1 - lam) * all_inputs[idx]
    mixed_target = lam * all_targets + (1 - lam) * all_targets[idx]
    mixed_input = list(torch.split(mixed_input, B))
    logits = [model(mixed_input[0])]
    for inp in mixed_input[1:]:
        logits.append(model(inp))
    logits_x = logits[0]
    logits_u = torch.cat(logits[1:], dim=0)
    Lx = -torch.mean(torch.sum(F.log_softmax(logits_x, dim=1) * mixed_target[:B], dim=1))
    probs_u = torch.softmax(logits_u, dim=1)
    Lu = torch.mean((probs_u - mixed_target[B:]) ** 2)
    w = 75.0 * linear_rampup(step + 1)
    loss = Lx + w * Lu
    opt.zero_grad()
    loss.backward()
    opt.step()
    mix_log.append([Lx.item(), Lu.item(), float(lam)])


# ---- Mean Teacher with UDA's training-signal annealing on the supervised part
def sigmoid_rampup(current, rampup_length):
    if rampup_length == 0:
        return 1.0
    current = np.clip(current, 0.0, rampup_length)
    phase = 1.0 - current / rampup_length
    return float(np.exp(-5.0 * phase * phase))


def softmax_mse_loss(input_logits, target_logits):
    input_softmax = F.softmax(input_logits, dim=1)
    target_softmax = F.softmax(target_logits, dim=1)
    return F.mse_loss(input_softmax, target_softmax, reduction="sum") / N_CLS


student = fresh()
teacher = fresh()
for param in teacher.parameters():
    param.detach_()
opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
mt_log = []
for step in range(10):
    li = rng.choice(30, B, replace=False)
    ui = rng.choice(120, B, replace=False)
    xb = torch.cat([weak(x_lab[li]), weak(x_unl[ui])])
    s_out = student(xb)
    with torch.no_grad():
        t_out = teacher(torch.cat([weak(x_lab[li]), weak(x_unl[ui])]))
    tsa = math.exp((step / 10 - 1) * 5) * (1 - 1 / N_CLS) + 1 / N_CLS  # exp schedule
    sup = F.cross_entropy(s_out[:B], y_lab[li], reduction="none")
    correct_p = F.softmax(s_out[:B], 1).gather(1, y_lab[li].unsqueeze(1)).squeeze(1)
    tsa_mask = (correct_p < tsa).float().detach()
    sup = (sup * tsa_mask).sum() / tsa_mask.sum().clamp(min=1)
    cons = sigmoid_rampup(step, 8) * softmax_mse_loss(s_out, t_out) / xb.size(0)
    loss = sup + 10.0 * cons
    opt.zero_grad()
    loss.backward()
    opt.step()
    alpha = min(1 - 1 / (step + 1), 0.95)
    for ema_param, param in zip(teacher.parameters(), student.parameters()):
        ema_param.data.mul_(alpha).add_(param.data, alpha=1 - alpha)
    mt_log.append([sup.item(), cons.item(), tsa_mask.sum().item()])
teacher.eval()
with torch.no_grad():
    teacher_acc = (teacher(x_test).argmax(1) == y_test).float().mean().item()
report(
    fixmatch=fix_log,
    ema_acc=ema_acc,
    ema_logits=ema_logits,
    mixmatch=mix_log,
    mean_teacher=mt_log,
    teacher_acc=teacher_acc,
    p_model=p_model.tolist(),
)
