# A detection backbone the way torchvision's resnet.py, ops/misc.py and
# ops/feature_pyramid_network.py write it (our own condensed rewrite): Bottleneck blocks (expansion
# 4, 1x1-3x3-1x1 with the stride on the 3x3 as in ResNet V1.5, a downsample Sequential of conv1x1 +
# norm_layer), _make_layer with dilation bookkeeping, kaiming_normal_(mode="fan_out",
# nonlinearity="relu") and zero_init_residual (nn.init.constant_(m.bn3.weight, 0)),
# FrozenBatchNorm2d as buffers with its _load_from_state_dict dropping num_batches_tracked and a
# fused scale/shift forward, the backbone's batch norms replaced by FrozenBatchNorm2d copied from a
# trained BatchNorm2d, IntermediateLayerGetter over named_children into an OrderedDict, the FPN's
# inner/layer blocks in ModuleLists, top-down upsampling by F.interpolate(size=..., mode="nearest"),
# LastLevelMaxPool by F.max_pool2d(x, 1, 2, 0), layers frozen by requires_grad_(False) by name
# prefix, and a dense prediction head trained by SGD with weight decay under MultiStepLR.
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(2192)


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class FrozenBatchNorm2d(nn.Module):
    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        num_batches_tracked_key = prefix + "num_batches_tracked"
        if num_batches_tracked_key in state_dict:
            del state_dict[num_batches_tracked_key]
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x):
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        return x * scale + bias

    def __repr__(self):
        return f"{self.__class__.__name__}({self.weight.shape[0]}, eps={self.eps})"


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self,
        inplanes,
        planes,
        stride=1,
        downsample=None,
        groups=1,
        base_width=64,
        dilation=1,
        norm_layer=None,
    ):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, layers, zero_init_residual=False, norm_layer=None, width=8):
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers = [
            block(
                self.inplanes,
                planes,
                stride,
                downsample,
                self.groups,
                self.base_width,
                previous_dilation,
                norm_layer,
            )
        ]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(
                block(
                    self.inplanes,
                    planes,
                    groups=self.groups,
                    base_width=self.base_width,
                    dilation=self.dilation,
                    norm_layer=norm_layer,
                )
            )
        return nn.Sequential(*layers)


class IntermediateLayerGetter(nn.ModuleDict):
    def __init__(self, model, return_layers):
        if not set(return_layers).issubset([name for name, _ in model.named_children()]):
            raise ValueError("return_layers are not present in model")
        orig_return_layers = return_layers
        return_layers = {str(k): str(v) for k, v in return_layers.items()}
        layers = OrderedDict()
        for name, module in model.named_children():
            layers[name] = module
            if name in return_layers:
                del return_layers[name]
            if not return_layers:
                break
        super().__init__(layers)
        self.return_layers = orig_return_layers

    def forward(self, x):
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class FeaturePyramidNetwork(nn.Module):
    def __init__(self, in_channels_list, out_channels):
        super().__init__()
        self.inner_blocks = nn.ModuleList()
        self.layer_blocks = nn.ModuleList()
        for in_channels in in_channels_list:
            self.inner_blocks.append(nn.Conv2d(in_channels, out_channels, 1))
            self.layer_blocks.append(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        names = list(x.keys())
        x = list(x.values())
        last_inner = self.inner_blocks[-1](x[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(x) - 2, -1, -1):
            inner_lateral = self.inner_blocks[idx](x[idx])
            feat_shape = inner_lateral.shape[-2:]
            inner_top_down = F.interpolate(last_inner, size=feat_shape, mode="nearest")
            last_inner = inner_lateral + inner_top_down
            results.insert(0, self.layer_blocks[idx](last_inner))
        names.append("pool")
        results.append(F.max_pool2d(results[-1], 1, 2, 0))
        return OrderedDict([(k, v) for k, v in zip(names, results)])


class BackboneWithFPN(nn.Module):
    def __init__(self, backbone, return_layers, in_channels_list, out_channels):
        super().__init__()
        self.body = IntermediateLayerGetter(backbone, return_layers=return_layers)
        self.fpn = FeaturePyramidNetwork(in_channels_list, out_channels)
        self.out_channels = out_channels

    def forward(self, x):
        return self.fpn(self.body(x))


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


x_all = torch.from_numpy(rng.standard_normal((12, 3, 32, 32)).astype(np.float32))
# 1) a BatchNorm ResNet trained briefly (zero-init residual), its statistics then frozen
net = ResNet(Bottleneck, [1, 1, 1], zero_init_residual=True)
zero_bn3 = [float(m.bn3.weight.abs().sum()) for m in net.modules() if isinstance(m, Bottleneck)]
kaiming_std = float(net.conv1.weight.std())
load_reference(net)
pre = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
pre_losses = []
for step in range(3):
    feats = pre(x_all[step * 4 : (step + 1) * 4])
    loss = feats.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    pre_losses.append(loss.item())
bn_state = net.state_dict()
# 2) the same layout with FrozenBatchNorm2d, loaded from the trained checkpoint
frozen = ResNet(Bottleneck, [1, 1, 1], norm_layer=FrozenBatchNorm2d)
missing = frozen.load_state_dict(bn_state, strict=False)
frozen_ok = torch.allclose(frozen.layer1[0].bn1.running_var, net.layer1[0].bn1.running_var)
for name, parameter in frozen.named_parameters():
    if "layer2" not in name and "layer3" not in name:
        parameter.requires_grad_(False)
n_trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
model = BackboneWithFPN(frozen, {"layer1": "0", "layer2": "1", "layer3": "2"}, [32, 64, 128], 16)
head = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.GELU(), nn.Conv2d(16, 1, 1))
load_reference(head)
with torch.no_grad():
    for name, p in model.fpn.named_parameters():
        p.copy_(torch.from_numpy(reference_weights(model.fpn)[name]))
params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 5], gamma=0.1)
target = torch.from_numpy(rng.uniform(0, 1, (12, 1, 8, 8)).astype(np.float32))
losses, lrs = [], []
for step in range(6):
    i = slice((step % 3) * 4, (step % 3) * 4 + 4)
    feats = model(x_all[i])
    pred = head(feats["0"])
    aux = sum(head(f).mean() for k, f in feats.items() if k != "0")
    loss = F.binary_cross_entropy_with_logits(pred, target[i]) + 0.1 * aux.abs()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(opt.param_groups[0]["lr"])
with torch.no_grad():
    feats = model(x_all[:2])

report(
    zero_bn3=zero_bn3,
    kaiming_std_in_range=bool(0.05 < kaiming_std < 0.3),
    pre_losses=pre_losses,
    missing=sorted(missing.missing_keys),
    unexpected=sorted(missing.unexpected_keys),
    frozen_ok=bool(frozen_ok),
    frozen_repr=repr(frozen.bn1),
    n_trainable=n_trainable,
    feat_names=list(feats.keys()),
    feat_shapes=[list(v.shape) for v in feats.values()],
    feat_means=[v.mean().item() for v in feats.values()],
    losses=losses,
    lrs=lrs,
    buffers_unchanged=bool(
        torch.equal(frozen.layer3[0].bn2.running_mean, net.layer3[0].bn2.running_mean)
    ),
)
