# A typical training loop over a custom Dataset with DataLoader worker processes, a train /
# validation split, a checkpoint saved with torch.save and resumed with torch.load (model and
# optimizer state), and a shuffled loader. Our own program in the shape of the PyTorch
# "Datasets & DataLoaders", "Optimizing Model Parameters" and "Saving and Loading" tutorials.
import os

import numpy as np
import torch
from compat_helpers import reference_weights, report
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset


class BlobDataset(Dataset):
    """Points around four centres in 8 dimensions; the label is the centre's index."""

    def __init__(self, n, seed=0, transform=None):
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((4, 8)) * 2.0
        self.labels = rng.integers(0, 4, size=n)
        self.points = (centres[self.labels] + rng.standard_normal((n, 8))).astype(np.float32)
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        x = torch.from_numpy(self.points[idx])
        if self.transform:
            x = self.transform(x)
        return x, int(self.labels[idx])


def seed_worker(worker_id):
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(8, 32),
            nn.ReLU(),
            nn.Linear(32, 32),
            nn.ReLU(),
            nn.Linear(32, 4),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def train_loop(dataloader, model, loss_fn, optimizer, losses):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        pred = model(X)
        loss = loss_fn(pred, y)

        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        losses.append(loss.item())
        if batch % 4 == 0:
            loss, current = loss.item(), batch * batch_size + len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test_loop(dataloader, model, loss_fn):
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return test_loss, correct


def make_model():
    model = NeuralNetwork()
    W = reference_weights(model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    return model


if __name__ == "__main__":
    learning_rate = 1e-2
    batch_size = 32
    epochs = 3
    device = (
        torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
    )
    print(f"Using {device} device")

    data = BlobDataset(600, seed=0)
    train_data = Subset(data, range(0, 480))
    test_data = Subset(data, range(480, 600))
    # A fixed order from NumPy (the same in every library) through the sampler argument.
    order = np.random.default_rng(5).permutation(len(train_data)).tolist()
    train_dataloader = DataLoader(
        train_data,
        batch_size=batch_size,
        sampler=order,
        num_workers=2,
        worker_init_fn=seed_worker,
        persistent_workers=True,
        pin_memory=torch.cuda.is_available(),
    )
    test_dataloader = DataLoader(test_data, batch_size=64)

    model = make_model().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)

    losses, tests = [], []
    for t in range(epochs):
        print(f"Epoch {t + 1}\n-------------------------------")
        train_loop(train_dataloader, model, loss_fn, optimizer, losses)
        tests.append(list(test_loop(test_dataloader, model, loss_fn)))
        if t == 0:
            PATH = "model.pt"
            torch.save(
                {
                    "epoch": t,
                    "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(),
                    "loss": losses[-1],
                },
                PATH,
            )
    print("Done!")

    # Resume from the epoch-0 checkpoint into fresh objects: the next epochs repeat exactly.
    model2 = NeuralNetwork()
    optimizer2 = torch.optim.SGD(model2.parameters(), lr=learning_rate, momentum=0.9)
    checkpoint = torch.load(PATH, weights_only=True)
    model2.load_state_dict(checkpoint["model_state_dict"])
    optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
    epoch = checkpoint["epoch"]
    resumed = []
    for t in range(epoch + 1, epochs):
        train_loop(train_dataloader, model2, loss_fn, optimizer2, resumed)
    n_per_epoch = len(train_dataloader)
    assert len(resumed) == len(losses) - n_per_epoch

    # A shuffled loader seeded by a generator: each epoch visits every sample once.
    g = torch.Generator()
    g.manual_seed(0)
    shuffled = DataLoader(data, batch_size=50, shuffle=True, generator=g, drop_last=True)
    seen = []
    for X, y in shuffled:
        seen.append(y.sum().item())

    report(
        losses=losses,
        resumed=resumed,
        resume_exact=resumed == losses[n_per_epoch:],
        tests=tests,
        checkpoint_loss=checkpoint["loss"],
        n_batches=[len(train_dataloader), len(test_dataloader), len(shuffled)],
        shuffled_label_total=sum(seen),
        random_shuffled_batches=seen,
        exists=os.path.exists(PATH),
    )
