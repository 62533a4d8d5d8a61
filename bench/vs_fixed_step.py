"""Adaptive against fixed time steps at equal accuracy (issue 5, and issue 2 before it).

The physics of ``bench/reference_1d.py`` (NCM111(104) | LLTO, 0.25 nm cells, Li
charged with Poisson, Ti, La, VO, the interphase; lee2024_ncm104's staircase of 25 K
stairs at 10 K/min with 10 min holds) run two ways:

* **adaptive**: the case's ``[solver]`` (rtol 1e-3, at most 10 K per step) through
  :func:`cosinter.solver.stepping.run`, as ``cosinter run`` does it but without
  writing files;
* **fixed steps**: "a plain FiPy script" with a constant dt and no error control.
  It drives the same :class:`~cosinter.solver.equations.TransportSystem` (the same
  equations, interface Newton sweeps and Poisson coupling) through the same loop
  with ``rtol = 1e9`` (every step passes), no temperature bound and
  ``dt_initial = dt_max = dt``. Rewriting the discretisation as a separate FiPy script
  would compare two discretisations, not two ways of choosing dt; this way only the
  step choice differs. The dt needed is found with cosinter's direct assembly (the
  same matrices as FiPy's terms, ``tests/solver/test_assembly.py``, so the same
  errors); then the **plain FiPy script** is timed: fixed steps at that dt with the
  matrices assembled by FiPy's terms (``reference_assembly=True``), for up to
  ``--plain-budget`` seconds, the wall time per step times the steps needed. The
  verdict uses that ratio (the issue's comparison); the ratio with both sides on the
  direct assembly (the gain of the step choice alone) is reported beside it. The
  nonlinear sweeps keep the adaptive run's tolerance (1e-5,
  :class:`ConvergedSweepSystem`) so each step does the same solve. A step whose
  sweeps fail is retried smaller (counted as rejected), as a hand-written script
  would have to.

Accuracy: the error of a run at a frame is, per species (and eta),
``max|c - c_ref| / max|c_ref|`` (the species' scale where the reference is still
~0), the largest over species; a run's error is the largest over the frames. The
reference is the same case at ``--reference-rtol`` (default 1e-4) with at most
``--reference-dT`` (2 K) per step and a 1 us first step. It is expensive (minutes),
so it is cached in ``bench/results/vs_fixed_step_reference_<case>.npz`` keyed by the
case text, the reference settings and the cosinter version (``--fresh-reference``
recomputes it). The fixed-dt scan (largest dt first, each candidate screened up to
the first frame, then the whole program at the largest passing dt) is that of issue 2
(``bench/README.md``). Target: fixed / adaptive wall time >= 10.

The staircase ends at ``--peak`` (default 450 degC: the contact transient, the Ti/La
exchange and the interphase onset at ~400 degC; beyond it the fine reference gets
too expensive for a benchmark run), not at reference_1d's 850 degC.

``--case issue2`` reruns the Li-only case of issue 2 (600 nm, 50 K stairs, 1 h
holds; no Poisson), whose published numbers are in ``docs/performance.md``.

    python bench/vs_fixed_step.py            # to 450 degC (~10 min + the reference once)
    python bench/vs_fixed_step.py --quick    # to 150 degC (about a minute)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _common
import numpy as np
import reference_1d
from numpy.typing import NDArray

from cosinter.case import Case, load_case
from cosinter.solver.equations import SweepResult, TransportSystem
from cosinter.solver.simulation import Simulation
from cosinter.solver.stepping import StepControl, StepperState, run

FloatArray = NDArray[np.float64]

#: Fixed-step sizes tried (s), largest first. Each divides 150 s (a 25 K ramp at
#: 10 K/min; also the issue-2 half ramp) and so every segment and frame time, and is
#: exact in binary, so every step is exactly dt.
COARSE_DT = (150.0, 75.0, 30.0, 15.0, 7.5, 3.0, 1.5, 0.75, 0.375, 0.1875, 0.09375)
FINE_DT = (
    150.0, 75.0, 50.0, 37.5, 30.0, 25.0, 18.75, 15.0, 12.5, 10.0, 7.5, 6.0, 5.0, 3.75, 3.0,
    2.5, 2.0, 1.5, 1.25, 1.0, 0.75, 0.625, 0.5, 0.375, 0.3125, 0.25, 0.1875, 0.15625,
    0.125, 0.09375,
)  # fmt: skip

#: The issue-2 case (Li only): what docs/performance.md published for issue 2.
ISSUE2_CASE = """\
[case]
name = "bench_reference_1d"
description = "Reference 1D benchmark: NCM111(104) | LLTO, 0.25 nm cells, staircase to 850 degC"

[mesh]
dimension = 1
cell_size = "0.25 nm"

[[layers]]
material = "NCM111"
thickness = "300 nm"
orientation = { plane = [1, 0, 4] }

[[layers]]
material = "LLTO"
thickness = "300 nm"

[species.Li]
charge = 1

[temperature]
initial = "25 degC"

[[temperature.steps]]
staircase = { to = "850 degC", step = "50 K", rate = "10 K/min", hold = "1 h" }

[output]
at_temperatures = ["50 degC", "100 degC", "150 degC", "200 degC", "450 degC"]
"""

QUICK_PEAK_DEGC = 150
#: Default end of the staircase here: past the interphase onset (~400 degC), short
#: enough for the fine reference (``--peak 850`` runs reference_1d's whole program).
PEAK_DEGC = 450


def issue5_case(peak: int) -> str:
    """reference_1d's case with error frames at 50 degC (first ramp) and every 100 degC."""
    text = reference_1d.case_text(peak)
    frames = ", ".join(f'"{t} degC"' for t in [50, *range(100, peak, 100)])
    head, _, tail = text.partition("[output]\n")
    _, _, rest = tail.partition("\n")
    return f"{head}[output]\nat_temperatures = [{frames}]\n{rest}"


# --------------------------------------------------------------------------- runs


@dataclass
class RunOutcome:
    """One run: statistics and the state (all species, eta) at each frame."""

    label: str
    wall_s: float
    cpu_s: float
    accepted: int
    rejected: int
    sweeps: int
    dt_min_s: float
    dt_max_s: float
    frame_times_s: list[float]
    states: list[dict[str, FloatArray]] = field(repr=False)
    nominal_dt_s: float | None = None
    constant_steps: int | None = None
    aborted: bool = False  # stopped: already less accurate than the target
    out_of_time: bool = False  # stopped: the time budget ran out
    screening: bool = False  # run only up to a frame
    failed: str | None = None  # the stepper gave up (ConvergenceError)

    @property
    def time_per_step_s(self) -> float:
        return self.wall_s / max(self.accepted, 1)

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "states"}
        out["time_per_step_s"] = self.time_per_step_s
        return out


class ConvergedSweepSystem(TransportSystem):
    """A :class:`TransportSystem` whose nonlinear sweeps converge to a set tolerance.

    :func:`~cosinter.solver.stepping.run` passes ``1e-2 * rtol`` as the sweep
    tolerance, so the huge rtol that switches off error control would also stop the
    Newton sweeps after one solve; the fixed and reference runs keep the adaptive
    run's ``1e-2 * 1e-3`` instead.
    """

    sweep_tol: float = 1e-5

    def step(self, dt: float, T: float, max_sweeps: int, tol: float) -> SweepResult:
        return super().step(dt, T, max_sweeps, self.sweep_tol)


@dataclass(frozen=True)
class Target:
    """An accuracy to reach: error <= ``error`` at every frame from ``first_frame`` on."""

    reference: RunOutcome
    scales: dict[str, float]
    error: float
    first_frame: int = 0


class _StopError(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class _Recorder:
    """Observer: the state at each frame and every accepted step size; early stops."""

    target: Target | None = None
    deadline: float | None = None
    stop_after_frame: int | None = None
    states: list[dict[str, FloatArray]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    final: StepperState | None = None

    def on_start(self, state: StepperState) -> None:
        pass

    def on_step(self, state: StepperState) -> None:
        self.steps.append(state.dt)
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise _StopError("out_of_time")

    def on_frame(self, state: StepperState) -> None:
        self.states.append(state.system.state())
        self.times.append(state.t)
        frame = len(self.states) - 1
        t = self.target
        if (
            t is not None
            and frame >= t.first_frame
            and frame_error(self.states[-1], t.reference.states[frame], t.scales) > t.error
        ):
            raise _StopError("aborted")
        if self.stop_after_frame is not None and frame >= self.stop_after_frame:
            raise _StopError("screened")

    def on_finish(self, state: StepperState, error: BaseException | None) -> None:
        self.final = state


def build_system(
    case: Case, raw: dict[str, Any], sweep_tol: float | None, fipy_terms: bool = False
) -> tuple[Any, Any]:
    """The Simulation and its system, as :meth:`Simulation.run` builds them.

    ``fipy_terms``: matrices assembled by FiPy's terms (the plain FiPy script).
    """
    sim = Simulation(case, raw)
    cls = TransportSystem if sweep_tol is None else ConvergedSweepSystem
    system = cls(
        sim.geometry,
        sim.props,
        {
            "left": dict(case.boundaries.left.fixed),
            "right": dict(case.boundaries.right.fixed),
        },
        sim.poisson,
        sim.chemistry,
        reference_assembly=fipy_terms,
    )
    if sweep_tol is not None:
        system.sweep_tol = sweep_tol
    return sim, system


def run_stepper(
    case: Case,
    raw: dict[str, Any],
    control: StepControl,
    label: str,
    sweep_tol: float | None = None,
    nominal_dt: float | None = None,
    target: Target | None = None,
    deadline: float | None = None,
    stop_after_frame: int | None = None,
    fipy_terms: bool = False,
) -> RunOutcome:
    """Run the case through :func:`~cosinter.solver.stepping.run`; frames in memory."""
    from cosinter.errors import ConvergenceError

    sim, system = build_system(case, raw, sweep_tol, fipy_terms)
    recorder = _Recorder(target=target, deadline=deadline, stop_after_frame=stop_after_frame)
    why: str | None = None
    failed = None
    c0 = time.process_time()
    try:
        run(system, sim.program, sim.frame_times, control, observers=(recorder,))
    except _StopError as stop:
        why = stop.why
    except ConvergenceError as exc:
        failed = str(exc)
    cpu = time.process_time() - c0
    state = recorder.final
    assert state is not None
    steps = np.asarray(recorder.steps or [0.0])
    constant = None
    if nominal_dt is not None:
        constant = int(np.sum(np.abs(steps - nominal_dt) <= 1e-9 * nominal_dt))
    return RunOutcome(
        label=label,
        wall_s=state.stats.wall_s,
        cpu_s=cpu,
        accepted=state.stats.accepted,
        rejected=state.stats.rejected,
        sweeps=state.stats.sweeps,
        dt_min_s=float(steps.min()),
        dt_max_s=float(steps.max()),
        frame_times_s=recorder.times,
        states=recorder.states,
        nominal_dt_s=nominal_dt,
        constant_steps=constant,
        aborted=why == "aborted" or failed is not None,
        out_of_time=why == "out_of_time",
        screening=stop_after_frame is not None,
        failed=failed,
    )


def run_fixed(
    case: Case,
    raw: dict[str, Any],
    dt: float,
    sweep_tol: float,
    target: Target | None = None,
    deadline: float | None = None,
    stop_after_frame: int | None = None,
    fipy_terms: bool = False,
) -> RunOutcome:
    """Constant ``dt``, no error control (see the module docstring)."""
    control = StepControl(
        rtol=1e9,
        max_temperature_change=1e9,
        dt_initial=dt,
        dt_min=1e-9 * dt,
        dt_max=dt,
        max_sweeps=case.solver.max_sweeps,
    )
    return run_stepper(
        case,
        raw,
        control,
        f"fixed dt = {dt:g} s",
        sweep_tol,
        dt,
        target=target,
        deadline=deadline,
        stop_after_frame=stop_after_frame,
        fipy_terms=fipy_terms,
    )


def time_plain_fipy(
    case: Case,
    raw: dict[str, Any],
    fixed: dict[str, Any],
    sweep_tol: float,
    adaptive_wall: float,
    budget: float,
) -> dict[str, Any]:
    """The plain FiPy script: fixed steps at the dt found, FiPy's terms assembling.

    Runs until the program ends or ``budget`` seconds pass; the wall time per step
    times the steps the fixed run needs (found or extrapolated) is its wall time.
    """
    if fixed["found"]:
        dt, steps = float(fixed["dt_s"]), float(fixed["steps"])
    elif "extrapolated_dt_s" in fixed:
        dt, steps = float(fixed["extrapolated_dt_s"]), float(fixed["extrapolated_steps"])
    else:
        return {}
    outcome = run_fixed(
        case, raw, dt, sweep_tol, deadline=time.perf_counter() + budget, fipy_terms=True
    )
    per_step = outcome.wall_s / max(outcome.accepted, 1)
    wall = per_step * steps
    return {
        "dt_s": dt,
        "steps_needed": steps,
        "steps_run": outcome.accepted,
        "cut_by_budget": outcome.out_of_time,
        "run_wall_s": outcome.wall_s,
        "run_cpu_s": outcome.cpu_s,
        "time_per_step_s": per_step,
        "cpu_per_step_s": outcome.cpu_s / max(outcome.accepted, 1),
        "wall_s": wall,
        "ratio_plain_fipy_over_adaptive": wall / adaptive_wall,
    }


# --------------------------------------------------------------------------- accuracy


def frame_error(
    state: dict[str, FloatArray], ref: dict[str, FloatArray], scales: dict[str, float]
) -> float:
    """Largest over species (and eta) of max|c - c_ref| / max|c_ref|."""
    worst = 0.0
    for name, r in ref.items():
        size = float(np.max(np.abs(r)))
        if size < 1e-3 * scales[name]:
            size = scales[name]
        worst = max(worst, float(np.max(np.abs(state[name] - r))) / size)
    return worst


def frame_errors(run_: RunOutcome, ref: RunOutcome, scales: dict[str, float]) -> list[float]:
    n = len(run_.frame_times_s)
    if n > len(ref.frame_times_s) or not np.allclose(
        run_.frame_times_s, ref.frame_times_s[:n], rtol=1e-12, atol=1e-9
    ):
        raise RuntimeError(f"frames of {run_.label} differ from the reference's")
    return [frame_error(s, r, scales) for s, r in zip(run_.states, ref.states, strict=False)]


def reference_run(
    case: Case,
    raw: dict[str, Any],
    text: str,
    label: str,
    rtol: float,
    dT: float,
    sweep_tol: float,
    fresh: bool,
) -> tuple[RunOutcome, bool]:
    """The fine reference, from the cache if its key matches (returns it, and cached?)."""
    from cosinter import __version__

    key = hashlib.sha256(
        json.dumps([text, rtol, dT, sweep_tol, __version__], sort_keys=True).encode()
    ).hexdigest()
    path = _common.RESULTS / f"vs_fixed_step_reference_{label}.npz"
    if path.is_file() and not fresh:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        if meta["key"] == key:
            names = meta["names"]
            states = [
                {n: np.asarray(data[f"{i}/{n}"]) for n in names} for i in range(meta["frames"])
            ]
            outcome = RunOutcome(states=states, **meta["summary"])
            return outcome, True
    control = StepControl(
        rtol=rtol,
        max_temperature_change=dT,
        dt_initial=1e-6,
        dt_min=case.solver.dt_min,
        max_sweeps=case.solver.max_sweeps,
    )
    outcome = run_stepper(case, raw, control, f"reference rtol {rtol:g}", sweep_tol)
    if outcome.failed:
        raise RuntimeError(f"the reference run failed: {outcome.failed}")
    names = list(outcome.states[0])
    summary = {k: v for k, v in asdict(outcome).items() if k != "states"}
    meta = {
        "key": key,
        "names": names,
        "frames": len(outcome.states),
        "summary": summary,
        "machine": _common.machine(),
    }
    arrays = {f"{i}/{n}": s[n] for i, s in enumerate(outcome.states) for n in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    return outcome, False


# --------------------------------------------------------------------------- the scan


@dataclass
class FixedScan:
    target: Target
    deadline: float
    runs: list[tuple[RunOutcome, list[float]]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    best: RunOutcome | None = None


def scan_fixed(
    case: Case, raw: dict[str, Any], target: Target, sweep_tol: float, budget: float, screen: int
) -> FixedScan:
    """Largest dt of :data:`FINE_DT` whose fixed-step run meets ``target`` (issue 2's scan)."""
    scan = FixedScan(target, time.perf_counter() + budget)

    def attempt(dt: float, screening: bool) -> bool:
        outcome = run_fixed(
            case,
            raw,
            dt,
            sweep_tol,
            target=target,
            deadline=scan.deadline,
            stop_after_frame=screen if screening else None,
        )
        errors = frame_errors(outcome, target.reference, target.scales)
        scan.runs.append((outcome, errors))
        t_end = outcome.frame_times_s[-1] if outcome.frame_times_s else 0.0
        how = (
            "out of time"
            if outcome.out_of_time
            else f"failed: {outcome.failed[:80]}"
            if outcome.failed
            else f"missed the target at t = {t_end:g} s"
            if outcome.aborted
            else f"screened to t = {t_end:g} s"
            if screening
            else "whole program"
        )
        error = max(errors[target.first_frame :], default=0.0)
        _common.say(
            f"  fixed dt = {dt:g} s ({how}): {outcome.accepted} steps ({outcome.rejected} "
            f"rejected, {outcome.constant_steps} of exactly dt), {outcome.wall_s:.1f} s, "
            f"error {error:.2e}"
        )
        return not outcome.aborted and not outcome.out_of_time

    failed: float | None = None
    screened: list[float] = []
    for dt in COARSE_DT:
        if attempt(dt, screening=True):
            screened.append(dt)
            break
        if scan.runs[-1][0].out_of_time:
            return scan
        failed = dt
    if not screened:
        return scan
    if failed is not None:
        for dt in [d for d in FINE_DT if screened[0] < d < failed]:
            if attempt(dt, screening=True):
                screened.insert(0, dt)
                break
            if scan.runs[-1][0].out_of_time:
                return scan
    for dt in screened:
        if attempt(dt, screening=False):
            scan.best = scan.runs[-1][0]
            return scan
        if scan.runs[-1][0].out_of_time:
            return scan
    # a later frame decides (the screen passed, the program did not): whole-program
    # runs down the coarse list, then the fine grid between the last two
    failed = min(screened)
    passed: float | None = None
    for dt in [d for d in COARSE_DT if d < failed]:
        if attempt(dt, screening=False):
            scan.best, passed = scan.runs[-1][0], dt
            break
        if scan.runs[-1][0].out_of_time:
            return scan
        failed = dt
    if passed is None:
        return scan
    for dt in [d for d in FINE_DT if passed < d < failed]:
        if attempt(dt, screening=False):
            scan.best = scan.runs[-1][0]
            return scan
        if scan.runs[-1][0].out_of_time:
            return scan
    return scan


def summarize_scan(
    scan: FixedScan,
    case: Case,
    raw: dict[str, Any],
    sweep_tol: float,
    adaptive_wall: float,
    repeats: int,
) -> dict[str, Any]:
    """The fixed-step result, timed again if the budget allows; else a lower bound."""
    target = scan.target
    duration = target.reference.frame_times_s[-1]
    out: dict[str, Any] = {"target_error": target.error, "first_frame": target.first_frame}
    if scan.best is not None:
        best = scan.best
        dt = float(best.nominal_dt_s or 0.0)
        timed = [best]
        if scan.deadline - time.perf_counter() >= (repeats - 1) * best.wall_s:
            timed += [run_fixed(case, raw, dt, sweep_tol) for _ in range(repeats - 1)]
        walls = [o.wall_s for o in timed]
        errors = frame_errors(best, target.reference, target.scales)
        out |= {
            "found": True,
            "dt_s": dt,
            "steps": best.accepted,
            "rejected": best.rejected,
            "constant_steps": best.constant_steps,
            "sweeps": best.sweeps,
            "frame_errors": errors,
            "error": max(errors[target.first_frame :]),
            "walls_s": walls,
            "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(o.cpu_s for o in timed),
            "time_per_step_s": statistics.median(walls) / best.accepted,
            "ratio_fixed_over_adaptive": statistics.median(walls) / adaptive_wall,
            "ratio_is_lower_bound": False,
        }
    elif scan.runs and scan.runs[-1][0].out_of_time and not scan.runs[-1][0].screening:
        last = scan.runs[-1][0]
        dt = float(last.nominal_dt_s or 0.0)
        out |= {
            "found": False,
            "ratio_is_lower_bound": True,
            "bound": "measured: the whole-program run at dt_s was cut by the time budget",
            "dt_s": dt,
            "partial_wall_s": last.wall_s,
            "estimated_wall_s": duration / dt * last.time_per_step_s,
            "ratio_fixed_over_adaptive": last.wall_s / adaptive_wall,
            "estimated_ratio": duration / dt * last.time_per_step_s / adaptive_wall,
        }
    else:
        failed = [o for o, _ in scan.runs if o.aborted]
        smallest = min(failed, key=lambda o: o.nominal_dt_s or 0.0) if failed else None
        dt = float(smallest.nominal_dt_s or 0.0) if smallest else float("nan")
        tps = smallest.time_per_step_s if smallest else float("nan")
        out |= {
            "found": False,
            "ratio_is_lower_bound": True,
            "bound": "estimated: steps at the smallest failing dt x its time per step",
            "smallest_failing_dt_s": dt,
            "ratio_fixed_over_adaptive": duration / dt * tps / adaptive_wall,
        }
    out["scan"] = [
        o.summary() | {"error": max(e[target.first_frame :], default=0.0), "frame_errors": e}
        for o, e in scan.runs
    ]
    out["scan_wall_s"] = time.perf_counter() - scan.started
    if not out["found"]:
        out |= extrapolate(out["scan"], target.error, duration, adaptive_wall)
    return out


def extrapolate(
    scan: list[dict[str, Any]], target: float, duration: float, adaptive_wall: float
) -> dict[str, Any]:
    """When the scan was cut: the dt that would meet ``target``, from error ~ dt.

    Backward Euler's global error is first order in dt: the smallest whole-program
    dt that missed the target, scaled by target/error, gives the dt needed; the
    largest of :data:`FINE_DT` below it, times the median wall time per step of the
    whole-program runs, gives the fixed-step wall time.
    """
    missed = [
        s
        for s in scan
        if not s["screening"] and s["aborted"] and not s["failed"] and s["error"] > 0
    ]
    whole = [s for s in scan if not s["screening"] and s["accepted"] > 0]
    if not missed or not whole:
        return {}
    last = min(missed, key=lambda s: s["nominal_dt_s"])
    needed = last["nominal_dt_s"] * target / last["error"]
    grid = max((d for d in FINE_DT if d <= needed), default=needed)
    per_step = statistics.median(s["wall_s"] / s["accepted"] for s in whole)
    per_step_cpu = statistics.median(s["cpu_s"] / s["accepted"] for s in whole)
    wall = duration / grid * per_step
    return {
        "extrapolated_dt_needed_s": needed,
        "extrapolated_dt_s": grid,
        "extrapolated_steps": duration / grid,
        "extrapolated_time_per_step_s": per_step,
        "extrapolated_cpu_per_step_s": per_step_cpu,
        "extrapolated_wall_s": wall,
        "extrapolated_ratio": wall / adaptive_wall,
        "extrapolated_from": f"dt {last['nominal_dt_s']:g} s, error {last['error']:.2e}",
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="program to 150 degC only")
    parser.add_argument("--case", choices=("issue5", "issue2"), default="issue5")
    parser.add_argument(
        "--peak", type=int, default=None, help=f"issue5: staircase end, degC (default {PEAK_DEGC})"
    )
    parser.add_argument("--repeats", type=int, default=None, help="adaptive runs (default 3)")
    parser.add_argument("--reference-rtol", type=float, default=None, help="default 1e-4")
    parser.add_argument(
        "--reference-dT", type=float, default=None, help="K per reference step (2; issue2: 1)"
    )
    parser.add_argument("--fresh-reference", action="store_true", help="ignore the cache")
    parser.add_argument("--fixed-budget", type=float, default=None, help="s for the scan")
    parser.add_argument("--fixed-repeats", type=int, default=3, help="timed fixed runs")
    parser.add_argument(
        "--plain-budget", type=float, default=None, help="s for the plain FiPy timing (300)"
    )
    parser.add_argument("--output", type=Path, default=None, help="results JSON")
    args = parser.parse_args(argv)
    if args.case == "issue2":
        text, label = ISSUE2_CASE, "issue2"
        ref_rtol = args.reference_rtol or 1e-6
        args.reference_dT = args.reference_dT or 1.0
    else:
        peak = args.peak or (QUICK_PEAK_DEGC if args.quick else PEAK_DEGC)
        text, label = issue5_case(peak), f"issue5_{peak}C"
        ref_rtol = args.reference_rtol or 1e-4
        args.reference_dT = args.reference_dT or 2.0
    repeats = args.repeats or (1 if args.quick else 3)
    budget = args.fixed_budget or (
        60.0 if args.quick else 480.0 if args.case == "issue2" else 420.0
    )

    record: dict[str, Any] = {"machine": _common.machine(), "quick": args.quick}
    record["arguments"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record["case_toml"] = text
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cosinter-bench-") as tmp:
        path = Path(tmp) / "case.toml"
        path.write_text(text, encoding="utf-8")
        case, raw = load_case(path)
    sweep_tol = 1e-2 * case.solver.rtol
    control = Simulation(case, raw).control()

    adaptive = [run_stepper(case, raw, control, f"adaptive {i}") for i in range(repeats)]
    a = adaptive[0]
    walls = [r.wall_s for r in adaptive]
    adaptive_wall = statistics.median(walls)
    _common.say(
        f"adaptive: wall {', '.join(f'{w:.1f}' for w in walls)} s; {a.accepted} accepted, "
        f"{a.rejected} rejected, {a.sweeps} sweeps"
    )
    t0 = time.perf_counter()
    reference, cached = reference_run(
        case, raw, text, label, ref_rtol, args.reference_dT, sweep_tol, args.fresh_reference
    )
    _common.say(
        f"reference (rtol {ref_rtol:g}, {args.reference_dT:g} K per step): "
        f"{'from the cache' if cached else f'computed in {time.perf_counter() - t0:.0f} s'}, "
        f"{reference.accepted} steps"
    )
    scales = build_system(case, raw, None)[1].scales()
    adaptive_errors = frame_errors(a, reference, scales)
    target_error = max(adaptive_errors)
    _common.say(f"adaptive error per frame: {', '.join(f'{e:.2e}' for e in adaptive_errors)}")
    _common.say("fixed steps, error at every frame <= the adaptive run's largest:")
    scan = scan_fixed(
        case, raw, Target(reference, scales, target_error), sweep_tol, budget, screen=1
    )
    fixed = summarize_scan(scan, case, raw, sweep_tol, adaptive_wall, args.fixed_repeats)

    record["adaptive"] = {
        "solver": f"case: rtol {control.rtol:g}, {control.max_temperature_change:g} K per step",
        "runs": [r.summary() for r in adaptive],
        "median_wall_s": adaptive_wall,
        "median_cpu_s": statistics.median(r.cpu_s for r in adaptive),
        "steps_accepted": a.accepted,
        "steps_rejected": a.rejected,
        "sweeps": a.sweeps,
        "time_per_step_s": adaptive_wall / a.accepted,
        "frame_times_s": a.frame_times_s,
        "frame_errors": adaptive_errors,
        "error": target_error,
    }
    record["reference"] = {
        "rtol": ref_rtol,
        "max_temperature_change_K": args.reference_dT,
        "sweep_tol": sweep_tol,
        "cached": cached,
        "run": reference.summary(),
        "own_error_estimate": (
            "with the global error ~ rtol^(1/2), the reference's own error is about "
            f"{1 / (np.sqrt(control.rtol / ref_rtol) - 1):.2f} x the adaptive run's "
            "measured error"
        ),
    }
    record["fixed"] = fixed
    plain_budget = args.plain_budget or (30.0 if args.quick else 300.0)
    plain = time_plain_fipy(case, raw, fixed, sweep_tol, adaptive_wall, plain_budget)
    record["plain_fipy"] = plain
    ratio = fixed["ratio_fixed_over_adaptive"]
    estimate = fixed.get("extrapolated_ratio")
    record["stepping_alone"] = (
        f"{ratio:.1f}x"
        if not fixed["ratio_is_lower_bound"]
        else f">= {ratio:.1f}x"
        if estimate is None
        else f"{estimate:.1f}x by the extrapolation (measured lower bound {ratio:.1f}x)"
    )
    if plain:
        versus = plain["ratio_plain_fipy_over_adaptive"]
        cut = ", its time per step from a run cut by the budget" if plain["cut_by_budget"] else ""
        record["target"] = (
            f"{'met' if versus >= 10 else 'not met'} ({versus:.1f}x against the plain FiPy"
            f" script{cut})"
        )
    else:
        record["target"] = "undecided (no fixed dt found)"
    record["total_wall_s"] = time.perf_counter() - started
    _common.finish_machine(record)
    name = "vs_fixed_step" + ("_issue2" if args.case == "issue2" else "")
    out = _common.write_results(name + ("_quick" if args.quick else ""), record, args.output)

    print()
    print(markdown(record))
    print(f"\nMachine: {_common.machine_line(record['machine'])}")
    print(f"Results written to {out}")
    return 0


def markdown(record: dict[str, Any]) -> str:
    ad, fx, ref = record["adaptive"], record["fixed"], record["reference"]
    rows: list[tuple[str, str]] = [
        (
            f"Adaptive wall (median of {len(ad['runs'])}; no files written)",
            f"{ad['median_wall_s']:.1f} s",
        ),
        (
            "Adaptive steps accepted / rejected, sweeps",
            f"{ad['steps_accepted']} / {ad['steps_rejected']}, {ad['sweeps']}",
        ),
        ("Adaptive error (largest over frames)", f"{ad['error']:.2e}"),
        (
            f"Reference: rtol {ref['rtol']:g}, {ref['max_temperature_change_K']:g} K per step",
            f"{ref['run']['accepted']} steps" + (" (cached)" if ref["cached"] else ""),
        ),
    ]
    if fx["found"]:
        rows += [
            (
                "Fixed dt at equal accuracy",
                f"{fx['dt_s']:g} s ({fx['steps']} steps, {fx['rejected']} rejected)",
            ),
            ("Fixed error (target)", f"{fx['error']:.2e} ({fx['target_error']:.2e})"),
            (f"Fixed wall (median of {len(fx['walls_s'])})", f"{fx['median_wall_s']:.1f} s"),
            ("**Fixed / adaptive wall time**", f"**{fx['ratio_fixed_over_adaptive']:.1f}**"),
        ]
    elif "smallest_failing_dt_s" in fx:
        rows += [
            ("Fixed dt at equal accuracy", f"below {fx['smallest_failing_dt_s']:g} s"),
            ("**Fixed / adaptive wall time**", f">= {fx['ratio_fixed_over_adaptive']:.1f} (est.)"),
        ]
    else:
        rows += [
            ("Fixed dt at equal accuracy", f"<= {fx['dt_s']:g} s (run cut by the budget)"),
            (
                "**Fixed / adaptive wall time**",
                f">= {fx['ratio_fixed_over_adaptive']:.1f} (estimated {fx['estimated_ratio']:.1f})",
            ),
        ]
    if "extrapolated_ratio" in fx:
        rows += [
            (
                "Extrapolated (error ~ dt, from " + fx["extrapolated_from"] + ")",
                f"dt {fx['extrapolated_dt_s']:g} s, {fx['extrapolated_steps']:.0f} steps x "
                f"{fx['extrapolated_time_per_step_s']:.3f} s = {fx['extrapolated_wall_s']:.0f} s",
            ),
            ("**Fixed / adaptive, extrapolated**", f"**{fx['extrapolated_ratio']:.1f}**"),
        ]
    rows.append(("Step choice alone (both sides assembled directly)", record["stepping_alone"]))
    plain = record.get("plain_fipy") or {}
    if plain:
        rows += [
            (
                "Plain FiPy script (FiPy's terms assemble), fixed dt",
                f"{plain['dt_s']:g} s: {plain['steps_needed']:.0f} steps x "
                f"{plain['time_per_step_s']:.3f} s = {plain['wall_s']:.0f} s"
                + (f" (timed over {plain['steps_run']} steps)" if plain["cut_by_budget"] else ""),
            ),
            (
                "**Plain FiPy fixed steps / cosinter adaptive**",
                f"**{plain['ratio_plain_fipy_over_adaptive']:.1f}**",
            ),
        ]
    rows.append(("Target: fixed / adaptive >= 10", record["target"]))
    scan_rows = [
        (
            f"{s['nominal_dt_s']:g}",
            "screen" if s["screening"] else "whole program",
            "out of time"
            if s["out_of_time"]
            else "failed"
            if s["failed"]
            else "above target"
            if s["aborted"]
            else "passes",
            f"{s['frame_times_s'][-1] if s['frame_times_s'] else 0:g}",
            f"{s['accepted']}",
            f"{s['rejected']}",
            f"{s['wall_s']:.1f}",
            f"{s['error']:.2e}",
        )
        for s in fx["scan"]
    ]
    return "\n".join(
        [
            _common.table(("Quantity", "Value"), rows),
            "",
            "Fixed-step scan:",
            "",
            _common.table(
                (
                    "dt (s)",
                    "Run",
                    "Outcome",
                    "Last frame t (s)",
                    "Steps",
                    "Rejected",
                    "Wall (s)",
                    "Error",
                ),
                scan_rows,
            ),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
