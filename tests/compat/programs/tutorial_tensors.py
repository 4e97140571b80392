# "Learning PyTorch with Examples", version 1: tensors and a hand-written backward pass.
# A third-order polynomial fitted to sin(x) by gradient descent; the gradients are derived by
# hand. (Our own rewrite of the tutorial's shape; the random start comes from NumPy so that
# every library starts from the same coefficients.)
import math

import numpy as np
import torch
from compat_helpers import report

dtype = torch.float
device = torch.device("cpu")
# device = torch.device("cuda:0")  # uncomment to run on a GPU

# Input and output data
x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)

# Randomly initialised weights
rng = np.random.default_rng(0)
a, b, c, d = (torch.tensor(v, device=device, dtype=dtype) for v in rng.standard_normal(4))

learning_rate = 1e-6
losses = []
for t in range(1000):
    # Forward pass: predicted y
    y_pred = a + b * x + c * x**2 + d * x**3

    # Compute and print loss
    loss = (y_pred - y).pow(2).sum().item()
    losses.append(loss)
    if t % 100 == 99:
        print(t, loss)

    # Backprop to compute gradients of a, b, c, d with respect to loss
    grad_y_pred = 2.0 * (y_pred - y)
    grad_a = grad_y_pred.sum()
    grad_b = (grad_y_pred * x).sum()
    grad_c = (grad_y_pred * x**2).sum()
    grad_d = (grad_y_pred * x**3).sum()

    # Update weights using gradient descent
    a -= learning_rate * grad_a
    b -= learning_rate * grad_b
    c -= learning_rate * grad_c
    d -= learning_rate * grad_d

print(f"Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3")
report(losses=losses, coefficients=[a.item(), b.item(), c.item(), d.item()])
