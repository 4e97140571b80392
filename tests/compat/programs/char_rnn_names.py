# "NLP From Scratch" part 1 and 2 as the tutorials write them (condensed; names from a fixed
# list instead of the data download): unicodeToAscii by unicodedata.normalize, letterToTensor
# one-hots written by `tensor[0][letterToIndex(letter)] = 1`, lineToTensor of shape
# (len, 1, n_letters), the hand-written RNN module (i2h over torch.cat((input, hidden), 1),
# LogSoftmax), categoryFromOutput by `output.topk(1)`, training by hand:
# `p.data.add_(p.grad.data, alpha=-learning_rate)` after rnn.zero_grad(), a confusion matrix
# normalised row by row; then the generating RNN (category one-hot concatenated to the input,
# i2h / i2o / o2o, dropout, NLLLoss summed over the letters with `loss += criterion(...)` then
# `loss.backward()` once, `loss.item() / input_line_tensor.size(0)`), sampling by topv, topi.
import string
import unicodedata

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

all_letters = string.ascii_letters + " .,;'-"
n_letters = len(all_letters) + 1  # EOS


def unicodeToAscii(s):
    return "".join(
        c
        for c in unicodedata.normalize("NFD", s)
        if unicodedata.category(c) != "Mn" and c in all_letters
    )


category_lines = {
    "English": ["Abbott", "Adams", "Baker", "Clarke", "Dawson", "Fletcher"],
    "French": ["Abel", "Beaulieu", "Cécile", "Dubois", "Lefèvre", "Moreau"],
    "Italian": ["Abbadelli", "Bianchi", "Colombo", "Esposito", "Ricci", "Romano"],
    "Japanese": ["Abe", "Fujita", "Hayashi", "Kobayashi", "Nakamura", "Suzuki"],
}
category_lines = {k: [unicodeToAscii(n) for n in v] for k, v in category_lines.items()}
all_categories = list(category_lines)
n_categories = len(all_categories)


def letterToIndex(letter):
    return all_letters.find(letter)


def letterToTensor(letter):
    tensor = torch.zeros(1, n_letters)
    tensor[0][letterToIndex(letter)] = 1
    return tensor


def lineToTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = torch.tanh(self.i2h(combined))
        output = self.softmax(self.h2o(hidden))
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


n_hidden = 32
rnn = load(RNN(n_letters, n_hidden, n_categories))
input = letterToTensor("A")
hidden = torch.zeros(1, n_hidden)
output, next_hidden = rnn(input, hidden)
first_output = output.tolist()


def categoryFromOutput(output):
    top_n, top_i = output.topk(1)
    category_i = top_i[0].item()
    return all_categories[category_i], category_i


rng = np.random.default_rng(7)


def randomTrainingExample():
    category = all_categories[rng.integers(n_categories)]
    lines = category_lines[category]
    line = lines[rng.integers(len(lines))]
    category_tensor = torch.tensor([all_categories.index(category)], dtype=torch.long)
    return category, line, category_tensor, lineToTensor(line)


criterion = nn.NLLLoss()
learning_rate = 0.005


def train(category_tensor, line_tensor):
    hidden = rnn.initHidden()
    rnn.zero_grad()
    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)
    loss = criterion(output, category_tensor)
    loss.backward()
    for p in rnn.parameters():
        p.data.add_(p.grad.data, alpha=-learning_rate)
    return output, loss.item()


current_loss = 0
all_losses = []
guesses = []
for it in range(1, 121):
    category, line, category_tensor, line_tensor = randomTrainingExample()
    output, loss = train(category_tensor, line_tensor)
    current_loss += loss
    if it % 20 == 0:
        guess, guess_i = categoryFromOutput(output)
        guesses.append(f"{it} {line} / {guess} {'✓' if guess == category else '✗ (%s)' % category}")
        all_losses.append(current_loss / 20)
        current_loss = 0


def evaluate(line_tensor):
    hidden = rnn.initHidden()
    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)
    return output


confusion = torch.zeros(n_categories, n_categories)
with torch.no_grad():
    for category in all_categories:
        for line in category_lines[category]:
            output = evaluate(lineToTensor(line))
            guess, guess_i = categoryFromOutput(output)
            confusion[all_categories.index(category)][guess_i] += 1
for i in range(n_categories):
    confusion[i] = confusion[i] / confusion[i].sum()
with torch.no_grad():
    output = evaluate(lineToTensor("Dovesky"))
    topv, topi = output.topk(3, 1, True)
    predictions = [[topv[0][i].item(), all_categories[topi[0][i].item()]] for i in range(3)]


class GenRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(GenRNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(n_categories + input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(n_categories + input_size + hidden_size, output_size)
        self.o2o = nn.Linear(hidden_size + output_size, output_size)
        self.dropout = nn.Dropout(0.1)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, category, input, hidden):
        input_combined = torch.cat((category, input, hidden), 1)
        hidden = self.i2h(input_combined)
        output = self.i2o(input_combined)
        output_combined = torch.cat((hidden, output), 1)
        output = self.o2o(output_combined)
        output = self.dropout(output)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


def categoryTensor(category):
    li = all_categories.index(category)
    tensor = torch.zeros(1, n_categories)
    tensor[0][li] = 1
    return tensor


def inputTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li in range(len(line)):
        tensor[li][0][all_letters.find(line[li])] = 1
    return tensor


def targetTensor(line):
    letter_indexes = [all_letters.find(line[li]) for li in range(1, len(line))]
    letter_indexes.append(n_letters - 1)  # EOS
    return torch.LongTensor(letter_indexes)


gen = load(GenRNN(n_letters, 24, n_letters))
# The tutorial trains with dropout 0.1; its masks come from each library's own generator, so
# this run trains in eval mode (dropout off) and checks train() / eval() switching only.
gen.eval()
gen_losses = []
for it in range(40):
    category = all_categories[it % n_categories]
    line = category_lines[category][(it // n_categories) % 6]
    category_tensor = categoryTensor(category)
    input_line_tensor = inputTensor(line)
    target_line_tensor = targetTensor(line)
    target_line_tensor.unsqueeze_(-1)
    hidden = gen.initHidden()
    gen.zero_grad()
    loss = torch.Tensor([0])
    for i in range(input_line_tensor.size(0)):
        output, hidden = gen(category_tensor, input_line_tensor[i], hidden)
        l = criterion(output, target_line_tensor[i])
        loss += l
    loss.backward()
    for p in gen.parameters():
        p.data.add_(p.grad.data, alpha=-0.05)
    gen_losses.append(loss.item() / input_line_tensor.size(0))


def sample(category, start_letter="A", max_length=10):
    with torch.no_grad():
        category_tensor = categoryTensor(category)
        input = inputTensor(start_letter)
        hidden = gen.initHidden()
        output_name = start_letter
        for i in range(max_length):
            output, hidden = gen(category_tensor, input[0], hidden)
            topv, topi = output.topk(1)
            topi = topi[0][0]
            if topi == n_letters - 1:
                break
            else:
                letter = all_letters[topi]
                output_name += letter
            input = inputTensor(letter)
        return output_name


samples = [sample(c, s) for c in all_categories for s in "ABC"]
report(
    first_output=first_output,
    losses=all_losses,
    guesses=guesses,
    confusion=confusion.tolist(),
    predictions=predictions,
    gen_losses=gen_losses,
    samples=samples,
    training=[gen.training, gen.dropout.training, rnn.training],
)
