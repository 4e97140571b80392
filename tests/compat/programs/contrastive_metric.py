# Metric learning and distillation in the shape of SimCLR / CLIP / knowledge-distillation code:
# an encoder + projection head, two NumPy-augmented views, the NT-Xent loss (F.normalize, a
# similarity matrix by einsum, the diagonal masked with torch.eye(...).bool() and masked_fill,
# positives found by torch.arange roll, cross entropy over temperature-scaled logits), CLIP's
# symmetric loss with a learned logit_scale (clamped, .exp()), triplet / cosine-embedding /
# margin-ranking losses with F.cosine_similarity and torch.cdist hard-negative mining, and a
# teacher-student distillation step with KLDivLoss(reduction="batchmean", log_target=True) on
# temperature-softened log_softmax, mixed with the hard-label loss. SGD + CosineAnnealingLR.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(41)
n, d_in, d_emb = 12, 10, 6


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class SimCLR(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d_in, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.projector = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, d_emb))

    def forward(self, x):
        return self.projector(self.encoder(x))


def nt_xent(z1, z2, temperature=0.5):
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)  # (2N, D)
    sim = torch.einsum("id,jd->ij", z, z) / temperature  # (2N, 2N)
    mask = torch.eye(z.shape[0], dtype=torch.bool)
    sim = sim.masked_fill(mask, -9e15)
    batch = z1.shape[0]
    targets = torch.arange(2 * batch).roll(batch)  # i <-> i + N
    return F.cross_entropy(sim, targets)


base = rng.standard_normal((n, d_in)).astype(np.float32)
model = load(SimCLR())
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, eta_min=1e-3)
simclr_losses, lrs = [], []
for step in range(10):
    v1 = base + 0.2 * rng.standard_normal(base.shape).astype(np.float32)
    v2 = base * (rng.random(base.shape) > 0.2).astype(np.float32)  # feature dropout
    loss = nt_xent(model(torch.from_numpy(v1)), model(torch.from_numpy(v2)))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    simclr_losses.append(loss.item())
    lrs.append(optimizer.param_groups[0]["lr"])

# CLIP-style symmetric loss with a learned temperature
img_enc = load(nn.Linear(d_in, d_emb, bias=False))
txt_enc = load(nn.Embedding(20, d_emb))
logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
opt = torch.optim.Adam([*img_enc.parameters(), *txt_enc.parameters(), logit_scale], lr=1e-2)
tokens = torch.from_numpy(rng.integers(0, 20, size=(n, 3)))
clip_losses = []
for step in range(8):
    image_features = img_enc(torch.from_numpy(base))
    text_features = txt_enc(tokens).mean(dim=1)
    image_features = image_features / image_features.norm(dim=1, keepdim=True)
    text_features = text_features / text_features.norm(dim=1, keepdim=True)
    scale = logit_scale.clamp(max=math.log(100)).exp()
    logits_per_image = scale * image_features @ text_features.t()
    logits_per_text = logits_per_image.t()
    labels = torch.arange(n)
    loss = (
        F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
    ) / 2
    opt.zero_grad()
    loss.backward()
    opt.step()
    clip_losses.append(loss.item())

# triplet, cosine-embedding and margin-ranking losses with hard-negative mining
emb_net = load(nn.Sequential(nn.Linear(d_in, 8), nn.PReLU(), nn.Linear(8, d_emb)))
opt = torch.optim.Adam(emb_net.parameters(), lr=5e-3)
classes = torch.arange(n) % 3
triplet = nn.TripletMarginLoss(margin=1.0, p=2)
cos_loss = nn.CosineEmbeddingLoss(margin=0.1)
rank_loss = nn.MarginRankingLoss(margin=0.2)
metric_losses = []
for step in range(8):
    e = emb_net(torch.from_numpy(base))
    dist = torch.cdist(e, e)
    same = classes.unsqueeze(0) == classes.unsqueeze(1)
    hardest_pos = (dist * same.float()).argmax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).argmin(dim=1)
    l_trip = triplet(e, e[hardest_pos], e[hardest_neg])
    y = torch.where(classes == classes.roll(1), 1, -1)
    l_cos = cos_loss(e, e.roll(1, dims=0), y)
    sim_pos = F.cosine_similarity(e, e[hardest_pos], dim=1)
    sim_neg = F.cosine_similarity(e, e[hardest_neg], dim=-1)
    l_rank = rank_loss(sim_pos, sim_neg, torch.ones(n))
    loss = l_trip + l_cos + l_rank
    opt.zero_grad()
    loss.backward()
    opt.step()
    metric_losses.append([l_trip.item(), l_cos.item(), l_rank.item()])
pairwise = F.pairwise_distance(e[:4], e[4:8]).tolist()
triplet_fn = F.triplet_margin_with_distance_loss(
    e[:4],
    e[4:8],
    e[8:12],
    distance_function=lambda a, b: 1.0 - F.cosine_similarity(a, b),
    margin=0.5,
    swap=True,
).item()

# knowledge distillation (Hinton et al. 2015)
teacher = load(nn.Sequential(nn.Linear(d_in, 32), nn.ReLU(), nn.Linear(32, 3)))
student = load(nn.Sequential(nn.Linear(d_in, 8), nn.ReLU(), nn.Linear(8, 3)))
teacher.eval()
opt = torch.optim.SGD(student.parameters(), lr=0.2)
T, alpha = 4.0, 0.7
kd = nn.KLDivLoss(reduction="batchmean", log_target=True)
kd_losses = []
for step in range(10):
    x = torch.from_numpy(base)
    with torch.no_grad():
        teacher_logits = teacher(x)
    student_logits = student(x)
    soft = kd(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1))
    hard = F.cross_entropy(student_logits, classes)
    loss = alpha * soft * T * T + (1 - alpha) * hard
    opt.zero_grad()
    loss.backward()
    opt.step()
    kd_losses.append([soft.item(), hard.item()])
agree = (student(x).argmax(1) == teacher(x).argmax(1)).float().mean().item()
plain_kl = F.kl_div(F.log_softmax(student(x), 1), F.softmax(teacher(x), 1), reduction="sum")
report(
    simclr_losses=simclr_losses,
    lrs=lrs,
    clip_losses=clip_losses,
    logit_scale=logit_scale.item(),
    metric_losses=metric_losses,
    pairwise=pairwise,
    triplet_fn=triplet_fn,
    kd_losses=kd_losses,
    agree=agree,
    plain_kl=plain_kl.item(),
)
