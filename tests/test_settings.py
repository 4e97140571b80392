"""descent.settings: every DESCENT_* variable read and checked in one module; no hidden
process-wide tuning (glibc malloc is tuned only where a program asks for it).

Import-time behaviour is tested in fresh interpreters (subprocesses): the settings are read once
per process, when descent is imported.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from descent import settings

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "descent"
GLIBC = platform.libc_ver()[0] == "glibc"


def _python(code: str, **env_over: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    env.update({k: v for k, v in env_over.items() if v is not None})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, bad",
    [("DESCENT_KERNELS", "fortran"), ("DESCENT_FUSED", "yes"), ("DESCENT_FUSED_STRICT", "2"),
     ("DESCENT_MALLOC_TUNE", "on"), ("DESCENT_TEST_DEVICE", "tpu")],
)  # fmt: skip
def test_bad_value_names_the_variable_and_its_allowed_values(name, bad):
    with pytest.raises(settings.SettingError) as info:
        settings.get(name, environ={name: bad})
    msg = str(info.value)
    assert f"{name}={bad!r}" in msg
    for value in settings.SETTINGS[name].choices:
        assert repr(value) in msg
    assert "docs/settings.md" in msg


def test_values_are_normalised_and_default_when_unset_or_empty():
    assert settings.get("DESCENT_KERNELS", environ={"DESCENT_KERNELS": " NumPy "}) == "numpy"
    assert settings.get("DESCENT_KERNELS", environ={}) == "auto"
    assert settings.get("DESCENT_KERNELS", environ={"DESCENT_KERNELS": ""}) == "auto"
    assert settings.get("DESCENT_FUSED", environ={}) == "1"
    assert settings.get("DESCENT_MALLOC_TUNE", environ={}) == "auto"
    assert settings.get("DESCENT_DATA", environ={}) is None
    assert settings.get("DESCENT_DATA", environ={"DESCENT_DATA": "~/x.txt"}) == "~/x.txt"
    with pytest.raises(KeyError, match="DESCENT_KERNEL is not a descent setting"):
        settings.get("DESCENT_KERNEL")


def test_bad_value_stops_the_import_not_the_first_op():
    # Before: DESCENT_KERNELS=fortran imported fine and raised inside the first softmax.
    r = _python("import descent", DESCENT_KERNELS="fortran")
    assert r.returncode != 0
    assert "SettingError" in r.stderr and "DESCENT_KERNELS='fortran'" in r.stderr
    assert "'auto', 'numba', 'numpy'" in r.stderr
    r = _python("import descent", DESCENT_FUSED="off")
    assert r.returncode != 0 and "DESCENT_FUSED='off'" in r.stderr


def test_numba_requested_but_missing_fails_at_import():
    hide_numba = (
        "import importlib.util as u; real = u.find_spec; "
        "u.find_spec = lambda name, *a: None if name == 'numba' else real(name, *a); "
        "import descent"
    )
    r = _python(hide_numba, DESCENT_KERNELS="numba")
    assert r.returncode != 0 and "ImportError" in r.stderr
    assert "DESCENT_KERNELS='numba'" in r.stderr and "descent[fast]" in r.stderr
    assert _python(hide_numba).returncode == 0  # unset: the NumPy path, no error


def test_unknown_descent_variable_warns_with_a_suggestion():
    typo = {"DESCENT_KERNEL": "numpy", "PATH": "/bin"}
    assert settings.unknown_names(typo) == ["DESCENT_KERNEL"]
    r = _python("import descent", DESCENT_KERNEL="numpy")
    assert r.returncode == 0
    assert "DESCENT_KERNEL is not a descent setting" in r.stderr
    assert "did you mean DESCENT_KERNELS?" in r.stderr


def test_process_settings_reach_the_modules_that_use_them():
    code = (
        "from descent import backend; from descent.kernels import cpu; "
        "assert not cpu.enabled() and not backend._fused_enabled; "
        "assert backend.settings.FUSED_STRICT"
    )
    r = _python(code, DESCENT_KERNELS="numpy", DESCENT_FUSED="0", DESCENT_FUSED_STRICT="1")
    assert r.returncode == 0, r.stderr


# -- one module reads them, one table documents them --------------------------------------------

_ENV_READ = re.compile(r"""(environ\b[^\n]*|getenv\([^\n]*)["']DESCENT_""")


def test_no_module_but_settings_reads_a_descent_variable():
    stray = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "settings.py" and path.parent == SRC:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _ENV_READ.search(line):
                stray.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not stray, "read DESCENT_* through descent.settings:\n" + "\n".join(stray)
    # and the check itself sees a read when there is one
    assert _ENV_READ.search('x = os.environ.get("DESCENT_FOO", "1")')
    assert _ENV_READ.search("os.getenv('DESCENT_FOO')")


def test_every_descent_name_in_the_project_is_a_setting():
    # A DESCENT_* word anywhere in the project is a declared setting or a C macro of the CUDA
    # kernels (this file, settings.py and docs/settings.md name a typo on purpose: left out).
    not_env = {"DESCENT_INF", "DESCENT_NAN", "DESCENT_HOST_EMULATION"}
    doc = ROOT / "docs" / "settings.md"
    paths = [ROOT / "Makefile", ROOT / ".ci" / "run", ROOT / "README.md"]
    for folder in ("src", "tests", "benchmarks", "scripts", "examples", "docs"):
        paths += [p for p in (ROOT / folder).rglob("*")
                  if p.suffix in (".py", ".sh", ".md", ".h", ".cu") and p.is_file()]  # fmt: skip
    found = set()
    for path in paths:
        if path.resolve() not in (Path(__file__).resolve(), SRC / "settings.py", doc):
            found |= set(re.findall(r"\bDESCENT_[A-Z0-9_]+", path.read_text("utf-8")))
    undeclared = found - not_env - set(settings.SETTINGS)
    assert not undeclared, f"declare these in descent.settings (and docs/settings.md): {undeclared}"


def test_docs_table_is_the_settings_table():
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings.table_markdown() in doc, (
        "docs/settings.md is out of date: paste descent.settings.table_markdown() into it"
    )
    assert "docs/settings.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# -- process-wide tuning is explicit ------------------------------------------------------------

# Records each lookup of `mallopt` in a ctypes.CDLL loaded after this line (`lib.mallopt` goes
# through __getitem__ too).
_SPY = (
    "import ctypes, sys; calls = []; Real = ctypes.CDLL\n"
    "class Spy(Real):\n"
    "    def __getitem__(self, name):\n"
    "        calls.extend([name] if name == 'mallopt' else [])\n"
    "        return Real.__getitem__(self, name)\n"
    "ctypes.CDLL = Spy\n"
)
# Runs the ops that used to tune malloc on their first call: softmax, GELU, layer norm,
# cross-entropy (forward and backward) and an Adam step.
_OPS = (
    "import numpy as np, descent as ds\n"
    "import descent.nn.functional as F\n"
    "x = ds.randn(4, 8, requires_grad=True)\n"
    "w = ds.nn.Parameter(ds.ones(8))\n"
    "y = F.layer_norm(F.gelu(x) * w, (8,))\n"
    "loss = F.cross_entropy(y, ds.tensor(np.arange(4))) + F.softmax(y, dim=-1).sum()\n"
    "loss.backward()\n"
    "ds.optim.AdamW([w], lr=1e-3).step()\n"
)


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
@pytest.mark.parametrize("kernels", ["numpy", "auto"])
def test_ops_never_tune_malloc(kernels):
    then = (
        "from descent import backend\n"
        "assert 'mallopt' not in calls and not backend.malloc_tuned(), calls\n"
        "assert backend.tune_malloc() is True and backend.malloc_tuned()\n"
        "assert calls.count('mallopt') == 1, calls\n"  # looked up once (and called twice)
        "assert backend.tune_malloc() is True and calls.count('mallopt') == 1\n"  # once only
    )
    code = _SPY + _OPS + then
    r = _python(code, DESCENT_KERNELS=kernels)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_malloc_tune_setting_opts_in_at_import_or_out_everywhere():
    opted_in = "from descent import backend\nassert backend.malloc_tuned() and 'mallopt' in calls"
    r = _python(_SPY + opted_in, DESCENT_MALLOC_TUNE="1")
    assert r.returncode == 0, r.stderr
    opted_out = (
        "from descent import backend\n"
        "assert backend.tune_malloc() is False and not backend.malloc_tuned()\n"
        "assert 'mallopt' not in calls"
    )
    r = _python(_SPY + opted_out, DESCENT_MALLOC_TUNE="0")
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_the_cli_as_the_program_tunes_malloc_but_not_when_called_from_another():
    code = (
        "import sys; from descent import backend, cli\n"
        "assert cli.main([]) == 2 and not backend.malloc_tuned()\n"  # called with argv
        "sys.argv = ['descent']\n"
        "assert cli.main() == 2 and backend.malloc_tuned()\n"  # the `descent` command itself
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
