"""The self-contained HTML training report: one file, images embedded, no network, no JavaScript.

`render_report(data, analysis)` returns the page as a string (report.write_report writes it).
Sections, each a `<section id=...>` so tests and readers can find them:

    summary     the findings in words (report.analyze_run), coloured by level
    loss        train/val loss curves
    lr          the learning-rate schedule
    gradients   per-parameter gradient RMS over time (heat map for deep models)
    updates     update-to-weight ratios over time
    table       the last recorded gradient report as a table (norms, directions, flags)
    landscape   1-D slices and the 2-D surface with the training path
    files       what the report was made from
"""

from __future__ import annotations

import base64
import html as _html
import json
from typing import Any

__all__ = ["render_report"]

_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 980px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.verdict { display: inline-block; padding: 0.15em 0.6em; border-radius: 4px; color: white; }
.v-healthy { background: #2e7d32; } .v-warning { background: #ef6c00; }
.v-problem { background: #c62828; }
ul.findings { list-style: none; padding-left: 0; }
ul.findings li { margin: 0.3em 0; padding: 0.35em 0.6em; border-left: 4px solid #999;
                 background: #f7f7f7; }
li.good { border-color: #2e7d32; } li.info { border-color: #1565c0; }
li.warning { border-color: #ef6c00; } li.problem { border-color: #c62828; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f0f0f0; } td.name { text-align: left; font-family: monospace; }
td.flag { color: #c62828; font-weight: bold; }
p.note { color: #666; font-size: 0.85em; }
"""


def _esc(s: Any) -> str:
    return _html.escape(str(s), quote=True)


def _img(fig_fn, *args, alt: str) -> str:
    """An <img> with the figure as a base64 PNG, or a note saying why there is no picture."""
    try:
        from . import plot

        fig = fig_fn(*args)
        png = plot.to_png(fig)
    except ImportError:
        return '<p class="note">Pictures need matplotlib (pip install "descent[plot]").</p>'
    except Exception as e:  # a broken record must not lose the whole report
        return f'<p class="note">Could not draw {_esc(alt)}: {_esc(e)}</p>'
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{b64}">'


def _fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return _esc(v)


def _table(record: dict) -> str:
    head = ("parameter", "shape", "|g|", "mean |g|", "max |g|", "knobs up", "knobs down",
            "|update|/|w|", "flags")  # fmt: skip
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for p in record.get("params", []):
        flags = ", ".join(p.get("flags", []))
        shape = "x".join(str(s) for s in p.get("shape", []))
        up = p.get("frac_neg")  # g < 0: descent moves the knob up
        down = p.get("frac_pos")
        rows.append(
            "<tr>"
            f'<td class="name">{_esc(p["name"])}</td><td>{_esc(shape)}</td>'
            f"<td>{_fmt(p.get('norm'))}</td><td>{_fmt(p.get('mean_abs'))}</td>"
            f"<td>{_fmt(p.get('max_abs'))}</td>"
            f"<td>{_fmt(None if up is None else 100 * up, '.0f')}%</td>"
            f"<td>{_fmt(None if down is None else 100 * down, '.0f')}%</td>"
            f"<td>{_fmt(p.get('update_ratio'), '.2e')}</td>"
            f'<td class="{"flag" if flags else ""}">{_esc(flags or "ok")}</td></tr>'
        )
    return "<table>" + "\n".join(rows) + "</table>"


def render_report(data, analysis) -> str:
    """The report page for a RunData and its RunAnalysis (see report.py)."""
    from . import plot

    parts: list[str] = []
    verdict = analysis.verdict
    parts.append('<section id="summary"><h2>Summary</h2>')
    parts.append(f'<p>Verdict: <span class="verdict v-{verdict}">{_esc(verdict)}</span></p>')
    parts.append('<ul class="findings">')
    for f in analysis.findings:
        parts.append(f'<li class="{_esc(f.level)}">{_esc(f.text)}</li>')
    parts.append("</ul></section>")

    parts.append('<section id="loss"><h2>Loss</h2>')
    if data.steps or data.evals:
        parts.append(_img(plot.loss_curves, data, alt="loss curves"))
    else:
        parts.append('<p class="note">No metrics.jsonl records.</p>')
    parts.append("</section>")

    parts.append('<section id="lr"><h2>Learning rate</h2>')
    if any(s.get("lr") is not None for s in data.steps):
        parts.append(_img(plot.lr_schedule, data, alt="learning-rate schedule"))
    else:
        parts.append('<p class="note">No learning rates recorded.</p>')
    parts.append("</section>")

    recs = data.gradients
    parts.append('<section id="gradients"><h2>Gradients per parameter</h2>')
    if recs:
        parts.append(
            '<p class="note">RMS of each parameter tensor\'s gradient at the recorded steps. '
            "A row fading to dark (small) while others stay bright means that layer's gradient "
            "vanished.</p>"
        )
        parts.append(_img(plot.gradient_norms, recs, alt="gradient norms per parameter"))
    else:
        parts.append(
            '<p class="note">No gradients.jsonl (train with --report to record gradients).</p>'
        )
    parts.append("</section>")

    if any(r.get("moe") for r in recs):  # a mixture of experts (explain/moe.py)
        from .moe import expert_load

        parts.append('<section id="experts"><h2>Expert load</h2>')
        parts.append(
            '<p class="note">Share of the tokens each expert served, per MoE layer, at the '
            "recorded steps. Balanced is k/E (dashed); one expert near 100% (dotted: 90%) means "
            "the layer collapsed into a single MLP; an expert near 0 learns nothing.</p>"
        )
        parts.append(_img(expert_load, recs, alt="expert load per MoE layer"))
        parts.append("</section>")

    parts.append('<section id="updates"><h2>Update-to-weight ratios</h2>')
    if recs:
        parts.append(
            '<p class="note">|update| / |weight| of each optimizer step; around 1e-3 (dashed) '
            "is the usual healthy order of magnitude; far below means the layer barely learns, "
            "far above means it is being rewritten every step.</p>"
        )
        parts.append(_img(plot.update_ratios, recs, alt="update-to-weight ratios"))
    else:
        parts.append('<p class="note">No update ratios recorded.</p>')
    parts.append("</section>")

    if data.curvature:  # ReportCallback(curvature_every=N): sharpness vs the edge of stability
        parts.append('<section id="curvature"><h2>Curvature</h2>')
        parts.append(
            '<p class="note">The sharpness (top eigenvalue of the loss\'s Hessian on one fixed '
            "batch; for Adam the top eigenvalue of the Hessian preconditioned by Adam's "
            "denominators) against the largest curvature the optimizer follows at its lr "
            "(dashed, 2 / lr for plain SGD). Above the dashed line each step overshoots along "
            "the top eigenvector.</p>"
        )
        parts.append(_img(plot.sharpness, data.curvature, alt="sharpness and 2 / lr"))
        parts.append("</section>")

    parts.append('<section id="table"><h2>Last gradient report</h2>')
    if recs:
        last = recs[-1]
        th = last.get("thresholds", {})
        parts.append(
            f'<p class="note">Step {_esc(last.get("step"))}. Knobs up/down: share of '
            "entries that gradient descent moves up (gradient &lt; 0) or down "
            f"(gradient &gt; 0). Flag thresholds: {_esc(json.dumps(th))}.</p>"
        )
        parts.append(_table(last))
    else:
        parts.append('<p class="note">No gradient records.</p>')
    parts.append("</section>")

    parts.append('<section id="landscape"><h2>Loss landscape</h2>')
    land = data.landscape
    if land and not land.get("error"):
        if land.get("slices"):
            parts.append(_img(plot.landscape_slices, land, alt="1-D loss slices"))
        if land.get("grid"):
            parts.append(
                '<p class="note">The loss over the plane of the two principal directions of the '
                "training path (PCA of the parameter snapshots, Li et al. 2018), with the path "
                "drawn on it; the final weights are at the centre (0, 0).</p>"
            )
            parts.append(_img(plot.landscape_contour, land["grid"], land.get("trajectory"),
                              alt="2-D loss surface with the training path"))  # fmt: skip
    elif land and land.get("error"):
        parts.append(f'<p class="note">Landscape not computed: {_esc(land["error"])}</p>')
    else:
        parts.append('<p class="note">No landscape.json (train with --report).</p>')
    parts.append("</section>")

    parts.append('<section id="files"><h2>Run</h2>')
    parts.append(f"<p>Folder: <code>{_esc(data.out_dir)}</code>; {len(data.steps)} step records,"
                 f" {len(data.evals)} evaluations, {len(recs)} gradient records.</p>")  # fmt: skip
    if data.config:
        cfg = ", ".join(f"{_esc(k)}={_esc(v)}" for k, v in data.config.items())
        parts.append(f'<p class="note">Config: {cfg}</p>')
    parts.append("</section>")

    title = "descent training report"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
