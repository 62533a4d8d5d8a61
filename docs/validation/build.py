"""Build the validation report: ``docs/validation/index.rst`` and ``figures/*.png``.

``make validation`` (``.venv/bin/python docs/validation/build.py``) runs every
``cases/lee2024_*.toml`` and ``cases/wang2020_*.toml`` with the command line
(``python -m cosinter run CASE -o RUNS/<name>``, RUNS = ``results/validation``),
checks the calibration targets of ``docs/validation/targets.toml`` with
:func:`cosinter.results.validation.evaluate`, and writes the page and its figures.

A run folder is reused, not run again, when it is *up to date*: its ``run.json``
says ``"status": "completed"`` and records the same ``case_sha256`` (the case's
TOML content), the same ``resolved`` case (every value in SI, defaults filled in)
and the same ``materials`` (the library parameters per species) as the case file
gives when loaded now. So an edit of the case file, of a default (an onset
threshold, say) or of a library diffusion parameter reruns the case; a change of
the solver code or of a reaction parameter that ``run.json`` does not record does
not: use ``--force`` then.

A case that fails is reported in the page as failed, with its error; the build
goes on. Options: ``--runs DIR`` (run folders, default ``results/validation``),
``--only NAME`` (run only this case, repeatable; the page still shows every up to
date run found), ``--force`` (rerun), ``--no-run`` (run nothing: report the runs
found, marking the out-of-date ones), ``-j N`` (cases run at once). From make:
``make validation VALIDATION_FLAGS="--force --only lee2024_ncm104"``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cosinter.results.validation import Outcome, RunData, Target, evaluate, load_targets
from cosinter.results.writers import atomic_path, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PAGE = HERE / "index.rst"
FIGURES = HERE / "figures"
CASES = ROOT / "cases"
DEFAULT_RUNS = ROOT / "results" / "validation"
PATTERNS = ("lee2024_*.toml", "wang2020_*.toml")
#: The cases issue 4 asks for; one without a case file is listed as "no case file".
EXPECTED = (
    "lee2024_ncm104",
    "lee2024_ncm003",
    "lee2024_composite",
    "lee2024_ncm003_lto",
    "lee2024_ncm003_defects",
    "wang2020_lnto_350",
    "wang2020_lnto_450",
    "wang2020_lnto_550",
)
OPEN, CLOSED = "lee2024_ncm104", "lee2024_ncm003"
MAPS = ("lee2024_composite", "lee2024_ncm003_defects")
#: Temperatures (degC) at which the per-case tables show the metrics, where a frame is.
KEY_T = (100.0, 400.0, 450.0, 600.0, 700.0)
KELVIN = 273.15


@dataclass(frozen=True)
class Metric:
    """An interface metric of ``metrics.csv`` as the page shows it."""

    name: str
    unit: str
    scale: float  # SI -> shown unit


METRICS = (
    Metric("li_transferred_mol_m2", "mol/m²", 1.0),
    Metric("ti_depth_m", "nm", 1e9),
    Metric("la_depth_m", "nm", 1e9),
    Metric("vo_max", "site fraction", 1.0),
    Metric("interphase_thickness_m", "nm", 1e9),
    Metric("asr_ohm_m2", "Ω m²", 1.0),
)
#: Measured room-temperature ionic conductivities of the LNTO coatings, S/m (Wang et
#: al., Nano Energy 2020, doi:10.1016/j.nanoen.2020.104686: 13.2, 38.7, 2.43 uS/cm).
WANG_SIGMA_S_M = {
    "wang2020_lnto_350": 13.2e-4,
    "wang2020_lnto_450": 38.7e-4,
    "wang2020_lnto_550": 2.43e-4,
}


# --------------------------------------------------------------------------- runs


@dataclass
class CaseRun:
    """What the build knows about one case and its run folder."""

    name: str
    case_file: Path | None
    run_dir: Path
    status: str = "not run"  # "completed", "failed", "not run", "no case file"
    action: str = ""  # "ran", "reused", "" (nothing done)
    note: str = ""  # why it was (not) run, or what is stale
    error: str = ""
    process_s: float | None = None  # wall time of the cosinter process in this build
    record: dict[str, Any] = field(default_factory=dict)
    data: RunData | None = None

    @property
    def solver_wall_s(self) -> float | None:
        try:
            return float(self.record["solver_statistics"]["wall_s"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def description(self) -> str:
        case = self.record.get("case", {}).get("case", {})
        return str(case.get("description", ""))


def _normalised(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples -> lists, paths -> text)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def fresh_record(case_file: Path) -> dict[str, Any]:
    """The keys of run.json that identify a run, as loading ``case_file`` gives them now.

    ``case_sha256``, ``resolved`` and ``materials`` of
    :meth:`cosinter.solver.simulation.Simulation.record`, the function the CLI uses.
    """
    from cosinter.case import load_case
    from cosinter.solver.simulation import Simulation

    case, raw = load_case(case_file)
    record = Simulation(case, raw, source=str(case_file)).record()
    return _normalised({k: record[k] for k in ("case_sha256", "resolved", "materials")})


def stale_reason(recorded: Mapping[str, Any], fresh: Mapping[str, Any]) -> str | None:
    """Why the recorded run.json is not a completed run of ``fresh``; None if it is."""
    status = recorded.get("status")
    if status != "completed":
        return f"the run in the folder is {status or 'unknown'!s}"
    if recorded.get("case_sha256") != fresh["case_sha256"]:
        return "the case file changed"
    if _normalised(recorded.get("resolved")) != fresh["resolved"]:
        return "a default of the resolved case changed"
    if _normalised(recorded.get("materials")) != fresh["materials"]:
        return "a library parameter changed"
    return None


def read_record(run_dir: Path) -> dict[str, Any]:
    """run.json of ``run_dir``, {} if there is none."""
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def up_to_date(run_dir: Path, case_file: Path) -> str | None:
    """None if ``run_dir`` holds a completed run of ``case_file`` as it is now, else why not."""
    record = read_record(run_dir)
    if not record:
        return "no run yet"
    try:
        fresh = fresh_record(case_file)
    except Exception as exc:  # the CLI reports it properly when the case is run
        return f"the case does not load ({type(exc).__name__})"
    return stale_reason(record, fresh)


def run_case(case_file: Path, run_dir: Path) -> tuple[bool, str, float]:
    """Run one case with the CLI: (success, error text, wall time in s)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cosinter", "run", str(case_file), "-o", str(run_dir), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    wall = time.perf_counter() - start
    if proc.returncode == 0:
        return True, "", wall
    lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("(run with --debug")]
    return False, "\n".join(lines[-12:]) or f"exit code {proc.returncode}", wall


def discover(runs_root: Path) -> list[CaseRun]:
    """The expected cases, then any other ``lee2024_*``/``wang2020_*`` case file."""
    files = {p.stem: p for pattern in PATTERNS for p in CASES.glob(pattern)}
    names = list(EXPECTED) + sorted(set(files) - set(EXPECTED))
    return [CaseRun(n, files.get(n), runs_root / n) for n in names]


def load_run(run: CaseRun) -> None:
    """Read run.json, metrics.csv and onsets.json of a completed run into ``run``."""
    run.record = read_record(run.run_dir)
    if run.record.get("status") == "failed":
        run.status, run.error = "failed", str(run.record.get("error", "failed"))
        return
    try:
        run.data = RunData.read(run.run_dir)
    except (OSError, ValueError) as exc:
        run.status, run.error = "failed", f"outputs unreadable: {exc}"
        return
    run.status = "completed"


def prepare(
    runs: Sequence[CaseRun],
    *,
    only: Sequence[str] = (),
    force: bool = False,
    execute: bool = True,
    jobs: int = 1,
) -> None:
    """Run what needs running (printing progress) and load every usable run."""
    todo: list[CaseRun] = []
    for run in runs:
        if run.case_file is None:
            run.status, run.note = "no case file", f"cases/{run.name}.toml does not exist"
            print(f"{run.name}: {run.note}", flush=True)
            continue
        reason = up_to_date(run.run_dir, run.case_file)
        wanted = not only or run.name in only
        if execute and wanted and (force or reason is not None):
            run.note = "forced" if force and reason is None else (reason or "")
            todo.append(run)
        elif reason is None:
            run.action = "reused"
            load_run(run)
        elif (run.run_dir / "run.json").is_file() and not execute:
            run.action, run.note = "reused", f"STALE: {reason}"
            load_run(run)
        else:
            run.note = reason
        wall = f", solver wall {run.solver_wall_s:.1f} s" if run.solver_wall_s is not None else ""
        print(
            f"{run.name}: {run.action or ('queued' if run in todo else run.status)}"
            + (f" ({run.note})" if run.note else "")
            + (wall if run.action == "reused" else ""),
            flush=True,
        )

    def one(run: CaseRun) -> None:
        assert run.case_file is not None
        print(f"{run.name}: running ...", flush=True)
        ok, error, wall = run_case(run.case_file, run.run_dir)
        run.action, run.process_s = "ran", wall
        if ok:
            load_run(run)
        else:
            run.record = read_record(run.run_dir) if not error else {}
            run.status, run.error = "failed", error
        print(
            f"{run.name}: {run.status} in {wall:.1f} s"
            + (f": {run.error.splitlines()[-1]}" if run.error else ""),
            flush=True,
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, todo))


# --------------------------------------------------------------------------- numbers


def metric_columns(
    header: Iterable[str], rows: Sequence[Mapping[str, str]], metric: str
) -> list[tuple[str, str]]:
    """The columns of ``metric`` worth showing, as (column, interface label).

    The unsuffixed column (the cathode interface) if there is one, then each
    ``<metric>_i<k>`` that is not a copy of it; a single suffixed column alone.
    """
    header = list(header)
    suffixed = sorted(
        (c for c in header if re.fullmatch(re.escape(metric) + r"_i\d+", c)),
        key=lambda c: int(c.rsplit("_i", 1)[1]),
    )
    if metric in header:
        suffixed = [c for c in suffixed if any(r[c] != r[metric] for r in rows)]
    out = [(c, "interface i" + c.rsplit("_i", 1)[1]) for c in suffixed]
    if metric in header:
        out.insert(0, (metric, "cathode interface" if out else ""))
    elif len(out) == 1:
        out = [(out[0][0], "")]
    return out


def fmt(value: float | None, scale: float = 1.0) -> str:
    """A number with three significant digits; "–" for none, "inf" for infinite."""
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    v = value * scale
    return "0" if v == 0 else f"{v:.3g}"


def onset_text(data: RunData, column: str) -> str:
    """Onset of ``column`` in degC, "none" if never reached, "–" if not tracked."""
    onsets = data.onsets.get("onsets", {})
    if column not in onsets:
        return "–"
    entry = onsets[column]
    return "none" if entry is None else f"{float(entry['T_degC']):.0f}"


# --------------------------------------------------------------------------- rst


def rst_escape(text: str) -> str:
    """Text with the inline markup characters of reStructuredText escaped."""
    return re.sub(r"([\\*`|_])", r"\\\1", str(text))


def literal(text: str) -> str:
    return f"``{text}``"


def rst_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    title: str = "",
    widths: Sequence[int] | None = None,
) -> str:
    """A ``list-table`` directive (cells are used as given: escape them first)."""
    lines = [f".. list-table:: {title}".rstrip(), "   :header-rows: 1"]
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    lines.append("")
    for row in [header, *rows]:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, the header {len(header)}")
        cells = [str(c) if str(c).strip() else "\\ " for c in row]
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return "\n".join(lines) + "\n"


Result = Outcome | str | None  # an outcome, an error text, or None (not run)


def evaluate_all(targets: Sequence[Target], data: Mapping[str, RunData]) -> list[Result]:
    """:func:`evaluate` for each target whose cases all have a run; errors as text."""
    out: list[Result] = []
    for target in targets:
        if not set(target.cases) <= set(data):
            out.append(None)
            continue
        try:
            out.append(evaluate(target, data))
        except (KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
            out.append(f"error: {exc}")
    return out


def verdict(result: Result) -> str:
    if result is None:
        return "not run"
    if isinstance(result, str):
        return "**MISSED** (error)"
    return "met" if result.passed else "**MISSED**"


def targets_table(targets: Sequence[Target], results: Sequence[Result]) -> str:
    """The calibration targets: PHYSICS.md row, observed, model value, window, verdict."""
    rows = []
    for target, result in zip(targets, results, strict=True):
        model = (
            "not run"
            if result is None
            else rst_escape(result if isinstance(result, str) else result.text)
        )
        rows.append(
            [
                rst_escape(target.row),
                rst_escape(target.observed),
                literal(target.case)
                + ("" if target.other is None else f", {literal(target.other)}"),
                f"{literal(target.metric)} ({target.kind})",
                model,
                rst_escape(target.window()),
                verdict(result),
            ]
        )
    return rst_table(
        ["PHYSICS.md row", "observed", "case", "metric", "model", "window", "verdict"],
        rows,
        "Calibration targets (docs/validation/targets.toml) against the model",
        widths=[18, 20, 14, 16, 12, 12, 8],
    )


def misses_text(targets: Sequence[Target], results: Sequence[Result]) -> list[str]:
    """The sentence(s) under the targets table: the count, then each miss."""
    met = sum(1 for r in results if isinstance(r, Outcome) and r.passed)
    run = sum(1 for r in results if r is not None)
    lines = [
        f"**{met} of {len(targets)} targets met** ({run} evaluated, {len(targets) - run} not run)."
    ]
    missed = [
        (t, r)
        for t, r in zip(targets, results, strict=True)
        if r is not None and not (isinstance(r, Outcome) and r.passed)
    ]
    if missed:
        lines += ["", "The model misses:", ""]
        for target, result in missed:
            value = result if isinstance(result, str) else result.text
            lines.append(
                f"* ``{target.id}``: observed {rst_escape(target.observed)}; the model gives "
                f"{rst_escape(value)}, outside the window {rst_escape(target.window())}."
            )
    not_run = [t for t, r in zip(targets, results, strict=True) if r is None]
    if not_run:
        lines += [
            "",
            "Not evaluated (a case has no completed run): "
            + ", ".join(literal(t.id) for t in not_run)
            + ".",
        ]
    return lines


def case_table(data: RunData, key_T: Sequence[float] = KEY_T) -> str:
    """Interface metrics of one run: start, each key temperature with a frame, final, onset."""
    rows_in = data.rows
    header_cols = list(rows_in[0]) if rows_in else []
    temps = [T for T in key_T if data.frame(T) is not None]
    first, last = rows_in[0], rows_in[-1]
    header = ["metric", "unit", f"start ({float(first['T_K']) - KELVIN:.0f} °C)"]
    header += [f"{T:.0f} °C" for T in temps]
    header += [f"final ({float(last['T_K']) - KELVIN:.0f} °C)", "onset (°C)"]
    rows = []
    for metric in METRICS:
        for column, label in metric_columns(header_cols, rows_in, metric.name):
            cells = [literal(column) + (f" ({label})" if label else ""), metric.unit]
            for row in [first, *(data.frame(T) for T in temps), last]:
                assert row is not None
                cells.append(fmt(float(row[column]), metric.scale))
            cells.append(onset_text(data, column))
            rows.append(cells)
    if not rows:
        return "The run has none of the interface metrics.\n"
    return rst_table(header, rows)


def runs_table(runs: Sequence[CaseRun]) -> str:
    """Status and wall time of every case."""
    rows = []
    for run in runs:
        stats = run.record.get("solver_statistics") or {}
        steps = (
            f"{stats['steps_accepted']} / {stats['steps_rejected']}"
            if "steps_accepted" in stats
            else "–"
        )
        mesh = run.record.get("mesh") or {}
        cells = mesh.get("cells")
        status = run.status + (f", {run.action}" if run.action else "")
        rows.append(
            [
                literal(run.name),
                status,
                rst_escape(run.note) if run.note else "",
                "–" if cells is None else str(cells),
                steps,
                fmt(run.solver_wall_s) if run.solver_wall_s is not None else "–",
                "–" if run.process_s is None else f"{run.process_s:.0f}",
            ]
        )
    return rst_table(
        [
            "case",
            "status",
            "note",
            "cells",
            "steps accepted / rejected",
            "solver wall (s)",
            "process (s)",
        ],
        rows,
        "Runs (solver wall: run.json solver_statistics.wall_s; process: the whole "
        "cosinter run command in this build)",
    )


def remarks(data: Mapping[str, RunData]) -> list[str]:
    """Disagreements the target windows do not show, computed from the runs."""
    out = []
    for name in (OPEN, CLOSED):
        run = data.get(name)
        if run is None or "asr_ohm_m2" not in run.rows[0]:
            continue
        asr = [float(r["asr_ohm_m2"]) for r in run.rows]
        if asr[0] > 0 and math.isfinite(asr[0]):
            low = min(range(len(asr)), key=lambda i: asr[i])
            ratio = asr[low] / asr[0]
            if ratio < 2 / 3:
                T = float(run.rows[low]["T_K"]) - KELVIN
                out.append(
                    f"* ``{name}``: the ASR first *falls*, to {ratio:.2g} of its starting "
                    f"value (lowest at {T:.0f} °C), before it rises; the experiment shows "
                    "R_int flat before its rise. In the model the nearly full NCM lattice "
                    "(site fraction 0.98) conducts better as Li leaves it: the Nernst–Einstein "
                    "conductivity goes with c(1 - θ)."
                )
    for name in (OPEN, CLOSED):
        run = data.get(name)
        if run is None or "ti_depth_m" not in run.rows[0]:
            continue
        depth = [float(r["ti_depth_m"]) for r in run.rows]
        peak = max(range(len(depth)), key=lambda i: depth[i])
        if depth[peak] > 0 and depth[-1] < 0.8 * depth[peak]:
            out.append(
                f"* ``{name}``: ``ti_depth_m`` peaks at {depth[peak] * 1e9:.3g} nm "
                f"({float(run.rows[peak]['T_K']) - KELVIN:.0f} °C) and is "
                f"{depth[-1] * 1e9:.3g} nm in the last frame: the Ti that crossed spreads "
                "out below the depth threshold (``penetration_threshold``, 1 % of LLTO's Ti)."
            )
    starts = {
        name: (float(run.rows[0]["asr_ohm_m2"]), float(run.rows[-1]["asr_ohm_m2"]))
        for name, run in ((n, data.get(n)) for n in (OPEN, CLOSED))
        if run is not None and "asr_ohm_m2" in run.rows[0]
    }
    if starts:
        parts = [
            f"``{name}`` {fmt(a0)} Ω m² at the start and {fmt(a1)} Ω m² in the last frame"
            for name, (a0, a1) in starts.items()
        ]
        out.append(
            "* Absolute ASR values are not compared (the targets use ratios; PHYSICS.md "
            "gives no R_int values): " + "; ".join(parts) + ". They are measured at 25 °C, "
            "where the library's NCM111 diffusivity is a high-temperature tracer "
            "extrapolation far below room-temperature measurements (:doc:`../materials`); "
            "only their changes with temperature are meant."
        )
    return out


def wang_order(data: Mapping[str, RunData]) -> str | None:
    """Whether the model ASRs of the LNTO cases rank as the inverse measured conductivities."""
    asr = {}
    for name in WANG_SIGMA_S_M:
        run = data.get(name)
        if run is None:
            return None
        column = metric_columns(run.rows[0], run.rows, "asr_ohm_m2")
        if not column:
            return None
        asr[name] = float(run.rows[-1][column[0][0]])
    by_model = sorted(asr, key=lambda n: asr[n])
    by_measured = sorted(WANG_SIGMA_S_M, key=lambda n: -WANG_SIGMA_S_M[n])
    short = ", ".join(n.rsplit("_", 1)[1] for n in by_model)
    if by_model == by_measured:
        return (
            f"The model's ASR ranks the anneals {short} (lowest first), as the measured "
            "conductivities do (highest first): **met**."
        )
    return (
        f"The model's ASR ranks the anneals {short} (lowest first); the measured "
        "conductivities rank them "
        + ", ".join(n.rsplit("_", 1)[1] for n in by_measured)
        + ": **MISSED**."
    )


# --------------------------------------------------------------------------- figures


def save_figure(fig: Figure, name: str, figures: Path = FIGURES) -> Path:
    """Write ``fig`` as ``figures/<name>.png`` atomically."""
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return path


def _series(data: RunData, column: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    T = [float(r["T_K"]) - KELVIN for r in data.rows]
    return T, [float(r[column]) * scale for r in data.rows]


def _positive(values: Sequence[float]) -> list[float]:
    return [v if v > 0 and math.isfinite(v) else math.nan for v in values]


STYLE = {
    OPEN: {"color": "C0", "marker": "o", "label": "NCM(104), open"},
    CLOSED: {"color": "C3", "marker": "s", "label": "NCM(003), closed"},
    "lee2024_ncm003_lto": {"color": "C2", "marker": "^", "label": "NCM(003) | Li2TiO3"},
    "lee2024_ncm003_defects": {"color": "C1", "marker": "v", "label": "NCM(003), line defects"},
    "lee2024_composite": {"color": "C4", "marker": "D", "label": "composite (2D)"},
}


def _style(name: str) -> dict[str, Any]:
    return dict(STYLE.get(name, {"label": name}))


def asr_figure(data: Mapping[str, RunData]) -> Figure:
    """(a) ASR at the measuring temperature over its frame-0 value, log y, 1.5x line."""
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    for name in (OPEN, CLOSED):
        if name in data:
            T, asr = _series(data[name], "asr_ohm_m2")
            ax.plot(T, _positive([a / asr[0] for a in asr]), ms=4, **_style(name))
    ax.axhline(1.5, color="k", lw=0.8, ls="--", label="1.5 × start (onset)")
    ax.set_yscale("log")
    ax.set_xlabel("frame temperature (°C)")
    ax.set_ylabel("ASR / ASR(frame 0)  (–)")
    ax.set_title("Interface ASR measured at 25 °C", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def read_profiles(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "profiles.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def interface_x(record: Mapping[str, Any]) -> float:
    """x (m) of the first interface: the thickness of the first layer."""
    return float(record["resolved"]["layers"][0]["thickness"])


def profiles_figure(
    profiles: Mapping[str, Sequence[Mapping[str, str]]],
    records: Mapping[str, Mapping[str, Any]],
    temperatures: Sequence[float] = (450.0, 700.0),
) -> Figure:
    """(b) Ti and La in NCM against the distance from the interface, per temperature."""
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    axes = fig.subplots(1, len(temperatures), sharey=True)
    top = 0.0
    for ax, T in zip(axes, temperatures, strict=True):
        for name, ls in ((OPEN, "-"), (CLOSED, "--")):
            rows = profiles.get(name)
            if not rows:
                continue
            x_if = interface_x(records[name])
            frames = [r["frame"] for r in rows if abs(float(r["T_K"]) - KELVIN - T) < 0.01]
            if not frames:
                continue
            sel = [r for r in rows if r["frame"] == frames[0]]
            depth = [(x_if - float(r["x_m"])) * 1e9 for r in sel]
            for sp, colour in (("Ti", "C0"), ("La", "C1")):
                if sp not in sel[0]:
                    continue
                pts = [(d, float(r[sp]) / 1e3) for d, r in zip(depth, sel, strict=True) if d > 0]
                top = max([top, *(p[1] for p in pts if p[0] <= 15)])
                ax.plot(
                    [p[0] for p in pts],
                    _positive([p[1] for p in pts]),
                    ls=ls,
                    color=colour,
                    label=f"{sp}, {_style(name)['label']}",
                )
        threshold = _penetration_threshold(profiles, records)
        for sp, value in threshold.items():
            ax.axhline(value / 1e3, color="C0" if sp == "Ti" else "C1", lw=0.7, ls=":")
        ax.set_yscale("log")
        if threshold:  # from 1/100 of the depth threshold up: the deep tails are noise
            ax.set_ylim(min(threshold.values()) / 1e3 / 100, max(top, 1e-3) * 3)
        ax.set_xlim(0, 15)
        ax.set_title(f"{T:.0f} °C", fontsize=10)
        ax.set_xlabel("distance from the interface into NCM (nm)")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("concentration (mol/L)")
    axes[-1].legend(fontsize=7)
    return fig


def _penetration_threshold(
    profiles: Mapping[str, Sequence[Mapping[str, str]]],
    records: Mapping[str, Mapping[str, Any]],
) -> dict[str, float]:
    """The depth threshold (mol/m³) of Ti and La: penetration_threshold x largest initial."""
    for name, rows in profiles.items():
        if not rows:
            continue
        frac = float(records[name]["resolved"]["output"]["penetration_threshold"])
        first = [r for r in rows if r["frame"] == rows[0]["frame"]]
        return {
            sp: frac * max(float(r[sp]) for r in first) for sp in ("Ti", "La") if sp in first[0]
        }
    return {}


def versus_t_figure(
    data: Mapping[str, RunData], column: str, ylabel: str, scale: float, log: bool, title: str
) -> Figure:
    """(c), (d) one metric against the frame temperature for the lee2024 runs."""
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    for name in STYLE:
        run = data.get(name)
        if run is None or column not in run.rows[0]:
            continue
        T, y = _series(run, column, scale)
        ax.plot(
            T,
            _positive(y) if log else y,
            ms=4,
            lw=2.0 if name in (OPEN, CLOSED) else 1.0,
            **_style(name),
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("frame temperature (°C)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _li_frames(reader: Any) -> list[tuple[Any, float]]:
    """(mesh, T in degC) of the last frame and of the frame with the most uneven cathode Li.

    The second is the frame whose Li spread (max - min) over the first layer's cells is
    largest, where the lines or grains show best; left out if that is the last frame.
    """
    frames = []
    for t in reader.time_values:
        reader.set_active_time_value(t)
        frames.append(reader.read()[0])

    def spread(mesh: Any) -> float:
        li = mesh.cell_data["Li"]
        if "layer" in mesh.cell_data:
            li = li[mesh.cell_data["layer"] == 0]
        return float(li.max() - li.min()) if len(li) else 0.0

    def degc(mesh: Any) -> float:
        return float(mesh.field_data["T_K"][0]) - KELVIN if "T_K" in mesh.field_data else math.nan

    last = len(frames) - 1
    widest = max(range(len(frames)), key=lambda i: spread(frames[i]))
    chosen = [widest, last] if widest != last else [last]
    return [(frames[i], degc(frames[i])) for i in chosen]


def li_map(run_dir: Path, path: Path, title: str) -> Path:
    """(e) Li of the last frame (and the most uneven one), off screen with pyvista; nm axes."""
    import pyvista as pv

    pv.OFF_SCREEN = True
    pv.vtk_verbosity("off")  # no X server here: VTK warns, then renders off screen anyway
    frames = _li_frames(pv.get_reader(str(run_dir / "fields.pvd")))
    plotter: Any = pv.Plotter(  # Any: pyvista's decorated methods confuse mypy
        off_screen=True, shape=(len(frames), 1), window_size=[1100, 480 * len(frames)], border=False
    )
    plotter.set_background("white")
    for row, (mesh, T) in enumerate(frames):
        plotter.subplot(row, 0)
        mesh.points = mesh.points * 1e9  # m -> nm
        bar = f"Li (mol/L), {T:.0f} C"
        mesh.cell_data[bar] = mesh.cell_data["Li"] / 1e3
        li = mesh.cell_data[bar]
        cathode = li[mesh.cell_data["layer"] == 0] if "layer" in mesh.cell_data else li
        # colours over the cathode's range when it varies by more than 1 %: the
        # electrolyte, lower in Li, then shows grey instead of flattening the cathode
        clim = None
        if len(cathode) and cathode.max() - cathode.min() > 0.01 * abs(cathode.mean()):
            clim = [float(cathode.min()), float(cathode.max())]
        plotter.add_mesh(
            mesh,
            scalars=bar,
            cmap="viridis",
            clim=clim,
            below_color="lightgrey" if clim else None,
            preference="cell",
            scalar_bar_args={
                "title": bar,
                "color": "black",
                "vertical": True,
                "position_x": 0.88,
                "position_y": 0.15,
                "height": 0.7,
            },
        )
        if "material" in mesh.cell_data:
            edges = mesh.cell_data_to_point_data().contour([0.5], scalars="material")
            if edges.n_points:
                plotter.add_mesh(edges, color="white", line_width=2)
        plotter.show_bounds(
            xtitle="x (nm)",
            ytitle="y (nm)",
            show_zaxis=False,
            show_zlabels=False,
            n_ylabels=3,
            color="black",
            location="outer",
            grid=False,
            font_size=10,
        )
        which = "last frame" if row == len(frames) - 1 else "most uneven Li in the cathode"
        plotter.add_text(f"{title}: {which}, {T:.0f} C", font_size=10, color="black")
        plotter.view_xy()
        plotter.enable_parallel_projection()
        plotter.camera.zoom(1.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return path


def wang_figure(data: Mapping[str, RunData]) -> Figure:
    """(f) Measured conductivity and model ASR of the three LNTO coatings, as bars."""
    names = [n for n in WANG_SIGMA_S_M if n in data]
    labels = [n.rsplit("_", 1)[1] + " °C" for n in names]
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.bar(labels, [WANG_SIGMA_S_M[n] for n in names], color="0.5")
    left.set_ylabel("measured σ at 25 °C (S/m)")
    left.set_title("Wang et al. 2020 (measured)", fontsize=10)
    left.set_xlabel("LNTO post-anneal temperature")
    asr = []
    for n in names:
        column = metric_columns(data[n].rows[0], data[n].rows, "asr_ohm_m2")
        asr.append(float(data[n].rows[-1][column[0][0]]) if column else math.nan)
    right.bar(labels, asr, color="C0")
    right.set_ylabel("model ASR of NMC | LNTO at 25 °C (Ω m²)")
    right.set_title("model (low ASR should go with high σ)", fontsize=10)
    right.set_xlabel("LNTO post-anneal temperature")
    for ax in (left, right):
        ax.grid(True, axis="y", alpha=0.3)
    return fig


# --------------------------------------------------------------------------- page


def heading(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def figure_block(path: Path | None, caption: str, missing: str) -> list[str]:
    if path is None:
        return [missing, ""]
    rel = f"figures/{path.name}"  # relative to the page, docs/validation/index.rst
    return [f".. figure:: {rel}", "   :width: 95%", "", f"   {caption}", ""]


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.platform()}, {cpu or 'unknown CPU'}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def build_page(runs: Sequence[CaseRun], figures: Path = FIGURES, draw: bool = True) -> str:
    """The page text; draws the figures into ``figures`` (unless ``draw`` is False)."""
    data = {r.name: r.data for r in runs if r.status == "completed" and r.data is not None}
    records = {r.name: r.record for r in runs}
    runs_by_name = {r.name: r for r in runs}
    targets = load_targets()
    results = evaluate_all(targets, data)
    stale = [r for r in runs if r.note.startswith("STALE")]
    versions: dict[str, str] = next((r.record.get("versions", {}) for r in runs if r.record), {})

    out = heading("Validation against the experiments", "=")
    out += [
        ".. This page is generated by docs/validation/build.py (make validation): do not edit.",
        "",
        "The cases ``cases/lee2024_*.toml`` and ``cases/wang2020_*.toml`` are run from the",
        "command line and their metrics (:doc:`../outputs`) are compared with the",
        "observations tabulated in section 1 of PHYSICS.md, from S. Lee, H. Park et al.,",
        "Nat. Commun. (2024), doi:10.1038/s41467-024-52226-4 (in situ TEM, EELS, EDS,",
        "XPS and EIS of epitaxial NCM(104) | LLTO and NCM(003) | LLTO thin films on",
        "heating), and with the LNTO coatings of Wang et al., Nano Energy (2020) 104686.",
        "Each row of the table below is a target of ``docs/validation/targets.toml``,",
        "evaluated by :func:`cosinter.results.validation.evaluate` (the same evaluator as",
        "``tests/validation``).",
        "",
        "All cases use **one parameter set: the material library as shipped**, with no",
        "per-case fitting; a case sets only its stack, orientations, mesh and",
        "temperature program. Every library number is listed in :doc:`../materials`",
        'with its source: a citation, or "calibrated: <observation>", naming the row',
        "of the table it was fitted to.",
        "",
        "Rebuild with ``make validation``: it runs the cases into",
        "``results/validation/<case>`` (a run that is up to date with its case file and",
        "the library is reused) and rewrites this page and ``docs/validation/figures/``.",
        "``make validation VALIDATION_FLAGS=--force`` reruns every case;",
        "``.venv/bin/python docs/validation/build.py --help`` lists the options.",
        "",
        f"Built on {datetime.date.today().isoformat()} with cosinter "
        f"{versions.get('cosinter', 'unknown')}, FiPy {versions.get('fipy', 'unknown')}.",
        "",
    ]
    if stale:
        out += [
            ".. warning::",
            "",
            "   Built with ``--no-run`` from runs that are not up to date with their case",
            "   files or the library: " + ", ".join(literal(r.name) for r in stale) + ".",
            "   Their numbers may not be what the cases give now.",
            "",
        ]
    out += [".. contents:: On this page", "   :local:", "   :depth: 1", ""]

    out += heading("Model against experiment", "-")
    out += [targets_table(targets, results)]
    out += [*misses_text(targets, results), ""]
    extra = remarks(data)
    if extra:
        out += ["Disagreements the windows do not show:", "", *extra, ""]
    order = wang_order(data)
    if order is not None:
        out += [
            "LNTO coatings (Wang et al. 2020): measured conductivities 13.2 (350 °C",
            "anneal), 38.7 (450 °C) and 2.43 µS/cm (550 °C). " + order,
            "",
        ]

    out += heading("Runs", "-")
    out += [f"Machine: {rst_escape(machine())}.", "", runs_table(runs)]
    for run in runs:
        if run.status == "failed":
            out += [f"``{run.name}`` failed::", ""]
            out += ["   " + ln for ln in (run.error or "no message").splitlines()] + [""]

    out += heading("Results per case", "-")
    out += [
        "Interface metrics (:ref:`interface-metrics`) in the first frame, the first frame",
        "at each key temperature the run has, and the last frame; onsets from",
        "``onsets.json`` (first temperature at the threshold, interpolated between",
        'frames; "none": never reached).',
        "",
    ]
    for run in runs:
        out += heading(run.name, "~")
        if run.description:
            out += [rst_escape(run.description) + ".", ""]
        if run.name in data:
            out += [case_table(data[run.name])]
        elif run.status == "failed":
            out += ["Failed (see Runs).", ""]
        else:
            out += [f"Not run ({rst_escape(run.note or run.status)}).", ""]

    out += heading("Figures", "-")
    drawn: list[Path] = []

    def figure(name: str, make: Callable[[], Figure], caption: str, needs: Sequence[str]) -> None:
        missing = [n for n in needs if n not in data]
        if len(missing) == len(needs):
            out.extend(figure_block(None, "", "Not run: " + ", ".join(map(literal, needs)) + "."))
            return
        if not draw:
            out.extend(figure_block(figures / f"{name}.png", caption, ""))
            return
        try:
            path = save_figure(make(), name, figures)
        except Exception as exc:  # a figure that fails must not stop the report
            out.extend(figure_block(None, "", f"Not drawn: {rst_escape(repr(exc))}."))
            return
        drawn.append(path)
        note = " Not run: " + ", ".join(map(literal, missing)) + "." if missing else ""
        out.extend(figure_block(path, caption + note, ""))

    out += heading("(a) Interfacial resistance", "~")
    figure(
        "asr_vs_T",
        lambda: asr_figure(data),
        "ASR (``asr_ohm_m2``, the frozen state of each frame measured at 25 °C) over its "
        "value in frame 0; the onset is where it first reaches 1.5 times that (dashed). "
        "Observed: NCM(104) rises at ~400 °C and then changes little; NCM(003) is flat to "
        "~600 °C and rises at 600 and 700 °C.",
        (OPEN, CLOSED),
    )
    out += heading("(b) Ti and La profiles", "~")
    figure(
        "cation_profiles",
        lambda: profiles_figure(
            {n: read_profiles(runs_by_name[n].run_dir) for n in (OPEN, CLOSED) if n in data},
            records,
        ),
        "Ti (blue) and La (orange) in NCM against the distance from the interface at 450 "
        "and 700 °C; solid: NCM(104), dashed: NCM(003); dotted: the depth threshold of "
        "``ti_depth_m``/``la_depth_m`` (1 % of LLTO's content). Observed: ~6 nm by 450 °C "
        "at NCM(104); ~2 nm at 700 °C at NCM(003).",
        (OPEN, CLOSED),
    )
    out += heading("(c) Oxygen vacancies", "~")
    figure(
        "vo_vs_T",
        lambda: versus_t_figure(
            data,
            "vo_max",
            "largest V_O site fraction in NCM (–)",
            1.0,
            True,
            "vo_max (zero values not drawn)",
        ),
        "Largest oxygen-vacancy site fraction in the cathode (``vo_max``). Observed: "
        "NCM(003) loses oxygen, most at 700 °C; NCM(104) keeps it.",
        tuple(STYLE),
    )
    out += heading("(d) Interphase", "~")
    figure(
        "interphase_vs_T",
        lambda: versus_t_figure(
            data,
            "interphase_thickness_m",
            "interphase thickness (nm)",
            1e9,
            False,
            "interphase_thickness_m (integral of eta)",
        ),
        "Interphase thickness (integral of the phase field η across the interface). "
        "Observed: LiTiO2 / La(TM)O3 interphase at 380 °C at NCM(104); amorphous "
        "domains 10–20 nm thick at 600 °C at NCM(003).",
        tuple(STYLE),
    )
    out += heading("(e) 2D Li maps", "~")
    for name in MAPS:
        if name not in data:
            out += [f"``{name}``: not run.", ""]
            continue
        if not draw:
            out += figure_block(figures / f"li_map_{name}.png", f"Li, ``{name}``.", "")
            continue
        try:
            path = li_map(runs_by_name[name].run_dir, figures / f"li_map_{name}.png", name)
        except Exception as exc:
            out += [f"``{name}``: not drawn: {rst_escape(repr(exc))}.", ""]
            continue
        drawn.append(path)
        out += figure_block(
            path,
            f"Li concentration of ``{name}`` (pyvista, off screen): bottom, the last frame; "
            "top, the frame with the largest Li spread in the cathode (layer 0), if "
            "another. The white line is the boundary between the materials; where the "
            "cathode's Li varies by more than 1 % the colours span its range and the "
            "electrolyte, lower in Li, is grey.",
            "",
        )
    out += heading("(f) LNTO coatings (Wang et al. 2020)", "~")
    figure(
        "wang_asr",
        lambda: wang_figure(data),
        "Left: measured room-temperature ionic conductivity of the three LNTO coatings. "
        "Right: the model's ASR of the NMC | LNTO interface (``asr_ohm_m2_i0``, 25 °C, "
        "last frame). The ASR should be lowest where σ is highest.",
        tuple(WANG_SIGMA_S_M),
    )
    if draw:
        for old in figures.glob("*.png"):
            if old not in drawn:
                old.unlink()
    return "\n".join(out).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the lee2024/wang2020 cases and build docs/validation/index.rst.",
        epilog="A run is up to date when run.json is completed and its case_sha256, resolved "
        "case and materials equal what the case file gives now.",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=DEFAULT_RUNS,
        help="folder of the run folders (default results/validation)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this case (repeatable); others are reused if up to date",
    )
    parser.add_argument("--force", action="store_true", help="rerun even up-to-date runs")
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="run nothing: report the runs found, stale ones marked",
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="cases run at once")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    runs = discover(args.runs.resolve())
    unknown = [n for n in args.only if n not in {r.name for r in runs}]
    if unknown:
        parser.error(f"--only: no case {', '.join(unknown)}")
    prepare(runs, only=args.only, force=args.force, execute=not args.no_run, jobs=args.jobs)
    text = build_page(runs)
    atomic_write_text(PAGE, text)
    print(
        f"{PAGE.relative_to(ROOT)} and {FIGURES.relative_to(ROOT)}/ written; "
        f"{time.perf_counter() - start:.0f} s in all",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
