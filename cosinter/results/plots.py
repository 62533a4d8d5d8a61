"""Quick-look PNG plots of a run directory (``profiles.csv`` and ``metrics.csv``).

Figures are built with :class:`matplotlib.figure.Figure` directly (Agg, no pyplot
global state) and saved atomically.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from cosinter.results.writers import atomic_path

__all__ = ["plot_metrics", "plot_profiles", "plot_run"]

_KELVIN_TO_DEGC = 273.15
_INDEX_COLUMNS = ("frame", "time_s", "T_K")
#: Metric groups plotted together: prefix -> (y label, factor from SI to display unit).
_METRIC_GROUPS = {
    "inventory_": ("inventory (mol/m²)", 1.0),
    "crossed_": ("amount crossed (mol/m²)", 1.0),
    "depth_": ("penetration depth (nm)", 1e9),
}


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    """Read a CSV into float columns; non-numeric columns are dropped.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: plotting needs a cosinter run directory "
            "containing profiles.csv and metrics.csv"
        )
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path} is empty (no header)")
    header, body = rows[0], rows[1:]
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        try:
            columns[name] = np.array([float(r[j]) if r[j] else np.nan for r in body])
        except (ValueError, IndexError):
            continue  # text or ragged column: nothing to plot
    missing = [c for c in _INDEX_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing numeric column(s) {', '.join(missing)}")
    return columns


def _load(run_dir: Path, name: str, out_dir: Path | None) -> tuple[dict[str, np.ndarray], Path]:
    """Read ``run_dir/name`` and make the output folder (default ``run_dir/plots``)."""
    run_dir = Path(run_dir)
    data = _read_csv(run_dir / name)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    return data, out


def _save(fig: Figure, path: Path) -> Path:
    """Save a figure atomically as PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    return path


def _temperature_colours(T_K: np.ndarray) -> tuple[Normalize, ScalarMappable]:
    """A viridis colour scale over the temperatures in degC."""
    T_C = T_K - _KELVIN_TO_DEGC
    lo, hi = float(np.nanmin(T_C)), float(np.nanmax(T_C))
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)  # a constant T still gets a scale
    return norm, ScalarMappable(norm=norm, cmap="viridis")


def _profile_label(name: str) -> tuple[str, float]:
    """Y label and display factor of a profile column."""
    if name == "phi_V":
        return "φ (V)", 1.0
    if name == "eta":
        return "η", 1.0
    return "c (mol/L)", 1e-3  # species in mol/m^3


def plot_profiles(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Plot each profile column against depth, one line per frame coloured by T.

    Parameters
    ----------
    run_dir
        Run directory containing ``profiles.csv``.
    out_dir
        Where to write ``profile_<name>.png``; default ``run_dir / "plots"``.

    Returns
    -------
    list of Path
        The PNG files written.

    Raises
    ------
    FileNotFoundError
        If ``profiles.csv`` is missing.
    """
    data, out = _load(run_dir, "profiles.csv", out_dir)
    names = list(data)
    fields = names[names.index("x_m") + 1 :] if "x_m" in names else []
    frames = np.unique(data["frame"][~np.isnan(data["frame"])])
    norm, mappable = _temperature_colours(data["T_K"])
    x_nm = data["x_m"] * 1e9 if fields else np.empty(0)
    written = []
    for name in fields:
        if np.all(np.isnan(data[name])):
            continue
        ylabel, factor = _profile_label(name)
        fig = Figure(figsize=(6.4, 4.2), layout="constrained")
        ax = fig.add_subplot()
        for f in frames:
            sel = data["frame"] == f
            colour = mappable.cmap(norm(data["T_K"][sel][0] - _KELVIN_TO_DEGC))
            ax.plot(x_nm[sel], data[name][sel] * factor, color=colour, lw=1.2)
        ax.set(xlabel="depth x (nm)", ylabel=ylabel, title=name)
        fig.colorbar(mappable, ax=ax, label="T (°C)")
        written.append(_save(fig, out / f"profile_{name}.png"))
    return written


def _metric_figure(
    T_C: np.ndarray,
    data: dict[str, np.ndarray],
    columns: Sequence[str],
    prefix: str,
    ylabel: str,
    factor: float,
    path: Path,
    small: bool = False,
) -> Path:
    """One figure of metric columns against temperature."""
    fig = Figure(figsize=(4.8, 3.4) if small else (6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for name in columns:
        ax.plot(T_C, data[name] * factor, marker=".", lw=1.2, label=name.removeprefix(prefix))
    ax.set(xlabel="T (°C)", ylabel=ylabel)
    if len(columns) > 1:
        ax.legend(fontsize="small")
    return _save(fig, path)


def plot_metrics(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Plot metrics against temperature (degC).

    ``inventory_*``, ``crossed_*`` and ``depth_*`` columns share one figure per
    prefix (``metrics_inventory.png`` ...; depths in nm); every other numeric metric
    gets its own small figure ``metrics_<name>.png``. All-NaN columns are skipped.

    Parameters
    ----------
    run_dir
        Run directory containing ``metrics.csv``.
    out_dir
        Output directory; default ``run_dir / "plots"``.

    Returns
    -------
    list of Path
        The PNG files written.

    Raises
    ------
    FileNotFoundError
        If ``metrics.csv`` is missing.
    """
    data, out = _load(run_dir, "metrics.csv", out_dir)
    T_C = data["T_K"] - _KELVIN_TO_DEGC
    metrics = [c for c in data if c not in _INDEX_COLUMNS and not np.all(np.isnan(data[c]))]
    written = []
    for prefix, (ylabel, factor) in _METRIC_GROUPS.items():
        group = [c for c in metrics if c.startswith(prefix)]
        if group:
            path = out / f"metrics_{prefix.rstrip('_')}.png"
            written.append(_metric_figure(T_C, data, group, prefix, ylabel, factor, path))
    for name in metrics:
        if not name.startswith(tuple(_METRIC_GROUPS)):
            path = out / f"metrics_{name}.png"
            written.append(_metric_figure(T_C, data, [name], "", name, 1.0, path, small=True))
    return written


def plot_run(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Plot profiles and metrics of a run (see :func:`plot_profiles`, :func:`plot_metrics`).

    Raises
    ------
    FileNotFoundError
        If ``profiles.csv`` or ``metrics.csv`` is missing (checked before plotting).
    """
    run_dir = Path(run_dir)
    for name in ("profiles.csv", "metrics.csv"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(
                f"{run_dir / name} not found: plotting needs a cosinter run directory "
                "containing profiles.csv and metrics.csv"
            )
    return plot_profiles(run_dir, out_dir) + plot_metrics(run_dir, out_dir)
