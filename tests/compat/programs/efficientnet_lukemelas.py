# lukemelas/EfficientNet-PyTorch's building blocks as written (condensed): SwishImplementation
# (a torch.autograd.Function saving its input by ctx.save_for_backward and computing
# sigmoid(i) * (1 + i * (1 - sigmoid(i))) in backward) behind MemoryEfficientSwish, the plain
# Swish, round_filters / round_repeats with a BlockArgs namedtuple and GlobalParams,
# Conv2dStaticSamePadding (ZeroPad2d computed from math.ceil in __init__) and
# Conv2dDynamicSamePadding (F.pad computed per call), MBConvBlock with expansion, depthwise
# conv, squeeze-and-excitation (F.adaptive_avg_pool2d, torch.sigmoid(x_squeezed) * x), the
# projection and the id-skip, drop_connect (only in training: the program evaluates the
# drop path with a NumPy-drawn keep mask), BatchNorm2d(momentum=1 - 0.99, eps=1e-3),
# set_swish(memory_efficient=False) swapping the activation, extract_features; trained with
# RMSprop(alpha=0.9, eps=1e-3 as the paper) and evaluated.
import collections
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

GlobalParams = collections.namedtuple(
    "GlobalParams", ["width_coefficient", "depth_coefficient", "depth_divisor", "min_depth",
                     "batch_norm_momentum", "batch_norm_epsilon", "image_size"],
)  # fmt: skip
BlockArgs = collections.namedtuple(
    "BlockArgs", ["num_repeat", "kernel_size", "stride", "expand_ratio", "input_filters",
                  "output_filters", "se_ratio", "id_skip"],
)  # fmt: skip


class SwishImplementation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, i):
        result = i * torch.sigmoid(i)
        ctx.save_for_backward(i)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        i = ctx.saved_tensors[0]
        sigmoid_i = torch.sigmoid(i)
        return grad_output * (sigmoid_i * (1 + i * (1 - sigmoid_i)))


class MemoryEfficientSwish(nn.Module):
    def forward(self, x):
        return SwishImplementation.apply(x)


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def round_filters(filters, global_params):
    multiplier = global_params.width_coefficient
    if not multiplier:
        return filters
    divisor = global_params.depth_divisor
    min_depth = global_params.min_depth
    filters *= multiplier
    min_depth = min_depth or divisor
    new_filters = max(min_depth, int(filters + divisor / 2) // divisor * divisor)
    if new_filters < 0.9 * filters:
        new_filters += divisor
    return int(new_filters)


def round_repeats(repeats, global_params):
    multiplier = global_params.depth_coefficient
    if not multiplier:
        return repeats
    return int(math.ceil(multiplier * repeats))


def drop_connect(inputs, p, training, keep=None):
    if not training:
        return inputs
    keep_prob = 1 - p
    random_tensor = keep_prob + keep
    binary_tensor = torch.floor(random_tensor)
    return inputs / keep_prob * binary_tensor


class Conv2dDynamicSamePadding(nn.Conv2d):
    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1, bias=True
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)
        self.stride = self.stride if len(self.stride) == 2 else [self.stride[0]] * 2

    def forward(self, x):
        ih, iw = x.size()[-2:]
        kh, kw = self.weight.size()[-2:]
        sh, sw = self.stride
        oh, ow = math.ceil(ih / sh), math.ceil(iw / sw)
        pad_h = max((oh - 1) * self.stride[0] + (kh - 1) * self.dilation[0] + 1 - ih, 0)
        pad_w = max((ow - 1) * self.stride[1] + (kw - 1) * self.dilation[1] + 1 - iw, 0)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Conv2dStaticSamePadding(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, image_size=None, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride, **kwargs)
        self.stride = self.stride if len(self.stride) == 2 else [self.stride[0]] * 2
        ih, iw = (image_size, image_size) if isinstance(image_size, int) else image_size
        kh, kw = self.weight.size()[-2:]
        sh, sw = self.stride
        oh, ow = math.ceil(ih / sh), math.ceil(iw / sw)
        pad_h = max((oh - 1) * self.stride[0] + (kh - 1) * self.dilation[0] + 1 - ih, 0)
        pad_w = max((ow - 1) * self.stride[1] + (kw - 1) * self.dilation[1] + 1 - iw, 0)
        if pad_h > 0 or pad_w > 0:
            self.static_padding = nn.ZeroPad2d(
                (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
            )
        else:
            self.static_padding = nn.Identity()

    def forward(self, x):
        x = self.static_padding(x)
        x = F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        return x


class MBConvBlock(nn.Module):
    def __init__(self, block_args, global_params, image_size=None, static=True):
        super().__init__()
        self._block_args = block_args
        self._bn_mom = 1 - global_params.batch_norm_momentum
        self._bn_eps = global_params.batch_norm_epsilon
        self.has_se = (self._block_args.se_ratio is not None) and (
            0 < self._block_args.se_ratio <= 1
        )
        self.id_skip = block_args.id_skip
        if static:
            Conv2d = lambda *a, **k: Conv2dStaticSamePadding(*a, image_size=image_size, **k)  # noqa: E731
        else:
            Conv2d = Conv2dDynamicSamePadding
        inp = self._block_args.input_filters
        oup = self._block_args.input_filters * self._block_args.expand_ratio
        if self._block_args.expand_ratio != 1:
            self._expand_conv = Conv2d(in_channels=inp, out_channels=oup, kernel_size=1, bias=False)
            self._bn0 = nn.BatchNorm2d(num_features=oup, momentum=self._bn_mom, eps=self._bn_eps)
        k = self._block_args.kernel_size
        s = self._block_args.stride
        self._depthwise_conv = Conv2d(
            in_channels=oup, out_channels=oup, groups=oup, kernel_size=k, stride=s, bias=False
        )
        self._bn1 = nn.BatchNorm2d(num_features=oup, momentum=self._bn_mom, eps=self._bn_eps)
        if self.has_se:
            num_squeezed_channels = max(
                1, int(self._block_args.input_filters * self._block_args.se_ratio)
            )
            self._se_reduce = Conv2d(
                in_channels=oup, out_channels=num_squeezed_channels, kernel_size=1
            )
            self._se_expand = Conv2d(
                in_channels=num_squeezed_channels, out_channels=oup, kernel_size=1
            )
        final_oup = self._block_args.output_filters
        self._project_conv = Conv2d(
            in_channels=oup, out_channels=final_oup, kernel_size=1, bias=False
        )
        self._bn2 = nn.BatchNorm2d(num_features=final_oup, momentum=self._bn_mom, eps=self._bn_eps)
        self._swish = MemoryEfficientSwish()

    def forward(self, inputs, drop_connect_rate=None, keep=None):
        x = inputs
        if self._block_args.expand_ratio != 1:
            x = self._expand_conv(inputs)
            x = self._bn0(x)
            x = self._swish(x)
        x = self._depthwise_conv(x)
        x = self._bn1(x)
        x = self._swish(x)
        if self.has_se:
            x_squeezed = F.adaptive_avg_pool2d(x, 1)
            x_squeezed = self._se_reduce(x_squeezed)
            x_squeezed = self._swish(x_squeezed)
            x_squeezed = self._se_expand(x_squeezed)
            x = torch.sigmoid(x_squeezed) * x
        x = self._project_conv(x)
        x = self._bn2(x)
        input_filters, output_filters = (
            self._block_args.input_filters,
            self._block_args.output_filters,
        )
        if self.id_skip and self._block_args.stride == 1 and input_filters == output_filters:
            if drop_connect_rate:
                x = drop_connect(x, p=drop_connect_rate, training=self.training, keep=keep)
            x = x + inputs
        return x

    def set_swish(self, memory_efficient=True):
        self._swish = MemoryEfficientSwish() if memory_efficient else Swish()


gp = GlobalParams(0.5, 1.2, 8, None, 0.99, 1e-3, 8)
blocks = [
    BlockArgs(1, 3, 1, 1, round_filters(16, gp), round_filters(16, gp), 0.25, True),
    BlockArgs(
        round_repeats(2, gp), 3, 2, 6, round_filters(16, gp), round_filters(24, gp), 0.25, True
    ),
]


class TinyEffNet(nn.Module):
    def __init__(self, static=True):
        super().__init__()
        self._conv_stem = Conv2dStaticSamePadding(
            3, 8, kernel_size=3, stride=1, image_size=8, bias=False
        )
        self._bn0 = nn.BatchNorm2d(8, momentum=0.01, eps=1e-3)
        self._blocks = nn.ModuleList()
        for ba in blocks:
            self._blocks.append(MBConvBlock(ba, gp, image_size=8, static=static))
            ba = ba._replace(input_filters=ba.output_filters, stride=1)
            for _ in range(ba.num_repeat - 1):
                self._blocks.append(MBConvBlock(ba, gp, image_size=4, static=static))
        self._fc = nn.Linear(round_filters(24, gp), 3)
        self._swish = MemoryEfficientSwish()

    def extract_features(self, x, keeps=None):
        x = self._swish(self._bn0(self._conv_stem(x)))
        for idx, block in enumerate(self._blocks):
            rate = 0.2 * float(idx) / len(self._blocks)
            x = block(x, drop_connect_rate=rate, keep=None if keeps is None else keeps[idx])
        return x

    def forward(self, x, keeps=None):
        x = self.extract_features(x, keeps)
        x = F.adaptive_avg_pool2d(x, 1).flatten(start_dim=1)
        return self._fc(x)

    def set_swish(self, memory_efficient=True):
        self._swish = MemoryEfficientSwish() if memory_efficient else Swish()
        for block in self._blocks:
            block.set_swish(memory_efficient)


rng = np.random.default_rng(2626)
x = torch.from_numpy(rng.standard_normal((8, 3, 8, 8)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, 8))
results = {}
for static in (True, False):
    model = TinyEffNet(static)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9)
    losses = []
    for step in range(5):
        keeps = [
            torch.from_numpy(rng.uniform(size=(8, 1, 1, 1)).astype(np.float32)) for _ in range(4)
        ]
        loss = F.cross_entropy(model(x, keeps), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        eff = model(x)
        model.set_swish(memory_efficient=False)
        plain = model(x)
    results[str(static)] = {
        "losses": losses,
        "eval": eff[:3].tolist(),
        "swish_same": (eff - plain).abs().max().item() < 1e-5,
        "n_blocks": len(model._blocks),
        "feat_shape": list(model.extract_features(x).shape),
    }
xg = torch.linspace(-4, 4, 9, dtype=torch.float64, requires_grad=True)
ok = torch.autograd.gradcheck(SwishImplementation.apply, (xg,))
report(results=results, filters=[round_filters(f, gp) for f in (16, 24, 40, 112)], gradcheck=ok)
