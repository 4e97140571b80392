# What training scripts print, compared character for character: print(model) of nested
# containers (Sequential with an OrderedDict, ModuleList, ModuleDict, a custom extra_repr,
# LSTM / GRU / Conv / BatchNorm / Embedding / LayerNorm / Dropout / MultiheadAttention /
# TransformerEncoderLayer), print(optimizer) with two param groups, tensors as scripts print
# them (float32 / float64 / int64 / bool, 0-d, empty, scientific notation, negative zeros,
# nan / inf, requires_grad=True, grad_fn names of common ops, summarised long tensors,
# torch.set_printoptions(precision=2, sci_mode=False) and its reset), torch.Size, dtypes and
# devices, a state_dict's keys and shapes, and f-string formatting of 0-d tensors.
import contextlib
import io
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, dim, scale=0.5):
        super().__init__()
        self.scale = scale
        self.norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            OrderedDict([("fc1", nn.Linear(dim, 2 * dim)), ("act", nn.GELU()),
                         ("drop", nn.Dropout(0.1)), ("fc2", nn.Linear(2 * dim, dim))])
        )  # fmt: skip

    def extra_repr(self):
        return f"scale={self.scale}"

    def forward(self, x):
        return x + self.scale * self.ff(self.norm(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8, padding_idx=0)
        self.rnn = nn.LSTM(8, 8, num_layers=2, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(16, 8)
        self.conv = nn.Conv1d(8, 4, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(4, momentum=0.05)
        self.blocks = nn.ModuleList([Block(8), Block(8, scale=1.0)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(8, 3), "reg": nn.Linear(8, 1)})
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.conv2 = nn.Conv2d(3, 6, (3, 5), padding="same", groups=3, padding_mode="reflect")
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.act = nn.LeakyReLU(0.2, inplace=True)


out = io.StringIO()
with contextlib.redirect_stdout(out):
    model = Net()
    print(model)
    params = [p for n, p in model.named_parameters() if "heads" not in n]
    opt = torch.optim.AdamW(
        [{"params": params}, {"params": model.heads.parameters(), "lr": 1e-3}],
        lr=3e-4, weight_decay=0.05,
    )  # fmt: skip
    print(opt)
    print(torch.optim.SGD(model.heads.parameters(), lr=0.1, momentum=0.9, nesterov=True))
    print(torch.tensor([1.0, 2.5, -3.25]))
    print(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    print(torch.tensor([1, 2, 3]))
    print(torch.tensor([True, False]))
    print(torch.tensor(3.5))
    print(torch.tensor(7))
    print(torch.zeros(0, 3))
    print(torch.tensor([1e-8, 1.0, 1e8]))
    print(torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf")]))
    print(torch.tensor([123456.789, 0.001]))
    print(torch.tensor([1.0, 2.0], requires_grad=True))
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    print(a * 2)
    print(a + 1)
    print(a.sum())
    print(a.mean())
    print(a @ a)
    print(a.t())
    print(a.view(4))
    print(torch.relu(a))
    print(a.exp())
    print(a[0])
    print(torch.arange(2000.0).reshape(40, 50))
    print(torch.arange(12).reshape(2, 2, 3))
    torch.set_printoptions(precision=2, sci_mode=False)
    print(torch.tensor([1e-8, 1.23456, 1e5]))
    torch.set_printoptions(profile="default")
    print(torch.tensor([1.23456789]))
    print(torch.Size([2, 3]), torch.float32, torch.int64, torch.bool, torch.device("cpu"))
    print(torch.zeros(2, 3).shape, torch.zeros(2, 3).dtype, torch.zeros(2, 3).device)
    for k, v in Block(4).state_dict().items():
        print(k, tuple(v.shape))
    t = torch.tensor(0.123456)
    print(f"loss {t:.3f} | {t.item():.4f} | {float(t):.2e}")
    print("%.3f" % torch.tensor(2.0))
    print(np.float32(torch.tensor(1.5)))
# the library's own name in dtype reprs ("descent.float64"): normalised to torch's
text = out.getvalue().replace(torch.__name__ + ".", "torch.")
result = {"lines": text.splitlines()}
with open("printed.json", "w") as fh:
    import json

    json.dump(result, fh)
from compat_helpers import report  # noqa: E402

report(**result)
