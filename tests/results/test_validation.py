"""The calibration-target evaluator on hand-made runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosinter.results.validation import (
    RunData,
    Target,
    evaluate,
    load_targets,
)


def run(values: dict[float, float], onset: float | None = None) -> RunData:
    rows = [{"T_K": str(T + 273.15), "m": str(v)} for T, v in values.items()]
    entry = None if onset is None else {"T_degC": onset, "T_K": onset + 273.15}
    return RunData(rows, {"onsets": {"m": entry}})


def target(**kw: object) -> Target:
    base: dict[str, object] = {
        "id": "t",
        "row": "r",
        "observed": "o",
        "case": "a",
        "metric": "m",
    }
    return Target(**{**base, **kw})  # type: ignore[arg-type]


def test_onset_inside_and_outside_the_window() -> None:
    t = target(kind="onset", low=350.0, high=450.0)
    assert evaluate(t, {"a": run({25.0: 1.0}, 400.0)}).passed
    assert not evaluate(t, {"a": run({25.0: 1.0}, 460.0)}).passed
    never = evaluate(t, {"a": run({25.0: 1.0}, None)})
    assert not never.passed and never.text == "never"


def test_value_at_the_first_frame_at_a_temperature() -> None:
    t = target(kind="at", T=450.0, scale=1e9, unit="nm", low=4.0, high=9.0)
    out = evaluate(t, {"a": run({400.0: 1e-9, 450.0: 6e-9, 450.001: 20e-9})})
    assert out.value == pytest.approx(6.0) and out.passed


def test_ratio_rising_and_contrast() -> None:
    data = {"a": run({450.0: 2.0, 500.0: 1.0, 600.0: 3.0, 700.0: 2.9})}
    ratio = evaluate(target(kind="ratio", T_a=700.0, T_b=450.0, high=1.5), data)
    assert ratio.value == pytest.approx(1.45) and ratio.passed
    assert not evaluate(target(kind="rising", T=[500.0, 600.0, 700.0]), data).passed
    assert evaluate(target(kind="rising", T=[500.0, 600.0]), data).passed
    contrast = target(kind="contrast", other="b", T=700.0, low=5.0)
    assert evaluate(contrast, {**data, "b": run({700.0: 0.5})}).passed  # 5.8x
    assert not evaluate(contrast, {**data, "b": run({700.0: 1.0})}).passed


def test_the_shipped_targets_load(tmp_path: Path) -> None:
    targets = load_targets()
    assert len(targets) == len({t.id for t in targets}) >= 9
    bad = tmp_path / "t.toml"
    bad.write_text('[[target]]\nid = "x"\nkind = "median"\n')
    with pytest.raises(ValueError, match="kind"):
        load_targets(bad)
