# The "Model ensembling" tutorial of torch.func exactly as written: the stacked parameters are
# applied through a base model moved to the "meta" device (shapes without storage), and the
# deferred-initialisation idiom of large-model code: build a model under `with
# torch.device("meta")`, then materialise it with to_empty(device="cpu") and load real weights.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import functional_call, stack_module_state, vmap

rng = np.random.default_rng(73)


class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


models = []
for i in range(3):
    m = SimpleMLP()
    W = reference_weights(m)
    m.load_state_dict({k: torch.from_numpy(v * (1 + 0.1 * i)) for k, v in W.items()})
    models.append(m)
params, buffers = stack_module_state(models)
base_model = copy.deepcopy(models[0])
base_model = base_model.to("meta")
meta_ok = base_model.fc1.weight.is_meta and base_model.fc1.weight.device.type == "meta"


def fmodel(params, buffers, x):
    return functional_call(base_model, (params, buffers), (x,))


minibatch = torch.from_numpy(rng.standard_normal((4, 6)).astype(np.float32))
preds = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)
expected = torch.stack([m(minibatch) for m in models])

with torch.device("meta"):
    big = SimpleMLP()
shape_only = [big.fc1.weight.is_meta, list(big.fc1.weight.shape)]
big = big.to_empty(device="cpu")
big.load_state_dict(models[0].state_dict())
report(
    meta_ok=meta_ok,
    preds=preds.tolist(),
    same=torch.allclose(preds, expected, atol=1e-6),
    shape_only=shape_only,
    materialised=big(minibatch).tolist(),
)
