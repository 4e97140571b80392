"""torch.nn.utils.prune: zero a module's smallest (or random) weights through a mask.

Pruning `module.weight` moves the parameter to `weight_orig`, adds the buffer `weight_mask`
and makes `weight` a plain attribute equal to `weight_orig * weight_mask`, recomputed by a
forward pre-hook before every call, as PyTorch does: the optimizer keeps training
`weight_orig`, and pruned entries get no gradient through the product. Pruning again combines
the masks (a `PruningContainer`: the new method prunes among the entries still kept);
`remove(module, name)` makes the pruning permanent (a plain parameter again).

Methods: `l1_unstructured`, `random_unstructured`, `ln_structured` (whole slices along `dim`
by their L_n norm), `random_structured`, `global_unstructured` (one threshold over several
tensors), `custom_from_mask`, `identity`; `is_pruned` and `remove`. Among equal magnitudes
(a zero-initialised bias, an already pruned weight) the entries chosen are those PyTorch's
topk chooses (ops/tie_order.py), not the first ones.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod

import numpy as _np

from ... import backend as _backend
from ...ops.tie_order import fix_topk as _fix_topk
from ...tensor import Tensor as _Tensor

__all__ = [
    "BasePruningMethod", "CustomFromMask", "Identity", "L1Unstructured", "LnStructured",
    "PruningContainer", "RandomStructured", "RandomUnstructured", "custom_from_mask",
    "global_unstructured", "identity", "is_pruned", "l1_unstructured", "ln_structured",
    "random_structured", "random_unstructured", "remove",
]  # fmt: skip


def _arr(t) -> _np.ndarray:
    return _backend.as_numpy(t._data if isinstance(t, _Tensor) else t)


def _like(arr: _np.ndarray, ref: _Tensor) -> _Tensor:
    return _Tensor._wrap(_backend.to_device(_np.ascontiguousarray(arr, dtype=ref._data.dtype),
                                          ref.device))  # fmt: skip


def _validate_amount(amount) -> None:
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
        not isinstance(amount, numbers.Integral) and (float(amount) > 1.0 or float(amount) < 0.0)
    ):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a "
                         "non-negative integer")  # fmt: skip


def _n_to_prune(amount, size: int) -> int:
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"amount={amount} should be smaller than the number of parameters "
                             f"to prune={size}")  # fmt: skip
        return int(amount)
    return round(amount * size)


class BasePruningMethod(ABC):
    """A pruning rule: `compute_mask(t, default_mask)`; the module's forward pre-hook."""

    _tensor_name: str
    PRUNING_TYPE = "unstructured"

    def __call__(self, module, inputs) -> None:
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t, default_mask):
        """The new mask (a Tensor of t's shape) given the current one."""

    def apply_mask(self, module) -> _Tensor:
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return mask.to(orig.dtype) * orig

    @classmethod
    def apply(cls, module, name: str, *args, importance_scores=None, **kwargs):
        """Prune `module.<name>` with this method (combining with an earlier pruning)."""
        old, keys = None, []
        for k, hook in module._forward_pre_hooks.items():
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                old = hook
                keys.append(k)
        if len(keys) > 1:
            raise AssertionError(f"Avoid adding multiple pruning hooks to the same tensor {name} "
                                 f"of module {module}. Use a PruningContainer.")  # fmt: skip
        for k in keys:
            del module._forward_pre_hooks[k]
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old is not None:
            if isinstance(old, PruningContainer):
                old.add_pruning_method(method)
                method = old
            else:
                container = PruningContainer(old)
                container.add_pruning_method(method)
                method = container
        orig = getattr(module, name)
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(orig.shape):
            raise ValueError(f"importance_scores should have the same shape as parameter {name} "
                             f"of {module}")  # fmt: skip
        scores = orig if importance_scores is None else importance_scores
        if not isinstance(method, PruningContainer):
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = _like(_np.ones(tuple(orig.shape)), orig)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        mask = method.compute_mask(scores, default_mask=default_mask)
        module.register_buffer(name + "_mask", mask)
        setattr(module, name, method.apply_mask(module))
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """`t` with this method's mask applied (no module involved)."""
        scores = t if importance_scores is None else importance_scores
        if default_mask is None:
            default_mask = _like(_np.ones(tuple(t.shape)), t)
        return t * self.compute_mask(scores, default_mask=default_mask)

    def remove(self, module) -> None:
        """Make the pruning permanent: `name` becomes a plain Parameter holding the product."""
        name = self._tensor_name
        weight = self.apply_mask(module)
        module.__dict__.pop(name, None)
        orig = module._parameters[name + "_orig"]
        orig._data = weight._data.copy()
        del module._parameters[name + "_orig"]
        del module._buffers[name + "_mask"]
        setattr(module, name, orig)


class PruningContainer(BasePruningMethod):
    """Successive pruning methods of one tensor; each prunes among what the previous kept."""

    def __init__(self, *args) -> None:
        self._pruning_methods: tuple = ()
        if len(args) == 1 and not isinstance(args[0], BasePruningMethod):
            args = tuple(args[0])
        for m in args:
            self.add_pruning_method(m)
        if args:
            self._tensor_name = args[0]._tensor_name

    def add_pruning_method(self, method) -> None:
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if (
            method is not None
            and self._pruning_methods
            and (getattr(self, "_tensor_name", method._tensor_name) != method._tensor_name)
        ):
            raise ValueError("Can only add pruning methods acting on the parameter named "
                             f"'{self._tensor_name}' to PruningContainer {self}. Found "
                             f"'{method._tensor_name}'")  # fmt: skip
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        mask = _arr(default_mask).astype(_arr(t).dtype)
        tv = _arr(t)
        if method.PRUNING_TYPE == "unstructured":
            keep = mask == 1
            sub_t, sub_mask = tv[keep], mask[keep]
            partial = _arr(method.compute_mask(_like(sub_t, t), default_mask=_like(sub_mask, t)))
            new = mask.copy()
            new[keep] = partial
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need to have "
                                     "the attribute `dim` defined.")  # fmt: skip
            dim = method.dim % tv.ndim
            others = tuple(d for d in range(tv.ndim) if d != dim)
            keep_channel = mask.sum(axis=others) != 0
            slc = [slice(None)] * tv.ndim
            slc[dim] = keep_channel
            slc = tuple(slc)
            partial = _arr(method.compute_mask(_like(tv[slc], t), default_mask=_like(mask[slc], t)))
            new = mask.copy()
            new[slc] = partial
        elif method.PRUNING_TYPE == "global":
            new = _arr(method.compute_mask(t, default_mask=default_mask)).astype(mask.dtype)
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {method.PRUNING_TYPE}")
        return _like(new, t)


class Identity(BasePruningMethod):
    """Keep everything (a mask of ones)."""

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prune `amount` entries chosen at random (descent's default generator)."""

    def __init__(self, amount) -> None:
        _validate_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        from ...creation import rand_like  # noqa: PLC0415

        n = _n_to_prune(self.amount, int(_np.prod(tuple(t.shape), dtype=_np.int64)))
        mask = _arr(default_mask).copy()
        if n:
            prob = _arr(rand_like(t)).reshape(-1)
            idx = _np.argsort(-prob, kind="stable")[:n]
            mask.reshape(-1)[idx] = 0
        return _like(mask, default_mask)

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prune the `amount` entries of smallest absolute value."""

    def __init__(self, amount) -> None:
        _validate_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        n = _n_to_prune(self.amount, int(_np.prod(tuple(t.shape), dtype=_np.int64)))
        mask = _arr(default_mask).copy()
        if n:
            flat = _np.abs(_arr(t)).reshape(-1)
            idx = _np.argsort(flat, kind="stable")[:n]
            idx = _fix_topk(flat, idx, 0, n, False, True)  # PyTorch: topk(largest=False)
            mask.reshape(-1)[idx] = 0
        return _like(mask, default_mask)

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


def _structured_mask(tv: _np.ndarray, dim: int, keep) -> _np.ndarray:
    mask = _np.zeros_like(tv)
    slc = [slice(None)] * tv.ndim
    slc[dim] = keep
    mask[tuple(slc)] = 1
    return mask


class RandomStructured(BasePruningMethod):
    """Prune `amount` whole slices along `dim`, chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim: int = -1) -> None:
        _validate_amount(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        from ...creation import rand  # noqa: PLC0415

        tv = _arr(t)
        if tv.ndim == 0:
            raise ValueError("Structured pruning can only be applied to multidimensional tensors")
        dim = self.dim % tv.ndim
        size = tv.shape[dim]
        n = _n_to_prune(self.amount, size)
        if n == 0:
            return default_mask
        prob = _arr(rand(size))
        threshold = _np.sort(prob)[n - 1]
        mask = _structured_mask(tv, dim, prob > threshold) * _arr(default_mask)
        return _like(mask, default_mask)

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prune the `amount` slices along `dim` of smallest L_n norm."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim: int = -1) -> None:
        _validate_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        tv = _arr(t)
        if tv.ndim == 0:
            raise ValueError("Structured pruning can only be applied to multidimensional tensors")
        dim = self.dim % tv.ndim
        size = tv.shape[dim]
        n_prune = _n_to_prune(self.amount, size)
        if n_prune == 0:
            return default_mask
        others = tuple(d for d in range(tv.ndim) if d != dim)
        x = _np.abs(tv.astype(_np.float64))
        p = self.n
        if p in ("fro", 2):
            norm = _np.sqrt((x * x).sum(axis=others))
        elif p == _np.inf or p == "inf":
            norm = x.max(axis=others)
        elif p == -_np.inf:
            norm = x.min(axis=others)
        elif p == 0:
            norm = (x != 0).sum(axis=others).astype(_np.float64)
        else:
            norm = (x**p).sum(axis=others) ** (1.0 / p)
        if tv.dtype.kind == "f":  # PyTorch's norms are in t's dtype: ties as there
            norm = norm.astype(tv.dtype)
        keep = _np.argsort(-norm, kind="stable")[: size - n_prune]
        keep = _fix_topk(norm, keep, 0, size - n_prune, True, True)  # PyTorch: topk
        mask = _structured_mask(tv, dim, keep) * _arr(default_mask)
        return _like(mask, default_mask)

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim,
                             importance_scores=importance_scores)  # fmt: skip


class CustomFromMask(BasePruningMethod):
    """Prune where the given mask is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask) -> None:
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise AssertionError("mask and the tensor have different shapes")
        return _like(_arr(default_mask) * _arr(self.mask), default_mask)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune several tensors with one method over all their entries together (e.g. the
    smallest 20% of every listed weight, by one global threshold)."""
    if not hasattr(parameters, "__iter__") or isinstance(parameters, (str, _Tensor)):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    scores, masks, sizes = [], [], []
    for module, name in parameters:
        t = importance_scores.get((module, name), getattr(module, name))
        scores.append(_arr(t).reshape(-1))
        m = getattr(module, name + "_mask", None)
        masks.append(_np.ones(_arr(t).size, _arr(t).dtype) if m is None else _arr(m).reshape(-1))
        sizes.append(_arr(t).size)
    ref = getattr(*parameters[0])
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError('Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
                        f"Found method {pruning_method} of type {method.PRUNING_TYPE}")  # fmt: skip
    container = PruningContainer()
    container._tensor_name = "temp"
    container.add_pruning_method(method)
    all_scores, all_masks = _like(_np.concatenate(scores), ref), _like(_np.concatenate(masks), ref)
    final = _arr(container.compute_mask(all_scores, default_mask=all_masks))
    offset = 0
    for (module, name), n in zip(parameters, sizes):
        param = getattr(module, name)
        piece = final[offset : offset + n].reshape(tuple(param.shape))
        custom_from_mask(module, name, mask=_like(piece, param))
        offset += n


def remove(module, name):
    """Make the pruning of `module.<name>` permanent (see BasePruningMethod.remove)."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning "
                     "can be removed")  # fmt: skip


def is_pruned(module) -> bool:
    """Whether any submodule of `module` has a pruning hook."""
    return any(isinstance(h, BasePruningMethod)
               for m in module.modules() for h in m._forward_pre_hooks.values())  # fmt: skip
