"""Pictures of what explain computes (matplotlib, imported lazily; the `plot` extra).

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global state, no GUI
backend: figures render with the Agg canvas), so they work in scripts, tests and servers alike.
`to_png(fig)` gives PNG bytes; `fig.savefig(path)` writes a file.

    loss_curves(run)                 train (per step) and val loss (per evaluation)
    lr_schedule(run)                 learning rate per step
    gradient_norms(records)          per-parameter gradient RMS over time (a heat map when deep)
    update_ratios(records)           per-parameter |update| / |weight| over time
    landscape_slices(landscape)      the 1-D slices
    landscape_contour(grid, traj)    the 2-D surface with the training path
    toy_descent(grid, path)          2-parameter toy: contour, gradient arrows, descent steps
    sharpness(records)               sharpness and the edge of stability (2 / lr) over training
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = [
    "gradient_norms",
    "landscape_contour",
    "landscape_slices",
    "loss_curves",
    "lr_schedule",
    "sharpness",
    "to_png",
    "toy_descent",
    "update_ratios",
]


def _figure(w: float = 7.0, h: float = 4.0):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - matplotlib is in the test extra
        raise ImportError(
            "descent.explain.plot needs matplotlib: pip install 'descent[plot]'"
        ) from e
    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig) -> bytes:
    """Render a figure to PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _get(run, name: str) -> list:
    return getattr(run, name, None) or (run.get(name, []) if isinstance(run, dict) else [])


def loss_curves(run) -> Any:
    """Train loss per step (faint, plus a moving average) and train/val loss at evaluations."""
    steps, evals = _get(run, "steps"), _get(run, "evals")
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    pts = [(s["step"], s["loss"]) for s in steps if s.get("loss") is not None]
    if pts:
        x, y = np.array(pts, dtype=float).T
        ax.plot(x, y, color="tab:blue", alpha=0.3, lw=0.8, label="train loss (per step)")
        k = max(1, len(y) // 50)
        if k > 1:
            sm = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(x[k - 1 :], sm, color="tab:blue", lw=1.5, label=f"train (mean of {k})")
    ev = [e for e in evals if e.get("val_loss") is not None]
    if ev:
        ax.plot([e["step"] for e in ev], [e.get("train_loss") for e in ev], "o-",
                color="tab:green", ms=3, label="train (eval)")  # fmt: skip
        ax.plot([e["step"] for e in ev], [e["val_loss"] for e in ev], "o-", color="tab:red",
                ms=3, label="val (eval)")  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    if pts or ev:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def lr_schedule(run) -> Any:
    """The learning rate of every step."""
    pts = [(s["step"], s["lr"]) for s in _get(run, "steps") if s.get("lr") is not None]
    fig = _figure(7, 2.6)
    ax = fig.add_subplot(1, 1, 1)
    if pts:
        x, y = np.array(pts, dtype=float).T
        ax.plot(x, y, color="tab:purple")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedule")
    ax.grid(alpha=0.3)
    return fig


def sharpness(records: list[dict]) -> Any:
    """The (preconditioned) sharpness of curvature.jsonl records and the optimizer's stability
    threshold (2 / lr for SGD) over the steps: the edge-of-stability picture (Cohen et al. 2021)."""
    pts = [
        (r["step"], r["measured"], r["threshold"])
        for r in records
        if all(isinstance(r.get(k), (int, float)) for k in ("step", "measured", "threshold"))
    ]
    fig = _figure(7, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    if pts:
        x, sh, th = np.array(pts, dtype=float).T
        pre = bool(records[-1].get("preconditioned"))
        ax.plot(
            x,
            sh,
            "o-",
            ms=3,
            color="tab:red",
            label="preconditioned sharpness" if pre else "sharpness (top eigenvalue)",
        )
        ax.plot(
            x,
            th,
            "--",
            color="black",
            lw=1,
            label=f"edge of stability {records[-1].get('formula', '2 / lr')}",
        )
        if np.all(sh > 0) and np.all(th > 0):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("curvature")
    ax.set_title("Sharpness and the edge of stability")
    ax.grid(alpha=0.3)
    return fig  # fmt: skip


def _matrix(records: list[dict], key: str) -> tuple[list[str], list[int], np.ndarray]:
    """(parameter names, steps, values (P, S)) from GradientReport dicts; NaN where missing."""
    names: list[str] = []
    for r in records:
        for p in r.get("params", []):
            if p["name"] not in names:
                names.append(p["name"])
    steps = [r.get("step") or 0 for r in records]
    m = np.full((len(names), len(records)), np.nan)
    idx = {n: i for i, n in enumerate(names)}
    for j, r in enumerate(records):
        for p in r.get("params", []):
            v = p.get(key)
            if v is not None:
                m[idx[p["name"]], j] = v
    return names, steps, m


def _per_param(records, key: str, title: str, ylabel: str, max_lines: int = 12) -> Any:
    names, steps, m = _matrix(records, key)
    if len(names) <= max_lines:
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        for i, n in enumerate(names):
            row = m[i]
            ok = np.isfinite(row) & (row > 0)
            if ok.any():
                ax.semilogy(np.asarray(steps)[ok], row[ok], label=n, lw=1)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if names:
            ax.legend(fontsize=6, ncol=2)
        ax.grid(alpha=0.3)
    else:
        # Deep models: one row per parameter tensor, colour = log10 of the value.
        fig = _figure(8, max(3.0, 0.16 * len(names) + 1.2))
        ax = fig.add_subplot(1, 1, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(np.where(m > 0, m, np.nan))
        im = ax.imshow(z, aspect="auto", interpolation="nearest", cmap="viridis",
                       extent=(-0.5, len(steps) - 0.5, len(names) - 0.5, -0.5))  # fmt: skip
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names, fontsize=5)
        ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).astype(int) if steps else []
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(steps[t]) for t in ticks], fontsize=7)
        ax.set_xlabel("step")
        fig.colorbar(im, ax=ax, label=f"log10 {ylabel}")
    ax.set_title(title)
    return fig


def gradient_norms(records: list[dict]) -> Any:
    """Per-parameter gradient RMS over the recorded steps (lines, or a heat map when deep)."""
    return _per_param(records, "rms", "Gradient size per parameter (RMS)", "gradient RMS")


def update_ratios(records: list[dict]) -> Any:
    """Per-parameter update-to-weight ratio ||dw|| / ||w|| over the recorded steps."""
    fig = _per_param(records, "update_ratio", "Update-to-weight ratio per step", "|update| / |w|")
    ax = fig.axes[0]
    if ax.get_yscale() == "log":
        ax.axhline(1e-3, color="gray", ls="--", lw=0.8)  # the usual healthy order of magnitude
    return fig


def landscape_slices(landscape) -> Any:
    """The 1-D slices of a LossLandscape (or its dict)."""
    slices = landscape.get("slices", []) if isinstance(landscape, dict) else [
        s.to_dict() for s in landscape.slices
    ]  # fmt: skip
    fig = _figure(6, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for s in slices:
        ax.plot(s["alphas"], s["losses"], label=s["direction"])
    ax.axvline(0, color="gray", lw=0.8, ls=":")
    ax.set_xlabel("step along the direction (filter-normalised units)")
    ax.set_ylabel("loss")
    ax.set_title("Loss along lines through the final weights")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def landscape_contour(grid, trajectory=None, title: str = "Loss surface") -> Any:
    """Contour of a LossGrid (or dict) with an optional trajectory (coords in the same plane)."""
    g = grid if isinstance(grid, dict) else grid.to_dict()
    x, y = np.asarray(g["alphas"]), np.asarray(g["betas"])
    z = np.asarray(g["losses"], dtype=float)
    fig = _figure(5.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    finite = z[np.isfinite(z)]
    if finite.size:
        zc = np.clip(z, None, np.percentile(finite, 98))  # outliers would flatten the picture
        cs = ax.contourf(x, y, zc, levels=20, cmap="viridis")
        ax.contour(x, y, zc, levels=20, colors="k", linewidths=0.3)
        fig.colorbar(cs, ax=ax, label="loss")
    if trajectory is not None:
        t = trajectory if isinstance(trajectory, dict) else trajectory.to_dict()
        c = np.asarray(t["coords"], dtype=float)
        ax.plot(c[:, 0], c[:, 1], "o-", color="white", ms=3, lw=1.2, mec="k", label="training path")
        ax.plot(c[0, 0], c[0, 1], "s", color="orange", ms=6, label="start")
        ax.plot(c[-1, 0], c[-1, 1], "*", color="red", ms=10, label="end")
        ex = t.get("explained") or []
        if len(ex) >= 2:
            ax.set_xlabel(f"{g['directions'][0]} ({100 * ex[0]:.0f}% of the path)")
            ax.set_ylabel(f"{g['directions'][1]} ({100 * ex[1]:.0f}%)")
        ax.legend(fontsize=7, loc="upper right")
    else:
        ax.set_xlabel(str(g["directions"][0]))
        ax.set_ylabel(str(g["directions"][1]))
    ax.set_title(title)
    return fig


def toy_descent(
    grid, path, arrows: bool = True, title: str = "Gradient descent",
    labels: tuple[str, str] = ("parameter 1", "parameter 2"),
) -> Any:  # fmt: skip
    """The classic picture: loss contours, the gradient arrows, and the path of the steps.

    Args:
        grid: a LossGrid from `landscape.surface_grid` (x = alphas, y = betas).
        path: a DescentPath from `landscape.descent_path`.
        arrows: draw the negative gradient at each step (the direction of the step).
        title, labels: the title and the axis labels.
    """
    g = grid if isinstance(grid, dict) else grid.to_dict()
    p = path if isinstance(path, dict) else path.to_dict()
    x, y = np.asarray(g["alphas"]), np.asarray(g["betas"])
    z = np.asarray(g["losses"], dtype=float)
    fig = _figure(5.5, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    cs = ax.contourf(x, y, z, levels=25, cmap="viridis")
    ax.contour(x, y, z, levels=25, colors="k", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="loss")
    pts = np.asarray(p["points"], dtype=float)
    ax.plot(pts[:, 0], pts[:, 1], "o-", color="white", mec="k", ms=4, lw=1.2, label="steps")
    if arrows and len(pts) > 1:
        # Arrows of one length show the direction of -gradient (the step's direction) at each
        # point; the gradient's magnitude is the spacing of the contour lines.
        gr = -np.asarray(p["gradients"], dtype=float)[:-1]
        norms = np.maximum(np.linalg.norm(gr, axis=1, keepdims=True), 1e-12)
        length = 0.07 * max(np.ptp(x), np.ptp(y))
        u = gr / norms * length
        ax.quiver(pts[:-1, 0], pts[:-1, 1], u[:, 0], u[:, 1], color="red", angles="xy",
                  scale_units="xy", scale=1, width=0.006, zorder=5,
                  label="-gradient (direction)")  # fmt: skip
    ax.plot(pts[0, 0], pts[0, 1], "s", color="orange", ms=7)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    lr = p.get("lr")
    ax.set_title(title + (f" (lr {lr:g}, {len(pts) - 1} steps)" if lr is not None else ""))
    ax.legend(fontsize=7, loc="upper right")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(y.min(), y.max())
    return fig
