# Calibration and predictive uncertainty as gpleiss/temperature_scaling and the uncertainty
# baselines write them: a classifier trained with label smoothing, ModelWithTemperature (a
# Parameter of torch.ones(1) * 1.5 expanded by unsqueeze(1).expand(...), logits gathered under
# no_grad into torch.cat lists, LBFGS(lr=0.01, max_iter=50) with a closure), _ECELoss (bin
# edges by torch.linspace, in_bin by confidences.gt(lower.item()) * confidences.le(upper.item()),
# prop_in_bin.item() > 0 branches), vector scaling, a reliability table by torch.bucketize and
# bincount(weights=), histc of confidences, the Brier score by one_hot, focal loss (gamma = 2)
# training, MC dropout with NumPy masks through F.dropout-free masking, a deep ensemble's
# averaged softmax with entropy / expected entropy / mutual information (BALD) via
# Categorical(probs=).entropy(), and split conformal prediction (torch.quantile with
# interpolation="higher", LAC sets, APS scores by sort + cumsum + gather, coverage and set sizes).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import optim

torch.manual_seed(0)
rng = np.random.default_rng(31)
C, D = 4, 6


class Net(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.fc1 = nn.Linear(D, hidden)
        self.fc2 = nn.Linear(hidden, C)

    def forward(self, x, mask=None):
        h = F.relu(self.fc1(x))
        if mask is not None:
            h = h * mask / 0.8
        return self.fc2(h)


class ModelWithTemperature(nn.Module):
    def __init__(self, model):
        super(ModelWithTemperature, self).__init__()
        self.model = model
        self.temperature = nn.Parameter(torch.ones(1) * 1.5)

    def forward(self, input):
        logits = self.model(input)
        return self.temperature_scale(logits)

    def temperature_scale(self, logits):
        temperature = self.temperature.unsqueeze(1).expand(logits.size(0), logits.size(1))
        return logits / temperature

    def set_temperature(self, valid_loader):
        nll_criterion = nn.CrossEntropyLoss()
        ece_criterion = _ECELoss()
        logits_list = []
        labels_list = []
        with torch.no_grad():
            for input, label in valid_loader:
                logits = self.model(input)
                logits_list.append(logits)
                labels_list.append(label)
            logits = torch.cat(logits_list)
            labels = torch.cat(labels_list)
        before_temperature_nll = nll_criterion(logits, labels).item()
        before_temperature_ece = ece_criterion(logits, labels).item()
        optimizer = optim.LBFGS([self.temperature], lr=0.01, max_iter=50)

        def eval():
            optimizer.zero_grad()
            loss = nll_criterion(self.temperature_scale(logits), labels)
            loss.backward()
            return loss

        optimizer.step(eval)
        after_temperature_nll = nll_criterion(self.temperature_scale(logits), labels).item()
        after_temperature_ece = ece_criterion(self.temperature_scale(logits), labels).item()
        return [before_temperature_nll, before_temperature_ece, after_temperature_nll,
                after_temperature_ece, self.temperature.item()]


class _ECELoss(nn.Module):
    def __init__(self, n_bins=10):
        super(_ECELoss, self).__init__()
        bin_boundaries = torch.linspace(0, 1, n_bins + 1)
        self.bin_lowers = bin_boundaries[:-1]
        self.bin_uppers = bin_boundaries[1:]

    def forward(self, logits, labels):
        softmaxes = F.softmax(logits, dim=1)
        confidences, predictions = torch.max(softmaxes, 1)
        accuracies = predictions.eq(labels)
        ece = torch.zeros(1, device=logits.device)
        for bin_lower, bin_upper in zip(self.bin_lowers, self.bin_uppers):
            in_bin = confidences.gt(bin_lower.item()) * confidences.le(bin_upper.item())
            prop_in_bin = in_bin.float().mean()
            if prop_in_bin.item() > 0:
                accuracy_in_bin = accuracies[in_bin].float().mean()
                avg_confidence_in_bin = confidences[in_bin].mean()
                ece += torch.abs(avg_confidence_in_bin - accuracy_in_bin) * prop_in_bin
        return ece


def focal_loss(logits, target, gamma=2.0):
    logp = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return (-(1 - logp.exp()) ** gamma * logp).mean()


def fresh(scale=1.0, salt=0):
    model = Net()
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            w = torch.from_numpy(W[n]) * scale
            p.copy_(w.roll(salt, dims=0) if salt else w)
    return model


# a noisy 4-class problem: overlapping Gaussian blobs
centers = rng.standard_normal((C, D)) * 1.2
labels = rng.integers(0, C, 240)
feats = centers[labels] + rng.standard_normal((240, D))
X = torch.from_numpy(feats.astype(np.float32))
Y = torch.from_numpy(labels)
x_tr, y_tr = X[:120], Y[:120]
x_cal, y_cal = X[120:180], Y[120:180]
x_te, y_te = X[180:], Y[180:]

results = {}
models = []
for k, (loss_name, salt) in enumerate([("ce", 0), ("smooth", 1), ("focal", 2)]):
    model = fresh(salt=salt)
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    losses = []
    for step in range(25):
        sl = slice((step % 4) * 30, (step % 4) * 30 + 30)
        opt.zero_grad()
        logits = model(x_tr[sl])
        if loss_name == "ce":
            loss = F.cross_entropy(logits, y_tr[sl])
        elif loss_name == "smooth":
            loss = F.cross_entropy(logits, y_tr[sl], label_smoothing=0.1)
        else:
            loss = focal_loss(logits, y_tr[sl])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    results["train_" + loss_name] = losses[::4]
    models.append(model.eval())

# temperature scaling on the cross-entropy model, over a "loader" of (x, y) chunks
scaled = ModelWithTemperature(models[0])
loader = [(x_cal[i:i + 20], y_cal[i:i + 20]) for i in range(0, 60, 20)]
results["temperature"] = scaled.set_temperature(loader)
ece = _ECELoss()
with torch.no_grad():
    results["ece_test"] = [ece(m(x_te), y_te).item() for m in models]
    results["ece_test_scaled"] = ece(scaled(x_te), y_te).item()

# vector scaling: per-class scale and bias, fitted by Adam on the calibration logits
with torch.no_grad():
    cal_logits = models[0](x_cal)
w_vs = torch.ones(C, requires_grad=True)
b_vs = torch.zeros(C, requires_grad=True)
opt = optim.Adam([w_vs, b_vs], lr=0.05)
vs_losses = []
for step in range(30):
    opt.zero_grad()
    loss = F.cross_entropy(cal_logits * w_vs + b_vs, y_cal)
    loss.backward()
    opt.step()
    vs_losses.append(loss.item())
results["vector_scaling"] = vs_losses[::5]

# reliability table: bucketize confidences, per-bin accuracy by bincount(weights=)
with torch.no_grad():
    probs = F.softmax(scaled(x_te), dim=1)
conf, pred = probs.max(dim=1)
edges = torch.linspace(0, 1, 6)
bins = torch.bucketize(conf, edges[1:-1])
counts = torch.bincount(bins, minlength=5)
acc_sum = torch.bincount(bins, weights=pred.eq(y_te).float(), minlength=5)
conf_sum = torch.bincount(bins, weights=conf, minlength=5)
results["reliability_counts"] = counts.tolist()
results["reliability_acc"] = (acc_sum / counts.clamp(min=1)).tolist()
results["reliability_conf"] = (conf_sum / counts.clamp(min=1)).tolist()
results["histc"] = torch.histc(conf, bins=5, min=0.0, max=1.0).tolist()
results["brier"] = ((probs - F.one_hot(y_te, C).float()) ** 2).sum(dim=1).mean().item()

# MC dropout with fixed NumPy masks, and the deep ensemble
masks = torch.from_numpy((rng.uniform(size=(8, 1, 24)) < 0.8).astype(np.float32))
with torch.no_grad():
    mc = torch.stack([F.softmax(models[0](x_te, masks[k]), dim=1) for k in range(8)])
    ens = torch.stack([F.softmax(m(x_te), dim=1) for m in models])


def uncertainty(samples):
    mean = samples.mean(dim=0)
    total = torch.distributions.Categorical(probs=mean).entropy()
    expected = torch.distributions.Categorical(probs=samples).entropy().mean(dim=0)
    return [total.mean().item(), expected.mean().item(), (total - expected).mean().item(),
            F.nll_loss(torch.log(mean), y_te).item()]


results["mc_dropout"] = uncertainty(mc)
results["ensemble"] = uncertainty(ens)

# split conformal prediction: LAC and APS
with torch.no_grad():
    cal_probs = F.softmax(scaled(x_cal), dim=1)
n, alpha = x_cal.size(0), 0.1
q_level = math.ceil((n + 1) * (1 - alpha)) / n
scores = 1 - cal_probs[torch.arange(n), y_cal]
qhat = torch.quantile(scores, q_level, interpolation="higher")
sets = probs >= (1 - qhat)
results["lac_qhat"] = qhat.item()
results["lac_coverage"] = sets[torch.arange(y_te.numel()), y_te].float().mean().item()
results["lac_size"] = sets.sum(dim=1).float().mean().item()
pi = cal_probs.argsort(dim=1, descending=True)
srt = torch.gather(cal_probs, 1, pi).cumsum(dim=1)
aps_scores = torch.gather(srt, 1, pi.argsort(dim=1))[torch.arange(n), y_cal]
qhat_aps = torch.quantile(aps_scores, q_level, interpolation="higher")
test_pi = probs.argsort(dim=1, descending=True)
test_srt = torch.gather(probs, 1, test_pi).cumsum(dim=1)
aps_sets = torch.gather(test_srt <= qhat_aps, 1, test_pi.argsort(dim=1))
results["aps_qhat"] = qhat_aps.item()
results["aps_size"] = aps_sets.sum(dim=1).float().mean().item()

report(**results)
