# Capsule networks with dynamic routing (Sabour et al., 2017) in the shapes of the two popular
# PyTorch ports (our own rewrites): XifengGuo/CapsNet-Pytorch (squash by torch.norm, a
# DenseCapsule whose predictions come from torch.matmul of a 4-D weight with a 5-D view of the
# input, x[:, None, :, :, None], routing logits b over (batch, out, in) with softmax over the
# output capsules, the prediction detached in all but the last iteration, the margin loss by
# clamp(min=0) and a masked reconstruction decoder, one-hots by scatter_, Adam with ExponentialLR)
# and gram-ai/capsule-networks (a transposing softmax helper over .contiguous().view, primary
# capsules as a ModuleList of convolutions cat'ed on a new last axis, priors by a 5-D broadcast
# `@`, logits shaped like the priors, torch.autograd.Variable, .squeeze().transpose(0, 1),
# masks by torch.eye(...).index_select, F.relu(..., inplace=True) in the margin loss,
# nn.MSELoss(size_average=False) and the random-shift augmentation by slice assignment with
# NumPy integers). Data: 12x12 strokes made with NumPy.
import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn
from torch.autograd import Variable
from torch.optim import Adam, lr_scheduler

NUM_CLASSES = 4
NUM_ROUTING_ITERATIONS = 3


# ---- XifengGuo/CapsNet-Pytorch: capsulelayers.py, capsulenet.py
def squash(inputs, axis=-1):
    """The non-linear activation used in Capsule. It drives the length of a large vector to near
    1 and small vector to 0."""
    norm = torch.norm(inputs, p=2, dim=axis, keepdim=True)
    scale = norm**2 / (1 + norm**2) / (norm + 1e-8)
    return scale * inputs


class DenseCapsule(nn.Module):
    """The dense capsule layer. It is similar to Dense (FC) layer."""

    def __init__(self, in_num_caps, in_dim_caps, out_num_caps, out_dim_caps, routings=3):
        super(DenseCapsule, self).__init__()
        self.in_num_caps = in_num_caps
        self.in_dim_caps = in_dim_caps
        self.out_num_caps = out_num_caps
        self.out_dim_caps = out_dim_caps
        self.routings = routings
        self.weight = nn.Parameter(
            0.01 * torch.randn(out_num_caps, in_num_caps, out_dim_caps, in_dim_caps))

    def forward(self, x):
        # x.size=[batch, in_num_caps, in_dim_caps]
        # expanded to    [batch, 1,            in_num_caps, in_dim_caps,  1]
        # weight.size   =[       out_num_caps, in_num_caps, out_dim_caps, in_dim_caps]
        # torch.matmul: [out_dim_caps, in_dim_caps] x [in_dim_caps, 1] -> [out_dim_caps, 1]
        # => x_hat.size =[batch, out_num_caps, in_num_caps, out_dim_caps]
        x_hat = torch.squeeze(torch.matmul(self.weight, x[:, None, :, :, None]), dim=-1)

        # In forward pass, `x_hat_detached` = `x_hat`;
        # In backward, no gradient can flow from `x_hat_detached` back to `x_hat`.
        x_hat_detached = x_hat.detach()

        # The prior for coupling coefficient, initialized as zeros.
        # b.size = [batch, out_num_caps, in_num_caps]
        b = Variable(torch.zeros(x.size(0), self.out_num_caps, self.in_num_caps))

        assert self.routings > 0, "The 'routings' should be > 0."
        for i in range(self.routings):
            # c.size = [batch, out_num_caps, in_num_caps]
            c = F.softmax(b, dim=1)

            # At last iteration, use `x_hat` to compute `outputs` in order to backpropagate
            # gradient
            if i == self.routings - 1:
                # c.size expanded to [batch, out_num_caps, in_num_caps, 1           ]
                # x_hat.size     =   [batch, out_num_caps, in_num_caps, out_dim_caps]
                # => outputs.size=   [batch, out_num_caps, 1,           out_dim_caps]
                outputs = squash(torch.sum(c[:, :, :, None] * x_hat, dim=-2, keepdim=True))
            else:  # Otherwise, use `x_hat_detached` to update `b`. No gradients flow on this path.
                outputs = squash(
                    torch.sum(c[:, :, :, None] * x_hat_detached, dim=-2, keepdim=True))
                # outputs.size       =[batch, out_num_caps, 1,           out_dim_caps]
                # x_hat_detached.size=[batch, out_num_caps, in_num_caps, out_dim_caps]
                # => b.size          =[batch, out_num_caps, in_num_caps]
                b = b + torch.sum(outputs * x_hat_detached, dim=-1)

        return torch.squeeze(outputs, dim=-2)


class PrimaryCapsule(nn.Module):
    """Apply Conv2D with `out_channels` and then reshape to get capsules"""

    def __init__(self, in_channels, out_channels, dim_caps, kernel_size, stride=1, padding=0):
        super(PrimaryCapsule, self).__init__()
        self.dim_caps = dim_caps
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size,
                                stride=stride, padding=padding)

    def forward(self, x):
        outputs = self.conv2d(x)
        outputs = outputs.view(x.size(0), -1, self.dim_caps)
        return squash(outputs)


class CapsuleNet(nn.Module):
    def __init__(self, input_size, classes, routings):
        super(CapsuleNet, self).__init__()
        self.input_size = input_size
        self.classes = classes
        self.routings = routings

        # Layer 1: Just a conventional Conv2D layer
        self.conv1 = nn.Conv2d(input_size[0], 16, kernel_size=5, stride=1, padding=0)

        # Layer 2: Conv2D layer with `squash` activation, then reshape to
        # [None, num_caps, dim_caps]
        self.primarycaps = PrimaryCapsule(16, 32, 4, kernel_size=3, stride=2, padding=0)

        # Layer 3: Capsule layer. Routing algorithm works here.
        self.digitcaps = DenseCapsule(in_num_caps=8 * 3 * 3, in_dim_caps=4, out_num_caps=classes,
                                      out_dim_caps=8, routings=routings)

        # Decoder network.
        self.decoder = nn.Sequential(
            nn.Linear(8 * classes, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, input_size[0] * input_size[1] * input_size[2]),
            nn.Sigmoid(),
        )

        self.relu = nn.ReLU()

    def forward(self, x, y=None):
        x = self.relu(self.conv1(x))
        x = self.primarycaps(x)
        x = self.digitcaps(x)
        length = x.norm(dim=-1)
        if y is None:  # during testing, no label given. create one-hot coding using `length`
            index = length.max(dim=1)[1]
            y = Variable(torch.zeros(length.size()).scatter_(1, index.view(-1, 1).cpu().data, 1.0))
        reconstruction = self.decoder((x * y[:, :, None]).view(x.size(0), -1))
        return length, reconstruction.view(-1, *self.input_size)


def caps_loss(y_true, y_pred, x, x_recon, lam_recon):
    """Capsule loss = Margin loss + lam_recon * reconstruction loss."""
    L = y_true * torch.clamp(0.9 - y_pred, min=0.0) ** 2 + 0.5 * (1 - y_true) * torch.clamp(
        y_pred - 0.1, min=0.0) ** 2
    L_margin = L.sum(dim=1).mean()

    L_recon = nn.MSELoss()(x_recon, x)

    return L_margin + lam_recon * L_recon


# ---- gram-ai/capsule-networks: capsule_network.py
def softmax(input, dim=1):
    transposed_input = input.transpose(dim, len(input.size()) - 1)
    softmaxed_output = F.softmax(
        transposed_input.contiguous().view(-1, transposed_input.size(-1)), dim=-1)
    return softmaxed_output.view(*transposed_input.size()).transpose(dim, len(input.size()) - 1)


def augmentation(x, max_shift=2):
    _, _, height, width = x.size()

    h_shift, w_shift = np.random.randint(-max_shift, max_shift + 1, size=2)
    source_height_slice = slice(max(0, h_shift), h_shift + height)
    source_width_slice = slice(max(0, w_shift), w_shift + width)
    target_height_slice = slice(max(0, -h_shift), -h_shift + height)
    target_width_slice = slice(max(0, -w_shift), -w_shift + width)

    shifted_image = torch.zeros(*x.size())
    shifted_image[:, :, source_height_slice, source_width_slice] = x[
        :, :, target_height_slice, target_width_slice]
    return shifted_image.float()


class CapsuleLayer(nn.Module):
    def __init__(self, num_capsules, num_route_nodes, in_channels, out_channels,
                 kernel_size=None, stride=None, num_iterations=NUM_ROUTING_ITERATIONS):
        super(CapsuleLayer, self).__init__()

        self.num_route_nodes = num_route_nodes
        self.num_iterations = num_iterations

        self.num_capsules = num_capsules

        if num_route_nodes != -1:
            self.route_weights = nn.Parameter(
                torch.randn(num_capsules, num_route_nodes, in_channels, out_channels))
        else:
            self.capsules = nn.ModuleList(
                [nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                           padding=0) for _ in range(num_capsules)])

    def squash(self, tensor, dim=-1):
        squared_norm = (tensor**2).sum(dim=dim, keepdim=True)
        scale = squared_norm / (1 + squared_norm)
        return scale * tensor / torch.sqrt(squared_norm)

    def forward(self, x):
        if self.num_route_nodes != -1:
            priors = x[None, :, :, None, :] @ self.route_weights[:, None, :, :, :]

            logits = Variable(torch.zeros(*priors.size()))
            for i in range(self.num_iterations):
                probs = softmax(logits, dim=2)
                outputs = self.squash((probs * priors).sum(dim=2, keepdim=True))

                if i != self.num_iterations - 1:
                    delta_logits = (priors * outputs).sum(dim=-1, keepdim=True)
                    logits = logits + delta_logits
        else:
            outputs = [capsule(x).view(x.size(0), -1, 1) for capsule in self.capsules]
            outputs = torch.cat(outputs, dim=-1)
            outputs = self.squash(outputs)

        return outputs


class GramCapsuleNet(nn.Module):
    def __init__(self):
        super(GramCapsuleNet, self).__init__()

        self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=5, stride=1)
        self.primary_capsules = CapsuleLayer(num_capsules=4, num_route_nodes=-1, in_channels=16,
                                             out_channels=4, kernel_size=3, stride=2)
        self.digit_capsules = CapsuleLayer(num_capsules=NUM_CLASSES, num_route_nodes=4 * 3 * 3,
                                           in_channels=4, out_channels=8)

        self.decoder = nn.Sequential(
            nn.Linear(8 * NUM_CLASSES, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 144),
            nn.Sigmoid(),
        )

    def forward(self, x, y=None):
        x = F.relu(self.conv1(x), inplace=True)
        x = self.primary_capsules(x)
        x = self.digit_capsules(x).squeeze().transpose(0, 1)

        classes = (x**2).sum(dim=-1) ** 0.5
        classes = F.softmax(classes, dim=-1)

        if y is None:
            # In all batches, get the most active capsule.
            _, max_length_indices = classes.max(dim=1)
            y = Variable(torch.eye(NUM_CLASSES)).index_select(dim=0,
                                                             index=max_length_indices.data)

        reconstructions = self.decoder((x * y[:, :, None]).reshape(x.size(0), -1))

        return classes, reconstructions


class CapsuleLoss(nn.Module):
    def __init__(self):
        super(CapsuleLoss, self).__init__()
        self.reconstruction_loss = nn.MSELoss(size_average=False)

    def forward(self, images, labels, classes, reconstructions):
        left = F.relu(0.9 - classes, inplace=True) ** 2
        right = F.relu(classes - 0.1, inplace=True) ** 2

        margin_loss = labels * left + 0.5 * (1.0 - labels) * right
        margin_loss = margin_loss.sum()

        assert torch.numel(images) == torch.numel(reconstructions)
        images = images.view(reconstructions.size()[0], -1)
        reconstruction_loss = self.reconstruction_loss(reconstructions, images)

        return (margin_loss + 0.0005 * reconstruction_loss) / images.size(0)


def make_strokes(n, seed):
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, 12, 12), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    for i, c in enumerate(labels):
        o = rng.integers(2, 5)
        if c == 0:
            images[i, 0, o:o + 6, 5:7] = 1.0  # vertical
        elif c == 1:
            images[i, 0, 5:7, o:o + 6] = 1.0  # horizontal
        elif c == 2:
            for k in range(6):
                images[i, 0, o + k, o + k] = 1.0  # diagonal
        else:
            images[i, 0, o:o + 5, o:o + 5] = 0.5  # a square
    images += 0.05 * rng.random(images.shape).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    images, labels = make_strokes(24, seed=1)

    # XifengGuo's training loop
    model = CapsuleNet(input_size=[1, 12, 12], classes=NUM_CLASSES, routings=3)
    load_reference(model)
    optimizer = Adam(model.parameters(), lr=3e-3)
    lr_decay = lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    losses, grad_norms = [], []
    for epoch in range(2):
        model.train()
        for b in range(3):
            x, y = images[b * 8:(b + 1) * 8], labels[b * 8:(b + 1) * 8]
            y = torch.zeros(y.size(0), NUM_CLASSES).scatter_(1, y.view(-1, 1), 1.0)
            x, y = Variable(x), Variable(y)
            optimizer.zero_grad()
            y_pred, x_recon = model(x, y)
            loss = caps_loss(y, y_pred, x, x_recon, 0.392)
            loss.backward()
            grad_norms.append([p.grad.norm().item() for p in model.parameters()])
            optimizer.step()
            losses.append(loss.item())
        lr_decay.step()
    model.eval()
    with torch.no_grad():
        y_pred, x_recon = model(images[:8])
        test_acc = (y_pred.max(1)[1] == labels[:8]).sum().item()

    # gram-ai's loop with the shift augmentation
    net = GramCapsuleNet()
    load_reference(net)
    capsule_loss = CapsuleLoss()
    opt = Adam(net.parameters())
    gram_losses, gram_grads, shifts = [], [], []
    for step in range(4):
        data = images[(step % 3) * 8:(step % 3 + 1) * 8]
        target = labels[(step % 3) * 8:(step % 3 + 1) * 8]
        data = augmentation(data.float())
        shifts.append(data.sum().item())
        target = torch.eye(NUM_CLASSES).index_select(dim=0, index=target)
        data, target = Variable(data), Variable(target)
        classes, reconstructions = net(data, target)
        loss = capsule_loss(data, target, classes, reconstructions)
        opt.zero_grad()
        loss.backward()
        gram_grads.append(net.digit_capsules.route_weights.grad.abs().sum().item())
        opt.step()
        gram_losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        classes, reconstructions = net(images[:8])
        gram_pred = classes.max(dim=1)[1].tolist()

    # the transposing softmax equals F.softmax over the same axis; routing converges
    z = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32))
    softmax_close = torch.allclose(softmax(z, dim=1), F.softmax(z, dim=1), atol=1e-6)
    caps = DenseCapsule(6, 3, 2, 4, routings=1)
    load_reference(caps)
    u = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 6, 3)).astype(np.float32))
    lengths = []
    for r in (1, 2, 3, 5):
        caps.routings = r
        lengths.append(caps(u).norm(dim=-1).tolist())

    report(
        losses=losses, grad_norms=grad_norms, test_acc=test_acc, y_pred=y_pred.tolist(),
        recon=x_recon[0, 0, 4, :6].tolist(), lr=lr_decay.get_last_lr(),
        gram_losses=gram_losses, gram_grads=gram_grads, shifts=shifts, gram_pred=gram_pred,
        gram_recon=reconstructions[1, 40:46].tolist(), softmax_close=softmax_close,
        lengths=lengths, variable_is_tensor=isinstance(Variable(z), torch.Tensor),
    )


if __name__ == "__main__":
    main()
