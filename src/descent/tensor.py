"""Tensor: one backend array, `requires_grad`, `grad`, and a link to the node that made it.

Layers (STYLE.md): the engine (`autograd`, `backend`) sits below this module and the ops above
it. Tensor's operators and methods therefore call the ops through one table, `_ops`, that
`descent.ops` fills at import (see `tensor_methods.py`, which also holds the method groups that
Tensor inherits); nothing is patched onto the class from outside. The engine creates op outputs
without importing this module: `Tensor` registers itself with `autograd.register_tensor_class`
below, and every tensor's fields are set by the engine's one maker, `autograd.init_tensor`.

dtype rules: floating data defaults to float32 (even float64 NumPy arrays and Python floats,
unless `dtype=` says otherwise); a Python scalar never upcasts a tensor. The default and the
dtype spellings live in `dtypes.py`, the `device` class in `devices.py`, and PyTorch's legacy
constructors (`FloatTensor`, ...) in `legacy_tensors.py`, above this module.
"""

from __future__ import annotations

import weakref

import numpy as np

from . import autograd, backend, hooks, meta
from .devices import CPU, META, device
from .dtypes import as_dtype, default_dtype_for, dtype, get_default_dtype, scalar_type
from .dtypes import wrap_dtype as _wrap_dtype
from .errors import DescentError
from .float8 import astype as float8_astype
from .grad_fn import output_nr as _output_nr
from .grad_fn import torch_class as _torch_class
from .grad_mode import INFERENCE_DETACHED
from .grad_mode import _state as _grad_state
from .tensor_conversions import ConversionMethods
from .tensor_gap_methods import GapMethods
from .tensor_gap_methods_math import MathGapMethods2
from .tensor_gap_methods_nn import NNGapMethods
from .tensor_gap_methods_tensor import TensorGapMethods2
from .tensor_methods import MathMethods, ReductionMethods, _ops
from .tensor_methods_shape import IndexingMethods, InPlaceMethods, ShapeMethods
from .tensor_python import PythonProtocol
from .tensor_torch_methods import TorchMethods


def _to_array(data, dtype=None, device=None):
    """Backend array for `data` with descent's dtype defaults (float32 for floating data)."""
    if isinstance(data, Tensor):
        arr = data._data
    elif backend.is_cupy_array(data) or backend.is_meta(data):
        arr = data
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
            data = _nested_to_numpy(data)
        arr = np.asarray(data)
    if dtype is None:
        dt = default_dtype_for(arr)
        if arr.dtype != dt:
            arr = arr.astype(dt)
    else:
        dt = as_dtype(dtype)
        if arr.dtype != dt:
            if dt.num in _PLAIN and arr.dtype.num < 256:  # two attribute reads on this path
                arr = arr.astype(dt)
            else:
                arr = _astype_special(arr, dt, data)
    if device is not None:
        arr = backend.to_device(arr, backend.normalize_device(device))
    return arr


# NumPy's own dtype numbers (ml_dtypes' are >= 256) but uint64's: a plain astype
_PLAIN = frozenset(range(256)) - {np.dtype(np.uint64).num, np.dtype(np.ulonglong).num}


def _astype_special(arr, dt, data):
    """`_to_array`'s conversions that NumPy's astype gets wrong: to and from float8 (PyTorch's
    rules, float8.py) and to uint64 from a list whose Python ints past int64's range NumPy made
    float64 (converted from the ints themselves)."""
    if dt.num >= 256 or arr.dtype.num >= 256:
        return float8_astype(arr, dt)
    if dt.kind == "u" and arr.dtype.kind == "f" and isinstance(data, (list, tuple)):
        arr = np.array(data, dtype=object)
    return arr.astype(dt)


def _flat(data):
    for d in data:
        if isinstance(d, (list, tuple)):
            yield from _flat(d)
        else:
            yield d


def _nested_to_numpy(data):
    if isinstance(data, Tensor):
        # PyTorch reads a tensor inside a list as one number (its item, of its dtype):
        # tensor([tensor([1.]), tensor([2.])]) has shape (2,), and a tensor of several
        # elements there raises its ValueError (descent stacked them: shape (2, 1))
        if data._data.size != 1:
            raise ValueError(
                f"only one element tensors can be converted to Python scalars (a tensor of "
                f"shape {tuple(data.shape)} inside the list given to tensor(), as in PyTorch); "
                "use descent.stack to join tensors"
            )
        return backend.as_numpy(data._data).reshape(())
    if isinstance(data, (list, tuple)):
        return [_nested_to_numpy(d) for d in data]
    return data


class Size(tuple):
    """A tensor's shape, as torch.Size: a tuple of ints with `numel()`.

    `x.size()` returns one; slicing one returns one.
    """

    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    def __getitem__(self, index):
        out = tuple.__getitem__(self, index)
        return Size(out) if isinstance(index, slice) else out

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __repr__(self) -> str:
        return f"descent.Size({list(self)})"


_new_size = tuple.__new__

# NumPy ufunc -> (Tensor operator, reflected operator): `ndarray op Tensor` as Python's operator
# would run it (comparisons reflect to their mirror).
_UFUNC_OPERATORS = {
    "add": ("__add__", "__radd__"), "subtract": ("__sub__", "__rsub__"),
    "multiply": ("__mul__", "__rmul__"), "true_divide": ("__truediv__", "__rtruediv__"),
    "divide": ("__truediv__", "__rtruediv__"), "floor_divide": ("__floordiv__", "__rfloordiv__"),
    "power": ("__pow__", "__rpow__"), "remainder": ("__mod__", "__rmod__"),
    "matmul": ("__matmul__", "__rmatmul__"), "equal": ("__eq__", "__eq__"),
    "not_equal": ("__ne__", "__ne__"), "less": ("__lt__", "__gt__"),
    "less_equal": ("__le__", "__ge__"), "greater": ("__gt__", "__lt__"),
    "greater_equal": ("__ge__", "__le__"), "bitwise_and": ("__and__", "__rand__"),
    "bitwise_or": ("__or__", "__ror__"), "bitwise_xor": ("__xor__", "__rxor__"),
}  # fmt: skip
# NumPy ufunc names whose descent op is named otherwise.
_UFUNC_NAMES = {"absolute": "abs", "negative": "neg", "fabs": "abs", "conjugate": "conj"}


_UFUNC_OPERAND = "<a tensor operand>"  # _ufunc_kernel: an array of the inputs goes here


def _ufunc_kernel(*rest):
    """`ufunc(*operands, **kwargs)` on NumPy arrays (output `which` of a multi-output ufunc),
    Tensor.__array_ufunc__'s kernel for a ufunc descent has no op for (untracked.computed):
    the tensors' arrays, then the ufunc, the operands with `_UFUNC_OPERAND` in each tensor's
    place, the keyword arguments' items and `which`."""
    *arrays, ufunc, pattern, kw, which = rest
    given = iter(arrays)
    operands = [backend.as_numpy(next(given)) if x is _UFUNC_OPERAND else x for x in pattern]
    out = ufunc(*operands, **dict(kw))
    return np.asarray(out if which is None else out[which])


# Subclasses whose `.grad = g` may skip _check_assigned_grad, as a plain Tensor's, when g is a
# plain Tensor of the tensor's shape and dtype and no grad_dtype is set anywhere (the check would
# pass; with a grad_dtype set, a plain tensor's skipped it too and took a float32 gradient):
# nn.Parameter adds itself (every parameter's assignment went through the full check: the
# overhead sweep's 10 grads assigned + zero_grad took 27 us, 6.4 us without)
_GRAD_PLAIN: set = set()


def _warn_non_leaf_grad(t) -> None:
    """PyTorch's warning for `.grad` of a non-leaf tensor (is_leaf False, not retains_grad):
    backward never fills it, so the caller most likely meant the leaf."""
    retained = getattr(t._node, "retained", None)
    if retained is not None and retained() is t:
        return
    import warnings

    warnings.warn(
        "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
        "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
        "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf "
        "Tensor. If you access the non-leaf Tensor by mistake, make sure you access the leaf "
        "Tensor instead. See github.com/pytorch/pytorch/pull/30531 for more information.",
        UserWarning,
        stacklevel=3,
    )


def _check_assigned_grad(t, g) -> None:
    """`t.grad = g`: g must be a Tensor of t's shape and dtype, as in PyTorch (a wrong one
    would reach the optimizer and broadcast or cast silently there)."""
    if not isinstance(g, Tensor):
        raise TypeError(
            f"grad: assigned grad must be a Tensor or None, got {type(g).__name__}; wrap it "
            "with descent.tensor(...)"
        )
    if tuple(g.shape) != tuple(t.shape):
        raise DescentError(
            f"grad: cannot assign a gradient of shape {tuple(g.shape)} to a tensor of shape "
            f"{tuple(t.shape)}; the gradient must have the tensor's shape"
        )
    want = hooks.get_grad_dtype(t)  # the tensor's dtype unless grad_dtype says (None: any)
    if want is not None and g.dtype != want:
        raise DescentError(
            f"grad: cannot assign a gradient of dtype {g.dtype} to a tensor whose gradients are "
            f"{want} (shape {tuple(t.shape)}); cast it first, e.g. g.to({want}), or set "
            "t.grad_dtype"
        )


def _check_grad_dtype(arr, op: str = "requires_grad") -> None:
    if arr.dtype.kind not in "fcV":  # "V": bfloat16
        raise RuntimeError(
            f"{op}: only floating-point and complex tensors can require gradients, got dtype "
            f"{arr.dtype}. "
            "Convert first, e.g. tensor(data, dtype=descent.float32, requires_grad=True)"
        )


def _real_part(v: complex, ctype: str) -> float:
    """float(t) / int(t) of a complex tensor: its real part, as PyTorch's checked conversion
    (a nonzero imaginary part raises its overflow error; Python's float() refused any complex)."""
    if v.imag != 0:
        raise RuntimeError(
            f"value cannot be converted to type {ctype} without overflow (a complex tensor "
            f"with the value {v!r}: its imaginary part is not 0), as in PyTorch; take .real first"
        )
    return v.real


class Tensor(
    PythonProtocol,
    MathMethods,
    ConversionMethods,
    ReductionMethods,
    ShapeMethods,
    IndexingMethods,
    InPlaceMethods,
    TorchMethods,
    GapMethods,
    MathGapMethods2,
    TensorGapMethods2,
    NNGapMethods,
):
    """An n-dimensional array that records the operations applied to it for backward.

    Args:
        data: array-like (nested lists, NumPy/CuPy array, scalar, or Tensor).
        dtype: a descent/NumPy dtype; floating data defaults to float32.
        requires_grad: record operations on this tensor so that `backward()` fills `.grad`.
        device: 'cpu' (default) or 'cuda'.

    Gradients ACCUMULATE into `.grad` across backward calls, as in PyTorch: call
    `zero_grad()` on the optimizer or module (or set `.grad = None`) between steps.
    """

    # Slots, not a __dict__: a tensor is made per op. Every field is set by autograd.init_tensor.
    # _rg: requires_grad; _node: the Function that made it (None for a leaf); _version: bumped
    # by in-place changes (saved values are checked against it); _hooks: a leaf's hooks (a
    # non-leaf's live on its node).
    # `_data` is the backend array (NumPy or CuPy) holding the values; everything in descent
    # computes on it. `data` (below) is PyTorch's `.data`: a Tensor view of the same storage.
    # _view_base (set on views, see autograd.mark_view and mark_unrecorded_view; unset
    # elsewhere: read it with getattr) is the tensor whose memory this one views (or an
    # autograd.ViewTag: a view made under no_grad, a detach()); _views, on that tensor, its
    # marked views (id -> weak reference), whose nodes a write through one of them refreshes.
    # __dict__: users' own attributes, as on a torch.Tensor (Mamba's `p._no_weight_decay = True`,
    # Megatron's `p.sequence_parallel`); created on first assignment, so a tensor without
    # attributes costs one pointer and attribute reads of the slots above are unchanged.
    __slots__ = ("_data", "_rg", "_grad", "_node", "_version", "_hooks", "name", "_view_base",
                 "_views", "__weakref__", "__dict__")  # fmt: skip

    __array_priority__ = 1000
    # True on descent.sparse's SparseTensor: the shape functions (cat, transpose, select, ...)
    # send sparse inputs to its methods with this one class-attribute test
    _sparse_layout = False
    # True on descent.nested's NestedTensor: the few dense functions whose nested meaning is
    # structural (linear, the norms, softmax, attention, cat, ...) send it there with this test
    _nested_layout = False
    # True on an inference tensor (made under inference_mode, or a view of one), and
    # grad_mode.INFERENCE_DETACHED on its detach() / .data; set in the instance __dict__, so a
    # read on any other tensor finds this class attribute (grad_mode.py, autograd.init_tensor)
    _inference: bool | int = False
    # True on a `.data` result (set in its instance __dict__): its array is the memory of the
    # tensor it came from, so a recorded in-place op on it (`p.data.copy_(w)` where w requires
    # grad) writes the new values there, as PyTorch's shared storage does (ops/inplace._rebind)
    _data_alias = False

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on tensors give tensors, as PyTorch's do: an operator ufunc runs the
        Tensor operator (`ndarray + Tensor` is `Tensor.__radd__`, recorded for autograd), a
        ufunc descent has as an op runs that op (`np.exp(t)` is `descent.exp(t)`), any other
        computes with NumPy on the values and wraps the result (no gradient)."""
        if method != "__call__" or kwargs.get("out") is not None:
            return NotImplemented
        name = ufunc.__name__
        pair = _UFUNC_OPERATORS.get(name)
        if pair is not None and len(inputs) == 2 and not kwargs:
            a, b = inputs
            if isinstance(a, Tensor):
                return getattr(a, pair[0])(b)
            return getattr(b, pair[1])(a)
        op = getattr(_ops, _UFUNC_NAMES.get(name, name), None) if not kwargs else None
        if op is not None:
            return op(*(Tensor._wrap(np.asarray(x)) if isinstance(x, np.ndarray) else x
                        for x in inputs))  # fmt: skip
        # Through untracked.computed, so that descent.compile runs the ufunc again on each
        # call's values (made on the arrays, the result was a constant of the recording: a
        # replay returned the first call's np.cbrt(x)). NumPy arrays among the operands go in as
        # tensors, the other operands (numbers) and the keyword arguments as constants.
        computed = _ops._untracked_computed  # (ops/untracked.py, registered by descent.ops)
        ts = tuple(x if isinstance(x, Tensor) else Tensor._wrap(x) for x in inputs
                   if isinstance(x, (Tensor, np.ndarray)))  # fmt: skip
        pattern = tuple(_UFUNC_OPERAND if isinstance(x, (Tensor, np.ndarray)) else x
                        for x in inputs)  # fmt: skip
        args = (ufunc, pattern, tuple(kwargs.items()))
        if ufunc.nout > 1:
            return tuple(computed(_ufunc_kernel, ts, (*args, k)) for k in range(ufunc.nout))
        return computed(_ufunc_kernel, ts, (*args, None))

    def __init__(self, *args, dtype=None, requires_grad: bool = False, device=None) -> None:
        # torch.Tensor's two forms: Tensor(data) copies data into the default float dtype
        # (float32, also for integer data, as torch.Tensor), and the legacy Tensor(2, 3) /
        # Tensor(size) makes a tensor of that shape (zeros here; PyTorch leaves it
        # uninitialised). A second positional argument that is
        # not an int is the dtype, as descent has always accepted.
        if not args:
            data = []
        elif all(type(a) is int for a in args) and (len(args) > 1 or dtype is None):
            data = None
        elif len(args) == 1 and isinstance(args[0], Size):
            data, args = None, tuple(args[0])
        elif len(args) == 2 and dtype is None:
            data, dtype = args
        elif len(args) == 1:
            data = args[0]
            if dtype is None:  # torch.Tensor(data) is always the default float dtype
                dtype = get_default_dtype()
        else:
            raise TypeError(f"Tensor(): cannot make a tensor from arguments {args!r}")
        if data is None:
            dt = get_default_dtype() if dtype is None else as_dtype(dtype)
            arr = np.zeros(tuple(args), dtype=dt)
            if device is not None:
                arr = backend.to_device(arr, backend.normalize_device(device))
        else:
            arr = _to_array(data, dtype, device)
        if requires_grad:
            _check_grad_dtype(arr)
        autograd._init_tensor(self, arr, bool(requires_grad))

    @staticmethod
    def _from_data(data, dtype=None, device=None) -> Tensor:
        """Tensor(data) without the legacy shape form (an int is a value here; not for users)."""
        return autograd._new_tensor(_to_array(data, dtype, device))

    @staticmethod
    def _wrap(arr) -> Tensor:
        """A tensor around a backend array, without copy or dtype conversion (not for users)."""
        return autograd._new_tensor(arr)

    def __getstate__(self):
        """pickle / copy.deepcopy: every slot but the view links (`_view_base`, `_views`: weak
        references, which pickle refuses, and memory relations a copy does not have)."""
        state = object.__getstate__(self)
        if type(state) is tuple and state[0] and "_inference" in state[0]:  # a copy of an
            users = {k: v for k, v in state[0].items() if k != "_inference"}  # inference
            state = (users or None, state[1])  # tensor is a normal one, as PyTorch's
        if type(state) is tuple and state[1] and ("_view_base" in state[1] or "_views" in state[1]):
            slots = {k: v for k, v in state[1].items() if k != "_view_base" and k != "_views"}
            return (state[0], slots)
        return state

    def _alias(self) -> Tensor:
        """A second Tensor object for the same value and graph position (not for users).

        Recorded in-place ops compute on an alias and then rebind `self`, so nodes that saved
        the alias keep the old value, while nodes that saved `self` see its version change.
        A recorded view's alias holds a copy: the update is then written into the viewed
        memory (ops/view_write.py), which the alias must not see; so does a `.data`'s (its
        update is written into the memory it shares, ops/view_write.write_data_alias)."""
        data = self._data
        if self._data_alias or (getattr(self, "_view_base", None) is not None and (
                isinstance(self._view_base, autograd._ViewTag)
                or autograd._shared_view_base(self) is not None)) or autograd._has_live_views(self):
            data = data.copy()  # fmt: skip
        return autograd._new_tensor(data, self._rg, self._node)

    # -- properties ----------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """PyTorch's `.data`: a tensor sharing this one's storage, without grad or history.

        In-place changes to it change this tensor (`p.data -= lr * p.grad`,
        `p.data.normal_()`, `p.data.copy_(w)`, `p.data.zero_()`) and are never recorded;
        assigning `p.data = t` makes p hold t's storage (any shape or dtype, as in PyTorch).
        The raw backend array is `._data` (descent's internals compute on it).
        """
        t = autograd._new_tensor(self._data)
        if t._inference is not self._inference:  # (made under inference_mode: like self)
            t._inference = INFERENCE_DETACHED if self._inference else False
        t._data_alias = True  # a recorded in-place op on t writes into this memory (ops/inplace)
        return t

    @data.setter
    def data(self, value) -> None:
        if isinstance(value, Tensor):
            arr = value._data
        elif isinstance(value, np.ndarray) or backend.is_cupy_array(value):
            arr = value  # a backend array (descent's own tools swap arrays this way)
        else:
            raise TypeError(
                f"data: assigned value must be a Tensor, got {type(value).__name__}; wrap it "
                "with descent.tensor(...)"
            )
        if self._rg and arr.dtype.kind not in "fcV":
            _check_grad_dtype(arr, "data")
        self._data = arr

    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (None until a backward reaches this tensor); assigning
        checks shape and dtype against the tensor's, as PyTorch does. Read on a non-leaf that
        does not retain its gradient, it is None and warns (PyTorch's UserWarning)."""
        g = self._grad
        if g is None and self._node is not None:
            _warn_non_leaf_grad(self)
        return g

    @grad.setter
    def grad(self, value) -> None:
        if value is not None and (
            type(value) is not Tensor
            or (type(self) is not Tensor and type(self) not in _GRAD_PLAIN)
            or hooks._grad_dtypes  # (some tensor's gradient dtype differs from its own)
            or value._data.shape != self._data.shape
            or value._data.dtype != self._data.dtype
        ):
            _check_assigned_grad(self, value)
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            _check_grad_dtype(self._data)
            if self._inference and not getattr(_grad_state, "inference", False):
                raise RuntimeError("Setting requires_grad=True on inference tensor outside "
                                   "InferenceMode is not allowed.")
        elif self._node is not None:
            raise RuntimeError(
                "requires_grad=False on a non-leaf tensor: use .detach() to get a tensor "
                "without history"
            )
        self._rg = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def shape(self) -> Size:
        """The shape as a `Size` (a tuple with `numel()`), as torch.Size; descent's own code
        reads `x._data.shape`, a plain tuple."""
        return _new_size(Size, self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None):
        """The shape as a `Size` (a tuple), or the length of dimension `dim` as an int.

        PyTorch's meaning (NumPy's `.size` attribute is the element count: use `numel()`)."""
        if dim is None:
            return Size(self._data.shape)
        try:
            return self._data.shape[dim]
        except (IndexError, TypeError):
            raise IndexError(
                f"size(): dimension {dim!r} out of range for a tensor of shape "
                f"{tuple(self._data.shape)} (expected to be in range of [{-self._data.ndim}, "
                f"{self._data.ndim - 1}])"
            ) from None

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    nelement = numel

    def dim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> dtype:
        """The element type as a `descent.dtype` (torch.dtype's face, NumPy's dtype inside; see
        dtypes.py); descent's own code reads `x._data.dtype`."""
        return _wrap_dtype(self._data.dtype)

    @property
    def device(self) -> device:
        """Where the values live: `device('cpu')` or `device('cuda:N')` (a str subclass)."""
        if type(self._data) is np.ndarray:
            return CPU  # made once: a property read on every device check
        if backend.is_meta(self._data):
            return META
        return device(backend.device_of(self._data))

    @property
    def is_meta(self) -> bool:
        """True for a meta tensor: a shape and a dtype without data (docs/meta_device.md)."""
        return backend.is_meta(self._data)

    @property
    def is_leaf(self) -> bool:
        return self._read_grad_fn() is None

    @property
    def grad_fn(self):
        """The node that produced this tensor (None for leaves); its class is named as
        PyTorch's node (`type(t.grad_fn).__name__ == "SumBackward0"`, grad_fn.torch_class)."""
        node = self._read_grad_fn()
        return node if node is None else _torch_class(node)

    @property
    def output_nr(self) -> int:
        """Which output of `grad_fn` this tensor is, as PyTorch numbers them (a piece of
        `split` / `chunk` / `unbind`: its position; 0 otherwise, and for leaves)."""
        node = self._node
        return 0 if node is None else _output_nr(node)

    def _read_grad_fn(self):
        # PyTorch makes a view's grad_fn when it is read (VariableHooks::grad_fn): a view of a
        # plain tensor that joined the graph since (ops/view_write._mark_plain) is then no
        # longer a leaf to in-place ops, as after an op used it
        node = self._node
        if node is not None and getattr(self, "_view_base", None) is not None:
            self.__dict__.pop("_plain_view", None)
        return node

    @property
    def is_cuda(self) -> bool:
        return backend.is_cupy_array(self._data)

    @property
    def T(self) -> Tensor:  # the axes reversed, PyTorch's permute (PermuteBackward0)
        return _ops.permute(self, tuple(range(self._data.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:  # PyTorch's name
        if self._data.ndim == 0:  # PyTorch: the tensor itself, with a deprecation warning
            import warnings  # noqa: PLC0415

            warnings.warn(
                "Tensor.mT is deprecated on 0-D tensors. This function is the identity in "
                "these cases.",
                UserWarning,
                stacklevel=2,
            )
            return self
        if self._data.ndim < 2:
            raise DescentError(
                f"mT: only supported on matrices or batches of matrices, got a tensor of shape "
                f"{tuple(self.shape)}; use .T or unsqueeze first"
            )
        return _ops.swapaxes(self, -1, -2)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __contains__(self, element) -> bool:
        """`3.0 in t`: whether any element equals it (PyTorch's rule: a number or a tensor)."""
        import numbers  # noqa: PLC0415

        if not isinstance(element, (Tensor, numbers.Number, np.generic)):
            raise RuntimeError(
                "Tensor.__contains__ only supports Tensor or scalar, but you passed in a "
                f"{type(element)}."
            )
        return bool((self == element).any().item())

    def __dlpack__(self, *args, **kwargs):
        """DLPack export (np.from_dlpack(t), cupy.from_dlpack(t)): the array's own capsule."""
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    # __eq__ is elementwise (it returns a tensor), so hashing is by identity: tensors can be dict
    # keys (the engine keys leaf gradients by tensor) and set members.
    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._data.shape[0]):
            yield self[i]

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous: use "
                ".any() or .all()"
            )
        if type(self._data) is not np.ndarray and backend.is_meta(self._data):
            raise RuntimeError(meta.NO_ITEM)  # (the array says False: see meta.py)
        return bool(self._data)

    def __float__(self) -> float:
        v = self.item()
        return float(_real_part(v, "double") if type(v) is complex else v)

    def __int__(self) -> int:
        v = self.item()
        return int(_real_part(v, "int64_t") if type(v) is complex else v)

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:  # (a bool: PyTorch's
            # __index__ reads it as 0 / 1, [10, 20][tensor(True)] is 20)
            raise TypeError("only integer tensors with one element can be used as an index")
        return int(self.item())

    # -- conversion ------------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU; shares memory on the CPU).
        `force` is accepted for PyTorch's `x.numpy(force=True)` (descent never refuses).

        Raises:
            TypeError: a bfloat16 or float8 tensor, as in PyTorch (NumPy has no such dtype):
                convert with `.float()` first.
        """
        if self._data.dtype.num >= 256:  # ml_dtypes' bfloat16 and float8 (e5m2 is of kind "f")
            raise TypeError(f"Got unsupported ScalarType {scalar_type(self._data.dtype)}")
        if type(self._data) is not np.ndarray and backend.is_meta(self._data):
            raise TypeError(meta.NO_NUMPY)  # PyTorch's TypeError (no data to share)
        return backend.as_numpy(self._data)

    def item(self):
        if self._data.size != 1:
            raise DescentError(
                f"item() needs a tensor with one element, got shape {tuple(self.shape)}; "
                "index it first"
            )
        if type(self._data) is not np.ndarray and backend.is_meta(self._data):
            raise RuntimeError(meta.NO_ITEM)
        a = backend.as_numpy(self._data).reshape(())
        return float(a) if a.dtype.kind == "V" else a.item()  # bfloat16: a Python float

    def tolist(self):
        a = backend.as_numpy(self._data)
        if a.dtype.kind == "V":  # bfloat16: Python floats, as PyTorch's
            a = a.astype(np.float32)
        return a.tolist()

    def __array__(self, dtype=None, copy=None):
        """NumPy's protocol (NumPy 2's keywords): np.asarray(t) shares t's memory on the CPU,
        np.array(t) (copy=True) returns a copy, as with a PyTorch tensor."""
        a = backend.as_numpy(self._data)
        if dtype is not None and a.dtype != np.dtype(dtype):
            return a.astype(dtype)  # a new array already
        if copy and a is self._data:
            a = a.copy()
        return a

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph (requires_grad=False). As in
        PyTorch it shares the version counter: an in-place change through it makes a backward
        that needs this tensor's old values raise (autograd.DetachedView)."""
        t = autograd._new_tensor(self._data)
        t._view_base = autograd._DetachedView(self)
        if t._inference is not self._inference:  # (made under inference_mode: like self)
            t._inference = INFERENCE_DETACHED if self._inference else False
        t._version = self._version  # one counter (autograd_views.bump_family): t joins the
        autograd._register_view(self, t, autograd._AliasRef)  # family of self's memory
        return t

    def detach_(self) -> Tensor:
        self._node = None
        self._rg = False
        return self

    def to(self, *args, **kwargs) -> Tensor:
        """`to(device)`, `to(dtype)`, `to(device, dtype)` or `to(other)`; differentiable.

        PyTorch's `non_blocking` is accepted and changes nothing (NumPy and CuPy copies are
        synchronous here); `memory_format=torch.channels_last` lays the values out as NHWC
        (docs/torch_gaps_tensor.md); `copy=True` returns a copy even when nothing changes.
        """
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        copy = bool(kwargs.pop("copy", False))
        kwargs.pop("non_blocking", None)
        memory_format = kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to(): unexpected arguments {sorted(kwargs)}")
        flags = []  # PyTorch's positional non_blocking, copy (Python bools)
        for a in args:
            if isinstance(a, bool):
                flags.append(a)
            elif isinstance(a, str) or type(a).__name__ == "device":  # a name or a device
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            else:
                dtype = a
        if len(flags) > 1:
            copy = copy or flags[1]
        out = self
        if dtype is not None and as_dtype(dtype) != self._data.dtype:
            out = _ops.cast(out, dtype)
        if device is not None:
            out = _ops.to_device(out, device)
        if copy and out is self:
            out = self.clone()  # preserve_format, as PyTorch's to(copy=True)
        if memory_format is not None and memory_format.name != "preserve_format":
            # as PyTorch: a copy unless the layout already is the one asked for (which
            # contiguous() would also grant to an ambiguous one: C = 1 or H = W = 1)
            out = out._to_layout(memory_format)
        return out

    def cuda(self, device: int | str = 0) -> Tensor:
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def cpu(self) -> Tensor:
        return self.to("cpu")

    # -- autograd ----------------------------------------------------------------------------
    def backward(
        self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
        inputs=None,
    ):  # fmt: skip
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf that requires grad.

        Args:
            gradient: d(loss)/d(self) when self is not a scalar (same shape as self).
            retain_graph: keep saved values so that backward can run through the graph again.
            create_graph: record the backward pass, for gradients of gradients.
            inputs: accumulate into these tensors' `.grad` only (torch.autograd.backward's).
        """
        if inputs is not None:
            return autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)
        # create_graph implies retain_graph (as in PyTorch): a recorded backward is usually followed
        # by a second backward through the same graph.
        seed = autograd._seed(self, gradient, create_graph, "backward")
        autograd._engine_backward([self], [seed], retain_graph or create_graph, create_graph)

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a return value replaces it.

        Returns a handle with `.remove()`.
        """
        if not self._rg:
            raise RuntimeError(
                "register_hook on a tensor that does not require grad: it never gets a gradient"
            )
        # A non-leaf's hooks live on its node, where the engine meets its total gradient mid-pass;
        # a leaf's run after the pass, on the sum of what reached it.
        if self._node is not None:
            node = self._node
            if node.hooks is None:
                node.hooks = []
            hooks = node.hooks
            group = node.group
            if group is not None:  # a split piece: its group runs the pieces' hooks in
                k = [r() for r in group.refs].index(node)  # registration order, as PyTorch's
                group.order.append((k, hook))
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return autograd._HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in `.grad` after backward."""
        if not self._rg:
            raise RuntimeError(
                f"retain_grad: the tensor (shape {tuple(self.shape)}) has requires_grad=False, "
                "so it never gets a gradient; make an input require grad first"
            )
        if self._node is None:
            return  # leaves keep their grad anyway
        # A weak reference: the node must not keep its output alive (no tensor <-> node cycle, so
        # graphs are freed by reference counting alone).
        self._node.retained = weakref.ref(self)


def is_tensor(obj) -> bool:
    """True when obj is a descent Tensor (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def numel(x: Tensor) -> int:
    """The number of elements of x (torch.numel)."""
    return x.numel()


def is_floating_point(x: Tensor) -> bool:
    """True for tensors of a floating dtype (torch.is_floating_point)."""
    return x._data.dtype.kind in "fV"  # "V": bfloat16


def equal(a: Tensor, b: Tensor) -> bool:
    """True when a and b have the same shape and the same values (torch.equal)."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    xp = backend.get_array_module(a._data, b._data)
    return bool(xp.array_equal(a._data, b._data))


# The engine makes op outputs of this class (it never imports this module; see the docstring).
autograd._register_tensor_class(Tensor)
