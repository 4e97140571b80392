"""Gradient reports (one moment of training) and run reports (a whole training run).

`gradient_report(model)` after `loss.backward()` describes every parameter tensor's gradient:

* its size: L2 norm, mean |g|, largest |g|, and RMS = norm / sqrt(numel);
* its direction: the share of entries with g > 0 and g < 0. Gradient descent moves each knob
  against its gradient, so g > 0 means "this weight will go down" and g < 0 "up";
* the update-to-weight ratio ||w_after - w_before|| / ||w_before|| of the last optimizer step
  (a healthy run is often around 1e-3 per step; Karpathy's rule of thumb), when the weights
  before the step are known (`before=`, `watch_updates(optimizer)` or a GradientMonitor);
* for tensors driven by `descent.optim.Muon` (pass the optimizer), the singular values of the
  update the next step makes, before and after Newton-Schulz orthogonalisation (`muon`):
  before, a few directions dominate (spread = largest / smallest singular value, often
  100x or more); after, every direction gets about the same step (singular values near 1);
* flags, with the thresholds printed under the table (`Thresholds`):
    non-finite  any NaN or Inf in the gradient;
    dead        every entry exactly zero (or no gradient reached the parameter at all);
    vanishing   RMS below `vanishing_rms` (absolute), or below `vanishing_relative` times the
                median RMS of the model's gradients (a layer starved relative to the others);
    exploding   norm above `exploding_norm`, or RMS above `exploding_relative` times the median.

`write_report(out_dir)` reads a run's folder (metrics.jsonl written by the trainer,
gradients.jsonl and landscape.json written by `monitor.ReportCallback`) and writes
`OUT/report.html` with a summary in words at the top (see `analyze_run`).
"""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = [
    "Finding",
    "GradientReport",
    "ParamGradStats",
    "RunAnalysis",
    "Thresholds",
    "analyze_run",
    "gradient_report",
    "load_run",
    "watch_updates",
    "write_report",
]


@dataclass(frozen=True)
class Thresholds:
    """When a gradient gets a flag (see the module docstring for the meaning of each)."""

    vanishing_rms: float = 1e-7
    vanishing_relative: float = 1e-4
    exploding_norm: float = 1e3
    exploding_relative: float = 1e4

    def describe(self) -> str:
        return (
            f"vanishing: RMS < {self.vanishing_rms:g} or < {self.vanishing_relative:g} x median "
            f"RMS; exploding: norm > {self.exploding_norm:g} or RMS > "
            f"{self.exploding_relative:g} x median RMS; dead: all entries exactly 0 (or no "
            "gradient); non-finite: any NaN/Inf"
        )


@dataclass
class ParamGradStats:
    """The gradient of one parameter tensor (see the module docstring)."""

    name: str
    shape: tuple[int, ...]
    norm: float
    rms: float
    mean_abs: float
    max_abs: float
    frac_pos: float
    frac_neg: float
    weight_norm: float
    update_ratio: float | None = None
    has_grad: bool = True
    nonfinite: int = 0
    flags: list[str] = field(default_factory=list)
    # Muon-driven tensors only: singular values of the next update before / after
    # orthogonalisation, {"before": [min, max], "after": [min, max]} (see muon_spectrum).
    muon: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}  # fmt: skip


@dataclass
class GradientReport:
    """Per-parameter gradient figures and flags; prints as a table, converts to dict/JSON."""

    params: list[ParamGradStats]
    thresholds: Thresholds = field(default_factory=Thresholds)
    step: int | None = None
    # Mixture-of-experts layers (explain/moe.py): routing, aux losses, per-expert gradients.
    moe: list = field(default_factory=list)

    @property
    def flagged(self) -> dict[str, list[str]]:
        """name -> flags, for the parameters (and MoE layers) with at least one flag."""
        out = {p.name: list(p.flags) for p in self.params if p.flags}
        out.update({m.name: list(m.flags) for m in self.moe if m.flags})
        return out

    @property
    def healthy(self) -> bool:
        return not self.flagged

    def __getitem__(self, name: str) -> ParamGradStats:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"no parameter named {name!r}; have {[p.name for p in self.params]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "thresholds": asdict(self.thresholds),
            "params": [p.to_dict() for p in self.params],
            "moe": [m.to_dict() for m in self.moe],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __str__(self) -> str:
        head = ("parameter", "shape", "|g|", "mean|g|", "max|g|", "up/down", "upd/w", "flags")
        rows = [head]
        for p in self.params:
            if not p.has_grad:
                rows.append((p.name, _shape(p.shape), "-", "-", "-", "-", "-", ",".join(p.flags)))
                continue
            # g < 0 -> the knob moves up; g > 0 -> down (descent goes against the gradient)
            updown = f"{100 * p.frac_neg:.0f}%/{100 * p.frac_pos:.0f}%"
            upd = "-" if p.update_ratio is None else f"{p.update_ratio:.2e}"
            rows.append((p.name, _shape(p.shape), f"{p.norm:.3e}", f"{p.mean_abs:.2e}",
                         f"{p.max_abs:.2e}", updown, upd, ",".join(p.flags) or "ok"))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        muon = [p for p in self.params if p.muon]
        if muon:
            lines.append("Muon: singular values of the next update, before -> after "
                         "orthogonalisation")  # fmt: skip
            for p in muon:
                (b0, b1), (a0, a1) = p.muon["before"], p.muon["after"]
                lines.append(f"  {p.name}: {b0:.2e}..{b1:.2e} (spread {_spread(b0, b1)}) -> "
                             f"{a0:.2f}..{a1:.2f} (spread {_spread(a0, a1)})")  # fmt: skip
        if self.moe:
            from .moe import describe_moe

            lines.extend(describe_moe(self.moe))
        title = "gradient report" + (f" (step {self.step})" if self.step is not None else "")
        verdict = (
            "all gradients healthy"
            if self.healthy
            else "; ".join(f"{n}: {', '.join(f)}" for n, f in self.flagged.items())
        )
        notes = [
            "up/down: share of entries whose knob moves up (g < 0) / down (g > 0) in descent",
            "upd/w: |update| / |weight| of the last optimizer step",
            "flags: " + self.thresholds.describe(),
        ]
        return "\n".join([title, *lines, "verdict: " + verdict, *notes])


def _spread(lo: float, hi: float) -> str:
    return f"{hi / lo:.3g}x" if lo > 0 else "inf (rank-deficient)"


def muon_spectrum(update, ortho) -> dict[str, list[float]] | None:
    """{"before": [min, max], "after": [min, max]} singular values of a Muon update U and of
    its orthogonalised NS(U) (Muon promises "after" near [0.7, 1.2] for a full-rank U); None
    when U is not finite (the non-finite flag says why)."""
    mats = [backend.as_numpy(m).astype(np.float64) for m in (update, ortho)]
    if not all(np.isfinite(m).all() for m in mats):
        return None
    sv = [np.linalg.svd(m, compute_uv=False) for m in mats]
    return {k: [float(s.min()), float(s.max())] for k, s in zip(("before", "after"), sv)}


def _shape(s) -> str:
    return "x".join(str(int(d)) for d in s) or "scalar"


def _named_params(model) -> list[tuple[str, Any]]:
    if hasattr(model, "named_parameters"):
        return list(model.named_parameters())
    if isinstance(model, dict):
        return list(model.items())
    return [(f"param{i}", p) for i, p in enumerate(model)]


def tensor_grad_stats(name: str, p, before=None) -> ParamGradStats:
    """The figures of one parameter's gradient (flags are set by `apply_flags`)."""
    w = p._data
    xp = backend.get_array_module(w)
    shape = tuple(int(s) for s in w.shape)
    wnorm = float(xp.linalg.norm(w.ravel()))
    ratio = None
    if before is not None:
        diff = w - before
        bnorm = max(float(xp.linalg.norm(before.ravel())), 1e-30)
        ratio = float(xp.linalg.norm(diff.ravel())) / bnorm
    if p.grad is None:
        return ParamGradStats(name, shape, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, wnorm, ratio, False)
    g = p.grad._data
    n = max(g.size, 1)
    absg = xp.abs(g)
    finite = bool(xp.isfinite(absg).all())
    nonfinite = 0 if finite else int((~xp.isfinite(g)).sum())
    # float32 accumulation of squares; one pass each for sum |g|, max |g|, sum g^2 and signs
    sq = float(xp.sum(absg * absg, dtype=xp.float64 if g.dtype.itemsize >= 8 else xp.float32))
    norm = math.sqrt(sq) if math.isfinite(sq) else math.inf
    pos = int(xp.count_nonzero(g > 0))
    neg = int(xp.count_nonzero(g < 0))
    return ParamGradStats(
        name, shape, norm, norm / math.sqrt(n), float(xp.sum(absg)) / n, float(absg.max()) if g.size
        else 0.0, pos / n, neg / n, wnorm, ratio, True, nonfinite,
    )  # fmt: skip


def apply_flags(stats: list[ParamGradStats], th: Thresholds) -> None:
    """Set each entry's flags from the thresholds (relative ones use the median RMS)."""
    rms = [s.rms for s in stats if s.has_grad and s.nonfinite == 0 and s.rms > 0]
    median = float(np.median(rms)) if rms else 0.0
    for s in stats:
        flags = []
        if not s.has_grad:
            flags.append("dead")
        elif s.nonfinite:
            flags.append("non-finite")
        elif s.max_abs == 0.0:
            flags.append("dead")
        else:
            if s.rms < th.vanishing_rms or (median > 0 and s.rms < th.vanishing_relative * median):
                flags.append("vanishing")
            if s.norm > th.exploding_norm or (
                median > 0 and s.rms > th.exploding_relative * median
            ):
                flags.append("exploding")
        s.flags = flags


# Weights before the last step, per optimizer, recorded by watch_updates().
_watched: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def watch_updates(optimizer) -> None:
    """Record each parameter's weights before every `optimizer.step()` (one copy per step).

    Afterwards `gradient_report(model, optimizer)` shows the update-to-weight ratio of the
    most recent step. Idempotent; costs one copy of the parameters per step.
    """
    if optimizer in _watched:
        return
    store: dict[int, Any] = {}
    _watched[optimizer] = store
    orig_step = optimizer.step

    def step(*args, **kwargs):
        snap = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                snap[id(p)] = (weakref.ref(p), p._data.copy())
        out = orig_step(*args, **kwargs)
        store.clear()
        store.update(snap)
        return out

    optimizer.step = step


def gradient_report(
    model, optimizer=None, *, before: dict[str, Any] | None = None,
    thresholds: Thresholds | None = None, step: int | None = None,
) -> GradientReport:  # fmt: skip
    """Describe every parameter's gradient (call after `loss.backward()`).

    Args:
        model: a Module (or a dict name -> tensor, or a list of tensors).
        optimizer: optional, or a list of optimizers (e.g. Muon and AdamW); the
            update-to-weight ratio of its last step is shown when it is watched
            (`watch_updates(optimizer)`, done here on first use: the ratio appears from the next
            step on). For a `descent.optim.Muon`, its tensors also get `muon` (the singular
            values of the next update before and after orthogonalisation).
        before: optional dict name -> array of the weights before the last step (an alternative
            to watching the optimizer).
        thresholds: the flag thresholds (default `Thresholds()`).
        step: the training step, for the title.

    Returns:
        A GradientReport (`print(report)`, `report.flagged`, `report.to_json()`).
    """
    th = thresholds or Thresholds()
    snaps: dict[int, Any] = {}
    if isinstance(optimizer, (list, tuple)):
        optimizers = list(optimizer)
    else:
        optimizers = [] if optimizer is None else [optimizer]
    for opt in optimizers:
        watch_updates(opt)
        snaps.update(_watched.get(opt, {}))
    previews = [opt.preview_update for opt in optimizers if hasattr(opt, "preview_update")]
    stats = []
    for name, p in _named_params(model):
        prev = None
        if before is not None and name in before:
            prev = before[name]
            if isinstance(prev, Tensor):
                prev = prev._data
        elif id(p) in snaps and snaps[id(p)][0]() is p:
            prev = snaps[id(p)][1]
        stats.append(tensor_grad_stats(name, p, prev))
        for preview in previews:  # Muon: what orthogonalisation does to this tensor's update
            pair = preview(p)
            if pair is not None:
                stats[-1].muon = muon_spectrum(*pair)
    apply_flags(stats, th)
    from .moe import moe_layer_reports

    return GradientReport(stats, th, step, moe=moe_layer_reports(model))


# ---------------------------------------------------------------------------------------------
# Whole runs: read the output folder, say in words what happened, write the HTML


@dataclass
class Finding:
    """One sentence of the summary. level: "good", "info", "warning" or "problem"."""

    level: str
    text: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.text}"


@dataclass
class RunData:
    """What a run's output folder holds (lists of JSON records; absent files give [])."""

    out_dir: str
    steps: list[dict] = field(default_factory=list)  # {"step", "loss", "lr", ...}
    evals: list[dict] = field(default_factory=list)  # {"step", "train_loss", "val_loss"}
    gradients: list[dict] = field(default_factory=list)  # GradientReport.to_dict() per record
    landscape: dict | None = None
    config: dict | None = None
    curvature: list[dict] = field(default_factory=list)  # stability records (curvature.jsonl)


def _read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a .jsonl file, one per line; anything else is skipped.

    A run folder is read as found: lines cut short by a killed run, lines that are not JSON
    objects, and bytes that are not UTF-8 are dropped rather than stopping the report.
    """
    out = []
    if not path.is_file():
        return out
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = raw.decode("utf-8").strip()
                rec = json.loads(line) if line else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def _read_json_object(path: Path) -> dict | None:
    """A JSON file holding an object, or None (missing, a directory, damaged, not an object)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _num(v) -> float | None:
    """A number from a record; None for anything else (a damaged record)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _gradient_record_ok(rec: dict) -> bool:
    """A gradients.jsonl record the analysis and the pictures can read."""
    params = rec.get("params", [])
    step = rec.get("step")
    return (step is None or type(step) is int) and isinstance(params, list) and all(
        isinstance(p, dict) and isinstance(p.get("name"), str)
        and isinstance(p.get("flags", []), list) for p in params
    )  # fmt: skip


def load_run(out_dir) -> RunData:
    """Read metrics.jsonl (trainer), gradients.jsonl and landscape.json (ReportCallback).

    Metric records may be `{"kind": "step", "step", "loss", "lr"}` and `{"kind": "eval", "step",
    "train_loss", "val_loss"}` (descent.train's writer) or plain records with `train`/`val`/
    `train_loss`/`val_loss`/`loss` keys; a record with a val loss counts as an evaluation.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"no run folder at {str(out)!r}")
    data = RunData(str(out))
    for rec in _read_jsonl(out / "metrics.jsonl"):
        if type(rec.get("step")) is not int:
            continue
        val = rec.get("val_loss", rec.get("val"))
        kind = rec.get("kind")
        if kind == "eval" or (kind is None and val is not None):
            data.evals.append({"step": int(rec["step"]),
                               "train_loss": _num(rec.get("train_loss", rec.get("train"))),
                               "val_loss": _num(val), "lr": _num(rec.get("lr"))})  # fmt: skip
        else:
            loss = rec.get("loss", rec.get("train_loss", rec.get("train")))
            data.steps.append({"step": int(rec["step"]), "loss": _num(loss),
                               "lr": _num(rec.get("lr")),
                               "grad_norm": _num(rec.get("grad_norm"))})  # fmt: skip
    data.gradients = [r for r in _read_jsonl(out / "gradients.jsonl") if _gradient_record_ok(r)]
    data.landscape = _read_json_object(out / "landscape.json")
    from .curvature_stability import curvature_record_ok

    data.curvature = [r for r in _read_jsonl(out / "curvature.jsonl") if curvature_record_ok(r)]
    data.config = _read_json_object(out / "config.json")
    return data


@dataclass
class RunAnalysis:
    """The summary of a run: findings in words, best to read first."""

    findings: list[Finding]

    @property
    def verdict(self) -> str:
        levels = {f.level for f in self.findings}
        if "problem" in levels:
            return "problem"
        if "warning" in levels:
            return "warning"
        return "healthy"

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "findings": [asdict(f) for f in self.findings]}


def analyze_run(data: RunData) -> RunAnalysis:
    """Say in words what went right or wrong in a run.

    Rules (each with its threshold, so the sentence can be checked against the plots):
      * non-finite loss: the first step whose loss is NaN/Inf;
      * diverged: the mean loss of the last tenth of the run is > 2% above that of the first;
      * plateau: the loss (means over tenths of the run) improved by < 1% over the last third;
      * overfitting: val loss rose > 2% above its minimum at step N while train loss kept falling;
      * healthy: "loss fell from A to B" when none of the above;
      * gradients (from gradients.jsonl): for each parameter, the first recorded step of each
        flag that stayed on until the end (vanishing, exploding, dead) or ever fired (non-finite);
      * curvature (from curvature.jsonl): the sharpness against the edge of stability
        (`curvature_stability.curvature_findings`).
    """
    f: list[Finding] = []
    pts = [(s["step"], s["loss"]) for s in data.steps if s["loss"] is not None]
    if not pts:
        pts = [(e["step"], e["train_loss"]) for e in data.evals if e["train_loss"] is not None]
    if not pts:
        f.append(Finding("info", "no loss records found (metrics.jsonl is missing or empty)"))
    else:
        steps = [p[0] for p in pts]
        losses = [p[1] for p in pts]
        bad = [s for s, v in pts if not math.isfinite(v)]
        if bad:
            f.append(Finding("problem", f"loss became non-finite (NaN/Inf) at step {bad[0]}"))
        finite = [v for v in losses if math.isfinite(v)]
        if finite and not bad:
            # Means over windows of a tenth of the run: per-step losses are noisy.
            n = len(finite)
            seg = max(1, n // 10)
            third = max(1, n // 3)
            first = float(np.mean(finite[:seg]))
            last = float(np.mean(finite[-seg:]))
            ref = (
                float(np.mean(finite[max(0, n - third - seg) : n - third])) if n > third else first
            )
            sm = finite
            if last > first * 1.02:
                f.append(Finding("problem", f"loss diverged: rose from {first:.4g} to {last:.4g}"))
            elif (
                len(sm) >= 6
                and (ref - last) < 0.01 * abs(ref)
                and (first - last) < 0.05 * abs(first)
            ):
                text = (
                    f"loss plateaued near {last:.4g} from the start (it was {first:.4g}): "
                    "nothing is being learned"
                )
                f.append(Finding("warning", text))
            elif len(sm) >= 6 and (ref - last) < 0.01 * abs(ref):
                s0 = steps[min(len(steps) - 1, len(steps) - third - 1)]
                f.append(Finding("info", f"loss fell from {first:.4g} to {last:.4g}, then "
                                         f"plateaued from about step {s0} (< 1% change over the "
                                         "last third)"))  # fmt: skip
            else:
                f.append(Finding("good", f"healthy: loss fell from {first:.4g} to {last:.4g} "
                                         f"over {steps[-1] - steps[0]} steps"))  # fmt: skip
    ev = [(e["step"], e["val_loss"], e["train_loss"]) for e in data.evals
          if e["val_loss"] is not None and math.isfinite(e["val_loss"])]  # fmt: skip
    if len(ev) >= 3:
        vals = [v for _, v, _ in ev]
        i = int(np.argmin(vals))
        if i < len(ev) - 1 and vals[-1] > vals[i] * 1.02:
            trains = [t for _, _, t in ev if t is not None]
            falling = len(trains) == len(ev) and trains[-1] < trains[i]
            why = (
                "while train loss kept falling: overfitting"
                if falling
                else "(train loss did not keep falling: the step size may be too large)"
            )
            f.append(Finding("warning", f"val loss rising from step {ev[i][0]} "
                                        f"({vals[i]:.4g} -> {vals[-1]:.4g}) {why}"))  # fmt: skip
        else:
            f.append(Finding("good", f"val loss {vals[0]:.4g} -> {vals[-1]:.4g} "
                                     f"(best {vals[i]:.4g} at step {ev[i][0]})"))  # fmt: skip
    f.extend(_gradient_findings(data.gradients))
    from .curvature_stability import curvature_findings  # sharpness vs 2 / lr over training

    f.extend(curvature_findings(data.curvature))
    return RunAnalysis(f)


def _gradient_findings(records: list[dict]) -> list[Finding]:
    if not records:
        return []
    per: dict[str, list[tuple[int, list[str]]]] = {}
    for rec in records:
        step = rec.get("step")
        for p in rec.get("params", []):
            per.setdefault(p["name"], []).append((step, p.get("flags", [])))
    out = []
    for flag, verb in (("non-finite", "became non-finite"), ("exploding", "exploded"),
                       ("vanishing", "vanished"), ("dead", "were always zero (dead)")):  # fmt: skip
        names = []
        for name, hist in per.items():
            on = [i for i, (_, fl) in enumerate(hist) if flag in fl]
            if not on:
                continue
            if flag == "non-finite":
                names.append((name, hist[on[0]][0]))
                continue
            # the flag must hold from some record to the end (a persistent condition)
            start = len(hist)
            while start > 0 and flag in hist[start - 1][1]:
                start -= 1
            if start == len(hist):
                continue
            if flag == "dead" and start != 0:
                continue
            names.append((name, hist[start][0]))
        if not names:
            continue
        level = "problem" if flag in ("non-finite", "exploding", "vanishing") else "warning"
        shown = ", ".join(n for n, _ in names[:4]) + (
            f" and {len(names) - 4} more" if len(names) > 4 else ""
        )
        first = (
            min(s for _, s in names if s is not None)
            if any(s is not None for _, s in names)
            else None
        )
        if flag == "dead":
            text = f"gradients of {shown} {verb} at every recorded step"
        else:
            text = f"gradients of {shown} {verb}" + (
                f" after step {first}" if first is not None else ""
            )
        out.append(Finding(level, text))
    if not out:
        out.append(Finding("good", f"gradients: no vanishing, exploding, dead or non-finite "
                                   f"gradients in {len(records)} records"))  # fmt: skip
    return out


def write_report(out_dir, filename: str = "report.html") -> str:
    """Write `OUT/report.html` for a run folder and return its path.

    Reads metrics.jsonl, gradients.jsonl and landscape.json (whatever is present), analyses the
    run (`analyze_run`) and renders a self-contained page: summary first, then the pictures as
    embedded PNGs (no network, no JavaScript).
    """
    from . import html

    data = load_run(out_dir)
    analysis = analyze_run(data)
    page = html.render_report(data, analysis)
    path = Path(out_dir) / filename
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; remove or rename it")
    from ..io import atomic_write_bytes

    # A uniquely named temporary file renamed over the name: a planted link is replaced.
    atomic_write_bytes(path, page.encode("utf-8"))
    return str(path)
