# A one-stage detector written without torchvision, the way RetinaNet / FCOS tutorials spell out
# the box ops: anchors from torch.meshgrid(indexing="ij") over an arange grid, box IoU by
# broadcasting torch.max / torch.min with clamp(min=0), anchor matching by max over the IoU
# matrix, box deltas encoded with log and decoded with exp, a focal loss built on
# F.binary_cross_entropy_with_logits(reduction="none") and torch.where, F.smooth_l1_loss(beta=)
# on positives picked by nonzero(as_tuple=True) and masked_select, class scores by gather, a
# manual NMS loop (argsort(descending=True), boolean masks), and a tiny FPN-style head
# (Conv2d + GroupNorm, F.interpolate nearest x2 and bilinear) trained with SGD + momentum.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)
IMG, NUM_CLASSES, B = 32, 3, 4
STRIDES, SIZES = (4, 8), (8.0, 16.0)


def make_anchors(stride, size, ratios=(0.5, 1.0, 2.0)):
    n = IMG // stride
    ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    centers = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2).float() * stride + stride / 2
    r = torch.tensor(ratios)
    wh = torch.stack([size / r.sqrt(), size * r.sqrt()], dim=1)  # (A, 2)
    return torch.cat([centers - wh / 2, centers + wh / 2], dim=-1).reshape(-1, 4)  # (HWA, 4)


def box_area(b):
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def box_iou(a, b):
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def encode(anchors, gt):
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    dx = ((gt[:, 0] + gt[:, 2]) - (anchors[:, 0] + anchors[:, 2])) / 2 / aw
    dy = ((gt[:, 1] + gt[:, 3]) - (anchors[:, 1] + anchors[:, 3])) / 2 / ah
    return torch.stack((dx, dy, torch.log(gw / aw), torch.log(gh / ah)), dim=1)


def decode(anchors, d):
    wh = anchors[:, 2:] - anchors[:, :2]
    ctr = anchors[:, :2] + 0.5 * wh + d[:, :2] * wh
    size = wh * d[:, 2:].clamp(max=math.log(1000.0 / 16)).exp()
    return torch.cat([ctr - size / 2, ctr + size / 2], dim=1)


def nms(boxes, scores, thresh):
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i.item())
        if order.numel() == 1:
            break
        ious = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]]).squeeze(0)
        order = order[1:][ious <= thresh]
    return torch.as_tensor(keep, dtype=torch.long)


def focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    a_t = torch.where(targets == 1, alpha, 1 - alpha)
    return a_t * ce * (1 - p_t) ** gamma


class Head(nn.Module):
    def __init__(self, A=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.GroupNorm(2, 8),
                                  nn.ReLU(inplace=True))  # fmt: skip
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.lateral = nn.Conv2d(8, 8, 1)
        self.smooth = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(4, 8)
        self.cls = nn.Conv2d(8, A * NUM_CLASSES, 3, padding=1)
        self.reg = nn.Conv2d(8, A * 4, 3, padding=1)

    def forward(self, x):
        c1 = self.stem(x)  # (B, 8, 8, 8) at stride 4
        c2 = F.relu(self.down(c1))  # (B, 8, 4, 4) at stride 8
        p1 = self.lateral(c1) + F.interpolate(c2, scale_factor=2, mode="nearest")
        p1 = F.relu(self.gn(self.smooth(p1)))
        ctx = F.interpolate(c2.mean(1, keepdim=True), size=p1.shape[-2:], mode="bilinear",
                            align_corners=False)  # fmt: skip
        p1 = p1 * torch.sigmoid(ctx)
        outs_cls, outs_reg = [], []
        for p in (p1, c2):
            n = p.shape[0]
            outs_cls.append(self.cls(p).permute(0, 2, 3, 1).reshape(n, -1, NUM_CLASSES))
            outs_reg.append(self.reg(p).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(outs_cls, 1), torch.cat(outs_reg, 1)


anchors = torch.cat([make_anchors(s, z) for s, z in zip(STRIDES, SIZES)])  # (240, 4)

# synthetic images: 1-2 bright rectangles per image, the class sets the colour channel
images = np.zeros((B, 3, IMG, IMG), dtype=np.float32) + rng.normal(0, 0.1, (B, 3, IMG, IMG))
gt_boxes, gt_labels = [], []
for b in range(B):
    boxes, labels = [], []
    for _ in range(1 + b % 2):
        w, h = rng.uniform(7, 15, 2)
        x0, y0 = rng.uniform(0, IMG - w), rng.uniform(0, IMG - h)
        c = int(rng.integers(0, NUM_CLASSES))
        images[b, c, int(y0) : int(y0 + h), int(x0) : int(x0 + w)] += 1.0
        boxes.append([x0, y0, x0 + w, y0 + h])
        labels.append(c)
    gt_boxes.append(torch.tensor(boxes, dtype=torch.float32))
    gt_labels.append(torch.tensor(labels))
images = torch.from_numpy((images.clip(0, 1) * 255).round().astype(np.uint8))  # as decoded
crowd = torch.zeros(B, 1, IMG, IMG, dtype=torch.uint8)
crowd[:, :, :6, -6:] = 1  # a "crowd" corner whose anchors are ignored, as COCO's iscrowd
crowd_cells = F.interpolate(crowd, size=(IMG // 4, IMG // 4), mode="nearest").bool()
images = images.float().div_(255).sub_(0.5)

# anchor matching: positives IoU >= 0.4, negatives < 0.3, the rest ignored; every box keeps its
# best anchor (the low-quality-match rule)
cls_t = torch.zeros(B, len(anchors), NUM_CLASSES)
reg_t = torch.zeros(B, len(anchors), 4)
state = torch.full((B, len(anchors)), -1, dtype=torch.int8)  # 1 pos, 0 neg, -1 ignore
for b in range(B):
    iou = box_iou(gt_boxes[b], anchors)  # (G, A)
    best_iou, best_gt = iou.max(dim=0)
    state[b][best_iou < 0.3] = 0
    state[b][best_iou >= 0.4] = 1
    state[b, iou.argmax(dim=1)] = 1
    best_gt[iou.argmax(dim=1)] = torch.arange(len(gt_boxes[b]))
    in_crowd = crowd_cells[b, 0].flatten().repeat_interleave(3)  # stride-4 level anchors
    state[b, : in_crowd.numel()][in_crowd & (state[b, : in_crowd.numel()] == 0)] = -1
    pos = (state[b] == 1).nonzero(as_tuple=True)[0]
    cls_t[b, pos, gt_labels[b][best_gt[pos]]] = 1.0
    reg_t[b, pos] = encode(anchors[pos], gt_boxes[b][best_gt[pos]])

model = Head()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(np.asarray(W[name])))
    model.cls.bias.fill_(-math.log((1 - 0.01) / 0.01))  # the prior-probability init (RetinaNet)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
losses, cls_losses, box_losses = [], [], []
for step in range(20):
    logits, deltas = model(images)
    valid = state >= 0
    num_pos = (state == 1).sum().clamp(min=1).to(torch.float32)
    l_cls = focal_loss(logits, cls_t)[valid].sum() / num_pos
    pos_mask = (state == 1).unsqueeze(-1).expand_as(deltas)
    l_box = F.smooth_l1_loss(deltas.masked_select(pos_mask), reg_t.masked_select(pos_mask),
                             beta=1.0 / 9, reduction="sum") / num_pos  # fmt: skip
    loss = l_cls + l_box
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
    opt.step()
    losses.append(loss.item())
    cls_losses.append(l_cls.item())
    box_losses.append(l_box.item())

model.eval()
with torch.inference_mode():
    logits, deltas = model(images)
    scores_all = logits.sigmoid()
    detections = []
    for b in range(B):
        best_score, best_cls = scores_all[b].max(dim=1)
        cand = torch.where(best_score > 0.05)[0]
        cand = cand[best_score[cand].topk(min(20, cand.numel())).indices]
        boxes = decode(anchors[cand], deltas[b, cand]).clamp(0, IMG)
        keep = nms(boxes, best_score[cand], thresh=0.5)[:3]
        picked = scores_all[b, cand[keep]].gather(1, best_cls[cand[keep]].unsqueeze(1))
        gt_iou = box_iou(boxes[keep], gt_boxes[b]).amax(dim=1) if len(keep) else torch.zeros(0)
        detections.append(dict(n_cand=int(cand.numel()), keep=keep.tolist(),
                               cls=best_cls[cand[keep]].tolist(), score=picked.flatten().tolist(),
                               box=boxes[keep].tolist(), iou=gt_iou.tolist()))  # fmt: skip

report(losses=losses, cls_losses=cls_losses, box_losses=box_losses, n_anchors=len(anchors),
       n_pos=int((state == 1).sum()), n_ignored=int((state == -1).sum()), detections=detections,
       anchor0=anchors[:3].tolist(), reg_t=reg_t[state == 1][:4].tolist())  # fmt: skip
