# "Learning PyTorch with Examples", version 4: a custom nn.Module and an optimizer from optim.
import math

import numpy as np
import torch
from compat_helpers import report


class Polynomial3(torch.nn.Module):
    def __init__(self):
        """Four parameters, assigned as member attributes so that the Module registers them."""
        super().__init__()
        rng = np.random.default_rng(0)
        init = rng.standard_normal(4).astype(np.float32)
        self.a = torch.nn.Parameter(torch.tensor(init[0]))
        self.b = torch.nn.Parameter(torch.tensor(init[1]))
        self.c = torch.nn.Parameter(torch.tensor(init[2]))
        self.d = torch.nn.Parameter(torch.tensor(init[3]))

    def forward(self, x):
        return self.a + self.b * x + self.c * x**2 + self.d * x**3

    def string(self):
        return (
            f"y = {self.a.item()} + {self.b.item()} x + {self.c.item()} x^2 + {self.d.item()} x^3"
        )


x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

model = Polynomial3()
print(sum(p.numel() for p in model.parameters()), "parameters")

criterion = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
losses = []
for t in range(1000):
    y_pred = model(x)

    loss = criterion(y_pred, y)
    losses.append(loss.item())
    if t % 100 == 99:
        print(t, loss.item())

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

print(f"Result: {model.string()}")
report(losses=losses, coefficients=[p.item() for p in model.parameters()])
