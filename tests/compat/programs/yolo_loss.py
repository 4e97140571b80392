# The YOLO family's training targets and losses as the v1 / v3 re-implementations write them:
# ground-truth boxes assigned to the grid cell holding their centre and to the anchor with the
# best shape IoU (width / height only, by torch.min of broadcast sizes), targets built in
# place in zero tensors by advanced indexing (tx, ty as offsets in the cell, tw, th as
# log(gw / anchor_w)), objectness masks with an ignore threshold from the IoU of every
# prediction with every box (a box_iou of centre-format boxes), the v1 loss with sqrt widths
# and lambda_coord / lambda_noobj, the v3 loss with BCE objectness and class terms; a tiny
# convolutional detector head trained by SGD, then decoding (sigmoid offsets + grid by
# meshgrid, exp(tw) * anchors), confidence filtering and batched NMS by class offsets.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(97)
S, A, C, IMG = 4, 2, 3, 32
anchors = torch.tensor([[6.0, 6.0], [14.0, 10.0]])


def make_image():
    img = np.zeros((3, IMG, IMG), np.float32)
    boxes = []
    for _ in range(int(rng.integers(1, 3))):
        w, h = rng.uniform(5, 14, 2)
        cx, cy = rng.uniform(w / 2, IMG - w / 2), rng.uniform(h / 2, IMG - h / 2)
        c = int(rng.integers(0, C))
        x0, x1 = int(cx - w / 2), int(cx + w / 2)
        y0, y1 = int(cy - h / 2), int(cy + h / 2)
        img[c, y0:y1, x0:x1] = 1.0
        boxes.append([cx, cy, w, h, c])
    return img + 0.05 * rng.standard_normal(img.shape).astype(np.float32), boxes


batch = [make_image() for _ in range(8)]
images = torch.from_numpy(np.stack([b[0] for b in batch]))
gts = [torch.tensor(b[1], dtype=torch.float32) for b in batch]


def cxcywh_to_xyxy(b):
    return torch.cat([b[..., :2] - b[..., 2:4] / 2, b[..., :2] + b[..., 2:4] / 2], -1)


def box_iou(a, b):
    a, b = cxcywh_to_xyxy(a), cxcywh_to_xyxy(b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    return inter / (area_a[:, None] + area_b[None] - inter)


def build_targets(gts, pred_boxes, ignore_thres=0.5):
    stride = IMG / S
    B = len(gts)
    obj_mask = torch.zeros(B, A, S, S, dtype=torch.bool)
    noobj_mask = torch.ones(B, A, S, S, dtype=torch.bool)
    tx, ty, tw, th = (torch.zeros(B, A, S, S) for _ in range(4))
    tcls = torch.zeros(B, A, S, S, C)
    for b, gt in enumerate(gts):
        gxy, gwh = gt[:, :2] / stride, gt[:, 2:4]
        inter = torch.min(gwh[:, None], anchors[None]).prod(2)
        shape_iou = inter / (gwh.prod(1)[:, None] + anchors.prod(1)[None] - inter)
        best = shape_iou.argmax(1)
        gi, gj = gxy.long().T
        obj_mask[b, best, gj, gi] = True
        noobj_mask[b, best, gj, gi] = False
        ious = box_iou(pred_boxes[b].reshape(-1, 4), gt[:, :4]).max(1).values.view(A, S, S)
        noobj_mask[b][ious > ignore_thres] = False
        tx[b, best, gj, gi] = gxy[:, 0] - gxy[:, 0].floor()
        ty[b, best, gj, gi] = gxy[:, 1] - gxy[:, 1].floor()
        tw[b, best, gj, gi] = torch.log(gwh[:, 0] / anchors[best, 0] + 1e-16)
        th[b, best, gj, gi] = torch.log(gwh[:, 1] / anchors[best, 1] + 1e-16)
        tcls[b, best, gj, gi, gt[:, 4].long()] = 1.0
    return obj_mask, noobj_mask, tx, ty, tw, th, tcls


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1),
            nn.BatchNorm2d(8),
            nn.LeakyReLU(0.1),
            nn.Conv2d(8, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.1),
            nn.Conv2d(16, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.1),
        )
        self.pred = nn.Conv2d(16, A * (5 + C), 1)

    def forward(self, x):
        p = self.pred(self.body(x))
        return p.view(x.shape[0], A, 5 + C, S, S).permute(0, 1, 3, 4, 2).contiguous()


def decode(p):
    stride = IMG / S
    gy, gx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    x = (torch.sigmoid(p[..., 0]) + gx) * stride
    y = (torch.sigmoid(p[..., 1]) + gy) * stride
    w = torch.exp(p[..., 2]) * anchors[:, 0].view(1, A, 1, 1)
    h = torch.exp(p[..., 3]) * anchors[:, 1].view(1, A, 1, 1)
    return torch.stack([x, y, w, h], -1)


model = Head()
W = reference_weights(model)
with torch.no_grad():
    for name, prm in model.named_parameters():
        prm.copy_(torch.from_numpy(W[name]))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
results = {"v3": [], "v1": [], "n_obj": []}
for step in range(8):
    p = model(images)
    with torch.no_grad():
        boxes = decode(p)
    obj, noobj, tx, ty, tw, th, tcls = build_targets(gts, boxes)
    sx, sy = torch.sigmoid(p[..., 0]), torch.sigmoid(p[..., 1])
    loss_xy = F.mse_loss(sx[obj], tx[obj]) + F.mse_loss(sy[obj], ty[obj])
    loss_wh = F.mse_loss(p[..., 2][obj], tw[obj]) + F.mse_loss(p[..., 3][obj], th[obj])
    conf = p[..., 4]
    loss_conf = F.binary_cross_entropy_with_logits(conf[obj], torch.ones_like(conf[obj])) + (
        100 * F.binary_cross_entropy_with_logits(conf[noobj], torch.zeros_like(conf[noobj]))
    )
    loss_cls = F.binary_cross_entropy_with_logits(p[..., 5:][obj], tcls[obj])
    loss = loss_xy + loss_wh + loss_conf + loss_cls
    # YOLOv1-style sum-squared loss on the same targets, for the record
    with torch.no_grad():
        pw = boxes[..., 2][obj].sqrt()
        gw = (torch.exp(tw[obj]) * anchors[:, 0].view(1, A, 1, 1).expand_as(tw)[obj]).sqrt()
        v1 = (
            5.0 * ((sx[obj] - tx[obj]) ** 2 + (pw - gw) ** 2).sum()
            + ((torch.sigmoid(conf[obj]) - 1) ** 2).sum()
            + 0.5 * (torch.sigmoid(conf[noobj]) ** 2).sum()
        )
    opt.zero_grad()
    loss.backward()
    opt.step()
    results["v3"].append(loss.item())
    results["v1"].append(v1.item())
    results["n_obj"].append(int(obj.sum()))

model.eval()
with torch.no_grad():
    p = model(images[:2])
    boxes = decode(p).view(2, -1, 4)
    conf = torch.sigmoid(p[..., 4]).view(2, -1)
    cls_prob, cls = torch.sigmoid(p[..., 5:]).view(2, -1, C).max(-1)
    score = conf * cls_prob
    keep_all = []
    for b in range(2):
        m = score[b] > 0.05
        bx, sc, cl = cxcywh_to_xyxy(boxes[b][m]), score[b][m], cls[b][m]
        off = bx + cl[:, None].float() * (IMG + 1)
        order = sc.argsort(descending=True)
        keep = []
        while order.numel() > 0:
            i = order[0]
            keep.append(int(i))
            if order.numel() == 1:
                break
            a, rest = off[i : i + 1], off[order[1:]]
            lt = torch.max(a[:, :2], rest[:, :2])
            rb = torch.min(a[:, 2:], rest[:, 2:])
            inter = (rb - lt).clamp(min=0).prod(1)
            area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
            iou = inter / (area(a) + area(rest) - inter)
            order = order[1:][iou <= 0.45]
        keep_all.append(sc[keep].tolist()[:5])
    results["kept_scores"] = keep_all
report(**results)
