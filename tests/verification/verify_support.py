"""Helpers for verification runs: solve a case (or hand-built fields) without writing files."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosinter.case import validate_case
from cosinter.models.properties import CellProperties, SpeciesCellData
from cosinter.solver.equations import TransportSystem
from cosinter.solver.simulation import Simulation
from cosinter.solver.stepping import StepperState, run


def base_case(**sections: Any) -> dict[str, Any]:
    """A minimal valid case dict; keyword arguments replace whole sections."""
    case: dict[str, Any] = {
        "case": {"name": "verification"},
        "mesh": {"dimension": 1, "cell_size": "1 nm"},
        "species": {"X": {"charge": 0}},
        "temperature": {"initial": "600 K", "steps": [{"hold": "100 s"}]},
    }
    case.update(sections)
    return case


def solve(raw: dict[str, Any]) -> tuple[Simulation, TransportSystem, StepperState]:
    """Validate and run a case in memory; returns the simulation, system and final state."""
    sim = Simulation(validate_case(raw), raw)
    fixed = {
        "left": dict(sim.case.boundaries.left.fixed),
        "right": dict(sim.case.boundaries.right.fixed),
    }
    system = TransportSystem(sim.geometry, sim.props, fixed, sim.poisson)
    state = run(system, sim.program, sim.frame_times, sim.control())
    return sim, system, state


def observed_order(h: np.ndarray, err: np.ndarray) -> float:
    """Least-squares slope of log(err) against log(h)."""
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


def single_material_props(
    initial: np.ndarray, principal_D: np.ndarray, rotation: np.ndarray | None = None
) -> CellProperties:
    """Per-cell properties of one dilute species X in one material (Ea = 0)."""
    n = len(initial)
    species = SpeciesCellData(
        name="X",
        charge=0,
        initial=initial,
        sites=np.full(n, np.inf),
        mu0=np.zeros(n),
        D0=np.tile(principal_D, (n, 1)),
        Ea=np.zeros((n, 3)),
    )
    return CellProperties(
        layer=np.zeros(n, dtype=np.int64),
        material=np.zeros(n, dtype=np.int64),
        material_names=("A",),
        rotations=np.tile(np.eye(3) if rotation is None else rotation, (n, 1, 1)),
        species={"X": species},
    )
