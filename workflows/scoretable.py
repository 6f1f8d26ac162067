"""The nightly scorecard: one row per (init, lead, variable, level), upserted, never duplicated.

ROOT/scorecard.csv, sorted by its key (init_time, lead_hours, variable, level_hpa; a surface
variable's level is empty). Each row holds the model's latitude-weighted RMSE, bias and ACC of
that one forecast at that lead (`workflows.verify`), and the RMSE and ACC of persistence and of
the climatology at the same valid time (empty without a climatology; the climatology's own ACC is
undefined and not a column). Values are written with Python's shortest round-trip repr, so the
same numbers give the same bytes and re-reading loses nothing.

Aggregation over init times (`lead_curves`) follows WeatherBench2: RMSE = sqrt(mean of the
per-init MSE), bias and ACC = means over inits.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import DataError
from pipeline.scorecard import atomic_write_bytes

KEY = ("init_time", "lead_hours", "variable", "level_hpa")
COLUMNS = (*KEY, "valid_time", "rmse", "bias", "acc", "persistence_rmse", "persistence_acc",
           "climatology_rmse")
FORECASTERS = {"model": ("rmse", "acc"), "persistence": ("persistence_rmse", "persistence_acc"),
               "climatology": ("climatology_rmse", None)}
METRICS = ("rmse", "bias", "acc", "persistence_rmse", "persistence_acc", "climatology_rmse")


def channel_key(variable: str, level) -> str:
    return variable if level in (None, "") else f"{variable}_{float(level):g}"


@dataclass
class ScoreTable:
    rows: dict[tuple, dict]  # KEY tuple → row (strings for keys, float | None for metrics)

    @staticmethod
    def key(row: dict) -> tuple:
        level = row["level_hpa"]
        return (row["init_time"], int(row["lead_hours"]), row["variable"],
                "" if level in (None, "") else f"{float(level):g}")

    @classmethod
    def read(cls, path: Path) -> ScoreTable:
        """The table at ``path`` (empty if there is none); DataError naming a bad row."""
        if not path.is_file():
            return cls({})
        rows = {}
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise DataError(path, "header", ",".join(COLUMNS), ",".join(reader.fieldnames
                                                                             or ()))
            for n, row in enumerate(reader, start=2):
                try:
                    row = {**row, **{m: None if row[m] == "" else float(row[m])
                                     for m in METRICS}}
                    rows[cls.key(row)] = row
                except (TypeError, ValueError) as exc:
                    raise DataError(path, f"line {n}", "numbers in the metric columns",
                                    str(exc)) from None
        return cls(rows)

    def has(self, init_time: str, lead_hours: int) -> bool:
        return any(k[0] == init_time and k[1] == lead_hours for k in self.rows)

    def upsert(self, rows: list[dict]) -> None:
        for row in rows:
            self.rows[self.key(row)] = row

    def to_csv(self) -> bytes:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for key in sorted(self.rows):
            row = self.rows[key]
            writer.writerow([*key[:2], key[2], key[3], row["valid_time"],
                             *("" if row[m] is None or math.isnan(row[m]) else repr(float(row[m]))
                               for m in METRICS)])
        return buf.getvalue().encode()

    def write(self, path: Path, before_publish=None) -> Path:
        """Atomically (temporary file, rename); ``before_publish()`` runs in between."""
        return atomic_write_bytes(path, self.to_csv(), before_publish=before_publish)

    def pairs(self) -> set[tuple[str, int]]:
        """The (init_time, lead_hours) pairs the table holds."""
        return {k[:2] for k in self.rows}

    def lead_curves(self, channels: list[str]) -> dict:
        """Scores by lead for ``channels`` over every init, in the layout of ``scores.json``
        (`pipeline.scorecard.Scores.to_json`: forecaster → channel → lead → metric) that
        `pipeline.plots.plot_lead_curves` draws."""
        leads = sorted({k[1] for k in self.rows})
        out = {f: {c: {} for c in channels} for f in FORECASTERS}
        for c in channels:
            for lead in leads:
                rows = [r for k, r in self.rows.items()
                        if k[1] == lead and channel_key(k[2], k[3]) == c]
                for f, (rmse_col, acc_col) in FORECASTERS.items():
                    out[f][c][f"{lead:g}"] = {
                        "rmse": _rms([r[rmse_col] for r in rows]),
                        "acc": None if acc_col is None else _mean([r[acc_col] for r in rows]),
                        "bias": _mean([r["bias"] for r in rows]) if f == "model" else None}
        return {"lead_time_hours": [float(h) for h in leads], "scores": out,
                "n_inits": len({k[0] for k in self.rows})}


def _values(xs) -> list[float]:
    return [x for x in xs if x is not None and not math.isnan(x)]


def _rms(xs) -> float | None:
    v = _values(xs)
    return math.sqrt(sum(x * x for x in v) / len(v)) if v else None


def _mean(xs) -> float | None:
    v = _values(xs)
    return sum(v) / len(v) if v else None
