"""Simulation: case -> materials -> geometry -> per-cell properties -> FiPy -> results.

One explicit pipeline. :class:`Simulation` resolves and validates everything in
its constructor (so a bad case fails before any output is touched); :meth:`run`
steps the program and lets observers write frames, profiles, metrics and
``run.json``.

Restart: after every frame the outputs observer also writes ``checkpoint.npz``
(:mod:`cosinter.results.checkpoint`): the solved fields, the stepper's state and
what the output files accumulate. ``Simulation.run(..., resume=True)`` rebuilds the
system from the case, checks that the case (and the cells it builds) are the ones
the checkpoint was written for, restores the fields and continues the stepper
exactly where it stopped, so a resumed run ends with the same outputs as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cosinter.case import Case, HoldStep, RampStep, StaircaseStep
from cosinter.errors import CaseError, InputError
from cosinter.meshes.microstructure import channel_mask, random_rotations, voronoi_grains
from cosinter.meshes.stack import StackGeometry
from cosinter.models import thermal
from cosinter.models.electrostatics import PoissonSetup, charge_density
from cosinter.models.materials import Material, resolve_case_materials
from cosinter.models.properties import CellProperties, build_cell_properties, layer_rotation
from cosinter.models.reactions import build_chemistry
from cosinter.models.transport import effective_tensors
from cosinter.results.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    case_changes,
    checkpoint_path,
    read_checkpoint,
    sha256_of,
    write_checkpoint,
)
from cosinter.results.interface import (
    Cathode,
    InterfaceLayout,
    OnsetTracker,
    carrier_conductivity,
    interface_metrics,
    interface_names,
    onset_columns,
)
from cosinter.results.metrics import (
    frame_metrics,
    layer_inventories,
    metric_names,
    space_charge_metrics,
    space_charge_names,
)
from cosinter.results.writers import CsvTable, PvdSeries, write_json
from cosinter.solver.equations import TransportSystem
from cosinter.solver.stepping import StepControl, StepperState, StepStats, frame_schedule, run
from cosinter.units import VACUUM_PERMITTIVITY

# --------------------------------------------------------------------------- resolving

#: Guard against ``[output] every`` values that would write millions of frames.
MAX_FRAMES = 100_000


def build_program(case: Case) -> thermal.TemperatureProgram:
    """The temperature program of a case (errors point at the step)."""
    steps: list[thermal.Step] = []
    for index, step in enumerate(case.temperature.steps):
        try:
            if isinstance(step, RampStep):
                steps.append(thermal.Ramp(rate=step.ramp, to=step.to))
            elif isinstance(step, HoldStep):
                steps.append(thermal.Hold(duration=step.hold))
            elif isinstance(step, StaircaseStep):
                s = step.staircase
                steps.append(thermal.Staircase(to=s.to, step=s.step, rate=s.rate, hold=s.hold))
        except ValueError as exc:
            raise CaseError(str(exc), key=f"temperature.steps.{index}") from None
    return thermal.TemperatureProgram(case.temperature.initial, steps)


def build_geometry(case: Case) -> StackGeometry:
    """The stack grid of a case."""
    m = case.mesh
    return StackGeometry(
        thicknesses=tuple(layer.thickness for layer in case.layers),
        cell_size=m.cell_size,
        dimension=m.dimension,
        width=m.width or 0.0,
        lateral_cell_size=(m.lateral_cell_size or m.cell_size) if m.dimension > 1 else 0.0,
        periodic=m.lateral == "periodic",
        refine=(m.refine.cell_size, m.refine.width, m.refine.growth) if m.refine else None,
    )


def layer_rotations(case: Case, materials: Mapping[str, Material]) -> list[np.ndarray]:
    """Crystal -> lab rotation of every layer (errors point at the orientation).

    A grain layer with per-grain orientations (``"random"`` or a list) gets the
    identity here; its cells take their grain's rotation (:func:`grain_rotations`).
    """
    out = []
    for index, layer in enumerate(case.layers):
        o = layer.orientation
        if isinstance(o, str | list):
            out.append(np.eye(3))
            continue
        try:
            out.append(
                layer_rotation(
                    materials[layer.material],
                    o.plane if o else None,
                    o.in_plane if o else 0.0,
                    o.euler if o else None,
                    o.tilt if o else None,
                )
            )
        except ValueError as exc:
            raise CaseError(str(exc), key=f"layers.{index}.orientation") from None
    return out


def build_grains(case: Case, geometry: StackGeometry) -> NDArray[np.int64]:
    """Grain index of every cell from ``[mesh] grains`` (-1 outside the grain layer)."""
    g = case.mesh.grains
    if g is None:
        return np.full(geometry.n_cells, -1, dtype=np.int64)
    return voronoi_grains(
        geometry.cell_centres,
        geometry.cell_layer == g.layer,
        g.count,
        g.seed,
        geometry.width if geometry.periodic else None,
    )


def grain_rotations(case: Case, materials: Mapping[str, Material]) -> np.ndarray | None:
    """Crystal -> lab rotation of every grain, shape (count, 3, 3); None without grains.

    The grain layer's ``orientation``: ``"random"`` draws uniformly random
    rotations (seeded by ``grains.seed``), a list gives one per grain, a single
    table (or none) the same rotation to every grain.
    """
    g = case.mesh.grains
    if g is None:
        return None
    layer = case.layers[g.layer]
    o = layer.orientation
    if o == "random":
        return random_rotations(g.count, g.seed)
    if not isinstance(o, list):
        return np.repeat(layer_rotations(case, materials)[g.layer][None], g.count, axis=0)
    out = []
    for k, item in enumerate(o):
        try:
            out.append(
                layer_rotation(
                    materials[layer.material], item.plane, item.in_plane, item.euler, item.tilt
                )
            )
        except ValueError as exc:
            raise CaseError(str(exc), key=f"layers.{g.layer}.orientation.{k}") from None
    return np.stack(out)


def cell_rotations(
    geometry: StackGeometry,
    per_layer: Sequence[np.ndarray],
    grain: NDArray[np.int64],
    per_grain: np.ndarray | None,
) -> np.ndarray:
    """Crystal -> lab rotation of every cell: its grain's, else its layer's (n, 3, 3)."""
    out = np.stack(per_layer)[geometry.cell_layer]
    if per_grain is not None:
        in_grain = grain >= 0
        out[in_grain] = per_grain[grain[in_grain]]
    return out


def channel_d_factor(case: Case, geometry: StackGeometry) -> np.ndarray:
    """Factor on D0 of every cell: ``channels.D_factor`` in channel cells, else 1.

    Raises
    ------
    CaseError
        A channel line inside the stack's width that holds no cell centre (a
        ``width`` below the lateral cell size), or no line inside the width at all.
    """
    c = case.mesh.channels
    out = np.ones(geometry.n_cells)
    if c is None:
        return out
    centres = geometry.cell_centres
    mask = channel_mask(centres, geometry.cell_layer == c.layer, c.spacing, c.width)
    lines = np.arange(0.5 * c.spacing, geometry.width, c.spacing)
    if lines.size == 0:
        raise CaseError(
            f"the first channel line, at y = spacing/2 = {0.5 * c.spacing:g} m, lies "
            f"outside the mesh width ({geometry.width:g} m); reduce `spacing`",
            key="mesh.channels.spacing",
        )
    y = centres[mask, 1]
    half = 0.5 * c.width * (1.0 + 1e-9)
    if any(not np.any(np.abs(y - line) <= half) for line in lines):
        raise CaseError(
            f"channel width {c.width:g} m is below the lateral cell size "
            f"({geometry.d_lateral:g} m): some channel holds no cell centre; "
            "use a wider channel or finer `lateral_cell_size`",
            key="mesh.channels.width",
        )
    out[mask] = c.D_factor
    return out


def frame_times(case: Case, program: thermal.TemperatureProgram) -> list[float]:
    """Output times from ``[output]`` (the start and end are added by the stepper)."""
    out = case.output
    times: list[float] = []
    if out.every is not None:
        count = program.duration / out.every
        if count > MAX_FRAMES:
            raise CaseError(
                f"every = {out.every:g} s gives {count:.3g} frames over the {program.duration:g} s "
                f"program; at most {MAX_FRAMES} are allowed",
                key="output.every",
            )
        times += list(np.arange(out.every, program.duration, out.every))
    for index, T in enumerate(out.at_temperatures):
        t = program.first_time_at(T)
        if t is None:
            raise CaseError(
                f"the program never reaches {T:.2f} K ({T - 273.15:.1f} degC); it spans "
                f"{program.initial:.2f}-{program.T_max:.2f} K",
                key=f"output.at_temperatures.{index}",
            )
        times.append(t)
    if out.at_step_ends:
        times += list(program.step_end_times())
    return sorted(times)


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """What a finished run returns.

    Attributes
    ----------
    directory
        The run folder.
    metrics
        The last frame's metrics (SI).
    stats
        Solver statistics as in ``run.json``.
    frames
        Number of frames.
    resumed_from
        Frame a resumed run continued from (``None``: the run started at t = 0).
    already_complete
        ``run(..., resume=True)`` found the run finished and did nothing.
    """

    directory: Path
    metrics: dict[str, float]
    stats: dict[str, float | int]
    frames: int
    resumed_from: int | None = None
    already_complete: bool = False


@dataclass
class ResumePoint:
    """Where ``run(..., resume=True)`` continues: a checked checkpoint of a run folder.

    Attributes
    ----------
    checkpoint
        The checkpoint (fields, stepper state, output state).
    frame
        Number of its frame.
    time_s, T_K
        Simulated time (s) and temperature (K) of that frame.
    frames_total
        Number of frames of the whole run.
    complete
        The run is finished: the checkpoint is at the last frame and ``run.json``
        says ``"completed"``.
    """

    checkpoint: Checkpoint
    frame: int
    time_s: float
    T_K: float
    frames_total: int
    complete: bool


# --------------------------------------------------------------------------- checkpoints


def capture_system(system: TransportSystem) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The solved state of a system at an accepted step: arrays and scalars.

    Right after an accepted step (and at t = 0) every variable's old value equals
    its value, so values suffice: ``c/<species>`` (mol/m^3), ``phi`` (V, with
    electrostatics; the next step's Newton start), ``eta`` (-, with an interphase).
    Scalars: the cumulative boundary inflow per species (mol/m^2) and the largest
    inventory drift so far.

    Parameters
    ----------
    system
        The transport system.

    Returns
    -------
    arrays, scalars
        For :func:`restore_system`.
    """
    arrays = {f"c/{name}": np.array(s.var.value, dtype=float) for name, s in system.species.items()}
    phi = system.potential()
    if phi is not None:
        arrays["phi"] = phi
    eta = system.interphase()
    if eta is not None:
        arrays["eta"] = eta
    scalars = {
        "boundary_inflow_mol_m2": {n: s.boundary_inflow for n, s in system.species.items()},
        "max_inventory_drift": system.max_inventory_drift,
    }
    return arrays, scalars


def restore_system(
    system: TransportSystem, arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Any]
) -> None:
    """Set a freshly built system to the state :func:`capture_system` returned.

    Values and old values alike, so the next step starts exactly as it did in the
    run that wrote them.

    Raises
    ------
    InputError
        An array is missing or has the wrong length.
    """
    n = system.geometry.n_cells

    def take(key: str) -> np.ndarray:
        value = arrays.get(key)
        if value is None or value.shape != (n,):
            raise InputError(f"checkpoint: array {key!r} missing or not {n} cells long")
        return np.array(value, dtype=float)

    for name, state in system.species.items():
        state.var.setValue(take(f"c/{name}"))
        state.var.updateOld()
        state.boundary_inflow = float(scalars["boundary_inflow_mol_m2"][name])
    system.max_inventory_drift = float(scalars["max_inventory_drift"])
    if system.phi is not None:
        phi = take("phi")
        system.phi.setValue(phi)
        system._phi_old = phi.copy()
    if system.eta is not None:
        system.eta.setValue(take("eta"))
        system.eta.updateOld()


def interface_layout(sim: Simulation, asr: bool) -> InterfaceLayout:
    """Which layers are cathodes (a material with ``compensation``) and what is solved."""
    cathodes = []
    for layer in sim.case.layers:
        spec = sim.materials[layer.material].compensation
        cathodes.append(
            None if spec is None else Cathode(spec.lithium, spec.vacancy, spec.oxygen_sites)
        )
    return InterfaceLayout(
        cathodes=tuple(cathodes),
        solved=frozenset(sim.case.species),
        interphase=sim.chemistry.interphase is not None,
        asr=asr,
    )


@dataclass
class _Outputs:
    """Observer writing frames, profiles, metrics, onsets.json and run.json."""

    sim: Simulation
    directory: Path
    record: dict[str, Any]
    resume: Checkpoint | None = None
    series: PvdSeries = field(init=False)
    profiles: CsvTable = field(init=False)
    metrics: CsvTable = field(init=False)
    initial_inventory: dict[str, np.ndarray] = field(init=False)
    references: dict[str, float] = field(init=False)
    layout: InterfaceLayout = field(init=False)
    onsets: OnsetTracker = field(init=False)
    last_metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sim = self.sim
        self.directory.mkdir(parents=True, exist_ok=True)
        self.series = PvdSeries(self.directory)
        self.checkpoint_file = checkpoint_path(self.directory)
        self.identity = sim.identity()  # the same for every checkpoint of the run
        self.frames_total = len(sim.frame_schedule())
        names = list(sim.case.species)
        self.poisson = sim.poisson
        extra = ["phi_V"] if self.poisson is not None else []
        if sim.chemistry.interphase is not None:
            extra.append("eta")
        profile_columns = ["frame", "time_s", "T_K", "x_m", *names, *extra]
        self.metric_columns = metric_names(names, len(sim.case.layers))
        self.mobility_species = [n for n, d in sim.props.species.items() if d.has_mobility]
        if self.poisson is not None:
            self.metric_columns += space_charge_names(
                len(sim.case.layers), bool(self.mobility_species)
            )
        self.carriers = [c for c in sim.case.output.carriers if c in sim.case.species]
        self.layout = interface_layout(sim, bool(self.carriers))
        interface_columns = interface_names(self.layout)
        self.metric_columns += interface_columns
        self.onsets = OnsetTracker(
            sim.case.output.onset_thresholds.model_dump(), onset_columns(interface_columns)
        )
        metric_columns = [
            "frame",
            "time_s",
            "T_K",
            *self.metric_columns,
            "steps_accepted",
            "steps_rejected",
            "wall_s",
        ]
        if self.resume is None:
            # a fresh run: an old checkpoint would point at frames removed now
            self.checkpoint_file.unlink(missing_ok=True)
            self.series.clear()
            self.profiles = CsvTable(self.directory / "profiles.csv", profile_columns)
            self.metrics = CsvTable(self.directory / "metrics.csv", metric_columns)
        else:
            self._restore(self.resume, profile_columns, metric_columns)
        self.initial_inventory = {
            sp: layer_inventories(sim.geometry, d.initial) for sp, d in sim.props.species.items()
        }
        fixed = sim.case.boundaries
        self.references = {
            sp: max(
                [float(np.max(d.initial))]
                + [b.fixed[sp] for b in (fixed.left, fixed.right) if sp in b.fixed]
            )
            for sp, d in sim.props.species.items()
        }
        self._write_onsets("running")  # replaces a previous run's file at once

    def _restore(
        self, checkpoint: Checkpoint, profile_columns: list[str], metric_columns: list[str]
    ) -> None:
        """Take over the outputs of the checkpoint's frames; drop anything written after.

        Raises
        ------
        InputError
            A frame or a table of the checkpoint's frames is missing or changed.
        """
        meta = checkpoint.meta
        tables = meta["tables"]
        try:
            self.series.restore(meta["frame_times_s"])
            self.profiles = CsvTable.reopen(
                self.directory / "profiles.csv",
                profile_columns,
                tables["profiles"]["rows"],
                tables["profiles"]["sha256"],
            )
            self.metrics = CsvTable.reopen(
                self.directory / "metrics.csv",
                metric_columns,
                tables["metrics"]["rows"],
                tables["metrics"]["sha256"],
            )
        except (FileNotFoundError, ValueError) as exc:
            raise InputError(
                f"cannot resume in {self.directory}: {exc}; run without --resume to start over"
            ) from None
        onsets = meta["onsets"]
        self.onsets.frames = int(onsets["frames"])
        self.onsets.reference = dict(onsets["reference"])
        self.onsets.onsets = dict(onsets["onsets"])
        self.onsets._last = {k: (v[0], v[1], v[2]) for k, v in onsets["last"].items()}
        self.last_metrics = dict(meta["last_metrics"])
        resumes = [*meta.get("resumes", []), {"frame": meta["frame"], "time_s": meta["time_s"]}]
        self.record["resumes"] = resumes

    def _write_checkpoint(self, state: StepperState) -> None:
        """Write ``checkpoint.npz`` for the frame just completed (see capture_system)."""
        sim = self.sim
        arrays, scalars = capture_system(state.system)
        for name, rate in (state.prev_rate or {}).items():
            arrays[f"rate/{name}"] = rate
        st = state.stats
        segment = sim.program.segment_at(state.t)
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            **self.identity,
            "frame": state.frame,
            "next_frame": state.next_frame,
            "frames_total": self.frames_total,
            "time_s": state.t,
            "T_K": state.T,
            "segment": None if segment is None else segment.index,
            "dt_s": state.dt,
            "dt_next_s": state.dt_next,
            "prev_dt_s": state.prev_dt,
            "stats": {
                "accepted": st.accepted,
                "rejected": st.rejected,
                "sweeps": st.sweeps,
                "dt_min_used": st.dt_min_used,
                "dt_max_used": st.dt_max_used,
                "wall_s": st.wall_s,
            },
            **scalars,
            "frame_times_s": [t for t, _ in self.series.frames],
            "tables": {
                "profiles": {"rows": self.profiles.n_rows, "sha256": self.profiles.digest()},
                "metrics": {"rows": self.metrics.n_rows, "sha256": self.metrics.digest()},
            },
            "onsets": {
                "frames": self.onsets.frames,
                "reference": self.onsets.reference,
                "onsets": self.onsets.onsets,
                "last": self.onsets._last,
            },
            "last_metrics": self.last_metrics,
            "resumes": self.record.get("resumes", []),
        }
        write_checkpoint(self.checkpoint_file, Checkpoint(meta=meta, arrays=arrays))

    def _write_onsets(self, status: str) -> None:
        write_json(self.directory / "onsets.json", self.onsets.as_dict(status))

    def on_start(self, state: StepperState) -> None:
        self.record["status"] = "running"
        write_json(self.directory / "run.json", self.record)

    def on_step(self, state: StepperState) -> None:
        pass

    def on_frame(self, state: StepperState) -> None:
        sim, geometry = self.sim, self.sim.geometry
        values = state.system.values()
        faces = geometry.lateral_faces()
        cell_data: dict[str, np.ndarray] = dict(values)
        phi = state.system.potential()
        if phi is not None and self.poisson is not None:
            cell_data["phi"] = phi
            cell_data["charge_density"] = charge_density(
                values,
                self.poisson.backgrounds,
                {n: d.charge for n, d in sim.props.species.items()},
            )
        cell_data["material"] = sim.props.material.astype(np.int32)
        cell_data["layer"] = sim.props.layer.astype(np.int32)
        eta = state.system.interphase()
        if eta is not None:
            cell_data["eta"] = eta
        if sim.case.mesh.grains is not None:
            cell_data["grain"] = sim.props.grain.astype(np.int32)
        self.series.add_frame(
            state.t,
            state.T,
            geometry.x_faces,
            faces,
            faces if geometry.dimension == 3 else None,
            cell_data,
        )
        x = 0.5 * (geometry.x_faces[1:] + geometry.x_faces[:-1])
        columns = [geometry.column_average(values[sp]) for sp in sim.case.species]
        if phi is not None:
            columns.append(geometry.column_average(phi))
        if eta is not None:
            columns.append(geometry.column_average(eta))
        self.profiles.add_rows(
            [state.frame, state.t, state.T, float(xi), *(float(c[i]) for c in columns)]
            for i, xi in enumerate(x)
        )
        inflow = {n: s.boundary_inflow for n, s in state.system.species.items()}
        m = frame_metrics(
            geometry,
            values,
            {sp: d.initial for sp, d in sim.props.species.items()},
            self.initial_inventory,
            inflow,
            sim.case.output.penetration_threshold,
            self.references,
        )
        if phi is not None and self.poisson is not None:
            m.update(self._space_charge(state, values, phi))
        m.update(
            interface_metrics(
                self.layout,
                geometry,
                m,
                values,
                eta,
                self._measured_conductivity(values, eta) if self.layout.asr else None,
                sim.case.output.asr_half_width,
            )
        )
        self.last_metrics = m
        st = state.stats
        self.metrics.add_rows(
            [
                [
                    state.frame,
                    state.t,
                    state.T,
                    *(m[k] for k in self.metric_columns),
                    st.accepted,
                    st.rejected,
                    st.wall_s,
                ]
            ]
        )
        self.onsets.update(state.frame, state.t, state.T, m)
        self._write_onsets("running")
        # last: the checkpoint marks the frame complete (VTU, PVD, tables, onsets)
        self._write_checkpoint(state)

    def _measured_conductivity(
        self, values: Mapping[str, np.ndarray], eta: np.ndarray | None
    ) -> np.ndarray:
        """Ionic conductivity per cell of the frozen frame at ``[output] measure_at`` (S/m).

        Sum over the carriers of :func:`carrier_conductivity` with the normal entry of
        the effective tensor (interphase and degraded cathode included) and the
        mobility factor, all at the measuring temperature.
        """
        sim = self.sim
        T = sim.case.output.measure_at
        sigma = np.zeros(sim.geometry.n_cells)
        for name in self.carriers:
            data = sim.props.species[name]
            c = np.maximum(values[name], 0.0)
            tensors = effective_tensors(
                data,
                sim.props.rotations,
                T,
                sim.chemistry.interphase,
                eta,
                sim.chemistry.compensations,
                values,
            )
            factor = data.mobility_factor(c, T) if data.has_mobility else None
            sigma += carrier_conductivity(c, data.sites, tensors[:, 0, 0], data.charge, T, factor)
        return sigma

    def _space_charge(
        self, state: StepperState, values: Mapping[str, np.ndarray], phi: np.ndarray
    ) -> dict[str, float]:
        """Space-charge metrics of a frame (see :func:`space_charge_metrics`)."""
        sim, geometry = self.sim, self.sim.geometry
        assert self.poisson is not None
        sigma = np.zeros(geometry.n_cells)
        for name, data in sim.props.species.items():
            if not data.charge:
                continue
            c = np.maximum(values[name], 0.0)
            d_nn = data.tensors(sim.props.rotations, state.T)[:, 0, 0]
            factor = data.mobility_factor(c, state.T) if data.has_mobility else None
            sigma += carrier_conductivity(c, data.sites, d_nn, data.charge, state.T, factor)
        column_sigma = geometry.column_average(sigma)
        with np.errstate(divide="ignore"):
            resistivity = np.where(column_sigma > 0, 1.0 / column_sigma, np.inf)
        mobility = None
        if self.mobility_species:
            data = sim.props.species[self.mobility_species[0]]
            c = np.maximum(values[data.name], 0.0)
            factor = data.mobility_factor(c, state.T)
            if data.mobility_index is not None:  # only where the model applies
                factor = np.where(data.mobility_index >= 0, factor, np.inf)
            mobility = geometry.column_average(factor)
        return space_charge_metrics(
            geometry,
            geometry.column_average(phi),
            geometry.column_average(self.poisson.permittivity),
            resistivity,
            {k: (sheet, pinned) for k, sheet, pinned in self.poisson.sheets},
            mobility,
        )

    def on_finish(self, state: StepperState, error: BaseException | None) -> None:
        self.record["status"] = "completed" if error is None else "failed"
        if error is not None:
            self.record["error"] = f"{type(error).__name__}: {error}"
        stats = state.stats.as_dict()
        stats["frames"] = state.frame + 1
        stats["max_inventory_drift"] = state.system.max_inventory_drift
        stats["final_time_s"] = state.t
        stats["final_T_K"] = state.T
        self.record["solver_statistics"] = stats
        write_json(self.directory / "run.json", self.record)
        self._write_onsets(self.record["status"])


class _Progress:
    """A rich progress bar (simulated time, T, dt) when stdout is a terminal."""

    def __init__(self, duration: float, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console()
        self.enabled = enabled and self.console.is_terminal
        self.duration = duration
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("t = {task.fields[t]}  T = {task.fields[T]}  dt = {task.fields[dt]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.enabled,
        )
        self.task = self.bar.add_task("simulating", total=duration, t="0 s", T="", dt="")

    def on_start(self, state: StepperState) -> None:
        self.bar.start()

    def on_step(self, state: StepperState) -> None:
        self.bar.update(
            self.task,
            completed=state.t,
            t=f"{state.t:.4g} s",
            T=f"{state.T - 273.15:.1f} degC",
            dt=f"{state.dt:.3g} s",
        )

    def on_frame(self, state: StepperState) -> None:
        pass

    def on_finish(self, state: StepperState, error: BaseException | None) -> None:
        self.bar.stop()


# --------------------------------------------------------------------------- simulation


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("cosinter", "fipy", "numpy", "scipy", "pint", "pydantic", "meshio", "pyvista"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


class Simulation:
    """A case resolved into a runnable simulation.

    Parameters
    ----------
    case
        A validated case.
    raw
        The raw TOML data (after overrides), recorded in run.json.
    source
        The case file path, for the record.
    """

    def __init__(self, case: Case, raw: Mapping[str, Any] | None = None, source: str | None = None):
        self.case = case
        self.raw = dict(raw) if raw is not None else case.model_dump(mode="json")
        self.source = source
        self.materials = resolve_case_materials(case)
        self.program = build_program(case)
        self.geometry = build_geometry(case)
        self.rotations = layer_rotations(case, self.materials)
        self.grain_rotations = grain_rotations(case, self.materials)
        grain = build_grains(case, self.geometry)
        self.frame_times = frame_times(case, self.program)
        self.props: CellProperties = build_cell_properties(
            self.geometry.cell_layer,
            [self.materials[layer.material] for layer in case.layers],
            self.rotations,
            {name: sp.charge for name, sp in case.species.items()},
            cell_rotations=cell_rotations(
                self.geometry, self.rotations, grain, self.grain_rotations
            ),
            d_factor=channel_d_factor(case, self.geometry),
            grain=grain,
        )
        self.poisson = self.poisson_setup()
        self.chemistry = build_chemistry(case, self.geometry, self.materials)

    def poisson_setup(self) -> PoissonSetup | None:
        """Poisson's data from ``[electrostatics]``, ``[boundaries]``, ``[[interfaces]]``.

        Raises
        ------
        CaseError
            A layer's material without ``relative_permittivity``.
        """
        case = self.case
        if not case.electrostatics.enabled:
            return None
        eps_r = []
        for index, layer in enumerate(case.layers):
            value = self.materials[layer.material].relative_permittivity
            if value is None:
                raise CaseError(
                    f"electrostatics needs the relative permittivity of material "
                    f"'{layer.material}' (set materials.{layer.material}.relative_permittivity)",
                    key=f"layers.{index}.material",
                )
            eps_r.append(value)
        b = case.boundaries
        return PoissonSetup(
            permittivity=VACUUM_PERMITTIVITY * np.asarray(eps_r)[self.geometry.cell_layer],
            backgrounds={
                name: (d.background if d.background is not None else d.initial)
                for name, d in self.props.species.items()
                if d.charge
            },
            potential={"left": b.left.potential, "right": b.right.potential},
            surface_charge={
                "left": b.left.surface_charge or 0.0,
                "right": b.right.surface_charge or 0.0,
            },
            sheets=tuple((i.after_layer, i.sheet_charge, i.potential) for i in case.interfaces),
        )

    def control(self) -> StepControl:
        s = self.case.solver
        return StepControl(
            rtol=s.rtol,
            max_temperature_change=s.max_temperature_change,
            dt_initial=s.dt_initial,
            dt_min=s.dt_min,
            dt_max=s.dt_max,
            max_sweeps=s.max_sweeps,
            rtols={} if s.interphase_rtol is None else {"eta": s.interphase_rtol},
        )

    def record(self) -> dict[str, Any]:
        """The run.json content (before solver statistics)."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return {
            "case_file": self.source,
            "case": self.raw,
            "case_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "resolved": self.case.model_dump(mode="json"),
            "materials": {
                name: {
                    "base_chain": list(m.base_chain),
                    "species": {
                        sp: {
                            "initial_mol_m3": p.initial,
                            "sites_mol_m3": p.sites,
                            "mu0_J": p.mu0,
                            "D0_m2_s": list(p.D0),
                            "Ea_J": list(p.Ea),
                        }
                        for sp, p in m.species.items()
                    },
                }
                for name, m in self.materials.items()
            },
            "mesh": {
                "cells": self.geometry.n_cells,
                "shape": list(self.geometry.shape),
                "dx_m": sorted({float(v) for v in np.round(self.geometry.dx, 18)}),
            },
            "program_segments": self.program.table(),
            "versions": _versions(),
            "command": sys.argv,
        }

    def frame_schedule(self) -> np.ndarray:
        """The times (s) of all frames of the run, 0 and the end included."""
        return frame_schedule(self.program, self.frame_times)

    def resolved(self) -> dict[str, Any]:
        """What a resumed run must share with the checkpoint's: case and materials (SI).

        ``case`` is the validated case with defaults (SI), ``materials`` the resolved
        parameters of every material in use (library values included), as in
        ``run.json``.
        """
        record = self.record()
        return {"case": record["resolved"], "materials": record["materials"]}

    def cells_sha256(self) -> str:
        """SHA-256 of the per-cell set-up built from the case: faces, layers, grains, rotations.

        Grains and random orientations are drawn from seeded generators when the
        mesh is built; this digest checks that a resumed run rebuilt the same ones.
        """
        h = hashlib.sha256()
        g = self.geometry
        for array in (
            g.x_faces,
            g.cell_layer,
            self.props.grain,
            self.props.rotations,
            self.props.material,
        ):
            a = np.ascontiguousarray(array)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def identity(self) -> dict[str, Any]:
        """What a checkpoint records to recognise its run (compared on resume)."""
        from cosinter import __version__

        resolved = self.resolved()
        return {
            "cosinter_version": __version__,
            "case_sha256": sha256_of(resolved),
            "resolved": resolved,
            "case": self.raw,
            "cells_sha256": self.cells_sha256(),
        }

    def checkpoint_status(self, directory: str | Path | None = None) -> ResumePoint | None:
        """The checked checkpoint of a run folder, or ``None`` if it has none.

        Parameters
        ----------
        directory
            Run folder (default: the case's output folder).

        Returns
        -------
        ResumePoint or None
            Where ``run(..., resume=True)`` would continue.

        Raises
        ------
        CaseError
            The case (or the materials it resolves to) differs from the one the
            checkpoint was written for; the message lists every changed key.
        InputError
            Not a readable checkpoint, another cosinter version, or cells that
            differ although the case does not (another NumPy/SciPy draws other
            grains).
        """
        out_dir = Path(directory) if directory is not None else self.case.output_directory()
        checkpoint = read_checkpoint(checkpoint_path(out_dir))
        if checkpoint is None:
            return None
        meta = checkpoint.meta
        mine = self.identity()
        where = checkpoint_path(out_dir)
        if meta.get("case_sha256") != mine["case_sha256"]:
            old, new = meta.get("resolved", {}), mine["resolved"]
            changes = case_changes(
                old.get("case", {}), new["case"], meta.get("case"), mine["case"]
            ) + [
                f"materials.{line} (resolved material parameters)"
                for line in case_changes(old.get("materials", {}), new["materials"])
            ]
            shown = changes[:20] + (
                [f"... and {len(changes) - 20} more"] if len(changes) > 20 else []
            )
            raise CaseError(
                f"the case differs from the one the run in {out_dir} was started with, so it "
                f"cannot resume; changed: {'; '.join(shown) or 'unknown'}. Resume with the "
                "original case, or run without --resume to start over (replacing the "
                "folder's outputs)",
                file=self.source,
            )
        if meta.get("cosinter_version") != mine["cosinter_version"]:
            raise InputError(
                f"{where} was written by cosinter {meta.get('cosinter_version')}, this is "
                f"{mine['cosinter_version']}: a resumed run would not match; run without "
                "--resume to start over"
            )
        if meta.get("cells_sha256") != mine["cells_sha256"]:
            raise InputError(
                f"{where}: the cells built from the unchanged case differ from the "
                "checkpoint's (grains or orientations drawn differently, e.g. by another "
                "NumPy or SciPy); run without --resume to start over"
            )
        total = len(self.frame_schedule())
        if meta.get("frames_total") != total:
            raise InputError(f"{where}: frame count differs; run without --resume to start over")
        done = meta["next_frame"] >= total
        if done:
            try:
                status = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))["status"]
            except (OSError, ValueError, KeyError, TypeError):
                status = None
            done = status == "completed"
        return ResumePoint(
            checkpoint=checkpoint,
            frame=checkpoint.frame,
            time_s=float(meta["time_s"]),
            T_K=float(meta["T_K"]),
            frames_total=total,
            complete=done,
        )

    def transport_system(
        self, solver: str = "scipy", reference_assembly: bool = False, resuming: bool = False
    ) -> TransportSystem:
        """The case's system at t = 0 (what :meth:`run` steps; benchmarks reuse it).

        ``reference_assembly``: matrices by FiPy's terms (the tested reference of
        :mod:`cosinter.solver.assembly`). ``resuming``: the state comes from a
        checkpoint (:func:`restore_system`), so the initial potential is not solved.
        """
        return TransportSystem(
            self.geometry,
            self.props,
            {
                "left": dict(self.case.boundaries.left.fixed),
                "right": dict(self.case.boundaries.right.fixed),
            },
            self.poisson,
            self.chemistry,
            backend=solver,
            reference_assembly=reference_assembly,
            initial_potential=not resuming,
        )

    def run(
        self,
        directory: str | Path | None = None,
        progress: bool = True,
        resume: bool = False,
        solver: str = "scipy",
    ) -> Result:
        """Run the program and write all outputs into ``directory``.

        Parameters
        ----------
        directory
            Run folder (default: the case's output folder).
        progress
            Show a progress bar on a terminal.
        resume
            Continue from the folder's checkpoint (:meth:`checkpoint_status`); a
            finished run is left as it is (``Result.already_complete``). Without a
            checkpoint the run starts at t = 0, as without ``resume``.
        solver
            Linear-solver back end (:data:`~cosinter.solver.equations.SOLVER_BACKENDS`):
            ``"scipy"`` (default, holds closed inventories exactly) or ``"petsc"``.

        Raises
        ------
        CaseError
            ``resume`` with a case that differs from the checkpoint's.
        InputError
            ``resume`` with a checkpoint that cannot be continued.
        """
        out_dir = Path(directory) if directory is not None else self.case.output_directory()
        point = self.checkpoint_status(out_dir) if resume else None
        if point is not None and point.complete:
            meta = point.checkpoint.meta
            stats = _stats_from(meta).as_dict()
            return Result(
                directory=out_dir,
                metrics=dict(meta["last_metrics"]),
                stats=stats,
                frames=point.frame + 1,
                resumed_from=point.frame,
                already_complete=True,
            )
        system = self.transport_system(solver, resuming=point is not None)
        start = None
        if point is not None:
            meta, arrays = point.checkpoint.meta, point.checkpoint.arrays
            restore_system(system, arrays, meta)
            rates = {k[len("rate/") :]: v for k, v in arrays.items() if k.startswith("rate/")}
            start = StepperState(
                system=system,
                program=self.program,
                t=float(meta["time_s"]),
                T=float(meta["T_K"]),
                dt=float(meta["dt_s"]),
                frame=int(meta["frame"]),
                stats=_stats_from(meta),
                dt_next=float(meta["dt_next_s"]),
                prev_dt=None if meta["prev_dt_s"] is None else float(meta["prev_dt_s"]),
                prev_rate=rates or None,
                next_frame=int(meta["next_frame"]),
            )
        record = self.record()
        record["linear_solver"] = {"backend": solver, "mpi_ranks": system.solver.ranks}
        if solver == "petsc":
            # what PETSc and MUMPS were told (e.g. out of core): the run's provenance
            record["linear_solver"]["petsc_options"] = os.environ.get("PETSC_OPTIONS", "")
        outputs = _Outputs(self, out_dir, record, None if point is None else point.checkpoint)
        observers: Sequence[Any] = (outputs, _Progress(self.program.duration, progress))
        state = run(system, self.program, self.frame_times, self.control(), observers, resume=start)
        stats = state.stats.as_dict()
        return Result(
            directory=out_dir,
            metrics=outputs.last_metrics,
            stats=stats,
            frames=state.frame + 1,
            resumed_from=None if point is None else point.frame,
        )


def _stats_from(meta: Mapping[str, Any]) -> StepStats:
    """The stepper's counters stored in a checkpoint."""
    s = meta["stats"]
    return StepStats(
        accepted=int(s["accepted"]),
        rejected=int(s["rejected"]),
        sweeps=int(s["sweeps"]),
        dt_min_used=float(s["dt_min_used"]),
        dt_max_used=float(s["dt_max_used"]),
        wall_s=float(s["wall_s"]),
    )
