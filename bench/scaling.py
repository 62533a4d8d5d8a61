"""Time per step against cell count on a 2D stack, and peak memory (issue 5).

A 2D NCM111(104) | LLTO stack (square, half NCM, half LLTO, periodic sides, 1 nm
cells) with Li (charged, Poisson on), Ti and La. Each size runs in its own
subprocess (``--child``) so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own: the set-up (the
:class:`~cosinter.solver.simulation.Simulation` and the
:class:`~cosinter.solver.equations.TransportSystem`, as ``cosinter run`` builds
them) and then ``--steps`` backward-Euler steps of a fixed ``dt`` at 300 degC through
``TransportSystem.step`` / ``accept`` (no error control, no output files). The first
step is timed apart (FiPy builds its term caches there); the time per step is the
median of the others.

The growth exponent p of ``time per step ~ N^p`` is a least-squares fit of
``log t`` on ``log N`` over all sizes measured, and over the two largest (the
asymptotic slope). The number of nonlinear sweeps per step can differ between
sizes, so the time per sweep is fitted too.

Targets (issue 5): p <= 1.2 from 1e3 to 1e6 cells; peak memory < 4 GiB at 1e6 cells.

    python bench/scaling.py            # 1e3 .. 1e6 cells (about 10 minutes)
    python bench/scaling.py --quick    # 1e3 .. 1e4 cells, 3 steps (under a minute)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

#: Cells per side: about 1e3, 1e4, 3.2e4, 1e5, 1e6 cells (square stacks).
SIDES = (32, 100, 178, 316, 1000)
#: Above this many cells only 2 steps are taken (the first, and one timed).
LARGE = 200_000
QUICK_SIDES = (32, 64, 100)

CASE = """\
[case]
name = "bench_scaling_{n}"

[mesh]
dimension = 2
cell_size = "{h} nm"
width = "{width} nm"
lateral = "periodic"

[[layers]]
material = "NCM111"
thickness = "{half} nm"
orientation = {{ plane = [1, 0, 4] }}

[[layers]]
material = "LLTO"
thickness = "{half} nm"

[species.Li]
charge = 1
[species.Ti]
[species.La]

[electrostatics]
enabled = true

[temperature]
initial = "300 degC"

[[temperature.steps]]
hold = "1 h"
"""


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux: ru_maxrss in kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(
    side: int,
    steps: int,
    dt: float,
    max_sweeps: int,
    tol: float,
    memory_gib: float,
    solver: str = "scipy",
) -> dict[str, Any]:
    """Build a side x side stack, take ``steps`` fixed steps; timings and peak memory.

    With ``solver="petsc"`` under ``mpirun`` this runs on rank 0 (the other ranks
    serve its MUMPS solves, :func:`cosinter.solver.distributed.root_session`).
    """
    if memory_gib > 0:
        # fail with MemoryError instead of waking the OOM killer on a shared machine
        limit = int(memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from cosinter.case import load_case
    from cosinter.solver.simulation import Simulation

    h = 1.0
    with tempfile.TemporaryDirectory(prefix="cosinter-scaling-") as tmp:
        path = Path(tmp) / "case.toml"
        path.write_text(CASE.format(n=side, h=h, width=side * h, half=side * h / 2))
        t0 = time.perf_counter()
        case, raw = load_case(path)
        sim = Simulation(case, raw)
        system = sim.transport_system(solver)
    T = sim.program.temperature(0.0)
    system.update_coefficients(T)
    setup = time.perf_counter() - t0
    walls, cpus, sweeps, converged = [], [], [], []
    for _ in range(steps):
        t1, c1 = time.perf_counter(), time.process_time()
        result = system.step(dt, T, max_sweeps, tol)
        system.accept(dt)
        walls.append(time.perf_counter() - t1)
        cpus.append(time.process_time() - c1)
        sweeps.append(result.sweeps)
        converged.append(bool(result.converged))
    rest = walls[1:] or walls
    rest_sweeps = sweeps[1:] or sweeps
    per_step = float(np.median(rest))
    return {
        "side": side,
        "cells": int(sim.geometry.n_cells),
        "shape": list(sim.geometry.shape),
        "anisotropic": bool(system.anisotropic),
        "setup_s": setup,
        "step_walls_s": walls,
        "sweeps": sweeps,
        "converged": converged,
        "first_step_s": walls[0],
        "time_per_step_s": per_step,
        "step_cpus_s": cpus,
        "cpu_per_step_s": float(np.median(cpus[1:] or cpus)),
        "sweeps_per_step": float(np.mean(rest_sweeps)),
        "time_per_sweep_s": float(np.sum(rest) / max(np.sum(rest_sweeps), 1)),
        "solver": solver,
        "peak_rss_mib": peak_rss_mib(),
    }


def child_ranks(args: argparse.Namespace) -> None:
    """``--child`` under ``mpirun``: rank 0 measures, the others serve; one JSON line each."""
    from cosinter.solver.distributed import root_session

    with root_session() as root:
        if root:
            out = child(args.child, args.steps, args.dt, 30, 1e-5, args.memory_limit_gib, "petsc")
            print(json.dumps(out), flush=True)
    if not root and args.report_dir is not None:
        # a file per serving rank: mpirun may merge the ranks' stdout lines
        report = {"serving_rank_peak_rss_mib": peak_rss_mib()}
        (args.report_dir / f"rank{os.getpid()}.json").write_text(json.dumps(report))


def fit(cells: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(cells)."""
    if len(cells) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(cells), np.log(values), 1)
    return float(slope)


def run_size(side: int, args: argparse.Namespace) -> dict[str, Any]:
    launcher = ["mpirun", "-n", str(args.ranks)] if args.ranks > 1 else []
    command = [
        *launcher,
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(side),
        "--steps",
        str(args.steps if side * side <= LARGE else 2),
        "--dt",
        str(args.dt),
        "--memory-limit-gib",
        str(args.memory_limit_gib),
        "--solver",
        args.solver,
    ]
    reports = Path(tempfile.mkdtemp(prefix="cosinter-scaling-ranks-"))
    command += ["--report-dir", str(reports)]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    scratch = None
    if args.petsc_options:
        env["PETSC_OPTIONS"] = args.petsc_options
        if "MUMPS_OOC_TMPDIR" not in env:
            # MUMPS' out-of-core factors (-mat_mumps_icntl_22 1) go here, removed after
            scratch = tempfile.mkdtemp(prefix="cosinter-scaling-ooc-")
            env["MUMPS_OOC_TMPDIR"] = scratch
    if args.ranks > 1:
        # one BLAS thread per rank: N ranks on N cores
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=args.size_timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"side": side, "error": f"timed out after {args.size_timeout:g} s"}
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode != 0:
        return {"side": side, "error": proc.stderr.strip()[-2000:] or f"exit {proc.returncode}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = time.perf_counter() - t0
    out["ranks"] = args.ranks
    serving = [
        json.loads(p.read_text())["serving_rank_peak_rss_mib"] for p in reports.glob("*.json")
    ]
    shutil.rmtree(reports, ignore_errors=True)
    out["serving_ranks_peak_rss_mib"] = serving
    out["rank0_peak_rss_mib"] = out["peak_rss_mib"]
    # the job's memory: every rank's peak (an upper bound on the peak of the sum)
    out["peak_rss_mib"] = out["peak_rss_mib"] + float(sum(serving))
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e3 .. 1e4 cells, 3 steps")
    parser.add_argument("--sides", type=int, nargs="*", help="cells per side to run")
    parser.add_argument("--steps", type=int, default=None, help="steps per size (default 4)")
    parser.add_argument("--dt", type=float, default=1.0, help="fixed step (s)")
    parser.add_argument(
        "--size-timeout", type=float, default=300.0, help="seconds before a size is abandoned"
    )
    parser.add_argument(
        "--memory-limit-gib",
        type=float,
        default=8.0,
        help="address-space limit per size (0: none); a size beyond it fails cleanly",
    )
    parser.add_argument(
        "--solver", choices=("scipy", "petsc"), default="scipy", help="linear-solver back end"
    )
    parser.add_argument(
        "--ranks", type=int, default=1, help="MPI ranks (mpirun -n; --solver petsc only)"
    )
    parser.add_argument(
        "--petsc-options",
        default="",
        help='PETSc options for --solver petsc (PETSC_OPTIONS), e.g. "-mat_mumps_icntl_22 1":'
        " MUMPS out of core, in MUMPS_OOC_TMPDIR (default a temporary directory)",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--report-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 3 if args.quick else 4
    if args.ranks > 1 and args.solver != "petsc":
        parser.error("--ranks > 1 needs --solver petsc")
    if args.petsc_options and args.solver != "petsc":
        parser.error("--petsc-options needs --solver petsc")
    if args.child is not None:
        if args.solver == "petsc":
            child_ranks(args)
            return 0
        print(json.dumps(child(args.child, args.steps, args.dt, 30, 1e-5, args.memory_limit_gib)))
        return 0

    sides = args.sides or (QUICK_SIDES if args.quick else SIDES)
    record: dict[str, Any] = {
        "machine": _common.machine(),
        "quick": args.quick,
        "solver": args.solver,
        "ranks": args.ranks,
        "petsc_options": args.petsc_options or os.environ.get("PETSC_OPTIONS", ""),
    }
    record["setup"] = {
        "case": CASE.format(n="N", h=1.0, width="N", half="N/2"),
        "steps": args.steps,
        "dt_s": args.dt,
        "temperature_degC": 300,
        "sweep_tolerance": 1e-5,
        "timing": "median wall time of steps 2..n (step 1 apart); subprocess per size; "
        f"2 steps above {LARGE} cells",
        "memory_limit_gib": args.memory_limit_gib,
    }
    sizes: list[dict[str, Any]] = []
    for side in sides:
        _common.say(f"{side} x {side} cells ...")
        result = run_size(side, args)
        sizes.append(result)
        if "error" in result:
            _common.say(f"  failed: {result['error'][-300:]}")
            break  # larger sizes would fail too
        _common.say(
            f"  {result['cells']} cells: {1e3 * result['time_per_step_s']:.1f} ms/step, "
            f"{result['sweeps_per_step']:.1f} sweeps/step, peak {result['peak_rss_mib']:.0f} MiB"
        )
    ok = [s for s in sizes if "error" not in s]
    cells = [float(s["cells"]) for s in ok]
    exponent = fit(cells, [s["time_per_step_s"] for s in ok])
    exponent_sweep = fit(cells, [s["time_per_sweep_s"] for s in ok])
    exponent_cpu = fit(cells, [s["cpu_per_step_s"] for s in ok])
    tail = fit(cells[-2:], [s["time_per_step_s"] for s in ok[-2:]])
    largest = ok[-1] if ok else None
    memory_1e6 = next((s["peak_rss_mib"] for s in ok if s["cells"] >= 1e6), float("nan"))
    record["sizes"] = sizes
    record["exponent_time_per_step"] = exponent
    record["exponent_time_per_sweep"] = exponent_sweep
    record["exponent_cpu_per_step"] = exponent_cpu
    record["exponent_two_largest"] = tail
    record["largest_cells"] = largest["cells"] if largest else 0
    record["peak_rss_mib_at_1e6"] = memory_1e6
    if ok and not math.isfinite(memory_1e6) and cells[-1] >= 9e4:
        # extrapolate with the memory exponent of the two largest sizes measured
        mem_exp = fit(cells[-2:], [s["peak_rss_mib"] for s in ok[-2:]])
        record["peak_rss_mib_at_1e6_extrapolated"] = ok[-1]["peak_rss_mib"] * (1e6 / cells[-1]) ** (
            mem_exp if math.isfinite(mem_exp) else 1.0
        )
    # a size of 1e6 cells that ran out of the address-space limit: above the limit
    too_big = [
        s for s in sizes if "error" in s and s["side"] ** 2 >= 1e6 and "MemoryError" in s["error"]
    ]
    memory_verdict = _common.verdict(memory_1e6, 4096.0, at_most=True)
    if too_big and args.memory_limit_gib >= 4:
        memory_verdict = f"not met (MemoryError under the {args.memory_limit_gib:g} GiB limit)"
        record["peak_rss_mib_at_1e6_lower_bound"] = 1024.0 * args.memory_limit_gib
    record["targets"] = {
        "exponent <= 1.2": _common.verdict(exponent, 1.2, at_most=True),
        "peak memory at 1e6 cells < 4 GiB": memory_verdict,
    }
    if args.quick:  # a smoke run: no verdict on the 1e3 .. 1e6 targets
        record["targets"] = {k: f"not judged (--quick: {v})" for k, v in record["targets"].items()}
    _common.finish_machine(record)
    name = "scaling" + ("" if args.solver == "scipy" else f"_petsc_{args.ranks}ranks")
    path = _common.write_results(name + ("_quick" if args.quick else ""), record, args.output)

    rows = [
        (
            f"{s['cells']:,}",
            f"{s['setup_s']:.2f}",
            f"{s['first_step_s']:.3f}",
            f"{1e3 * s['time_per_step_s']:.1f}",
            f"{1e3 * s['cpu_per_step_s']:.1f}",
            f"{s['sweeps_per_step']:.1f}",
            f"{1e3 * s['time_per_sweep_s']:.1f}",
            f"{1e6 * s['time_per_step_s'] / s['cells']:.1f}",
            f"{s['peak_rss_mib']:.0f}",
        )
        for s in ok
    ]
    print()
    print(
        _common.table(
            (
                "Cells",
                "Set-up (s)",
                "First step (s)",
                "Time per step (ms)",
                "CPU per step (ms)",
                "Sweeps per step",
                "Time per sweep (ms)",
                "us per cell-step",
                "Peak RSS (MiB)",
            ),
            rows,
        )
    )
    for s in sizes:
        if "error" in s:
            print(f"\n{s['side']} x {s['side']}: not measured ({s['error'][-200:]})")
    print()
    print(
        _common.table(
            ("Target", "Measured", "Verdict"),
            [
                (
                    "time per step grows no faster than N^1.2",
                    f"N^{exponent:.2f} ({ok[0]['cells'] if ok else 0:,}-"
                    f"{record['largest_cells']:,} cells; per sweep N^{exponent_sweep:.2f}; "
                    f"CPU N^{exponent_cpu:.2f}; "
                    f"two largest N^{tail:.2f})",
                    record["targets"]["exponent <= 1.2"],
                ),
                (
                    "peak memory at 1e6 cells < 4 GiB",
                    f"{memory_1e6:.0f} MiB"
                    if math.isfinite(memory_1e6)
                    else f"1e6 failed: > {args.memory_limit_gib:g} GiB"
                    if too_big
                    else "1e6 not run"
                    + (
                        f" (extrapolated {record['peak_rss_mib_at_1e6_extrapolated']:.0f} MiB)"
                        if "peak_rss_mib_at_1e6_extrapolated" in record
                        else ""
                    ),
                    record["targets"]["peak memory at 1e6 cells < 4 GiB"],
                ),
            ],
        )
    )
    print(f"\nMachine: {_common.machine_line(record['machine'])}")
    print(f"Results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
