# Attribution methods as interpretability code writes them (jacobgil/pytorch-grad-cam's
# ActivationsAndGradients, Captum's integrated gradients and occlusion, the guided-backprop
# notebooks): a small CNN trained a few steps, then Grad-CAM from a forward hook that keeps the
# activation and a tensor hook on it that keeps its gradient, the same gradients through
# register_full_backward_hook, Grad-CAM++ (alpha from powers of the gradient), the cam
# upsampled by F.interpolate(bilinear) and min-max normalised per image, guided backprop by
# full backward hooks on every nn.ReLU that clamp grad_input, vanilla saliency by
# x.grad.abs().amax(dim=1), SmoothGrad over NumPy noise, integrated gradients batched over
# interpolation steps with the completeness check, occlusion by slice assignment on clones,
# a deletion curve by argsort of the saliency and scatter_ of a flat mask, hooks removed by
# their handles.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(12)


class SmallCNN(nn.Module):
    def __init__(self, n_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, n_classes)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


class ActivationsAndGradients:
    """Keeps the target layer's activations (forward hook) and their gradients (tensor hook)."""

    def __init__(self, model, target_layer):
        self.model = model
        self.activations = []
        self.gradients = []
        self.handles = [target_layer.register_forward_hook(self.save_activation)]

    def save_activation(self, module, input, output):
        self.activations.append(output.cpu().detach())
        if not hasattr(output, "requires_grad") or not output.requires_grad:
            return  # no gradient under no_grad

        def _store_grad(grad):
            self.gradients = [grad.cpu().detach()] + self.gradients

        output.register_hook(_store_grad)

    def __call__(self, x):
        self.gradients = []
        self.activations = []
        return self.model(x)

    def release(self):
        for handle in self.handles:
            handle.remove()


class GradCAM:
    def __init__(self, model, target_layer, plus_plus=False):
        self.model = model.eval()
        self.ag = ActivationsAndGradients(model, target_layer)
        self.plus_plus = plus_plus

    def get_cam_weights(self, grads, activations):
        if not self.plus_plus:
            return np.mean(grads, axis=(2, 3))
        grads_power_2 = grads ** 2
        grads_power_3 = grads_power_2 * grads
        sum_activations = np.sum(activations, axis=(2, 3))
        aij = grads_power_2 / (2 * grads_power_2
                               + sum_activations[:, :, None, None] * grads_power_3 + 1e-7)
        aij = np.where(grads != 0, aij, 0)
        weights = np.maximum(grads, 0) * aij
        return np.sum(weights, axis=(2, 3))

    def __call__(self, input_tensor, targets):
        outputs = self.ag(input_tensor)
        self.model.zero_grad()
        loss = sum(outputs[i, t] for i, t in enumerate(targets))
        loss.backward(retain_graph=True)
        activations = self.ag.activations[-1].numpy()
        grads = self.ag.gradients[-1].numpy()
        weights = self.get_cam_weights(grads, activations)
        cam = torch.from_numpy(weights[:, :, None, None] * activations).sum(dim=1)
        cam = F.relu(cam)
        cam = F.interpolate(cam.unsqueeze(1), size=input_tensor.shape[-2:], mode="bilinear",
                            align_corners=False).squeeze(1)
        flat = cam.view(cam.size(0), -1)
        lo = flat.min(dim=1, keepdim=True)[0]
        hi = flat.max(dim=1, keepdim=True)[0]
        return ((flat - lo) / (hi - lo + 1e-7)).view_as(cam), outputs


model = SmallCNN()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

X = torch.from_numpy(rng.standard_normal((16, 3, 12, 12)).astype(np.float32))
# class = quadrant holding the brightest red blob
Y = torch.from_numpy(rng.integers(0, 4, 16))
for i, c in enumerate(Y.tolist()):
    r, s = divmod(c, 2)
    X[i, 0, r * 6:r * 6 + 6, s * 6:s * 6 + 6] += 1.5
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
losses = []
for step in range(8):
    opt.zero_grad()
    loss = F.cross_entropy(model(X), Y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
model.eval()

x = X[:4].clone()
targets = Y[:4].tolist()
cam_maker = GradCAM(model, model.features[4])
cams, outputs = cam_maker(x, targets)
n_acts = len(cam_maker.ag.activations)
cam_maker.ag.release()
hooks_left = len(model.features[4]._forward_hooks)
cam_pp_maker = GradCAM(model, model.features[4], plus_plus=True)
cam_pp, _ = cam_pp_maker(x, targets)
with torch.no_grad():
    cam_pp_maker.ag(x)  # the hook returns before registering a tensor hook
n_grads_no_grad = len(cam_pp_maker.ag.gradients)
cam_pp_maker.ag.release()

# the same gradient through a full backward hook on the module
grad_outs = []
handle = model.features[5].register_full_backward_hook(
    lambda m, gin, gout: grad_outs.append(gout[0].detach().clone()))
xr = x.clone().requires_grad_()
out = model(xr)
out.gather(1, torch.tensor(targets).view(-1, 1)).sum().backward()
handle.remove()
hook_grad = grad_outs[0]

# vanilla saliency
saliency = xr.grad.abs().amax(dim=1)  # (B, H, W)

# guided backprop: only positive gradients through every ReLU
handles = []
for module in model.modules():
    if isinstance(module, nn.ReLU):
        handles.append(module.register_full_backward_hook(
            lambda m, grad_in, grad_out: (torch.clamp(grad_in[0], min=0.0),)))
xg = x.clone().requires_grad_()
model(xg).gather(1, torch.tensor(targets).view(-1, 1)).sum().backward()
guided = xg.grad.clone()
for h in handles:
    h.remove()
guided_cam = guided * cams.unsqueeze(1)

# SmoothGrad over NumPy noise
noise = torch.from_numpy(rng.standard_normal((6,) + tuple(x.shape)).astype(np.float32))
smooth = torch.zeros_like(x)
for k in range(noise.shape[0]):
    xn = (x + 0.15 * noise[k]).requires_grad_(True)
    score = model(xn)[torch.arange(4), torch.tensor(targets)].sum()
    (g,) = torch.autograd.grad(score, xn)
    smooth += g / noise.shape[0]


def integrated_gradients(model, inp, target, baseline=None, steps=16):
    if baseline is None:
        baseline = torch.zeros_like(inp)
    alphas = torch.linspace(0, 1, steps + 1)
    path = baseline + alphas.view(-1, 1, 1, 1) * (inp - baseline).unsqueeze(0)
    path.requires_grad_()
    logits = model(path)[:, target]
    (grads,) = torch.autograd.grad(logits.sum(), path)
    avg_grads = (grads[:-1] + grads[1:]).mean(dim=0) / 2  # trapezoid rule
    return (inp - baseline) * avg_grads


# a uniform-noise baseline: the black image makes every conv output equal to its bias, and
# max-pooling over exact ties picks its winner by rounding (Haswell kernels pick another)
baselines = torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(x.shape)).astype(np.float32))
ig = torch.stack([integrated_gradients(model, x[i], targets[i], baselines[i])
                  for i in range(4)])
with torch.no_grad():
    f_x = model(x)[torch.arange(4), torch.tensor(targets)]
    f_0 = model(baselines)[torch.arange(4), torch.tensor(targets)]
completeness = (ig.sum(dim=(1, 2, 3)) - (f_x - f_0)).abs().max().item()

# occlusion with a 4x4 grey patch, stride 4
occl = torch.zeros(4, 3, 3)
with torch.no_grad():
    base = F.softmax(model(x), dim=1)[torch.arange(4), torch.tensor(targets)]
    batch = []
    for r in range(3):
        for c in range(3):
            xo = x.clone()
            xo[:, :, r * 4:(r + 1) * 4, c * 4:(c + 1) * 4] = 0.0
            batch.append(xo)
    probs = F.softmax(model(torch.cat(batch)), dim=1).view(9, 4, -1)
    occl = (base - probs[:, torch.arange(4), torch.tensor(targets)]).t().reshape(4, 3, 3)

# deletion curve: zero the most salient pixels first
order = saliency.view(4, -1).argsort(dim=1, descending=True)
deletion = []
with torch.no_grad():
    for frac in (0.1, 0.25, 0.5):
        k = int(frac * order.size(1))
        mask = torch.ones(4, order.size(1))
        mask.scatter_(1, order[:, :k], 0.0)
        xd = x * mask.view(4, 1, 12, 12)
        deletion.append(F.softmax(model(xd), dim=1)[torch.arange(4), torch.tensor(targets)]
                        .tolist())

report(
    losses=losses,
    outputs=outputs.detach().tolist(),
    n_acts=n_acts,
    hooks_left=hooks_left,
    n_grads_no_grad=n_grads_no_grad,
    cams=cams[:, ::3, ::3].tolist(),
    cam_pp=cam_pp[:, ::3, ::3].tolist(),
    hook_grad=hook_grad.sum(dim=(2, 3)).tolist(),
    saliency=saliency[:, ::2, ::2].tolist(),
    guided=guided.sum(dim=(2, 3)).tolist(),
    guided_pos_frac=(guided > 0).float().mean().item(),
    guided_cam=guided_cam.abs().sum(dim=(1, 2, 3)).tolist(),
    smooth=smooth.sum(dim=(2, 3)).tolist(),
    ig=ig.sum(dim=(2, 3)).tolist(),
    completeness_small=completeness < 0.05,
    occlusion=occl.tolist(),
    deletion=deletion,
)
