"""PNG maps of a sweep folder: a metric of ``sweep.csv`` over one or two axes.

``sweep.csv`` (written by :mod:`cosinter.sweep`) holds one row per point: ``id``,
the axes as written (``"500 degC"``), their SI values (``<path> [<unit>]``),
``status``, ``wall_s`` and the summary metrics. :func:`plot_sweep` draws

* a heatmap of the metric over two axes (x: columns, y: rows), one per value of
  any further axes, and
* a line plot of the metric against the x axis, one line per value of the y axis.

Axis values that are numbers with one unit (``"0 deg"``, ``"15 deg"``, ...) are
plotted in that unit; others (material names) as categories. Points that are not
done are blank. Figures are saved atomically, as in :mod:`cosinter.results.plots`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from cosinter.errors import InputError
from cosinter.results.writers import atomic_path

__all__ = ["DEFAULT_METRIC", "SweepTable", "plot_sweep", "read_sweep_table"]

#: The metric plotted when none is named (and present).
DEFAULT_METRIC = "asr_ohm_m2@end"
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
_MAX_ANNOTATED = 12  # annotate heatmap cells up to this many per side


@dataclass
class SweepTable:
    """sweep.csv as columns: the axes (as written), the metrics, the status."""

    axes: list[str]
    columns: dict[str, list[str]]
    metrics: list[str]

    @property
    def done(self) -> np.ndarray:
        return np.array([s == "done" for s in self.columns["status"]])

    def numbers(self, name: str) -> np.ndarray:
        """A column as floats (blank -> NaN; points not done -> NaN)."""
        values = np.array(
            [float(v) if v not in ("", None) else math.nan for v in self.columns[name]]
        )
        values[~self.done] = math.nan
        return values


def read_sweep_table(directory: Path) -> SweepTable:
    """Read ``directory/sweep.csv``.

    Raises
    ------
    InputError
        No sweep.csv, or one without the ``id`` and ``status`` columns.
    """
    path = Path(directory) / "sweep.csv"
    if not path.is_file():
        raise InputError(f"{path} not found: not a sweep folder")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or "id" not in rows[0] or "status" not in rows[0]:
        raise InputError(f"{path}: not a cosinter sweep table (no id/status columns)")
    header, body = rows[0], rows[1:]
    columns = {name: [r[j] if j < len(r) else "" for r in body] for j, name in enumerate(header)}
    status_at = header.index("status")
    axes = [h for h in header[1:status_at] if not h.endswith("]")]
    metrics = header[status_at + 2 :]  # after status, wall_s
    return SweepTable(axes=axes, columns=columns, metrics=metrics)


@dataclass
class _AxisData:
    """An axis ready to plot: distinct values in order, their labels and positions."""

    name: str
    label: str
    index: np.ndarray  # per point: which distinct value
    labels: list[str]
    positions: np.ndarray  # per distinct value: numeric position (category index if none)
    numeric: bool

    def sorted(self) -> _AxisData:
        """The same axis with its distinct values in ascending position."""
        order = np.argsort(self.positions, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return _AxisData(
            self.name,
            self.label,
            rank[self.index],
            [self.labels[k] for k in order],
            self.positions[order],
            self.numeric,
        )


def _axis_data(table: SweepTable, name: str) -> _AxisData:
    texts = table.columns[name]
    distinct = list(dict.fromkeys(texts))
    index = np.array([distinct.index(t) for t in texts])
    parsed = [_NUMBER_UNIT.match(t) for t in distinct]
    units = {m.group(2) for m in parsed if m}
    if all(parsed) and len(units) == 1:
        unit = units.pop()
        positions = np.array([float(m.group(1)) for m in parsed if m])
        label = f"{name} ({unit})" if unit else name
        return _AxisData(name, label, index, distinct, positions, True).sorted()
    return _AxisData(name, name, index, distinct, np.arange(len(distinct), dtype=float), False)


def _resolve_metric(table: SweepTable, metric: str | None) -> str:
    if metric is None:
        if DEFAULT_METRIC in table.metrics:
            return DEFAULT_METRIC
        if not table.metrics:
            raise InputError("sweep.csv has no metric columns yet (no point is done)")
        return table.metrics[0]
    if metric in table.metrics:
        return metric
    if f"{metric}@end" in table.metrics:
        return f"{metric}@end"
    shown = ", ".join(table.metrics[:12]) + (" ..." if len(table.metrics) > 12 else "")
    raise InputError(f"--metric {metric}: not a column of sweep.csv; metrics: {shown}")


def _resolve_axis(
    table: SweepTable, name: str | None, option: str, other: str | None = None
) -> str | None:
    """The axis ``name``; by default the first axis that is not ``other``."""
    if name is None:
        return next((a for a in table.axes if a != other), None)
    if name in table.axes:
        return name
    raise InputError(f"{option} {name}: not an axis of the sweep; axes: {', '.join(table.axes)}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    return path


def _norm(values: np.ndarray) -> Normalize:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Normalize(0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0 and hi / lo > 100:  # spans decades (ASR, D): a log scale
        return LogNorm(lo, hi)
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def plot_sweep(
    directory: Path,
    out_dir: Path | None = None,
    metric: str | None = None,
    x: str | None = None,
    y: str | None = None,
) -> list[Path]:
    """Heatmaps and line plots of one metric of a sweep folder.

    Parameters
    ----------
    directory
        The sweep folder (holds sweep.csv).
    out_dir
        Where the PNGs go; default ``directory/plots``.
    metric
        A metric column of sweep.csv (``asr_ohm_m2@end``, ``li_transferred_mol_m2@700degC``,
        ``onset_asr_ohm_m2_K``; a bare name means ``@end``); default
        :data:`DEFAULT_METRIC`, else the first metric.
    x, y
        Axis paths; default the first and the second axis of the sweep. With one
        axis only the line plot is drawn.

    Returns
    -------
    list of Path
        The PNGs written.

    Raises
    ------
    InputError
        Unknown metric or axis, or a folder without sweep.csv.
    """
    directory = Path(directory)
    table = read_sweep_table(directory)
    name = _resolve_metric(table, metric)
    x_name = _resolve_axis(table, x, "--x")
    if x_name is None:
        raise InputError("sweep.csv has no axes")
    y_name = _resolve_axis(table, y, "--y", other=x_name)
    if y_name == x_name:
        raise InputError(f"--x and --y name the same axis ({x_name})")
    out = Path(out_dir) if out_dir is not None else directory / "plots"
    out.mkdir(parents=True, exist_ok=True)
    values = table.numbers(name)
    xa = _axis_data(table, x_name)
    ya = _axis_data(table, y_name) if y_name else None
    rest = [a for a in table.axes if a not in (x_name, y_name)]
    groups: dict[tuple[str, ...], np.ndarray] = {}
    for k in range(len(values)):
        key = tuple(table.columns[a][k] for a in rest)
        groups.setdefault(key, np.zeros(len(values), dtype=bool))[k] = True
    written: list[Path] = []
    for key, mask in groups.items():
        suffix = "".join(f"_{_slug(a)}={_slug(v)}" for a, v in zip(rest, key, strict=True))
        title = name + "".join(f"\n{a} = {v}" for a, v in zip(rest, key, strict=True))
        stem = f"sweep_{_slug(name)}_vs_{_slug(x_name)}"
        if ya is not None:
            stem += f"_{_slug(ya.name)}"
            written.append(
                _heatmap(values, mask, xa, ya, name, title, out / f"{stem}{suffix}_map.png")
            )
        written.append(_lines(values, mask, xa, ya, name, title, out / f"{stem}{suffix}_lines.png"))
    return written


def _heatmap(
    values: np.ndarray,
    mask: np.ndarray,
    xa: _AxisData,
    ya: _AxisData,
    metric: str,
    title: str,
    path: Path,
) -> Path:
    grid = np.full((len(ya.labels), len(xa.labels)), math.nan)
    for k in np.flatnonzero(mask):
        grid[ya.index[k], xa.index[k]] = values[k]
    fig = Figure(figsize=(1.2 + 0.9 * max(len(xa.labels), 4), 1.6 + 0.6 * max(len(ya.labels), 3)))
    ax = fig.add_subplot()
    norm = _norm(grid)
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", norm=norm)
    ax.set_xticks(range(len(xa.labels)), [_short(t) for t in xa.labels], rotation=45, ha="right")
    ax.set_yticks(range(len(ya.labels)), [_short(t) for t in ya.labels])
    ax.set_xlabel(xa.name)
    ax.set_ylabel(ya.name)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=metric)
    if len(xa.labels) <= _MAX_ANNOTATED and len(ya.labels) <= _MAX_ANNOTATED:
        for (i, j), v in np.ndenumerate(grid):
            finite = math.isfinite(v)
            light = finite and float(norm(v)) > 0.6  # viridis is light at the top
            text = f"{v:.3g}" if finite else "–"
            colour = "black" if light else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    fig.tight_layout()
    return _save(fig, path)


def _lines(
    values: np.ndarray,
    mask: np.ndarray,
    xa: _AxisData,
    ya: _AxisData | None,
    metric: str,
    title: str,
    path: Path,
) -> Path:
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    series: Sequence[tuple[str, np.ndarray]]
    if ya is None:
        series = [("", mask)]
    else:
        series = [(f"{ya.name} = {t}", mask & (ya.index == j)) for j, t in enumerate(ya.labels)]
    for label, select in series:
        ks = np.flatnonzero(select)
        if ks.size == 0:
            continue
        order = np.argsort(xa.index[ks], kind="stable")
        ks = ks[order]
        ax.plot(xa.positions[xa.index[ks]], values[ks], marker="o", label=label or None)
    if not xa.numeric:
        ax.set_xticks(xa.positions, [_short(t) for t in xa.labels], rotation=45, ha="right")
    ax.set_xlabel(xa.label)
    ax.set_ylabel(metric)
    finite = values[mask & np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    if ya is not None:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _short(text: str, width: int = 18) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
