"""Build the validation report (``docs/validation/index.rst`` and its figures).

``make validation`` runs every ``cases/lee2024_*.toml`` and ``cases/wang2020_*.toml``
from the command line into ``results/validation/<case>`` (a folder that already
holds a completed run of the same case content is reused unless ``--force``),
checks the calibration targets of ``docs/validation/targets.toml`` with
:func:`cosinter.results.validation.evaluate`, and writes the page and its figures.
A case that fails is reported as failed; the build goes on.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from cosinter.case import load_case
from cosinter.results.validation import (
    Outcome,
    RunData,
    evaluate,
    load_targets,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIGURES = HERE / "figures"
METRICS = (
    ("li_transferred_mol_m2", "Li out (mol/m²)", 1.0),
    ("ti_depth_m", "Ti depth (nm)", 1e9),
    ("la_depth_m", "La depth (nm)", 1e9),
    ("vo_max", "V_O max (–)", 1.0),
    ("interphase_thickness_m", "interphase (nm)", 1e9),
    ("asr_ohm_m2", "ASR (Ω m²)", 1.0),
)
#: Measured ionic conductivities of the LNTO coatings (Wang et al. 2020), uS/cm.
WANG_SIGMA = {"wang2020_lnto_350": 13.2, "wang2020_lnto_450": 38.7, "wang2020_lnto_550": 2.43}


# --------------------------------------------------------------------------- runs


def case_digest(path: Path) -> str:
    """sha256 of the case as run.json records it (``case_sha256``)."""
    _, raw = load_case(path)
    text = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def is_current(run_dir: Path, case_file: Path) -> bool:
    """A completed run of the same case content is in ``run_dir``."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return record.get("status") == "completed" and record.get("case_sha256") == case_digest(
        case_file
    )


def run_case(case_file: Path, run_dir: Path, force: bool) -> tuple[str, float | None]:
    """Run one case (or reuse it); returns (status text, wall time in s)."""
    if not force and is_current(run_dir, case_file):
        return "reused", _wall(run_dir)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cosinter", "run", str(case_file), "-o", str(run_dir), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return f"failed: {(proc.stderr or proc.stdout).strip()[-400:]}", wall
    return "ran", wall


def _wall(run_dir: Path) -> float | None:
    try:
        stats = json.loads((run_dir / "run.json").read_text())["solver_statistics"]
        return float(stats["wall_s"])
    except (OSError, ValueError, KeyError):
        return None


def read_profiles(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "profiles.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- rst


def rst_table(header: list[str], rows: list[list[str]], title: str = "") -> str:
    """A ``list-table`` directive."""
    lines = [f".. list-table:: {title}".rstrip(), "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def targets_table(outcomes: list[Outcome | None], targets: list[Any]) -> str:
    rows = []
    for target, outcome in zip(targets, outcomes, strict=True):
        model = "not run" if outcome is None else outcome.text
        verdict = "not run" if outcome is None else ("met" if outcome.passed else "**MISSED**")
        rows.append(
            [target.row, target.observed, f"``{target.case}``", model, target.window(), verdict]
        )
    return rst_table(
        ["PHYSICS.md row", "observed", "case", "model", "window", "verdict"],
        rows,
        "Model against experiment (Lee et al. 2024)",
    )


def case_table(runs: dict[str, RunData]) -> str:
    rows = []
    for name, run in runs.items():
        last = run.rows[-1]
        cells = [f"``{name}``"]
        for metric, _, scale in METRICS:
            value = last.get(metric)
            onset = run.onset(metric) if metric in run.onsets.get("onsets", {}) else None
            text = "–" if value is None else f"{float(value) * scale:.3g}"
            if onset is not None:
                text += f" (from {onset:.0f} °C)"
            cells.append(text)
        rows.append(cells)
    return rst_table(
        ["case", *(label for _, label, _ in METRICS)],
        rows,
        "Final frame of each run (onset temperature in brackets)",
    )


# --------------------------------------------------------------------------- figures


def save(fig: Any, name: str) -> str:
    """Write a figure atomically into figures/; return its path relative to the page."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=FIGURES, prefix=f".{name}", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, FIGURES / f"{name}.png")
    return f"figures/{name}.png"


def versus_t(runs: dict[str, RunData], metric: str, ylabel: str, relative: bool) -> Any:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in ("lee2024_ncm104", "lee2024_ncm003"):
        if name not in runs:
            continue
        rows = runs[name].rows
        T = [float(r["T_K"]) - 273.15 for r in rows]
        y = np.array([float(r[metric]) for r in rows])
        if relative:
            y = y / y[0]
        ax.semilogy(T, np.where(y > 0, y, np.nan), "o-", ms=3, label=name)
    if relative:
        ax.axhline(1.5, color="k", lw=0.8, ls="--", label="1.5x (onset)")
    ax.set_xlabel("temperature (°C)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig


def cation_profiles(profiles: dict[str, list[dict[str, str]]], interface_m: float) -> Any:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, T in zip(axes, (450.0, 700.0), strict=True):
        for name, style in (("lee2024_ncm104", "-"), ("lee2024_ncm003", "--")):
            rows = profiles.get(name)
            if not rows:
                continue
            frame = next(r["frame"] for r in rows if abs(float(r["T_K"]) - 273.15 - T) < 0.01)
            sel = [r for r in rows if r["frame"] == frame]
            depth = np.array([(interface_m - float(r["x_m"])) * 1e9 for r in sel])
            ncm = depth > 0
            for sp, colour in (("Ti", "C0"), ("La", "C1")):
                c = np.array([float(r[sp]) for r in sel]) / 1e3
                ax.plot(depth[ncm], c[ncm], style, color=colour, label=f"{sp} {name[-6:]}")
        ax.set_xlim(0, 15)
        ax.set_title(f"{T:.0f} °C")
        ax.set_xlabel("depth into NCM from the interface (nm)")
    axes[0].set_ylabel("concentration (mol/L)")
    axes[0].legend(fontsize=7)
    return fig


def li_map(run_dir: Path, title: str) -> Any:
    """The Li field of the last frame (cell data on the rectilinear grid)."""
    import pyvista as pv

    reader = pv.get_reader(str(run_dir / "fields.pvd"))
    reader.set_active_time_point(len(reader.time_values) - 1)
    mesh = reader.read()[0]
    centres = np.asarray(mesh.cell_centers().points)
    li = np.asarray(mesh.cell_data["Li"]) / 1e3
    fig, ax = plt.subplots(figsize=(5.5, 4))
    art = ax.tripcolor(centres[:, 0] * 1e9, centres[:, 1] * 1e9, li, shading="gouraud")
    fig.colorbar(art, ax=ax, label="Li (mol/L)")
    ax.set_aspect("equal")
    ax.set_xlabel("x (nm)")
    ax.set_ylabel("y (nm)")
    ax.set_title(title, fontsize=9)
    return fig


def wang_bars(runs: dict[str, RunData]) -> Any:
    names = [n for n in WANG_SIGMA if n in runs]
    fig, ax1 = plt.subplots(figsize=(5.5, 3.4))
    asr = [float(runs[n].rows[-1]["asr_ohm_m2"]) for n in names]
    ax1.bar(range(len(names)), asr, color="C0")
    ax1.set_xticks(range(len(names)), [n.replace("wang2020_", "") for n in names])
    ax1.set_ylabel("model ASR at 25 °C (Ω m²)")
    ax2 = ax1.twinx()
    ax2.plot(range(len(names)), [1 / WANG_SIGMA[n] for n in names], "ko-")
    ax2.set_ylabel("1 / measured σ (cm/µS)")
    return fig


# --------------------------------------------------------------------------- page


def build(runs_root: Path, only: str | None, force: bool, reuse_only: bool) -> str:
    cases = sorted(
        p
        for pattern in ("lee2024_*.toml", "wang2020_*.toml")
        for p in (ROOT / "cases").glob(pattern)
        if only is None or p.stem == only
    )
    status: dict[str, tuple[str, float | None]] = {}
    for case_file in cases:
        run_dir = runs_root / case_file.stem
        if reuse_only:
            state = "reused" if (run_dir / "metrics.csv").exists() else "not run"
            status[case_file.stem] = (state, _wall(run_dir))
        else:
            print(f"{case_file.stem} ...", flush=True)
            status[case_file.stem] = run_case(case_file, run_dir, force)
        print(f"  {case_file.stem}: {status[case_file.stem][0][:80]}", flush=True)
    runs = {
        name: RunData.read(runs_root / name)
        for name, (state, _) in status.items()
        if state in ("ran", "reused")
    }
    targets = load_targets()
    outcomes: list[Outcome | None] = [
        evaluate(t, runs) if set(t.cases) <= set(runs) else None for t in targets
    ]
    missed = [o for o in outcomes if o is not None and not o.passed]
    figures: list[tuple[str, str]] = []

    def figure(name: str, caption: str, make: Callable[[], Any]) -> None:
        try:
            figures.append((save(make(), name), caption))
        except (OSError, KeyError, ValueError, StopIteration, StopAsyncIteration) as exc:
            figures.append(("", f"{caption} — not drawn: {exc}"))

    if {"lee2024_ncm104", "lee2024_ncm003"} & set(runs):
        figure(
            "asr_vs_T",
            "ASR at 25 °C of each frame relative to frame 0 (the 1.5x line is the onset).",
            lambda: versus_t(runs, "asr_ohm_m2", "ASR / ASR(frame 0)", True),
        )
        figure(
            "vo_vs_T",
            "Largest oxygen-vacancy site fraction in NCM.",
            lambda: versus_t(runs, "vo_max", "vo_max (site fraction)", False),
        )
        figure(
            "interphase_vs_T",
            "Interphase thickness (integral of eta).",
            lambda: versus_t(runs, "interphase_thickness_m", "interphase (m)", False),
        )
        profiles = {n: read_profiles(runs_root / n) for n in ("lee2024_ncm104", "lee2024_ncm003")}
        figure(
            "cation_profiles",
            "Ti and La in NCM at 450 and 700 °C (solid: NCM(104), dashed: NCM(003)).",
            lambda: cation_profiles(profiles, 40e-9),
        )
    for name in ("lee2024_composite", "lee2024_ncm003_defects"):
        if name in runs:
            figure(
                f"li_map_{name}",
                f"Li, last frame of ``{name}``.",
                lambda n=name: li_map(runs_root / n, n),
            )
    if any(n in runs for n in WANG_SIGMA):
        figure(
            "wang_asr",
            "LNTO coatings (Wang et al. 2020): model ASR (bars) and the inverse measured "
            "conductivity (points); the order should match.",
            lambda: wang_bars(runs),
        )

    out = [
        "Validation",
        "==========",
        "",
        "The cases of ``cases/lee2024_*.toml`` and ``cases/wang2020_*.toml`` run with the",
        "material library as shipped (one parameter set for every case; the calibrated",
        "numbers and what they were fitted to are in :doc:`../materials` and the",
        "Calibration section of :doc:`../theory`), compared with the observations of",
        "PHYSICS.md. Rebuild with ``make validation`` (it reuses finished runs of",
        "unchanged cases from ``results/validation``; ``--force`` reruns them). The",
        "targets are in ``docs/validation/targets.toml``; ``tests/validation`` checks",
        "the same targets on every ``make test``.",
        "",
        targets_table(outcomes, targets),
    ]
    if missed:
        out += ["**Misses.** " + "; ".join(f"{o.target.id}: {o.text}" for o in missed) + ".", ""]
    else:
        out += ["Every target that was run is met.", ""]
    out += [
        "Known disagreements the table does not show: the model's ASR first *falls*",
        "(by about 7x) when Li leaves NCM, because the Li vacancy content of NCM rises,",
        "where the experiment shows it flat; the NCM(104) Li onset (about 64 °C) is",
        "inside the window but earlier than the observed ~100 °C; ``ti_depth_m`` of",
        "NCM(104) falls again after 450 °C as the Ti behind the interphase spreads",
        "below the 1 % threshold (see :doc:`../theory`).",
        "",
        "Runs",
        "----",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}.",
        "",
        rst_table(
            ["case", "status", "wall time (s)"],
            [
                [
                    f"``{n}``",
                    s.split(":")[0] + ("" if ":" not in s else ": see below"),
                    "–" if w is None else f"{w:.0f}",
                ]
                for n, (s, w) in status.items()
            ],
        ),
    ]
    failures = [(n, s) for n, (s, _) in status.items() if s.startswith("failed")]
    for name, text in failures:
        out += [f"``{name}`` failed::", "", "   " + text.replace("\n", "\n   "), ""]
    if runs:
        out += [case_table(runs)]
    out += ["Figures", "-------", ""]
    for path, caption in figures:
        if path:
            out += [f".. figure:: {path}", "   :width: 90%", "", f"   {caption}", ""]
        else:
            out += [caption, ""]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "results" / "validation")
    parser.add_argument("--only", help="one case name (file stem)")
    parser.add_argument("--force", action="store_true", help="rerun finished cases")
    parser.add_argument(
        "--reuse-only", action="store_true", help="do not run; report the runs found in --runs"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    text = build(args.runs, args.only, args.force, args.reuse_only)
    page = HERE / "index.rst"
    fd, tmp = tempfile.mkstemp(dir=HERE, prefix=".index", suffix=".rst")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, page)
    print(f"{page} written in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
