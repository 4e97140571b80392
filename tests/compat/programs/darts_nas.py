# Differentiable architecture search as quark0/darts writes it, shrunk to 1-D signals: a
# MixedOp summing candidate ops weighted by softmax(alpha) (Zero by x.mul(0.), Identity,
# ReLU-Conv1d-BatchNorm1d(affine=False) convolutions, dilated and separable ones,
# AvgPool1d(count_include_pad=False), MaxPool1d), a search cell with two intermediate nodes
# whose edges are indexed by an offset, architecture parameters created by
# Variable(1e-3 * torch.randn(...), requires_grad=True) (NumPy values here) and returned by
# arch_parameters(), model.new() copying them by x.data.copy_(y.data); the Architect's
# second-order step: the unrolled model from _concat'ed parameters (momentum buffers read in a
# try / except, theta.sub(eta, moment + dtheta) in the deprecated scalar-first form), a new
# model loaded from a state_dict built by slicing theta with np.prod(v.size()), the finite-
# difference Hessian-vector product (p.data.add_(R, v), p.data.sub_(2 * R, v), autograd.grad on
# the alphas) and the alphas' gradient written into .grad by g.data.copy_(ig.data) or set when
# None; the first-order variant; clip_grad_norm_ and CosineAnnealingLR for the weights, Adam
# with betas=(0.5, 0.999) for the alphas; genotype() by sorting edges on their best non-'none'
# weight, and the softmax of the alphas reported each epoch; the epoch's lr read by
# scheduler.step(); lr = scheduler.get_lr()[0] as train_search.py does (PyTorch's get_lr outside
# step applies the cosine's recursive rule once more: descent returned the lr set).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd import Variable

torch.manual_seed(0)
rng = np.random.default_rng(5)

PRIMITIVES = ["none", "max_pool_3", "avg_pool_3", "skip_connect", "sep_conv_3", "dil_conv_3"]


class ReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super(ReLUConvBN, self).__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv1d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm1d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super(DilConv, self).__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv1d(C_in, C_in, kernel_size=kernel_size, stride=stride, padding=padding,
                      dilation=dilation, groups=C_in, bias=False),
            nn.Conv1d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm1d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super(SepConv, self).__init__()
        self.op = nn.Sequential(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    def __init__(self, stride):
        super(Zero, self).__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride].mul(0.)


class Identity(nn.Module):
    def forward(self, x):
        return x


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "avg_pool_3": lambda C, stride, affine: nn.AvgPool1d(3, stride=stride, padding=1,
                                                         count_include_pad=False),
    "max_pool_3": lambda C, stride, affine: nn.MaxPool1d(3, stride=stride, padding=1),
    "skip_connect": lambda C, stride, affine: Identity(),
    "sep_conv_3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "dil_conv_3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
}


class MixedOp(nn.Module):
    def __init__(self, C, stride):
        super(MixedOp, self).__init__()
        self._ops = nn.ModuleList()
        for primitive in PRIMITIVES:
            op = OPS[primitive](C, stride, False)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm1d(C, affine=False))
            self._ops.append(op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(self, steps, multiplier, C_prev_prev, C_prev, C):
        super(Cell, self).__init__()
        self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._steps = steps
        self._multiplier = multiplier
        self._ops = nn.ModuleList()
        for i in range(self._steps):
            for j in range(2 + i):
                self._ops.append(MixedOp(C, 1))

    def forward(self, s0, s1, weights):
        s0 = self.preprocess0(s0)
        s1 = self.preprocess1(s1)
        states = [s0, s1]
        offset = 0
        for i in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier:], dim=1)


class Network(nn.Module):
    def __init__(self, C, num_classes, layers, criterion, steps=2, multiplier=2):
        super(Network, self).__init__()
        self._C = C
        self._num_classes = num_classes
        self._layers = layers
        self._criterion = criterion
        self._steps = steps
        self._multiplier = multiplier
        self.stem = nn.Sequential(nn.Conv1d(2, C, 3, padding=1, bias=False), nn.BatchNorm1d(C))
        C_prev_prev, C_prev = C, C
        self.cells = nn.ModuleList()
        for i in range(layers):
            cell = Cell(steps, multiplier, C_prev_prev, C_prev, C)
            self.cells += [cell]
            C_prev_prev, C_prev = C_prev, multiplier * C
        self.global_pooling = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self._initialize_alphas()

    def new(self):
        model_new = Network(self._C, self._num_classes, self._layers, self._criterion)
        for x, y in zip(model_new.arch_parameters(), self.arch_parameters()):
            x.data.copy_(y.data)
        return model_new

    def forward(self, input):
        s0 = s1 = self.stem(input)
        weights = F.softmax(self.alphas_normal, dim=-1)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, weights)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))

    def _loss(self, input, target):
        logits = self(input)
        return self._criterion(logits, target)

    def _initialize_alphas(self):
        k = sum(1 for i in range(self._steps) for n in range(2 + i))
        num_ops = len(PRIMITIVES)
        init = torch.from_numpy(ALPHA_INIT[:k * num_ops].reshape(k, num_ops))
        self.alphas_normal = Variable(1e-3 * init, requires_grad=True)
        self._arch_parameters = [self.alphas_normal]

    def arch_parameters(self):
        return self._arch_parameters

    def genotype(self):
        def _parse(weights):
            gene = []
            n = 2
            start = 0
            for i in range(self._steps):
                end = start + n
                W = weights[start:end].copy()
                edges = sorted(range(i + 2), key=lambda x: -max(
                    W[x][k] for k in range(len(W[x])) if k != PRIMITIVES.index("none")))[:2]
                for j in edges:
                    k_best = None
                    for k in range(len(W[j])):
                        if k != PRIMITIVES.index("none"):
                            if k_best is None or W[j][k] > W[j][k_best]:
                                k_best = k
                    gene.append((PRIMITIVES[k_best], j))
                start = end
                n += 1
            return gene

        return _parse(F.softmax(self.alphas_normal, dim=-1).data.cpu().numpy())


def _concat(xs):
    return torch.cat([x.view(-1) for x in xs])


class Architect:
    def __init__(self, model, momentum, weight_decay, arch_lr, arch_weight_decay):
        self.network_momentum = momentum
        self.network_weight_decay = weight_decay
        self.model = model
        self.optimizer = torch.optim.Adam(self.model.arch_parameters(), lr=arch_lr,
                                          betas=(0.5, 0.999), weight_decay=arch_weight_decay)

    def _compute_unrolled_model(self, input, target, eta, network_optimizer):
        loss = self.model._loss(input, target)
        theta = _concat(self.model.parameters()).data
        try:
            moment = _concat(network_optimizer.state[v]["momentum_buffer"]
                             for v in self.model.parameters()).mul_(self.network_momentum)
        except Exception:
            moment = torch.zeros_like(theta)
        dtheta = _concat(torch.autograd.grad(loss, self.model.parameters())).data \
            + self.network_weight_decay * theta
        unrolled_model = self._construct_model_from_theta(theta.sub(eta, moment + dtheta))
        return unrolled_model

    def step(self, input_train, target_train, input_valid, target_valid, eta,
             network_optimizer, unrolled):
        self.optimizer.zero_grad()
        if unrolled:
            self._backward_step_unrolled(input_train, target_train, input_valid, target_valid,
                                         eta, network_optimizer)
        else:
            self._backward_step(input_valid, target_valid)
        self.optimizer.step()

    def _backward_step(self, input_valid, target_valid):
        loss = self.model._loss(input_valid, target_valid)
        loss.backward()

    def _backward_step_unrolled(self, input_train, target_train, input_valid, target_valid,
                                eta, network_optimizer):
        unrolled_model = self._compute_unrolled_model(input_train, target_train, eta,
                                                      network_optimizer)
        unrolled_loss = unrolled_model._loss(input_valid, target_valid)
        unrolled_loss.backward()
        dalpha = [v.grad for v in unrolled_model.arch_parameters()]
        vector = [v.grad.data for v in unrolled_model.parameters()]
        implicit_grads = self._hessian_vector_product(vector, input_train, target_train)
        for g, ig in zip(dalpha, implicit_grads):
            g.data.sub_(eta, ig.data)
        for v, g in zip(self.model.arch_parameters(), dalpha):
            if v.grad is None:
                v.grad = Variable(g.data)
            else:
                v.grad.data.copy_(g.data)
        self.last_unrolled_loss = unrolled_loss.item()

    def _construct_model_from_theta(self, theta):
        model_new = self.model.new()
        model_dict = self.model.state_dict()
        params, offset = {}, 0
        for k, v in self.model.named_parameters():
            v_length = np.prod(v.size())
            params[k] = theta[offset: offset + v_length].view(v.size())
            offset += v_length
        assert offset == len(theta)
        model_dict.update(params)
        model_new.load_state_dict(model_dict)
        return model_new

    def _hessian_vector_product(self, vector, input, target, r=1e-2):
        R = r / _concat(vector).norm()
        for p, v in zip(self.model.parameters(), vector):
            p.data.add_(R, v)
        loss = self.model._loss(input, target)
        grads_p = torch.autograd.grad(loss, self.model.arch_parameters())
        for p, v in zip(self.model.parameters(), vector):
            p.data.sub_(2 * R, v)
        loss = self.model._loss(input, target)
        grads_n = torch.autograd.grad(loss, self.model.arch_parameters())
        for p, v in zip(self.model.parameters(), vector):
            p.data.add_(R, v)
        return [(x - y).div_(2 * R) for x, y in zip(grads_p, grads_n)]


ALPHA_INIT = rng.standard_normal(64).astype(np.float32)
T = 16
labels = rng.integers(0, 3, 32)
t = np.linspace(0, 1, T)
signals = np.stack([np.sin(2 * np.pi * (labels[:, None] + 1) * t),
                    np.cos(np.pi * (labels[:, None] + 1) * t)], axis=1)
signals = signals + 0.3 * rng.standard_normal(signals.shape)
X = torch.from_numpy(signals.astype(np.float32))
Y = torch.from_numpy(labels)
x_train, y_train, x_valid, y_valid = X[:16], Y[:16], X[16:], Y[16:]

results = {}
for unrolled in (True, False):
    criterion = nn.CrossEntropyLoss()
    model = Network(4, 3, 2, criterion)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 4, eta_min=0.001)
    architect = Architect(model, 0.9, 3e-4, arch_lr=3e-2, arch_weight_decay=1e-3)
    losses, unrolled_losses, alphas, lrs = [], [], [], []
    for epoch in range(2):
        scheduler.step()  # train_search.py's order (PyTorch < 1.1), and its get_lr()
        lr = scheduler.get_lr()[0]  # PyTorch's recursive rule applied once more: not the lr set
        lrs.append(lr)
        for step in range(1):  # one search step per epoch (train_search.py: one per batch)
            sl = slice(step * 8, step * 8 + 8)
            model.train()
            architect.step(x_train[sl], y_train[sl], x_valid[sl], y_valid[sl], lr, optimizer,
                           unrolled=unrolled)
            if unrolled:
                unrolled_losses.append(architect.last_unrolled_loss)
            optimizer.zero_grad()
            logits = model(x_train[sl])
            loss = criterion(logits, y_train[sl])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(loss.item())
        alphas.append(F.softmax(model.alphas_normal, dim=-1).detach()[0].tolist())
    key = "second_order" if unrolled else "first_order"
    results[key] = losses
    results[key + "_alphas"] = alphas
    results[key + "_alpha_grad"] = model.alphas_normal.grad[:2].tolist()  # rows sum to ~0
    results[key + "_genotype"] = [list(g) for g in model.genotype()]
    results[key + "_lrs"] = lrs
    if unrolled:
        results["unrolled_losses"] = unrolled_losses
    model.eval()
    with torch.no_grad():
        results[key + "_valid"] = criterion(model(x_valid), y_valid).item()
results["n_params"] = sum(p.numel() for p in model.parameters())
results["n_alphas"] = sum(a.numel() for a in model.arch_parameters())

report(**results)
