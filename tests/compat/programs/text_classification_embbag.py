# The "Text classification with the torchtext library" tutorial as written, minus torchtext
# (condensed: a basic_english-style tokenizer by re, a vocab built from a Counter with
# "<unk>" as default index, AG_NEWS-like lines made here): text_pipeline / label_pipeline
# lambdas, collate_batch building label_list, text_list and offsets with
# torch.tensor(offsets[:-1]).cumsum(dim=0), TextClassificationModel (nn.EmbeddingBag(sparse=
# False) + fc, init_weights by uniform_ and zero_ (overwritten here by the shared weights)),
# train() with clip_grad_norm_(0.1) and SGD(lr=5), StepLR(1, gamma=0.1) applied when the
# validation accuracy stops improving, evaluate() under no_grad summing
# (predicted_label.argmax(1) == label).sum().item(), to_map_style_dataset-like lists,
# random_split replaced by a NumPy permutation, and predict() on a new headline.
import re
from collections import Counter

import numpy as np
import torch
from compat_helpers import reference_weights, report
from torch import nn
from torch.utils.data import DataLoader

rng = np.random.default_rng(3030)
topics = {
    1: "world nation government president election war minister country leaders",
    2: "sports game team season player coach win match league score",
    3: "business market stocks company shares profit bank economy prices",
    4: "science tech software computer internet research space phone data",
}
filler = "the a of to in on for with new says after over".split()
train_iter = []
for i in range(96):
    label = int(rng.integers(1, 5))
    words = list(rng.choice(topics[label].split(), size=int(rng.integers(3, 8))))
    words += list(rng.choice(filler, size=int(rng.integers(2, 6))))
    rng.shuffle(words)
    train_iter.append((label, " ".join(words).capitalize() + "."))


def tokenizer(line):
    line = line.lower()
    line = re.sub(r"([.!?,'])", r" \1 ", line)
    return line.split()


counter = Counter()
for _, text in train_iter:
    counter.update(tokenizer(text))
itos = ["<unk>"] + [w for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
stoi = {w: i for i, w in enumerate(itos)}


def vocab(tokens):
    return [stoi.get(t, 0) for t in tokens]


text_pipeline = lambda x: vocab(tokenizer(x))  # noqa: E731
label_pipeline = lambda x: int(x) - 1  # noqa: E731


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(label_pipeline(_label))
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list, text_list, offsets


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


num_class = len(set([label for (label, text) in train_iter]))
vocab_size = len(itos)
emsize = 16
model = TextClassificationModel(vocab_size, emsize, num_class)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
EPOCHS = 6
LR = 5
BATCH_SIZE = 16
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
total_accu = None
perm = rng.permutation(len(train_iter))
split_train_ = [train_iter[i] for i in perm[:72]]
split_valid_ = [train_iter[i] for i in perm[72:]]
train_dataloader = DataLoader(
    split_train_, batch_size=BATCH_SIZE, shuffle=False, collate_fn=collate_batch
)
valid_dataloader = DataLoader(
    split_valid_, batch_size=BATCH_SIZE, shuffle=False, collate_fn=collate_batch
)


def train(dataloader):
    model.train()
    total_acc, total_count = 0, 0
    losses = []
    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        losses.append(loss.item())
    return losses, total_acc / total_count


def evaluate(dataloader):
    model.eval()
    total_acc, total_count = 0, 0
    with torch.no_grad():
        for idx, (label, text, offsets) in enumerate(dataloader):
            predicted_label = model(text, offsets)
            criterion(predicted_label, label)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count


log = []
for epoch in range(1, EPOCHS + 1):
    losses, train_acc = train(train_dataloader)
    accu_val = evaluate(valid_dataloader)
    if total_accu is not None and total_accu > accu_val:
        scheduler.step()
    else:
        total_accu = accu_val
    log.append({"losses": losses, "train_acc": train_acc, "valid": accu_val,
                "lr": scheduler.get_last_lr()[0]})  # fmt: skip

ag_news_label = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tec"}


def predict(text, text_pipeline):
    with torch.no_grad():
        text = torch.tensor(text_pipeline(text))
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1, output[0].tolist()


ex_text_str = "The team won the league match after a late score by their best player."
pred, logits = predict(ex_text_str, text_pipeline)
first_batch = next(iter(train_dataloader))
report(
    log=log,
    prediction=ag_news_label[pred],
    logits=logits,
    offsets=first_batch[2].tolist(),
    vocab_size=vocab_size,
)
