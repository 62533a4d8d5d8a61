"""Issue 4 calibration: the NCM(104) and NCM(003) | LLTO cases against PHYSICS.md.

Both cases run in full from the CLI (in parallel, one per core, ~2 min), with the
library as shipped: one parameter set. Each target of ``docs/validation/targets.toml``
that reads only these two cases is a test; the same evaluator builds the
validation report.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from cosinter.results.validation import RunData, Target, evaluate, load_targets

ROOT = Path(__file__).resolve().parents[2]
CASES = ("lee2024_ncm104", "lee2024_ncm003")
TARGETS = [t for t in load_targets() if set(t.cases) <= set(CASES)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunData]:
    out = tmp_path_factory.mktemp("lee2024")
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cosinter",
                "run",
                str(ROOT / "cases" / f"{name}.toml"),
                "-o",
                str(out / name),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in CASES
    }
    for name, proc in procs.items():
        log, _ = proc.communicate(timeout=1800)
        assert proc.returncode == 0, f"{name} failed:\n{log[-3000:]}"
    return {name: RunData.read(out / name) for name in CASES}


def test_every_target_of_the_two_cases_is_checked() -> None:
    """The targets file holds all nine rows of issue 4 for these cases."""
    assert {t.id for t in TARGETS} == {
        "li_onset_104",
        "li_onset_003",
        "ti_depth_104_450",
        "ti_depth_003_700",
        "asr_onset_104",
        "asr_onset_003",
        "asr_passivation_104",
        "asr_rising_003",
        "vo_contrast_700",
    }


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
def test_calibration_target(target: Target, runs: dict[str, RunData]) -> None:
    outcome = evaluate(target, runs)
    assert outcome.passed, (
        f"{outcome.target.id}: model {outcome.text}, window {outcome.target.window()} "
        f"(observed: {outcome.target.observed})"
    )


def test_open_interface_transfers_li_before_the_closed_one(runs: dict[str, RunData]) -> None:
    """Li migration precedes degradation by ~300 degC in both (PHYSICS.md mechanism 5)."""
    for name in CASES:
        li = runs[name].onset("li_transferred_mol_m2")
        asr = runs[name].onset("asr_ohm_m2")
        assert li is not None and asr is not None
        assert 150.0 <= asr - li <= 450.0, (name, li, asr)


def _column(run: RunData, name: str) -> list[float]:
    return [float(row[name]) for row in run.rows]


def test_the_interphase_never_shrinks(runs: dict[str, RunData]) -> None:
    """The interphase is a reaction product: eta does not revert (measured monotone)."""
    for name in CASES:
        thickness = _column(runs[name], "interphase_thickness_m")
        assert all(b >= a for a, b in itertools.pairwise(thickness)), name


def test_the_open_interface_passivates_cation_transport(runs: dict[str, RunData]) -> None:
    """NCM(104): once the interphase has formed (450 degC), Ti hardly enters any more.

    Measured: 5.68e-6 mol/m^2 of Ti in NCM at 450 degC, 6.01e-6 at 700 degC (+6 %),
    while 250 degC more would let 10x more in through open NCM (D ~ e^-1.65 eV/kT).
    """
    run = runs["lee2024_ncm104"]
    at_450 = run.at("inventory_Ti_layer0", 450.0)
    assert at_450 > 0
    assert run.at("inventory_Ti_layer0", 700.0) <= 1.2 * at_450
