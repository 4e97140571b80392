# pytorch/examples' time_sequence_prediction as written (condensed: fewer, shorter waves, three
# LBFGS steps): sine waves made by NumPy (T=20, L, N) and torch.save'd / torch.load'ed, a
# Sequence of two nn.LSTMCell layers stepped over input.split(1, dim=1) with
# torch.zeros(input.size(0), 51, dtype=torch.double) states, `outputs += [output]` then
# torch.cat(outputs, dim=1), a `future` loop feeding predictions back, `seq.double()`, MSELoss,
# LBFGS(lr=0.8) with a closure that prints and returns the loss, and the test loss with
# future=8 under no_grad (`y = pred.detach().numpy()`).
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from compat_helpers import reference_weights, report

np.random.seed(2)
T = 20
L = 60
N = 12
x = np.empty((N, L), "int64")
x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
data = np.sin(x / 1.0 / T).astype("float64")
torch.save(data, open("traindata.pt", "wb"))


class Sequence(nn.Module):
    def __init__(self):
        super(Sequence, self).__init__()
        self.lstm1 = nn.LSTMCell(1, 16)
        self.lstm2 = nn.LSTMCell(16, 16)
        self.linear = nn.Linear(16, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), 16, dtype=torch.double)
        c_t = torch.zeros(input.size(0), 16, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), 16, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), 16, dtype=torch.double)
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


data = torch.load("traindata.pt", weights_only=False)
input = torch.from_numpy(data[3:, :-1])
target = torch.from_numpy(data[3:, 1:])
test_input = torch.from_numpy(data[:3, :-1])
test_target = torch.from_numpy(data[:3, 1:])
seq = Sequence()
W = reference_weights(seq)
with torch.no_grad():
    for name, p in seq.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
seq.double()
criterion = nn.MSELoss()
optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
closure_losses, test_losses, futures = [], [], []
for i in range(3):

    def closure():
        optimizer.zero_grad()
        out = seq(input)
        loss = criterion(out, target)
        closure_losses.append(loss.item())
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        future = 8
        pred = seq(test_input, future=future)
        loss = criterion(pred[:, :-future], test_target)
        test_losses.append(loss.item())
        y = pred.detach().numpy()
    futures.append(y[:, -future:].tolist())
report(
    dtype=str(next(seq.parameters()).dtype).split(".")[-1],
    closure_losses=closure_losses,
    test_losses=test_losses,
    futures=futures,
)
