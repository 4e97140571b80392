# Time-series anomaly detection with an LSTM autoencoder as the Keras-to-PyTorch tutorials
# write it (condensed; sine-wave heartbeats with injected anomalies): an Encoder (two LSTMs
# with batch_first, `x.reshape((1, self.seq_len, self.n_features))`, the hidden state
# `hidden_n.reshape((self.n_features, self.embedding_dim))`), a Decoder repeating the
# embedding over time by `x.repeat(self.seq_len, self.n_features)` then two LSTMs and a
# Linear output layer, nn.L1Loss(reduction="sum"), Adam, the best model kept by
# copy.deepcopy(model.state_dict()) on the validation loss, reconstruction losses per
# sequence, a threshold from the training losses' np.percentile, and the anomalies flagged;
# the batched variant with a TimeDistributed Linear by view.
import copy

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3535)
seq_len, n_features = 20, 1
t = np.linspace(0, 2 * np.pi, seq_len)
normal = [np.sin(t + rng.uniform(0, 0.3)) + 0.05 * rng.standard_normal(seq_len) for _ in range(24)]
anomal = [
    np.sin(t) + (np.arange(seq_len) > 12) * 1.2 + 0.05 * rng.standard_normal(seq_len)
    for _ in range(4)
]


def create_dataset(seqs):
    dataset = [torch.tensor(s).unsqueeze(1).float() for s in seqs]
    n_seq, seq_len, n_features = torch.stack(dataset).shape
    return dataset, seq_len, n_features


train_dataset, seq_len, n_features = create_dataset(normal[:16])
val_dataset, _, _ = create_dataset(normal[16:])
test_anomaly_dataset, _, _ = create_dataset(anomal)


class Encoder(nn.Module):
    def __init__(self, seq_len, n_features, embedding_dim=8):
        super(Encoder, self).__init__()
        self.seq_len, self.n_features = seq_len, n_features
        self.embedding_dim, self.hidden_dim = embedding_dim, 2 * embedding_dim
        self.rnn1 = nn.LSTM(
            input_size=n_features, hidden_size=self.hidden_dim, num_layers=1, batch_first=True
        )
        self.rnn2 = nn.LSTM(
            input_size=self.hidden_dim, hidden_size=embedding_dim, num_layers=1, batch_first=True
        )

    def forward(self, x):
        x = x.reshape((1, self.seq_len, self.n_features))
        x, (_, _) = self.rnn1(x)
        x, (hidden_n, _) = self.rnn2(x)
        return hidden_n.reshape((self.n_features, self.embedding_dim))


class Decoder(nn.Module):
    def __init__(self, seq_len, input_dim=8, n_features=1):
        super(Decoder, self).__init__()
        self.seq_len, self.input_dim = seq_len, input_dim
        self.hidden_dim, self.n_features = 2 * input_dim, n_features
        self.rnn1 = nn.LSTM(
            input_size=input_dim, hidden_size=input_dim, num_layers=1, batch_first=True
        )
        self.rnn2 = nn.LSTM(
            input_size=input_dim, hidden_size=self.hidden_dim, num_layers=1, batch_first=True
        )
        self.output_layer = nn.Linear(self.hidden_dim, n_features)

    def forward(self, x):
        x = x.repeat(self.seq_len, self.n_features)
        x = x.reshape((self.n_features, self.seq_len, self.input_dim))
        x, (hidden_n, cell_n) = self.rnn1(x)
        x, (hidden_n, cell_n) = self.rnn2(x)
        x = x.reshape((self.seq_len, self.hidden_dim))
        return self.output_layer(x)


class RecurrentAutoencoder(nn.Module):
    def __init__(self, seq_len, n_features, embedding_dim=8):
        super(RecurrentAutoencoder, self).__init__()
        self.encoder = Encoder(seq_len, n_features, embedding_dim)
        self.decoder = Decoder(seq_len, embedding_dim, n_features)

    def forward(self, x):
        x = self.encoder(x)
        x = self.decoder(x)
        return x


model = RecurrentAutoencoder(seq_len, n_features, 8)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))


def train_model(model, train_dataset, val_dataset, n_epochs):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.L1Loss(reduction="sum")
    history = dict(train=[], val=[])
    best_model_wts = copy.deepcopy(model.state_dict())
    best_loss = 10000.0
    for epoch in range(1, n_epochs + 1):
        model = model.train()
        train_losses = []
        for seq_true in train_dataset:
            optimizer.zero_grad()
            seq_pred = model(seq_true)
            loss = criterion(seq_pred, seq_true)
            loss.backward()
            optimizer.step()
            train_losses.append(loss.item())
        val_losses = []
        model = model.eval()
        with torch.no_grad():
            for seq_true in val_dataset:
                seq_pred = model(seq_true)
                loss = criterion(seq_pred, seq_true)
                val_losses.append(loss.item())
        train_loss = np.mean(train_losses)
        val_loss = np.mean(val_losses)
        history["train"].append(float(train_loss))
        history["val"].append(float(val_loss))
        if val_loss < best_loss:
            best_loss = val_loss
            best_model_wts = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_model_wts)
    return model.eval(), history


def predict(model, dataset):
    predictions, losses = [], []
    criterion = nn.L1Loss(reduction="sum")
    with torch.no_grad():
        model = model.eval()
        for seq_true in dataset:
            seq_pred = model(seq_true)
            loss = criterion(seq_pred, seq_true)
            predictions.append(seq_pred.cpu().numpy().flatten())
            losses.append(loss.item())
    return predictions, losses


model, history = train_model(model, train_dataset, val_dataset, n_epochs=4)
_, train_losses = predict(model, train_dataset)
THRESHOLD = float(np.percentile(train_losses, 95))
predictions, anomaly_losses = predict(model, test_anomaly_dataset)
_, normal_losses = predict(model, val_dataset)
correct_anomalies = sum(l > THRESHOLD for l in anomaly_losses)
false_alarms = sum(l > THRESHOLD for l in normal_losses)
report(
    history=history,
    threshold=THRESHOLD,
    anomaly_losses=anomaly_losses,
    normal_losses=normal_losses,
    correct_anomalies=int(correct_anomalies),
    false_alarms=int(false_alarms),
    prediction=predictions[0][:5].tolist(),
)
