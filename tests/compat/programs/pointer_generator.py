# Copying and pointing, as abisee's pointer-generator (its PyTorch ports) and the Pointer
# Network tutorials write them: a bi-LSTM encoder over packed source sequences, Bahdanau
# attention with a coverage vector (coverage features, masked softmax renormalised by the
# padding mask), p_gen from context / state / input, the final distribution over an extended
# vocabulary (source OOVs given temporary ids, vocab_dist padded with zeros by cat and
# attention scattered in by scatter_add), the coverage loss (sum of min(attn, coverage)), the
# gold-probability gather with a small epsilon and length normalisation; greedy decoding that
# maps OOV ids back to UNK before the next input; a Pointer Network sorting numbers (masked
# pointing with -inf on already chosen inputs, index_put of the mask, argmax decoding,
# teacher forcing by gather of encoder states) trained with NLL on log_softmax.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

rng = np.random.default_rng(41)
VOCAB, EMB, HID, UNK, PAD, START, STOP = 14, 8, 8, 1, 0, 2, 3


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMB, padding_idx=PAD)
        self.lstm = nn.LSTM(EMB, HID, num_layers=1, batch_first=True, bidirectional=True)
        self.W_h = nn.Linear(HID * 2, HID * 2, bias=False)
        self.reduce_h = nn.Linear(HID * 2, HID)
        self.reduce_c = nn.Linear(HID * 2, HID)

    def forward(self, inp, seq_lens):
        embedded = self.embedding(inp)
        packed = pack_padded_sequence(embedded, seq_lens, batch_first=True, enforce_sorted=False)
        output, (h, c) = self.lstm(packed)
        encoder_outputs, _ = pad_packed_sequence(output, batch_first=True)
        encoder_outputs = encoder_outputs.contiguous()
        encoder_feature = self.W_h(encoder_outputs.view(-1, 2 * HID))
        h_in = h.transpose(0, 1).contiguous().view(-1, HID * 2)
        c_in = c.transpose(0, 1).contiguous().view(-1, HID * 2)
        state = (F.relu(self.reduce_h(h_in)).unsqueeze(0), F.relu(self.reduce_c(c_in)).unsqueeze(0))
        return encoder_outputs, encoder_feature, state


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_c = nn.Linear(1, HID * 2, bias=False)
        self.decode_proj = nn.Linear(HID * 2, HID * 2)
        self.v = nn.Linear(HID * 2, 1, bias=False)

    def forward(self, s_t_hat, encoder_outputs, encoder_feature, enc_padding_mask, coverage):
        b, t_k, n = encoder_outputs.size()
        dec_fea = self.decode_proj(s_t_hat)
        dec_fea_expanded = dec_fea.unsqueeze(1).expand(b, t_k, n).contiguous().view(-1, n)
        att_features = encoder_feature + dec_fea_expanded
        coverage_input = coverage.view(-1, 1)
        att_features = att_features + self.W_c(coverage_input)
        scores = self.v(torch.tanh(att_features)).view(-1, t_k)
        attn_dist_ = F.softmax(scores, dim=1) * enc_padding_mask
        normalization_factor = attn_dist_.sum(1, keepdim=True)
        attn_dist = attn_dist_ / normalization_factor
        c_t = torch.bmm(attn_dist.unsqueeze(1), encoder_outputs).view(-1, HID * 2)
        coverage = coverage.view(-1, t_k) + attn_dist
        return c_t, attn_dist, coverage


class Decoder(nn.Module):
    def __init__(self, shared_embedding):
        super().__init__()
        self.attention_network = Attention()
        self.embedding = shared_embedding
        self.x_context = nn.Linear(HID * 2 + EMB, EMB)
        self.lstm = nn.LSTM(EMB, HID, num_layers=1, batch_first=True)
        self.p_gen_linear = nn.Linear(HID * 4 + EMB, 1)
        self.out1 = nn.Linear(HID * 3, HID)
        self.out2 = nn.Linear(HID, VOCAB)

    def forward(
        self,
        y_t_1,
        s_t_1,
        encoder_outputs,
        encoder_feature,
        enc_padding_mask,
        c_t_1,
        extra_zeros,
        enc_batch_extend_vocab,
        coverage,
    ):
        y_t_1_embd = self.embedding(y_t_1)
        x = self.x_context(torch.cat((c_t_1, y_t_1_embd), 1))
        lstm_out, s_t = self.lstm(x.unsqueeze(1), s_t_1)
        h_decoder, c_decoder = s_t
        s_t_hat = torch.cat((h_decoder.view(-1, HID), c_decoder.view(-1, HID)), 1)
        c_t, attn_dist, coverage_next = self.attention_network(
            s_t_hat, encoder_outputs, encoder_feature, enc_padding_mask, coverage
        )
        p_gen = torch.sigmoid(self.p_gen_linear(torch.cat((c_t, s_t_hat, x), 1)))
        output = torch.cat((lstm_out.view(-1, HID), c_t), 1)
        vocab_dist = F.softmax(self.out2(self.out1(output)), dim=1)
        vocab_dist_ = p_gen * vocab_dist
        attn_dist_ = (1 - p_gen) * attn_dist
        if extra_zeros is not None:
            vocab_dist_ = torch.cat([vocab_dist_, extra_zeros], 1)
        final_dist = vocab_dist_.scatter_add(1, enc_batch_extend_vocab, attn_dist_)
        return final_dist, s_t, c_t, attn_dist, p_gen, coverage_next


class PGModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder(self.encoder.embedding)


def make_batch(n=4, max_len=7):
    """Source words 4..VOCAB+2: ids >= VOCAB are article OOVs; the target copies the source."""
    lens = rng.integers(3, max_len + 1, size=n)
    lens[0] = max_len
    ext = np.zeros((n, max_len), np.int64)
    for i, L in enumerate(lens):
        ext[i, :L] = rng.integers(4, VOCAB + 3, size=L)
    enc = np.where(ext >= VOCAB, UNK, ext)
    mask = (np.arange(max_len)[None] < lens[:, None]).astype(np.float32)
    max_oovs = int(max(0, (ext.max() - VOCAB + 1)))
    tgt = np.full((n, max_len + 1), PAD, np.int64)
    dec_in = np.full((n, max_len + 1), PAD, np.int64)
    for i, L in enumerate(lens):
        tgt[i, :L] = ext[i, :L]
        tgt[i, L] = STOP
        dec_in[i, 0] = START
        dec_in[i, 1 : L + 1] = np.where(ext[i, :L] >= VOCAB, UNK, ext[i, :L])
    dec_mask = (tgt != PAD).astype(np.float32)
    T = torch.from_numpy
    return (T(enc), T(lens), T(ext), T(mask), max_oovs, T(dec_in), T(tgt), T(dec_mask))


def train_step(model, batch, cov_weight=1.0, eps=1e-12):
    enc, lens, ext, mask, max_oovs, dec_in, tgt, dec_mask = batch
    n = enc.shape[0]
    enc_out, enc_feat, s_t = model.encoder(enc, lens)
    t_k = enc_out.shape[1]
    enc_mask = mask[:, :t_k]
    c_t = torch.zeros(n, 2 * HID)
    coverage = torch.zeros(n, t_k)
    extra_zeros = torch.zeros(n, max_oovs) if max_oovs > 0 else None
    step_losses, p_gens = [], []
    for di in range(dec_in.shape[1]):
        final_dist, s_t, c_t, attn_dist, p_gen, next_cov = model.decoder(
            dec_in[:, di],
            s_t,
            enc_out,
            enc_feat,
            enc_mask,
            c_t,
            extra_zeros,
            ext[:, :t_k],
            coverage,
        )
        gold_probs = torch.gather(final_dist, 1, tgt[:, di].unsqueeze(1)).squeeze()
        step_loss = -torch.log(gold_probs + eps)
        step_cov = torch.sum(torch.min(attn_dist, coverage), 1)
        step_loss = step_loss + cov_weight * step_cov
        coverage = next_cov
        step_losses.append(step_loss * dec_mask[:, di])
        p_gens.append(p_gen.mean().item())
    sum_losses = torch.sum(torch.stack(step_losses, 1), 1)
    batch_avg = sum_losses / dec_mask.sum(1)
    return torch.mean(batch_avg), p_gens


def greedy(model, batch, steps=6):
    enc, lens, ext, mask, max_oovs, *_ = batch
    n = enc.shape[0]
    enc_out, enc_feat, s_t = model.encoder(enc, lens)
    t_k = enc_out.shape[1]
    c_t = torch.zeros(n, 2 * HID)
    coverage = torch.zeros(n, t_k)
    extra = torch.zeros(n, max_oovs) if max_oovs > 0 else None
    y = torch.full((n,), START, dtype=torch.long)
    out = []
    for _ in range(steps):
        dist, s_t, c_t, attn, _, coverage = model.decoder(
            y, s_t, enc_out, enc_feat, mask[:, :t_k], c_t, extra, ext[:, :t_k], coverage
        )
        tok = dist.argmax(1)
        out.append(tok)
        y = tok.masked_fill(tok >= VOCAB, UNK)
    return torch.stack(out, 1), coverage


torch.manual_seed(0)
model = load(PGModel())
opt = torch.optim.Adagrad(model.parameters(), lr=0.15, initial_accumulator_value=0.1)
pg_losses, pgen_means = [], []
for step in range(6):
    batch = make_batch()
    loss, p_gens = train_step(model, batch)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 2.0)
    opt.step()
    pg_losses.append(loss.item())
    pgen_means.append(p_gens[:3])
model.eval()
with torch.no_grad():
    test = make_batch()
    decoded, cov = greedy(model, test)


# ---- Pointer Network: sort 5 numbers
class PtrNet(nn.Module):
    def __init__(self, h=16):
        super().__init__()
        self.embed = nn.Linear(1, h)
        self.enc = nn.LSTM(h, h, batch_first=True)
        self.dec = nn.LSTMCell(h, h)
        self.W1 = nn.Linear(h, h, bias=False)
        self.W2 = nn.Linear(h, h, bias=False)
        self.vt = nn.Linear(h, 1, bias=False)
        self.dec_start = nn.Parameter(torch.zeros(h))

    def forward(self, x, targets=None):
        b, n = x.shape
        emb = self.embed(x.unsqueeze(-1))
        enc, (h, c) = self.enc(emb)
        h, c = h[0], c[0]
        inp = self.dec_start.unsqueeze(0).expand(b, -1)
        mask = torch.zeros(b, n, dtype=torch.bool)
        logps, picks = [], []
        ar = torch.arange(b)
        for i in range(n):
            h, c = self.dec(inp, (h, c))
            u = self.vt(torch.tanh(self.W1(enc) + self.W2(h).unsqueeze(1))).squeeze(-1)
            u = u.masked_fill(mask, float("-inf"))
            logp = F.log_softmax(u, dim=-1)
            pick = logp.argmax(-1) if targets is None else targets[:, i]
            mask = mask.clone()
            mask[ar, pick] = True
            inp = emb[ar, pick]
            logps.append(logp)
            picks.append(pick)
        return torch.stack(logps, 1), torch.stack(picks, 1)


ptr = load(PtrNet())
popt = torch.optim.Adam(ptr.parameters(), lr=1e-2)
ptr_losses = []
for step in range(10):
    xs = torch.from_numpy(rng.uniform(0, 1, size=(8, 5)).astype(np.float32))
    tg = torch.argsort(xs, dim=1)
    logps, _ = ptr(xs, tg)
    loss = F.nll_loss(logps.reshape(-1, 5), tg.reshape(-1))
    popt.zero_grad()
    loss.backward()
    popt.step()
    ptr_losses.append(loss.item())
with torch.no_grad():
    xs = torch.from_numpy(rng.uniform(0, 1, size=(4, 5)).astype(np.float32))
    lp, picks = ptr(xs)
    acc = (picks == torch.argsort(xs, 1)).float().mean().item()

report(
    pg_losses=pg_losses,
    pgen_means=pgen_means,
    decoded=decoded.tolist(),
    coverage=cov.sum(1).tolist(),
    ptr_losses=ptr_losses,
    ptr_picks=picks.tolist(),
    ptr_acc=acc,
    ptr_logp=lp[0, 0].tolist(),
)
