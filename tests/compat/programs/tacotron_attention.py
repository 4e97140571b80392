# Tacotron 2's decoder pieces as NVIDIA/tacotron2 writes them, shrunk: LinearNorm / ConvNorm
# (xavier_uniform_ with calculate_gain('tanh' / 'linear')), an encoder of Conv1d + BatchNorm1d
# blocks into a packed BiLSTM (lengths .cpu().numpy()), location-sensitive attention (a Conv1d
# over cat(previous, cumulative) attention weights, processed memory, energies masked by
# masked_fill(-inf) from get_mask_from_lengths), a Prenet whose dropout stays on (compared by
# dropout p = 0 here: training=True with p 0.0), LSTMCell attention and decoder RNNs stepped in
# a Python loop with teacher forcing, a gate (stop token) by BCEWithLogits, a tanh Postnet with
# a residual, Tacotron2Loss, the guided attention loss (a diagonal prior W_nt = 1 - exp(-(n/N -
# t/T)^2 / 2g^2) masked to the lengths), and greedy inference stopping on sigmoid(gate) > 0.5.
# Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(51)
N_SYM, EMB, N_MEL, ATT_RNN, DEC_RNN, ATT_DIM, PRENET = 10, 16, 6, 24, 24, 12, 12


class LinearNorm(torch.nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, w_init_gain="linear"):
        super(LinearNorm, self).__init__()
        self.linear_layer = torch.nn.Linear(in_dim, out_dim, bias=bias)
        torch.nn.init.xavier_uniform_(
            self.linear_layer.weight, gain=torch.nn.init.calculate_gain(w_init_gain)
        )

    def forward(self, x):
        return self.linear_layer(x)


class ConvNorm(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=1,
        stride=1,
        padding=None,
        dilation=1,
        bias=True,
        w_init_gain="linear",
    ):
        super(ConvNorm, self).__init__()
        if padding is None:
            assert kernel_size % 2 == 1
            padding = int(dilation * (kernel_size - 1) / 2)
        self.conv = torch.nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )
        torch.nn.init.xavier_uniform_(
            self.conv.weight, gain=torch.nn.init.calculate_gain(w_init_gain)
        )

    def forward(self, signal):
        return self.conv(signal)


def get_mask_from_lengths(lengths):
    max_len = torch.max(lengths).item()
    ids = torch.arange(0, max_len, out=torch.LongTensor(max_len))
    return ids < lengths.unsqueeze(1)


class LocationLayer(nn.Module):
    def __init__(self, n_filters=4, kernel_size=5):
        super(LocationLayer, self).__init__()
        padding = int((kernel_size - 1) / 2)
        self.location_conv = ConvNorm(
            2, n_filters, kernel_size=kernel_size, padding=padding, bias=False, stride=1, dilation=1
        )
        self.location_dense = LinearNorm(n_filters, ATT_DIM, bias=False, w_init_gain="tanh")

    def forward(self, attention_weights_cat):
        processed_attention = self.location_conv(attention_weights_cat)
        processed_attention = processed_attention.transpose(1, 2)
        return self.location_dense(processed_attention)


class Attention(nn.Module):
    def __init__(self):
        super(Attention, self).__init__()
        self.query_layer = LinearNorm(ATT_RNN, ATT_DIM, bias=False, w_init_gain="tanh")
        self.memory_layer = LinearNorm(EMB, ATT_DIM, bias=False, w_init_gain="tanh")
        self.v = LinearNorm(ATT_DIM, 1, bias=False)
        self.location_layer = LocationLayer()
        self.score_mask_value = -float("inf")

    def get_alignment_energies(self, query, processed_memory, attention_weights_cat):
        processed_query = self.query_layer(query.unsqueeze(1))
        processed_attention_weights = self.location_layer(attention_weights_cat)
        energies = self.v(
            torch.tanh(processed_query + processed_attention_weights + processed_memory)
        )
        return energies.squeeze(-1)

    def forward(
        self, attention_hidden_state, memory, processed_memory, attention_weights_cat, mask
    ):
        alignment = self.get_alignment_energies(
            attention_hidden_state, processed_memory, attention_weights_cat
        )
        if mask is not None:
            alignment.data.masked_fill_(mask, self.score_mask_value)
        attention_weights = F.softmax(alignment, dim=1)
        attention_context = torch.bmm(attention_weights.unsqueeze(1), memory).squeeze(1)
        return attention_context, attention_weights


class Prenet(nn.Module):
    def __init__(self, in_dim, sizes):
        super(Prenet, self).__init__()
        in_sizes = [in_dim] + sizes[:-1]
        self.layers = nn.ModuleList(
            [
                LinearNorm(in_size, out_size, bias=False)
                for (in_size, out_size) in zip(in_sizes, sizes)
            ]
        )
        self.p = 0.0  # 0.5 in Tacotron 2; dropout's draws differ between libraries

    def forward(self, x):
        for linear in self.layers:
            x = F.dropout(F.relu(linear(x)), p=self.p, training=True)
        return x


class Tacotron2(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(N_SYM, EMB)
        # no bias in front of a BatchNorm: its gradient is 0 up to rounding, which Adam would make
        # into full-size steps that the eval-mode running statistics then show
        self.convs = nn.ModuleList(
            [
                nn.Sequential(
                    ConvNorm(EMB, EMB, kernel_size=3, bias=False, w_init_gain="relu"),
                    nn.BatchNorm1d(EMB),
                )
                for _ in range(2)
            ]
        )
        self.lstm = nn.LSTM(EMB, EMB // 2, 1, batch_first=True, bidirectional=True)
        self.prenet = Prenet(N_MEL, [PRENET, PRENET])
        self.attention_rnn = nn.LSTMCell(PRENET + EMB, ATT_RNN)
        self.attention_layer = Attention()
        self.decoder_rnn = nn.LSTMCell(ATT_RNN + EMB, DEC_RNN, 1)
        self.linear_projection = LinearNorm(DEC_RNN + EMB, N_MEL)
        self.gate_layer = LinearNorm(DEC_RNN + EMB, 1, bias=True, w_init_gain="sigmoid")
        self.postnet = nn.Sequential(
            ConvNorm(N_MEL, 8, kernel_size=3, bias=False, w_init_gain="tanh"),
            nn.BatchNorm1d(8),
            nn.Tanh(),
            ConvNorm(8, N_MEL, kernel_size=3, bias=False),
            nn.BatchNorm1d(N_MEL),
        )

    def encode(self, text, lengths):
        x = self.embedding(text).transpose(1, 2)
        for conv in self.convs:
            x = F.dropout(F.relu(conv(x)), 0.0, self.training)
        x = x.transpose(1, 2)
        input_lengths = lengths.cpu().numpy()
        x = nn.utils.rnn.pack_padded_sequence(x, input_lengths, batch_first=True)
        self.lstm.flatten_parameters()
        outputs, _ = self.lstm(x)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
        return outputs

    def init_states(self, memory, mask):
        B, MAX_TIME = memory.size(0), memory.size(1)
        self.attention_hidden = memory.new_zeros(B, ATT_RNN)
        self.attention_cell = memory.new_zeros(B, ATT_RNN)
        self.decoder_hidden = memory.new_zeros(B, DEC_RNN)
        self.decoder_cell = memory.new_zeros(B, DEC_RNN)
        self.attention_weights = memory.new_zeros(B, MAX_TIME)
        self.attention_weights_cum = memory.new_zeros(B, MAX_TIME)
        self.attention_context = memory.new_zeros(B, EMB)
        self.memory = memory
        self.processed_memory = self.attention_layer.memory_layer(memory)
        self.mask = mask

    def decode(self, decoder_input):
        cell_input = torch.cat((decoder_input, self.attention_context), -1)
        self.attention_hidden, self.attention_cell = self.attention_rnn(
            cell_input, (self.attention_hidden, self.attention_cell)
        )
        attention_weights_cat = torch.cat(
            (self.attention_weights.unsqueeze(1), self.attention_weights_cum.unsqueeze(1)), dim=1
        )
        self.attention_context, self.attention_weights = self.attention_layer(
            self.attention_hidden,
            self.memory,
            self.processed_memory,
            attention_weights_cat,
            self.mask,
        )
        self.attention_weights_cum += self.attention_weights
        decoder_input = torch.cat((self.attention_hidden, self.attention_context), -1)
        self.decoder_hidden, self.decoder_cell = self.decoder_rnn(
            decoder_input, (self.decoder_hidden, self.decoder_cell)
        )
        hidden_context = torch.cat((self.decoder_hidden, self.attention_context), dim=1)
        return (
            self.linear_projection(hidden_context),
            self.gate_layer(hidden_context),
            self.attention_weights,
        )

    def forward(self, text, text_lengths, mels):
        memory = self.encode(text, text_lengths)
        self.init_states(memory, ~get_mask_from_lengths(text_lengths))
        decoder_input = memory.new_zeros(1, memory.size(0), N_MEL)
        decoder_inputs = torch.cat((decoder_input, mels.permute(2, 0, 1)), dim=0)
        decoder_inputs = self.prenet(decoder_inputs)
        mel_outputs, gate_outputs, alignments = [], [], []
        while len(mel_outputs) < decoder_inputs.size(0) - 1:
            mel_output, gate_output, attention_weights = self.decode(
                decoder_inputs[len(mel_outputs)]
            )
            mel_outputs += [mel_output.squeeze(1)]
            gate_outputs += [gate_output.squeeze(1)]
            alignments += [attention_weights]
        mel_outputs = torch.stack(mel_outputs).transpose(0, 1).transpose(1, 2).contiguous()
        gate_outputs = torch.stack(gate_outputs).transpose(0, 1).contiguous()
        alignments = torch.stack(alignments).transpose(0, 1)
        return mel_outputs, mel_outputs + self.postnet(mel_outputs), gate_outputs, alignments


def guided_attention_loss(alignments, text_lengths, mel_lengths, g=0.2):
    B, T, N = alignments.shape
    n = torch.arange(N).float().unsqueeze(0) / text_lengths.float().unsqueeze(1)  # (B, N)
    t = torch.arange(T).float().unsqueeze(0) / mel_lengths.float().unsqueeze(1)  # (B, T)
    W = 1.0 - torch.exp(-((n.unsqueeze(1) - t.unsqueeze(2)) ** 2) / (2 * g * g))
    mask = get_mask_from_lengths(mel_lengths).unsqueeze(2) & get_mask_from_lengths(
        text_lengths
    ).unsqueeze(1)
    return (alignments * W * mask).sum() / mask.sum()


model = Tacotron2()
W0 = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W0[n]))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
B, T_TEXT, T_MEL = 4, 7, 9
log = []
for step in range(6):
    text_lengths = torch.from_numpy(np.sort(rng.integers(4, T_TEXT + 1, size=B))[::-1].copy())
    text_lengths[0] = T_TEXT
    text = torch.from_numpy(rng.integers(1, N_SYM, size=(B, T_TEXT)))
    text = text * get_mask_from_lengths(text_lengths).long()
    mel_lengths = torch.from_numpy(rng.integers(5, T_MEL + 1, size=B))
    mel_lengths[1] = T_MEL
    mels = torch.from_numpy(rng.normal(size=(B, N_MEL, T_MEL)).astype(np.float32)).cumsum(2) * 0.3
    mel_mask = get_mask_from_lengths(mel_lengths)
    mels = mels * mel_mask.unsqueeze(1)
    gate_target = torch.zeros(B, T_MEL)
    gate_target[torch.arange(B), mel_lengths - 1] = 1
    mel_out, mel_post, gate_out, align = model(text, text_lengths, mels)
    mel_target = mels
    mel_loss = nn.MSELoss()(mel_out, mel_target) + nn.MSELoss()(mel_post, mel_target)
    gate_loss = nn.BCEWithLogitsLoss()(gate_out.view(-1, 1), gate_target.view(-1, 1))
    ga = guided_attention_loss(align, text_lengths, mel_lengths)
    loss = mel_loss + gate_loss + ga
    opt.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    log.append([mel_loss.item(), gate_loss.item(), ga.item(), grad_norm.item()])

# greedy inference, one utterance
model.eval()
with torch.no_grad():
    text = torch.tensor([[3, 5, 2, 7, 1]])
    memory = model.encode(text, torch.tensor([5]))
    model.init_states(memory, None)
    frame = memory.new_zeros(1, N_MEL)
    frames, gates = [], []
    for _ in range(12):
        mel, gate, att = model.decode(model.prenet(frame))
        frames.append(mel)
        gates.append(torch.sigmoid(gate).item())
        if torch.sigmoid(gate.data) > 0.5:
            break
        frame = mel
    inf_mel = torch.stack(frames, 2)
    inf_post = inf_mel + model.postnet(inf_mel)
report(
    losses=log,
    gates=gates,
    n_frames=len(frames),
    inf_post=inf_post.sum().item(),
    align_peak=att.argmax(1).tolist(),
    align_cum=model.attention_weights_cum.tolist(),
)
