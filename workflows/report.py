"""The nightly report: forecast and error maps, scores against lead time, one Markdown page.

ROOT/reports/<init>/
    maps.png            per report variable: the new forecast at the map lead, and the error
                        (forecast − analysis) of the newest forecast verified at that lead
    scores_by_lead.png  RMSE and ACC against lead time over every verified init: model,
                        persistence, climatology (`pipeline.plots.plot_lead_curves`)
    report.md           links both, with the scores table at the map lead

Everything is a function of the published forecasts, the scorecard and the analyses (no
wall-clock time), so a re-run writes the same bytes. Files are written to a temporary name and
renamed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.scorecard import atomic_write_bytes


@dataclass
class MapPanel:
    channel: str
    forecast: np.ndarray  # [H, W]
    error: np.ndarray | None  # [H, W] forecast − analysis, or None when none is verified yet
    error_init: str | None


def plot_maps(path: Path, panels: list[MapPanel], lat, lon, init: str, lead_hours: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat, lon = np.asarray(lat), np.asarray(lon)
    extent = (float(lon[0]), float(lon[-1]), float(lat.min()), float(lat.max()))
    origin = "upper" if lat[0] > lat[-1] else "lower"
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 2.9 * len(panels)), squeeze=False,
                             constrained_layout=True)
    for row, p in enumerate(panels):
        im = axes[row, 0].imshow(p.forecast, extent=extent, origin=origin, aspect="auto",
                                 cmap="viridis")
        axes[row, 0].set_title(f"{p.channel}: forecast {init} +{lead_hours} h", fontsize=9)
        fig.colorbar(im, ax=axes[row, 0])
        ax = axes[row, 1]
        if p.error is None:
            ax.text(0.5, 0.5, f"no forecast verified at +{lead_hours} h yet", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        lim = float(np.abs(p.error).max()) or 1.0
        im = ax.imshow(p.error, extent=extent, origin=origin, aspect="auto", cmap="RdBu_r",
                       vmin=-lim, vmax=lim)
        ax.set_title(f"{p.channel}: error of {p.error_init} +{lead_hours} h", fontsize=9)
        fig.colorbar(im, ax=ax)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4g}"


def report_markdown(*, init: str, lead_hours: int, checkpoint_sha256: str, forecast_path: str,
                    curves: dict, channels: list[str], missing: list[str]) -> str:
    """One page: what was forecast, links to the plots, the verified scores at the map lead."""
    key = f"{lead_hours:g}"
    lines = [f"# Nightly forecast {init}", "",
             f"- forecast store: `{forecast_path}`",
             f"- checkpoint sha256: `{checkpoint_sha256[:16]}…`",
             f"- verified forecasts so far: {curves.get('n_inits', 0)} init times", ""]
    if missing:
        lines += [f"Not in this model's channels (not shown): {', '.join(missing)}", ""]
    lines += ["![forecast and error maps](maps.png)", ""]
    if curves["lead_time_hours"]:
        lines += ["![RMSE and ACC against lead time](scores_by_lead.png)", ""]
    lines += [f"## Scores at +{lead_hours} h (all verified init times)", "",
              "| channel | RMSE model | RMSE persistence | RMSE climatology | ACC model | "
              "ACC persistence | bias model |", "|---|---|---|---|---|---|---|"]
    s = curves["scores"]
    for c in channels:
        m, p, k = (s[f][c].get(key, {}) for f in ("model", "persistence", "climatology"))
        lines.append(f"| {c} | {_fmt(m.get('rmse'))} | {_fmt(p.get('rmse'))} | "
                     f"{_fmt(k.get('rmse'))} | {_fmt(m.get('acc'))} | {_fmt(p.get('acc'))} | "
                     f"{_fmt(m.get('bias'))} |")
    if key not in curves["lead_time_hours"] and float(lead_hours) not in curves["lead_time_hours"]:
        lines += ["", f"No forecast has been verified at +{lead_hours} h yet."]
    return "\n".join(lines) + "\n"
