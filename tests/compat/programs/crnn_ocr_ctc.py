# A CRNN text recogniser as the crnn.pytorch / EasyOCR training scripts write it (condensed:
# 16x48 glyph strips drawn by NumPy): a conv stack with BatchNorm and MaxPool2d((2, 1))
# kernels that keep the width, `conv.squeeze(2).permute(2, 0, 1)` to (T, N, C), a
# BidirectionalLSTM module (nn.LSTM(bidirectional=True) + Linear over recurrent.view(T * b, h)),
# log_softmax(2) into nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True) with
# IntTensor targets concatenated and preds_size = torch.IntTensor([T] * batch_size), the
# strLabelConverter's encode / decode (greedy: collapse repeats, drop blanks, raw=False),
# Adadelta(lr=1) as the original, gradient clipping, and accuracy by exact string matches.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3232)
alphabet = "0123456789"
glyphs = rng.uniform(0, 1, (10, 16, 4)) > 0.5


def render(text):
    img = np.zeros((16, 48), dtype=np.float32)
    x = 2
    for ch in text:
        img[:, x : x + 4] = glyphs[int(ch)]
        x += 6
    return img + 0.1 * rng.standard_normal((16, 48)).astype(np.float32)


class strLabelConverter:
    def __init__(self, alphabet):
        self.alphabet = alphabet + "-"
        self.dict = {}
        for i, char in enumerate(alphabet):
            self.dict[char] = i + 1

    def encode(self, text):
        length = [len(s) for s in text]
        text = "".join(text)
        text = [self.dict[char] for char in text]
        return (torch.IntTensor(text), torch.IntTensor(length))

    def decode(self, t, length, raw=False):
        if length.numel() == 1:
            length = length[0]
            assert t.numel() == length, (
                "text with length: {} does not match declared length: {}".format(t.numel(), length)
            )
            if raw:
                return "".join([self.alphabet[i - 1] for i in t])
            char_list = []
            for i in range(length):
                if t[i] != 0 and (not (i > 0 and t[i - 1] == t[i])):
                    char_list.append(self.alphabet[t[i] - 1])
            return "".join(char_list)
        texts = []
        index = 0
        for i in range(length.numel()):
            l = length[i]
            texts.append(self.decode(t[index : index + l], torch.IntTensor([l]), raw=raw))
            index += l
        return texts


class BidirectionalLSTM(nn.Module):
    def __init__(self, nIn, nHidden, nOut):
        super(BidirectionalLSTM, self).__init__()
        self.rnn = nn.LSTM(nIn, nHidden, bidirectional=True)
        self.embedding = nn.Linear(nHidden * 2, nOut)

    def forward(self, input):
        recurrent, _ = self.rnn(input)
        T, b, h = recurrent.size()
        t_rec = recurrent.view(T * b, h)
        output = self.embedding(t_rec)
        output = output.view(T, b, -1)
        return output


class CRNN(nn.Module):
    def __init__(self, imgH, nc, nclass, nh):
        super(CRNN, self).__init__()
        cnn = nn.Sequential()

        def convRelu(i, nIn, nOut, batchNormalization=False):
            cnn.add_module(
                "conv{}".format(i), nn.Conv2d(nIn, nOut, 3, 1, 1, bias=not batchNormalization)
            )
            if batchNormalization:
                cnn.add_module("batchnorm{}".format(i), nn.BatchNorm2d(nOut))
            cnn.add_module("relu{}".format(i), nn.ReLU(True))

        convRelu(0, nc, 8)
        cnn.add_module("pooling{}".format(0), nn.MaxPool2d(2, 2))
        convRelu(1, 8, 16, True)
        cnn.add_module("pooling{}".format(1), nn.MaxPool2d((2, 1), (2, 1)))
        convRelu(2, 16, 16, True)
        cnn.add_module("pooling{}".format(2), nn.MaxPool2d((2, 1), (2, 1)))
        convRelu(3, 16, 16, True)
        cnn.add_module("pooling{}".format(3), nn.MaxPool2d((2, 1), (2, 1)))
        self.cnn = cnn
        self.rnn = nn.Sequential(BidirectionalLSTM(16, nh, nh), BidirectionalLSTM(nh, nh, nclass))

    def forward(self, input):
        conv = self.cnn(input)
        b, c, h, w = conv.size()
        assert h == 1, "the height of conv must be 1"
        conv = conv.squeeze(2)
        conv = conv.permute(2, 0, 1)
        output = self.rnn(conv)
        return nn.functional.log_softmax(output, dim=2)


converter = strLabelConverter(alphabet)
nclass = len(alphabet) + 1
crnn = CRNN(16, 1, nclass, 16)
W = reference_weights(crnn)
with torch.no_grad():
    for name, p in crnn.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
criterion = nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
optimizer = torch.optim.Adadelta(crnn.parameters(), lr=1.0)
texts = ["".join(rng.choice(list(alphabet), size=int(rng.integers(3, 8)))) for _ in range(24)]
images = torch.from_numpy(np.stack([render(t) for t in texts])).unsqueeze(1)
losses = []
for epoch in range(3):
    for b in range(3):
        cpu_images = images[b * 8 : b * 8 + 8]
        cpu_texts = texts[b * 8 : b * 8 + 8]
        batch_size = cpu_images.size(0)
        t, l = converter.encode(cpu_texts)
        preds = crnn(cpu_images)
        preds_size = torch.IntTensor([preds.size(0)] * batch_size)
        cost = criterion(preds, t, preds_size, l)
        crnn.zero_grad()
        cost.backward()
        torch.nn.utils.clip_grad_norm_(crnn.parameters(), 5.0)
        optimizer.step()
        losses.append(cost.item())
crnn.eval()
with torch.no_grad():
    preds = crnn(images[:8])
    _, preds_idx = preds.max(2)
    preds_idx = preds_idx.transpose(1, 0).contiguous().view(-1)
    preds_size = torch.IntTensor([preds.size(0)] * 8)
    raw_preds = converter.decode(preds_idx.data, preds_size.data, raw=True)
    sim_preds = converter.decode(preds_idx.data, preds_size.data, raw=False)
n_correct = sum(int(p == t) for p, t in zip(sim_preds, texts[:8]))
enc = converter.encode(["123", "90"])
report(
    losses=losses,
    raw_preds=raw_preds,
    sim_preds=sim_preds,
    n_correct=n_correct,
    encoded=[enc[0].tolist(), enc[1].tolist(), str(enc[0].dtype).split(".")[-1]],
    T=int(preds.size(0)),
)
