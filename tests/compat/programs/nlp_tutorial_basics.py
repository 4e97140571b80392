# The "Deep Learning for NLP with PyTorch" tutorial set as written (our condensed rewrite of
# its four programs): a bag-of-words classifier over a word_to_ix dict (make_bow_vector's
# zeros + += 1, make_target, log_softmax + NLLLoss, SGD; `next(model.parameters())`, the
# no_grad predictions before and after training, the "creo" column read by
# `model.linear.weight[:, ix]`), the N-gram language model (trigrams as context lists,
# nn.Embedding looked up by a LongTensor then `.view((1, -1))`, losses summed per epoch by
# `total_loss += loss.item()`), the CBOW exercise (context sum of embeddings) and the LSTM
# part-of-speech tagger (prepare_sequence, `lstm(embeds.view(len(sentence), 1, -1))`,
# hidden2tag, `tag_scores.argmax(1)`), the "augmented" tagger with a character-level LSTM
# whose last hidden state is concatenated to each word embedding.
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from compat_helpers import reference_weights, report


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


data = [
    ("me gusta comer en la cafeteria".split(), "SPANISH"),
    ("Give it to me".split(), "ENGLISH"),
    ("No creo que sea una buena idea".split(), "SPANISH"),
    ("No it is not a good idea to get lost at sea".split(), "ENGLISH"),
]
test_data = [
    ("Yo creo que si".split(), "SPANISH"),
    ("it is lost on me".split(), "ENGLISH"),
]
word_to_ix = {}
for sent, _ in data + test_data:
    for word in sent:
        if word not in word_to_ix:
            word_to_ix[word] = len(word_to_ix)
VOCAB_SIZE = len(word_to_ix)
NUM_LABELS = 2
label_to_ix = {"SPANISH": 0, "ENGLISH": 1}


class BoWClassifier(nn.Module):
    def __init__(self, num_labels, vocab_size):
        super(BoWClassifier, self).__init__()
        self.linear = nn.Linear(vocab_size, num_labels)

    def forward(self, bow_vec):
        return F.log_softmax(self.linear(bow_vec), dim=1)


def make_bow_vector(sentence, word_to_ix):
    vec = torch.zeros(len(word_to_ix))
    for word in sentence:
        vec[word_to_ix[word]] += 1
    return vec.view(1, -1)


def make_target(label, label_to_ix):
    return torch.LongTensor([label_to_ix[label]])


model = load(BoWClassifier(NUM_LABELS, VOCAB_SIZE))
first_param = next(model.parameters()).shape
before = []
with torch.no_grad():
    for instance, label in test_data:
        before.append(model(make_bow_vector(instance, word_to_ix)).tolist())
creo_before = model.linear.weight[:, word_to_ix["creo"]].tolist()
loss_function = nn.NLLLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)
bow_losses = []
for epoch in range(20):
    for instance, label in data:
        model.zero_grad()
        bow_vec = make_bow_vector(instance, word_to_ix)
        target = make_target(label, label_to_ix)
        log_probs = model(bow_vec)
        loss = loss_function(log_probs, target)
        loss.backward()
        optimizer.step()
    bow_losses.append(loss.item())
after = []
with torch.no_grad():
    for instance, label in test_data:
        after.append(model(make_bow_vector(instance, word_to_ix)).tolist())
creo_after = model.linear.weight[:, word_to_ix["creo"]].tolist()

# N-gram language model
CONTEXT_SIZE = 2
EMBEDDING_DIM = 10
test_sentence = """When forty winters shall besiege thy brow,
And dig deep trenches in thy beauty's field,
Thy youth's proud livery so gazed on now,
Will be a totter'd weed of small worth held:
Then being asked, where all thy beauty lies,
Where all the treasure of thy lusty days;""".split()
ngrams = [
    ([test_sentence[i - j - 1] for j in range(CONTEXT_SIZE)], test_sentence[i])
    for i in range(CONTEXT_SIZE, len(test_sentence))
]
vocab = sorted(set(test_sentence))
word_to_ix2 = {word: i for i, word in enumerate(vocab)}


class NGramLanguageModeler(nn.Module):
    def __init__(self, vocab_size, embedding_dim, context_size):
        super(NGramLanguageModeler, self).__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.linear1 = nn.Linear(context_size * embedding_dim, 32)
        self.linear2 = nn.Linear(32, vocab_size)

    def forward(self, inputs):
        embeds = self.embeddings(inputs).view((1, -1))
        out = F.relu(self.linear1(embeds))
        out = self.linear2(out)
        log_probs = F.log_softmax(out, dim=1)
        return log_probs


losses = []
loss_function = nn.NLLLoss()
model = load(NGramLanguageModeler(len(vocab), EMBEDDING_DIM, CONTEXT_SIZE))
optimizer = optim.SGD(model.parameters(), lr=0.001)
for epoch in range(4):
    total_loss = 0
    for context, target in ngrams:
        context_idxs = torch.tensor([word_to_ix2[w] for w in context], dtype=torch.long)
        model.zero_grad()
        log_probs = model(context_idxs)
        loss = loss_function(log_probs, torch.tensor([word_to_ix2[target]], dtype=torch.long))
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    losses.append(total_loss)
beauty = model.embeddings.weight[word_to_ix2["beauty"]].tolist()


# CBOW
class CBOW(nn.Module):
    def __init__(self, vocab_size, embedding_dim):
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.linear = nn.Linear(embedding_dim, vocab_size)

    def forward(self, inputs):
        embeds = self.embeddings(inputs).sum(dim=0, keepdim=True)
        return F.log_softmax(self.linear(embeds), dim=-1)


def make_context_vector(context, word_to_ix):
    idxs = [word_to_ix[w] for w in context]
    return torch.tensor(idxs, dtype=torch.long)


cbow_data = []
for i in range(2, len(test_sentence) - 2):
    context = [
        test_sentence[i - 2],
        test_sentence[i - 1],
        test_sentence[i + 1],
        test_sentence[i + 2],
    ]
    cbow_data.append((context, test_sentence[i]))
cbow = load(CBOW(len(vocab), EMBEDDING_DIM))
opt = optim.SGD(cbow.parameters(), lr=0.05)
cbow_losses = []
for epoch in range(3):
    total = 0.0
    for context, target in cbow_data:
        opt.zero_grad()
        lp = cbow(make_context_vector(context, word_to_ix2))
        loss = F.nll_loss(lp, torch.tensor([word_to_ix2[target]]))
        loss.backward()
        opt.step()
        total += loss.item()
    cbow_losses.append(total)


# LSTM part-of-speech tagger
def prepare_sequence(seq, to_ix):
    idxs = [to_ix[w] for w in seq]
    return torch.tensor(idxs, dtype=torch.long)


training_data = [
    ("The dog ate the apple".split(), ["DET", "NN", "V", "DET", "NN"]),
    ("Everybody read that book".split(), ["NN", "V", "DET", "NN"]),
]
word_to_ix3 = {}
for sent, tags in training_data:
    for word in sent:
        if word not in word_to_ix3:
            word_to_ix3[word] = len(word_to_ix3)
tag_to_ix = {"DET": 0, "NN": 1, "V": 2}
char_to_ix = {}
for sent, _ in training_data:
    for word in sent:
        for c in word:
            char_to_ix.setdefault(c, len(char_to_ix))


class LSTMTagger(nn.Module):
    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size, char_dim=0):
        super(LSTMTagger, self).__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.char_dim = char_dim
        if char_dim:
            self.char_embeddings = nn.Embedding(len(char_to_ix), 3)
            self.char_lstm = nn.LSTM(3, char_dim)
        self.lstm = nn.LSTM(embedding_dim + char_dim, hidden_dim)
        self.hidden2tag = nn.Linear(hidden_dim, tagset_size)

    def forward(self, sentence, words=None):
        embeds = self.word_embeddings(sentence)
        if self.char_dim:
            reps = []
            for w in words:
                chars = self.char_embeddings(prepare_sequence(w, char_to_ix))
                _, (h, _) = self.char_lstm(chars.view(len(w), 1, -1))
                reps.append(h.view(-1))
            embeds = torch.cat([embeds, torch.stack(reps)], dim=1)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
        return tag_scores


tagger_results = {}
for char_dim in (0, 4):
    model = load(LSTMTagger(6, 6, len(word_to_ix3), len(tag_to_ix), char_dim))
    loss_function = nn.NLLLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    with torch.no_grad():
        inputs = prepare_sequence(training_data[0][0], word_to_ix3)
        scores0 = model(inputs, training_data[0][0]).tolist()
    tl = []
    for epoch in range(30):
        for sentence, tags in training_data:
            model.zero_grad()
            sentence_in = prepare_sequence(sentence, word_to_ix3)
            targets = prepare_sequence(tags, tag_to_ix)
            tag_scores = model(sentence_in, sentence)
            loss = loss_function(tag_scores, targets)
            loss.backward()
            optimizer.step()
        tl.append(loss.item())
    with torch.no_grad():
        inputs = prepare_sequence(training_data[0][0], word_to_ix3)
        tag_scores = model(inputs, training_data[0][0])
    tagger_results[str(char_dim)] = {
        "scores0": scores0,
        "losses": tl,
        "scores": tag_scores.tolist(),
        "pred": tag_scores.argmax(1).tolist(),
    }

report(
    first_param=list(first_param),
    before=before,
    after=after,
    creo_before=creo_before,
    creo_after=creo_after,
    bow_losses=bow_losses,
    ngram_losses=losses,
    beauty=beauty,
    cbow_losses=cbow_losses,
    tagger=tagger_results,
)
