# Semantic segmentation losses and a DeepLabV3 head as segmentation repositories write them:
# bermanmaxim/LovaszSoftmax's lovasz_grad (cumsum of the sorted ground truth, in-place
# `jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]`), lovasz_hinge / lovasz_softmax over
# torch.sort(descending=True) errors and torch.dot, Variable, per-image losses, ignore labels by
# boolean masks and valid.nonzero().squeeze(), its generator-based mean with ifilterfalse;
# torchvision's DeepLabHead (ASPPConv dilations, ASPPPooling by AdaptiveAvgPool2d + bilinear
# interpolate, a 1x1 projection with Dropout switched off by apply), an OHEM cross-entropy
# (-torch.log(torch.tensor(thresh)), reduction="none", hard pixels by threshold else topk),
# a soft multi-class Dice over one_hot(...).permute, uint8 label maps with 255 as ignore,
# SGD + PolynomialLR(power=0.9), mIoU from a bincount confusion matrix and nanmean.
from itertools import filterfalse as ifilterfalse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd import Variable

torch.manual_seed(0)
rng = np.random.default_rng(31)


def lovasz_grad(gt_sorted):
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.float().cumsum(0)
    union = gts + (1 - gt_sorted).float().cumsum(0)
    jaccard = 1. - intersection / union
    if p > 1:  # cover 1-pixel case
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def isnan(x):
    return x != x


def mean(values, ignore_nan=False, empty=0):
    values = iter(values)
    if ignore_nan:
        values = ifilterfalse(isnan, values)
    try:
        n = 1
        acc = next(values)
    except StopIteration:
        if empty == "raise":
            raise ValueError("Empty mean") from None
        return empty
    for n, v in enumerate(values, 2):
        acc += v
    if n == 1:
        return acc
    return acc / n


def flatten_binary_scores(scores, labels, ignore=None):
    scores = scores.view(-1)
    labels = labels.view(-1)
    if ignore is None:
        return scores, labels
    valid = (labels != ignore)
    vscores = scores[valid]
    vlabels = labels[valid]
    return vscores, vlabels


def lovasz_hinge_flat(logits, labels):
    if len(labels) == 0:
        return logits.sum() * 0.
    signs = 2. * labels.float() - 1.
    errors = (1. - logits * Variable(signs))
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    perm = perm.data
    gt_sorted = labels[perm]
    grad = lovasz_grad(gt_sorted)
    loss = torch.dot(F.relu(errors_sorted), Variable(grad))
    return loss


def lovasz_hinge(logits, labels, per_image=True, ignore=None):
    if per_image:
        loss = mean(lovasz_hinge_flat(*flatten_binary_scores(log.unsqueeze(0), lab.unsqueeze(0),
                                                             ignore))
                    for log, lab in zip(logits, labels))
    else:
        loss = lovasz_hinge_flat(*flatten_binary_scores(logits, labels, ignore))
    return loss


def flatten_probas(probas, labels, ignore=None):
    if probas.dim() == 3:
        B, H, W = probas.size()
        probas = probas.view(B, 1, H, W)
    B, C, H, W = probas.size()
    probas = probas.permute(0, 2, 3, 1).contiguous().view(-1, C)
    labels = labels.view(-1)
    if ignore is None:
        return probas, labels
    valid = (labels != ignore)
    vprobas = probas[valid.nonzero().squeeze()]
    vlabels = labels[valid]
    return vprobas, vlabels


def lovasz_softmax_flat(probas, labels, classes="present"):
    if probas.numel() == 0:
        return probas * 0.
    C = probas.size(1)
    losses = []
    class_to_sum = list(range(C)) if classes in ["all", "present"] else classes
    for c in class_to_sum:
        fg = (labels == c).float()
        if classes == "present" and fg.sum() == 0:
            continue
        class_pred = probas[:, 0] if C == 1 else probas[:, c]
        errors = (Variable(fg) - class_pred).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        perm = perm.data
        fg_sorted = fg[perm]
        losses.append(torch.dot(errors_sorted, Variable(lovasz_grad(fg_sorted))))
    return mean(losses)


def lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None):
    if per_image:
        loss = mean(lovasz_softmax_flat(*flatten_probas(prob.unsqueeze(0), lab.unsqueeze(0),
                                                        ignore), classes=classes)
                    for prob, lab in zip(probas, labels))
    else:
        loss = lovasz_softmax_flat(*flatten_probas(probas, labels, ignore), classes=classes)
    return loss


class ASPPConv(nn.Sequential):
    def __init__(self, in_channels, out_channels, dilation):
        modules = [nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation,
                             bias=False),
                   nn.BatchNorm2d(out_channels), nn.ReLU()]
        super().__init__(*modules)


class ASPPPooling(nn.Sequential):
    def __init__(self, in_channels, out_channels):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1,
                                                            bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())

    def forward(self, x):
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, in_channels, atrous_rates, out_channels=8):
        super().__init__()
        modules = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                 nn.BatchNorm2d(out_channels), nn.ReLU())]
        rates = tuple(atrous_rates)
        for rate in rates:
            modules.append(ASPPConv(in_channels, out_channels, rate))
        modules.append(ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(modules)
        self.project = nn.Sequential(
            nn.Conv2d(len(self.convs) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(0.5))

    def forward(self, x):
        _res = []
        for conv in self.convs:
            _res.append(conv(x))
        res = torch.cat(_res, dim=1)
        return self.project(res)


class DeepLabHead(nn.Sequential):
    def __init__(self, in_channels, num_classes, atrous_rates=(1, 2, 3)):
        super().__init__(ASPP(in_channels, atrous_rates), nn.Conv2d(8, 8, 3, padding=1,
                                                                    bias=False),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


class DeepLabV3(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 12, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(12), nn.ReLU(inplace=True))
        self.classifier = DeepLabHead(12, num_classes)

    def forward(self, x):
        input_shape = x.shape[-2:]
        features = self.backbone(x)
        x = self.classifier(features)
        x = F.interpolate(x, size=input_shape, mode="bilinear", align_corners=False)
        return {"out": x}


class OhemCELoss(nn.Module):
    def __init__(self, thresh, ignore_lb=255):
        super().__init__()
        self.thresh = -torch.log(torch.tensor(thresh, requires_grad=False, dtype=torch.float))
        self.ignore_lb = ignore_lb
        self.criteria = nn.CrossEntropyLoss(ignore_index=ignore_lb, reduction="none")

    def forward(self, logits, labels):
        n_min = labels[labels != self.ignore_lb].numel() // 16
        loss = self.criteria(logits, labels).view(-1)
        loss_hard = loss[loss > self.thresh]
        if loss_hard.numel() < n_min:
            loss_hard, _ = loss.topk(n_min)
        return torch.mean(loss_hard)


def dice_loss(logits, labels, num_classes, ignore=255, eps=1.0):
    valid = (labels != ignore).unsqueeze(1).float()
    probs = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(labels.clamp(max=num_classes - 1), num_classes).permute(0, 3, 1, 2)
    one_hot = one_hot.float() * valid
    inter = (probs * one_hot).sum(dim=(0, 2, 3))
    card = probs.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    return 1 - ((2 * inter + eps) / (card + eps)).mean()


def confusion(pred, label, n, ignore=255):
    mask = label != ignore
    return torch.bincount(n * label[mask] + pred[mask], minlength=n ** 2).reshape(n, n)


num_classes = 4
model = DeepLabV3(num_classes)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
model.apply(lambda m: setattr(m, "p", 0.0) if isinstance(m, nn.Dropout) else None)

images = torch.from_numpy(rng.standard_normal((3, 3, 12, 12)).astype(np.float32))
yy, xx = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
lab = ((yy // 6) * 2 + (xx // 6)).astype(np.uint8)[None].repeat(3, 0)
lab[:, :2, :2] = 255  # void border
lab[1, 8:, :] = 1
labels_u8 = torch.from_numpy(lab)
labels = labels_u8.long()

# the losses alone, with gradients
logit_bin = torch.from_numpy(rng.standard_normal((3, 12, 12)).astype(np.float32))
logit_bin.requires_grad_()
bin_lab = (labels == 1).long()
bin_lab[labels == 255] = 255
lh = lovasz_hinge(logit_bin, bin_lab, per_image=True, ignore=255)
lh.backward()
out = {"lovasz_hinge": lh.item(), "lovasz_hinge_grad": logit_bin.grad.abs().sum().item(),
       "lovasz_hinge_all": lovasz_hinge(logit_bin, bin_lab, per_image=False,
                                        ignore=255).item()}
gt = torch.tensor([1, 1, 0, 1, 0, 0])
out["lovasz_grad"] = lovasz_grad(gt).tolist()

criterion_ohem = OhemCELoss(0.7)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=8, power=0.9)
hist = []
for it in range(8):
    model.train()
    logits = model(images)["out"]
    probas = F.softmax(logits, dim=1)
    l_ls = lovasz_softmax(probas, labels, ignore=255)
    l_ls_img = lovasz_softmax(probas, labels, per_image=True, ignore=255)
    l_ohem = criterion_ohem(logits, labels)
    l_dice = dice_loss(logits, labels, num_classes)
    loss = l_ohem + 0.5 * l_ls + 0.5 * l_dice
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    hist.append([loss.item(), l_ls.item(), l_ls_img.item(), l_ohem.item(), l_dice.item(),
                 scheduler.get_last_lr()[0]])
out["hist"] = hist

model.eval()
with torch.no_grad():
    pred = model(images)["out"].argmax(1)
hist_cm = confusion(pred.flatten(), labels.flatten(), num_classes)
iou = torch.diag(hist_cm) / (hist_cm.sum(1) + hist_cm.sum(0) - torch.diag(hist_cm))
out["confusion"] = hist_cm.tolist()
out["miou"] = torch.nanmean(iou.float()).item()
out["pixel_acc"] = (torch.diag(hist_cm).sum() / hist_cm.sum()).item()
report(**out)
