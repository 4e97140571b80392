"""Every `DESCENT_*` environment variable, declared, read and checked in this one module.

descent reads no other environment variable of its own anywhere else (tests/test_settings.py
checks the source tree for stray reads). Each setting below has a name, its allowed values (or
None for free text such as a path), its default and a one-line meaning; docs/settings.md
renders the same table for readers, and a test keeps the two equal.

When each is read:
  * the process settings (`KERNELS`, `FUSED`, `FUSED_STRICT`, `MALLOC_TUNE`, `BLAS`) once,
    when descent is imported: a bad value stops the import with an error that names the
    variable and its allowed values, instead of failing inside the first softmax much later;
  * the paths (`DESCENT_DATA`, `DESCENT_CACHE`) each time a corpus is looked up, through
    `data_path()` and `cache_path()`, so a script (or a test) may set them after the import;
  * the test-suite and benchmark settings by those programs, through `get(name)`.

A `DESCENT_*` variable that is not a setting (a typo such as `DESCENT_KERNEL`) is reported with
a warning at import, since otherwise it would be ignored without a word.

This module sits at the bottom of the package: it imports only the standard library.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One environment variable: `choices` maps each allowed value to what it means (None for
    free text, which `text` describes: a path, an integer); `default` is the value used when
    the variable is unset or empty; `scope` says who reads it ('library', 'tests' or
    'benchmarks')."""

    name: str
    summary: str
    choices: dict[str, str] | None = None
    default: str | None = None
    scope: str = "library"
    text: str = "a path"


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "DESCENT_KERNELS",
            "which code runs the hot CPU ops (GELU, softmax, layer norm, Adam)",
            {
                "auto": "numba's compiled kernels when numba is installed, else pure NumPy",
                "numba": "the numba kernels; an error at import when numba is missing",
                "numpy": "pure NumPy (the reference path; same results to float32 rounding)",
            },
            "auto",
        ),
        Setting(
            "DESCENT_FUSED",
            "whether ops may use fused kernels at all (CUDA, and numba on the CPU)",
            {"1": "use them where they apply", "0": "always run the generic array code"},
            "1",
        ),
        Setting(
            "DESCENT_FUSED_STRICT",
            "what a fused CUDA kernel that fails to compile or launch does",
            {
                "0": "warn once and fall back to the generic CuPy code",
                "1": "raise the error (the GPU test run sets this)",
            },
            "0",
        ),
        Setting(
            "DESCENT_MALLOC_TUNE",
            "glibc malloc tuning for the whole process (`descent.backend.tune_malloc()`)",
            {
                "auto": "applied only where a program asks for it: the `descent` command and "
                "the benchmarks call `tune_malloc()`; a library user's process is left alone",
                "1": "also applied when descent is imported (your own training scripts)",
                "0": "never: `tune_malloc()` does nothing, even in the CLI",
            },
            "auto",
        ),
        Setting(
            "DESCENT_BLAS",
            "which BLAS runs descent's float32/float64 matrix products (read at import; "
            "`descent.backends.set_blas` switches later)",
            {
                "openblas": "NumPy's OpenBLAS",
                "mkl": "Intel MKL from the `mkl` extra (pip install 'descent[mkl]'); an error "
                "at import when it is missing",
                "auto": "MKL where the `mkl` extra is installed and the CPU is an Intel one "
                "with AVX-512, else OpenBLAS",
            },
            "openblas",
        ),
        Setting(
            "DESCENT_DATA",
            "a local copy of tinyshakespeare, used instead of the cache or a download "
            "(`descent.data.shakespeare()`; `examples/train_gpt.py` also takes 'python')",
        ),
        Setting(
            "DESCENT_CACHE",
            "the download cache directory (default `~/.cache/descent`)",
        ),
        Setting(
            "DESCENT_TEST_DEVICE",
            "what the test suite's `xp` fixture runs on",
            {
                "": "NumPy, plus CuPy where a GPU exists (skipped otherwise)",
                "cpu": "NumPy only",
                "cuda": "NumPy and CuPy; a missing GPU is an error, not a skip",
            },
            "",
            scope="tests",
        ),
        Setting(
            "DESCENT_TEST_WORKER",
            "internal: set by a DataLoader worker_init_fn in tests/compat/test_utils_data.py, "
            "which checks that it reaches the worker",
            scope="tests",
            text="an integer",
        ),
        Setting(
            "DESCENT_BENCH_THREADS",
            "BLAS/torch threads for both libraries in `make bench` (default: one per core)",
            scope="benchmarks",
            text="an integer",
        ),
        Setting(
            "DESCENT_BENCH_REEXEC",
            "internal: set by a benchmark that re-executed itself without OPENBLAS_* variables",
            {"1": "already re-executed"},
            scope="benchmarks",
        ),
    )
}


class SettingError(ValueError):
    """A `DESCENT_*` environment variable holds a value that is not one of its allowed values."""


def get(name: str, environ=None) -> str | None:
    """The value of setting `name` now (its default when unset or empty), checked.

    Values with a fixed set of choices are compared without case or surrounding spaces and
    returned lower-cased; free-text values (paths) come back as they are, or None when unset.

    Raises:
        KeyError: `name` is not a setting (see SETTINGS).
        SettingError: the value is not one of the setting's allowed values.
    """
    setting = SETTINGS.get(name)
    if setting is None:
        raise KeyError(f"{name} is not a descent setting; known: {', '.join(SETTINGS)}")
    raw = (os.environ if environ is None else environ).get(name)
    if setting.choices is None:
        return raw if raw else setting.default
    value = (raw or "").strip().lower()
    if not value:
        return setting.default
    if value not in setting.choices:
        names = ", ".join(repr(v) for v in setting.choices)
        meanings = "; ".join(f"{v!r}: {m}" for v, m in setting.choices.items())
        default = f", or unset it for the default {setting.default!r}" if setting.default else ""
        raise SettingError(
            f"environment variable {name}={raw!r} is not one of its allowed values {names} "
            f"({meanings}). Set one of them{default} (docs/settings.md lists every setting)."
        )
    return value


def unknown_names(environ=None) -> list[str]:
    """The `DESCENT_*` variables set in `environ` that are not settings (typos, usually)."""
    env = os.environ if environ is None else environ
    return sorted(k for k in env if k.startswith("DESCENT_") and k not in SETTINGS)


def _warn_unknown() -> None:
    for name in unknown_names():
        close = difflib.get_close_matches(name, list(SETTINGS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.warn(
            f"environment variable {name} is not a descent setting and is ignored{hint}; "
            "docs/settings.md lists them all",
            RuntimeWarning,
            stacklevel=3,
        )


def data_path() -> str | None:
    """`$DESCENT_DATA`, read now (None when unset or empty)."""
    return get("DESCENT_DATA")


def cache_path() -> str | None:
    """`$DESCENT_CACHE`, read now (None when unset or empty)."""
    return get("DESCENT_CACHE")


# The process settings, read once at import (see the module docstring).
KERNELS: str = get("DESCENT_KERNELS")  # 'auto' | 'numba' | 'numpy'
if KERNELS == "numba" and importlib.util.find_spec("numba") is None:
    raise ImportError(
        "environment variable DESCENT_KERNELS='numba' asks for the compiled CPU kernels, but "
        "numba is not installed: pip install 'descent[fast]' (numba>=0.60), or unset "
        "DESCENT_KERNELS (then numba is used when installed)"
    )
FUSED: bool = get("DESCENT_FUSED") == "1"
FUSED_STRICT: bool = get("DESCENT_FUSED_STRICT") == "1"
MALLOC_TUNE: str = get("DESCENT_MALLOC_TUNE")  # 'auto' | '1' | '0'
BLAS: str = get("DESCENT_BLAS")  # 'openblas' | 'mkl' | 'auto' (applied by descent.blas)
_warn_unknown()


def table_markdown() -> str:
    """The settings as the Markdown table of docs/settings.md."""
    rows = ["| Variable | Read by | Values (default first) | Meaning |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        if s.choices is None:
            values = s.text
        else:
            order = sorted(s.choices, key=lambda v: v != s.default)
            values = "<br>".join(
                f"`{v or '(unset)'}`{' (default)' if v == s.default else ''}: {s.choices[v]}"
                for v in order
            )
        rows.append(f"| `{s.name}` | {s.scope} | {values} | {s.summary} |")
    return "\n".join(rows) + "\n"
