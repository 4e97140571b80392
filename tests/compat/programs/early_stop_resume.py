# The checkpointing a training script does, as the PyTorch "saving and loading a general
# checkpoint" recipe, the transfer-learning tutorial and Bjarten's early-stopping-pytorch write
# it: an EarlyStopping class that torch.saves the best state_dict, best_model_wts =
# copy.deepcopy(model.state_dict()), a checkpoint dict per epoch (epoch, model / optimizer /
# scheduler state_dicts, loss, torch.get_rng_state(), a DataLoader generator's state) written
# with torch.save and read back with torch.load(map_location=..., weights_only=True), a run
# killed after epoch 3 and resumed into fresh objects that must reproduce the uninterrupted run
# exactly: a deterministic model (NumPy-shuffled batches, BatchNorm, Adam + ReduceLROnPlateau)
# compared with PyTorch's numbers, and a model with Dropout fed by DataLoader(shuffle=True,
# generator=g) whose resumed run must equal its own uninterrupted run bit for bit.
import copy
import io
import os

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(8)

N, D = 160, 6
Xn = rng.standard_normal((N, D)).astype(np.float32)
yn = (Xn[:, 0] * 1.5 - Xn[:, 1] + 0.5 * Xn[:, 2] * Xn[:, 3] + 0.3 * rng.standard_normal(N))
X_train, y_train = torch.from_numpy(Xn[:120]), torch.from_numpy(yn[:120].astype(np.float32))
X_val, y_val = torch.from_numpy(Xn[120:]), torch.from_numpy(yn[120:].astype(np.float32))
perms = [rng.permutation(120) for _ in range(12)]


class EarlyStopping:
    """Early stops the training if validation loss doesn't improve after a given patience."""

    def __init__(self, patience=7, verbose=False, delta=0, path="checkpoint.pt", trace_func=print):
        self.patience = patience
        self.verbose = verbose
        self.counter = 0
        self.best_val_loss = None
        self.early_stop = False
        self.val_loss_min = np.inf
        self.delta = delta
        self.path = path
        self.trace_func = trace_func

    def __call__(self, val_loss, model):
        if np.isnan(val_loss):
            self.trace_func("Validation loss is NaN. Ignoring this epoch.")
            return
        if self.best_val_loss is None:
            self.best_val_loss = val_loss
            self.save_checkpoint(val_loss, model)
        elif val_loss < self.best_val_loss - self.delta:
            self.best_val_loss = val_loss
            self.save_checkpoint(val_loss, model)
            self.counter = 0
        else:
            self.counter += 1
            if self.counter >= self.patience:
                self.early_stop = True

    def save_checkpoint(self, val_loss, model):
        torch.save(model.state_dict(), self.path)
        self.val_loss_min = val_loss


def make_model(dropout=0.0):
    # no bias in front of the BatchNorm: its gradient is 0 up to rounding, which Adam scales up
    model = nn.Sequential(nn.Linear(D, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(),
                          nn.Dropout(dropout), nn.Linear(32, 1))
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def build(dropout=0.0):
    model = make_model(dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                           patience=1)
    return model, optimizer, scheduler


criterion = nn.MSELoss()


def evaluate(model):
    model.eval()
    with torch.no_grad():
        loss = criterion(model(X_val).squeeze(1), y_val).item()
    model.train()
    return loss


def run(start_epoch, epochs, model, optimizer, scheduler, stopper, ckpt_path, log):
    for epoch in range(start_epoch, epochs):
        perm = torch.from_numpy(perms[epoch])
        running = 0.0
        for i in range(0, 120, 30):
            idx = perm[i:i + 30]
            optimizer.zero_grad()
            loss = criterion(model(X_train[idx]).squeeze(1), y_train[idx])
            loss.backward()
            optimizer.step()
            running += loss.item() * len(idx)
        val = evaluate(model)
        scheduler.step(val)
        log.append([epoch, running / 120, val, optimizer.param_groups[0]["lr"]])
        torch.save({
            "epoch": epoch,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "scheduler_state_dict": scheduler.state_dict(),
            "loss": running / 120,
            "stopper": {"counter": stopper.counter, "best": stopper.best_val_loss},
        }, ckpt_path)
        stopper(val, model)
        if stopper.early_stop:
            break
    return epoch


# uninterrupted run
model, optimizer, scheduler = build()
stopper = EarlyStopping(patience=3, path="best_full.pt", delta=1e-3)
full_log = []
best_model_wts = copy.deepcopy(model.state_dict())
stop_epoch = run(0, 12, model, optimizer, scheduler, stopper, "ckpt_full.pt", full_log)
final_full = [p.detach().clone() for p in model.parameters()]

# interrupted after epoch 3 (index 2), resumed from the checkpoint into fresh objects
model, optimizer, scheduler = build()
stopper = EarlyStopping(patience=3, path="best_resume.pt", delta=1e-3)
part_log = []
run(0, 3, model, optimizer, scheduler, stopper, "ckpt_resume.pt", part_log)
del model, optimizer, scheduler
checkpoint = torch.load("ckpt_resume.pt", map_location=torch.device("cpu"), weights_only=True)
model, optimizer, scheduler = build()
model.load_state_dict(checkpoint["model_state_dict"])
optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
start_epoch = checkpoint["epoch"] + 1
stopper = EarlyStopping(patience=3, path="best_resume.pt", delta=1e-3)
stopper.counter = checkpoint["stopper"]["counter"]
stopper.best_val_loss = checkpoint["stopper"]["best"]
stopper(part_log[-1][2], model)   # the last epoch's check ran after the save
resume_log = list(part_log)
resume_stop = run(start_epoch, 12, model, optimizer, scheduler, stopper, "ckpt_resume.pt",
                  resume_log)
resumed_equal = all(torch.equal(a, b) for a, b in zip(final_full, model.parameters()))
ckpt_types = {k: type(v).__name__ for k, v in checkpoint.items()}
step_value = checkpoint["optimizer_state_dict"]["state"][0]["step"]
best_state = torch.load("best_full.pt", weights_only=True)
best_model = make_model()
best_model.load_state_dict(best_state)
best_val = evaluate(best_model)
best_keys = list(best_state.keys())
running_var = best_state["1.running_var"][:4].tolist()
nbt = best_state["1.num_batches_tracked"]

# the initial weights restored from the deepcopy
model.load_state_dict(best_model_wts)
init_val = evaluate(model)

# in memory, as a checkpoint sent over a network
buffer = io.BytesIO()
torch.save({"opt": optimizer.state_dict(), "sched": scheduler.state_dict()}, buffer)
buffer.seek(0)
mem = torch.load(buffer, weights_only=True)
mem_lr = mem["opt"]["param_groups"][0]["lr"]
mem_sched_keys = sorted(mem["sched"].keys())


# dropout and a shuffling DataLoader: the resumed run must equal the uninterrupted one
def stochastic_run(epochs, resume_from=None, save_at=None):
    model, optimizer, _ = build(dropout=0.3)
    g = torch.Generator()
    g.manual_seed(1234)
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=40, shuffle=True,
                        generator=g)
    start = 0
    if resume_from is not None:
        ck = torch.load(resume_from, weights_only=True)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optim"])
        torch.set_rng_state(ck["rng"])
        g.set_state(ck["loader_rng"])
        start = ck["epoch"] + 1
    losses = []
    for epoch in range(start, epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb).squeeze(1), yb)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        if epoch == save_at:
            torch.save({"model": model.state_dict(), "optim": optimizer.state_dict(),
                        "rng": torch.get_rng_state(), "loader_rng": g.get_state(),
                        "epoch": epoch}, "stochastic.pt")
    return losses, [p.detach().clone() for p in model.parameters()]


torch.manual_seed(42)
full_losses, full_params = stochastic_run(4, save_at=1)
torch.manual_seed(7)   # a different global state: the checkpoint must restore it
resumed_losses, resumed_params = stochastic_run(4, resume_from="stochastic.pt")
stochastic_equal = (full_losses[-len(resumed_losses):] == resumed_losses
                    and all(torch.equal(a, b) for a, b in zip(full_params, resumed_params)))

report(
    full_log=full_log,
    stop_epoch=stop_epoch,
    resume_log=resume_log,
    resume_stop=resume_stop,
    resumed_equal=resumed_equal,
    ckpt_types=ckpt_types,
    step_value=float(step_value),
    best_val_loss=stopper.best_val_loss,
    best_val=best_val,
    best_keys=best_keys,
    running_var=running_var,
    num_batches_tracked=int(nbt),
    init_val=init_val,
    mem_lr=mem_lr,
    mem_sched_keys=mem_sched_keys,
    files=sorted(f for f in os.listdir(".") if f.endswith(".pt")),
    stochastic_equal=stochastic_equal,
    n_resumed=len(resumed_losses),
    random_losses=full_losses,
)
