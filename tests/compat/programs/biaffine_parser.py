# NLP classics around a dependency parser, written as the supar / allennlp-era code writes them:
# a character CNN over padded char ids (Embedding(padding_idx=0), Conv1d per width, max over
# time, a Highway layer with carry gates initialised to bias 1 by .data[n:].fill_), words + chars
# into a packed BiLSTM, Dozat & Manning's Biaffine scorer (ones appended by torch.cat, einsum
# 'bxi,oij,byj->boxy', masked_fill_ of padding by -inf), head cross-entropy over the masked arcs,
# a label biaffine gathered at the gold heads, Eisner's projective decoding (a Python dynamic
# program over score tensors with stacked diagonals, backtracking by .item()), UAS / LAS; and
# Kim's TextCNN (Conv2d over (1, L, E) with widths 2, 3, 4, max_pool1d over the full length,
# dropout in eval, a max-norm constraint by torch.renorm). Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

rng = np.random.default_rng(23)
N_WORDS, N_CHARS, N_RELS, B, L, CL = 20, 12, 4, 5, 7, 5


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))


class Highway(nn.Module):
    def __init__(self, input_dim, num_layers=1):
        super().__init__()
        self._layers = nn.ModuleList(
            [nn.Linear(input_dim, input_dim * 2) for _ in range(num_layers)]
        )
        self.input_dim = input_dim

    def reset(self):
        for layer in self._layers:
            layer.bias[self.input_dim :].data.fill_(1)

    def forward(self, inputs):
        current_input = inputs
        for layer in self._layers:
            projected_input = layer(current_input)
            linear_part = current_input
            nonlinear_part, gate = projected_input.chunk(2, dim=-1)
            nonlinear_part = F.relu(nonlinear_part)
            gate = torch.sigmoid(gate)
            current_input = gate * linear_part + (1 - gate) * nonlinear_part
        return current_input


class CharCNN(nn.Module):
    def __init__(self, widths=(2, 3), filters=6):
        super().__init__()
        self.emb = nn.Embedding(N_CHARS, 8, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(8, filters, w, padding=w - 1) for w in widths])
        self.highway = Highway(filters * len(widths))

    def forward(self, chars):  # (B, L, CL)
        b, l, c = chars.shape
        x = self.emb(chars.view(b * l, c)).transpose(1, 2)
        feats = [torch.max(F.relu(conv(x)), dim=-1)[0] for conv in self.convs]
        return self.highway(torch.cat(feats, dim=-1)).view(b, l, -1)


class Biaffine(nn.Module):
    def __init__(self, n_in, n_out=1, bias_x=True, bias_y=True):
        super().__init__()
        self.n_in, self.n_out, self.bias_x, self.bias_y = n_in, n_out, bias_x, bias_y
        self.weight = nn.Parameter(torch.Tensor(n_out, n_in + bias_x, n_in + bias_y))

    def forward(self, x, y):
        if self.bias_x:
            x = torch.cat((x, torch.ones_like(x[..., :1])), -1)
        if self.bias_y:
            y = torch.cat((y, torch.ones_like(y[..., :1])), -1)
        s = torch.einsum("bxi,oij,byj->boxy", x, self.weight, y)
        return s.squeeze(1)


class Parser(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embed = nn.Embedding(N_WORDS, 10, padding_idx=0)
        self.char = CharCNN()
        self.lstm = nn.LSTM(22, 12, batch_first=True, bidirectional=True)
        self.mlp_arc_d = nn.Linear(24, 10)
        self.mlp_arc_h = nn.Linear(24, 10)
        self.mlp_rel_d = nn.Linear(24, 6)
        self.mlp_rel_h = nn.Linear(24, 6)
        self.arc_attn = Biaffine(10, bias_x=True, bias_y=False)
        self.rel_attn = Biaffine(6, N_RELS, bias_x=True, bias_y=True)

    def forward(self, words, chars):
        mask = words.ne(0)
        lens = mask.sum(1)
        x = torch.cat((self.word_embed(words), self.char(chars)), -1)
        x = pack_padded_sequence(x, lens, True, False)
        x, _ = self.lstm(x)
        x, _ = pad_packed_sequence(x, True, total_length=words.shape[1])
        arc_d, arc_h = F.leaky_relu(self.mlp_arc_d(x), 0.1), F.leaky_relu(self.mlp_arc_h(x), 0.1)
        rel_d, rel_h = F.leaky_relu(self.mlp_rel_d(x), 0.1), F.leaky_relu(self.mlp_rel_h(x), 0.1)
        s_arc = self.arc_attn(arc_d, arc_h)
        s_rel = self.rel_attn(rel_d, rel_h).permute(0, 2, 3, 1)
        s_arc.masked_fill_(~mask.unsqueeze(1), float("-inf"))
        return s_arc, s_rel


def eisner(scores, mask):
    """scores: (B, L, L) [dependent, head]; position 0 is the root."""
    lens = mask.sum(1)
    batch_size, seq_len, _ = scores.shape
    scores = scores.permute(2, 1, 0)  # [head, dep, batch]
    s_i = torch.full_like(scores, float("-inf"))
    s_c = torch.full_like(scores, float("-inf"))
    p_i = scores.new_zeros(seq_len, seq_len, batch_size).long()
    p_c = scores.new_zeros(seq_len, seq_len, batch_size).long()
    s_c.diagonal().fill_(0)
    for w in range(1, seq_len):
        n = seq_len - w
        for i in range(n):
            j = i + w
            # incomplete spans
            il = s_c[i, i:j] + s_c[j, i + 1 : j + 1]
            cand = il + scores[j, i]  # j -> i (head j)
            best, arg = cand.max(0)
            s_i[j, i], p_i[j, i] = best, arg + i
            cand = il + scores[i, j]
            best, arg = cand.max(0)
            s_i[i, j], p_i[i, j] = best, arg + i
            # complete spans
            left = s_c[i:j, i] + s_i[j, i:j]
            best, arg = left.max(0)
            s_c[j, i], p_c[j, i] = best, arg + i
            right = s_i[i, i + 1 : j + 1] + s_c[i + 1 : j + 1, j]
            best, arg = right.max(0)
            s_c[i, j], p_c[i, j] = best, arg + i + 1

    def backtrack(heads, b, i, j, complete):
        if i == j:
            return
        if complete:
            r = int(p_c[i, j, b])
            backtrack(heads, b, i, r, False)
            backtrack(heads, b, r, j, True)
        else:
            r = int(p_i[i, j, b])
            heads[j] = i
            if i < j:
                backtrack(heads, b, i, r, True)
                backtrack(heads, b, j, r + 1, True)
            else:
                backtrack(heads, b, j, r, True)
                backtrack(heads, b, i, r + 1, True)

    preds = []
    for b in range(batch_size):
        heads = [0] * int(lens[b])
        backtrack(heads, b, 0, int(lens[b]) - 1, True)
        preds.append(heads)
    return preds


# a toy treebank: word ids (0 pad, 1 root), heads projective by construction (attach to a
# neighbour or the root), relations from the head distance
def make_batch():
    lens = rng.integers(4, L + 1, size=B)
    words = np.zeros((B, L), dtype=np.int64)
    chars = np.zeros((B, L, CL), dtype=np.int64)
    heads = np.zeros((B, L), dtype=np.int64)
    rels = np.zeros((B, L), dtype=np.int64)
    for b in range(B):
        words[b, 0] = 1
        for t in range(1, lens[b]):
            words[b, t] = rng.integers(2, N_WORDS)
            nc = rng.integers(1, CL + 1)
            chars[b, t, :nc] = rng.integers(1, N_CHARS, size=nc)
            heads[b, t] = t - 1 if words[b, t] % 3 else 0
            rels[b, t] = min(t - heads[b, t], N_RELS - 1)
    return (
        torch.from_numpy(words),
        torch.from_numpy(chars),
        torch.from_numpy(heads),
        torch.from_numpy(rels),
    )


parser = Parser()
load(parser)
parser.char.highway.reset()
opt = torch.optim.SGD(parser.parameters(), lr=0.5, momentum=0.9)
log = []
for step in range(16):
    words, chars, heads, rels = make_batch()
    mask = words.ne(0)
    mask[:, 0] = 0
    s_arc, s_rel = parser(words, chars)
    arc_scores, arcs = s_arc[mask], heads[mask]
    rel_scores, rels_m = s_rel[mask], rels[mask]
    rel_scores = rel_scores[torch.arange(len(arcs)), arcs]
    arc_loss = F.cross_entropy(arc_scores, arcs)
    rel_loss = F.cross_entropy(rel_scores, rels_m)
    loss = arc_loss + rel_loss
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(parser.parameters(), 5.0)
    opt.step()
    log.append([arc_loss.item(), rel_loss.item()])
parser.eval()
with torch.no_grad():
    words, chars, heads, rels = make_batch()
    s_arc, s_rel = parser(words, chars)
    full_mask = words.ne(0)
    pred_heads = eisner(s_arc.log_softmax(-1), full_mask)
    rand_scores = torch.from_numpy(rng.normal(size=(3, 6, 6)).astype(np.float32))
    rand_heads = eisner(rand_scores, torch.ones(3, 6, dtype=torch.bool))
    mask = full_mask.clone()
    mask[:, 0] = 0
    greedy = s_arc.argmax(-1)
    pred_rels = s_rel.argmax(-1).gather(-1, greedy.unsqueeze(-1)).squeeze(-1)
    uas = (greedy.eq(heads) & mask).sum().item() / mask.sum().item()
    las = (greedy.eq(heads) & pred_rels.eq(rels) & mask).sum().item() / mask.sum().item()


# ---- Kim's TextCNN
class TextCNN(nn.Module):
    def __init__(self, Ks=(2, 3, 4), Co=4, C=2):
        super().__init__()
        self.embed = nn.Embedding(N_WORDS, 8)
        self.convs1 = nn.ModuleList([nn.Conv2d(1, Co, (K, 8)) for K in Ks])
        self.dropout = nn.Dropout(0.5)
        self.fc1 = nn.Linear(len(Ks) * Co, C)

    def forward(self, x):
        x = self.embed(x).unsqueeze(1)
        x = [F.relu(conv(x)).squeeze(3) for conv in self.convs1]
        x = [F.max_pool1d(i, i.size(2)).squeeze(2) for i in x]
        x = torch.cat(x, 1)
        return self.fc1(self.dropout(x))


cnn = TextCNN()
load(cnn)
opt = torch.optim.Adadelta(cnn.parameters(), lr=1.0)
tc_log = []
for step in range(10):
    x = torch.from_numpy(rng.integers(1, N_WORDS, size=(8, 9)))
    y = (x == 3).any(1).long() | (x == 7).any(1).long()
    cnn.train()
    cnn.dropout.p = 0.0
    loss = F.cross_entropy(cnn(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        cnn.fc1.weight.data = torch.renorm(cnn.fc1.weight.data, p=2, dim=0, maxnorm=0.6)
    tc_log.append(loss.item())
cnn.eval()
with torch.no_grad():
    tc_out = cnn(torch.from_numpy(rng.integers(1, N_WORDS, size=(4, 9)))).tolist()
report(
    parser=log,
    eisner_heads=pred_heads,
    eisner_random=rand_heads,
    greedy=greedy.tolist(),
    uas=uas,
    las=las,
    textcnn=tc_log,
    textcnn_out=tc_out,
    fc_norms=cnn.fc1.weight.norm(dim=1).tolist(),
)
