"""Record gradient figures during training, cheaply, and what the HTML report needs.

`GradientMonitor(model, every=10)` works in any loop:

    monitor = GradientMonitor(model, every=10)
    for step in range(1, n + 1):
        loss.backward()
        monitor.before_step(step)     # every 10th step: gradient figures + a copy of the weights
        optimizer.step()
        monitor.after_step(step)      # ... and the update-to-weight ratio of that step
        optimizer.zero_grad()
    print(monitor.history[-1])        # a GradientReport

It is also a `descent.train.Trainer` callback (on_after_backward / on_step). At the recording
steps it costs a few passes over the parameters and gradients (norms, counts) and one copy of the
weights; on the other steps, nothing. `benchmarks/explain_overhead.py` measures it.

`ReportCallback(out_dir, every=10)` (what `descent train --report` installs) adds the files:
    OUT/gradients.jsonl   one GradientReport.to_dict() per recorded step
    OUT/snapshots.npz     a random 256-dimensional projection of the parameters at each eval
    OUT/landscape.json    at the end: 1-D slices and the 2-D loss surface over the PCA plane of
                          the training path with that path on it (landscape.py)
    OUT/curvature.jsonl   with curvature_every=N: every N steps, the sharpness against the
                          optimizer's edge of stability (curvature_stability.stability)
and `descent.explain.report.write_report(out_dir)` turns them into OUT/report.html.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import backend, runfolder
from .report import GradientReport, Thresholds, apply_flags, tensor_grad_stats

__all__ = ["GradientMonitor", "ReportCallback"]


class GradientMonitor:
    """Record a GradientReport every `every` steps (a Trainer callback, or call it by hand).

    Args:
        model: the model whose parameters to watch.
        every: record at steps that are multiples of `every` (and at step 1).
        thresholds: the flag thresholds (default `Thresholds()`).
        keep: keep at most this many reports in `history` (oldest dropped; 0 = all).
        curvature_every: every this many steps (0 = never), `after_step` records
            `stability(model, loss_fn, batch, optimizer)` in `curvature_history` (a dict per
            record: `step` + StabilityReport.to_dict()).
        loss_fn, batch, optimizer: what the curvature is measured with (one fixed batch; loss_fn
            defaults to `model(*batch)` returning (logits, loss) or the loss); a Trainer
            callback takes the trainer's optimizer.
        curvature_iters: Lanczos steps per record (each one Hessian-vector product).

    Attributes:
        history: the recorded GradientReports, oldest first.
    """

    def __init__(
        self, model=None, every: int = 10, thresholds: Thresholds | None = None, keep: int = 0,
        *, curvature_every: int = 0, loss_fn=None, batch=None, optimizer=None,
        curvature_iters: int = 20,
    ) -> None:  # fmt: skip
        if every < 1:
            raise ValueError(f"GradientMonitor: every must be >= 1, got {every}")
        if curvature_every < 0:
            raise ValueError(
                f"GradientMonitor: curvature_every must be >= 0, got {curvature_every}"
            )
        self.model = model
        self.every = int(every)
        self.thresholds = thresholds or Thresholds()
        self.keep = keep
        self.history: list[GradientReport] = []
        self._pending: tuple[int, list, list] | None = None
        # The edge-of-stability record (curvature_stability.stability every N steps): off by
        # default; when off, after_step pays one integer test.
        self.curvature_every = int(curvature_every)
        self.loss_fn = loss_fn
        self.batch = batch
        self.optimizer = optimizer
        self.curvature_iters = int(curvature_iters)
        self.curvature_history: list[dict] = []

    def should_record(self, step: int) -> bool:
        return step == 1 or step % self.every == 0

    def _named(self):
        m = self.model
        return list(m.named_parameters()) if hasattr(m, "named_parameters") else list(m.items())

    def before_step(self, step: int) -> None:
        """Call after backward, before optimizer.step(): records gradients at recording steps."""
        if not self.should_record(step) or self.model is None:
            return
        named = self._named()
        # The weights before the step (one copy) give the update-to-weight ratio afterwards.
        before = [p._data.copy() for _, p in named]
        stats = [tensor_grad_stats(n, p) for n, p in named]
        from .moe import moe_layer_reports  # routing and expert gradients of MoE layers

        self._pending = (step, named, before, stats, moe_layer_reports(self.model))

    def after_step(self, step: int) -> GradientReport | None:
        """Call after optimizer.step(): completes and stores the record of this step (and, every
        `curvature_every` steps, the sharpness against the optimizer's threshold)."""
        if self.curvature_every and step % self.curvature_every == 0:
            self.record_curvature(step)
        if self._pending is None or self._pending[0] != step:
            return None
        _, named, before, stats, moe = self._pending
        self._pending = None
        for s, (_, p), b in zip(stats, named, before):
            xp = backend.get_array_module(b)
            bn = max(float(xp.linalg.norm(b.ravel())), 1e-30)
            s.update_ratio = float(xp.linalg.norm((p._data - b).ravel())) / bn
        apply_flags(stats, self.thresholds)
        rep = GradientReport(stats, self.thresholds, step, moe=moe)
        self.history.append(rep)
        if self.keep and len(self.history) > self.keep:
            del self.history[0]
        self._emit(rep)
        return rep

    def _emit(self, rep: GradientReport) -> None:
        """Hook for subclasses (ReportCallback writes a JSON line)."""

    def record_curvature(self, step: int) -> dict | None:
        """Measure the sharpness against the optimizer's stability threshold now (after a step:
        Adam's preconditioner is the one of the next step) and append it to curvature_history.

        The model is put in eval mode for the measurement (the loss must be a function of the
        weights) and back afterwards; `.grad` is not touched. Cost: one Lanczos run (two for
        Adam) of up to curvature_iters Hessian-vector products, each about 2.5 training steps.
        """
        if self.model is None or self.optimizer is None or self.batch is None:
            raise ValueError(
                "GradientMonitor: curvature_every needs the model, optimizer=, batch= (a fixed "
                "batch: the same loss at every record) and loss_fn= (default: model(*batch) "
                "returning (logits, loss) or the loss)"
            )
        from .curvature_stability import stability

        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        try:
            rep = stability(self.model, self.loss_fn or _model_loss, self.batch, self.optimizer,
                            iters=self.curvature_iters, tol=1e-3)  # fmt: skip
        finally:
            if was_training and hasattr(self.model, "train"):
                self.model.train()
        rec = {"step": int(step), **rep.to_dict()}
        self.curvature_history.append(rec)
        if self.keep and len(self.curvature_history) > self.keep:
            del self.curvature_history[0]
        self._emit_curvature(rec)
        return rec

    def _emit_curvature(self, rec: dict) -> None:
        """Hook for subclasses (ReportCallback writes a JSON line to curvature.jsonl)."""

    # -- Trainer callback interface -----------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        if self.model is None:
            self.model = getattr(trainer, "raw_model", trainer.model)
        if self.curvature_every and self.optimizer is None:
            self.optimizer = trainer.optimizer

    def on_after_backward(self, trainer, step: int) -> None:
        self.before_step(step)

    def on_step(self, trainer, step: int, metrics: dict | None = None) -> None:
        self.after_step(step)


class ReportCallback(GradientMonitor):
    """The recorder behind `descent train --report`: gradients, snapshots and the landscape.

    Args:
        out_dir: the run's output folder (files listed in the module docstring).
        every: record gradient figures every `every` steps.
        landscape: compute the loss landscape and the trajectory at the end of training.
        loss_fn, batch_fn: how to compute the loss for the landscape: `loss_fn(model, batch)`
            and `batch_fn(trainer)`; by default `model(x, y)[1]` on a validation batch from
            `trainer.get_batch("val", Generator(seed))` (a fresh generator, so the run's
            own random streams are not shifted).
        max_snapshots: parameter snapshots kept in memory for the trajectory (thinned when full).
    """

    def __init__(
        self, out_dir, every: int = 10, *, landscape: bool = True, loss_fn=None, batch_fn=None,
        max_snapshots: int = 12, thresholds: Thresholds | None = None, model=None,
        curvature_every: int = 0, curvature_iters: int = 20,
    ) -> None:  # fmt: skip
        super().__init__(model, every, thresholds, keep=1, curvature_every=curvature_every,
                         loss_fn=loss_fn, curvature_iters=curvature_iters)  # fmt: skip
        self._curvature_file = None
        self.out_dir = Path(out_dir)
        self.landscape = landscape
        self.loss_fn = loss_fn
        self.batch_fn = batch_fn
        self.max_snapshots = max(2, int(max_snapshots))
        self.snapshots: list[np.ndarray] = []
        self.snapshot_steps: list[int] = []
        self._file = None
        self._sketch = None
        self._projected: list[np.ndarray] = []  # 256-d, never thinned
        self._projected_steps: list[int] = []
        self._active = True

    # -- files ---------------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        super().on_train_start(trainer)
        self._active = bool(getattr(trainer, "is_main", True))
        if not self._active:
            return
        self.out_dir = Path(getattr(trainer, "out_dir", self.out_dir))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start = int(getattr(trainer, "step", 0))
        self._file = _open_records(self.out_dir / "gradients.jsonl", start)
        if self.curvature_every:
            # one fixed batch for the whole run: the sharpness curve compares like with like
            if self.batch is None:
                self.batch = self.batch_fn(trainer) if self.batch_fn is not None else (
                    self._default_batch(trainer))  # fmt: skip
            self._curvature_file = _open_records(self.out_dir / "curvature.jsonl", start)
        self._snapshot(start)

    def before_step(self, step: int) -> None:
        if self._active:
            super().before_step(step)

    def after_step(self, step: int) -> GradientReport | None:
        if self._active:
            return super().after_step(step)
        return None

    def _emit(self, rep: GradientReport) -> None:
        if self._file is not None:
            self._file.write(json.dumps(rep.to_dict()) + "\n")

    def _emit_curvature(self, rec: dict) -> None:
        if self._curvature_file is not None:
            self._curvature_file.write(json.dumps(rec) + "\n")

    def on_eval(self, trainer, step: int, metrics: dict | None = None) -> None:
        if self._active and (not self.snapshot_steps or self.snapshot_steps[-1] != step):
            self._snapshot(step)

    def _snapshot(self, step: int) -> None:
        from .landscape import flatten_parameters

        vec = flatten_parameters(self.model, np.float32)
        if vec.size > 4_000_000:
            vec = vec.astype(np.float16)  # big models: halve the memory of the kept snapshots
        if self._sketch is None or self._sketch[0].size != vec.size:
            self._sketch = _make_sketch(vec.size, 256)
        self._projected.append(_project(vec, self._sketch))
        self._projected_steps.append(step)
        self.snapshots.append(vec)
        self.snapshot_steps.append(step)
        if len(self.snapshots) > self.max_snapshots:
            # thin: keep the first, every other one, and the newest
            keep = list(range(0, len(self.snapshots) - 1, 2)) + [len(self.snapshots) - 1]
            self.snapshots = [self.snapshots[i] for i in keep]
            self.snapshot_steps = [self.snapshot_steps[i] for i in keep]
        np.savez(
            self.out_dir / "snapshots.npz",
            steps=np.asarray(self._projected_steps, dtype=np.int64),
            projected=np.stack(self._projected),
        )

    def on_train_end(self, trainer) -> None:
        if not self._active:
            return
        for name in ("_file", "_curvature_file"):
            if getattr(self, name) is not None:
                getattr(self, name).close()
                setattr(self, name, None)
        if self.landscape:
            try:
                self._write_landscape(trainer)
            except Exception as e:  # the report must still be written; say why it has no map
                runfolder.write_text(self.out_dir / "landscape.json", json.dumps({"error": str(e)}))

    def _default_batch(self, trainer):
        import descent

        seed = int(getattr(getattr(trainer, "config", None), "seed", 0))
        return trainer.get_batch("val", descent.Generator(seed + 101))

    def _write_landscape(self, trainer) -> None:
        from .landscape import (
            LossLandscape,
            flatten_parameters,
            loss_landscape,
            trajectory_landscape,
            trajectory_projection,
        )

        model = self.model
        loss_fn = self.loss_fn or _model_loss
        batch = self.batch_fn(trainer) if self.batch_fn is not None else self._default_batch(
            trainer
        )  # fmt: skip
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        try:
            land = loss_landscape(model, loss_fn, batch, steps=11, span=1.0, num_random=1)
            result = land.to_dict()
            snaps = list(self.snapshots)
            steps = list(self.snapshot_steps)
            final = flatten_parameters(model, np.float32)
            if not steps or steps[-1] != int(getattr(trainer, "step", -1)):
                snaps.append(final)
                steps.append(int(getattr(trainer, "step", len(steps))))
            else:
                snaps[-1] = final
            if len(snaps) >= 3:
                traj = trajectory_projection([s.astype(np.float64) for s in snaps], steps)
                tl = trajectory_landscape(model, loss_fn, batch, traj, grid_steps=9)
                result["grid"] = tl.grid.to_dict()
                result["trajectory"] = traj.to_dict()
            else:
                result["grid"] = None
            result["trajectory_note"] = (
                "2-D surface over the plane of the two principal components of the training path "
                "(Li et al. 2018), centred on the final weights; 1-D slices filter-normalised"
            )
            LossLandscape.from_dict({k: v for k, v in result.items() if k != "trajectory_note"})
        finally:
            if was_training and hasattr(model, "train"):
                model.train()
        runfolder.write_text(self.out_dir / "landscape.json", json.dumps(result))


def _open_records(path: Path, start: int):
    """Open a run's .jsonl record file for appending; when resuming from step `start`, drop the
    records of the steps that will be run again.

    Run files are written like checkpoints (temporary file + rename) and appended through
    O_NOFOLLOW, so a symbolic link planted in the output folder is never written through.
    """
    if start == 0 or not path.is_file():
        runfolder.write_text(path, "")
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
        keep = [ln for ln in text.splitlines() if _step_of(ln) <= start]
        runfolder.write_text(path, "".join(k + "\n" for k in keep))
    return runfolder.open_append(path)


def _model_loss(model, batch):
    """Default loss for the landscape: `model(x, y)` returning (logits, loss), as GPT does."""
    out = model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
    return out[1] if isinstance(out, tuple) else out


def _make_sketch(size: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A count-sketch (a sparse random projection, Johnson-Lindenstrauss-like): bucket and sign."""
    rng = np.random.default_rng(0)
    # small integer types: 3 bytes per parameter, kept for the whole run
    return rng.integers(0, k, size, dtype=np.int16), rng.choice(np.array([-1, 1], np.int8), size)


def _project(vec: np.ndarray, sketch) -> np.ndarray:
    """Project (D,) -> (k,) with the sketch: out[b] = sum of sign_i * vec_i over bucket b."""
    bucket, sign = sketch
    k = 256
    return np.bincount(bucket, weights=sign * vec.astype(np.float32), minlength=k).astype(
        np.float32
    )


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        return 1 << 60
