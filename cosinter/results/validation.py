"""Calibration targets (``docs/validation/targets.toml``) checked against finished runs.

One evaluator for the validation tests and the validation report: a target names
a case, a metric of ``metrics.csv`` or ``onsets.json`` and a window; :func:`evaluate`
reads the case's run folder and says what the model gives and whether it is in the
window. Temperatures in the targets are in degC.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The targets file of the repository (relative to the package).
TARGETS = Path(__file__).resolve().parents[2] / "docs" / "validation" / "targets.toml"

KINDS = ("onset", "at", "ratio", "rising", "contrast")


@dataclass(frozen=True)
class Target:
    """One row of the targets file (see its header for the kinds)."""

    id: str
    row: str
    observed: str
    case: str
    kind: str
    metric: str
    low: float | None = None
    high: float | None = None
    T: float | list[float] | None = None
    T_a: float | None = None
    T_b: float | None = None
    scale: float = 1.0
    unit: str = ""
    other: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cases(self) -> tuple[str, ...]:
        """The cases whose runs the target reads."""
        return (self.case,) if self.other is None else (self.case, self.other)

    def window(self) -> str:
        """The window as text, e.g. ``350-450 degC`` or ``>= 5``."""
        unit = {"onset": " degC"}.get(self.kind, f" {self.unit}" if self.unit else "")
        if self.kind == "rising":
            return "rising over " + ", ".join(f"{t:g}" for t in self.temperatures()) + " degC"
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g}{unit}"
        if self.low is not None:
            return f">= {self.low:g}{unit}"
        return f"<= {self.high:g}{unit}"

    def temperatures(self) -> list[float]:
        if isinstance(self.T, list):
            return [float(t) for t in self.T]
        return [] if self.T is None else [float(self.T)]


def load_targets(path: Path = TARGETS) -> list[Target]:
    """All targets of a targets file, in order.

    Raises
    ------
    ValueError
        An unknown kind or a missing key, naming the target.
    """
    data = tomllib.loads(path.read_text())
    out = []
    known = set(Target.__dataclass_fields__) - {"extra"}
    for index, item in enumerate(data.get("target", [])):
        if item.get("kind") not in KINDS:
            raise ValueError(f"{path}: target {index} has kind {item.get('kind')!r}; use {KINDS}")
        try:
            out.append(
                Target(
                    **{k: v for k, v in item.items() if k in known},
                    extra={k: v for k, v in item.items() if k not in known},
                )
            )
        except TypeError as exc:
            raise ValueError(f"{path}: target {index} ({item.get('id')}): {exc}") from None
    return out


@dataclass(frozen=True)
class Outcome:
    """What the model gives for a target."""

    target: Target
    value: float | None
    text: str
    passed: bool


@dataclass
class RunData:
    """The frames of ``metrics.csv`` and ``onsets.json`` of one run folder."""

    rows: list[dict[str, str]]
    onsets: dict[str, Any]

    @classmethod
    def read(cls, directory: Path) -> RunData:
        with (directory / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        onsets = json.loads((directory / "onsets.json").read_text())
        return cls(rows, onsets)

    def frame(self, T_degC: float, tolerance_K: float = 0.01) -> dict[str, str] | None:
        """The first frame within ``tolerance_K`` of ``T_degC``, None if there is none."""
        for row in self.rows:
            if abs(float(row["T_K"]) - 273.15 - T_degC) < tolerance_K:
                return row
        return None

    def at(self, metric: str, T_degC: float) -> float:
        """``metric`` in the first frame at ``T_degC`` (within 0.01 K)."""
        row = self.frame(T_degC)
        if row is None:
            raise KeyError(f"no frame at {T_degC:g} degC")
        return float(row[metric])

    def onset(self, metric: str) -> float | None:
        """Onset temperature of ``metric`` (degC), None if never reached."""
        entry = self.onsets["onsets"].get(metric)
        return None if entry is None else float(entry["T_degC"])


def _inside(value: float | None, low: float | None, high: float | None) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def evaluate(target: Target, runs: Mapping[str, Path | RunData]) -> Outcome:
    """The model's value for ``target`` from the run folders of its cases."""
    data = {
        name: (run if isinstance(run, RunData) else RunData.read(Path(run)))
        for name, run in runs.items()
        if name in target.cases
    }
    run = data[target.case]
    if target.kind == "onset":
        value = run.onset(target.metric)
        text = "never" if value is None else f"{value:.0f} degC"
        return Outcome(target, value, text, _inside(value, target.low, target.high))
    if target.kind == "at":
        assert not isinstance(target.T, list) and target.T is not None
        value = run.at(target.metric, target.T) * target.scale
        text = f"{value:.3g} {target.unit}".strip()
        return Outcome(target, value, text, _inside(value, target.low, target.high))
    if target.kind == "ratio":
        assert target.T_a is not None and target.T_b is not None
        a, b = run.at(target.metric, target.T_a), run.at(target.metric, target.T_b)
        value = a / b if b else math.inf
        text = f"{value:.3g} ({a:.3g} / {b:.3g})"
        return Outcome(target, value, text, _inside(value, target.low, target.high))
    if target.kind == "rising":
        values = [run.at(target.metric, t) for t in target.temperatures()]
        rising = all(b > a for a, b in itertools.pairwise(values))
        return Outcome(target, None, " -> ".join(f"{v:.3g}" for v in values), rising)
    # contrast
    assert target.other is not None and not isinstance(target.T, list) and target.T is not None
    mine, theirs = run.at(target.metric, target.T), data[target.other].at(target.metric, target.T)
    value = mine / theirs if theirs > 0 else math.inf
    text = f"{value:.3g} ({mine:.3g} / {theirs:.3g})"
    return Outcome(target, value, text, _inside(value, target.low, target.high))
