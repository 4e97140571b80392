# Adversarial examples and robust training as torchattacks, TRADES and MART write them: a
# model wrapped with a Normalize module (mean / std buffers viewed to (1, C, 1, 1)), FGSM by
# torch.autograd.grad(cost, adv_images, retain_graph=False, create_graph=False)[0] and
# grad.sign(), PGD with a NumPy random start, the projection by
# torch.clamp(adv_images - images, min=-eps, max=eps) and the [0, 1] clamp with .detach(),
# targeted PGD, Carlini-Wagner L2 in tanh space (atanh, Adam on w, the f6 margin by a one-hot
# from torch.eye(n)[labels] and torch.max(... - one_hot * 1e4), best adversarials kept by
# masks and .view()), TRADES' loss (nn.KLDivLoss(size_average=False), Variable, the
# torch.min(torch.max(...)) projection), MART's boosted cross-entropy (argsort of the
# adversarial probabilities, torch.where for the runner-up label, a weighted KL) and an
# adversarial-training loop (model.eval() during the attack, model.train() after), robust
# accuracies.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd import Variable

torch.manual_seed(0)
rng = np.random.default_rng(21)
N_CLASSES = 4


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 24)
        self.fc2 = nn.Linear(24, N_CLASSES)

    def forward(self, x):
        x = F.elu(self.conv1(x))
        x = F.elu(self.conv2(x))
        return self.fc2(F.elu(self.fc1(x.flatten(1))))


def fresh():
    net = Net()
    W = reference_weights(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return nn.Sequential(Normalize([0.5, 0.4], [0.25, 0.3]), net)


def fgsm(model, images, labels, eps=8 / 255):
    images = images.clone().detach()
    labels = labels.clone().detach()
    loss = nn.CrossEntropyLoss()
    images.requires_grad = True
    outputs = model(images)
    cost = loss(outputs, labels)
    grad = torch.autograd.grad(cost, images, retain_graph=False, create_graph=False)[0]
    adv_images = images + eps * grad.sign()
    adv_images = torch.clamp(adv_images, min=0, max=1).detach()
    return adv_images


def pgd(model, images, labels, eps=8 / 255, alpha=2 / 255, steps=5, start=None,
        targeted=False):
    images = images.clone().detach()
    labels = labels.clone().detach()
    loss = nn.CrossEntropyLoss()
    adv_images = images.clone().detach()
    if start is not None:
        adv_images = adv_images + start  # torchattacks: torch.empty_like(...).uniform_(-eps, eps)
        adv_images = torch.clamp(adv_images, min=0, max=1).detach()
    for _ in range(steps):
        adv_images.requires_grad = True
        outputs = model(adv_images)
        cost = -loss(outputs, labels) if targeted else loss(outputs, labels)
        grad = torch.autograd.grad(cost, adv_images, retain_graph=False, create_graph=False)[0]
        adv_images = adv_images.detach() + alpha * grad.sign()
        delta = torch.clamp(adv_images - images, min=-eps, max=eps)
        adv_images = torch.clamp(images + delta, min=0, max=1).detach()
    return adv_images


def cw_l2(model, images, labels, c=1.0, kappa=0.0, steps=10, lr=0.05):
    images = images.clone().detach()
    labels = labels.clone().detach()
    w = torch.atanh(torch.clamp(images * 2 - 1, min=-1 + 1e-6, max=1 - 1e-6)).detach()
    w.requires_grad = True
    best_adv_images = images.clone().detach()
    best_L2 = 1e10 * torch.ones(len(images))
    prev_cost = 1e10
    dim = len(images.shape)
    MSELoss = nn.MSELoss(reduction="none")
    Flatten = nn.Flatten()
    optimizer = torch.optim.Adam([w], lr=lr)
    costs = []
    for step in range(steps):
        adv_images = 1 / 2 * (torch.tanh(w) + 1)
        current_L2 = MSELoss(Flatten(adv_images), Flatten(images)).sum(dim=1)
        L2_loss = current_L2.sum()
        outputs = model(adv_images)
        one_hot_labels = torch.eye(outputs.shape[1])[labels]
        other = torch.max((1 - one_hot_labels) * outputs - one_hot_labels * 1e4, dim=1)[0]
        real = torch.max(one_hot_labels * outputs, dim=1)[0]
        f_loss = torch.clamp((real - other), min=-kappa).sum()
        cost = L2_loss + c * f_loss
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
        pre = torch.argmax(outputs.detach(), 1)
        condition = (pre != labels).float()
        mask = condition * (best_L2 > current_L2.detach())
        best_L2 = mask * current_L2.detach() + (1 - mask) * best_L2
        mask = mask.view([-1] + [1] * (dim - 1))
        best_adv_images = mask * adv_images.detach() + (1 - mask) * best_adv_images
        if step % 5 == 0:
            if cost.item() > prev_cost:
                break
            prev_cost = cost.item()
        costs.append(cost.item())
    return best_adv_images, best_L2, costs


def trades_loss(model, x_natural, y, optimizer, noise, step_size=0.01, epsilon=0.05,
                perturb_steps=3, beta=6.0):
    criterion_kl = nn.KLDivLoss(size_average=False)
    model.eval()
    batch_size = len(x_natural)
    # TRADES starts at 0.001 * noise; here the KL's gradient there is 1.5e-5 at most, and
    # 5e-9 of rounding flipped the sign of 2 of its 1024 components between libraries
    x_adv = x_natural.detach() + 0.02 * noise
    for _ in range(perturb_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                   F.softmax(model(x_natural), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - epsilon), x_natural + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    x_adv = Variable(torch.clamp(x_adv, 0.0, 1.0), requires_grad=False)
    optimizer.zero_grad()
    logits = model(x_natural)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / batch_size) * criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                                    F.softmax(model(x_natural), dim=1))
    return loss_natural + beta * loss_robust


def mart_loss(model, x_natural, x_adv, y, beta=6.0):
    kl = nn.KLDivLoss(reduction="none")
    batch_size = len(x_natural)
    logits = model(x_natural)
    logits_adv = model(x_adv)
    adv_probs = F.softmax(logits_adv, dim=1)
    tmp1 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(
        torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, (y.unsqueeze(1)).long()).squeeze()
    loss_robust = (1.0 / batch_size) * torch.sum(
        torch.sum(kl(torch.log(adv_probs + 1e-12), nat_probs), dim=1) * (1.0000001 - true_probs))
    return loss_adv + float(beta) * loss_robust


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


# data: two-channel 8x8 images in [0, 1], the class sets which quadrant is bright
X = rng.uniform(0.2, 0.6, (24, 2, 8, 8))
labels = rng.integers(0, N_CLASSES, 24)
for i, c in enumerate(labels):
    r, s = divmod(int(c), 2)
    X[i, :, r * 4:r * 4 + 4, s * 4:s * 4 + 4] += 0.3
X = torch.from_numpy(X.astype(np.float32))
Y = torch.from_numpy(labels)
start = torch.from_numpy(rng.uniform(-8 / 255, 8 / 255, X.shape).astype(np.float32))
noise = torch.from_numpy(rng.standard_normal(X.shape).astype(np.float32))

results = {}
model = fresh()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for step in range(10):  # standard training first
    opt.zero_grad()
    loss = F.cross_entropy(model(X), Y)
    loss.backward()
    opt.step()
results["clean_loss"] = loss.item()
model.eval()
x_fgsm = fgsm(model, X, Y)
x_pgd = pgd(model, X, Y, start=start)
x_pgd_t = pgd(model, X, (Y + 1) % N_CLASSES, targeted=True, steps=4)
x_cw, l2, cw_costs = cw_l2(model, X[:8], Y[:8])
results["acc_clean"] = accuracy(model, X, Y)
results["acc_fgsm"] = accuracy(model, x_fgsm, Y)
results["acc_pgd"] = accuracy(model, x_pgd, Y)
results["pgd_linf"] = (x_pgd - X).abs().max().item()
results["pgd_in_box"] = bool(((x_pgd >= 0) & (x_pgd <= 1)).all())
results["fgsm_delta_sum"] = (x_fgsm - X).sum().item()
results["pgd_loss"] = F.cross_entropy(model(x_pgd), Y).item()
results["targeted_hit"] = accuracy(model, x_pgd_t, (Y + 1) % N_CLASSES)
results["cw_costs"] = cw_costs
results["cw_l2"] = l2.tolist()
results["cw_dist"] = (x_cw - X[:8]).pow(2).flatten(1).sum(1).tolist()

# adversarial training: PGD (Madry), TRADES, MART, each from the same weights
for method in ("madry", "trades", "mart"):
    model = fresh()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    losses = []
    for step in range(5):
        xb, yb = X[step % 3 * 8:(step % 3 + 1) * 8], Y[step % 3 * 8:(step % 3 + 1) * 8]
        if method == "trades":
            loss = trades_loss(model, xb, yb, opt, noise[:8])
        else:
            model.eval()
            x_adv = pgd(model, xb, yb, eps=0.05, alpha=0.02, steps=3)
            model.train()
            opt.zero_grad()
            if method == "madry":
                loss = F.cross_entropy(model(x_adv), yb)
            else:
                loss = mart_loss(model, xb, x_adv, yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    results[method] = losses
    results[method + "_acc"] = [accuracy(model, X, Y),
                                accuracy(model, pgd(model, X, Y, eps=0.05, alpha=0.02), Y)]

report(**results)
