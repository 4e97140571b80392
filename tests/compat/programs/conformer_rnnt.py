# Speech front-end and model code as torchaudio writes it, torchaudio-free (our own condensed
# rewrites of torchaudio.functional and torchaudio.models.Conformer): a mel filterbank
# (melscale_fbanks, HTK scale, _create_triangular_filterbank by broadcast slopes and
# torch.max(zero, torch.min(...))), create_dct(norm="ortho") with in-place row scaling, MFCCs by
# amplitude_to_DB (log10 of clamp, top_db clamp per utterance), SpecAugment masks
# (mask_along_axis_iid from NumPy draws: arange comparisons, masked_fill), Griffin-Lim phase
# recovery (stft / istft with momentum and `tprev.mul_`), rfftfreq / fftshift; a Conformer
# encoder (Conv2d subsampling with length arithmetic, half-step feed-forward modules with SiLU,
# nn.MultiheadAttention with a key_padding_mask from _lengths_to_padding_mask, the convolution
# module: pointwise Conv1d, GLU(dim=1), depthwise Conv1d, GroupNorm, SiLU), and an RNN-T
# predictor + joiner trained with the transducer loss written out (the alpha lattice by
# logaddexp over a Python double loop, gather of blank / label log-probabilities), greedy
# transducer decoding. AdamW + a warmup LambdaLR, clip_grad_norm_.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(16000)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


# ------------------------------------------------------------- torchaudio.functional
def _hz_to_mel(freq, mel_scale="htk"):
    return 2595.0 * math.log10(1.0 + (freq / 700.0))


def _mel_to_hz(mels, mel_scale="htk"):
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def _create_triangular_filterbank(all_freqs, f_pts):
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_filter + 1)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_filter + 2)
    zero = torch.zeros(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]  # (n_freqs, n_filter)
    up_slopes = slopes[:, 2:] / f_diff[1:]  # (n_freqs, n_filter)
    fb = torch.max(zero, torch.min(down_slopes, up_slopes))
    return fb


def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale="htk"):
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min = _hz_to_mel(f_min, mel_scale=mel_scale)
    m_max = _hz_to_mel(f_max, mel_scale=mel_scale)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = _mel_to_hz(m_pts, mel_scale=mel_scale)
    fb = _create_triangular_filterbank(all_freqs, f_pts)
    if norm is not None and norm == "slaney":
        enorm = 2.0 / (f_pts[2: n_mels + 2] - f_pts[:n_mels])
        fb *= enorm.unsqueeze(0)
    return fb


def create_dct(n_mfcc, n_mels, norm):
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)  # size (n_mfcc, n_mels)
    if norm is None:
        dct *= 2.0
    else:
        dct[0] *= 1.0 / math.sqrt(2.0)
        dct *= math.sqrt(2.0 / float(n_mels))
    return dct.t()


def amplitude_to_DB(x, multiplier, amin, db_multiplier, top_db=None):
    x_db = multiplier * torch.log10(torch.clamp(x, min=amin))
    x_db -= multiplier * db_multiplier
    if top_db is not None:
        shape = x_db.size()
        packed_channels = shape[-3] if x_db.dim() > 2 else 1
        x_db = x_db.reshape(-1, packed_channels, shape[-2], shape[-1])
        x_db = torch.max(x_db, (x_db.amax(dim=(-3, -2, -1)) - top_db).view(-1, 1, 1, 1))
        x_db = x_db.reshape(shape)
    return x_db


def spectrogram(waveform, n_fft, hop_length, win_length, window, power):
    spec = torch.stft(waveform, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                      window=window, center=True, pad_mode="reflect", normalized=False,
                      onesided=True, return_complex=True)
    return spec.abs().pow(power)


def mask_along_axis_iid(specgrams, mask_param, mask_value, axis, value, min_value):
    dim = specgrams.dim()
    mask_start = (min_value.long()).unsqueeze(-1)
    mask_end = (min_value.long() + value.long()).unsqueeze(-1)
    mask = torch.arange(0, specgrams.size(axis), device=specgrams.device,
                        dtype=specgrams.dtype)
    specgrams = specgrams.transpose(axis, -1)
    mask = (mask >= mask_start) & (mask < mask_end)
    while mask.dim() < dim:  # the channel axis
        mask = mask.unsqueeze(1)
    specgrams = specgrams.masked_fill(mask, mask_value)
    specgrams = specgrams.transpose(axis, -1)
    return specgrams


def griffinlim(specgram, window, n_fft, hop_length, win_length, power, n_iter, momentum,
               length):
    shape = specgram.size()
    specgram = specgram.reshape([-1] + list(shape[-2:]))
    specgram = specgram.pow(1 / power)
    angles = torch.full(specgram.size(), 1, dtype=torch.complex64, device=specgram.device)
    tprev = torch.tensor(0.0, dtype=specgram.dtype, device=specgram.device)
    for _ in range(n_iter):
        inverse = torch.istft(specgram * angles, n_fft=n_fft, hop_length=hop_length,
                              win_length=win_length, window=window, length=length)
        rebuilt = torch.stft(input=inverse, n_fft=n_fft, hop_length=hop_length,
                             win_length=win_length, window=window, center=True,
                             pad_mode="reflect", normalized=False, onesided=True,
                             return_complex=True)
        angles = rebuilt
        if momentum:
            angles = angles - tprev.mul_(momentum / (1 + momentum))
        angles = angles.div(angles.abs().add(1e-16))
        tprev = rebuilt
    waveform = torch.istft(specgram * angles, n_fft=n_fft, hop_length=hop_length,
                           win_length=win_length, window=window, length=length)
    waveform = waveform.reshape(shape[:-2] + waveform.shape[-1:])
    return waveform


sample_rate, n_fft, hop, n_mels, n_mfcc = 8000, 64, 16, 20, 13
t = np.arange(1200) / sample_rate
waves = []
for b in range(4):
    f0 = 200 + 150 * b
    chirp = np.sin(2 * np.pi * (f0 * t + 300 * t ** 2)) + 0.3 * np.sin(2 * np.pi * 3 * f0 * t)
    waves.append(chirp * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t)))
waves = torch.from_numpy(np.stack(waves).astype(np.float32))
window = torch.hann_window(n_fft)
spec = spectrogram(waves, n_fft, hop, n_fft, window, 2.0)  # (B, freq, time)
fb = melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2.0, n_mels, sample_rate)
fb_slaney = melscale_fbanks(n_fft // 2 + 1, 20.0, 3800.0, n_mels, sample_rate, norm="slaney")
mel = torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)
log_mel = amplitude_to_DB(mel, 10.0, 1e-10, math.log10(max(1e-10, 1.0)), top_db=80.0)
dct_mat = create_dct(n_mfcc, n_mels, "ortho")
mfcc = torch.matmul(log_mel.transpose(-1, -2), dct_mat).transpose(-1, -2)
front_end = [list(spec.shape), fb.sum(0)[:5].tolist(), fb_slaney.max().item(),
             (dct_mat.T @ dct_mat - torch.eye(n_mfcc)).abs().max().item(),
             log_mel.amax(dim=(-2, -1)).tolist(), log_mel.amin(dim=(-2, -1)).tolist(),
             mfcc[:, 1].mean(-1).tolist(), torch.fft.rfftfreq(n_fft, 1 / sample_rate)[:4].tolist(),
             torch.fft.fftshift(torch.arange(6.0)).tolist()]

gl = griffinlim(spec[:2], window, n_fft, hop, n_fft, 2.0, 8, 0.99, waves.shape[-1])
gl_spec = spectrogram(gl, n_fft, hop, n_fft, window, 1.0)
spec_conv = ((gl_spec - spec[:2].sqrt()).norm() / spec[:2].sqrt().norm()).item()
roundtrip = torch.istft(torch.stft(waves, n_fft, hop, window=window, return_complex=True),
                        n_fft, hop, window=window, length=waves.shape[-1])
istft_err = (roundtrip - waves).abs().max().item()

# features for the model: normalised log-mels, SpecAugment with NumPy draws
feats = (log_mel - log_mel.mean(dim=(1, 2), keepdim=True)) / log_mel.std(dim=(1, 2),
                                                                         keepdim=True)
lengths = torch.tensor([76, 70, 64, 60])
freq_value = torch.from_numpy(rng.uniform(0, 5, 4).astype(np.float32))
freq_min = torch.from_numpy(rng.uniform(0, n_mels - 5, 4).astype(np.float32))
time_value = torch.from_numpy(rng.uniform(0, 8, 4).astype(np.float32))
time_min = torch.from_numpy(rng.uniform(0, 50, 4).astype(np.float32))
aug = mask_along_axis_iid(feats.unsqueeze(1), 5, 0.0, 2, freq_value, freq_min)
aug = mask_along_axis_iid(aug, 8, 0.0, 3, time_value, time_min).squeeze(1)
masked_fraction = (aug == 0).float().mean().item()


# ------------------------------------------------------------- the Conformer
def _lengths_to_padding_mask(lengths):
    batch_size = lengths.shape[0]
    max_length = int(torch.max(lengths).item())
    padding_mask = torch.arange(max_length, device=lengths.device, dtype=lengths.dtype).expand(
        batch_size, max_length) >= lengths.unsqueeze(1)
    return padding_mask


class _ConvolutionModule(nn.Module):
    def __init__(self, input_dim, num_channels, depthwise_kernel_size, dropout=0.0, bias=False,
                 use_group_norm=False):
        super().__init__()
        self.layer_norm = nn.LayerNorm(input_dim)
        self.sequential = nn.Sequential(
            nn.Conv1d(input_dim, 2 * num_channels, 1, stride=1, padding=0, bias=bias),
            nn.GLU(dim=1),
            nn.Conv1d(num_channels, num_channels, depthwise_kernel_size, stride=1,
                      padding=(depthwise_kernel_size - 1) // 2, groups=num_channels, bias=bias),
            nn.GroupNorm(num_groups=1, num_channels=num_channels)
            if use_group_norm
            else nn.BatchNorm1d(num_channels),
            nn.SiLU(),
            nn.Conv1d(num_channels, input_dim, kernel_size=1, stride=1, padding=0, bias=bias),
            nn.Dropout(dropout),
        )

    def forward(self, input):
        x = self.layer_norm(input)
        x = x.transpose(1, 2)
        x = self.sequential(x)
        return x.transpose(1, 2)


class _FeedForwardModule(nn.Module):
    def __init__(self, input_dim, hidden_dim, dropout=0.0):
        super().__init__()
        self.sequential = nn.Sequential(
            nn.LayerNorm(input_dim),
            nn.Linear(input_dim, hidden_dim, bias=True),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, input_dim, bias=True),
            nn.Dropout(dropout),
        )

    def forward(self, input):
        return self.sequential(input)


class ConformerLayer(nn.Module):
    def __init__(self, input_dim, ffn_dim, num_attention_heads, depthwise_conv_kernel_size,
                 dropout=0.0, use_group_norm=False):
        super().__init__()
        self.ffn1 = _FeedForwardModule(input_dim, ffn_dim, dropout=dropout)
        self.self_attn_layer_norm = nn.LayerNorm(input_dim)
        self.self_attn = nn.MultiheadAttention(input_dim, num_attention_heads, dropout=dropout)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.conv_module = _ConvolutionModule(input_dim=input_dim, num_channels=input_dim,
                                              depthwise_kernel_size=depthwise_conv_kernel_size,
                                              dropout=dropout, bias=True,
                                              use_group_norm=use_group_norm)
        self.ffn2 = _FeedForwardModule(input_dim, ffn_dim, dropout=dropout)
        self.final_layer_norm = nn.LayerNorm(input_dim)

    def _apply_convolution(self, input):
        residual = input
        input = input.transpose(0, 1)
        input = self.conv_module(input)
        input = input.transpose(0, 1)
        input = residual + input
        return input

    def forward(self, input, key_padding_mask):
        residual = input
        x = self.ffn1(input)
        x = x * 0.5 + residual
        residual = x
        x = self.self_attn_layer_norm(x)
        x, _ = self.self_attn(query=x, key=x, value=x, key_padding_mask=key_padding_mask,
                              need_weights=False)
        x = self.self_attn_dropout(x)
        x = x + residual
        x = self._apply_convolution(x)
        residual = x
        x = self.ffn2(x)
        x = x * 0.5 + residual
        x = self.final_layer_norm(x)
        return x


class Conv2dSubsampling(nn.Module):
    def __init__(self, idim, odim):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, odim, 3, 2), nn.ReLU(), nn.Conv2d(odim, odim, 3, 2),
                                  nn.ReLU())
        self.out = nn.Linear(odim * (((idim - 1) // 2 - 1) // 2), odim)

    def forward(self, x, lengths):
        x = x.unsqueeze(1)  # (b, c, t, f)
        x = self.conv(x)
        b, c, t, f = x.size()
        x = self.out(x.transpose(1, 2).contiguous().view(b, t, c * f))
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor")
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor")
        return x, lengths


class Transducer(nn.Module):
    def __init__(self, n_mels, d_model, vocab, blank=0):
        super().__init__()
        self.subsample = Conv2dSubsampling(n_mels, d_model)
        # use_group_norm: torchaudio's depthwise convolution has a bias in front of its norm;
        # before a BatchNorm that bias's gradient is 0 up to rounding, AdamW's normalised steps
        # move it either way (measured: 2% on a running_mean after 5 steps, PyTorch against
        # descent) and the eval-mode outputs follow it (5.6e-5). GroupNorm(1, C), torchaudio's
        # own option, does not cancel a per-channel bias
        self.conformer_layers = nn.ModuleList([ConformerLayer(d_model, 2 * d_model, 2, 5,
                                                              use_group_norm=True)
                                               for _ in range(2)])
        self.embed = nn.Embedding(vocab, d_model)
        self.predictor = nn.LSTM(d_model, d_model, batch_first=True)
        self.enc_proj = nn.Linear(d_model, d_model)
        self.pred_proj = nn.Linear(d_model, d_model)
        self.joint = nn.Linear(d_model, vocab)
        self.blank = blank

    def encode(self, feats, lengths):
        x, lengths = self.subsample(feats.transpose(1, 2), lengths)
        x = x[:, :int(lengths.max())]
        encoder_padding_mask = _lengths_to_padding_mask(lengths)
        x = x.transpose(0, 1)
        for layer in self.conformer_layers:
            x = layer(x, encoder_padding_mask)
        return x.transpose(0, 1), lengths

    def predict(self, targets, state=None):
        prev = F.pad(targets, (1, 0), value=self.blank)  # blank-prefixed labels
        out, state = self.predictor(self.embed(prev), state)
        return out, state

    def join(self, enc, pred):
        h = torch.tanh(self.enc_proj(enc).unsqueeze(2) + self.pred_proj(pred).unsqueeze(1))
        return F.log_softmax(self.joint(h), dim=-1)


def rnnt_loss(log_probs, targets, logit_lengths, target_lengths, blank=0):
    """The transducer negative log-likelihood by the alpha recursion (Graves 2012)."""
    B = log_probs.shape[0]
    losses = []
    for b in range(B):
        T, U = int(logit_lengths[b]), int(target_lengths[b])
        lp = log_probs[b, :T, :U + 1]
        blank_lp = lp[..., blank]
        label_lp = lp[:, :U].gather(-1, targets[b, :U].view(1, U, 1).expand(T, U, 1))[..., 0]
        alpha = [[None] * (U + 1) for _ in range(T)]
        alpha[0][0] = lp.new_zeros(())
        for t in range(T):
            for u in range(U + 1):
                if t == 0 and u == 0:
                    continue
                cands = []
                if t > 0:
                    cands.append(alpha[t - 1][u] + blank_lp[t - 1, u])
                if u > 0:
                    cands.append(alpha[t][u - 1] + label_lp[t, u - 1])
                alpha[t][u] = cands[0] if len(cands) == 1 else torch.logaddexp(cands[0],
                                                                               cands[1])
        losses.append(-(alpha[T - 1][U] + blank_lp[T - 1, U]))
    return torch.stack(losses).mean()


def greedy_decode(model, enc, length, max_symbols=3):
    hyp = []
    token = torch.tensor([[model.blank]])
    pred, state = model.predictor(model.embed(token))
    for t in range(int(length)):
        for _ in range(max_symbols):
            logits = model.join(enc[t].view(1, 1, -1), pred)[0, 0, 0]
            k = int(logits.argmax())
            if k == model.blank:
                break
            hyp.append(k)
            pred, state = model.predictor(model.embed(torch.tensor([[k]])), state)
    return hyp


vocab = 6
model = load(Transducer(n_mels, 24, vocab))
targets = torch.from_numpy(rng.integers(1, vocab, size=(4, 4)))
target_lengths = torch.tensor([4, 3, 3, 2])
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3))
rnnt_losses, grad_norms, enc_lengths = [], [], []
model.train()
for step in range(5):
    enc, enc_len = model.encode(aug if step % 2 == 0 else feats, lengths)
    pred, _ = model.predict(targets)
    log_probs = model.join(enc, pred)
    loss = rnnt_loss(log_probs, targets, enc_len, target_lengths)
    opt.zero_grad()
    loss.backward()
    grad_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0).item())
    opt.step()
    sched.step()
    rnnt_losses.append(loss.item())
    enc_lengths = enc_len.tolist()
model.eval()
with torch.no_grad():
    enc, enc_len = model.encode(feats, lengths)
    hyps = [greedy_decode(model, enc[b], enc_len[b]) for b in range(2)]
    norm_w = model.conformer_layers[1].conv_module.sequential[3].weight[:4].tolist()
    mask = _lengths_to_padding_mask(enc_len)
    joint_lp = model.join(enc[:2, :3], model.predict(targets[:2])[0][:, :2])

report(front_end=front_end, spec_conv=spec_conv, istft_err=istft_err,
       masked_fraction=masked_fraction, rnnt_losses=rnnt_losses, grad_norms=grad_norms,
       enc_lengths=enc_lengths, hyps=hyps, joint_lp=joint_lp.tolist(), norm_w=norm_w,
       mask=mask.tolist(),
       lr=sched.get_last_lr())
