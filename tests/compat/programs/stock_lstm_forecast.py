# The stock-price LSTM notebook as thousands of Kaggle / Medium posts write it (condensed, a
# synthetic price series): MinMaxScaler by hand to (-1, 1), split_data building look-back
# windows into a NumPy array, torch.from_numpy(x).type(torch.Tensor), an LSTM module whose
# forward makes h0 / c0 with torch.zeros(...).requires_grad_() and runs
# self.lstm(x, (h0.detach(), c0.detach())), out[:, -1, :], MSELoss(reduction="mean"), Adam,
# `hist[t] = loss.item()`, the GRU twin, predictions inverse-transformed, RMSE by math.sqrt of
# a NumPy mean, a multi-step recursive forecast feeding predictions back by torch.cat, and
# the `.detach().numpy()` hand-off to NumPy.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3131)
t = np.arange(160)
price = 100 + 10 * np.sin(t / 9.0) + 0.15 * t + np.cumsum(rng.normal(0, 0.4, 160))
data_min, data_max = price.min(), price.max()
scaled = (price - data_min) / (data_max - data_min) * 2 - 1


def split_data(stock, lookback):
    data_raw = stock.reshape(-1, 1)
    data = []
    for index in range(len(data_raw) - lookback):
        data.append(data_raw[index : index + lookback])
    data = np.array(data)
    test_set_size = int(np.round(0.2 * data.shape[0]))
    train_set_size = data.shape[0] - (test_set_size)
    x_train = data[:train_set_size, :-1, :]
    y_train = data[:train_set_size, -1, :]
    x_test = data[train_set_size:, :-1]
    y_test = data[train_set_size:, -1, :]
    return [x_train, y_train, x_test, y_test]


lookback = 12
x_train, y_train, x_test, y_test = split_data(scaled, lookback)
x_train = torch.from_numpy(x_train).type(torch.Tensor)
x_test = torch.from_numpy(x_test).type(torch.Tensor)
y_train_lstm = torch.from_numpy(y_train).type(torch.Tensor)
y_test_lstm = torch.from_numpy(y_test).type(torch.Tensor)
input_dim, hidden_dim, num_layers, output_dim = 1, 16, 2, 1
num_epochs = 12


class LSTM(nn.Module):
    def __init__(self, input_dim, hidden_dim, num_layers, output_dim):
        super(LSTM, self).__init__()
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_dim).requires_grad_()
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_dim).requires_grad_()
        out, (hn, cn) = self.lstm(x, (h0.detach(), c0.detach()))
        out = self.fc(out[:, -1, :])
        return out


class GRU(nn.Module):
    def __init__(self, input_dim, hidden_dim, num_layers, output_dim):
        super(GRU, self).__init__()
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.gru = nn.GRU(input_dim, hidden_dim, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_dim).requires_grad_()
        out, (hn) = self.gru(x, (h0.detach()))
        out = self.fc(out[:, -1, :])
        return out


def inverse(a):
    return (a + 1) / 2 * (data_max - data_min) + data_min


results = {}
for name, cls in (("lstm", LSTM), ("gru", GRU)):
    model = cls(
        input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim, num_layers=num_layers
    )
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    criterion = torch.nn.MSELoss(reduction="mean")
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    hist = np.zeros(num_epochs)
    for t in range(num_epochs):
        y_train_pred = model(x_train)
        loss = criterion(y_train_pred, y_train_lstm)
        hist[t] = loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    y_test_pred = model(x_test)
    pred = inverse(y_test_pred.detach().numpy())
    actual = inverse(y_test_lstm.detach().numpy())
    test_rmse = math.sqrt(np.mean((actual[:, 0] - pred[:, 0]) ** 2))
    window = x_test[-1:].clone()
    future = []
    with torch.no_grad():
        for step in range(5):
            nxt = model(window)
            future.append(float(inverse(nxt.item())))
            window = torch.cat([window[:, 1:, :], nxt.view(1, 1, 1)], dim=1)
    results[name] = {
        "hist": hist.tolist(),
        "test_rmse": test_rmse,
        "pred": pred[:4, 0].tolist(),
        "future": future,
        "dtype": str(x_train.dtype).split(".")[-1],
    }
report(results=results, shapes=[list(x_train.shape), list(y_test_lstm.shape)])
