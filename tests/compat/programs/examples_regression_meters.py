# Two pieces of pytorch/examples as written: regression/main.py (a random degree-4 polynomial
# fitted by a Linear layer on make_features' torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)],
# 1), poly_desc's string, get_batch, the loop `while True` until loss < 1e-3 with
# `param.data.add_(-0.1 * param.grad)` and fc.zero_grad(), "Loss: {:.6f} after {} batches") and
# imagenet/main.py's AverageMeter / ProgressMeter / Summary enum and accuracy() by
# output.topk(maxk, 1, True, True), pred.t(), correct[:k].reshape(-1).float().sum(0,
# keepdim=True).mul_(100.0 / batch_size), driving a validate() loop over a small classifier with
# its displayed strings; the MNIST example's test() (reduction='sum',
# pred.eq(target.view_as(pred))).
from enum import Enum

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report

POLY_DEGREE = 4
rng = np.random.default_rng(2727)
W_target = torch.from_numpy(rng.standard_normal(POLY_DEGREE).astype(np.float32)).unsqueeze(1) * 5
b_target = torch.from_numpy(rng.standard_normal(1).astype(np.float32)) * 5


def make_features(x):
    x = x.unsqueeze(1)
    return torch.cat([x**i for i in range(1, POLY_DEGREE + 1)], 1)


def f(x):
    return x.mm(W_target) + b_target.item()


def poly_desc(W, b):
    result = "y = "
    for i, w in enumerate(W):
        result += "{:+.2f} x^{} ".format(w, i + 1)
    result += "{:+.2f}".format(b[0])
    return result


def get_batch(batch_size=32):
    random = torch.from_numpy(rng.standard_normal(batch_size).astype(np.float32))
    x = make_features(random)
    y = f(x)
    return x, y


fc = torch.nn.Linear(W_target.size(0), 1)
W = reference_weights(fc)
with torch.no_grad():
    for name, p in fc.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
losses = []
for batch_idx in range(1, 60):
    batch_x, batch_y = get_batch()
    fc.zero_grad()
    output = F.smooth_l1_loss(fc(batch_x), batch_y)
    loss = output.item()
    output.backward()
    for param in fc.parameters():
        param.data.add_(-0.1 * param.grad)
    losses.append(loss)
    if loss < 1e-3:
        break
summary = "Loss: {:.4f} after {} batches".format(loss, batch_idx)
learned = poly_desc(fc.weight.view(-1), fc.bias)
actual = poly_desc(W_target.view(-1), b_target)


class Summary(Enum):
    NONE = 0
    AVERAGE = 1
    SUM = 2
    COUNT = 3


class AverageMeter:
    def __init__(self, name, fmt=":f", summary_type=Summary.AVERAGE):
        self.name = name
        self.fmt = fmt
        self.summary_type = summary_type
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count

    def __str__(self):
        fmtstr = "{name} {val" + self.fmt + "} ({avg" + self.fmt + "})"
        return fmtstr.format(**self.__dict__)

    def summary(self):
        fmtstr = ""
        if self.summary_type is Summary.NONE:
            fmtstr = ""
        elif self.summary_type is Summary.AVERAGE:
            fmtstr = "{name} {avg:.3f}"
        elif self.summary_type is Summary.SUM:
            fmtstr = "{name} {sum:.3f}"
        elif self.summary_type is Summary.COUNT:
            fmtstr = "{name} {count:.3f}"
        return fmtstr.format(**self.__dict__)


class ProgressMeter:
    def __init__(self, num_batches, meters, prefix=""):
        self.batch_fmtstr = self._get_batch_fmtstr(num_batches)
        self.meters = meters
        self.prefix = prefix

    def display(self, batch):
        entries = [self.prefix + self.batch_fmtstr.format(batch)]
        entries += [str(meter) for meter in self.meters]
        return "\t".join(entries)

    def display_summary(self):
        entries = [" *"]
        entries += [meter.summary() for meter in self.meters]
        return " ".join(entries)

    def _get_batch_fmtstr(self, num_batches):
        num_digits = len(str(num_batches // 1))
        fmt = "{:" + str(num_digits) + "d}"
        return "[" + fmt + "/" + fmt.format(num_batches) + "]"


def accuracy(output, target, topk=(1,)):
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
xs = torch.from_numpy(rng.standard_normal((40, 6)).astype(np.float32))
ys = torch.from_numpy(rng.integers(0, 10, 40))
criterion = torch.nn.CrossEntropyLoss()
losses_m = AverageMeter("Loss", ":.4e", Summary.NONE)
top1 = AverageMeter("Acc@1", ":6.2f", Summary.AVERAGE)
top5 = AverageMeter("Acc@5", ":6.2f", Summary.AVERAGE)
progress = ProgressMeter(4, [losses_m, top1, top5], prefix="Test: ")
lines = []
test_loss, correct = 0, 0
model.eval()
with torch.no_grad():
    for i in range(4):
        images, target = xs[i * 10 : i * 10 + 10], ys[i * 10 : i * 10 + 10]
        output = model(images)
        loss = criterion(output, target)
        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        losses_m.update(loss.item(), images.size(0))
        top1.update(acc1[0], images.size(0))
        top5.update(acc5[0], images.size(0))
        lines.append(progress.display(i + 1))
        test_loss += F.cross_entropy(output, target, reduction="sum").item()
        pred = output.argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()
lines.append(progress.display_summary())
test_loss /= 40
mnist_line = "Test set: Average loss: {:.3f}, Accuracy: {}/{} ({:.0f}%)".format(
    test_loss, correct, 40, 100.0 * correct / 40
)
report(
    losses=losses,
    summary=summary,
    learned=learned,
    actual=actual,
    lines=lines,
    top1=float(top1.avg),
    mnist_line=mnist_line,
    avg_type=type(top1.avg).__name__,
)
