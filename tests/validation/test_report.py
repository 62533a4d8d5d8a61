"""The validation report's page builder (docs/validation/build.py) on hand-made outcomes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from cosinter.results.validation import Outcome, load_targets

BUILD = Path(__file__).resolve().parents[2] / "docs" / "validation" / "build.py"


def _build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validation_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rst_table_has_one_item_per_cell() -> None:
    text = _build().rst_table(["a", "b"], [["1", "2"], ["3", "4"]], "T")
    assert text.splitlines()[0] == ".. list-table:: T"
    assert text.count("   * - ") == 3 and text.count("     - ") == 3


def test_targets_table_says_met_missed_and_not_run() -> None:
    targets = load_targets()[:3]
    outcomes = [
        Outcome(targets[0], 64.0, "64 degC", True),
        Outcome(targets[1], 219.0, "219 degC", False),
        None,
    ]
    text = _build().targets_table(outcomes, targets)
    assert "     - met" in text and "**MISSED**" in text and "     - not run" in text
