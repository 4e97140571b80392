"""descent: reverse-mode automatic differentiation and deep learning on NumPy (CuPy on a GPU),
with tools that explain the gradients it computes.

    >>> import descent as ds
    >>> w = ds.tensor([1.0, -2.0], requires_grad=True)
    >>> loss = ((w * 3.0 - 1.0) ** 2).sum()
    >>> loss.backward()
    >>> w.grad
    tensor([ 12., -42.])
"""

# ruff: noqa: F401 - this module re-exports the public API (see __all__ below)
from __future__ import annotations

import importlib as _importlib

import numpy as _np

from . import autograd, backend
from . import settings as _settings

if _settings.BLAS != "openblas":  # DESCENT_BLAS=mkl|auto: MKL switched on (or its error) now
    from . import blas as _blas  # noqa: F401
from . import inplace_unary as _inplace_unary  # registers x.exp_(), x.relu_(), ... (ops table)
from . import tensor_methods as _tensor_methods
from .amp import GradScaler, autocast  # torch.GradScaler is torch.amp.GradScaler
from .autograd import _is_grad_enabled as is_grad_enabled
from .autograd import enable_grad, no_grad, set_grad_enabled
from .creation import (
    Generator,
    arange,
    as_tensor,
    bernoulli,
    default_generator,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    get_default_device,
    get_rng_state,
    initial_seed,
    linspace,
    manual_seed,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    set_default_device,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from .devices import device
from .dtypes import dtype, finfo, get_default_dtype, iinfo, set_default_dtype
from .dtypes import wrap_dtype as _wrap_dtype
from .errors import DescentError, DimensionError
from .fake_quantize import (  # quantization-aware training's fake quantization
    fake_quantize_per_channel_affine,
    fake_quantize_per_tensor_affine,
)
from .functional import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp
from .gaps_math_creation import *  # noqa: F403  torch.logspace, torch.hann_window, ...
from .gaps_nn import *  # noqa: F403  torch.conv2d, torch.dropout, ... (docs/torch_gaps_nn.md)
from .gaps_tensor_creation import *  # noqa: F403  torch.empty_strided, x.new, x.log_normal_
from .grad_mode import inference_mode
from .legacy_tensors import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from .ops._common import promote_types as _promote_types
from .ops._common import result_type as _result_type
from .ops.activation import elu, erf, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from .ops.arithmetic import div, floor_divide, mul, neg, pow, remainder, square
from .ops.comparison import (
    allclose,
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    eq,
    ge,
    gt,
    isclose,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    ne,
)
from .ops.complex import complex, polar, view_as_complex, view_as_real
from .ops.elementwise import (
    abs,
    cast,
    clamp,
    clip,
    clone,
    cos,
    exp,
    expm1,
    log,
    log1p,
    masked_fill,
    maximum,
    minimum,
    rsqrt,
    sign,
    sin,
    sqrt,
    tan,
    where,
)
from .ops.gaps_math import *  # noqa: F403  (docs/torch_gaps_math.md)
from .ops.gaps_tensor import *  # noqa: F403  (docs/torch_gaps_tensor.md)
from .ops.indexing import gather, index_add, index_select, one_hot, scatter_add, take_along_axis
from .ops.linalg import addmm, bmm, dot, einsum, matmul, mm, outer
from .ops.math import (
    acos,
    acosh,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    ceil,
    copysign,
    cosh,
    exp2,
    fix,
    floor,
    fmod,
    frac,
    hypot,
    lerp,
    log2,
    log10,
    logaddexp,
    logaddexp2,
    nan_to_num,
    round,
    sinh,
    trunc,
    xlogy,
)
from .ops.order import kthvalue, median, mode, msort, unique
from .ops.reduce import (
    all,
    amax,
    amin,
    aminmax,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumsum,
    max,
    mean,
    min,
    norm,
    prod,
    std,
    std_mean,
    sum,
    var,
    var_mean,
)
from .ops.scan import cummax, cummin, cumprod, logcumsumexp
from .ops.selection import argsort, index_put, masked_select, nonzero, scatter, sort, topk
from .ops.shape import (
    broadcast_to,
    cat,
    chunk,
    concatenate,
    expand,
    expand_dims,
    flatten,
    flip,
    pad,
    permute,
    repeat,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    transpose,
    tril,
    triu,
    unsqueeze,
    view,
)
from .ops.shape_index import (
    diag,
    diagonal,
    index_fill,
    meshgrid,
    moveaxis,
    movedim,
    narrow,
    repeat_interleave,
    scatter_reduce,
    take,
    trace,
    unflatten,
    unfold,
)
from .ops.softmax import log_softmax, logsumexp, softmax
from .ops.special import (
    digamma,
    erfc,
    erfinv,
    float_power,
    fmax,
    fmin,
    heaviside,
    ldexp,
    lgamma,
    nanmean,
    nansum,
    polygamma,
    positive,
    sgn,
    signbit,
    sinc,
)
from .ops.torch_extra import (
    addbmm,
    block_diag,
    cartesian_prod,
    cdist,
    cross,
    fliplr,
    flipud,
    histc,
    renorm,
    rot90,
    vander,
)
from .ops.torch_gaps import (  # quantile, cov, tensor_split, ...: docs/torch_gaps.md
    argwhere,
    atleast_3d,
    bincount,
    combinations,
    corrcoef,
    cov,
    diag_embed,
    dsplit,
    dstack,
    histogram,
    hsplit,
    nanquantile,
    pdist,
    quantile,
    tensor_split,
    vsplit,
)
from .runtime import (
    are_deterministic_algorithms_enabled,
    get_float32_matmul_precision,
    get_num_interop_threads,
    get_num_threads,
    is_deterministic_algorithms_warn_only_enabled,
    set_float32_matmul_precision,
    set_num_interop_threads,
    set_num_threads,
    use_deterministic_algorithms,
)
from .tensor import Size, Tensor, equal, is_floating_point, is_tensor, numel
from .tensor_gap_methods_tensor import (  # torch.sparse_coo & co., the layouts: docs/sparse.md
    jagged,
    sparse_bsc,
    sparse_bsr,
    sparse_coo,
    sparse_csc,
    sparse_csr,
)
from .torch_functions import (  # PyTorch's signatures (alpha=) and compositions of the ops
    add,
    addcdiv,
    addcmul,
    atleast_1d,
    atleast_2d,
    baddbmm,
    broadcast_shapes,
    broadcast_tensors,
    bucketize,
    clamp_max,
    clamp_min,
    column_stack,
    deg2rad,
    diff,
    dist,
    e,
    ger,
    hstack,
    inf,
    inner,
    isin,
    kron,
    logit,
    mv,
    nan,
    pi,
    rad2deg,
    ravel,
    reciprocal,
    relu_,
    row_stack,
    searchsorted,
    sigmoid_,
    sub,
    t,
    take_along_dim,
    tanh_,
    tensordot,
    tril_indices,
    triu_indices,
    vstack,
)
from .torch_misc import *  # noqa: F403  rsub, binomial, frombuffer, triangular_solve, ...
from .torch_toggles import *  # noqa: F403  torch.set_warn_always, ... (docs/torch_gaps_tensor.md)
from .torch_toplevel import asarray, can_cast, poisson, set_printoptions


def promote_types(type1, type2) -> dtype:
    """torch.promote_types: the dtype two dtypes promote to (see ops/_common.py's rule)."""
    return _wrap_dtype(_promote_types(type1, type2))


def result_type(tensor1, tensor2) -> dtype:
    """torch.result_type of two tensors or numbers (see ops/_common.py's rule)."""
    return _wrap_dtype(_result_type(tensor1, tensor2))


subtract = sub
multiply = mul
divide = div
true_divide = div
negative = neg
absolute = abs
power = pow
concat = concatenate  # torch.concat and torch.cat are one function

# torch.float32 & co.: descent.dtype objects (NumPy dtypes with torch.dtype's face: dtypes.py).
float16 = _wrap_dtype(_np.float16)
float32 = _wrap_dtype(_np.float32)
float64 = _wrap_dtype(_np.float64)
int8 = _wrap_dtype(_np.int8)
int16 = _wrap_dtype(_np.int16)
int32 = _wrap_dtype(_np.int32)
int64 = _wrap_dtype(_np.int64)
uint8 = _wrap_dtype(_np.uint8)
# PyTorch 2.3's "limited support" unsigned dtypes (docs/dtypes.md: descent computes with them)
uint16 = _wrap_dtype(_np.uint16)
uint32 = _wrap_dtype(_np.uint32)
uint64 = _wrap_dtype(_np.uint64)
bool = _wrap_dtype(_np.bool_)  # PyTorch's name
complex64 = cfloat = _wrap_dtype(_np.complex64)  # complex tensors: docs/complex.md
complex128 = cdouble = _wrap_dtype(_np.complex128)
half = float16
# descent.bfloat16 is ml_dtypes' bfloat16 (docs/bfloat16.md), made on first read by __getattr__
# below: importing ml_dtypes costs ~0.5 s, which `import descent` must not pay. The float8
# dtypes (descent.float8_e4m3fn, ...: docs/dtypes.md) are ml_dtypes' too, made the same way.
double = float64
float = float32  # PyTorch's names: torch.float is float32, torch.int int32, torch.long int64
int = int32
short = int16
long = int64

# PyTorch's meaning wins: the PyTorch API level descent follows, descent's release in the local
# label ("2.13.0+cpu" in PyTorch's CPU wheel). A str that compares as a version: torch_version.py.
from .torch_version import TorchVersion as _TorchVersion  # noqa: E402

__version__ = _TorchVersion("2.13.0+descent.0.1.0")

# `from descent import *` must not shadow Python's float and int (descent.float is a dtype).
__all__ = [name for name in dir()
           if not name.startswith("_") and name not in ("float", "int", "complex")]  # fmt: skip

# Subpackages load on first use (`descent.explain.gradcheck` after `import descent`), so that
# importing descent stays cheap and never pulls in optional dependencies.
_SUBPACKAGES = (
    "_dynamo", "_inductor",  # torch._dynamo / torch._inductor's config modules (docs/compile.md)
    "_higher_order_ops",  # torch._higher_order_ops: while_loop, scan, map (control_flow.py)
    "cpu", "mps", "xpu",  # device modules: torch.cpu / torch.mps / torch.xpu (docs/pytorch.md)
    "accelerator", "backends", "compiler", "cuda", "data", "distributed", "distributions",
    "explain", "io", "fft", "func", "hub", "jit", "library", "linalg", "models", "multiprocessing",
    "fx", "nn", "optim",  # fx: torch.fx (docs/fx.md)
    "overrides", "profiler", "quasirandom", "random", "serialization",  # serialization: save/load
    "masked", "signal", "sparse", "special", "testing", "train", "types", "utils", "version",
    "nested",  # torch.nested, jagged layout (docs/nested.md)
    "ao", "quantization",  # torch.ao.quantization & torch.quantization (docs/quantization.md)
    "__future__",  # torch.__future__: the module conversion switches (nn.Module.load_state_dict)
)  # fmt: skip

# torch's top-level linear algebra (torch.det, torch.inverse, ...) and special functions
# (torch.i0, torch.igamma, x.erf_(), ...) load with their modules on first use (~50 ms each at
# import otherwise); their Tensor methods (x.det(), x.i0()) reach them through the ops table.
_LINALG_NAMES = ("cholesky", "cholesky_inverse", "cholesky_solve", "det", "inverse", "logdet",
                 "lu", "lu_solve", "lu_unpack",
                 "matrix_exp", "matrix_power", "pinverse", "qr", "slogdet", "svd",
                 "triangular_solve")  # fmt: skip
_SPECIAL_NAMES = ("erf_", "erfc_", "exp2_", "i0", "i0_", "igamma", "igammac", "logit_",
                  "mvlgamma", "round_", "sinc_", "xlogy_")  # fmt: skip
_SPECIAL_METHODS = _SPECIAL_NAMES + ("erfinv_", "lgamma_", "digamma_", "polygamma_", "sgn_",
                                     "heaviside_", "mvlgamma_", "igamma_", "igammac_")  # fmt: skip
_tensor_methods.register_lazy(f"{__name__}.linalg_torch", _LINALG_NAMES)
_tensor_methods.register_lazy(f"{__name__}.special_torch", _SPECIAL_METHODS)
_tensor_methods.register_lazy(f"{__name__}.spectral", ("stft", "istft"))  # docs/complex.md
_tensor_methods.register_lazy(f"{__name__}.linalg_householder", ("geqrf", "orgqr", "ormqr"))
# docs/sparse.md
_SPARSE_METHODS = ("to_sparse", "to_sparse_csr", "to_sparse_csc", "to_sparse_bsr", "sparse_mask")
_tensor_methods.register_lazy(f"{__name__}.sparse", _SPARSE_METHODS)
# x.untyped_storage(), x.storage(), x.set_(): PyTorch's storage API (storage.py)
_tensor_methods.register_lazy(f"{__name__}.storage",
                              ("untyped_storage", "typed_storage", "storage_set_", "storage_type"))
__all__ += [*_LINALG_NAMES, *_SPECIAL_NAMES]  # `from descent import *` loads them


# torch._foreach_*: loops over lists of tensors (foreach.py, docs/foreach.md), loaded on first use.
_FOREACH_NAMES = (
    "_foreach_abs", "_foreach_abs_", "_foreach_acos", "_foreach_acos_", "_foreach_add",
    "_foreach_add_", "_foreach_addcdiv", "_foreach_addcdiv_", "_foreach_addcmul",
    "_foreach_addcmul_", "_foreach_asin", "_foreach_asin_", "_foreach_atan", "_foreach_atan_",
    "_foreach_ceil", "_foreach_ceil_", "_foreach_clamp_max", "_foreach_clamp_max_",
    "_foreach_clamp_min", "_foreach_clamp_min_", "_foreach_clone", "_foreach_copy_",
    "_foreach_cos", "_foreach_cos_", "_foreach_cosh", "_foreach_cosh_", "_foreach_div",
    "_foreach_div_", "_foreach_erf", "_foreach_erf_", "_foreach_erfc", "_foreach_erfc_",
    "_foreach_exp", "_foreach_exp_", "_foreach_expm1", "_foreach_expm1_", "_foreach_floor",
    "_foreach_floor_", "_foreach_frac", "_foreach_frac_", "_foreach_lerp", "_foreach_lerp_",
    "_foreach_lgamma", "_foreach_lgamma_", "_foreach_log", "_foreach_log10", "_foreach_log10_",
    "_foreach_log1p", "_foreach_log1p_", "_foreach_log2", "_foreach_log2_", "_foreach_log_",
    "_foreach_max", "_foreach_maximum", "_foreach_maximum_", "_foreach_minimum",
    "_foreach_minimum_", "_foreach_mm", "_foreach_mul", "_foreach_mul_", "_foreach_neg",
    "_foreach_neg_", "_foreach_norm", "_foreach_pow", "_foreach_pow_", "_foreach_powsum",
    "_foreach_reciprocal",
    "_foreach_reciprocal_", "_foreach_round", "_foreach_round_", "_foreach_rsqrt",
    "_foreach_rsqrt_", "_foreach_sigmoid", "_foreach_sigmoid_", "_foreach_sign", "_foreach_sign_",
    "_foreach_sin", "_foreach_sin_", "_foreach_sinh", "_foreach_sinh_", "_foreach_sqrt",
    "_foreach_sqrt_", "_foreach_sub", "_foreach_sub_", "_foreach_tan", "_foreach_tan_",
    "_foreach_tanh", "_foreach_tanh_", "_foreach_trunc", "_foreach_trunc_", "_foreach_zero_",
)  # fmt: skip
# torch.save / torch.load live in descent.io (safetensors + JSON, no pickle), loaded on first use.
_LAZY_FUNCTIONS = {
    "save": ("io", "save_object"),
    "load": ("io", "load_object"),
    "compile": ("compiler", "compile"),  # torch.compile: record a step once, replay it
    "_scaled_mm": ("ops.float8", "scaled_mm"),  # float8 matrix product (docs/dtypes.md)
    "vmap": ("func", "vmap"),  # torch.vmap is torch.func.vmap (a loop here: docs/func.md)
    "stft": ("spectral", "stft"),  # torch.stft / istft over descent.fft (docs/complex.md)
    "istft": ("spectral", "istft"),
    "segment_reduce": ("torch_segment", "segment_reduce"),  # per-segment pooling (graphs)
    "svd_lowrank": ("linalg_lowrank", "svd_lowrank"),  # randomised SVD / PCA (docs/linalg.md)
    "pca_lowrank": ("linalg_lowrank", "pca_lowrank"),
    "lobpcg": ("linalg_lobpcg", "lobpcg"),  # a few extreme eigenpairs (docs/linalg.md)
    "geqrf": ("linalg_householder", "geqrf"),  # Householder QR and its Q (docs/linalg.md)
    "orgqr": ("linalg_householder", "orgqr"),
    "ormqr": ("linalg_householder", "ormqr"),
    **{name: ("linalg_torch", name) for name in _LINALG_NAMES},
    **{name: ("foreach", name) for name in _FOREACH_NAMES},  # torch._foreach_* (foreach.py)
    **{name: ("special_torch", name) for name in _SPECIAL_NAMES},
}
# descent.sparse (docs/sparse.md) and torch.cond / torch.while_loop (control_flow.py) load on
# first use too: most programs never make a sparse tensor (~15 ms and 7 modules at import).
_LAZY_TOPLEVEL = {
    "sparse_coo_tensor": ("sparse.tensor", "sparse_coo_tensor"),
    "sparse_csr_tensor": ("sparse.csr", "sparse_csr_tensor"),
    "sparse_csc_tensor": ("sparse.compressed", "sparse_csc_tensor"),
    "sparse_bsr_tensor": ("sparse.compressed", "sparse_bsr_tensor"),
    "sparse_compressed_tensor": ("sparse.compressed", "sparse_compressed_tensor"),
    "spmm": ("sparse", "_spmm"),
    "cond": ("control_flow", "cond"),
    # quantized tensors (quantization/qtensor.py, docs/quantization.md): descent.quint8, ...
    **{name: ("quantization.qtensor", name) for name in (
        "quint8", "qint8", "qint32", "qscheme", "per_tensor_affine", "per_channel_affine",
        "per_tensor_symmetric", "per_channel_symmetric", "per_channel_affine_float_qparams",
        "quantize_per_tensor", "quantize_per_channel", "quantize_per_tensor_dynamic",
        "dequantize")},
    "while_loop": ("control_flow", "while_loop"),
    # PyTorch's storage API (storage.py): x.untyped_storage() and the storage classes
    **{name: ("storage", name) for name in (
        "UntypedStorage", "TypedStorage", "BoolStorage", "ByteStorage", "CharStorage",
        "ShortStorage", "IntStorage", "LongStorage", "HalfStorage", "FloatStorage",
        "DoubleStorage", "ComplexFloatStorage", "ComplexDoubleStorage", "BFloat16Storage")},
}
_LAZY_FUNCTIONS.update(_LAZY_TOPLEVEL)
__all__ += [*_LAZY_TOPLEVEL]  # `from descent import *` loads them


def __getattr__(name: str):
    if name == "bfloat16":
        from .dtypes import bfloat16_dtype  # noqa: PLC0415

        globals()["bfloat16"] = bf16 = _wrap_dtype(bfloat16_dtype())  # later reads skip this
        return bf16
    if name.startswith("float8_"):
        from .dtypes import FLOAT8_NAMES, float8_dtype  # noqa: PLC0415

        if name in FLOAT8_NAMES:
            globals()[name] = f8 = _wrap_dtype(float8_dtype(name))
            return f8
    if name in _SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_FUNCTIONS:
        module, attr = _LAZY_FUNCTIONS[name]
        return getattr(_importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module 'descent' has no attribute {name!r}")


def _alias_submodule(name: str, target: str) -> None:
    """Make `import descent.<name>` load descent.<target> on first attribute use (PyTorch's
    `from torch.autograd.functional import jacobian`, where descent.autograd is a module, not a
    package, so its "submodule" must be in sys.modules). Loading is lazy (importlib's
    LazyLoader): importing descent does not import the target."""
    import importlib.util as _util  # noqa: PLC0415
    import sys as _sys  # noqa: PLC0415

    qualified = f"{__name__}.{name}"
    if qualified in _sys.modules:
        return
    real = f"{__name__}.{target}"
    if real in _sys.modules:  # already loaded: alias the module itself
        _sys.modules[qualified] = _sys.modules[real]
        return
    spec = _util.find_spec(real)
    spec.loader = _util.LazyLoader(spec.loader)
    module = _util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # One object under both names: when it loads, LazyLoader checks that sys.modules[real] is
    # this very module (else "substituted in sys.modules during a lazy load", which a later
    # `from descent import autograd_functional` would cause).
    _sys.modules[qualified] = _sys.modules[real] = module


_alias_submodule("autograd.functional", "autograd_functional")
_alias_submodule("autograd.function", "autograd_function")
_alias_submodule("autograd.graph", "autograd_graph")

# torch.autograd.forward_ad: `import descent.autograd.forward_ad as fwAD` and the attribute
# `descent.autograd.forward_ad` are one module object (it holds the active level), loaded now
# (it is small and imports only the core).
from . import autograd_forward_ad as _forward_ad  # noqa: E402

_importlib.import_module("sys").modules[f"{__name__}.autograd.forward_ad"] = _forward_ad
autograd.forward_ad = _forward_ad

# PyTorch's keyword names on the top-level functions (torch.sum(input=x), torch.mm(input=a,
# mat2=b)): the functions are re-made once with renamed parameters, at no per-call cost.
from .torch_keywords import apply_torch_names as _apply_torch_names  # noqa: E402

_apply_torch_names(globals())

# PyTorch's out= on the less frequently called functions (out_functions.py; the hot ones take
# out=None in their own definitions, at no cost to the call without it).
from .out_functions import install as _install_out  # noqa: E402

_install_out(globals())

# NumPy's keyword names where PyTorch's parser takes them (torch.topk(t, 1, axis=0),
# t.kthvalue(1, axis=0, keepdims=True)) on the functions with a `dim` and no `axis` of their own
# (torch_keywords.NUMPY_ALIASES); the hot functions take `axis` / `keepdims` in their signatures.
from .torch_keywords import apply_numpy_aliases as _apply_numpy_aliases  # noqa: E402

_apply_numpy_aliases(globals(), Tensor)
