# "Learning PyTorch with Examples", version 5: a new autograd function (LegendrePolynomial3)
# with its own forward and backward, fitted to sin(x) by hand-written gradient descent.
import math

import torch
from compat_helpers import report


class LegendrePolynomial3(torch.autograd.Function):
    """We implement our own custom autograd Function by subclassing torch.autograd.Function and
    implementing the forward and backward passes, which operate on Tensors."""

    @staticmethod
    def forward(ctx, input):
        # ctx is a context object that can be used to stash information for backward.
        ctx.save_for_backward(input)
        return 0.5 * (5 * input**3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        # grad_output is the gradient of the loss with respect to the output; we return the
        # gradient of the loss with respect to the input.
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input**2 - 1)


dtype = torch.float
device = torch.device("cpu")

x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)

# For this example we need 4 weights: y = a + b * P3(c + d * x); they must start close enough
# to the result for convergence.
a = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
b = torch.full((), -1.0, device=device, dtype=dtype, requires_grad=True)
c = torch.full((), 0.0, device=device, dtype=dtype, requires_grad=True)
d = torch.full((), 0.3, device=device, dtype=dtype, requires_grad=True)

learning_rate = 5e-6
losses = []
for t in range(1000):
    # To apply our Function, we use Function.apply; we alias it as P3.
    P3 = LegendrePolynomial3.apply

    y_pred = a + b * P3(c + d * x)

    loss = (y_pred - y).pow(2).sum()
    losses.append(loss.item())
    if t % 100 == 99:
        print(t, loss.item())

    loss.backward()

    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad

        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None

print(f"Result: y = {a.item()} + {b.item()} * P3({c.item()} + {d.item()} x)")
report(losses=losses, coefficients=[a.item(), b.item(), c.item(), d.item()])
