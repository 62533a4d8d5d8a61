r"""Temperature programs: ramps, holds and staircases -> piecewise-linear :math:`T(t)`.

A program starts at ``initial`` (K) at :math:`t = 0` and runs through the user's
steps in order. Each step expands into one or more :class:`Segment` objects, each a
linear ramp or a hold:

.. math::

    T(t) = T_\mathrm{start} + r\,(t - t_\mathrm{start}), \qquad
    t_\mathrm{start} \le t \le t_\mathrm{end}, \qquad
    r = \frac{T_\mathrm{end} - T_\mathrm{start}}{t_\mathrm{end} - t_\mathrm{start}}

(:math:`r = 0` for a hold). :math:`T(t)` is continuous; before :math:`t = 0` it is the
initial temperature and after the end the final one. The solver must not step across
a segment boundary (:attr:`TemperatureProgram.breakpoints`) because :math:`dT/dt`
jumps there.

Step kinds
----------
* :class:`Ramp` -- heat or cool at :math:`|r|` to a target (direction from the target).
* :class:`Hold` -- constant temperature for a duration.
* :class:`Staircase` -- the in-situ XRD protocol: ramp by ``step`` at ``rate``, hold
  ``hold``, repeat until ``to``; the last ramp is shortened to land exactly on ``to``
  and is followed by a hold as well. Goes downward if ``to`` is below the current T.

Everything is SI: temperatures in K, times in s, rates in K/s. Bad input raises
:class:`ValueError` (callers turn it into a case error).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "Hold",
    "Ramp",
    "Segment",
    "Staircase",
    "Step",
    "TemperatureProgram",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]

#: Temperature differences below this (K) count as zero: a ramp to (almost) the current
#: T makes no segment, and a staircase remainder this small merges into the last step
#: instead of adding a sliver of a ramp.
_T_TOL: Final = 1e-9


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _positive(name: str, value: float, unit: str) -> None:
    _require(math.isfinite(value) and value > 0.0, f"{name} must be > 0 {unit}, got {value}")


@dataclass(frozen=True)
class Ramp:
    """Heat or cool at ``rate`` to the temperature ``to``.

    Parameters
    ----------
    rate
        Magnitude of the rate (K/s), > 0; the sign follows from ``to`` versus the
        current temperature.
    to
        Target temperature (K), > 0.
    """

    rate: float
    to: float

    def __post_init__(self) -> None:
        _positive("ramp rate", self.rate, "K/s")
        _positive("ramp target temperature 'to'", self.to, "K")


@dataclass(frozen=True)
class Hold:
    """Keep the current temperature for ``duration`` seconds (>= 0; 0 makes no segment)."""

    duration: float

    def __post_init__(self) -> None:
        _require(
            math.isfinite(self.duration) and self.duration >= 0.0,
            f"hold duration must be >= 0 s, got {self.duration}",
        )


@dataclass(frozen=True)
class Staircase:
    r"""Ramp by ``step`` at ``rate``, hold ``hold``, repeat until ``to`` (in-situ XRD protocol).

    From the current temperature :math:`T_0` the stair targets are

    .. math::

        T_k = T_0 + k\,\Delta T\,\operatorname{sign}(T_\mathrm{to} - T_0),
        \quad k = 1, \dots, N - 1, \qquad T_N = T_\mathrm{to},
        \qquad N = \left\lceil |T_\mathrm{to} - T_0| / \Delta T \right\rceil,

    each reached at ``rate`` and followed by a hold of ``hold`` seconds (the last
    one included). A remainder below 1e-9 K is merged into the last stair.

    Parameters
    ----------
    to
        Final temperature (K), > 0.
    step
        Stair height :math:`\Delta T` (K), > 0.
    rate
        Ramp rate magnitude (K/s), > 0.
    hold
        Hold after each stair (s), >= 0.
    """

    to: float
    step: float
    rate: float
    hold: float

    def __post_init__(self) -> None:
        _positive("staircase target temperature 'to'", self.to, "K")
        _positive("staircase step", self.step, "K")
        _positive("staircase rate", self.rate, "K/s")
        _require(
            math.isfinite(self.hold) and self.hold >= 0.0,
            f"staircase hold must be >= 0 s, got {self.hold}",
        )


Step: TypeAlias = Ramp | Hold | Staircase


@dataclass(frozen=True)
class Segment:
    """One linear piece of a temperature program.

    Parameters
    ----------
    index
        Position in the expanded segment list.
    step
        Index of the user's ``[[temperature.steps]]`` entry it came from.
    kind
        ``"ramp"`` or ``"hold"``.
    t_start, t_end
        Start and end times (s), ``t_end > t_start``.
    T_start, T_end
        Temperatures (K) at the start and the end (equal for holds).
    """

    index: int
    step: int
    kind: Literal["ramp", "hold"]
    t_start: float
    t_end: float
    T_start: float
    T_end: float

    @property
    def duration(self) -> float:
        """Length of the segment (s)."""
        return self.t_end - self.t_start

    @property
    def rate(self) -> float:
        """Signed heating rate dT/dt (K/s); 0 for holds, negative when cooling."""
        if self.kind == "hold":
            return 0.0
        return (self.T_end - self.T_start) / (self.t_end - self.t_start)

    @overload
    def temperature(self, t: float) -> float: ...
    @overload
    def temperature(self, t: npt.NDArray[Any]) -> FloatArray: ...

    def temperature(self, t: float | npt.NDArray[Any]) -> float | FloatArray:
        """Temperature (K) at time(s) ``t`` (s), linear in the segment, clipped to its ends."""
        # np.interp clamps outside [t_start, t_end] and is exact at both ends.
        times = np.array([self.t_start, self.t_end])
        T = np.interp(np.asarray(t, dtype=np.float64), times, [self.T_start, self.T_end])
        return float(T) if np.ndim(T) == 0 else np.asarray(T, dtype=np.float64)


class TemperatureProgram:
    """A temperature program: initial temperature plus ramps, holds and staircases.

    Parameters
    ----------
    initial
        Temperature at :math:`t = 0` (K), > 0.
    steps
        The user's steps in order.

    Raises
    ------
    ValueError
        Non-positive initial temperature, or a step that is not a :class:`Ramp`,
        :class:`Hold` or :class:`Staircase` (the step classes validate their own
        rates, temperatures and durations).

    Examples
    --------
    25 degC to 850 degC in 50 K stairs at 10 K/min with 1 h holds:

    >>> p = TemperatureProgram(298.15, [Staircase(to=1123.15, step=50, rate=10 / 60, hold=3600)])
    >>> len(p.segments), p.duration, p.temperature(p.duration)
    (34, 66150.0, 1123.15)
    """

    def __init__(self, initial: float, steps: Sequence[Step]) -> None:
        _positive("initial temperature", initial, "K")
        self._initial = float(initial)
        segments: list[Segment] = []
        step_ends: list[float] = []
        t, T = 0.0, self._initial

        def add(step: int, kind: Literal["ramp", "hold"], duration: float, T_end: float) -> None:
            nonlocal t, T
            segments.append(Segment(len(segments), step, kind, t, t + duration, T, T_end))
            t, T = t + duration, T_end

        def ramp(step: int, rate: float, to: float) -> None:
            nonlocal T
            if abs(to - T) <= _T_TOL:
                T = to  # no segment; snap so later steps start from the exact target
            else:
                add(step, "ramp", abs(to - T) / rate, to)

        for i, spec in enumerate(steps):
            if isinstance(spec, Ramp):
                ramp(i, spec.rate, spec.to)
            elif isinstance(spec, Hold):
                if spec.duration > 0.0:
                    add(i, "hold", spec.duration, T)
            elif isinstance(spec, Staircase):
                for target in self._stairs(T, spec.to, spec.step):
                    ramp(i, spec.rate, target)
                    if spec.hold > 0.0:
                        add(i, "hold", spec.hold, T)
            else:
                raise ValueError(
                    f"temperature step {i} must be a Ramp, Hold or Staircase, "
                    f"got {type(spec).__name__}"
                )
            step_ends.append(t)

        self._segments = tuple(segments)
        self._step_ends = tuple(step_ends)
        # Knots of the piecewise-linear T(t); times are strictly increasing because
        # every segment has a positive duration.
        self._knot_t = np.array([0.0, *(s.t_end for s in segments)], dtype=np.float64)
        self._knot_T = np.array([self._initial, *(s.T_end for s in segments)], dtype=np.float64)
        self._starts = [s.t_start for s in segments]

    @staticmethod
    def _stairs(T0: float, to: float, step: float) -> list[float]:
        """Stair targets from ``T0`` to ``to``; the last one is exactly ``to``."""
        span = abs(to - T0)
        if span <= _T_TOL:
            return []
        sign = 1.0 if to > T0 else -1.0
        # Round-off in e.g. 298.15 + 16 * 50 must not create a 1e-13 K extra stair.
        n = max(1, math.ceil((span - _T_TOL) / step))
        return [T0 + sign * k * step for k in range(1, n)] + [to]

    # -- description -------------------------------------------------------------------

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The expanded ramps and holds, in time order."""
        return self._segments

    @property
    def initial(self) -> float:
        """Temperature at t = 0 (K)."""
        return self._initial

    @property
    def final(self) -> float:
        """Temperature at the end of the program (K)."""
        return float(self._knot_T[-1])

    @property
    def duration(self) -> float:
        """Total length of the program (s); 0 if it has no segments."""
        return float(self._knot_t[-1])

    @property
    def T_max(self) -> float:  # noqa: N802 - physics symbol, part of the public API
        """Highest temperature reached (K)."""
        return float(self._knot_T.max())

    @property
    def breakpoints(self) -> FloatArray:
        """Sorted unique segment start and end times (s), including 0 and the end."""
        return np.unique(self._knot_t)

    def step_end_times(self) -> tuple[float, ...]:
        """Time (s) at the end of each user step, in step order.

        A step that makes no segment (e.g. a ramp to the current temperature) ends
        when the previous one does.
        """
        return self._step_ends

    def table(self) -> list[dict[str, float | int | str]]:
        """One row per segment, for printing (SI units in the key names)."""
        return [
            {
                "segment": s.index,
                "step": s.step,
                "kind": s.kind,
                "t_start_s": s.t_start,
                "t_end_s": s.t_end,
                "T_start_K": s.T_start,
                "T_end_K": s.T_end,
                "rate_K_per_s": s.rate,
            }
            for s in self._segments
        ]

    def __repr__(self) -> str:
        return (
            f"TemperatureProgram(initial={self._initial} K, {len(self._segments)} segments, "
            f"duration={self.duration} s, T_max={self.T_max} K)"
        )

    # -- evaluation --------------------------------------------------------------------

    @overload
    def temperature(self, t: float) -> float: ...
    @overload
    def temperature(self, t: npt.NDArray[Any]) -> FloatArray: ...

    def temperature(self, t: float | npt.NDArray[Any]) -> float | FloatArray:
        """Temperature (K) at time(s) ``t`` (s).

        Vectorised over arrays. ``t < 0`` gives the initial and ``t`` past the end
        the final temperature; exact at every breakpoint.
        """
        T = np.interp(np.asarray(t, dtype=np.float64), self._knot_t, self._knot_T)
        return float(T) if np.ndim(T) == 0 else np.asarray(T, dtype=np.float64)

    def segment_at(self, t: float) -> Segment | None:
        """The segment with ``t_start <= t < t_end``.

        At a boundary this is the segment that starts there. ``None`` before 0, at or
        after the end, or if the program has no segments.
        """
        if not self._segments or not 0.0 <= t < self.duration:
            return None
        return self._segments[bisect.bisect_right(self._starts, t) - 1]

    def rate_at(self, t: float) -> float:
        """dT/dt (K/s) at ``t``, right-continuous at boundaries; 0 outside the program."""
        segment = self.segment_at(t)
        return 0.0 if segment is None else segment.rate

    def first_time_at(self, T: float) -> float | None:
        r"""First time (s) at which the program reaches temperature ``T`` (K).

        The initial temperature counts at :math:`t = 0`. Within a ramp the time is
        solved linearly, :math:`t = t_\mathrm{start} + (T - T_\mathrm{start}) / r`.
        Temperatures within 1e-9 K of a segment's range count as reached.

        Returns
        -------
        float or None
            The time, or ``None`` if the program never reaches ``T``.
        """
        if abs(T - self._initial) <= _T_TOL:
            return 0.0
        for s in self._segments:
            low, high = min(s.T_start, s.T_end), max(s.T_start, s.T_end)
            if low - _T_TOL <= T <= high + _T_TOL:
                if s.kind == "hold":
                    return s.t_start
                t = s.t_start + (T - s.T_start) / s.rate
                return min(max(t, s.t_start), s.t_end)
        return None
