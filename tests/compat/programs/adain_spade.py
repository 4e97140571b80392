# Conditional normalisation layers as image-synthesis repositories write them (our own condensed
# rewrites): naoto0804/pytorch-AdaIN's calc_mean_std (var over a view(N, C, -1) plus eps, sqrt,
# view(N, C, 1, 1)), adaptive_instance_normalization with expand(size), a style-transfer
# decoder of ReflectionPad2d + Conv2d + nn.Upsample(scale_factor=2, mode="nearest"), content and
# style losses on the encoder's relu features, the style-interpolation and alpha-blend
# inference paths; NVlabs/SPADE's SPADE block (param-free BatchNorm2d(affine=False) /
# InstanceNorm2d, the segmentation map resized by F.interpolate(size=x.size()[2:],
# mode="nearest"), a shared conv then per-pixel gamma / beta, normalized * (1 + gamma) + beta)
# inside a SPADEResnetBlock with a learned shortcut and spectral norm; a conditional BatchNorm
# (BigGAN-style class embeddings split by chunk into gain and bias, the embedding initialised by
# .data slicing); FiLM layers; and a class-conditional generator trained a few SGD steps.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)
torch.manual_seed(0)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
        # spectral_norm's power-iteration vectors start from the library's normal_(): set them
        for name, b in model.named_buffers():
            if name.endswith("weight_u") or name.endswith("weight_v"):
                u = np.random.default_rng(len(name)).standard_normal(b.shape)
                b.copy_(torch.from_numpy((u / np.linalg.norm(u)).astype(np.float32)))
    return model


def calc_mean_std(feat, eps=1e-5):
    # eps is a small value added to the variance to avoid divide-by-zero.
    size = feat.size()
    assert len(size) == 4
    N, C = size[:2]
    feat_var = feat.view(N, C, -1).var(dim=2) + eps
    feat_std = feat_var.sqrt().view(N, C, 1, 1)
    feat_mean = feat.view(N, C, -1).mean(dim=2).view(N, C, 1, 1)
    return feat_mean, feat_std


def adaptive_instance_normalization(content_feat, style_feat):
    assert content_feat.size()[:2] == style_feat.size()[:2]
    size = content_feat.size()
    style_mean, style_std = calc_mean_std(style_feat)
    content_mean, content_std = calc_mean_std(content_feat)
    normalized_feat = (content_feat - content_mean.expand(size)) / content_std.expand(size)
    return normalized_feat * style_std.expand(size) + style_mean.expand(size)


encoder = load(
    nn.Sequential(
        nn.Conv2d(3, 3, (1, 1)),
        nn.ReflectionPad2d((1, 1, 1, 1)),
        nn.Conv2d(3, 8, (3, 3)),
        nn.ReLU(),  # relu1-1
        nn.ReflectionPad2d((1, 1, 1, 1)),
        nn.Conv2d(8, 8, (3, 3)),
        nn.ReLU(),
        nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True),
        nn.ReflectionPad2d((1, 1, 1, 1)),
        nn.Conv2d(8, 12, (3, 3)),
        nn.ReLU(),  # relu2-1
    )
)
decoder = load(
    nn.Sequential(
        nn.ReflectionPad2d((1, 1, 1, 1)),
        nn.Conv2d(12, 8, (3, 3)),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.ReflectionPad2d((1, 1, 1, 1)),
        nn.Conv2d(8, 8, (3, 3)),
        nn.ReLU(),
        nn.ReflectionPad2d((1, 1, 1, 1)),
        nn.Conv2d(8, 3, (3, 3)),
    )
)


class Net(nn.Module):
    def __init__(self, encoder, decoder):
        super(Net, self).__init__()
        enc_layers = list(encoder.children())
        self.enc_1 = nn.Sequential(*enc_layers[:4])  # input -> relu1_1
        self.enc_2 = nn.Sequential(*enc_layers[4:11])  # relu1_1 -> relu2_1
        self.decoder = decoder
        self.mse_loss = nn.MSELoss()
        # fix the encoder
        for name in ["enc_1", "enc_2"]:
            for param in getattr(self, name).parameters():
                param.requires_grad = False

    def encode_with_intermediate(self, input):
        results = [input]
        for i in range(2):
            func = getattr(self, "enc_{:d}".format(i + 1))
            results.append(func(results[-1]))
        return results[1:]

    def encode(self, input):
        for i in range(2):
            input = getattr(self, "enc_{:d}".format(i + 1))(input)
        return input

    def calc_content_loss(self, input, target):
        assert input.size() == target.size()
        assert target.requires_grad is False
        return self.mse_loss(input, target)

    def calc_style_loss(self, input, target):
        assert input.size() == target.size()
        assert target.requires_grad is False
        input_mean, input_std = calc_mean_std(input)
        target_mean, target_std = calc_mean_std(target)
        return self.mse_loss(input_mean, target_mean) + self.mse_loss(input_std, target_std)

    def forward(self, content, style, alpha=1.0):
        assert 0 <= alpha <= 1
        style_feats = self.encode_with_intermediate(style)
        content_feat = self.encode(content)
        t = adaptive_instance_normalization(content_feat, style_feats[-1])
        t = alpha * t + (1 - alpha) * content_feat
        g_t = self.decoder(t)
        g_t_feats = self.encode_with_intermediate(g_t)
        loss_c = self.calc_content_loss(g_t_feats[-1], t)
        loss_s = self.calc_style_loss(g_t_feats[0], style_feats[0])
        for i in range(1, 2):
            loss_s += self.calc_style_loss(g_t_feats[i], style_feats[i])
        return loss_c, loss_s


def images(n, size=10):
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        f = rng.uniform(1, 4, size=3)
        ph = rng.uniform(0, 6, size=3)
        img = np.stack([np.sin(f[c] * (xx + yy) * 3 + ph[c]) for c in range(3)])
        out.append(img + 0.1 * rng.standard_normal(img.shape))
    return torch.from_numpy(np.stack(out).astype(np.float32))


network = Net(encoder, decoder)
network.train()
optimizer = torch.optim.Adam(network.decoder.parameters(), lr=1e-3)
content_losses, style_losses = [], []
for i in range(8):
    lr = 1e-3 / (1.0 + 5e-2 * i)
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    content_images, style_images = images(3), images(3)
    loss_c, loss_s = network(content_images, style_images)
    loss = 1.0 * loss_c + 10.0 * loss_s
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    content_losses.append(loss_c.item())
    style_losses.append(loss_s.item())


def style_transfer(vgg, decoder, content, style, alpha=1.0, interpolation_weights=None):
    assert 0.0 <= alpha <= 1.0
    content_f = vgg(content)
    style_f = vgg(style)
    if interpolation_weights:
        _, C, H, W = content_f.size()
        feat = torch.FloatTensor(1, C, H, W).zero_()
        base_feat = adaptive_instance_normalization(content_f, style_f)
        for i, w in enumerate(interpolation_weights):
            feat = feat + w * base_feat[i : i + 1]
        content_f = content_f[0:1]
    else:
        feat = adaptive_instance_normalization(content_f, style_f)
    feat = feat * alpha + content_f * (1 - alpha)
    return decoder(feat)


with torch.no_grad():
    c, s = images(1), images(3)
    out_alpha = style_transfer(network.encode, decoder, c, s[:1], alpha=0.6)
    out_interp = style_transfer(
        network.encode, decoder, c.expand_as(s), s, interpolation_weights=[0.5, 0.3, 0.2]
    )


# ---- SPADE ----
class SPADE(nn.Module):
    def __init__(self, norm_nc, label_nc, param_free_norm_type="batch", nhidden=8, ks=3):
        super().__init__()
        if param_free_norm_type == "instance":
            self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=False)
        elif param_free_norm_type == "batch":
            self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        else:
            raise ValueError(
                "%s is not a recognized param-free norm type in SPADE" % param_free_norm_type
            )
        pw = ks // 2
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc, nhidden, kernel_size=ks, padding=pw), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, kernel_size=ks, padding=pw)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, kernel_size=ks, padding=pw)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.size()[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        gamma = self.mlp_gamma(actv)
        beta = self.mlp_beta(actv)
        out = normalized * (1 + gamma) + beta
        return out


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin, fout, label_nc, norm="batch"):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, kernel_size=3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, kernel_size=1, bias=False)
        self.conv_0 = nn.utils.spectral_norm(self.conv_0)
        self.conv_1 = nn.utils.spectral_norm(self.conv_1)
        if self.learned_shortcut:
            self.conv_s = nn.utils.spectral_norm(self.conv_s)
        self.norm_0 = SPADE(fin, label_nc, norm)
        self.norm_1 = SPADE(fmiddle, label_nc, norm)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc, norm)

    def forward(self, x, seg):
        x_s = self.shortcut(x, seg)
        dx = self.conv_0(self.actvn(self.norm_0(x, seg)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, seg)))
        return x_s + dx

    def shortcut(self, x, seg):
        if self.learned_shortcut:
            return self.conv_s(self.norm_s(x, seg))
        return x

    def actvn(self, x):
        return F.leaky_relu(x, 2e-1)


class ConditionalBatchNorm2d(nn.Module):
    def __init__(self, num_features, num_classes):
        super().__init__()
        self.num_features = num_features
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.embed = nn.Embedding(num_classes, num_features * 2)
        self.embed.weight.data[:, :num_features].normal_(1, 0.02)  # Initialise scale at N(1, 0.02)
        self.embed.weight.data[:, num_features:].zero_()  # Initialise bias at 0

    def forward(self, x, y):
        out = self.bn(x)
        gamma, beta = self.embed(y).chunk(2, 1)
        return gamma.view(-1, self.num_features, 1, 1) * out + beta.view(
            -1, self.num_features, 1, 1
        )


class FiLM(nn.Module):
    def __init__(self, cond_dim, channels):
        super().__init__()
        self.to_scale_shift = nn.Linear(cond_dim, channels * 2)

    def forward(self, x, cond):
        scale, shift = self.to_scale_shift(cond)[:, :, None, None].chunk(2, dim=1)
        return x * (scale + 1) + shift


class Generator(nn.Module):
    def __init__(self, label_nc=4, n_classes=3):
        super().__init__()
        self.fc = nn.Conv2d(label_nc, 8, 3, padding=1)
        self.head = SPADEResnetBlock(8, 8, label_nc)
        self.up = nn.Upsample(scale_factor=2)
        self.block = SPADEResnetBlock(8, 6, label_nc, norm="instance")
        self.cbn = ConditionalBatchNorm2d(6, n_classes)
        self.film = FiLM(5, 6)
        self.conv_img = nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, seg, y, cond):
        x = F.interpolate(seg, size=(4, 4))
        x = self.fc(x)
        x = self.head(x, seg)
        x = self.up(x)
        x = self.block(x, seg)
        x = self.film(F.relu(self.cbn(x, y)), cond)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 2e-1)))


gen = Generator()
cbn_init = [
    gen.cbn.embed.weight[:, :6].std().item() > 0,
    gen.cbn.embed.weight[:, 6:].abs().sum().item(),
]
load(gen)
names = [n for n, _ in gen.named_parameters()]
# SGD, not SPADE's Adam(betas=(0, 0.9)): the convolutions in front of the param-free norms have
# biases whose gradient is 0 up to rounding, which Adam would turn into full-size steps
gopt = torch.optim.SGD(gen.parameters(), lr=0.05, momentum=0.9)
gen_losses = []
for step in range(6):
    lab = rng.integers(0, 4, size=(4, 8, 8))
    seg = F.one_hot(torch.from_numpy(lab), 4).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(rng.integers(0, 3, size=4))
    cond = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
    target = images(4, size=8)
    fake = gen(seg, y, cond)
    loss = F.l1_loss(fake, target) + 0.1 * fake.pow(2).mean()
    gopt.zero_grad()
    loss.backward()
    gopt.step()
    gen_losses.append(loss.item())
gen.eval()
with torch.no_grad():
    fake = gen(seg, y, cond)

report(
    content_losses=content_losses,
    style_losses=style_losses,
    encoder_frozen=all(not p.requires_grad for p in network.enc_1.parameters()),
    alpha_out=out_alpha.sum().item(),
    alpha_out_mean=out_alpha.abs().mean().item(),
    interp_out=out_interp.flatten()[:20].tolist(),
    param_names=names,
    cbn_init=cbn_init,
    gen_losses=gen_losses,
    eval_fake=fake.flatten()[::7].tolist(),
)
