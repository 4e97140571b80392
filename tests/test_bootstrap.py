"""A new user's two commands: on a fresh clone, `make test` alone installs everything the suite
needs (the pinned PyTorch oracle included) and `make lint` everything the lint needs.

These tests check the recipe without installing anything (a fresh clone's `make -n`, and the
extras against what the test files import); `.ci/run` then runs `make test` for real in a fresh
clone with no virtualenv (see README, "Two commands").
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
TORCH_PIN = "torch==2.13.0"

needs_git_make = pytest.mark.skipif(
    not (shutil.which("git") and shutil.which("make") and (ROOT / ".git").exists()),
    reason="needs git, make and a git checkout",
)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string ('Foo_bar>=1' -> 'foo-bar')."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def test_the_test_extra_is_the_one_list_and_pins_the_oracle():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert TORCH_PIN in extras["test"]
    # PyTorch appears nowhere else unpinned: not in another extra, the Makefile or CI.
    for name, reqs in extras.items():
        for r in reqs:
            assert _name(r) != "torch" or r == TORCH_PIN, (name, r)
    for path in (ROOT / "Makefile", ROOT / ".ci" / "run"):
        text = path.read_text(encoding="utf-8")
        assert "torch" not in text.replace("pytorch", ""), f"{path.name} installs torch itself"
        assert "pip install" not in text or path.name == "Makefile", path
    lint = {_name(r) for r in extras["lint"]}
    assert {"ruff", "import-linter"} <= lint


def _local_modules() -> set[str]:
    """The names a test file may import from tests/ itself (its files and folders)."""
    return {p.stem for p in TESTS.rglob("*.py")} | {p.name for p in TESTS.iterdir() if p.is_dir()}


def _third_party_imports(path: Path, local: set[str] | None = None) -> set[str]:
    """Top-level modules a test file imports (also through pytest.importorskip) that are
    neither stdlib nor files in tests/ (`local`: _local_modules(), computed once by a caller
    that asks for every file: 30% of the time when it was recomputed per file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip"
              and node.args and isinstance(node.args[0], ast.Constant)):  # fmt: skip
            names.add(str(node.args[0].value).split(".")[0])
    local = _local_modules() if local is None else local
    return {n for n in names if n not in sys.stdlib_module_names and n not in local}


def test_every_module_the_tests_import_comes_from_the_declared_extras():
    # Each third-party module the test files import must be provided by a distribution that
    # pyproject.toml declares (core dependencies or the test extra), so that `make test` on a
    # machine that has nothing installs it and no test skips for want of a package. Only CuPy
    # is left out: it needs a CUDA GPU (the `gpu` extra; scripts/gpu_check.sh installs it).
    project = _pyproject()["project"]
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for r in project["optional-dependencies"]["test"]}
    optional = {"cupy", "cupyx", "descent"}
    providers = md.packages_distributions()
    missing = {}
    local = _local_modules()
    for path in sorted(TESTS.rglob("*.py")):
        for module in _third_party_imports(path, local) - optional:
            dists = {_name(d) for d in providers.get(module, [module])}
            if not dists & declared:
                missing.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"tests import modules that no declared dependency provides: {missing}"


@needs_git_make
def test_make_test_in_a_fresh_clone_creates_the_venv_and_installs_the_test_extra(tmp_path):
    clone = tmp_path / "descent"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone / ".venv").exists()
    plan = subprocess.run(
        ["make", "-n", "test", "PYTHON=python3"], cwd=clone, capture_output=True, text=True,
        check=True, timeout=60,
    ).stdout  # fmt: skip
    steps = plan.splitlines()
    venv = next(i for i, s in enumerate(steps) if "-m venv .venv" in s)
    install = next(i for i, s in enumerate(steps) if "pip install" in s and "'.[test]'" in s)
    run = next(i for i, s in enumerate(steps) if "-m pytest" in s)
    assert venv < install < run, plan
    lint_plan = subprocess.run(
        ["make", "-n", "lint"], cwd=clone, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "'.[lint]'" in lint_plan and "ruff check src tests benchmarks" in lint_plan
    assert "lint-imports" in lint_plan


def test_ci_runs_make_test_and_make_lint():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test\b", ci, re.M) and re.search(r"^make lint\b", ci, re.M)
    assert "make -C" in ci and "git clone" in ci  # the from-nothing step
