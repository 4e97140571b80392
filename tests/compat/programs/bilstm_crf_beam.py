# Structured prediction the way the PyTorch tutorials and seq2seq repositories write it:
# (1) the "Bi-LSTM CRF" tutorial (Advanced: Making Dynamic Decisions): a BiLSTM emitting tag
# scores, a CRF transition matrix with START/STOP tags forbidden by -10000 entries, the forward
# algorithm with log_sum_exp (max + log(sum(exp))), the gold path score, the negative
# log-likelihood trained with SGD(weight_decay), and Viterbi decoding with backpointers;
# plus the batched forward algorithm with torch.logsumexp over a broadcast (B, T, T) tensor.
# (2) Beam search over a GRU decoder: log_softmax scores accumulated per beam, topk over the
# flattened (beam x vocab) scores, beam origins by torch.div(..., rounding_mode="floor"),
# index_select of hidden states, finished hypotheses masked with -inf, a length penalty.
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from compat_helpers import reference_weights, report

rng = np.random.default_rng(97)


def argmax(vec):
    _, idx = torch.max(vec, 1)
    return idx.item()


def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


def log_sum_exp(vec):
    max_score = vec[0, argmax(vec)]
    max_score_broadcast = max_score.view(1, -1).expand(1, vec.size()[1])
    return max_score + torch.log(torch.sum(torch.exp(vec - max_score_broadcast)))


START_TAG, STOP_TAG = "<START>", "<STOP>"


class BiLSTM_CRF(nn.Module):
    def __init__(self, vocab_size, tag_to_ix, embedding_dim, hidden_dim):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.tag_to_ix = tag_to_ix
        self.tagset_size = len(tag_to_ix)
        self.word_embeds = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, num_layers=1, bidirectional=True)
        self.hidden2tag = nn.Linear(hidden_dim, self.tagset_size)
        self.transitions = nn.Parameter(torch.randn(self.tagset_size, self.tagset_size))
        self.transitions.data[tag_to_ix[START_TAG], :] = -10000
        self.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000
        self.hidden = self.init_hidden()

    def init_hidden(self):
        return (torch.zeros(2, 1, self.hidden_dim // 2), torch.zeros(2, 1, self.hidden_dim // 2))

    def _forward_alg(self, feats):
        init_alphas = torch.full((1, self.tagset_size), -10000.0)
        init_alphas[0][self.tag_to_ix[START_TAG]] = 0.0
        forward_var = init_alphas
        for feat in feats:
            alphas_t = []
            for next_tag in range(self.tagset_size):
                emit_score = feat[next_tag].view(1, -1).expand(1, self.tagset_size)
                trans_score = self.transitions[next_tag].view(1, -1)
                next_tag_var = forward_var + trans_score + emit_score
                alphas_t.append(log_sum_exp(next_tag_var).view(1))
            forward_var = torch.cat(alphas_t).view(1, -1)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        return log_sum_exp(terminal_var)

    def _get_lstm_features(self, sentence):
        self.hidden = self.init_hidden()
        embeds = self.word_embeds(sentence).view(len(sentence), 1, -1)
        lstm_out, self.hidden = self.lstm(embeds, self.hidden)
        lstm_out = lstm_out.view(len(sentence), self.hidden_dim)
        return self.hidden2tag(lstm_out)

    def _score_sentence(self, feats, tags):
        score = torch.zeros(1)
        tags = torch.cat([torch.tensor([self.tag_to_ix[START_TAG]], dtype=torch.long), tags])
        for i, feat in enumerate(feats):
            score = score + self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
        return score + self.transitions[self.tag_to_ix[STOP_TAG], tags[-1]]

    def _viterbi_decode(self, feats):
        backpointers = []
        init_vvars = torch.full((1, self.tagset_size), -10000.0)
        init_vvars[0][self.tag_to_ix[START_TAG]] = 0
        forward_var = init_vvars
        for feat in feats:
            bptrs_t, viterbivars_t = [], []
            for next_tag in range(self.tagset_size):
                next_tag_var = forward_var + self.transitions[next_tag]
                best_tag_id = argmax(next_tag_var)
                bptrs_t.append(best_tag_id)
                viterbivars_t.append(next_tag_var[0][best_tag_id].view(1))
            forward_var = (torch.cat(viterbivars_t) + feat).view(1, -1)
            backpointers.append(bptrs_t)
        terminal_var = forward_var + self.transitions[self.tag_to_ix[STOP_TAG]]
        best_tag_id = argmax(terminal_var)
        path_score = terminal_var[0][best_tag_id]
        best_path = [best_tag_id]
        for bptrs_t in reversed(backpointers):
            best_tag_id = bptrs_t[best_tag_id]
            best_path.append(best_tag_id)
        start = best_path.pop()
        assert start == self.tag_to_ix[START_TAG]
        best_path.reverse()
        return path_score, best_path

    def neg_log_likelihood(self, sentence, tags):
        feats = self._get_lstm_features(sentence)
        forward_score = self._forward_alg(feats)
        gold_score = self._score_sentence(feats, tags)
        return forward_score - gold_score

    def forward(self, sentence):
        lstm_feats = self._get_lstm_features(sentence)
        return self._viterbi_decode(lstm_feats)


training_data = [
    ("the wall street journal reported today that apple corporation made money".split(),
     "B I I I O O O B I O O".split()),
    ("georgia tech is a university in georgia".split(), "B I O O O O B".split()),
]  # fmt: skip
word_to_ix = {}
for sentence, tags in training_data:
    for word in sentence:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)
tag_to_ix = {"B": 0, "I": 1, "O": 2, START_TAG: 3, STOP_TAG: 4}
model = BiLSTM_CRF(len(word_to_ix), tag_to_ix, 5, 4)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
    model.transitions.data[tag_to_ix[START_TAG], :] = -10000
    model.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000
optimizer = optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)
with torch.no_grad():
    precheck_sent = prepare_sequence(training_data[0][0], word_to_ix)
    before = model(precheck_sent)
nlls = []
for epoch in range(6):
    for sentence, tags in training_data:
        model.zero_grad()
        sentence_in = prepare_sequence(sentence, word_to_ix)
        targets = torch.tensor([tag_to_ix[t] for t in tags], dtype=torch.long)
        loss = model.neg_log_likelihood(sentence_in, targets)
        loss.backward()
        optimizer.step()
        nlls.append(loss.item())
with torch.no_grad():
    after = model(precheck_sent)
    feats = model._get_lstm_features(precheck_sent)
    # the batched forward algorithm: alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + trans[j, i]) + e_t[j]
    alpha = torch.full((model.tagset_size,), -10000.0)
    alpha[tag_to_ix[START_TAG]] = 0.0
    for feat in feats:
        alpha = torch.logsumexp(alpha.unsqueeze(0) + model.transitions, dim=1) + feat
    batched_Z = torch.logsumexp(alpha + model.transitions[tag_to_ix[STOP_TAG]], dim=0)
    loop_Z = model._forward_alg(feats)


# (2) beam search with a GRU decoder
vocab, hid, beam, max_len, EOS = 7, 6, 3, 6, 0
embed = nn.Embedding(vocab, hid)
cell = nn.GRUCell(hid, hid)
proj = nn.Linear(hid, vocab)
for mod in (embed, cell, proj):
    Wm = reference_weights(mod)
    with torch.no_grad():
        for name, p in mod.named_parameters():
            p.copy_(torch.from_numpy(Wm[name]) * 2)


@torch.no_grad()
def beam_search(h0, bos=1, alpha=0.7):
    h = h0.expand(beam, -1).contiguous()
    tokens = torch.full((beam, 1), bos, dtype=torch.long)
    scores = torch.zeros(beam)
    scores[1:] = float("-inf")  # all beams start identical: keep one
    finished = torch.zeros(beam, dtype=torch.bool)
    for t in range(max_len):
        h = cell(embed(tokens[:, -1]), h)
        logp = torch.log_softmax(proj(h), dim=-1)  # (beam, vocab)
        logp[finished] = float("-inf")
        logp[finished, EOS] = 0.0  # a finished hypothesis only extends with EOS, for free
        cand = (scores.unsqueeze(1) + logp).view(-1)
        top_scores, top_idx = cand.topk(beam)
        origin = torch.div(top_idx, vocab, rounding_mode="floor")
        next_tok = top_idx % vocab
        h = h.index_select(0, origin)
        tokens = torch.cat([tokens.index_select(0, origin), next_tok.unsqueeze(1)], dim=1)
        finished = finished.index_select(0, origin) | (next_tok == EOS)
        scores = top_scores
        if finished.all():
            break
    lengths = ((tokens != EOS).cumsum(1) == torch.arange(1, tokens.size(1) + 1)).sum(1)
    normed = scores / (((5 + lengths.float()) / 6) ** alpha)
    best = normed.argmax()
    return tokens.tolist(), scores.tolist(), normed.tolist(), int(best)


beams = [
    beam_search(torch.from_numpy(rng.standard_normal((1, hid)).astype(np.float32)))
    for _ in range(3)
]
report(
    before=[before[0].item(), before[1]],
    after=[after[0].item(), after[1]],
    nlls=nlls,
    Z=[batched_Z.item(), loop_Z.item()],
    beams=beams,
)
