"""PNG figures written next to the numbers they show."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def plot_weather_scores(path: Path, scores: dict, example, channels: list[str], plot_var: str,
                        lat: np.ndarray, lon: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x0, x1, pred, _ = example
    k = channels.index(plot_var)
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8), constrained_layout=True)
    extent = (float(lon[0]), float(lon[-1]), float(lat[-1]), float(lat[0]))
    vmin, vmax = float(x1[k].min()), float(x1[k].max())
    for ax, field, title in ((axes[0], x1[k], "truth t+6h"), (axes[1], pred[k], "model t+6h")):
        im = ax.imshow(field, extent=extent, aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis",
                       origin="upper" if lat[0] > lat[-1] else "lower")
        ax.set_title(f"{plot_var}: {title}")
        fig.colorbar(im, ax=ax)
    err = pred[k] - x1[k]
    lim = float(np.abs(x0[k] - x1[k]).max())
    im = axes[2].imshow(err, extent=extent, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                        origin="upper" if lat[0] > lat[-1] else "lower")
    axes[2].set_title("model error (scale: persistence's max)")
    fig.colorbar(im, ax=axes[2])
    names = list(scores["variables"])
    model = [scores["variables"][n]["rmse"]["model"] / scores["variables"][n]["rmse"]["persistence"]
             for n in names]
    axes[3].barh(names, model, color="tab:blue")
    axes[3].axvline(1.0, color="k", ls="--", label="persistence")
    axes[3].set_xlabel("RMSE / persistence RMSE (test, 6 h)")
    axes[3].legend(loc="lower right")
    tmp = Path(path).with_name(Path(path).name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def plot_lead_curves(path: Path, scores: dict, channels: list[str]) -> Path:
    """RMSE (top row) and ACC (bottom row) against lead time, one column per channel and one
    line per forecaster, from a ``scores.json`` dict (`pipeline.scorecard.Scores.to_json`).
    Undefined values (null, e.g. the climatology's ACC) leave gaps. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    leads = [f"{h:g}" for h in scores["lead_time_hours"]]
    hours = np.asarray(scores["lead_time_hours"], dtype=float)
    fig, axes = plt.subplots(2, len(channels), figsize=(4.2 * len(channels), 6.4), squeeze=False,
                             sharex=True, constrained_layout=True)
    for col, channel in enumerate(channels):
        for row, metric in enumerate(("rmse", "acc")):
            ax = axes[row, col]
            for forecaster, by_channel in scores["scores"].items():
                values = [by_channel[channel][k][metric] for k in leads]
                y = np.array([np.nan if v is None else v for v in values], dtype=float)
                ax.plot(hours, y, marker="o", ms=3, label=forecaster)
            ax.set_title(f"{channel}: {metric.upper()}", fontsize=9)
            ax.grid(alpha=0.3)
            if len(hours) <= 12:
                ax.set_xticks(hours)
            if row == 1:
                ax.set_xlabel("lead time (h)")
    axes[0, 0].legend(fontsize=8)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same directory: atomic rename
    try:
        fig.savefig(tmp, dpi=90, format="png")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path
