# Self-supervised learning with a memory queue or prototypes, as facebookresearch/moco and
# facebookresearch/swav write it (our own condensed rewrites, single process): MoCo v2's
# key encoder built by deepcopy-free construction and param_k.data.copy_(param_q.data) with
# requires_grad = False, the momentum update under @torch.no_grad() (param_k.data = param_k.data
# * m + param_q.data * (1. - m)), a queue registered as a buffer (randn then
# nn.functional.normalize(dim=0)) with a long queue_ptr buffer, _dequeue_and_enqueue writing
# keys.T into a slice, positive / negative logits by einsum("nc,nc->n") / einsum("nc,ck->nk"),
# labels of zeros, a batch shuffle / unshuffle by argsort of a permutation (the single-GPU form
# of shuffle BN); SwAV's prototypes as nn.Linear(bias=False) renormalised in place each step
# (w = weight.data.clone(); F.normalize; weight.copy_), sinkhorn-knopp codes (Q = exp(out /
# eps).t(), the in-place Q /= sum_Q row and column passes), swapped prediction over two crops,
# the prototypes' gradients cancelled in the first iterations (p.grad = None by name), and a
# LARS-free SGD with a cosine schedule written into param_groups.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
torch.manual_seed(0)


def mlp_encoder(dim_in, dim):
    return nn.Sequential(
        nn.Linear(dim_in, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(inplace=True),
        nn.Linear(32, 32),
        nn.ReLU(inplace=True),
        nn.Linear(32, dim),
    )


class MoCo(nn.Module):
    def __init__(self, base_encoder, dim=16, K=48, m=0.99, T=0.2):
        super(MoCo, self).__init__()
        self.K = K
        self.m = m
        self.T = T
        self.encoder_q = base_encoder(12, dim)
        self.encoder_k = base_encoder(12, dim)
        W = reference_weights(self.encoder_q)
        with torch.no_grad():
            for name, p in self.encoder_q.named_parameters():
                p.copy_(torch.from_numpy(W[name]))
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # initialize
            param_k.requires_grad = False  # not update by gradient
        # create the queue
        queue = torch.from_numpy(rng.standard_normal((dim, K)).astype(np.float32))
        self.register_buffer("queue", queue)
        self.queue = nn.functional.normalize(self.queue, dim=0)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity
        # replace the keys at ptr (dequeue and enqueue)
        self.queue[:, ptr : ptr + batch_size] = keys.T
        ptr = (ptr + batch_size) % self.K  # move pointer
        self.queue_ptr[0] = ptr

    @torch.no_grad()
    def _batch_shuffle_single_gpu(self, x, perm):
        idx_shuffle = torch.from_numpy(perm)
        idx_unshuffle = torch.argsort(idx_shuffle)
        return x[idx_shuffle], idx_unshuffle

    def forward(self, im_q, im_k, perm):
        q = self.encoder_q(im_q)  # queries: NxC
        q = nn.functional.normalize(q, dim=1)
        with torch.no_grad():  # no gradient to keys
            self._momentum_update_key_encoder()  # update the key encoder
            im_k, idx_unshuffle = self._batch_shuffle_single_gpu(im_k, perm)
            k = self.encoder_k(im_k)  # keys: NxC
            k = nn.functional.normalize(k, dim=1)
            k = k[idx_unshuffle]
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1)
        logits /= self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long)
        self._dequeue_and_enqueue(k)
        return logits, labels


# data: 4 clusters in 12-D, two noisy "views" per sample
centers = rng.standard_normal((4, 12)).astype(np.float32) * 2


def views(n):
    c = rng.integers(0, 4, size=n)
    base = centers[c] + 0.3 * rng.standard_normal((n, 12)).astype(np.float32)
    v1 = base + 0.2 * rng.standard_normal((n, 12)).astype(np.float32)
    v2 = base * rng.uniform(0.8, 1.2, size=(n, 1)).astype(np.float32)
    return torch.from_numpy(v1), torch.from_numpy(v2), c


moco = MoCo(mlp_encoder)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(
    filter(lambda p: p.requires_grad, moco.parameters()), lr=0.05, momentum=0.9, weight_decay=1e-4
)
moco_losses, top1, ptrs = [], [], []
for it in range(14):
    im_q, im_k, _ = views(16)
    perm = rng.permutation(16)
    output, target = moco(im_q, im_k, perm)
    loss = criterion(output, target)
    acc = (output.argmax(1) == target).float().mean() * 100
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    moco_losses.append(loss.item())
    top1.append(acc.item())
    ptrs.append(int(moco.queue_ptr))
frozen = all(not p.requires_grad and p.grad is None for p in moco.encoder_k.parameters())
queue_norms = moco.queue.norm(dim=0)[:8].tolist()
key_dist = sum(
    (pq - pk).norm().item()
    for pq, pk in zip(moco.encoder_q.parameters(), moco.encoder_k.parameters())
)


# ---- SwAV ----
class SwAVModel(nn.Module):
    def __init__(self, dim=16, nmb_prototypes=10):
        super().__init__()
        self.projection_head = mlp_encoder(12, dim)
        self.prototypes = nn.Linear(dim, nmb_prototypes, bias=False)

    def forward(self, inputs):
        # inputs: a list of crops, run together as swav's multi-crop forward does
        idx_crops = torch.cumsum(
            torch.unique_consecutive(
                torch.tensor([inp.shape[-1] for inp in inputs]), return_counts=True
            )[1],
            0,
        )
        start_idx, output = 0, None
        for end_idx in idx_crops:
            _out = self.projection_head(torch.cat(inputs[start_idx:end_idx]))
            output = _out if output is None else torch.cat((output, _out))
            start_idx = end_idx
        x = nn.functional.normalize(output, dim=1, p=2)
        return x, self.prototypes(x)


@torch.no_grad()
def distributed_sinkhorn(out, epsilon=0.05, sinkhorn_iterations=3):
    Q = torch.exp(out / epsilon).t()  # Q is K-by-B
    B = Q.shape[1]
    K = Q.shape[0]  # how many prototypes
    sum_Q = torch.sum(Q)
    Q /= sum_Q
    for it in range(sinkhorn_iterations):
        # normalize each row: total weight per prototype must be 1/K
        sum_of_rows = torch.sum(Q, dim=1, keepdim=True)
        Q /= sum_of_rows
        Q /= K
        # normalize each column: total weight per sample must be 1/B
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B  # the columns must sum to 1 so that Q is an assignment
    return Q.t()


swav = SwAVModel()
W = reference_weights(swav)
with torch.no_grad():
    for name, p in swav.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.SGD(swav.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-6)
n_iters, base_lr, final_lr = 12, 0.1, 0.001
lr_schedule = np.array(
    [
        final_lr + 0.5 * (base_lr - final_lr) * (1 + math.cos(math.pi * t / n_iters))
        for t in range(n_iters)
    ]
)
swav_losses, code_entropy, proto_grad_none = [], [], []
for it in range(n_iters):
    for param_group in opt.param_groups:
        param_group["lr"] = lr_schedule[it]
    # normalize the prototypes
    with torch.no_grad():
        w = swav.prototypes.weight.data.clone()
        w = nn.functional.normalize(w, dim=1, p=2)
        swav.prototypes.weight.copy_(w)
    v1, v2, _ = views(20)
    embedding, output = swav([v1, v2])
    embedding = embedding.detach()
    bs = v1.size(0)
    loss = 0
    for i, crop_id in enumerate([0, 1]):
        with torch.no_grad():
            out = output[bs * crop_id : bs * (crop_id + 1)].detach()
            q = distributed_sinkhorn(out)[-bs:]
            code_entropy.append(-(q * torch.log(q + 1e-12)).sum(1).mean().item())
        subloss = 0
        for v in np.delete(np.arange(2), crop_id):
            x = output[bs * v : bs * (v + 1)] / 0.1
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / 1
    loss /= 2
    opt.zero_grad()
    loss.backward()
    # cancel gradients for the prototypes
    if it < 3:
        for name, p in swav.named_parameters():
            if "prototypes" in name:
                p.grad = None
    proto_grad_none.append(swav.prototypes.weight.grad is None)
    opt.step()
    swav_losses.append(loss.item())

with torch.no_grad():
    swav.eval()
    v1, _, labels = views(24)
    emb, scores = swav([v1])
    assign = scores.argmax(1)
    purity = 0
    for k in range(10):
        sel = labels[(assign == k).numpy()]
        if len(sel):
            purity += np.bincount(sel).max()

report(
    moco_losses=moco_losses,
    top1=top1,
    queue_ptrs=ptrs,
    key_frozen=frozen,
    queue_norms=queue_norms,
    key_query_distance=key_dist,
    swav_losses=swav_losses,
    code_entropy=code_entropy,
    proto_grad_none=proto_grad_none,
    prototype_norms=swav.prototypes.weight.norm(dim=1).tolist(),
    purity=int(purity),
)
