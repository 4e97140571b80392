# "Learning PyTorch with Examples", version 3: the nn package; the update is still by hand.
import math

import torch
from compat_helpers import reference_weights, report

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

# The output y is a linear function of (x, x^2, x^3): a linear layer. x.unsqueeze(-1) has shape
# (2000, 1) and p shape (3,), so broadcasting gives xx of shape (2000, 3).
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)

# Flatten(0, 1) flattens the output of the linear layer to a 1-D tensor matching y's shape.
model = torch.nn.Sequential(
    torch.nn.Linear(3, 1),
    torch.nn.Flatten(0, 1),
)
W = reference_weights(model)
with torch.no_grad():
    for name, param in model.named_parameters():
        param.copy_(torch.from_numpy(W[name]))

loss_fn = torch.nn.MSELoss(reduction="sum")

learning_rate = 1e-6
losses = []
for t in range(1000):
    y_pred = model(xx)

    loss = loss_fn(y_pred, y)
    losses.append(loss.item())
    if t % 100 == 99:
        print(t, loss.item())

    model.zero_grad()
    loss.backward()

    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad

linear_layer = model[0]
print(
    f"Result: y = {linear_layer.bias.item()} + {linear_layer.weight[:, 0].item()} x + "
    f"{linear_layer.weight[:, 1].item()} x^2 + {linear_layer.weight[:, 2].item()} x^3"
)
report(
    losses=losses,
    coefficients=[linear_layer.bias.item()] + linear_layer.weight[0].tolist(),
    # float32 x to an int64 power stays float32 (torch.result_type)
    float32=[xx.dtype == torch.float32, y_pred.dtype == torch.float32, loss.dtype == torch.float],
)
