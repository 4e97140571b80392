"""Run PyTorch's own docstring examples (``>>>``) on descent and on PyTorch, and compare.

PyTorch's docstrings (``torch.add.__doc__``, ``torch.Tensor.scatter_.__doc__``,
``torch.nn.Conv2d.__doc__``, torch.linalg / special / fft / nn.functional / nn.init ...) hold
thousands of small programs written by PyTorch's authors. This module collects them with
``doctest.DocTestParser`` (it only parses) and runs each docstring's statements twice, in fresh
namespaces: once with ``torch`` = PyTorch, once with ``torch`` = descent (``nn``, ``F``, ``np``
and ``math`` bound as the docs assume; ``import torch...`` inside an example imports descent's
module of that name in descent's run).

Random draws are made comparable: in PyTorch's run the random creators called by the example's
own code (``torch.randn``/``rand``/``randint``/``randperm``/``normal``/``empty``..., the
in-place ``uniform_``/``normal_``... methods, ``nn.init``'s random initialisers,
``Distribution.sample``) record their results; in descent's run the same calls return the
recorded values in the same order (descent's creator still runs, and a shape or dtype that
differs from the recorded one is a finding). A module the example builds (``m = nn.Linear(20,
30)``) gets PyTorch's parameters and buffers through ``load_state_dict`` right after the
statement that built it. Examples that mention a random layer or sampler PyTorch draws inside
(dropout, RReLU, gumbel_softmax, ...) are compared by dtype and shape only.

Each statement is compared: an expression's value (tensors by dtype, shape and values with
tests/opinfo_harness.py's tolerances; tuples, lists and namedtuples elementwise; Python scalars,
``torch.Size``, dtypes by name; other objects by the numbers in their repr), whether it raises
(torch raises <=> descent raises, with the same exception type), and what it prints (the
numbers only, not the spacing). The first statement that disagrees decides the verdict:

* agree: every statement agrees;
* differ: a value, a printed number or an exception type differs;
* descent raised: descent raised where PyTorch did not;
* skipped: the example needs CUDA, files, the network or a process group, is not
  self-contained (PyTorch's own run raises NameError: ``model`` is never defined), or uses a
  name descent deliberately lacks (``SKIP_NAMES``).

``python tests/docexamples_harness.py [-v] [--name torch.add] [--skipped]
[--write-known]`` prints the survey; ``tests/test_docexamples.py`` runs it under pytest.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import doctest
import functools
import importlib
import inspect
import io
import itertools
import math
import os
import re
import signal
import sys
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributions
import torch.nn.functional
import torch.nn.init

import descent
import descent.nn.functional
from harness_report import report, short
from opinfo_harness import TOL, compare, to_descent

FILENAME = "<docexample>"  # the code object's filename marks the example's own calls

# (label, torch namespace, descent counterpart's dotted path, what to collect)
NAMESPACES = [
    ("torch", torch, "", "functions"),
    ("torch.Tensor", torch.Tensor, "Tensor", "attributes"),
    ("torch.nn.functional", torch.nn.functional, "nn.functional", "functions"),
    ("torch.linalg", torch.linalg, "linalg", "functions"),
    ("torch.special", torch.special, "special", "functions"),
    ("torch.fft", torch.fft, "fft", "functions"),
    ("torch.nn.init", torch.nn.init, "nn.init", "functions"),
    ("torch.nn", torch.nn, "nn", "classes"),
    ("torch.distributions", torch.distributions, "distributions", "classes"),
]
# Further namespaces descent mirrors: their functions and classes ("all"), PyTorch's own only.
for _mod in (
    "autograd",
    "autograd.functional",
    "autograd.forward_ad",
    "autograd.graph",
    "func",
    "nn.utils",
    "nn.utils.rnn",
    "nn.utils.parametrizations",
    "nn.utils.parametrize",
    "optim",
    "optim.lr_scheduler",
    "utils.data",
    "utils.checkpoint",
    "sparse",
    "masked",
    "signal.windows",
    "testing",
    "random",
    "nn.attention",
    "overrides",
    "nn.utils.prune",
    "nn.utils.stateless",
    "optim.swa_utils",
    "library",
    "distributions.transforms",
    "distributions.constraints",
    "profiler",
    "autograd.profiler",
    "compiler",
    "cpu",
    "accelerator",
    "nested",
    "utils._pytree",
):
    NAMESPACES.append((f"torch.{_mod}", importlib.import_module(f"torch.{_mod}"), _mod, "all"))
# Methods of the classes programs use most (Module.apply, Sequential.append, Generator.seed...).
for _cls in ("nn.Module", "nn.Sequential", "optim.Optimizer", "autograd.Function", "Generator"):
    NAMESPACES.append(
        (f"torch.{_cls}", functools.reduce(getattr, _cls.split("."), torch), _cls, "attributes")
    )

# Whole-docstring patterns that make an example impossible to run here, with the reason.
# A statement that needs a GPU is left out of both runs (the rest of the example still runs:
# where a later statement needs what it made, both runs raise the same NameError).
GPU_STATEMENT = re.compile(r"cuda|\bmps\b|\bxpu\b")

SKIP_PATTERNS = [
    (re.compile(r"\bos\.path|/tmp/|~/"), "needs files outside its own directory"),
    (re.compile(r"https?://\S+['\"]|hub\.load|download"), "needs the network"),
    (re.compile(r"torch\.distributed|dist\.|init_process_group|\bDDP\b"), "needs a process group"),
    (re.compile(r"matplotlib|\bplt\."), "draws a plot (matplotlib)"),
]

# Names whose examples are skipped, with the reason (descent lacks them on purpose).
SKIP_NAMES = {
    "torch.compile": "compiles through TorchDynamo/Inductor, not in descent's scope",
    "torch.thread_safe_generator": "the docstring does not parse (inconsistent indentation)",
}

# Examples that take 0.3 s or more here (3-d convolutions and pools on (20, 16, 10, 50, 100)
# inputs, Transformers, DataLoader workers): the survey runs them, tests/test_docexamples.py
# does not (its budget).
SLOW = {
    "torch.conv3d",
    "torch.conv_transpose3d",
    "torch.fft.ihfft2",
    "torch.nn.AvgPool3d",
    "torch.nn.BatchNorm3d",
    "torch.nn.CircularPad3d",
    "torch.nn.Conv2d",
    "torch.nn.Conv3d",
    "torch.nn.ConvTranspose2d",
    "torch.nn.ConvTranspose3d",
    "torch.nn.FractionalMaxPool3d",
    "torch.nn.InstanceNorm3d",
    "torch.nn.LPPool3d",
    "torch.nn.MaxPool3d",
    "torch.nn.MaxUnpool3d",
    "torch.nn.ReplicationPad3d",
    "torch.nn.Transformer",
    "torch.nn.TransformerDecoder",
    "torch.nn.TransformerDecoderLayer",
    "torch.nn.TransformerEncoder",
    "torch.nn.TransformerEncoderLayer",
    "torch.nn.functional.cross_entropy",
    "torch.nn.functional.fractional_max_pool3d",
    # DataLoader with num_workers: worker processes (the suite runs no subprocess tests)
    "torch.utils.data.IterableDataset",
    "torch.autograd.forward_ad.dual_level",
}

_QUANT = (
    "the harness compares values through .numpy(), which torch's quantized tensors refuse: "
    "tests/test_quantization.py compares int_repr() and dequantize() bit for bit"
)
_QUANT_KERNELS = (
    "descent's quantized tensors have no quantized kernels (batch_norm, max_pool): "
    "dequantize first (docs/quantization.md)"
)
_COIN = (
    "torch.allclose of a float32 residual at the edge of the default tolerance (rtol "
    "1e-5, atol 1e-8): descent's residual is as small as torch's, the two libraries' "
    "roundings land on different sides"
)
_JAGGED = (
    "descent's nested tensors are jagged (layout=torch.jagged) only; PyTorch's default "
    "strided nested layout is not there"
)
_BATCHED = (
    "descent's compressed sparse layouts are 2-d only (no batch or dense dims, no BSC "
    "from a compressed tensor): docs/sparse.md"
)

# Differences examined and kept, with the reason (tests/docexamples_known.py takes these words).
EXPLAINED = {
    "torch.cholesky_inverse": "the statement prints torch.dist(inverse(A), cholesky_inverse(L)): "
    "float32 rounding noise (torch 5.0e-4, descent 7.0e-4)",
    "torch.conj": "descent has no lazy conjugate bit: x.conj() of a complex tensor is a "
    "materialised copy, is_conj() False (values agree)",
    "torch.resolve_conj": "descent has no lazy conjugate bit: is_conj() is always False "
    "(values agree)",
    "torch.resolve_neg": "descent has no lazy negative bit: is_neg() is always False (values "
    "agree)",
    "torch.set_default_dtype": "descent has no complex32 (NumPy has no complex half): with "
    "float16 as the default, a complex literal is complex64",
    "torch.set_flush_denormal": "NumPy cannot flush denormals: descent's set_flush_denormal "
    "returns False (not supported), as PyTorch does on a CPU "
    "without SSE3",
    "torch.sparse_bsc_tensor": "descent has no BSC layout (CSR, CSC and BSR only)",
    "torch.Tensor.to_sparse": _BATCHED,
    "torch.Tensor.to_sparse_bsc": _BATCHED,
    "torch.Tensor.to_sparse_bsr": _BATCHED,
    "torch.Tensor.to_sparse_csc": _BATCHED,
    "torch.Tensor.to_sparse_csr": _BATCHED,
    "torch.linalg.lu_solve": _COIN,
    "torch.linalg.solve": _COIN,
    "torch.linalg.solve_triangular": _COIN,
    "torch.fft.hfft2": _COIN,
    "torch.fft.hfftn": _COIN,
    "torch.linalg.lu": "pivot=False: descent computes the unpivoted LU on the CPU, where "
    "PyTorch's CPU kernel refuses (it has one on CUDA only)",
    "torch.Generator.get_state": "descent's generator state is a uint8 tensor of NumPy PCG64's "
    "state (45 bytes), not PyTorch's mt19937 state (5056 bytes); set_state takes it back",
    "torch.library.get_kernel": "not in descent (looking up a registered ATen kernel)",
    "torch.library.register_fake": "the example traces with "
    "torch.fx.experimental.proxy_tensor.make_fx, which descent lacks",
    "torch.library.triton_op": "Triton kernels (triton_op, wrap_triton): not in descent",
    "torch.library.wrap_triton": "Triton kernels (triton_op, wrap_triton): not in descent",
    "torch.profiler.record_function": "the profiler's table prints measured times and PyTorch's "
    "ATen rows: its numbers differ by nature",
    "torch.compiler.substitute_in_graph": "descent's torch.compile runs the function eagerly: "
    "fullgraph=True does not refuse a builtin that Dynamo cannot trace",
    "torch.accelerator.Graph": "torch.Stream and accelerator.Graph (CUDA graphs) are not in "
    "descent",
    "torch.accelerator.synchronize": "torch.Event is not in descent",
    "torch.nested.as_nested_tensor": _JAGGED,
    "torch.nested.nested_tensor": _JAGGED,
    "torch.nested.to_padded_tensor": _JAGGED,
    "torch.autograd.inference_mode": "descent's inference tensors keep a version counter "
    "(descent reads the slot internally): reading y._version works where PyTorch's inference "
    "tensors refuse",
    "torch.autograd.graph.region_activation_memory_budget": "PyTorch refuses it outside "
    "torch.compile; descent's is an accepted no-op",
    "torch.autograd.graph.saved_tensors_hooks": "the order of the pack hook's calls for a * b: "
    "PyTorch 2.13 packs b, then a (its docstring shows a, then b, as descent does)",
    "torch.func.functionalize": "needs torch.fx.experimental.proxy_tensor.make_fx (tracing to "
    "ATen), not in descent",
    "torch.func.rearrange": "torch.func.rearrange (einops notation through vmap) is not in descent",
    "torch.sparse.as_sparse_gradcheck": "not in descent (gradcheck takes sparse inputs directly)",
    "torch.masked.is_masked_tensor": "descent has no MaskedTensor (the torch.masked reductions "
    "with mask= are there)",
    "torch.nn.attention.register_flash_attention_impl": "registers a CUDA flash-attention "
    "kernel: not in descent",
    "torch.overrides.get_ignored_functions": "descent has no __torch_function__ dispatch "
    "(Tensor.as_subclass, get_ignored_functions)",
    "torch.overrides.get_testing_overrides": "descent has no __torch_function__ dispatch "
    "(get_testing_overrides)",
    "torch.overrides.redispatch_function": "descent has no __torch_function__ dispatch "
    "(TorchFunctionMode)",
}
EXPLAINED.update((n, _QUANT) for n in ("torch.quantize_per_channel", "torch.quantize_per_tensor"))
EXPLAINED.update(
    (n, _QUANT_KERNELS)
    for n in (
        "torch.quantized_batch_norm",
        "torch.quantized_max_pool1d",
        "torch.quantized_max_pool2d",
    )
)

# Docstrings that mention one of these draw random numbers inside PyTorch (not at the
# example's own level): their values are compared by dtype and shape only.
RANDOM_INSIDE = re.compile(
    r"[Dd]ropout|rrelu|RReLU|gumbel|[Ff]ractional|random_split|shuffle=True|\.seed\(\)|"
    r"initial_seed|rsample|sample_n|RandomSampler|DistributedSampler"
)

# The random creators recorded in PyTorch's run and replayed in descent's: (owner path, name).
# Tensor methods are in-place (their result is the tensor they filled).
RANDOM_FUNCTIONS = (
    [
        ("", n)
        for n in (
            "randn",
            "rand",
            "randint",
            "randperm",
            "normal",
            "empty",
            "empty_like",
            "randn_like",
            "rand_like",
            "randint_like",
            "bernoulli",
            "multinomial",
            "poisson",
            "empty_strided",
            "empty_permuted",
        )
    ]
    + [
        ("Tensor", n)
        for n in (
            "uniform_",
            "normal_",
            "random_",
            "exponential_",
            "bernoulli_",
            "cauchy_",
            "log_normal_",
            "geometric_",
            "new_empty",
            "new_empty_strided",
        )
    ]
    + [
        ("nn.init", n)
        for n in (
            "uniform_",
            "normal_",
            "xavier_uniform_",
            "xavier_normal_",
            "kaiming_uniform_",
            "kaiming_normal_",
            "trunc_normal_",
            "orthogonal_",
            "sparse_",
        )
    ]
    + [("testing", "make_tensor")]
)

NUMBER = re.compile(r"nan|inf|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
TIMEOUT_S = 60  # a statement that runs longer is a finding (descent raised _Timeout)


def _walk(root, path):
    obj = root
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


# ---------------------------------------------------------------- collecting the examples


def _members(ns, kind):
    for n in sorted(dir(ns)):
        if n.startswith("_"):
            continue
        try:
            obj = getattr(ns, n)
        except Exception:  # noqa: BLE001 - a lazy attribute that fails: nothing to collect
            continue
        if kind == "classes" and not inspect.isclass(obj):
            continue
        if kind == "all" and not (getattr(obj, "__module__", None) or "").startswith("torch"):
            continue  # a re-export from elsewhere (typing, functools)
        if kind == "functions" and (
            inspect.isclass(obj) or inspect.ismodule(obj) or not callable(obj)
        ):
            continue
        yield n, obj


def collect():
    """{name: docstring} for every public member whose docstring has a ``>>>`` example; a
    docstring shared by several names (aliases) is collected once, under its first name."""
    found, seen = {}, set()
    for label, ns, _, kind in NAMESPACES:
        for n, obj in _members(ns, kind):
            doc = getattr(obj, "__doc__", None)
            if not isinstance(doc, str) or ">>>" not in doc or doc in seen:
                continue
            seen.add(doc)
            found[f"{label}.{n}"] = doc
    return found


_DOCS = None


def docs():
    global _DOCS
    if _DOCS is None:
        _DOCS = collect()
    return _DOCS


def statements(doc):
    """The example's statements (source strings), or raises ValueError (does not parse)."""
    return [ex.source for ex in doctest.DocTestParser().get_examples(inspect.cleandoc(doc))]


def runnable(doc):
    """The example's statements without those that need a GPU (ValueError: does not parse)."""
    return [src for src in statements(doc) if not GPU_STATEMENT.search(src)]


def skip_reason(name, doc):
    if name in SKIP_NAMES:
        return SKIP_NAMES[name]
    code = "\n".join(runnable(doc))
    if not code.strip():
        return "needs CUDA/MPS/XPU (every statement)"
    for pattern, why in SKIP_PATTERNS:
        if pattern.search(code):
            return why
    return None


# ---------------------------------------------------------------- running one example


@dataclass
class Step:
    """What one statement did: its value (expression statements), exception, printed text."""

    source: str
    value: object = None
    has_value: bool = False
    error: BaseException | None = None
    printed: str = ""
    modules: dict = field(default_factory=dict)  # name -> state dict of modules it built
    problems: list = field(default_factory=list)  # random draws or state dicts that differ


def _from_example(depth=2):
    return sys._getframe(depth).f_code.co_filename == FILENAME


def _snapshot(v):
    """A copy of a value as it is now (later in-place statements must not change it)."""
    if isinstance(v, torch.Tensor):
        rg, v = v.requires_grad, v.detach()
        if v.layout != torch.strided:
            v = v.to_dense()
        return _TensorSnap(v.resolve_conj().resolve_neg().clone(), rg)
    if isinstance(v, descent.Tensor):
        rg, v = v.requires_grad, v.detach()
        if getattr(v, "is_sparse", False) or "strided" not in str(getattr(v, "layout", "")):
            v = v.to_dense()
        return _TensorSnap(v.clone(), rg)
    if isinstance(v, tuple):  # namedtuples (return types) as plain tuples
        return tuple(_snapshot(o) for o in v)
    if isinstance(v, list):
        return [_snapshot(o) for o in v]
    if isinstance(v, dict):
        return {k: _snapshot(o) for k, o in v.items()}
    if isinstance(
        v,
        (
            bool,
            int,
            float,
            complex,
            str,
            type(None),
            torch.dtype,
            torch.Size,
            np.ndarray,
            np.generic,
        ),
    ) or type(v).__name__ in ("Size", "dtype"):
        return v
    return _Repr(v)


class _TensorSnap:
    """A tensor's values (a detached, dense copy) and whether it required grad."""

    def __init__(self, value, requires_grad: bool) -> None:
        self.value, self.requires_grad = value, requires_grad


class _Repr:
    """Another object (a module, a distribution, a generator): kept as its repr."""

    def __init__(self, v):
        self.type = type(v).__name__
        try:
            self.text = repr(v)
        except Exception:  # noqa: BLE001 - some objects cannot repr
            self.text = ""


def _import_hook(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and (name == "torch" or name.startswith("torch.")):
        name = "descent" + name[5:]
    return builtins.__import__(name, globals, locals, fromlist, level)


def namespace(lib, label=""):
    """A fresh namespace with the names PyTorch's docstrings assume (``torch``, ``nn``, ``F``,
    ``np``/``numpy``, ``math``, ``itertools``, ``functools``, ``linalg``)."""
    root = torch if lib is torch else descent
    ns = {
        "functools": functools,
        "torch": root,
        "nn": root.nn,
        "F": root.nn.functional,
        "linalg": root.linalg,
        "np": np,
        "numpy": np,
        "math": math,
        "itertools": itertools,
        "__name__": "__docexample__",
    }
    # A namespace's docstrings use its own names bare (``ConstantLR(...)`` in
    # torch.optim.lr_scheduler's, ``Bernoulli(...)`` in torch.distributions'), as after
    # ``from torch.<namespace> import *``; torch.masked's use ``tensor`` (``from torch import
    # tensor``).
    ns["tensor"] = root.tensor
    path = label[len("torch.") :] if label.startswith("torch.") else ""
    tmod = _walk(torch, path) if path else None
    if inspect.ismodule(tmod):
        # the module itself by its last name (``prune.l1_unstructured(...)`` in
        # torch.nn.utils.prune's docstrings, as after ``from torch.nn.utils import prune``)
        ns.setdefault(path.rsplit(".", 1)[-1], _walk(root, path))
        # PyTorch's names, each taken from descent's module of the same path (its module
        # __getattr__ included): a name descent lacks stays unbound, a NameError in its run
        mod = _walk(root, path)
        for n, _ in _members(tmod, "any"):
            try:
                ns[n] = getattr(mod, n)
            except Exception:  # noqa: BLE001 - missing in descent (or a failing lazy import)
                pass
    if lib is not torch:
        ns["__builtins__"] = dict(builtins.__dict__, __import__=_import_hook)
    return ns


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout(f"the statement ran longer than {TIMEOUT_S} s")


def _exec(source, ns):
    """Run one statement; (has_value, value)."""
    tree = ast.parse(source, FILENAME)
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        return True, eval(compile(ast.Expression(tree.body[0].value), FILENAME, "eval"), ns)
    exec(compile(tree, FILENAME, "exec"), ns)
    return False, None


@contextlib.contextmanager
def _patched(pairs):
    """Set ``owner.name = value`` for each (owner, name, value); restore afterwards."""
    old = []
    try:
        for owner, name, value in pairs:
            old.append((owner, name, owner.__dict__.get(name, _MISSING)))
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in reversed(old):
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


_MISSING = object()


def _random_targets(root, extra_sample=True):
    """(owner, name, function) for each random creator of ``root`` (torch or descent)."""
    out = []
    for path, name in RANDOM_FUNCTIONS:
        owner = _walk(root, path)
        fn = getattr(owner, name, None) if owner is not None else None
        if fn is not None:
            out.append((owner, name, fn))
    dist = _walk(root, "distributions")
    if extra_sample and dist is not None:
        for n in dir(dist):
            cls = getattr(dist, n)
            if inspect.isclass(cls) and "sample" in cls.__dict__:
                out.append((cls, "sample", cls.__dict__["sample"]))
    return out


def _recorder(fn, tape):
    def recording(*args, **kwargs):
        out = fn(*args, **kwargs)
        if _from_example() and isinstance(out, torch.Tensor):
            tape.append(out.detach().clone())
        return out

    return recording


def _dname(t):
    return str(t.dtype).split(".")[-1]


def _replayer(fn, tape, name, problems):
    def replaying(*args, **kwargs):
        out = fn(*args, **kwargs)
        if not _from_example() or not isinstance(out, descent.Tensor):
            return out
        if not tape:
            problems.append(f"{name}: one random draw more than in torch's run")
            return out
        rec = tape.pop(0)
        if tuple(out.shape) != tuple(rec.shape) or _dname(out) != _dname(rec):
            problems.append(
                f"{name}: random draw of shape {tuple(out.shape)} {out.dtype}, "
                f"torch's {tuple(rec.shape)} {rec.dtype}"
            )
            return out
        with descent.no_grad():
            out.copy_(to_descent(rec, []))
        return out

    return replaying


@contextlib.contextmanager
def _state():
    """Restore the process-wide settings an example may change (default dtype, grad mode,
    print options, deterministic mode, random seeds); the example runs in a fresh temporary
    directory (torch.save's example writes 'tensor.pt' to the current one)."""
    saved = (
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        dict(torch._tensor_str.PRINT_OPTS.__dict__),
        descent.get_default_dtype(),
        descent.is_grad_enabled(),
        dict(descent.print_options._options),
        torch.get_num_threads(),
        [
            (
                lib,
                lib.are_deterministic_algorithms_enabled(),
                lib.is_deterministic_algorithms_warn_only_enabled(),
            )
            for lib in (torch, descent)
        ],  # fmt: skip
        # distribution argument validation: PyTorch's first torch.compile turns it off for the
        # whole process (torch/_dynamo/eval_frame.py), which changed later examples' errors
        [
            (lib.distributions.Distribution, lib.distributions.Distribution._validate_args)
            for lib in (torch, descent)
        ],  # fmt: skip
    )
    torch.manual_seed(0)
    descent.manual_seed(0)
    for cls, _ in saved[8]:  # the default (__debug__), whatever ran before in this process
        cls.set_default_validate_args(__debug__)
    for lib in (torch, descent):  # PyTorch's defaults, whatever ran before in this process
        lib.set_default_dtype(lib.float32)
        lib.set_grad_enabled(True)
        lib.set_printoptions(profile="default")
        lib.use_deterministic_algorithms(False)
    torch.set_num_threads(1)  # deterministic accumulation order, as opinfo_harness
    cwd = os.getcwd()
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore")
            os.chdir(tmp)
            try:
                yield
            finally:
                os.chdir(cwd)
    finally:
        torch.set_default_dtype(saved[0])
        torch.set_grad_enabled(saved[1])
        torch._tensor_str.PRINT_OPTS.__dict__.update(saved[2])
        descent.set_default_dtype(saved[3])
        descent.set_grad_enabled(saved[4])
        descent.print_options._options.clear()
        descent.print_options._options.update(saved[5])
        torch.set_num_threads(saved[6])
        for lib, on, warn_only in saved[7]:  # torch.use_deterministic_algorithms's example
            lib.use_deterministic_algorithms(on, warn_only=warn_only)
        for cls, validate in saved[8]:
            cls.set_default_validate_args(validate)


def _run(sources, ns, after=None):
    """Run the statements in ``ns``; a list of Steps. ``after(i, step)`` runs after each."""
    steps = []
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i, src in enumerate(sources):
            step = Step(src)
            buf = io.StringIO()
            signal.alarm(TIMEOUT_S)
            try:
                with contextlib.redirect_stdout(buf):
                    step.has_value, step.value = _exec(src, ns)
            except Exception as e:  # noqa: BLE001 - a statement's exception is its result
                step.error = e
            finally:
                signal.alarm(0)
            step.printed = buf.getvalue()
            if after is not None:
                after(i, step)
            steps.append(step)
    finally:
        signal.signal(signal.SIGALRM, old)
    return steps


def run_torch(sources, label):
    tape = []
    targets = _random_targets(torch)
    seen_modules = set()

    def after(i, step):
        if step.has_value:
            step.value = _snapshot(step.value)
        for k, v in list(ns.items()):
            if isinstance(v, torch.nn.Module) and id(v) not in seen_modules:
                seen_modules.add(id(v))
                step.modules[k] = {n: t.detach().clone() for n, t in v.state_dict().items()}

    ns = namespace(torch, label)
    with _patched((o, n, _recorder(f, tape)) for o, n, f in targets):
        steps = _run(sources, ns, after)
    return steps, tape


def run_descent(sources, label, tsteps, tape, problems):
    targets = _random_targets(descent)
    seen = []

    def after(i, step):
        if step.has_value:
            step.value = _snapshot(step.value)
        step.problems = problems[len(seen) :]
        seen.extend(step.problems)
        for k, sd in tsteps[i].modules.items():
            m = ns.get(k)
            if not isinstance(m, descent.nn.Module):
                continue
            try:
                m.load_state_dict({n: to_descent(t, []) for n, t in sd.items()})
            except Exception as e:  # noqa: BLE001 - a state dict that does not fit: a finding
                step.problems.append(f"module {k}: torch's state dict does not load ({short(e)})")

    ns = namespace(descent, label)
    with _patched((o, n, _replayer(f, tape, n, problems)) for o, n, f in targets):
        return _run(sources, ns, after)


# ---------------------------------------------------------------- comparing


# A jagged dimension prints as a nested int `j<id>`, the id a counter of the process (each
# library's own, advanced by every nested tensor made before): not part of the example's value.
NESTED_INT = re.compile(r"\bj\d+\b")


def _numbers(text):
    text = NESTED_INT.sub("j", ADDRESS.sub("", text)).replace("descent", "torch")
    return NUMBER.findall(text)


def compare_printed(a, b):
    """None when the numbers torch printed and those descent printed agree (loosely)."""
    na, nb = _numbers(a), _numbers(b)
    if len(na) != len(nb):
        return f"printed {len(na)} numbers in torch, {len(nb)} in descent"
    for x, y in zip(na, nb):
        fx, fy = float(x), float(y)
        if x == y or (math.isnan(fx) and math.isnan(fy)):
            continue
        if not abs(fx - fy) <= 2e-4 + 2e-4 * abs(fx):
            return f"printed {x} in torch, {y} in descent"
    return None


def compare_value(t, d, shapes_only=False):
    """None when descent's value ``d`` agrees with torch's snapshot ``t``, else the difference."""
    if isinstance(t, _TensorSnap):
        if not isinstance(d, _TensorSnap):
            return f"torch gives a tensor, descent {type(d).__name__}"
        if t.requires_grad != d.requires_grad:
            return f"requires_grad torch {t.requires_grad}, descent {d.requires_grad}"
        t, d = t.value, d.value
        tol = None if shapes_only else TOL.get(t.dtype, TOL[torch.float32])
        bad = compare([t], [d], tol)
        return bad[0] if bad else None
    if isinstance(t, torch.Size):
        if not isinstance(d, tuple) or tuple(d) != tuple(t):
            return f"torch {t}, descent {d!r}"
        return None
    if isinstance(t, torch.dtype):
        if str(t).split(".")[-1] != str(d).split(".")[-1]:
            return f"dtype torch {t}, descent {d}"
        return None
    if isinstance(t, (list, tuple)):
        if not isinstance(d, (list, tuple)) or len(d) != len(t):
            return (
                f"torch {type(t).__name__} of {len(t)}, descent {type(d).__name__} "
                f"{'of ' + str(len(d)) if isinstance(d, (list, tuple)) else repr(d)[:80]}"
            )
        for i, (a, b) in enumerate(zip(t, d)):
            why = compare_value(a, b, shapes_only)
            if why:
                return f"[{i}]: {why}"
        return None
    if isinstance(t, dict):
        if not isinstance(d, dict) or list(t) != list(d):
            return f"torch dict keys {list(t)[:8]}, descent {type(d).__name__}"
        for k in t:
            why = compare_value(t[k], d[k], shapes_only)
            if why:
                return f"[{k!r}]: {why}"
        return None
    if isinstance(t, bool):
        if type(d) is not bool or d != t:
            return f"torch {t!r}, descent {type(d).__name__} {d!r}"
        return None
    if isinstance(t, (int, float, complex)):
        # the Python type too: an int where PyTorch gives a float (or the reverse) changes
        # what the program does next (division, formatting, indexing)
        if type(d) is not type(t) and not (type(t) is float and isinstance(d, float)):
            return f"torch {type(t).__name__} {t!r}, descent {type(d).__name__} {d!r}"[:200]
        if shapes_only:
            return None
        bad = compare([t], [d], TOL[torch.float32])
        return bad[0] if bad else None
    if t is None:
        return None if d is None else f"torch None, descent {type(d).__name__}"
    if isinstance(t, str):
        return None if compare_printed(t, str(d)) is None else f"torch {t!r}, descent {d!r}"
    if isinstance(t, (np.ndarray, np.generic)):
        ok = (
            isinstance(d, (np.ndarray, np.generic))
            and np.shape(d) == np.shape(t)
            and (shapes_only or np.allclose(d, t, rtol=1e-4, atol=1e-5, equal_nan=True))
        )
        return None if ok else f"torch {t!r}, descent {d!r}"[:200]
    if isinstance(t, _Repr):
        if shapes_only:
            return None
        text = d.text if isinstance(d, _Repr) else repr(d)
        why = compare_printed(t.text, text)
        return None if why is None else f"repr {t.text[:80]!r} in torch, {text[:80]!r} in descent"
    return None


@dataclass
class Verdict:
    status: str  # "agree", "differ", "descent raised", "skipped"
    detail: str = ""
    findings: list = field(default_factory=list)


def _where(i, src):
    line = src.strip().splitlines()[0] if src.strip() else ""
    return f"statement {i + 1} `{line[:90]}`"


def examine(name):
    """The verdict for the docstring example of ``name`` (``torch.add``)."""
    doc = docs()[name]
    try:
        sources = runnable(doc)
        why = skip_reason(name, doc)
    except ValueError as e:
        return Verdict("skipped", f"the docstring does not parse ({short(e)})")
    if why:
        return Verdict("skipped", why)
    shapes_only = bool(RANDOM_INSIDE.search("\n".join(sources)))
    label = name.rsplit(".", 1)[0]
    with _state():
        tsteps, tape = run_torch(sources, label)
    # Not self-contained (``model`` is never defined): skipped when nothing ran in torch before
    # the missing name; otherwise the statements are compared (descent must raise the same
    # NameError where torch does).
    for s in tsteps:
        if isinstance(s.error, (NameError, ImportError, FileNotFoundError, _Timeout)):
            return Verdict(
                "skipped", f"not self-contained: torch's own run raises {short(s.error)}"
            )
        if s.error is None:
            break
    problems = []
    with _state():
        dsteps = run_descent(sources, label, tsteps, list(tape), problems)
    findings = []
    first = None
    for i, (t, d) in enumerate(zip(tsteps, dsteps)):
        where = _where(i, t.source)
        if d.problems:
            findings.extend(f"{where}: {p}" for p in d.problems)
            first = first or ("differ", findings[0])
        if t.error is None and d.error is not None:
            f = f"{where}: descent raised {short(d.error)}"
            findings.append(f)
            first = first or ("descent raised", f)
            continue
        if t.error is not None:
            if d.error is None:
                f = f"{where}: torch raised {short(t.error)}, descent did not"
            elif type(t.error).__name__ != type(d.error).__name__ and not isinstance(
                d.error, type(t.error)
            ):
                f = f"{where}: torch raised {short(t.error)}, descent {short(d.error)}"
            else:
                continue
            findings.append(f)
            first = first or ("differ", f)
            continue
        why = None
        if t.has_value:
            why = compare_value(t.value, d.value, shapes_only)
            if why:
                why = f"value: {why}"
        if why is None and not shapes_only:
            why = compare_printed(t.printed, d.printed)
            if why:
                why = (
                    f"{why} (torch printed {t.printed.strip()[:120]!r}, descent "
                    f"{d.printed.strip()[:120]!r})"
                )
        if why:
            f = f"{where}: {why}"
            findings.append(f)
            first = first or ("differ", f)
    if first is None:
        return Verdict("agree")
    return Verdict(first[0], first[1], findings)


# ---------------------------------------------------------------- the command line


def names():
    return list(docs())


def survey(selected, verbose=False):
    verdicts = {}

    def check(n):
        def run():
            v = verdicts[n] = examine(n)
            if v.status == "skipped":
                return None
            return (
                [f"{v.status}: {f}" for f in ([v.detail] + v.findings[1:])]
                if (v.status != "agree")
                else []
            )

        return run

    report([(n, check(n)) for n in selected], "docstring examples", verbose)
    counts = {}
    for v in verdicts.values():
        counts[v.status] = counts.get(v.status, 0) + 1
    print(
        "  "
        + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("agree", "differ", "descent raised", "skipped")
        ),
        file=sys.stderr,
    )
    return verdicts


def write_known(verdicts, path):
    known = {
        n: EXPLAINED.get(n, f"{v.status}: {v.detail}"[:300])
        for n, v in sorted(verdicts.items())
        if v.status in ("differ", "descent raised")
    }
    agree = sorted(n for n, v in verdicts.items() if v.status == "agree")
    skipped = {n: v.detail[:200] for n, v in sorted(verdicts.items()) if v.status == "skipped"}
    import pprint

    with open(path, "w") as f:
        f.write(
            '"""Where descent still differs from PyTorch on PyTorch\'s docstring examples '
            "(tests/test_docexamples.py).\n\nGenerated by `python tests/docexamples_harness"
            ".py --write-known`: AGREE lists the examples that agree, KNOWN the reason each "
            "other one\nstill differs (its first difference), SKIPPED why an example is not "
            'run. A fix turns its KNOWN entry\ninto an XPASS: regenerate."""\n\n'
            "# ruff: noqa: E501 (generated)\n# fmt: off\n"
        )
        f.write("AGREE = " + pprint.pformat(agree, width=100) + "\n\n")
        f.write("KNOWN = " + pprint.pformat(known, width=100) + "\n\n")
        f.write("SKIPPED = " + pprint.pformat(skipped, width=100) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", action="append", help="one docstring (torch.add); repeatable")
    p.add_argument("-v", action="store_true", help="every finding")
    p.add_argument("--skipped", action="store_true", help="list the skipped examples and why")
    p.add_argument(
        "--write-known",
        action="store_true",
        help="regenerate tests/docexamples_known.py from the survey",
    )
    a = p.parse_args()
    selected = a.name or names()
    verdicts = survey(selected, a.v)
    if a.skipped:
        for n, v in verdicts.items():
            if v.status == "skipped":
                print(f"SKIP {n}: {v.detail}")
    if a.write_known:
        import os

        write_known(verdicts, os.path.join(os.path.dirname(__file__), "docexamples_known.py"))


if __name__ == "__main__":
    main()
