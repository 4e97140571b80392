# In-place updates through views of tensors that are part of the graph, as real PyTorch code
# writes them: an RNN that fills a preallocated output buffer (outputs[:, t] = h and
# outputs.select(1, t).copy_(h)), a kernel matrix with its noise added in place on a diagonal
# view (K.diagonal().add_(noise), GPyTorch's habit), a mask written into attention scores through
# a column view, a row renormalised in place through a view, and a view of a temporary scaled in
# place. Each must change the viewed tensor and carry the gradient through the update.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(7)
B, T, D, H = 4, 6, 3, 5


class BufferRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.RNNCell(D, H)
        self.head = nn.Linear(H, 1)
        self.log_noise = nn.Parameter(torch.tensor(-1.0))
        self.proj = nn.Linear(H, H, bias=False)

    def forward(self, x):
        outputs = torch.zeros(x.shape[0], x.shape[1], H)
        h = torch.zeros(x.shape[0], H)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            if t % 2 == 0:
                outputs[:, t] = h
            else:
                outputs.select(1, t).copy_(h)
        # attention over time with a mask written through a column view of the scores
        q = self.proj(outputs)
        scores = q @ outputs.transpose(1, 2) / H**0.5  # (B, T, T)
        scores[:, :, 0].fill_(-1e4)  # nobody attends to the first step
        scores.diagonal(dim1=1, dim2=2).add_(0.5)  # a bias towards the step itself
        att = scores.softmax(-1)
        ctx = att @ outputs
        # a row of the context renormalised in place through a view
        first = ctx[:, 0]
        first.div_(first.clone().norm(dim=-1, keepdim=True) + 1.0)  # (norm saves its input)
        # a kernel matrix over the batch with noise added in place on its diagonal
        feats = ctx.mean(1)  # (B, H)
        K = feats @ feats.T
        K.diagonal().add_(self.log_noise.exp())
        # a view of a temporary, scaled in place
        z = self.head(ctx).view(x.shape[0], -1)
        z.mul_(0.5)
        return z, K


model = BufferRNN()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(np.asarray(W[name])))

x = torch.from_numpy(rng.normal(size=(B, T, D)).astype(np.float32))
target = torch.from_numpy(rng.normal(size=(B, T)).astype(np.float32))
opt = torch.optim.Adam(model.parameters(), lr=0.02)

losses, logdets = [], []
for step in range(15):
    opt.zero_grad()
    z, K = model(x)
    logdet = torch.logdet(K)
    loss = ((z - target) ** 2).mean() + 0.01 * logdet
    loss.backward()
    opt.step()
    losses.append(loss.item())
    logdets.append(logdet.item())

grads_final = {}
opt.zero_grad()
z, K = model(x)
(z.sum() + K.trace()).backward()
for name, p in model.named_parameters():
    grads_final[name] = float(p.grad.abs().sum())

report(losses=losses, logdets=logdets, grads=grads_final, noise=float(model.log_noise.exp()))
