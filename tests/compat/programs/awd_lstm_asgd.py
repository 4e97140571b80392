# The AWD-LSTM language model as salesforce/awd-lstm-lm and fastai's port write it (our own
# condensed rewrite): embedded_dropout (a row mask from weight.data.new().resize_().bernoulli_()
# applied to the embedding matrix, then F.embedding with the module's padding_idx / max_norm /
# ...), LockedDropout (one mask over the time axis, built through torch.autograd.Variable),
# fastai's WeightDropout around nn.LSTM (weight_hh_l0 deleted and re-set as a plain tensor from a
# `_raw` Parameter before every forward, flatten_parameters replaced by a no-op), a stack of
# single-layer LSTMs of different sizes, tied encoder / decoder weights, batchify by narrow /
# view / t().contiguous(), variable-length BPTT with the learning rate scaled per batch,
# repackage_hidden, activation and temporal activation regularisation, clip_grad_norm_, and
# NT-ASGD: a switch from SGD to torch.optim.ASGD(t0=0, lambd=0.) when validation stops improving,
# evaluation on the averaged weights optimizer.state[p]['ax'] swapped in through p.data.
# Dropout rates are 0 in the compared run (every mask is then all ones, and each code path still
# runs; the weight-drop rate is 1e-9 instead, as F.dropout with p=0 hands back the Parameter
# itself, which setattr would register again: its mask is all ones but for a 1e-9 chance per
# weight, and 1 / (1 - 1e-9) is 1.0 in float32); a second model with rates > 0 checks the masks'
# structure.
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.autograd import Variable

rng = np.random.default_rng(5)
torch.manual_seed(1111)


def embedded_dropout(embed, words, dropout=0.1, scale=None):
    if dropout:
        mask = embed.weight.data.new().resize_((embed.weight.size(0), 1)).bernoulli_(
            1 - dropout
        ).expand_as(embed.weight) / (1 - dropout)
        masked_embed_weight = mask * embed.weight
    else:
        masked_embed_weight = embed.weight
    if scale:
        masked_embed_weight = scale.expand_as(masked_embed_weight) * masked_embed_weight

    padding_idx = embed.padding_idx
    if padding_idx is None:
        padding_idx = -1

    X = torch.nn.functional.embedding(
        words,
        masked_embed_weight,
        padding_idx,
        embed.max_norm,
        embed.norm_type,
        embed.scale_grad_by_freq,
        embed.sparse,
    )
    return X


class LockedDropout(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, dropout=0.5):
        if not self.training or not dropout:
            return x
        m = x.data.new(1, x.size(1), x.size(2)).bernoulli_(1 - dropout)
        mask = Variable(m, requires_grad=False) / (1 - dropout)
        mask = mask.expand_as(x)
        return mask * x


class WeightDropout(nn.Module):
    "A module that wraps another layer in which some weights will be replaced by 0 during training."

    def __init__(self, module, weight_p, layer_names="weight_hh_l0"):
        super().__init__()
        self.module, self.weight_p = module, weight_p
        self.layer_names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
        for layer in self.layer_names:
            # Makes a copy of the weights of the selected layers.
            w = getattr(self.module, layer)
            delattr(self.module, layer)
            self.register_parameter(f"{layer}_raw", nn.Parameter(w.data))
            setattr(self.module, layer, w.clone())
            if isinstance(self.module, (nn.RNNBase, nn.modules.rnn.RNNBase)):
                self.module.flatten_parameters = self._do_nothing

    def _setweights(self):
        "Apply dropout to the raw weights."
        for layer in self.layer_names:
            raw_w = getattr(self, f"{layer}_raw")
            if self.training:
                w = F.dropout(raw_w, p=self.weight_p)
            else:
                w = raw_w.clone()
            setattr(self.module, layer, w)

    def forward(self, *args):
        self._setweights()
        with warnings.catch_warnings():
            # To avoid the warning that comes because the weights aren't flattened.
            warnings.simplefilter("ignore", category=UserWarning)
            return self.module(*args)

    def reset(self):
        for layer in self.layer_names:
            raw_w = getattr(self, f"{layer}_raw")
            setattr(self.module, layer, raw_w.clone())
        if hasattr(self.module, "reset"):
            self.module.reset()

    def _do_nothing(self):
        pass


class RNNModel(nn.Module):
    def __init__(
        self,
        ntoken,
        ninp,
        nhid,
        nlayers,
        dropout=0.4,
        dropouth=0.3,
        dropouti=0.65,
        dropoute=0.1,
        wdrop=0.5,
    ):
        super().__init__()
        self.lockdrop = LockedDropout()
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnns = [
            nn.LSTM(ninp if l == 0 else nhid, nhid if l != nlayers - 1 else ninp, 1, dropout=0)
            for l in range(nlayers)
        ]
        self.rnns = [WeightDropout(rnn, wdrop) for rnn in self.rnns]
        self.rnns = torch.nn.ModuleList(self.rnns)
        self.decoder = nn.Linear(ninp, ntoken)
        self.decoder.weight = self.encoder.weight  # weight tying
        self.ninp, self.nhid, self.nlayers = ninp, nhid, nlayers
        self.dropout, self.dropouti, self.dropouth, self.dropoute = (
            dropout,
            dropouti,
            dropouth,
            dropoute,
        )

    def forward(self, input, hidden, return_h=False):
        emb = embedded_dropout(self.encoder, input, dropout=self.dropoute if self.training else 0)
        emb = self.lockdrop(emb, self.dropouti)

        raw_output = emb
        new_hidden, raw_outputs, outputs = [], [], []
        for l, rnn in enumerate(self.rnns):
            raw_output, new_h = rnn(raw_output, hidden[l])
            new_hidden.append(new_h)
            raw_outputs.append(raw_output)
            if l != self.nlayers - 1:
                raw_output = self.lockdrop(raw_output, self.dropouth)
                outputs.append(raw_output)
        hidden = new_hidden

        output = self.lockdrop(raw_output, self.dropout)
        outputs.append(output)

        result = output.view(output.size(0) * output.size(1), output.size(2))
        decoded = self.decoder(result)
        if return_h:
            return decoded, hidden, raw_outputs, outputs
        return decoded, hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters()).data
        return [
            (
                weight.new(1, bsz, self.nhid if l != self.nlayers - 1 else self.ninp).zero_(),
                weight.new(1, bsz, self.nhid if l != self.nlayers - 1 else self.ninp).zero_(),
            )
            for l in range(self.nlayers)
        ]


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data


def get_batch(source, i, seq_len):
    seq_len = min(seq_len, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


# corpus: a Markov chain over 30 tokens
NTOK = 30
P = rng.dirichlet(np.full(NTOK, 0.3), size=NTOK)
seq = [0]
for _ in range(1400):
    seq.append(int(rng.choice(NTOK, p=P[seq[-1]])))
ids = torch.tensor(seq, dtype=torch.long)
train_data = batchify(ids[:1100], 8)
val_data = batchify(ids[1100:], 4)

model = RNNModel(NTOK, 12, 20, 3, dropout=0, dropouth=0, dropouti=0, dropoute=0, wdrop=1e-9)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
params = list(model.parameters())
criterion = nn.CrossEntropyLoss()
bptt, lr, alpha, beta, clip, wdecay = 10, 5.0, 2.0, 1.0, 0.25, 1.2e-6


def evaluate(data_source, batch_size=4):
    model.eval()
    total_loss = 0
    hidden = model.init_hidden(batch_size)
    for i in range(0, data_source.size(0) - 1, bptt):
        data, targets = get_batch(data_source, i, bptt)
        output, hidden = model(data, hidden)
        total_loss += len(data) * criterion(output, targets).item()
        hidden = repackage_hidden(hidden)
    return total_loss / len(data_source)


def train(optimizer):
    model.train()
    hidden = model.init_hidden(8)
    batch, i, losses = 0, 0, []
    while i < train_data.size(0) - 1 - 1:
        bptt_ = bptt if rng.random() < 0.95 else bptt / 2.0
        seq_len = max(5, int(rng.normal(bptt_, 3)))
        lr2 = optimizer.param_groups[0]["lr"]
        optimizer.param_groups[0]["lr"] = lr2 * seq_len / bptt
        data, targets = get_batch(train_data, i, seq_len)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden, rnn_hs, dropped_rnn_hs = model(data, hidden, return_h=True)
        raw_loss = criterion(output, targets)
        loss = raw_loss
        # Activation Regularization
        loss = loss + sum(
            alpha * dropped_rnn_h.pow(2).mean() for dropped_rnn_h in dropped_rnn_hs[-1:]
        )
        # Temporal Activation Regularization (slowness)
        loss = loss + sum(beta * (rnn_h[1:] - rnn_h[:-1]).pow(2).mean() for rnn_h in rnn_hs[-1:])
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        optimizer.param_groups[0]["lr"] = lr2
        losses.append(raw_loss.item())
        batch += 1
        i += seq_len
    return losses


optimizer = torch.optim.SGD(params, lr=lr, weight_decay=wdecay)
best_val_loss, train_losses, val_losses, switched_at = [], [], [], None
stored_loss = 100000000
nonmono = 2
for epoch in range(1, 7):
    train_losses.append(train(optimizer))
    if "t0" in optimizer.param_groups[0]:
        tmp = {}
        for prm in model.parameters():
            tmp[prm] = prm.data.clone()
            prm.data = optimizer.state[prm]["ax"].clone()
        val_loss2 = evaluate(val_data)
        val_losses.append(val_loss2)
        for prm in model.parameters():
            prm.data = tmp[prm].clone()
    else:
        val_loss = evaluate(val_data)
        val_losses.append(val_loss)
        if val_loss < stored_loss:
            stored_loss = val_loss
        if len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono]) or epoch == 4:
            switched_at = epoch
            optimizer = torch.optim.ASGD(
                model.parameters(), lr=lr, t0=0, lambd=0.0, weight_decay=wdecay
            )
        best_val_loss.append(val_loss)

ax_norms = [optimizer.state[p]["ax"].norm().item() for p in model.parameters()]
raw_names = sorted(n for n, _ in model.named_parameters() if n.endswith("_raw"))

# rates > 0: masks are random, so only their structure is compared
drop = RNNModel(NTOK, 12, 20, 3)
drop.train()
x = train_data[:7, :3]
emb = embedded_dropout(drop.encoder, x, dropout=0.5)
rows_zero = (emb == 0).all(-1)
locked = drop.lockdrop(torch.ones(7, 3, 12), 0.5)
locked_same_over_time = bool((locked == locked[:1]).all())
out, hid = drop(x, drop.init_hidden(3))
report(
    train_losses=train_losses,
    val_losses=val_losses,
    switched_at=switched_at,
    ax_norms=ax_norms,
    raw_names=raw_names,
    n_params=sum(p.numel() for p in model.parameters()),
    tied=model.decoder.weight is model.encoder.weight,
    locked_same_over_time=locked_same_over_time,
    locked_values_ok=bool(((locked == 0) | (locked == 2)).all()),
    random_emb_rows_zero=rows_zero.sum().item(),
    dropped_out_shape=list(out.shape),
    hidden_shapes=[list(h[0].shape) for h in hid],
)
