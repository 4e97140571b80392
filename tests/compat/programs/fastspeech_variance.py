# FastSpeech 2's variance adaptor and length regulator as the ming024/FastSpeech2 code writes
# them (our own condensed rewrite): get_mask_from_lengths (torch.arange(max_len).unsqueeze(0)
# .expand(batch, -1) >= lengths.unsqueeze(1)), a FFT block encoder (nn.MultiheadAttention with
# key_padding_mask and need_weights=False, a Conv1d position-wise feed-forward with
# transposes, masked_fill of padded frames by 0), the VariancePredictor (two Conv1d + ReLU +
# LayerNorm + Dropout(0) stacks in an nn.Sequential of an OrderedDict, a Linear to one value,
# .squeeze(-1), masked_fill), the LengthRegulator expanding each phoneme by its duration (a
# Python loop of vec.expand(max(int(expand_size), 0), -1), torch.cat, F.pad of each output to
# the batch max length, mel lengths as torch.LongTensor), durations at inference by
# torch.clamp(torch.round(torch.exp(log_duration) - 1) * d_control, min=0), pitch and energy
# quantised by torch.bucketize into exp-spaced / linear bins (torch.exp(torch.linspace(log
# min, log max))) and embedded, the duration loss on log(d + 1), MSE losses masked by
# masked_select, an L1 mel loss, Adam with betas (0.9, 0.98) and the Noam-style ScheduledOptim
# lr written by hand into param_groups; and monotonic alignment search (Glow-TTS) in NumPy.
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2214)
D, N_MELS, N_BINS, VOCAB = 16, 8, 8, 20


def get_mask_from_lengths(lengths, max_len=None):
    batch_size = lengths.shape[0]
    if max_len is None:
        max_len = torch.max(lengths).item()
    ids = torch.arange(0, max_len).unsqueeze(0).expand(batch_size, -1)
    return ids >= lengths.unsqueeze(1).expand(-1, max_len)


def pad(input_ele, mel_max_length=None):
    max_len = (
        mel_max_length
        if mel_max_length
        else max([input_ele[i].size(0) for i in range(len(input_ele))])
    )
    out_list = []
    for batch in input_ele:
        one_batch_padded = F.pad(batch, (0, 0, 0, max_len - batch.size(0)), "constant", 0.0)
        out_list.append(one_batch_padded)
    return torch.stack(out_list)


class FFTBlock(nn.Module):
    def __init__(self, d=D, heads=2, kernel=3):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln1 = nn.LayerNorm(d)
        self.w_1 = nn.Conv1d(d, 2 * d, kernel_size=kernel, padding=(kernel - 1) // 2)
        self.w_2 = nn.Conv1d(2 * d, d, kernel_size=1)
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x, mask):
        out, _ = self.attn(x, x, x, key_padding_mask=mask, need_weights=False)
        x = self.ln1(x + out).masked_fill(mask.unsqueeze(-1), 0)
        out = self.w_2(F.relu(self.w_1(x.transpose(1, 2)))).transpose(1, 2)
        return self.ln2(x + out).masked_fill(mask.unsqueeze(-1), 0)


class VariancePredictor(nn.Module):
    def __init__(self, d=D, filt=16, kernel=3):
        super().__init__()
        self.conv_layer = nn.Sequential(
            OrderedDict(
                [
                    ("conv1d_1", Conv(d, filt, kernel)),
                    ("relu_1", nn.ReLU()),
                    ("layer_norm_1", nn.LayerNorm(filt)),
                    ("dropout_1", nn.Dropout(0.0)),
                    ("conv1d_2", Conv(filt, filt, kernel)),
                    ("relu_2", nn.ReLU()),
                    ("layer_norm_2", nn.LayerNorm(filt)),
                    ("dropout_2", nn.Dropout(0.0)),
                ]
            )
        )
        self.linear_layer = nn.Linear(filt, 1)

    def forward(self, encoder_output, mask):
        out = self.conv_layer(encoder_output)
        out = self.linear_layer(out)
        out = out.squeeze(-1)
        if mask is not None:
            out = out.masked_fill(mask, 0.0)
        return out


class Conv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size=kernel_size, padding=(kernel_size - 1) // 2
        )

    def forward(self, x):
        return self.conv(x.contiguous().transpose(1, 2)).contiguous().transpose(1, 2)


class LengthRegulator(nn.Module):
    def LR(self, x, duration, max_len):
        output, mel_len = [], []
        for batch, expand_target in zip(x, duration):
            expanded = self.expand(batch, expand_target)
            output.append(expanded)
            mel_len.append(expanded.shape[0])
        output = pad(output, max_len) if max_len is not None else pad(output)
        return output, torch.LongTensor(mel_len)

    def expand(self, batch, predicted):
        out = []
        for i, vec in enumerate(batch):
            expand_size = predicted[i].item()
            out.append(vec.expand(max(int(expand_size), 0), -1))
        return torch.cat(out, 0)

    def forward(self, x, duration, max_len):
        return self.LR(x, duration, max_len)


class VarianceAdaptor(nn.Module):
    def __init__(self, pitch_min=80.0, pitch_max=400.0, energy_min=0.0, energy_max=2.0):
        super().__init__()
        self.duration_predictor = VariancePredictor()
        self.length_regulator = LengthRegulator()
        self.pitch_predictor = VariancePredictor()
        self.energy_predictor = VariancePredictor()
        self.pitch_bins = nn.Parameter(
            torch.exp(torch.linspace(np.log(pitch_min), np.log(pitch_max), N_BINS - 1)),
            requires_grad=False,
        )
        self.energy_bins = nn.Parameter(
            torch.linspace(energy_min, energy_max, N_BINS - 1), requires_grad=False
        )
        self.pitch_embedding = nn.Embedding(N_BINS, D)
        self.energy_embedding = nn.Embedding(N_BINS, D)

    def forward(
        self,
        x,
        src_mask,
        max_len=None,
        pitch_target=None,
        energy_target=None,
        duration_target=None,
        d_control=1.0,
    ):
        log_duration_prediction = self.duration_predictor(x, src_mask)
        pitch_prediction = self.pitch_predictor(x, src_mask)
        if pitch_target is not None:
            pitch_embedding = self.pitch_embedding(torch.bucketize(pitch_target, self.pitch_bins))
        else:
            pitch_embedding = self.pitch_embedding(
                torch.bucketize(pitch_prediction.exp() * 150.0, self.pitch_bins)
            )
        x = x + pitch_embedding
        energy_prediction = self.energy_predictor(x, src_mask)
        energy_embedding = self.energy_embedding(
            torch.bucketize(
                energy_target if energy_target is not None else energy_prediction, self.energy_bins
            )
        )
        x = x + energy_embedding
        if duration_target is not None:
            x, mel_len = self.length_regulator(x, duration_target, max_len)
            duration_rounded = duration_target
        else:
            duration_rounded = torch.clamp(
                torch.round(torch.exp(log_duration_prediction) - 1) * d_control, min=0
            )
            x, mel_len = self.length_regulator(x, duration_rounded, max_len)
        return (
            x,
            pitch_prediction,
            energy_prediction,
            log_duration_prediction,
            duration_rounded,
            mel_len,
        )


class FastSpeech2(nn.Module):
    def __init__(self):
        super().__init__()
        self.src_word_emb = nn.Embedding(VOCAB, D, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, 64, D))
        self.encoder = FFTBlock()
        self.variance_adaptor = VarianceAdaptor()
        self.decoder = FFTBlock()
        self.mel_linear = nn.Linear(D, N_MELS)

    def forward(
        self,
        texts,
        src_lens,
        mel_lens=None,
        max_mel_len=None,
        p_targets=None,
        e_targets=None,
        d_targets=None,
    ):
        src_masks = get_mask_from_lengths(src_lens, texts.shape[1])
        mel_masks = get_mask_from_lengths(mel_lens, max_mel_len) if mel_lens is not None else None
        x = self.src_word_emb(texts) + self.pos[:, : texts.shape[1]]
        output = self.encoder(x, src_masks)
        output, p_pred, e_pred, log_d_pred, d_rounded, mel_lens_out = self.variance_adaptor(
            output, src_masks, max_mel_len, p_targets, e_targets, d_targets
        )
        if mel_masks is None:
            mel_masks = get_mask_from_lengths(mel_lens_out)
        output = output + self.pos[:, : output.shape[1]]
        output = self.decoder(output, mel_masks)
        return (
            self.mel_linear(output),
            p_pred,
            e_pred,
            log_d_pred,
            d_rounded,
            src_masks,
            mel_masks,
            mel_lens_out,
        )


def maximum_path(value, mask):
    """Glow-TTS's monotonic alignment search, in NumPy (as its Cython fallback)."""
    value = value * mask
    b, t_x, t_y = value.shape
    direction = np.zeros(value.shape, dtype=np.int64)
    v = np.zeros((b, t_x), dtype=np.float32)
    x_range = np.arange(t_x, dtype=np.float32).reshape(1, -1)
    for j in range(t_y):
        v0 = np.pad(v, [[0, 0], [1, 0]], mode="constant", constant_values=-1e9)[:, :-1]
        v1 = v
        max_mask = v1 >= v0
        v_max = np.where(max_mask, v1, v0)
        direction[:, :, j] = max_mask
        index_mask = x_range <= j
        v = np.where(index_mask, v_max + value[:, :, j], -1e9)
    direction = np.where(mask, direction, 1)
    path = np.zeros(value.shape, dtype=np.float32)
    index = mask[:, :, 0].sum(1).astype(np.int64) - 1
    index_range = np.arange(b)
    for j in reversed(range(t_y)):
        path[index_range, index, j] = 1
        index = index + direction[index_range, index, j] - 1
    return path * mask


B = 6
src_lens_np = rng.integers(4, 8, B)
texts_np = np.zeros((B, 7), dtype=np.int64)
dur_np = np.zeros((B, 7), dtype=np.int64)
for i, n in enumerate(src_lens_np):
    texts_np[i, :n] = rng.integers(1, VOCAB, n)
    dur_np[i, :n] = rng.integers(1, 4, n)
mel_lens_np = dur_np.sum(1)
max_mel = int(mel_lens_np.max())
pitch_np = rng.uniform(90, 380, (B, 7)).astype(np.float32)
energy_np = rng.uniform(0.1, 1.9, (B, 7)).astype(np.float32)
mels = np.zeros((B, max_mel, N_MELS), dtype=np.float32)
for i in range(B):
    frames = np.repeat(
        np.sin(texts_np[i, : src_lens_np[i], None] * np.arange(1, N_MELS + 1) / 5.0),
        dur_np[i, : src_lens_np[i]],
        axis=0,
    )
    mels[i, : len(frames)] = frames
texts, src_lens, durs = (
    torch.from_numpy(texts_np),
    torch.from_numpy(src_lens_np),
    torch.from_numpy(dur_np),
)
mel_lens, mel_t = torch.from_numpy(mel_lens_np), torch.from_numpy(mels)
pitch_t, energy_t = torch.from_numpy(pitch_np), torch.from_numpy(energy_np)

model = FastSpeech2()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.Adam(model.parameters(), betas=(0.9, 0.98), eps=1e-9, lr=0.0)
n_warm, init_lr = 4, D**-0.5
log = []
for step in range(1, 9):
    lr = init_lr * min(step**-0.5, step * n_warm**-1.5)
    for g in opt.param_groups:
        g["lr"] = lr * 0.05
    mel_pred, p_pred, e_pred, log_d_pred, _, src_masks, mel_masks, out_lens = model(
        texts, src_lens, mel_lens, max_mel, pitch_t, energy_t, durs
    )
    src_m, mel_m = ~src_masks, ~mel_masks
    log_d_target = torch.log(durs.float() + 1)
    d_loss = F.mse_loss(log_d_pred.masked_select(src_m), log_d_target.masked_select(src_m))
    p_loss = F.mse_loss(
        p_pred.masked_select(src_m), torch.log(pitch_t / 150.0).masked_select(src_m)
    )
    e_loss = F.mse_loss(e_pred.masked_select(src_m), energy_t.masked_select(src_m))
    mel_loss = F.l1_loss(
        mel_pred.masked_select(mel_m.unsqueeze(-1)), mel_t.masked_select(mel_m.unsqueeze(-1))
    )
    loss = mel_loss + d_loss + p_loss + e_loss
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    log.append([mel_loss.item(), d_loss.item(), p_loss.item(), e_loss.item(), lr])
model.eval()
with torch.no_grad():
    mel_inf, _, _, log_d, d_rounded, _, _, inf_lens = model(texts[:2], src_lens[:2])
value = rng.standard_normal((2, 5, 9)).astype(np.float32)
mask = np.zeros((2, 5, 9), dtype=np.float32)
mask[0, :5, :9] = 1
mask[1, :3, :6] = 1
path = maximum_path(value, mask)
report(
    log=log,
    out_lens=out_lens.tolist(),
    inf_lens=inf_lens.tolist(),
    log_d=log_d.tolist(),
    d_rounded=d_rounded.tolist(),
    mel_inf_mean=mel_inf.mean().item(),
    path_durations=path.sum(2).astype(int).tolist(),
    buckets=torch.bucketize(pitch_t[0], model.variance_adaptor.pitch_bins).tolist(),
)
