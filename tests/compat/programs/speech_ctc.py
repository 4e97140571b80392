# A small speech-recognition-style model in the shape of the DeepSpeech2 / torchaudio CTC
# tutorials, torchaudio-free: log-magnitude features from torch.stft (hann_window, center,
# return_complex) and a triangular "mel" matrix, per-utterance normalisation, a TCN front-end of
# causal dilated Conv1d layers (left padding with F.pad, old-style nn.utils.weight_norm, residual
# 1x1 downsample), a 2-layer bidirectional GRU with an initial state and dropout between layers
# (0.0), CTCLoss over log_softmax (T, N, C) with per-utterance input and target lengths
# (zero_infinity=True), Adam + StepLR, and greedy CTC decoding with torch.unique_consecutive.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(47)
n_fft, hop, n_mels, n_tokens = 32, 8, 8, 5  # token 0 is the CTC blank
hidden = 12


def make_utterance():
    """A waveform of 2-4 tones, each tone a token (its frequency), with silence between."""
    n_sym = int(rng.integers(2, 5))
    labels = rng.integers(1, n_tokens, size=n_sym)
    pieces = []
    for lab in labels:
        t = np.arange(48)
        pieces.append(np.sin(2 * np.pi * (lab * 3 + 2) / n_fft * t))
        pieces.append(np.zeros(16))
    wave = np.concatenate(pieces) + 0.05 * rng.standard_normal(sum(len(p) for p in pieces))
    return wave.astype(np.float32), labels


def features(wave):
    window = torch.hann_window(n_fft)
    spec = torch.stft(
        wave, n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True
    )  # (freq, frames)
    power = spec.abs() ** 2
    freqs = torch.linspace(0, 1, n_fft // 2 + 1)
    centers = torch.linspace(0, 1, n_mels + 2)
    lower, mid, upper = centers[:-2, None], centers[1:-1, None], centers[2:, None]
    fb = torch.clamp(
        torch.minimum((freqs - lower) / (mid - lower), (upper - freqs) / (upper - mid)), min=0
    )
    mel = torch.log(fb @ power + 1e-6)  # (n_mels, frames)
    return (mel - mel.mean(dim=1, keepdim=True)) / (mel.std(dim=1, keepdim=True) + 1e-5)


class CausalConv1d(nn.Module):
    def __init__(self, cin, cout, kernel_size, dilation):
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.utils.weight_norm(nn.Conv1d(cin, cout, kernel_size, dilation=dilation))

    def forward(self, x):
        return self.conv(F.pad(x, (self.pad, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, cin, cout, dilation):
        super().__init__()
        self.conv1 = CausalConv1d(cin, cout, 3, dilation)
        self.conv2 = CausalConv1d(cout, cout, 3, dilation)
        self.downsample = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        out = F.relu(self.conv2(F.relu(self.conv1(x))))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


class SpeechModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.tcn = nn.Sequential(TemporalBlock(n_mels, hidden, 1), TemporalBlock(hidden, hidden, 2))
        self.gru = nn.GRU(hidden, hidden, num_layers=2, bidirectional=True, dropout=0.0)
        self.fc = nn.Linear(2 * hidden, n_tokens)

    def forward(self, feats, h0):
        x = self.tcn(feats)  # (N, C, T)
        x = x.permute(2, 0, 1)  # (T, N, C): GRU without batch_first
        x, hn = self.gru(x, h0)
        return F.log_softmax(self.fc(x), dim=-1), hn


def batch(n):
    feats, targets, in_lens, tgt_lens = [], [], [], []
    for _ in range(n):
        wave, labels = make_utterance()
        f = features(torch.from_numpy(wave))
        feats.append(f.t())
        targets.append(torch.from_numpy(labels))
        in_lens.append(f.shape[1])
        tgt_lens.append(len(labels))
    padded = nn.utils.rnn.pad_sequence(feats, batch_first=True).transpose(1, 2)  # (N, M, T)
    return padded, torch.cat(targets), torch.tensor(in_lens), torch.tensor(tgt_lens)


def greedy_decode(log_probs, lengths):
    best = log_probs.argmax(-1).t()  # (N, T)
    out = []
    for seq, L in zip(best, lengths):
        collapsed = torch.unique_consecutive(seq[:L])
        out.append(collapsed[collapsed != 0].tolist())
    return out


model = SpeechModel()
W = reference_weights(model)
weight_names = sorted(W)
model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
ctc = nn.CTCLoss(blank=0, zero_infinity=True)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
losses = []
for step in range(12):
    feats, targets, in_lens, tgt_lens = batch(3)
    h0 = torch.zeros(4, feats.shape[0], hidden)
    log_probs, _ = model(feats, h0)
    loss = ctc(log_probs, targets, in_lens, tgt_lens)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())

model.eval()
feats, targets, in_lens, tgt_lens = batch(3)
with torch.no_grad():
    log_probs, hn = model(feats, torch.zeros(4, 3, hidden))
    per_utt = F.ctc_loss(log_probs, targets, in_lens, tgt_lens, reduction="none")
    summed = F.ctc_loss(log_probs, targets, in_lens, tgt_lens, reduction="sum")
report(
    weight_names=weight_names,
    losses=losses,
    per_utt=per_utt.tolist(),
    summed=summed.item(),
    hn_shape=list(hn.shape),
    decoded=greedy_decode(log_probs, in_lens),
    targets=targets.tolist(),
    feat_shape=list(feats.shape),
    lr=scheduler.get_last_lr(),
)
