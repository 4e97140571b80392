# Few-shot meta-learning in the shape of the widely copied MAML-Pytorch repository: a Learner
# that keeps its weights in an nn.ParameterList (`self.vars`) and its BatchNorm running
# statistics in another with requires_grad=False (`self.vars_bn`), a functional forward over
# `vars=None or fast weights` (F.conv2d, F.batch_norm(training=True) with running stats,
# F.max_pool2d, x.view(x.size(0), -1), F.linear), fast weights made by
# `list(map(lambda p: p[1] - self.update_lr * p[0], zip(grad, fast_weights)))` after
# torch.autograd.grad(create_graph=True) (second order) over several inner steps, the meta
# update by Adam on the summed query losses, corrects counted by torch.eq(...).sum().item(),
# finetuning on a deepcopy of the net; first-order MAML (grads detached), Meta-SGD's learned
# per-parameter step sizes and ANIL (only the head adapts, the body under no inner graph);
# a Reptile outer step by in-place lerp over state. Tasks: 3-way 2-shot, 8x8 patterns from NumPy.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import optim

rng = np.random.default_rng(2017)
N_WAY, K_SHOT, K_QUERY, IMG = 3, 2, 3, 8


class Learner(nn.Module):
    def __init__(self, config, imgc, imgsz):
        super(Learner, self).__init__()
        self.config = config
        self.vars = nn.ParameterList()
        self.vars_bn = nn.ParameterList()
        for i, (name, param) in enumerate(self.config):
            if name == "conv2d":
                w = nn.Parameter(torch.ones(*param[:4]))
                torch.nn.init.kaiming_normal_(w)
                self.vars.append(w)
                self.vars.append(nn.Parameter(torch.zeros(param[0])))
            elif name == "linear":
                w = nn.Parameter(torch.ones(*param))
                torch.nn.init.kaiming_normal_(w)
                self.vars.append(w)
                self.vars.append(nn.Parameter(torch.zeros(param[0])))
            elif name == "bn":
                w = nn.Parameter(torch.ones(param[0]))
                self.vars.append(w)
                self.vars.append(nn.Parameter(torch.zeros(param[0])))
                running_mean = nn.Parameter(torch.zeros(param[0]), requires_grad=False)
                running_var = nn.Parameter(torch.ones(param[0]), requires_grad=False)
                self.vars_bn.extend([running_mean, running_var])
            elif name in ["relu", "max_pool2d", "flatten"]:
                continue
            else:
                raise NotImplementedError

    def forward(self, x, vars=None, bn_training=True):
        if vars is None:
            vars = self.vars
        idx = 0
        bn_idx = 0
        for name, param in self.config:
            if name == "conv2d":
                w, b = vars[idx], vars[idx + 1]
                x = F.conv2d(x, w, b, stride=param[4], padding=param[5])
                idx += 2
            elif name == "linear":
                w, b = vars[idx], vars[idx + 1]
                x = F.linear(x, w, b)
                idx += 2
            elif name == "bn":
                w, b = vars[idx], vars[idx + 1]
                running_mean, running_var = self.vars_bn[bn_idx], self.vars_bn[bn_idx + 1]
                x = F.batch_norm(x, running_mean, running_var, weight=w, bias=b,
                                 training=bn_training)
                idx += 2
                bn_idx += 2
            elif name == "flatten":
                x = x.view(x.size(0), -1)
            elif name == "relu":
                x = F.relu(x, inplace=param[0])
            elif name == "max_pool2d":
                x = F.max_pool2d(x, param[0], param[1], param[2])
        assert idx == len(vars)
        assert bn_idx == len(self.vars_bn)
        return x

    def zero_grad(self, vars=None):
        with torch.no_grad():
            if vars is None:
                for p in self.vars:
                    if p.grad is not None:
                        p.grad.zero_()
            else:
                for p in vars:
                    if p.grad is not None:
                        p.grad.zero_()

    def parameters(self):
        return self.vars


class Meta(nn.Module):
    def __init__(self, config, update_lr=0.4, meta_lr=1e-3, update_step=3, first_order=False):
        super(Meta, self).__init__()
        self.update_lr = update_lr
        self.meta_lr = meta_lr
        self.update_step = update_step
        self.first_order = first_order
        self.net = Learner(config, 1, IMG)
        self.meta_optim = optim.Adam(self.net.parameters(), lr=self.meta_lr)

    def forward(self, x_spt, y_spt, x_qry, y_qry):
        task_num = x_spt.size(0)
        querysz = x_qry.size(1)
        losses_q = [0 for _ in range(self.update_step + 1)]
        corrects = [0 for _ in range(self.update_step + 1)]
        for i in range(task_num):
            logits = self.net(x_spt[i], vars=None, bn_training=True)
            loss = F.cross_entropy(logits, y_spt[i])
            grad = torch.autograd.grad(loss, self.net.parameters(),
                                       create_graph=not self.first_order)
            if self.first_order:
                grad = [g.detach() for g in grad]
            fast_weights = list(map(lambda p: p[1] - self.update_lr * p[0],
                                    zip(grad, self.net.parameters())))
            with torch.no_grad():
                logits_q = self.net(x_qry[i], self.net.parameters(), bn_training=True)
                loss_q = F.cross_entropy(logits_q, y_qry[i])
                losses_q[0] += loss_q
                pred_q = F.softmax(logits_q, dim=1).argmax(dim=1)
                corrects[0] += torch.eq(pred_q, y_qry[i]).sum().item()
            for k in range(1, self.update_step + 1):
                logits = self.net(x_spt[i], fast_weights, bn_training=True)
                loss = F.cross_entropy(logits, y_spt[i])
                grad = torch.autograd.grad(loss, fast_weights, create_graph=not self.first_order)
                if self.first_order:
                    grad = [g.detach() for g in grad]
                fast_weights = list(map(lambda p: p[1] - self.update_lr * p[0],
                                        zip(grad, fast_weights)))
                logits_q = self.net(x_qry[i], fast_weights, bn_training=True)
                loss_q = F.cross_entropy(logits_q, y_qry[i])
                losses_q[k] += loss_q
                with torch.no_grad():
                    pred_q = F.softmax(logits_q, dim=1).argmax(dim=1)
                    corrects[k] += torch.eq(pred_q, y_qry[i]).sum().item()
        loss_q = losses_q[-1] / task_num
        self.meta_optim.zero_grad()
        loss_q.backward()
        self.meta_optim.step()
        accs = np.array(corrects) / (querysz * task_num)
        return loss_q.item(), accs

    def finetunning(self, x_spt, y_spt, x_qry, y_qry):
        querysz = x_qry.size(0)
        corrects = [0 for _ in range(self.update_step + 1)]
        net = copy.deepcopy(self.net)
        logits = net(x_spt)
        loss = F.cross_entropy(logits, y_spt)
        grad = torch.autograd.grad(loss, net.parameters())
        fast_weights = list(map(lambda p: p[1] - self.update_lr * p[0],
                                zip(grad, net.parameters())))
        with torch.no_grad():
            logits_q = net(x_qry, net.parameters(), bn_training=True)
            corrects[0] += torch.eq(logits_q.argmax(dim=1), y_qry).sum().item()
        for k in range(1, self.update_step + 1):
            logits = net(x_spt, fast_weights, bn_training=True)
            loss = F.cross_entropy(logits, y_spt)
            grad = torch.autograd.grad(loss, fast_weights)
            fast_weights = list(map(lambda p: p[1] - self.update_lr * p[0],
                                    zip(grad, fast_weights)))
            logits_q = net(x_qry, fast_weights, bn_training=True)
            with torch.no_grad():
                corrects[k] += torch.eq(logits_q.argmax(dim=1), y_qry).sum().item()
        del net
        return np.array(corrects) / querysz


config = [
    ("conv2d", [8, 1, 3, 3, 1, 1]),
    ("bn", [8]),
    ("relu", [True]),
    ("max_pool2d", [2, 2, 0]),
    ("conv2d", [8, 8, 3, 3, 1, 1]),
    ("bn", [8]),
    ("relu", [True]),
    ("max_pool2d", [2, 2, 0]),
    ("flatten", []),
    ("linear", [N_WAY, 8 * 2 * 2]),
]

# class prototypes: random 8x8 binary patterns; samples are noisy copies
prototypes = (rng.uniform(size=(40, IMG, IMG)) > 0.5).astype(np.float32)


def sample_tasks(task_num):
    xs, ys, xq, yq = [], [], [], []
    for _ in range(task_num):
        classes = rng.choice(len(prototypes), size=N_WAY, replace=False)
        spt, qry = [], []
        for label, c in enumerate(classes):
            for _ in range(K_SHOT):
                spt.append((prototypes[c] + rng.normal(0, 0.3, (IMG, IMG)), label))
            for _ in range(K_QUERY):
                qry.append((prototypes[c] + rng.normal(0, 0.3, (IMG, IMG)), label))
        xs.append(np.stack([s[0] for s in spt])[:, None])
        ys.append([s[1] for s in spt])
        xq.append(np.stack([q[0] for q in qry])[:, None])
        yq.append([q[1] for q in qry])
    f = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    g = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))  # noqa: E731
    return f(xs), g(ys), f(xq), g(yq)


def load_reference(net):
    W = reference_weights(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.requires_grad:
                p.copy_(torch.from_numpy(W[name]))


torch.manual_seed(0)
maml = Meta(config)
param_names = [n for n, _ in maml.net.named_parameters()]
n_trainable = sum(p.numel() for p in maml.net.parameters() if p.requires_grad)
load_reference(maml.net)
batches = [sample_tasks(2) for _ in range(4)]
meta_losses, meta_accs = [], []
for x_spt, y_spt, x_qry, y_qry in batches:
    loss, accs = maml(x_spt, y_spt, x_qry, y_qry)
    meta_losses.append(loss)
    meta_accs.append(accs.tolist())
# running variances only: the conv biases in front of each BatchNorm get gradients that are 0 up
# to rounding, which Adam turns into rounding-decided steps, and the running means carry them
running = [maml.net.vars_bn[1][:3].tolist(), maml.net.vars_bn[3][:3].tolist()]
x_spt, y_spt, x_qry, y_qry = sample_tasks(1)
ft_accs = maml.finetunning(x_spt[0], y_spt[0], x_qry[0], y_qry[0]).tolist()
first_w = maml.net.vars[0].detach().flatten()[:4].tolist()

# first-order MAML: the same data, the grads detached inside
fo = Meta(config, first_order=True)
load_reference(fo.net)
fo_losses = [fo(*b)[0] for b in batches[:3]]


class MetaSGD(nn.Module):
    """Meta-SGD: a learned step size per weight, meta-learned with the weights."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.lrs = nn.ParameterList([nn.Parameter(torch.full_like(p, 0.1)) for p in net.vars])

    def adapt(self, x, y, steps=2):
        fast = list(self.net.vars)
        for _ in range(steps):
            loss = F.cross_entropy(self.net(x, fast), y)
            grads = torch.autograd.grad(loss, fast, create_graph=True)
            fast = [w - lr * g for w, lr, g in zip(fast, self.lrs, grads)]
        return fast


msgd = MetaSGD(Learner(config, 1, IMG))
load_reference(msgd.net)
msgd_opt = optim.Adam(list(msgd.net.vars) + list(msgd.lrs), lr=1e-3)
msgd_losses = []
for x_spt, y_spt, x_qry, y_qry in batches[:3]:
    total = 0.0
    for i in range(x_spt.size(0)):
        fast = msgd.adapt(x_spt[i], y_spt[i])
        total = total + F.cross_entropy(msgd.net(x_qry[i], fast), y_qry[i])
    msgd_opt.zero_grad()
    (total / x_spt.size(0)).backward()
    msgd_opt.step()
    msgd_losses.append(total.item())
lr_stats = [msgd.lrs[0].mean().item(), msgd.lrs[-1].std().item()]

# ANIL: the body's features computed once per task, only the head adapts
anil = Learner(config, 1, IMG)
load_reference(anil)
anil_opt = optim.SGD(anil.parameters(), lr=0.05, momentum=0.9)
anil_losses = []
for x_spt, y_spt, x_qry, y_qry in batches:
    total = 0.0
    for i in range(x_spt.size(0)):
        body = list(anil.vars)[:-2]
        head = list(anil.vars)[-2:]
        for _ in range(3):
            loss = F.cross_entropy(anil(x_spt[i], body + head), y_spt[i])
            gw, gb = torch.autograd.grad(loss, head, create_graph=True)
            head = [head[0] - 0.5 * gw, head[1] - 0.5 * gb]
        total = total + F.cross_entropy(anil(x_qry[i], body + head), y_qry[i])
    anil_opt.zero_grad()
    total.backward()
    anil_opt.step()
    anil_losses.append(total.item())
body_grad_norm = torch.stack([p.grad.norm() for p in list(anil.vars)[:-2]]).norm().item()

# Reptile: adapt a copy with plain SGD, then move the weights toward it by lerp_
reptile = Learner(config, 1, IMG)
load_reference(reptile)
reptile_losses = []
for x_spt, y_spt, x_qry, y_qry in batches[:3]:
    for i in range(x_spt.size(0)):
        clone = copy.deepcopy(reptile)
        inner = optim.SGD(clone.parameters(), lr=0.1)
        for _ in range(3):
            inner.zero_grad()
            F.cross_entropy(clone(x_spt[i]), y_spt[i]).backward()
            inner.step()
        with torch.no_grad():
            for p, q in zip(reptile.parameters(), clone.parameters()):
                p.lerp_(q, 0.5)
    with torch.no_grad():
        reptile_losses.append(F.cross_entropy(reptile(x_qry[0]), y_qry[0]).item())

report(
    param_names=param_names,
    n_trainable=n_trainable,
    meta_losses=meta_losses,
    meta_accs=meta_accs,
    running=running,
    ft_accs=ft_accs,
    first_w=first_w,
    fo_losses=fo_losses,
    msgd_losses=msgd_losses,
    lr_stats=lr_stats,
    anil_losses=anil_losses,
    body_grad_norm=body_grad_norm,
    reptile_losses=reptile_losses,
)
