# Loading checkpoints written by older code, the way long-lived repositories (torchvision,
# timm, fairseq, HF) keep them loading (our own program): a module with `_version = 2` whose
# `_load_from_state_dict` override reads local_metadata["version"] and renames or reshapes old
# keys before calling super(); the state_dict's _metadata (versions per prefix) round-tripped
# through torch.save / torch.load(weights_only=True) on io.BytesIO; BatchNorm's own migration of
# version-1 checkpoints without num_batches_tracked; register_load_state_dict_pre_hook (key
# renaming, a fused qkv weight split), register_load_state_dict_post_hook clearing expected
# missing keys from the _IncompatibleKeys result, register_state_dict_post_hook dropping keys on
# save; DDP's "module." prefix removed by consume_prefix_in_state_dict_if_present;
# get_extra_state / set_extra_state; load_state_dict(strict=False) reports; assign=True keeping
# the checkpoint's tensors; state_dict(prefix=, keep_vars=True); a model and optimizer
# saved mid-run and loaded into fresh ones (weights_only=True): training resumes and must
# continue exactly as the uninterrupted run.
import io
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

rng = np.random.default_rng(8)
torch.manual_seed(0)


class Attention(nn.Module):
    """v2 keeps q, k, v as one fused Linear; v1 checkpoints have three."""

    _version = 2

    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.d = d

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        att = F.softmax(q @ k.transpose(-2, -1) / self.d**0.5, dim=-1)
        return self.proj(att @ v)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and f"{prefix}q.weight" in state_dict:
            for kind in ("weight", "bias"):
                parts = [state_dict.pop(f"{prefix}{n}.{kind}") for n in ("q", "k", "v")]
                state_dict[f"{prefix}qkv.{kind}"] = torch.cat(parts, dim=0)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class AttentionV1(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.d = d

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        att = F.softmax(q @ k.transpose(-2, -1) / self.d**0.5, dim=-1)
        return self.proj(att @ v)


class Normalizer(nn.Module):
    """Keeps running input statistics as extra state (plain Python numbers in the checkpoint)."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.clip = 3.0

    def forward(self, x):
        if self.training:
            self.count += x.shape[0]
        return x.clamp(-self.clip, self.clip)

    def get_extra_state(self):
        return {"count": self.count, "clip": self.clip}

    def set_extra_state(self, state):
        self.count = state["count"]
        self.clip = state["clip"]


def make(attn_cls, d=8):
    return nn.Sequential(
        OrderedDict(
            norm_in=Normalizer(),
            embed=nn.Linear(4, d),
            bn=nn.BatchNorm1d(5),
            attn=attn_cls(d),
            head=nn.Linear(d, 3),
        )
    )


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def batch(n=6):
    x = torch.from_numpy(rng.standard_normal((n, 5, 4)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, size=(n, 5)))
    return x, y


def step(model, opt, x, y):
    out = model(x)
    loss = F.cross_entropy(out.reshape(-1, 3), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


results = {}
# 1. an old (v1) model trained a little, saved as an old checkpoint would be
old = load(make(AttentionV1))
old_opt = torch.optim.SGD(old.parameters(), lr=0.1, momentum=0.9)
for _ in range(3):
    step(old, old_opt, *batch())
old_sd = old.state_dict()
results["old_keys"] = list(old_sd.keys())
results["metadata_prefixes"] = sorted(old_sd._metadata.keys())
results["metadata_bn_version"] = old_sd._metadata["bn"].get("version")
# pretend it was written before BatchNorm had num_batches_tracked and by a DDP-wrapped model
del old_sd["bn.num_batches_tracked"]
old_sd._metadata["bn"]["version"] = 1
ddp_sd = OrderedDict(("module." + k, v) for k, v in old_sd.items())
ddp_sd._metadata = OrderedDict(
    ("module." + k if k else "module", v) for k, v in old_sd._metadata.items()
)
buf = io.BytesIO()
torch.save({"model": ddp_sd, "epoch": 3}, buf)
buf.seek(0)
ckpt = torch.load(buf, map_location="cpu", weights_only=True)
results["ckpt_epoch"] = ckpt["epoch"]

# 2. the new model loads it: prefix consumed, qkv fused by _load_from_state_dict, BatchNorm's
#    missing num_batches_tracked filled by its own version check
new = make(Attention)
sd = ckpt["model"]
consume_prefix_in_state_dict_if_present(sd, "module.")
results["consumed_keys"] = list(sd.keys())[:4]
res = new.load_state_dict(sd)
results["strict_missing"] = list(res.missing_keys)
results["strict_unexpected"] = list(res.unexpected_keys)
results["num_batches_tracked"] = int(new.bn.num_batches_tracked)
results["extra_state"] = [new.norm_in.count, new.norm_in.clip]
x, y = batch()
old.eval()
new.eval()
with torch.no_grad():
    results["migrated_same_output"] = torch.allclose(old(x), new(x), atol=1e-6)
    results["migrated_out"] = new(x)[0].flatten().tolist()
new.train()
old.train()

# 3. hooks: a pre-hook renaming keys ("head." was "classifier."), a post-hook that forgives a
#    newly added buffer, a state_dict post-hook that drops a cache
renamed = OrderedDict((k.replace("head.", "classifier."), v) for k, v in new.state_dict().items())


def rename_pre_hook(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errs):
    for k in list(state_dict.keys()):
        if k.startswith(prefix + "classifier."):
            state_dict[k.replace("classifier.", "head.")] = state_dict.pop(k)


class WithCache(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body
        self.register_buffer("cache", torch.zeros(3))
        self.register_buffer("scale", torch.ones(1))

    def forward(self, x):
        return self.body(x) * self.scale


wrapped = WithCache(make(Attention))
wrapped.body.register_load_state_dict_pre_hook(rename_pre_hook)


def forgive_scale(module, incompatible_keys):
    if "scale" in incompatible_keys.missing_keys:
        incompatible_keys.missing_keys.remove("scale")


wrapped.register_load_state_dict_post_hook(forgive_scale)


def drop_cache(module, state_dict, prefix, local_metadata):
    state_dict.pop(prefix + "cache", None)


wrapped.register_state_dict_post_hook(drop_cache)
full = OrderedDict(("body." + k, v) for k, v in renamed.items())
full["cache"] = torch.ones(3)
res2 = wrapped.load_state_dict(full)
results["hook_missing"] = list(res2.missing_keys)
results["hook_unexpected"] = list(res2.unexpected_keys)
results["hook_saved_keys_tail"] = list(wrapped.state_dict().keys())[-4:]
res3 = wrapped.load_state_dict({"body.head.weight": torch.zeros(3, 8)}, strict=False)
results["partial_missing_count"] = len(res3.missing_keys)
results["partial_head_zero"] = wrapped.body.head.weight.abs().sum().item()
try:
    wrapped.load_state_dict({"body.head.weight": torch.zeros(4, 8)}, strict=False)
    results["shape_error"] = None
except RuntimeError as e:
    results["shape_error"] = "size mismatch" in str(e)

# 4. keep_vars / prefix / assign
kv = new.state_dict(prefix="net.", keep_vars=True)
results["keep_vars_is_param"] = isinstance(kv["net.head.weight"], nn.Parameter)
results["keep_vars_requires_grad"] = kv["net.head.weight"].requires_grad
fresh = make(Attention)
src = {k: v.clone() if torch.is_tensor(v) else v for k, v in new.state_dict().items()}
fresh.load_state_dict(src, assign=True)
results["assign_shares"] = fresh.head.bias.data_ptr() == src["head.bias"].data_ptr()
results["assign_is_param"] = isinstance(fresh.head.bias, nn.Parameter)

# 5. resume: optimizer state saved mid-run, a param group added on both sides, loaded fresh
model_a = load(make(Attention))
opt_a = torch.optim.AdamW(model_a.parameters(), lr=1e-2, weight_decay=0.05)
data = [batch() for _ in range(8)]
losses_a = [step(model_a, opt_a, *d) for d in data[:4]]
buf = io.BytesIO()
torch.save({"model": model_a.state_dict(), "opt": opt_a.state_dict()}, buf)
losses_a += [step(model_a, opt_a, *d) for d in data[4:]]

buf.seek(0)
ck = torch.load(buf, weights_only=True)
model_b = make(Attention)
model_b.load_state_dict(ck["model"])
opt_b = torch.optim.AdamW(model_b.parameters(), lr=1e-2, weight_decay=0.05)
opt_b.load_state_dict(ck["opt"])
results["opt_state_steps"] = [float(s["step"]) for s in opt_b.state.values()][:3]
losses_b = [step(model_b, opt_b, *d) for d in data[4:]]
results["losses_before"] = losses_a[:4]
results["losses_uninterrupted"] = losses_a[4:]
results["losses_resumed"] = losses_b
results["resume_exact"] = losses_a[4:] == losses_b
sd_opt = opt_b.state_dict()
results["opt_param_groups"] = [
    {k: v for k, v in g.items() if k in ("lr", "weight_decay", "params", "amsgrad")}
    for g in sd_opt["param_groups"]
]
report(**results)
