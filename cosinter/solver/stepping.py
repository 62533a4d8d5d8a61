r"""Error-controlled adaptive time stepping under a temperature program.

Backward Euler with a predictor-based local error estimate. With the previous
rate :math:`r_n = (c_n - c_{n-1})/\Delta t_{n-1}` and the predictor
:math:`c^p = c_n + \Delta t\,r_n`, the local error of the implicit step is
estimated as

.. math::

   e = \frac{\Delta t}{\Delta t + \Delta t_{n-1}}\,(c_{n+1} - c^p),\qquad
   \mathrm{err} = \max_{i,\,\mathrm{cells}}
       \frac{|e|}{\mathrm{rtol}\,\max(|c_{n+1}|,\ 10^{-2} c_{\mathrm{ref},i})}

A step is accepted when err <= 1; the next step is scaled by
:math:`0.9\,\mathrm{err}^{-1/2}` within [0.2, 2]. Steps never cross a program
segment boundary or an output time, change T by at most
``max_temperature_change``, and never exceed ``dt_max``. A step that does not
converge, or leaves a negative concentration, is retried at a fifth of the size;
below ``dt_min`` the run stops with :class:`~cosinter.errors.ConvergenceError`.

Output is done by observers (:class:`Observer`), not inside the loop.

Restart: at every frame :class:`StepperState` holds everything the loop carries
from one step to the next (the proposed next step ``dt_next``, the previous step
``prev_dt`` and rate ``prev_rate`` of the error estimate, the index of the next
frame, the counters). :func:`run` with ``resume=`` a state captured at a frame (and
the system restored to that frame's fields) continues exactly as the uninterrupted
loop would have, step for step.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from cosinter.errors import ConvergenceError
from cosinter.models.thermal import TemperatureProgram
from cosinter.solver.equations import TransportSystem

FloatArray = NDArray[np.float64]


@dataclass
class StepStats:
    """Counters of the stepper (cumulative)."""

    accepted: int = 0
    rejected: int = 0
    sweeps: int = 0
    dt_min_used: float = np.inf
    dt_max_used: float = 0.0
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "steps_accepted": self.accepted,
            "steps_rejected": self.rejected,
            "sweeps": self.sweeps,
            "dt_min_s": self.dt_min_used if self.accepted else 0.0,
            "dt_max_s": self.dt_max_used,
            "wall_s": self.wall_s,
        }


@dataclass
class StepperState:
    """What observers see: time, temperature, step size, fields, counters.

    Attributes
    ----------
    t, T, dt
        Simulated time (s), temperature (K) and the last accepted step (s).
    frame
        Number of the last frame taken (-1 before frame 0).
    stats
        Cumulative counters.
    dt_next
        The controller's proposal for the next trial step (s), before the limits
        of :func:`_limit`.
    prev_dt, prev_rate
        The last accepted step (s) and its rate of change per :meth:`state
        <cosinter.solver.equations.TransportSystem.state>` entry (unit/s), used by
        the error estimate; ``None`` before the first step.
    next_frame
        Index of the next frame time (in the sorted frame times, 0 included).

    At a frame (in ``on_frame``) these are exactly what the loop continues from,
    so a state captured there resumes the run bit for bit (see :func:`run`).
    """

    system: TransportSystem
    program: TemperatureProgram
    t: float = 0.0
    T: float = 0.0
    dt: float = 0.0
    frame: int = -1
    stats: StepStats = field(default_factory=StepStats)
    dt_next: float = 0.0
    prev_dt: float | None = None
    prev_rate: dict[str, FloatArray] | None = None
    next_frame: int = 0


class Observer(Protocol):
    """Receives the state at the start, after each accepted step, at frames, at the end."""

    def on_start(self, state: StepperState) -> None: ...

    def on_step(self, state: StepperState) -> None: ...

    def on_frame(self, state: StepperState) -> None: ...

    def on_finish(self, state: StepperState, error: BaseException | None) -> None: ...


@dataclass(frozen=True)
class StepControl:
    """Step-size controls, SI."""

    rtol: float
    max_temperature_change: float
    dt_initial: float
    dt_min: float
    dt_max: float | None = None
    max_sweeps: int = 30
    rtols: Mapping[str, float] = field(default_factory=dict)  # per entry, instead of rtol


def frame_schedule(program: TemperatureProgram, frame_times: Sequence[float]) -> FloatArray:
    """The sorted, distinct frame times of a run (s): 0, ``frame_times`` and the end."""
    end = program.duration
    return np.unique(np.clip(np.concatenate([[0.0, end], np.asarray(frame_times, float)]), 0, end))


def run(
    system: TransportSystem,
    program: TemperatureProgram,
    frame_times: Sequence[float],
    control: StepControl,
    observers: Sequence[Observer] = (),
    resume: StepperState | None = None,
) -> StepperState:
    """Advance ``system`` through ``program``, calling observers.

    Parameters
    ----------
    frame_times
        Times (s) at which frames are taken; 0 and the program's end are added.
    resume
        A state captured in ``on_frame`` of an earlier run of the same case, with
        ``system`` already set to that frame's fields: the loop continues from it
        (no frame is taken again; ``wall_s`` keeps counting from its value). A
        state at the last frame only calls ``on_start`` and ``on_finish``.

    Raises
    ------
    ConvergenceError
        A step failed at ``dt_min``. Observers' ``on_finish`` is called first,
        so finished frames are on disk.
    """
    end = program.duration
    frames = frame_schedule(program, frame_times)
    stops = np.unique(np.concatenate([frames, program.breakpoints]))
    if resume is None:
        state = StepperState(system=system, program=program, T=program.temperature(0.0))
    else:
        state = resume
        state.system, state.program = system, program
    wall0 = time.perf_counter() - state.stats.wall_s
    refs = system.scales()
    error: BaseException | None = None
    for obs in observers:
        obs.on_start(state)
    try:
        system.update_coefficients(state.T)
        if resume is None:
            state.frame += 1
            state.next_frame = 1  # frames[0] is always 0
            state.dt_next = control.dt_initial
            for obs in observers:
                obs.on_frame(state)
        next_frame = state.next_frame
        dt = state.dt_next
        prev_dt = state.prev_dt
        prev_rate = state.prev_rate
        while state.t < end * (1 - 1e-15) and next_frame <= len(frames):
            stop = float(
                stops[np.searchsorted(stops, state.t * (1 + 1e-15) + 1e-300, side="right")]
            )
            dt = _limit(dt, state.t, stop, program, control)
            before = system.state()
            T_new = program.temperature(state.t + dt)
            result = system.step(dt, T_new, control.max_sweeps, 1e-2 * control.rtol)
            state.stats.sweeps += result.sweeps
            err = np.inf
            if result.converged:
                after = system.state()
                err = _error_norm(
                    before, after, prev_rate, dt, prev_dt, control.rtol, refs, control.rtols
                )
            if not result.converged or err > 1.0:
                system.reject()
                state.stats.rejected += 1
                shrink = 0.2 if not result.converged else max(0.2, 0.9 / np.sqrt(err))
                dt *= shrink
                if dt < control.dt_min:
                    what = (
                        "negative concentration"
                        if result.negative
                        else "nonlinear sweeps did not converge"
                        if not result.converged
                        else "local error above rtol"
                    )
                    raise ConvergenceError(
                        f"time step fell below dt_min = {control.dt_min:g} s ({what})",
                        time_s=state.t,
                        temperature_K=state.T,
                        species=result.species,
                    )
                continue
            system.accept(dt)
            prev_rate = {n: (after[n] - before[n]) / dt for n in after}
            prev_dt = dt
            state.t = stop if abs(state.t + dt - stop) <= 1e-12 * max(stop, 1.0) else state.t + dt
            state.T = T_new
            state.dt = dt
            st = state.stats
            st.accepted += 1
            st.dt_min_used = min(st.dt_min_used, dt)
            st.dt_max_used = max(st.dt_max_used, dt)
            st.wall_s = time.perf_counter() - wall0
            # the controller's next proposal, before observers (a frame's checkpoint)
            dt *= min(2.0, 0.9 / np.sqrt(err)) if err > 0 else 2.0
            state.dt_next, state.prev_dt, state.prev_rate = dt, prev_dt, prev_rate
            for obs in observers:
                obs.on_step(state)
            if next_frame < len(frames) and state.t >= frames[next_frame] * (1 - 1e-12):
                state.frame += 1
                next_frame += 1
                state.next_frame = next_frame
                for obs in observers:
                    obs.on_frame(state)
    except BaseException as exc:
        error = exc
        raise
    finally:
        state.stats.wall_s = time.perf_counter() - wall0
        for obs in observers:
            obs.on_finish(state, error)
    return state


def _limit(dt: float, t: float, stop: float, program: TemperatureProgram, c: StepControl) -> float:
    """Apply dt_max, the temperature-change bound and the next stop (no slivers)."""
    if c.dt_max is not None:
        dt = min(dt, c.dt_max)
    rate = abs(program.rate_at(t))
    if rate > 0:
        dt = min(dt, c.max_temperature_change / rate)
    remaining = stop - t
    if dt >= remaining:
        return remaining
    if remaining < 1.5 * dt:
        return 0.5 * remaining  # two even steps instead of a sliver
    return dt


def _error_norm(
    before: dict[str, FloatArray],
    after: dict[str, FloatArray],
    prev_rate: dict[str, FloatArray] | None,
    dt: float,
    prev_dt: float | None,
    rtol: float,
    refs: dict[str, float],
    rtols: Mapping[str, float] | None = None,
) -> float:
    """Predictor-corrector estimate of backward Euler's local error (max norm).

    ``rtols`` replaces ``rtol`` for the entries it names (e.g. ``eta``).
    """
    worst = 0.0
    for name, c_new in after.items():
        c_old = before[name]
        if prev_rate is None or prev_dt is None:
            predicted, weight = c_old, 0.5
        else:
            predicted, weight = c_old + dt * prev_rate[name], dt / (dt + prev_dt)
        tol = rtol if rtols is None else rtols.get(name, rtol)
        scale = tol * np.maximum(np.abs(c_new), 1e-2 * refs[name])
        worst = max(worst, float(np.max(weight * np.abs(c_new - predicted) / scale)))
    return worst
