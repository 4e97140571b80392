# RepVGG and its structural re-parameterisation as the DingXiaoH/RepVGG repository writes it (our
# own condensed rewrite): a training-time block of three branches (3x3 conv + BN, 1x1 conv + BN,
# an identity BatchNorm when in == out and stride 1) summed before a ReLU, conv_bn() built as an
# nn.Sequential with add_module, _fuse_bn_tensor() folding each branch's BatchNorm into a kernel
# and bias (running_var + eps, sqrt, reshape(-1, 1, 1, 1)), the 1x1 kernel padded to 3x3 by
# F.pad, the identity branch as a kernel built in NumPy, get_equivalent_kernel_bias and
# switch_to_deploy (a new nn.Conv2d whose weight.data / bias.data are assigned, __delattr__ of
# the branches, self.deploy); training under SGD with nesterov momentum and a custom L2 on the
# equivalent kernel (the paper's "custom L2"), the deployed network checked against the
# training-time one in eval mode, then a model converted by copy.deepcopy + modules() walk,
# saved by torch.save and loaded into a deploy-mode net.
import copy
import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2191)


def conv_bn(in_channels, out_channels, kernel_size, stride, padding, groups=1):
    result = nn.Sequential()
    result.add_module(
        "conv",
        nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
        ),
    )
    result.add_module("bn", nn.BatchNorm2d(out_channels))
    return result


class RepVGGBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, groups=1, deploy=False):
        super().__init__()
        self.deploy = deploy
        self.groups = groups
        self.in_channels = in_channels
        self.nonlinearity = nn.ReLU()
        if deploy:
            self.rbr_reparam = nn.Conv2d(
                in_channels, out_channels, 3, stride, 1, groups=groups, bias=True
            )
        else:
            self.rbr_identity = (
                nn.BatchNorm2d(in_channels) if out_channels == in_channels and stride == 1 else None
            )
            self.rbr_dense = conv_bn(in_channels, out_channels, 3, stride, 1, groups=groups)
            self.rbr_1x1 = conv_bn(in_channels, out_channels, 1, stride, 0, groups=groups)

    def forward(self, inputs):
        if hasattr(self, "rbr_reparam"):
            return self.nonlinearity(self.rbr_reparam(inputs))
        id_out = 0 if self.rbr_identity is None else self.rbr_identity(inputs)
        return self.nonlinearity(self.rbr_dense(inputs) + self.rbr_1x1(inputs) + id_out)

    def get_custom_L2(self):
        K3 = self.rbr_dense.conv.weight
        K1 = self.rbr_1x1.conv.weight
        t3 = (
            (
                self.rbr_dense.bn.weight
                / ((self.rbr_dense.bn.running_var + self.rbr_dense.bn.eps).sqrt())
            )
            .reshape(-1, 1, 1, 1)
            .detach()
        )
        t1 = (
            (self.rbr_1x1.bn.weight / ((self.rbr_1x1.bn.running_var + self.rbr_1x1.bn.eps).sqrt()))
            .reshape(-1, 1, 1, 1)
            .detach()
        )
        l2_loss_circle = (K3**2).sum() - (K3[:, :, 1:2, 1:2] ** 2).sum()
        eq_kernel = K3[:, :, 1:2, 1:2] * t3 + K1 * t1
        l2_loss_eq_kernel = (eq_kernel**2 / (t3**2 + t1**2)).sum()
        return l2_loss_eq_kernel + l2_loss_circle

    def get_equivalent_kernel_bias(self):
        kernel3x3, bias3x3 = self._fuse_bn_tensor(self.rbr_dense)
        kernel1x1, bias1x1 = self._fuse_bn_tensor(self.rbr_1x1)
        kernelid, biasid = self._fuse_bn_tensor(self.rbr_identity)
        return kernel3x3 + self._pad_1x1_to_3x3_tensor(
            kernel1x1
        ) + kernelid, bias3x3 + bias1x1 + biasid

    def _pad_1x1_to_3x3_tensor(self, kernel1x1):
        if kernel1x1 is None:
            return 0
        return F.pad(kernel1x1, [1, 1, 1, 1])

    def _fuse_bn_tensor(self, branch):
        if branch is None:
            return 0, 0
        if isinstance(branch, nn.Sequential):
            kernel = branch.conv.weight
            running_mean = branch.bn.running_mean
            running_var = branch.bn.running_var
            gamma = branch.bn.weight
            beta = branch.bn.bias
            eps = branch.bn.eps
        else:
            assert isinstance(branch, nn.BatchNorm2d)
            if not hasattr(self, "id_tensor"):
                input_dim = self.in_channels // self.groups
                kernel_value = np.zeros((self.in_channels, input_dim, 3, 3), dtype=np.float32)
                for i in range(self.in_channels):
                    kernel_value[i, i % input_dim, 1, 1] = 1
                self.id_tensor = torch.from_numpy(kernel_value).to(branch.weight.device)
            kernel = self.id_tensor
            running_mean = branch.running_mean
            running_var = branch.running_var
            gamma = branch.weight
            beta = branch.bias
            eps = branch.eps
        std = (running_var + eps).sqrt()
        t = (gamma / std).reshape(-1, 1, 1, 1)
        return kernel * t, beta - running_mean * gamma / std

    def switch_to_deploy(self):
        if hasattr(self, "rbr_reparam"):
            return
        kernel, bias = self.get_equivalent_kernel_bias()
        conv = self.rbr_dense.conv
        self.rbr_reparam = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            groups=conv.groups,
            bias=True,
        )
        self.rbr_reparam.weight.data = kernel
        self.rbr_reparam.bias.data = bias
        self.__delattr__("rbr_dense")
        self.__delattr__("rbr_1x1")
        if hasattr(self, "rbr_identity"):
            self.__delattr__("rbr_identity")
        if hasattr(self, "id_tensor"):
            self.__delattr__("id_tensor")
        self.deploy = True


class RepVGG(nn.Module):
    def __init__(self, widths=(8, 16, 16), num_classes=5, groups_at=(2,), deploy=False):
        super().__init__()
        self.deploy = deploy
        layers = []
        in_planes = 3
        for i, w in enumerate(widths):
            stride = 2 if i < 2 else 1
            g = 2 if i in groups_at else 1
            layers.append(RepVGGBlock(in_planes, w, stride=stride, groups=g, deploy=deploy))
            if i == len(widths) - 1:
                layers.append(RepVGGBlock(w, w, stride=1, groups=1, deploy=deploy))
            in_planes = w
        self.stages = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(output_size=1)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        out = self.stages(x)
        out = self.gap(out)
        out = out.view(out.size(0), -1)
        return self.linear(out)


def repvgg_model_convert(model, save_path=None, do_copy=True):
    if do_copy:
        model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "switch_to_deploy"):
            module.switch_to_deploy()
    if save_path is not None:
        torch.save(model.state_dict(), save_path)
    return model


model = RepVGG()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
x_all = torch.from_numpy(rng.standard_normal((24, 3, 16, 16)).astype(np.float32))
y_all = torch.from_numpy(rng.integers(0, 5, 24))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
crit = nn.CrossEntropyLoss()
losses, l2s = [], []
for step in range(6):
    idx = slice((step % 3) * 8, (step % 3) * 8 + 8)
    logits = model(x_all[idx])
    l2 = sum(m.get_custom_L2() for m in model.modules() if isinstance(m, RepVGGBlock))
    loss = crit(logits, y_all[idx]) + 1e-4 * 0.5 * l2
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    l2s.append(float(l2))

model.eval()
with torch.no_grad():
    train_logits = model(x_all[:8])
buf = io.BytesIO()
deployed = repvgg_model_convert(model, save_path=buf)
with torch.no_grad():
    deploy_logits = deployed(x_all[:8])
buf.seek(0)
sd = torch.load(buf)
fresh = RepVGG(deploy=True)
fresh.load_state_dict(sd)
fresh.eval()
with torch.no_grad():
    fresh_logits = fresh(x_all[:8])
n_train = sum(p.numel() for p in model.parameters())
n_deploy = sum(p.numel() for p in deployed.parameters())

report(
    losses=losses,
    l2s=l2s,
    train_logits=train_logits.flatten().tolist(),
    deploy_logits=deploy_logits.flatten().tolist(),
    fuse_err_small=bool((train_logits - deploy_logits).abs().max().item() < 1e-4),
    fresh_equal=bool(torch.equal(fresh_logits, deploy_logits)),
    keys=sorted(sd.keys()),
    n_train=n_train,
    n_deploy=n_deploy,
    has_dense=[hasattr(m, "rbr_dense") for m in deployed.stages],
)
