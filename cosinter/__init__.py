"""cosinter: transport across cathode | coating | solid-electrolyte stacks under co-sintering.

Public API::

    from cosinter import load_case, run
    case, raw = load_case("cases/demo_ncm104_llto.toml", ["layers.0.thickness=40 nm"])
    result = run(case, "results/demo")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosinter.case import Case, load_case
from cosinter.errors import CaseError, ConvergenceError, CosinterError, InputError, MaterialError

__version__ = "0.1.0"


def run(
    case: Case, directory: str | Path | None = None, *, raw: Any = None, progress: bool = False
) -> Any:
    """Run a validated case; returns :class:`cosinter.solver.simulation.Result`."""
    from cosinter.solver.simulation import Simulation

    return Simulation(case, raw).run(directory, progress=progress)


__all__ = [
    "Case",
    "CaseError",
    "ConvergenceError",
    "CosinterError",
    "InputError",
    "MaterialError",
    "load_case",
    "run",
]
