# The PyTorch "Neural Transfer Using PyTorch" tutorial as written, with a small CNN standing in
# for VGG19 (no torchvision): a Normalization module with mean/std viewed to (-1, 1, 1),
# ContentLoss / StyleLoss modules that detach their targets and record self.loss in forward,
# gram matrices with torch.mm(features, features.t()).div(a * b * c * d), the model rebuilt
# layer by layer with add_module (ReLU(inplace=False) swapped in), trimmed after the last loss
# layer, and the input image optimised with optim.LBFGS([input_img]) whose closure clamps
# input_img in place under no_grad, run until run[0] passes num_steps (in float64, see below).
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from compat_helpers import reference_weights, report

rng = np.random.default_rng(107)
# float64: in float32 LBFGS's curvature pair y = g_new - g_old cancels after the tiny first step
# (t = 1 / |g|_1), so float32 rounding decides the later steps (measured: 2e-4 apart at the
# third evaluation); in float64 descent and PyTorch agree over the whole run.
torch.set_default_dtype(torch.float64)
imsize = 16


class ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    a, b, c, d = input.size()  # a=batch size(=1)
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


cnn_normalization_mean = torch.tensor([0.485, 0.456, 0.406])
cnn_normalization_std = torch.tensor([0.229, 0.224, 0.225])


class Normalization(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, img):
        return (img - self.mean) / self.std


content_layers_default = ["conv_4"]
style_layers_default = ["conv_1", "conv_2", "conv_3", "conv_4", "conv_5"]


def get_style_model_and_losses(cnn, normalization_mean, normalization_std, style_img, content_img,
                               content_layers=content_layers_default,
                               style_layers=style_layers_default):  # fmt: skip
    normalization = Normalization(normalization_mean, normalization_std)
    content_losses = []
    style_losses = []
    model = nn.Sequential(normalization)
    i = 0  # increment every time we see a conv
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = "conv_{}".format(i)
        elif isinstance(layer, nn.ReLU):
            name = "relu_{}".format(i)
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = "pool_{}".format(i)
        elif isinstance(layer, nn.BatchNorm2d):
            name = "bn_{}".format(i)
        else:
            raise RuntimeError("Unrecognized layer: {}".format(layer.__class__.__name__))
        model.add_module(name, layer)
        if name in content_layers:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module("content_loss_{}".format(i), content_loss)
            content_losses.append(content_loss)
        if name in style_layers:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module("style_loss_{}".format(i), style_loss)
            style_losses.append(style_loss)
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], ContentLoss) or isinstance(model[i], StyleLoss):
            break
    model = model[: (i + 1)]
    return model, style_losses, content_losses


def get_input_optimizer(input_img):
    return optim.LBFGS([input_img])


def run_style_transfer(cnn, normalization_mean, normalization_std, content_img, style_img,
                       input_img, num_steps=6, style_weight=1000000, content_weight=1):  # fmt: skip
    model, style_losses, content_losses = get_style_model_and_losses(
        cnn, normalization_mean, normalization_std, style_img, content_img
    )
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = get_input_optimizer(input_img)
    run = [0]
    history = []
    while run[0] <= num_steps:

        def closure():
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            style_score = 0
            content_score = 0
            for sl in style_losses:
                style_score += sl.loss
            for cl in content_losses:
                content_score += cl.loss
            style_score *= style_weight
            content_score *= content_weight
            loss = style_score + content_score
            loss.backward()
            run[0] += 1
            history.append([style_score.item(), content_score.item()])
            return style_score + content_score

        optimizer.step(closure)
    with torch.no_grad():
        input_img.clamp_(0, 1)
    return input_img, history, [n for n, _ in model.named_children()]


cnn = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, padding=1),
    nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
    nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
    nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, padding=1),
)  # fmt: skip
W = reference_weights(cnn)
cnn.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
cnn = cnn.eval()
yy, xx = np.mgrid[0:imsize, 0:imsize] / imsize
style_img = torch.from_numpy(
    np.stack([np.sin(8 * xx), np.cos(8 * yy), np.sin(4 * (xx + yy))])[None].astype(np.float64) * 0.5
    + 0.5
)
content_img = 0.2 + 0.6 * torch.from_numpy(
    np.stack([(xx > 0.5), (yy > 0.5), (xx * yy > 0.2)])[None].astype(np.float64)
)
input_img = content_img.clone()
output, history, layers = run_style_transfer(
    copy.deepcopy(cnn),
    cnn_normalization_mean,
    cnn_normalization_std,
    content_img,
    style_img,
    input_img,
    style_weight=100,  # the tutorial uses 1e6 with VGG19; this small CNN has other scales
)
report(
    history=history,
    layers=layers,
    out_mean=output.mean().item(),
    out_corner=output[0, :, :2, :2].flatten().tolist(),
    in_range=bool((output >= 0).all() and (output <= 1).all()),
)
