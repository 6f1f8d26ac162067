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
