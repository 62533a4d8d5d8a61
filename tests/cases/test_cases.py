"""Every shipped case file validates and runs (shortened by --set where needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosinter.cli import main

CASES = sorted((Path(__file__).parents[2] / "cases").glob("*.toml"))

#: Overrides that keep each case under a few seconds in the test suite.
SHORTEN: dict[str, list[str]] = {
    "demo_ncm104_llto": ["temperature.steps.0.staircase.to=300 degC", "output.at_temperatures=[]"],
    "demo_ncm003_llto": ["temperature.steps.0.staircase.to=300 degC", "output.at_temperatures=[]"],
}


def test_there_are_cases() -> None:
    assert {p.stem for p in CASES} >= {"demo_ncm104_llto", "demo_ncm003_llto"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_runs(path: Path, tmp_path: Path) -> None:
    args = ["run", str(path), "-o", str(tmp_path), "--quiet"]
    for override in SHORTEN.get(path.stem, []):
        args += ["--set", override]
    assert main(args) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "completed"
    assert (tmp_path / "fields.pvd").exists()
    assert record["solver_statistics"]["steps_accepted"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_runs_in_full(path: Path, tmp_path: Path) -> None:
    assert main(["run", str(path), "-o", str(tmp_path), "--quiet"]) == 0
