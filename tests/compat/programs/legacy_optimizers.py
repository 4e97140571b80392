# Optimizers as their 2018-2019 reference repositories wrote them, still run by many projects
# on current PyTorch (which accepts their deprecated calls with warnings): LiyuanLucasLiu/RAdam's
# RAdam (the N_sma buffer cache indexed by step % 10, p_data_fp32 = p.data.float(),
# exp_avg_sq.mul_(beta2).addcmul_(1 - beta2, grad, grad), exp_avg.mul_(beta1).add_(1 - beta1,
# grad), p_data_fp32.add_(-group['weight_decay'] * group['lr'], p_data_fp32),
# p_data_fp32.addcdiv_(-step_size * group['lr'], exp_avg, denom), p.data.copy_(p_data_fp32)),
# checked against torch.optim.RAdam; Luolc/AdaBound's AdaBound (torch.full_like(denom,
# step_size), step_size.div_(denom).clamp_(lower_bound, upper_bound).mul_(exp_avg), a
# base_lrs list read in step); an AdamW of the fairseq / pre-1.2 era (p.data.add_(-decay, ...)
# and addcdiv_(-step_size, ...)); a model of the same era: Variable inputs, nn.init.xavier_uniform
# and nn.init.constant without underscores, F.softmax without dim, size_average=False losses,
# torch.addmm(beta, bias, alpha, x, w.t()) in a hand-written layer, scheduler.step() at the start
# of the epoch and the lr logged by scheduler.get_lr()[0].
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd import Variable
from torch.optim.optimizer import Optimizer

torch.manual_seed(0)
rng = np.random.default_rng(44)


class RAdam(Optimizer):

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.buffer = [[None, None, None] for ind in range(10)]
        super(RAdam, self).__init__(params, defaults)

    def __setstate__(self, state):
        super(RAdam, self).__setstate__(state)

    def step(self, closure=None):

        loss = None
        if closure is not None:
            loss = closure()

        for group in self.param_groups:

            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad.data.float()
                if grad.is_sparse:
                    raise RuntimeError('RAdam does not support sparse gradients')

                p_data_fp32 = p.data.float()

                state = self.state[p]

                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(p_data_fp32)
                    state['exp_avg_sq'] = torch.zeros_like(p_data_fp32)
                else:
                    state['exp_avg'] = state['exp_avg'].type_as(p_data_fp32)
                    state['exp_avg_sq'] = state['exp_avg_sq'].type_as(p_data_fp32)

                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                beta1, beta2 = group['betas']

                exp_avg_sq.mul_(beta2).addcmul_(1 - beta2, grad, grad)
                exp_avg.mul_(beta1).add_(1 - beta1, grad)

                state['step'] += 1
                buffered = self.buffer[int(state['step'] % 10)]
                if state['step'] == buffered[0]:
                    N_sma, step_size = buffered[1], buffered[2]
                else:
                    buffered[0] = state['step']
                    beta2_t = beta2 ** state['step']
                    N_sma_max = 2 / (1 - beta2) - 1
                    N_sma = N_sma_max - 2 * state['step'] * beta2_t / (1 - beta2_t)
                    buffered[1] = N_sma

                    # more conservative since it's an approximated value
                    if N_sma >= 5:
                        step_size = math.sqrt(
                            (1 - beta2_t) * (N_sma - 4) / (N_sma_max - 4) * (N_sma - 2) / N_sma
                            * N_sma_max / (N_sma_max - 2)) / (1 - beta1 ** state['step'])
                    else:
                        step_size = 1.0 / (1 - beta1 ** state['step'])
                    buffered[2] = step_size

                if group['weight_decay'] != 0:
                    p_data_fp32.add_(-group['weight_decay'] * group['lr'], p_data_fp32)

                # more conservative since it's an approximated value
                if N_sma >= 5:
                    denom = exp_avg_sq.sqrt().add_(group['eps'])
                    p_data_fp32.addcdiv_(-step_size * group['lr'], exp_avg, denom)
                else:
                    p_data_fp32.add_(-step_size * group['lr'], exp_avg)

                p.data.copy_(p_data_fp32)

        return loss


class AdaBound(Optimizer):

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3,
                 eps=1e-8, weight_decay=0, amsbound=False):
        defaults = dict(lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps,
                        weight_decay=weight_decay, amsbound=amsbound)
        super(AdaBound, self).__init__(params, defaults)

        self.base_lrs = list(map(lambda group: group['lr'], self.param_groups))

    def step(self, closure=None):
        loss = None
        if closure is not None:
            loss = closure()

        for group, base_lr in zip(self.param_groups, self.base_lrs):
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad.data
                amsbound = group['amsbound']

                state = self.state[p]

                # State initialization
                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(p.data)
                    state['exp_avg_sq'] = torch.zeros_like(p.data)
                    if amsbound:
                        state['max_exp_avg_sq'] = torch.zeros_like(p.data)

                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                if amsbound:
                    max_exp_avg_sq = state['max_exp_avg_sq']
                beta1, beta2 = group['betas']

                state['step'] += 1

                if group['weight_decay'] != 0:
                    grad = grad.add(group['weight_decay'], p.data)

                # Decay the first and second moment running average coefficient
                exp_avg.mul_(beta1).add_(1 - beta1, grad)
                exp_avg_sq.mul_(beta2).addcmul_(1 - beta2, grad, grad)
                if amsbound:
                    torch.max(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
                    denom = max_exp_avg_sq.sqrt().add_(group['eps'])
                else:
                    denom = exp_avg_sq.sqrt().add_(group['eps'])

                bias_correction1 = 1 - beta1 ** state['step']
                bias_correction2 = 1 - beta2 ** state['step']
                step_size = group['lr'] * math.sqrt(bias_correction2) / bias_correction1

                # Applies bounds on actual learning rate
                final_lr = group['final_lr'] * group['lr'] / base_lr
                lower_bound = final_lr * (1 - 1 / (group['gamma'] * state['step'] + 1))
                upper_bound = final_lr * (1 + 1 / (group['gamma'] * state['step']))
                step_size = torch.full_like(denom, step_size)
                step_size.div_(denom).clamp_(lower_bound, upper_bound).mul_(exp_avg)

                p.data.add_(-step_size)

        return loss


class OldAdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super(OldAdamW, self).__init__(params, defaults)

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(p.data)
                    state['exp_avg_sq'] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                beta1, beta2 = group['betas']
                state['step'] += 1
                exp_avg.mul_(beta1).add_(1 - beta1, grad)
                exp_avg_sq.mul_(beta2).addcmul_(1 - beta2, grad, grad)
                denom = exp_avg_sq.sqrt().add_(group['eps'])
                bias_correction1 = 1 - beta1 ** state['step']
                bias_correction2 = 1 - beta2 ** state['step']
                step_size = group['lr'] * math.sqrt(bias_correction2) / bias_correction1
                if group['weight_decay'] != 0:
                    p.data.add_(-group['weight_decay'] * group['lr'], p.data)
                p.data.addcdiv_(-step_size, exp_avg, denom)


class OldLinear(nn.Module):
    """A hand-written layer of the era: torch.addmm with beta and alpha first."""

    def __init__(self, n_in, n_out):
        super(OldLinear, self).__init__()
        self.weight = nn.Parameter(torch.Tensor(n_out, n_in))
        self.bias = nn.Parameter(torch.Tensor(n_out))
        nn.init.xavier_uniform(self.weight)
        nn.init.constant(self.bias, 0.1)

    def forward(self, x):
        return torch.addmm(1, self.bias.expand(x.size(0), self.bias.size(0)), 1, x,
                           self.weight.t())


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = OldLinear(6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return F.log_softmax(self.fc2(F.tanh(self.fc1(x))))  # no dim: dim 1 for 2-D


def fresh():
    model = Net()
    W = reference_weights(model)
    for name, p in model.named_parameters():
        p.data.copy_(torch.from_numpy(W[name]))
    return model


X = Variable(torch.from_numpy(rng.standard_normal((48, 6)).astype(np.float32)))
Y = Variable(torch.from_numpy(rng.integers(0, 3, 48)))
results = {}
for name in ("radam", "radam_torch", "adabound", "amsbound", "old_adamw", "adamw_torch"):
    model = fresh()
    if name == "radam":
        optimizer = RAdam(model.parameters(), lr=1e-2, weight_decay=1e-2)
    elif name == "radam_torch":
        # RAdam's reference decays p before its update; torch's RAdam decays the gradient
        optimizer = torch.optim.RAdam(model.parameters(), lr=1e-2, decoupled_weight_decay=True,
                                      weight_decay=1e-2)
    elif name in ("adabound", "amsbound"):
        optimizer = AdaBound(model.parameters(), lr=1e-2, final_lr=0.1,
                             amsbound=name == "amsbound", weight_decay=5e-4)
    elif name == "old_adamw":
        optimizer = OldAdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    losses, lrs = [], []
    for epoch in range(4):
        scheduler.step()  # the pre-1.1 order: at the start of the epoch
        lrs.append(scheduler.get_lr()[0])
        for b in range(3):
            xb, yb = X[b * 16:(b + 1) * 16], Y[b * 16:(b + 1) * 16]
            optimizer.zero_grad()
            loss = F.nll_loss(model(xb), yb, size_average=False) / xb.size(0)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    results[name] = losses
    results[name + "_lrs"] = lrs
    results[name + "_w"] = model.fc2.weight.data[0].tolist()
results["radam_vs_torch"] = max(abs(a - b) for a, b in zip(results["radam"],
                                                             results["radam_torch"])) < 1e-5
results["adamw_vs_torch"] = max(abs(a - b) for a, b in zip(results["old_adamw"],
                                                             results["adamw_torch"])) < 1e-5

report(**results)
