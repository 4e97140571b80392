# Image captioning in the shape of sgrvinod's "a-PyTorch-Tutorial-to-Image-Captioning" (Show,
# Attend and Tell; our own condensed rewrite) with a tiny CNN in place of ResNet-101: the
# Encoder's AdaptiveAvgPool2d((enc, enc)) and permute(0, 2, 3, 1), the soft Attention module
# (full_att over relu(att1 + att2.unsqueeze(1)), softmax over pixels), DecoderWithAttention with
# init_h / init_c from the mean encoding, an f_beta sigmoid gate, nn.LSTMCell stepped over
# decode lengths with batch_size_t = sum([l > t for l in decode_lengths]) slices of the sorted
# batch (caption_lengths.squeeze(1).sort(dim=0, descending=True)), predictions / alphas
# buffers written by slice assignment, the loss on pack_padded_sequence(scores, decode_lengths,
# batch_first=True).data, the doubly stochastic attention penalty ((1 - alphas.sum(1)) ** 2),
# clip_gradient by param.grad.data.clamp_, top-5 accuracy by topk / eq / view_as, Adam for
# both, and beam search (k = 3) with the vocabulary-flattened topk and // / % index arithmetic.
import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

vocab_size, emb_dim, dec_dim, att_dim, enc_dim = 12, 8, 16, 8, 6
START, END, PAD = 1, 2, 0


class Encoder(nn.Module):
    def __init__(self, encoded_image_size=3):
        super().__init__()
        self.enc_image_size = encoded_image_size
        self.cnn = nn.Sequential(nn.Conv2d(3, enc_dim, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.adaptive_pool = nn.AdaptiveAvgPool2d((encoded_image_size, encoded_image_size))

    def forward(self, images):
        out = self.cnn(images)
        out = self.adaptive_pool(out)
        return out.permute(0, 2, 3, 1)


class Attention(nn.Module):
    def __init__(self, encoder_dim, decoder_dim, attention_dim):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.relu = nn.ReLU()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, encoder_out, decoder_hidden):
        att1 = self.encoder_att(encoder_out)
        att2 = self.decoder_att(decoder_hidden)
        att = self.full_att(self.relu(att1 + att2.unsqueeze(1))).squeeze(2)
        alpha = self.softmax(att)
        attention_weighted_encoding = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)
        return attention_weighted_encoding, alpha


class DecoderWithAttention(nn.Module):
    def __init__(
        self, attention_dim, embed_dim, decoder_dim, vocab_size, encoder_dim=enc_dim, dropout=0.0
    ):
        super().__init__()
        self.encoder_dim, self.attention_dim, self.embed_dim = encoder_dim, attention_dim, embed_dim
        self.decoder_dim, self.vocab_size = decoder_dim, vocab_size
        self.attention = Attention(encoder_dim, decoder_dim, attention_dim)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.dropout = nn.Dropout(p=dropout)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim, bias=True)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, encoder_dim)
        self.sigmoid = nn.Sigmoid()
        self.fc = nn.Linear(decoder_dim, vocab_size)

    def init_hidden_state(self, encoder_out):
        mean_encoder_out = encoder_out.mean(dim=1)
        return self.init_h(mean_encoder_out), self.init_c(mean_encoder_out)

    def forward(self, encoder_out, encoded_captions, caption_lengths):
        batch_size = encoder_out.size(0)
        encoder_dim = encoder_out.size(-1)
        vocab_size = self.vocab_size
        encoder_out = encoder_out.view(batch_size, -1, encoder_dim)
        num_pixels = encoder_out.size(1)
        caption_lengths, sort_ind = caption_lengths.squeeze(1).sort(dim=0, descending=True)
        encoder_out = encoder_out[sort_ind]
        encoded_captions = encoded_captions[sort_ind]
        embeddings = self.embedding(encoded_captions)
        h, c = self.init_hidden_state(encoder_out)
        decode_lengths = (caption_lengths - 1).tolist()
        predictions = torch.zeros(batch_size, max(decode_lengths), vocab_size)
        alphas = torch.zeros(batch_size, max(decode_lengths), num_pixels)
        for t in range(max(decode_lengths)):
            batch_size_t = sum([l > t for l in decode_lengths])
            attention_weighted_encoding, alpha = self.attention(
                encoder_out[:batch_size_t], h[:batch_size_t]
            )
            gate = self.sigmoid(self.f_beta(h[:batch_size_t]))
            attention_weighted_encoding = gate * attention_weighted_encoding
            h, c = self.decode_step(
                torch.cat([embeddings[:batch_size_t, t, :], attention_weighted_encoding], dim=1),
                (h[:batch_size_t], c[:batch_size_t]),
            )
            preds = self.fc(self.dropout(h))
            predictions[:batch_size_t, t, :] = preds
            alphas[:batch_size_t, t, :] = alpha
        return predictions, encoded_captions, decode_lengths, alphas, sort_ind


def clip_gradient(optimizer, grad_clip):
    for group in optimizer.param_groups:
        for param in group["params"]:
            if param.grad is not None:
                param.grad.data.clamp_(-grad_clip, grad_clip)


def accuracy(scores, targets, k):
    batch_size = targets.size(0)
    _, ind = scores.topk(k, 1, True, True)
    correct = ind.eq(targets.view(-1, 1).expand_as(ind))
    correct_total = correct.view(-1).float().sum()
    return correct_total.item() * (100.0 / batch_size)


rng = np.random.default_rng(8)
images = torch.from_numpy(rng.standard_normal((6, 3, 8, 8)).astype(np.float32))
lengths = [6, 4, 5, 3, 6, 4]
caps = np.zeros((6, 6), dtype=np.int64)
for i, L in enumerate(lengths):
    caps[i, 0] = START
    caps[i, 1 : L - 1] = rng.integers(3, vocab_size, L - 2)
    caps[i, L - 1] = END
caps = torch.from_numpy(caps)
caplens = torch.tensor(lengths).unsqueeze(1)

encoder, decoder = Encoder(), DecoderWithAttention(att_dim, emb_dim, dec_dim, vocab_size)
for net in (encoder, decoder):
    W = reference_weights(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
decoder_optimizer = torch.optim.Adam(
    params=filter(lambda p: p.requires_grad, decoder.parameters()), lr=4e-3
)
encoder_optimizer = torch.optim.Adam(
    params=filter(lambda p: p.requires_grad, encoder.parameters()), lr=1e-3
)
criterion = nn.CrossEntropyLoss()
alpha_c = 1.0
losses, top5s = [], []
for epoch in range(8):
    imgs = encoder(images)
    scores, caps_sorted, decode_lengths, alphas, sort_ind = decoder(imgs, caps, caplens)
    targets = caps_sorted[:, 1:]
    scores = pack_padded_sequence(scores, decode_lengths, batch_first=True).data
    targets = pack_padded_sequence(targets, decode_lengths, batch_first=True).data
    loss = criterion(scores, targets)
    loss += alpha_c * ((1.0 - alphas.sum(dim=1)) ** 2).mean()
    decoder_optimizer.zero_grad()
    encoder_optimizer.zero_grad()
    loss.backward()
    clip_gradient(decoder_optimizer, 0.05)
    clip_gradient(encoder_optimizer, 0.05)
    decoder_optimizer.step()
    encoder_optimizer.step()
    losses.append(loss.item())
    top5s.append(accuracy(scores, targets, 5))

# beam search on one image
k = 3
with torch.no_grad():
    encoder_out = encoder(images[:1])
    encoder_out = encoder_out.view(1, -1, enc_dim).expand(k, -1, enc_dim)
    k_prev_words = torch.LongTensor([[START]] * k)
    seqs = k_prev_words
    top_k_scores = torch.zeros(k, 1)
    complete_seqs, complete_seqs_scores = [], []
    step = 1
    h, c = decoder.init_hidden_state(encoder_out)
    while True:
        embeddings = decoder.embedding(k_prev_words).squeeze(1)
        awe, _ = decoder.attention(encoder_out, h)
        gate = decoder.sigmoid(decoder.f_beta(h))
        awe = gate * awe
        h, c = decoder.decode_step(torch.cat([embeddings, awe], dim=1), (h, c))
        scores = F.log_softmax(decoder.fc(h), dim=1)
        scores = top_k_scores.expand_as(scores) + scores
        if step == 1:
            top_k_scores, top_k_words = scores[0].topk(k, 0, True, True)
        else:
            top_k_scores, top_k_words = scores.view(-1).topk(k, 0, True, True)
        prev_word_inds = top_k_words // vocab_size
        next_word_inds = top_k_words % vocab_size
        seqs = torch.cat([seqs[prev_word_inds], next_word_inds.unsqueeze(1)], dim=1)
        incomplete_inds = [ind for ind, next_word in enumerate(next_word_inds) if next_word != END]
        complete_inds = list(set(range(len(next_word_inds))) - set(incomplete_inds))
        if len(complete_inds) > 0:
            complete_seqs.extend(seqs[complete_inds].tolist())
            complete_seqs_scores.extend(top_k_scores[complete_inds])
        k -= len(complete_inds)
        if k == 0:
            break
        seqs = seqs[incomplete_inds]
        h = h[prev_word_inds[incomplete_inds]]
        c = c[prev_word_inds[incomplete_inds]]
        encoder_out = encoder_out[prev_word_inds[incomplete_inds]]
        top_k_scores = top_k_scores[incomplete_inds].unsqueeze(1)
        k_prev_words = next_word_inds[incomplete_inds].unsqueeze(1)
        if step > 6:
            break
        step += 1
    if complete_seqs_scores:
        i = complete_seqs_scores.index(max(complete_seqs_scores))
        best = complete_seqs[i]
    else:
        best = seqs[0].tolist()

report(
    losses=losses,
    top5=top5s,
    best=best,
    n_complete=len(complete_seqs),
    sort_ind=sort_ind.tolist(),
    alphas=alphas[0, :2].tolist(),
)
