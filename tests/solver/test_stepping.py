"""The step controller's error norm: per-entry tolerances."""

from __future__ import annotations

import numpy as np
import pytest

from cosinter.case import validate_case
from cosinter.solver.stepping import _error_norm


def test_interphase_rtol_scales_only_eta() -> None:
    before = {"Li": np.array([1.0, 1.0]), "eta": np.array([0.5, 0.5])}
    after = {"Li": np.array([1.0, 1.0]), "eta": np.array([0.5, 0.6])}  # only eta moved
    refs = {"Li": 1.0, "eta": 1.0}
    base = _error_norm(before, after, None, 1.0, None, 1e-3, refs)
    loose = _error_norm(before, after, None, 1.0, None, 1e-3, refs, {"eta": 1e-2})
    assert loose == pytest.approx(base / 10.0)
    # a species' error is untouched by eta's tolerance
    after_li = {"Li": np.array([1.0, 1.1]), "eta": np.array([0.5, 0.5])}
    assert _error_norm(before, after_li, None, 1.0, None, 1e-3, refs, {"eta": 1e-2}) == (
        pytest.approx(_error_norm(before, after_li, None, 1.0, None, 1e-3, refs))
    )


def test_interphase_rtol_reaches_the_step_control() -> None:
    from cosinter.solver.simulation import Simulation

    raw = {
        "case": {"name": "t"},
        "mesh": {"dimension": 1, "cell_size": "1 nm"},
        "layers": [{"material": "NCM111", "thickness": "10 nm"}],
        "species": {"Li": {}},
        "temperature": {"initial": "25 degC", "steps": [{"hold": "1 s"}]},
        "solver": {"interphase_rtol": 0.02},
    }
    sim = Simulation(validate_case(raw), raw)
    assert sim.control().rtols == {"eta": 0.02}
    raw["solver"] = {}
    assert Simulation(validate_case(raw), raw).control().rtols == {}
