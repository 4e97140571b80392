# Custom convolution layers as their reference repositories write them (our own condensed
# rewrites): NVIDIA's PartialConv2d (a subclass of nn.Conv2d with multi_channel / return_mask
# kwargs popped before super().__init__, a ones weight_maskUpdater, the mask updated under
# torch.no_grad by F.conv2d, mask_ratio = slide_winsize / (update_mask + 1e-8), clamp and mul),
# CoordConv's AddCoords (torch.arange(...).repeat(1, dim, 1) channels scaled to [-1, 1] and
# concatenated, an optional radius channel), CondConv (weights declared as
# nn.Parameter(torch.Tensor(num_experts, ...)) with `_pair` from torch.nn.modules.utils, reset
# by init.kaiming_uniform_(a=math.sqrt(5)) per expert, stride / padding through the attribute path
# torch.nn.modules.utils._pair, per-sample weights mixed by routing and
# applied as one grouped conv over the batch), DynamicConv's softmax(attention / temperature)
# kernels, and the model wrapped in nn.DataParallel (no GPUs: the module runs as is), its
# "module."-prefixed state_dict stripped and loaded into a plain model, as inference scripts do.
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn
from torch.nn import init
from torch.nn.modules.utils import _pair


class PartialConv2d(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        if "multi_channel" in kwargs:
            self.multi_channel = kwargs["multi_channel"]
            kwargs.pop("multi_channel")
        else:
            self.multi_channel = False
        if "return_mask" in kwargs:
            self.return_mask = kwargs["return_mask"]
            kwargs.pop("return_mask")
        else:
            self.return_mask = False
        super().__init__(*args, **kwargs)
        if self.multi_channel:
            self.weight_maskUpdater = torch.ones(
                self.out_channels, self.in_channels, self.kernel_size[0], self.kernel_size[1]
            )
        else:
            self.weight_maskUpdater = torch.ones(1, 1, self.kernel_size[0], self.kernel_size[1])
        self.slide_winsize = (
            self.weight_maskUpdater.shape[1]
            * self.weight_maskUpdater.shape[2]
            * self.weight_maskUpdater.shape[3]
        )
        self.last_size = (None, None, None, None)
        self.update_mask = None
        self.mask_ratio = None

    def forward(self, input, mask_in=None):
        assert len(input.shape) == 4
        if mask_in is not None or self.last_size != tuple(input.shape):
            self.last_size = tuple(input.shape)
            with torch.no_grad():
                if self.weight_maskUpdater.type() != input.type():
                    self.weight_maskUpdater = self.weight_maskUpdater.to(input)
                if mask_in is None:
                    if self.multi_channel:
                        mask = torch.ones(
                            input.data.shape[0],
                            input.data.shape[1],
                            input.data.shape[2],
                            input.data.shape[3],
                        ).to(input)
                    else:
                        mask = torch.ones(1, 1, input.data.shape[2], input.data.shape[3]).to(input)
                else:
                    mask = mask_in
                self.update_mask = F.conv2d(
                    mask,
                    self.weight_maskUpdater,
                    bias=None,
                    stride=self.stride,
                    padding=self.padding,
                    dilation=self.dilation,
                    groups=1,
                )
                self.mask_ratio = self.slide_winsize / (self.update_mask + 1e-8)
                self.update_mask = torch.clamp(self.update_mask, 0, 1)
                self.mask_ratio = torch.mul(self.mask_ratio, self.update_mask)
        raw_out = super().forward(torch.mul(input, mask) if mask_in is not None else input)
        if self.bias is not None:
            bias_view = self.bias.view(1, self.out_channels, 1, 1)
            output = torch.mul(raw_out - bias_view, self.mask_ratio) + bias_view
            output = torch.mul(output, self.update_mask)
        else:
            output = torch.mul(raw_out, self.mask_ratio)
        if self.return_mask:
            return output, self.update_mask
        return output


class AddCoords(nn.Module):
    def __init__(self, with_r=False):
        super().__init__()
        self.with_r = with_r

    def forward(self, input_tensor):
        batch_size, _, x_dim, y_dim = input_tensor.size()
        xx_channel = torch.arange(x_dim).repeat(1, y_dim, 1)
        yy_channel = torch.arange(y_dim).repeat(1, x_dim, 1).transpose(1, 2)
        xx_channel = xx_channel.float() / (x_dim - 1)
        yy_channel = yy_channel.float() / (y_dim - 1)
        xx_channel = xx_channel * 2 - 1
        yy_channel = yy_channel * 2 - 1
        xx_channel = xx_channel.repeat(batch_size, 1, 1, 1).transpose(2, 3)
        yy_channel = yy_channel.repeat(batch_size, 1, 1, 1).transpose(2, 3)
        ret = torch.cat(
            [input_tensor, xx_channel.type_as(input_tensor), yy_channel.type_as(input_tensor)],
            dim=1,
        )
        if self.with_r:
            rr = torch.sqrt(
                torch.pow(xx_channel.type_as(input_tensor) - 0.5, 2)
                + torch.pow(yy_channel.type_as(input_tensor) - 0.5, 2)
            )
            ret = torch.cat([ret, rr], dim=1)
        return ret


class CondConv2d(nn.Module):
    def __init__(
        self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, groups=1, num_experts=3
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = torch.nn.modules.utils._pair(stride)
        self.padding = nn.modules.utils._pair(padding)
        self.groups = groups
        self.num_experts = num_experts
        self.weight_shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        weight_num_param = 1
        for wd in self.weight_shape:
            weight_num_param *= wd
        self.weight = nn.Parameter(torch.Tensor(self.num_experts, weight_num_param))
        self.bias = nn.Parameter(torch.Tensor(self.num_experts, self.out_channels))
        self.routing = nn.Linear(in_channels, num_experts)
        self.reset_parameters()

    def reset_parameters(self):
        for i in range(self.num_experts):
            init.kaiming_uniform_(self.weight[i].view(self.weight_shape), a=math.sqrt(5))
        fan_in = np.prod(self.weight_shape[1:])
        bound = 1 / math.sqrt(fan_in)
        init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        B, C, H, W = x.shape
        routing_weights = torch.sigmoid(self.routing(F.adaptive_avg_pool2d(x, 1).flatten(1)))
        weight = torch.matmul(routing_weights, self.weight)
        new_weight_shape = (
            B * self.out_channels,
            self.in_channels // self.groups,
        ) + self.kernel_size
        weight = weight.view(new_weight_shape)
        bias = torch.matmul(routing_weights, self.bias).view(B * self.out_channels)
        x = x.reshape(1, B * C, H, W)
        out = F.conv2d(
            x, weight, bias, stride=self.stride, padding=self.padding, groups=self.groups * B
        )
        return out.permute([1, 0, 2, 3]).view(B, self.out_channels, out.shape[-2], out.shape[-1])


class DynamicConv(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size=3, K=4, temperature=30):
        super().__init__()
        self.in_planes, self.out_planes, self.K, self.temperature = (
            in_planes,
            out_planes,
            K,
            temperature,
        )
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_planes, 8, 1), nn.ReLU(), nn.Conv2d(8, K, 1)
        )
        self.weight = nn.Parameter(
            torch.randn(K, out_planes, in_planes, kernel_size, kernel_size), requires_grad=True
        )
        self.bias = nn.Parameter(torch.randn(K, out_planes), requires_grad=True)
        self.kernel_size = kernel_size

    def forward(self, x):
        bs, in_planels, h, w = x.shape
        softmax_att = F.softmax(self.attention(x).view(bs, -1) / self.temperature, -1)
        x = x.view(1, -1, h, w)
        weight = self.weight.view(self.K, -1)
        aggregate_weight = torch.mm(softmax_att, weight).view(
            bs * self.out_planes, self.in_planes, self.kernel_size, self.kernel_size
        )
        aggregate_bias = torch.mm(softmax_att, self.bias).view(-1)
        output = F.conv2d(
            x, weight=aggregate_weight, bias=aggregate_bias, stride=1, padding=1, groups=bs
        )
        return output.view(bs, self.out_planes, h, w)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.pconv = PartialConv2d(3, 6, 3, padding=1, multi_channel=True, return_mask=True)
        self.coords = AddCoords(with_r=True)
        self.cond = CondConv2d(6 + 3, 8)
        self.dyn = DynamicConv(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x, mask):
        h, m = self.pconv(x, mask)
        h = F.relu(h)
        h = F.relu(self.cond(self.coords(h)))
        h = F.relu(self.dyn(h))
        return self.head(h.mean((2, 3))), m


rng = np.random.default_rng(4)
x = torch.from_numpy(rng.standard_normal((4, 3, 8, 8)).astype(np.float32))
mask = torch.from_numpy((rng.uniform(size=(4, 3, 8, 8)) > 0.3).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 2, 4))

net = Net()
W = reference_weights(net)
with torch.no_grad():
    for name, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
par = nn.DataParallel(net)
opt = torch.optim.SGD(par.parameters(), lr=0.05, momentum=0.9)
losses = []
for step in range(8):
    logits, m = par(x, mask)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

sd = par.state_dict()
keys = list(sd.keys())[:3]
new_state_dict = OrderedDict()
for k, v in sd.items():
    name = k[7:] if k.startswith("module.") else k
    new_state_dict[name] = v
plain = Net()
res = plain.load_state_dict(new_state_dict)
with torch.no_grad():
    out_plain, m2 = plain(x, mask)
    out_par, _ = par(x, mask)
ratio = net.pconv.mask_ratio
report(
    losses=losses,
    keys=keys,
    load=str(res),
    out=out_plain.tolist(),
    same=torch.equal(out_plain, out_par),
    mask_sum=m2.sum().item(),
    ratio=ratio[0, :2, :3, :3].tolist(),
    pair=list(_pair(3)),
    is_module=isinstance(par.module, Net),
    random_shape=list(plain.dyn.weight.shape),
)
