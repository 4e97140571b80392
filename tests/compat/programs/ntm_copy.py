# A Neural Turing Machine (Graves et al. 2014) on the copy task, in the shape of the most used
# PyTorch implementation (loudinthecloud/pytorch-ntm, our own condensed rewrite): a memory
# bank kept as a buffer (`torch.Tensor(N, M)` then nn.init.uniform_), reset per batch by
# `mem_bias.clone().repeat(batch_size, 1, 1)`; content addressing by F.cosine_similarity over a
# broadcast key, interpolation, a circular shift by F.conv1d over `torch.cat([w[-1:], w, w[:1]])`
# written row by row into `torch.zeros(wg.size())`, sharpening by `** gamma`; heads that split
# a Linear's output at np.cumsum offsets (NumPy integers as slice bounds), erase / add writes by
# batched outer products; an LSTM controller whose initial state is a Parameter repeated over
# the batch, read vectors initialised from a buffer; BCE on sigmoid outputs, RMSprop(momentum,
# alpha) as the repository's train.py, clip_grad_value_, the cost in bits per sequence; then a
# DNC-style usage vector and allocation weighting (sort, cumprod(exclusive) by cat, gather of
# the inverse permutation by argsort) as dnc-pytorch writes it.
import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(2014)


def _convolve(w, s):
    """Circular convolution implementation."""
    assert s.size(0) == 3
    t = torch.cat([w[-1:], w, w[:1]])
    c = F.conv1d(t.view(1, 1, -1), s.view(1, 1, -1)).view(-1)
    return c


class NTMMemory(nn.Module):
    def __init__(self, N, M):
        super(NTMMemory, self).__init__()
        self.N = N
        self.M = M
        self.register_buffer('mem_bias', torch.Tensor(N, M))
        stdev = 1 / (np.sqrt(N + M))
        nn.init.uniform_(self.mem_bias, -stdev, stdev)

    def reset(self, batch_size):
        self.batch_size = batch_size
        self.memory = self.mem_bias.clone().repeat(batch_size, 1, 1)

    def size(self):
        return self.N, self.M

    def read(self, w):
        return torch.matmul(w.unsqueeze(1), self.memory).squeeze(1)

    def write(self, w, e, a):
        self.prev_mem = self.memory
        self.memory = torch.Tensor(self.batch_size, self.N, self.M)
        erase = torch.matmul(w.unsqueeze(-1), e.unsqueeze(1))
        add = torch.matmul(w.unsqueeze(-1), a.unsqueeze(1))
        self.memory = self.prev_mem * (1 - erase) + add

    def address(self, k, beta, g, s, gamma, w_prev):
        wc = self._similarity(k, beta)
        wg = self._interpolate(w_prev, wc, g)
        w_hat = self._shift(wg, s)
        w = self._sharpen(w_hat, gamma)
        return w

    def _similarity(self, k, beta):
        k = k.view(self.batch_size, 1, -1)
        w = F.softmax(beta * F.cosine_similarity(self.memory + 1e-16, k + 1e-16, dim=-1), dim=1)
        return w

    def _interpolate(self, w_prev, wc, g):
        return g * wc + (1 - g) * w_prev

    def _shift(self, wg, s):
        result = torch.zeros(wg.size())
        for b in range(self.batch_size):
            result[b] = _convolve(wg[b], s[b])
        return result

    def _sharpen(self, w_hat, gamma):
        w = w_hat ** gamma
        w = torch.div(w, torch.sum(w, dim=1).view(-1, 1) + 1e-16)
        return w


def _split_cols(mat, lengths):
    """Split a 2D matrix to variable length columns."""
    assert mat.size()[1] == sum(lengths), "Lengths must be summed to num columns"
    l = np.cumsum([0] + lengths)  # noqa: E741 (the repository's name)
    results = []
    for s, e in zip(l[:-1], l[1:]):
        results += [mat[:, s:e]]
    return results


class NTMHeadBase(nn.Module):
    def __init__(self, memory, controller_size):
        super(NTMHeadBase, self).__init__()
        self.memory = memory
        self.N, self.M = memory.size()
        self.controller_size = controller_size

    def _address_memory(self, k, beta, g, s, gamma, w_prev):
        k = k.clone()
        beta = F.softplus(beta)
        g = torch.sigmoid(g)
        s = F.softmax(s, dim=1)
        gamma = 1 + F.softplus(gamma)
        w = self.memory.address(k, beta, g, s, gamma, w_prev)
        return w


class NTMReadHead(NTMHeadBase):
    def __init__(self, memory, controller_size):
        super(NTMReadHead, self).__init__(memory, controller_size)
        self.read_lengths = [self.M, 1, 1, 3, 1]
        self.fc_read = nn.Linear(controller_size, sum(self.read_lengths))

    def create_new_state(self, batch_size):
        return torch.zeros(batch_size, self.N)

    def is_read_head(self):
        return True

    def forward(self, embeddings, w_prev):
        o = self.fc_read(embeddings)
        k, beta, g, s, gamma = _split_cols(o, self.read_lengths)
        w = self._address_memory(k, beta, g, s, gamma, w_prev)
        r = self.memory.read(w)
        return r, w


class NTMWriteHead(NTMHeadBase):
    def __init__(self, memory, controller_size):
        super(NTMWriteHead, self).__init__(memory, controller_size)
        self.write_lengths = [self.M, 1, 1, 3, 1, self.M, self.M]
        self.fc_write = nn.Linear(controller_size, sum(self.write_lengths))

    def create_new_state(self, batch_size):
        return torch.zeros(batch_size, self.N)

    def is_read_head(self):
        return False

    def forward(self, embeddings, w_prev):
        o = self.fc_write(embeddings)
        k, beta, g, s, gamma, e, a = _split_cols(o, self.write_lengths)
        e = torch.sigmoid(e)
        w = self._address_memory(k, beta, g, s, gamma, w_prev)
        self.memory.write(w, e, a)
        return w


class LSTMController(nn.Module):
    def __init__(self, num_inputs, num_outputs, num_layers):
        super(LSTMController, self).__init__()
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size=num_inputs, hidden_size=num_outputs,
                            num_layers=num_layers)
        self.lstm_h_bias = nn.Parameter(torch.randn(self.num_layers, 1, self.num_outputs) * 0.05)
        self.lstm_c_bias = nn.Parameter(torch.randn(self.num_layers, 1, self.num_outputs) * 0.05)

    def create_new_state(self, batch_size):
        lstm_h = self.lstm_h_bias.clone().repeat(1, batch_size, 1)
        lstm_c = self.lstm_c_bias.clone().repeat(1, batch_size, 1)
        return lstm_h, lstm_c

    def size(self):
        return self.num_inputs, self.num_outputs

    def forward(self, x, prev_state):
        x = x.unsqueeze(0)
        outp, state = self.lstm(x, prev_state)
        return outp.squeeze(0), state


class NTM(nn.Module):
    def __init__(self, num_inputs, num_outputs, controller, memory, heads):
        super(NTM, self).__init__()
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.controller = controller
        self.memory = memory
        self.heads = heads
        self.N, self.M = memory.size()
        _, self.controller_size = controller.size()
        self.num_read_heads = 0
        self.init_r = []
        for head in heads:
            if head.is_read_head():
                init_r_bias = torch.randn(1, self.M) * 0.01
                self.register_buffer("read{}_bias".format(self.num_read_heads), init_r_bias.data)
                self.init_r += [init_r_bias]
                self.num_read_heads += 1
        assert self.num_read_heads > 0, "heads list must contain at least a single read head"
        self.fc = nn.Linear(self.controller_size + self.num_read_heads * self.M, num_outputs)

    def create_new_state(self, batch_size):
        init_r = [r.clone().repeat(batch_size, 1) for r in self.init_r]
        controller_state = self.controller.create_new_state(batch_size)
        heads_state = [head.create_new_state(batch_size) for head in self.heads]
        return init_r, controller_state, heads_state

    def forward(self, x, prev_state):
        prev_reads, prev_controller_state, prev_heads_states = prev_state
        inp = torch.cat([x] + prev_reads, dim=1)
        controller_outp, controller_state = self.controller(inp, prev_controller_state)
        reads = []
        heads_states = []
        for head, prev_head_state in zip(self.heads, prev_heads_states):
            if head.is_read_head():
                r, head_state = head(controller_outp, prev_head_state)
                reads += [r]
            else:
                head_state = head(controller_outp, prev_head_state)
            heads_states += [head_state]
        inp2 = torch.cat([controller_outp] + reads, dim=1)
        o = torch.sigmoid(self.fc(inp2))
        state = (reads, controller_state, heads_states)
        return o, state


class EncapsulatedNTM(nn.Module):
    def __init__(self, num_inputs, num_outputs, controller_size, controller_layers,
                 num_heads, N, M):
        super(EncapsulatedNTM, self).__init__()
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        memory = NTMMemory(N, M)
        controller = LSTMController(num_inputs + M * num_heads, controller_size,
                                    controller_layers)
        heads = nn.ModuleList([])
        for i in range(num_heads):
            heads += [NTMReadHead(memory, controller_size), NTMWriteHead(memory, controller_size)]
        self.ntm = NTM(num_inputs, num_outputs, controller, memory, heads)
        self.memory = memory

    def init_sequence(self, batch_size):
        self.batch_size = batch_size
        self.memory.reset(batch_size)
        self.previous_state = self.ntm.create_new_state(batch_size)

    def forward(self, x=None):
        if x is None:
            x = torch.zeros(self.batch_size, self.num_inputs)
        o, self.previous_state = self.ntm(x, self.previous_state)
        return o, self.previous_state

    def calculate_num_params(self):
        num_params = 0
        for p in self.parameters():
            num_params += p.data.view(-1).size(0)
        return num_params


def dataloader(num_batches, batch_size, seq_width, min_len, max_len):
    for batch_num in range(num_batches):
        seq_len = int(rng.integers(min_len, max_len + 1))
        seq = rng.binomial(1, 0.5, (seq_len, batch_size, seq_width))
        seq = torch.from_numpy(seq)
        inp = torch.zeros(seq_len + 1, batch_size, seq_width + 1)
        inp[:seq_len, :, :seq_width] = seq
        inp[seq_len, :, seq_width] = 1.0  # delimiter in our control channel
        outp = seq.clone()
        yield batch_num + 1, inp.float(), outp.float()


def train_batch(net, criterion, optimizer, X, Y):
    optimizer.zero_grad()
    inp_seq_len = X.size(0)
    outp_seq_len, batch_size, _ = Y.size()
    net.init_sequence(batch_size)
    for i in range(inp_seq_len):
        net(X[i])
    y_out = torch.zeros(Y.size())
    for i in range(outp_seq_len):
        y_out[i], _ = net()
    loss = criterion(y_out, Y)
    loss.backward()
    clip_grads(net)
    optimizer.step()
    y_out_binarized = y_out.clone().data
    y_out_binarized.apply_(lambda x: 0 if x < 0.5 else 1)
    cost = torch.sum(torch.abs(y_out_binarized - Y.data))
    return loss.item(), cost.item() / batch_size


def clip_grads(net):
    parameters = list(filter(lambda p: p.grad is not None, net.parameters()))
    for p in parameters:
        p.grad.data.clamp_(-10, 10)


seq_width = 4
net = EncapsulatedNTM(seq_width + 1, seq_width, controller_size=24, controller_layers=1,
                      num_heads=1, N=12, M=6)
W = reference_weights(net)
with torch.no_grad():
    for name, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
    net.memory.mem_bias.copy_(torch.from_numpy(
        rng.uniform(-0.2, 0.2, size=(12, 6)).astype(np.float32)))
    net.ntm.read0_bias.copy_(torch.from_numpy(
        0.01 * rng.standard_normal((1, 6)).astype(np.float32)))

num_params = net.calculate_num_params()
init_r_aliases_buffer = bool(torch.equal(net.ntm.init_r[0], net.ntm.read0_bias))
buffer_names = sorted(name for name, _ in net.named_buffers())
criterion = nn.BCELoss()
optimizer = torch.optim.RMSprop(net.parameters(), momentum=0.9, alpha=0.95, lr=1e-3)

losses, costs = [], []
for batch_num, x, y in dataloader(12, 4, seq_width, 2, 5):
    loss, cost = train_batch(net, criterion, optimizer, x, y)
    losses.append(loss)
    costs.append(cost)

# inspect the addressing on a fresh sequence, as the notebook does
with torch.no_grad():
    x = torch.zeros(4, 1, seq_width + 1)
    x[:3, 0, :seq_width] = torch.from_numpy(rng.binomial(1, 0.5, (3, seq_width))).float()
    x[3, 0, seq_width] = 1.0
    net.init_sequence(1)
    read_ws, write_ws = [], []
    for i in range(4):
        o, state = net(x[i])
        reads, _, heads_states = state
        read_ws.append(heads_states[0][0].tolist())
        write_ws.append(heads_states[1][0].tolist())
    outs = [net()[0][0].tolist() for _ in range(3)]
    memory_norm = net.memory.memory.norm().item()

# a DNC-style allocation weighting (dnc-pytorch / the DeepMind paper): usage sorted ascending,
# an exclusive cumprod by cat, scattered back through the sort's inverse permutation
usage = torch.from_numpy(rng.uniform(0.0, 1.0, size=(3, 12)).astype(np.float32))
usage.requires_grad_(True)
usage_eps = 1e-6 + (1 - 1e-6) * usage
sorted_usage, indices = torch.sort(usage_eps, dim=1)
prod_sorted = torch.cumprod(torch.cat([torch.ones(3, 1), sorted_usage[:, :-1]], dim=1), dim=1)
sorted_alloc = (1 - sorted_usage) * prod_sorted
inverse = torch.argsort(indices, dim=1)
allocation = sorted_alloc.gather(1, inverse)
alloc_check = torch.zeros(3, 12).scatter(1, indices, sorted_alloc)
free_gates = torch.sigmoid(torch.linspace(-2, 2, 3)).unsqueeze(1)
retention = torch.prod(1 - free_gates * torch.stack([allocation, allocation.flip(1)]), dim=0)
(allocation.pow(2).sum() + retention.sum()).backward()

report(num_params=num_params, init_r_aliases_buffer=init_r_aliases_buffer,
       buffer_names=buffer_names, losses=losses, costs=costs,
       read_ws=read_ws, write_ws=write_ws, outs=outs, memory_norm=memory_norm,
       allocation=allocation.tolist(), same_alloc=bool(torch.equal(allocation, alloc_check)),
       retention=retention.tolist(), usage_grad=usage.grad.tolist())
