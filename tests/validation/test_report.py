"""The validation report builder (docs/validation/build.py) on hand-made runs: no solver."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cosinter.results.validation import Outcome, RunData, load_targets

BUILD = Path(__file__).resolve().parents[2] / "docs" / "validation" / "build.py"
METRIC_NAMES = (
    "li_transferred_mol_m2",
    "ti_depth_m",
    "la_depth_m",
    "vo_max",
    "interphase_thickness_m",
    "asr_ohm_m2",
)


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validation_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["validation_build"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def fake_run(
    temps: list[float], asr: list[float], suffixes: tuple[str, ...] = ("", "_i0")
) -> RunData:
    """A RunData with one frame per temperature (degC) and simple metric values."""
    rows = []
    for frame, (T, a) in enumerate(zip(temps, asr, strict=True)):
        row = {"frame": str(frame), "time_s": str(100.0 * frame), "T_K": str(T + 273.15)}
        for suffix in suffixes:
            row |= {
                f"li_transferred_mol_m2{suffix}": str(1e-5 * frame),
                f"ti_depth_m{suffix}": str(1e-9 * frame),
                f"la_depth_m{suffix}": str(0.5e-9 * frame),
                f"vo_max{suffix}": str(1e-6 * frame),
                f"interphase_thickness_m{suffix}": str(0.2e-9 * frame),
                f"asr_ohm_m2{suffix}": str(a),
            }
        rows.append(row)
    onsets: dict[str, Any] = {f"{m}{s}": None for m in METRIC_NAMES for s in suffixes}
    onsets["li_transferred_mol_m2"] = {"T_degC": 101.4, "T_K": 374.55}
    return RunData(rows, {"status": "completed", "onsets": onsets})


def test_rst_table_has_one_item_per_cell(build: ModuleType) -> None:
    text = build.rst_table(["a", "b"], [["1", "2"], ["3", ""]], "T", widths=[1, 2])
    lines = text.splitlines()
    assert lines[0] == ".. list-table:: T" and "   :widths: 1 2" in lines
    assert text.count("   * - ") == 3 and text.count("     - ") == 3
    assert "     - \\ " in lines  # an empty cell stays a cell
    with pytest.raises(ValueError, match="cells"):
        build.rst_table(["a", "b"], [["1"]])


def test_rst_escape_neutralises_inline_markup(build: ModuleType) -> None:
    assert build.rst_escape("vo_max(003) | *x* `y`") == r"vo\_max(003) \| \*x\* \`y\`"


def test_targets_table_and_misses_say_met_missed_and_not_run(build: ModuleType) -> None:
    targets = load_targets()[:4]
    results = [
        Outcome(targets[0], 64.0, "64 degC", True),
        Outcome(targets[1], 219.0, "219 degC", False),
        None,
        "error: no frame at 700 degC",
    ]
    table = build.targets_table(targets, results)
    cells = [line.strip() for line in table.splitlines()]
    assert cells.count("- met") == 1
    assert cells.count("- **MISSED**") == 1 and cells.count("- **MISSED** (error)") == 1
    assert cells.count("- not run") == 2  # model and verdict of the target not run
    text = "\n".join(build.misses_text(targets, results))
    assert "**1 of 4 targets met** (3 evaluated, 1 not run)" in text
    assert f"``{targets[1].id}``" in text and "219 degC" in text
    assert f"``{targets[3].id}``" in text and "no frame at 700 degC" in text
    assert f"Not evaluated (a case has no completed run): ``{targets[2].id}``" in text


def test_stale_reason_compares_status_case_resolved_and_materials(build: ModuleType) -> None:
    fresh = {"case_sha256": "abc", "resolved": {"a": [1, 2]}, "materials": {"M": {"x": 1}}}
    same = dict(fresh, status="completed", resolved={"a": (1, 2)})  # as JSON reads back
    assert build.stale_reason(same, fresh) is None
    assert "running" in build.stale_reason(dict(same, status="running"), fresh)
    assert "case file" in build.stale_reason(dict(same, case_sha256="x"), fresh)
    assert "default" in build.stale_reason(dict(same, resolved={"a": [1, 3]}), fresh)
    assert "library" in build.stale_reason(dict(same, materials={"M": {"x": 2}}), fresh)


def test_up_to_date_without_a_run(build: ModuleType, tmp_path: Path) -> None:
    assert build.up_to_date(tmp_path, tmp_path / "missing.toml") == "no run yet"


def test_metric_columns_skip_copies_of_the_cathode_interface(build: ModuleType) -> None:
    one = fake_run([25.0, 100.0], [1.0, 2.0])
    assert build.metric_columns(one.rows[0], one.rows, "asr_ohm_m2") == [("asr_ohm_m2", "")]
    coated = fake_run([25.0, 100.0], [1.0, 2.0], ("", "_i0", "_i1"))
    for row in coated.rows:
        row["asr_ohm_m2_i1"] = "7.0"
    assert build.metric_columns(coated.rows[0], coated.rows, "asr_ohm_m2") == [
        ("asr_ohm_m2", "cathode interface"),
        ("asr_ohm_m2_i1", "interface i1"),
    ]
    bare = fake_run([25.0], [1.0], ("_i0", "_i1"))
    assert [c for c, _ in build.metric_columns(bare.rows[0], bare.rows, "vo_max")] == [
        "vo_max_i0",
        "vo_max_i1",
    ]


def test_case_table_has_start_key_temperatures_final_and_onset(build: ModuleType) -> None:
    run = fake_run([25.0, 100.0, 450.0, 700.0, 700.0], [10.0, 5.0, 20.0, 30.0, float("inf")])
    text = build.case_table(run)
    assert "start (25 °C)" in text and "final (700 °C)" in text
    assert "     - 100 °C" in text and "     - 450 °C" in text and "     - 700 °C" in text
    assert "400 °C" not in text and "600 °C" not in text  # no frame there
    lines = text.splitlines()
    li = lines.index("   * - ``li_transferred_mol_m2``")
    # unit, start, 100, 450, 700 (first frame at 700), final, onset
    assert [c.strip("- ").strip() for c in lines[li + 1 : li + 8]] == [
        "mol/m²",
        "0",
        "1e-05",
        "2e-05",
        "3e-05",
        "4e-05",
        "101",
    ]
    ti = lines.index("   * - ``ti_depth_m``")
    assert lines[ti + 1].endswith("nm") and lines[ti + 4].endswith("- 2")  # 2e-9 m at 450
    asr = lines.index("   * - ``asr_ohm_m2``")
    assert lines[asr + 6].endswith("- inf") and lines[asr + 7].endswith("- none")


def test_wang_order(build: ModuleType) -> None:
    def runs(asr350: float, asr450: float, asr550: float) -> dict[str, RunData]:
        return {
            f"wang2020_lnto_{k}": fake_run([25.0, 25.0], [a, a], ("_i0", "_i1"))
            for k, a in (("350", asr350), ("450", asr450), ("550", asr550))
        }

    assert "**met**" in build.wang_order(runs(2.0, 1.0, 3.0))
    assert "**MISSED**" in build.wang_order(runs(1.0, 2.0, 3.0))
    assert build.wang_order({}) is None


def test_page_from_fake_runs(build: ModuleType, tmp_path: Path) -> None:
    """Two lee2024 runs, a failed one, and the rest missing: figures drawn, text honest."""
    temps = [25.0, *range(50, 701, 50), 700.0]
    open_asr = [1.0] * 8 + [2.0] * 8  # onset between 400 and 450
    closed_asr = [1.0] * 11 + [2.0, 3.0, 4.0, 5.0, 6.0]
    runs = []
    for case in build.EXPECTED:
        run = build.CaseRun(case, tmp_path / f"{case}.toml", tmp_path / case)
        if case == build.OPEN:
            run.status, run.data = "completed", fake_run(temps, open_asr)
            run.record = {
                "solver_statistics": {"wall_s": 44.8, "steps_accepted": 8, "steps_rejected": 1}
            }
        elif case == build.CLOSED:
            run.status, run.data = "completed", fake_run(temps, closed_asr)
        elif case == "lee2024_ncm003_lto":
            run.status, run.error, run.action = "failed", "cosinter: bad | thing", "ran"
        elif case == "lee2024_composite":
            run.case_file, run.status, run.note = None, "no case file", "no such file"
        runs.append(run)
    figures = tmp_path / "figures"
    page = build.build_page(runs, figures=figures)
    assert sorted(p.name for p in figures.iterdir()) == [
        "asr_vs_T.png",
        "interphase_vs_T.png",
        "vo_vs_T.png",
    ]  # cation profiles need profiles.csv: reported as not drawn, no crash
    assert "Not drawn: FileNotFoundError" in page
    assert "``lee2024_ncm003_lto`` failed::\n\n   cosinter: bad | thing" in page
    assert "Not run (no such file)." in page
    assert "``lee2024_composite``: not run." in page
    assert page.count("**MISSED**") >= 1 and "targets met**" in page
    assert "Not run: ``wang2020_lnto_350``" in page
    assert "     - 44.8" in page
