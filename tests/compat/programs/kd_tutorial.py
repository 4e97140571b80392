# The "Knowledge Distillation" tutorial (2023) as written (condensed: 8x8 images made by NumPy
# instead of CIFAR-10, fewer epochs): DeepNN and LightNN with features / classifier
# Sequentials, train() and test() helpers with `_, predicted = torch.max(outputs.data, 1)`,
# train_knowledge_distillation with `teacher.eval()` / `student.train()`, soft targets by
# softmax(t / T) and log_softmax(s / T), the loss
# torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2),
# the cosine-loss variant (ModifiedDeepNNCosine returning flattened features pooled by
# F.avg_pool1d(..., 2) to the student's width, nn.CosineEmbeddingLoss with a target of ones),
# and the regressor variant (a Conv2d mapping the student's feature map to the teacher's,
# nn.MSELoss), each student starting from the same LightNN state_dict via load_state_dict.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from compat_helpers import reference_weights, report
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(515)
N, C = 48, 4
protos = rng.standard_normal((C, 3, 8, 8)).astype(np.float32)
ys = rng.integers(0, C, N)
xs = protos[ys] + 0.8 * rng.standard_normal((N, 3, 8, 8)).astype(np.float32)
train_loader = DataLoader(
    TensorDataset(torch.from_numpy(xs[:32]), torch.from_numpy(ys[:32])), batch_size=16
)
test_loader = DataLoader(
    TensorDataset(torch.from_numpy(xs[32:]), torch.from_numpy(ys[32:])), batch_size=16
)


class DeepNN(nn.Module):
    def __init__(self, num_classes=10):
        super(DeepNN, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 8, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(8, 8, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(32, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


class LightNN(nn.Module):
    def __init__(self, num_classes=10):
        super(LightNN, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(4, 4, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(16, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


class ModifiedDeepNNCosine(DeepNN):
    def forward(self, x):
        x = self.features(x)
        flattened_conv_output = torch.flatten(x, 1)
        x = self.classifier(flattened_conv_output)
        flattened_conv_output_after_pooling = F.avg_pool1d(flattened_conv_output, 2)
        return x, flattened_conv_output_after_pooling


class ModifiedLightNNCosine(LightNN):
    def forward(self, x):
        x = self.features(x)
        flattened_conv_output = torch.flatten(x, 1)
        x = self.classifier(flattened_conv_output)
        return x, flattened_conv_output


class ModifiedLightNNRegressor(LightNN):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.regressor = nn.Sequential(nn.Conv2d(4, 8, kernel_size=3, padding=1))

    def forward(self, x):
        x = self.features(x)
        regressor_output = self.regressor(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x, regressor_output


class ModifiedDeepNNRegressor(DeepNN):
    def forward(self, x):
        x = self.features(x)
        conv_feature_map = x
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x, conv_feature_map


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def train(model, train_loader, epochs, learning_rate):
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    model.eval()  # dropout's masks come from each library's generator: off here
    out = []
    for epoch in range(epochs):
        running_loss = 0.0
        for inputs, labels in train_loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        out.append(running_loss / len(train_loader))
    return out


def test(model, test_loader):
    model.eval()
    correct = 0
    total = 0
    logits = []
    with torch.no_grad():
        for inputs, labels in test_loader:
            outputs = model(inputs)
            if isinstance(outputs, tuple):
                outputs = outputs[0]
            logits.append(outputs)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    accuracy = 100 * correct / total
    return accuracy, torch.cat(logits)[:4].tolist()


def train_knowledge_distillation(
    teacher,
    student,
    train_loader,
    epochs,
    learning_rate,
    T,
    soft_target_loss_weight,
    ce_loss_weight,
    mode="kd",
):
    ce_loss = nn.CrossEntropyLoss()
    cosine_loss = nn.CosineEmbeddingLoss()
    mse_loss = nn.MSELoss()
    optimizer = optim.Adam(student.parameters(), lr=learning_rate)
    teacher.eval()
    student.train()
    student.eval()  # no dropout (see train)
    out = []
    for epoch in range(epochs):
        running_loss = 0.0
        for inputs, labels in train_loader:
            optimizer.zero_grad()
            if mode == "kd":
                with torch.no_grad():
                    teacher_logits = teacher(inputs)
                student_logits = student(inputs)
                soft_targets = nn.functional.softmax(teacher_logits / T, dim=-1)
                soft_prob = nn.functional.log_softmax(student_logits / T, dim=-1)
                soft_targets_loss = (
                    torch.sum(soft_targets * (soft_targets.log() - soft_prob))
                    / soft_prob.size()[0]
                    * (T**2)
                )
                label_loss = ce_loss(student_logits, labels)
                loss = soft_target_loss_weight * soft_targets_loss + ce_loss_weight * label_loss
            elif mode == "cosine":
                with torch.no_grad():
                    _, teacher_hidden_representation = teacher(inputs)
                student_logits, student_hidden_representation = student(inputs)
                hidden_rep_loss = cosine_loss(
                    student_hidden_representation,
                    teacher_hidden_representation,
                    target=torch.ones(inputs.size(0)),
                )
                label_loss = ce_loss(student_logits, labels)
                loss = soft_target_loss_weight * hidden_rep_loss + ce_loss_weight * label_loss
            else:
                with torch.no_grad():
                    _, teacher_feature_map = teacher(inputs)
                student_logits, regressor_feature_map = student(inputs)
                hidden_rep_loss = mse_loss(regressor_feature_map, teacher_feature_map)
                label_loss = ce_loss(student_logits, labels)
                loss = soft_target_loss_weight * hidden_rep_loss + ce_loss_weight * label_loss
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        out.append(running_loss / len(train_loader))
    return out


nn_deep = load(DeepNN(num_classes=C))
teacher_losses = train(nn_deep, train_loader, epochs=4, learning_rate=0.001)
test_accuracy_deep = test(nn_deep, test_loader)
nn_light = load(LightNN(num_classes=C))
new_nn_light = LightNN(num_classes=C)
new_nn_light.load_state_dict(nn_light.state_dict())
light_losses = train(nn_light, train_loader, epochs=4, learning_rate=0.001)
test_accuracy_light_ce = test(nn_light, test_loader)
total_params_deep = "{:,}".format(sum(p.numel() for p in nn_deep.parameters()))
kd_losses = train_knowledge_distillation(
    teacher=nn_deep, student=new_nn_light, train_loader=train_loader, epochs=4,
    learning_rate=0.001, T=2, soft_target_loss_weight=0.25, ce_loss_weight=0.75,
)  # fmt: skip
test_accuracy_light_ce_and_kd = test(new_nn_light, test_loader)

modified_nn_deep = ModifiedDeepNNCosine(num_classes=C)
modified_nn_deep.load_state_dict(nn_deep.state_dict())
modified_nn_light = ModifiedLightNNCosine(num_classes=C)
modified_nn_light.load_state_dict(nn_light.state_dict())
sample_input = torch.from_numpy(xs[:2])
logits, hidden_representation = modified_nn_light(sample_input)
shapes = [list(logits.shape), list(hidden_representation.shape)]
cos_losses = train_knowledge_distillation(
    modified_nn_deep, modified_nn_light, train_loader, 3, 0.001, 2, 0.25, 0.75, mode="cosine"
)
test_accuracy_light_cos = test(modified_nn_light, test_loader)

modified_nn_deep_reg = ModifiedDeepNNRegressor(num_classes=C)
modified_nn_deep_reg.load_state_dict(nn_deep.state_dict())
modified_nn_light_reg = load(ModifiedLightNNRegressor(num_classes=C))
reg_losses = train_knowledge_distillation(
    modified_nn_deep_reg, modified_nn_light_reg, train_loader, 3, 0.001, 2, 0.25, 0.75, mode="reg"
)
test_accuracy_light_reg = test(modified_nn_light_reg, test_loader)
report(
    teacher_losses=teacher_losses,
    light_losses=light_losses,
    kd_losses=kd_losses,
    cos_losses=cos_losses,
    reg_losses=reg_losses,
    accuracies=[test_accuracy_deep, test_accuracy_light_ce, test_accuracy_light_ce_and_kd,
                test_accuracy_light_cos, test_accuracy_light_reg],
    total_params_deep=total_params_deep,
    shapes=shapes,
)  # fmt: skip
