# Unsupervised domain adaptation as the DANN / DAN / Deep CORAL reference code writes it: the
# gradient reversal layer as an autograd.Function (ctx.alpha, grad_output.neg() * alpha, None),
# the DANN schedule 2 / (1 + exp(-10 p)) - 1 and its annealed lr lr0 / (1 + 10 p) ** 0.75 set
# on param_groups, a domain classifier on BCE; DAN's multi-kernel MMD (a bandwidth from the
# detached pairwise distances, a geometric list of kernels, XX + YY - XY - YX), Deep CORAL's
# covariance distance (d^2 normalisation), entropy minimisation on the target, AdaBN-style
# target statistics by a train-mode no_grad pass; then Deep SVDD (a bias-free network, the
# centre c from a first pass with eps-guarded coordinates, soft-boundary radius by a quantile).
# Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(13)
D, N_CLS = 8, 3


def domain(n, shift):
    y = rng.integers(0, N_CLS, size=n)
    base = np.eye(N_CLS, D, dtype=np.float32) * 2.5
    x = base[y] + rng.normal(scale=0.7, size=(n, D)).astype(np.float32)
    x = x @ shift
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


rot = np.linalg.qr(rng.normal(size=(D, D)))[0] * 0.3 + np.eye(D) * 0.85
xs, ys = domain(96, np.eye(D))
xt, yt = domain(96, rot + 0.4)


class ReverseLayerF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        output = grad_output.neg() * ctx.alpha
        return output, None


class DANN(nn.Module):
    def __init__(self):
        super().__init__()
        self.feature = nn.Sequential(
            nn.Linear(D, 24), nn.BatchNorm1d(24), nn.ReLU(True), nn.Linear(24, 16), nn.ReLU(True)
        )
        self.class_classifier = nn.Sequential(
            nn.Linear(16, 16), nn.ReLU(True), nn.Linear(16, N_CLS)
        )
        self.domain_classifier = nn.Sequential(nn.Linear(16, 16), nn.ReLU(True), nn.Linear(16, 1))

    def forward(self, input_data, alpha):
        feature = self.feature(input_data)
        reverse_feature = ReverseLayerF.apply(feature, alpha)
        return self.class_classifier(feature), self.domain_classifier(reverse_feature), feature


def fresh(cls):
    m = cls()
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


def guassian_kernel(source, target, kernel_mul=2.0, kernel_num=5, fix_sigma=None):
    n_samples = int(source.size()[0]) + int(target.size()[0])
    total = torch.cat([source, target], dim=0)
    total0 = total.unsqueeze(0).expand(int(total.size(0)), int(total.size(0)), int(total.size(1)))
    total1 = total.unsqueeze(1).expand(int(total.size(0)), int(total.size(0)), int(total.size(1)))
    L2_distance = ((total0 - total1) ** 2).sum(2)
    if fix_sigma:
        bandwidth = fix_sigma
    else:
        bandwidth = torch.sum(L2_distance.data) / (n_samples**2 - n_samples)
    bandwidth /= kernel_mul ** (kernel_num // 2)
    bandwidth_list = [bandwidth * (kernel_mul**i) for i in range(kernel_num)]
    kernel_val = [torch.exp(-L2_distance / bandwidth_temp) for bandwidth_temp in bandwidth_list]
    return sum(kernel_val)


def mmd_rbf(source, target):
    batch_size = int(source.size()[0])
    kernels = guassian_kernel(source, target)
    XX = kernels[:batch_size, :batch_size]
    YY = kernels[batch_size:, batch_size:]
    XY = kernels[:batch_size, batch_size:]
    YX = kernels[batch_size:, :batch_size]
    return torch.mean(XX + YY - XY - YX)


def CORAL(source, target):
    d = source.size(1)
    ns, nt = source.size(0), target.size(0)
    tmp_s = torch.ones((1, ns)) @ source
    cs = (source.t() @ source - (tmp_s.t() @ tmp_s) / ns) / (ns - 1)
    tmp_t = torch.ones((1, nt)) @ target
    ct = (target.t() @ target - (tmp_t.t() @ tmp_t) / nt) / (nt - 1)
    loss = (cs - ct).pow(2).sum().sqrt()
    return loss / (4 * d * d)


def entropy(logits):
    p = F.softmax(logits, dim=1)
    return -(p * F.log_softmax(logits, dim=1)).sum(1).mean()


results = {}
BS, STEPS, LR0 = 16, 12, 0.02
for method in ("dann", "mmd", "coral"):
    model = fresh(DANN)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR0, momentum=0.9)
    log = []
    for i in range(STEPS):
        p = float(i) / STEPS
        alpha = 2.0 / (1.0 + np.exp(-10 * p)) - 1
        for param_group in optimizer.param_groups:
            param_group["lr"] = LR0 / (1.0 + 10 * p) ** 0.75
        si = torch.from_numpy(rng.choice(96, BS, replace=False))
        ti = torch.from_numpy(rng.choice(96, BS, replace=False))
        cls_s, dom_s, f_s = model(xs[si], alpha)
        cls_t, dom_t, f_t = model(xt[ti], alpha)
        err_label = F.cross_entropy(cls_s, ys[si])
        if method == "dann":
            dom = torch.cat([dom_s, dom_t]).squeeze(1)
            dom_label = torch.cat([torch.zeros(BS), torch.ones(BS)])
            transfer = F.binary_cross_entropy_with_logits(dom, dom_label)
        elif method == "mmd":
            transfer = mmd_rbf(f_s, f_t)
        else:
            transfer = CORAL(f_s, f_t) * 100
        loss = err_label + transfer + 0.1 * alpha * entropy(cls_t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        log.append([err_label.item(), transfer.item()])
    results[method] = log
    # AdaBN: recompute BatchNorm statistics on the target domain
    bn = model.feature[1]
    bn.reset_running_stats()
    bn.momentum = None
    model.train()
    with torch.no_grad():
        for k in range(0, 96, 32):
            model.feature(xt[k : k + 32])
    model.eval()
    with torch.no_grad():
        logits_t = model(xt, 0.0)[0]
    results[f"{method}_target_acc"] = (logits_t.argmax(1) == yt).float().mean().item()
    results[f"{method}_bn_mean"] = bn.running_mean[:4].tolist()
    results[f"{method}_batches_tracked"] = int(bn.num_batches_tracked)

# the reversal itself: gradients of the feature extractor flip sign through the domain head
x = xs[:4].clone().requires_grad_(True)
model = fresh(DANN).eval()
g_pos = torch.autograd.grad(model.domain_classifier(model.feature(x)).sum(), x)[0]
g_rev = torch.autograd.grad(model(x, 0.5)[1].sum(), x)[0]
results["reversal"] = torch.allclose(g_rev, -0.5 * g_pos)


# ---- Deep SVDD one-class
class SVDDNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 16, bias=False)
        self.fc2 = nn.Linear(16, 4, bias=False)

    def forward(self, x):
        return self.fc2(F.leaky_relu(self.fc1(x)))


net = fresh(SVDDNet)
normal_x = xs[ys == 0]
eps = 0.1
with torch.no_grad():
    c = net(normal_x).mean(0)
    c[(abs(c) < eps) & (c < 0)] = -eps
    c[(abs(c) < eps) & (c > 0)] = eps
opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-6)
R, nu = torch.tensor(0.0), 0.1
svdd = []
for epoch in range(10):
    dist = torch.sum((net(normal_x) - c) ** 2, dim=1)
    scores = dist - R**2
    loss = R**2 + (1 / nu) * torch.mean(torch.max(torch.zeros_like(scores), scores))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if epoch >= 2:
        R.data = torch.tensor(np.quantile(np.sqrt(dist.clone().data.numpy()), 1 - nu))
    svdd.append([loss.item(), R.item()])
with torch.no_grad():
    anomaly = torch.sum((net(xt) - c) ** 2, dim=1)
results["svdd"] = svdd
results["anomaly_by_class"] = [anomaly[yt == k].mean().item() for k in range(N_CLS)]
report(**results)
