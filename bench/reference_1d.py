"""Reference 1D benchmark (issue 5): NCM111(104) | LLTO, all species and electrostatics.

The case: the stack of ``cases/lee2024_ncm104.toml`` (40 nm NCM111 oriented (104) |
40 nm LLTO, 0.25 nm cells: 320 cells, 1D) with all its species (Li with charge +1,
Ti, La, VO) and the interphase phase field, with Poisson's equation switched on
(``[electrostatics] enabled = true``; the case file itself leaves it off), heated by
a staircase from 25 to 850 degC with lee2024_ncm104's stairs: 25 K at 10 K/min and a
10 min hold at every stair (33 stairs, 6.9 h simulated). Solver settings as
lee2024_ncm104: rtol 1e-3, at most 10 K per step.

Each run goes through :meth:`cosinter.solver.simulation.Simulation.run`, exactly as
``cosinter run`` does it (frames every 100 degC are written to a temporary folder).
Reported: the median over ``--repeats`` runs of the stepper's wall time (``wall_s`` of
``run.json``; includes writing the frames) and of the process CPU time (less
sensitive to other processes on the machine), steps accepted and rejected,
nonlinear sweeps (linear solves), wall time per accepted step.

Target (issue 5): under 15 s wall on the 2-core reference machine.

The full run also times the case as ``cases/lee2024_ncm104.toml`` has it
(electrostatics off; one run), to show what Poisson costs.

    python bench/reference_1d.py            # 3 repeats + the no-Poisson run (a few minutes)
    python bench/reference_1d.py --quick    # one run to 300 degC (under a minute)

Results: a Markdown table on stdout and ``bench/results/reference_1d.json``
(``reference_1d_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _common

#: The stack and species of cases/lee2024_ncm104.toml, Poisson on, staircase to 850 degC.
CASE_TOML = """\
[case]
name = "bench_reference_1d"
description = "NCM111(104) | LLTO, all species + Poisson, 0.25 nm cells, 25 -> {peak} degC"

[mesh]
dimension = 1
cell_size = "0.25 nm"

[[layers]]
material = "NCM111"
thickness = "40 nm"
orientation = {{ plane = [1, 0, 4] }}

[[layers]]
material = "LLTO"
thickness = "40 nm"

[species.Li]
charge = 1

[species.Ti]
[species.La]
[species.VO]

[interphase]
enabled = true

[electrostatics]
enabled = {electrostatics}

[temperature]
initial = "25 degC"

[[temperature.steps]]
staircase = {{ to = "{peak} degC", step = "25 K", rate = "10 K/min", hold = "10 min" }}

[output]
at_temperatures = [{frames}]

[solver]
rtol = 1e-3
max_temperature_change = "10 K"
"""

PEAK_DEGC = 850
QUICK_PEAK_DEGC = 300
TARGET_WALL_S = 15.0


def case_text(peak: int = PEAK_DEGC, electrostatics: bool = True) -> str:
    """The reference case as TOML (frames every 100 degC below the peak)."""
    frames = ", ".join(f'"{t} degC"' for t in range(100, peak, 100))
    return CASE_TOML.format(peak=peak, electrostatics=str(electrostatics).lower(), frames=frames)


def run_once(workdir: Path, label: str, text: str) -> dict[str, Any]:
    """One run through :class:`Simulation` (as ``cosinter run``); its statistics."""
    from cosinter.case import load_case
    from cosinter.solver.simulation import Simulation

    path = workdir / f"{label}.toml"
    path.write_text(text, encoding="utf-8")
    t0, c0 = time.perf_counter(), time.process_time()
    case, raw = load_case(path)
    sim = Simulation(case, raw, source=str(path))
    setup = time.perf_counter() - t0
    result = sim.run(workdir / label, progress=False)
    s = result.stats
    return {
        "label": label,
        "wall_s": float(s["wall_s"]),
        "cpu_s": time.process_time() - c0,
        "total_wall_s": time.perf_counter() - t0,
        "setup_s": setup,
        "accepted": int(s["steps_accepted"]),
        "rejected": int(s["steps_rejected"]),
        "sweeps": int(s["sweeps"]),
        "dt_min_s": float(s["dt_min_s"]),
        "dt_max_s": float(s["dt_max_s"]),
        "frames": result.frames,
        "cells": sim.geometry.n_cells,
        "final_T_K": float(s.get("final_T_K", float("nan"))),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats (steps and sweeps must not differ between repeats)."""
    first = runs[0]
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "runs": runs,
        "repeats": len(runs),
        "median_wall_s": wall,
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "walls_s": [r["wall_s"] for r in runs],
        "deterministic": all(
            (r["accepted"], r["rejected"], r["sweeps"])
            == (first["accepted"], first["rejected"], first["sweeps"])
            for r in runs
        ),
        "accepted": first["accepted"],
        "rejected": first["rejected"],
        "sweeps": first["sweeps"],
        "sweeps_per_step": first["sweeps"] / max(first["accepted"] + first["rejected"], 1),
        "time_per_step_ms": 1e3 * wall / max(first["accepted"], 1),
        "time_per_sweep_ms": 1e3 * wall / max(first["sweeps"], 1),
        "cells": first["cells"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run to 300 degC")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    parser.add_argument("--no-variant", action="store_true", help="skip the electrostatics-off run")
    parser.add_argument("--output", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    peak = QUICK_PEAK_DEGC if args.quick else PEAK_DEGC

    record: dict[str, Any] = {"machine": _common.machine(), "quick": args.quick}
    record["case_toml"] = case_text(peak)
    record["holds"] = (
        "as cases/lee2024_ncm104.toml: 25 K stairs at 10 K/min, 10 min hold at each stair"
    )
    with tempfile.TemporaryDirectory(prefix="cosinter-bench-") as tmp:
        workdir = Path(tmp)
        runs = []
        for i in range(repeats):
            runs.append(run_once(workdir, f"poisson{i}", case_text(peak)))
            r = runs[-1]
            _common.say(
                f"run {i + 1}/{repeats}: wall {r['wall_s']:.1f} s (cpu {r['cpu_s']:.1f} s), "
                f"{r['accepted']} accepted / {r['rejected']} rejected, {r['sweeps']} sweeps"
            )
        record["reference"] = summarize(runs)
        if not args.quick and not args.no_variant:
            r = run_once(workdir, "no_poisson", case_text(peak, electrostatics=False))
            _common.say(
                f"electrostatics off: wall {r['wall_s']:.1f} s, {r['accepted']} accepted / "
                f"{r['rejected']} rejected, {r['sweeps']} sweeps"
            )
            record["electrostatics_off"] = summarize([r])
    ref = record["reference"]
    record["target_wall_s"] = TARGET_WALL_S
    record["target"] = (
        "not applicable (--quick runs to 300 degC only)"
        if args.quick
        else _common.verdict(ref["median_wall_s"], TARGET_WALL_S, at_most=True)
    )
    _common.finish_machine(record)
    path = _common.write_results(
        "reference_1d_quick" if args.quick else "reference_1d", record, args.output
    )

    rows = [_row(f"Poisson on (median of {ref['repeats']})", ref)]
    if "electrostatics_off" in record:
        rows.append(
            _row("Poisson off, as lee2024_ncm104.toml (1 run)", record["electrostatics_off"])
        )
    print()
    print(f"25 -> {peak} degC, {ref['cells']} cells; target: under {TARGET_WALL_S:g} s wall")
    print()
    print(
        _common.table(
            (
                "Run",
                "Wall (s)",
                "CPU (s)",
                "Accepted / rejected",
                "Sweeps",
                "Per step (ms)",
                "Per sweep (ms)",
            ),
            rows,
        )
    )
    print()
    print(
        _common.table(
            ("Target", "Measured", "Verdict"),
            [
                (
                    f"reference 1D under {TARGET_WALL_S:g} s wall",
                    f"{ref['median_wall_s']:.1f} s (walls "
                    + ", ".join(f"{w:.1f}" for w in ref["walls_s"])
                    + ")",
                    record["target"],
                )
            ],
        )
    )
    print(f"\nMachine: {_common.machine_line(record['machine'])}")
    print(f"Results written to {path}")
    return 0


def _row(label: str, s: dict[str, Any]) -> tuple[str, ...]:
    return (
        label,
        f"{s['median_wall_s']:.1f}",
        f"{s['median_cpu_s']:.1f}",
        f"{s['accepted']} / {s['rejected']}",
        f"{s['sweeps']}",
        f"{s['time_per_step_ms']:.1f}",
        f"{s['time_per_sweep_ms']:.2f}",
    )


if __name__ == "__main__":
    raise SystemExit(main())
