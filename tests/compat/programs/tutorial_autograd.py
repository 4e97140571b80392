# "Learning PyTorch with Examples", version 2: autograd computes the backward pass.
import math

import numpy as np
import torch
from compat_helpers import report

dtype = torch.float
device = "cpu"
torch.set_default_device(device)

# Tensors for inputs and outputs; no gradients needed for them.
x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)

# Weights: requires_grad=True asks autograd for their gradients in backward().
rng = np.random.default_rng(0)
init = rng.standard_normal(4)
a = torch.tensor(init[0], dtype=dtype, requires_grad=True)
b = torch.tensor(init[1], dtype=dtype, requires_grad=True)
c = torch.tensor(init[2], dtype=dtype, requires_grad=True)
d = torch.tensor(init[3], dtype=dtype, requires_grad=True)

learning_rate = 1e-6
losses = []
for t in range(1000):
    y_pred = a + b * x + c * x**2 + d * x**3

    # loss is a 0-d tensor; loss.item() is its Python number.
    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())
    if t % 100 == 99:
        print(t, f"{loss:.4f}")

    loss.backward()

    # Update the weights by hand; no_grad keeps the update out of the graph.
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad

        # Zero the gradients after updating them
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None

print(f"Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3")
report(losses=losses, coefficients=[a.item(), b.item(), c.item(), d.item()])
