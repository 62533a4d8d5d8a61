"""Tests of checkpoint files (store, load, compare cases) and of the writers' resume
support (a PVD series and CSV tables taken over after a kill)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cosinter.errors import InputError
from cosinter.results.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    case_changes,
    checkpoint_path,
    flatten,
    read_checkpoint,
    sha256_of,
    write_checkpoint,
)
from cosinter.results.writers import CsvTable, PvdSeries

X = np.array([0.0, 1e-9, 3e-9])


def test_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"c/Li": rng.random(7) * 4e4, "eta": np.array([0.0, -0.0, 1e-300, 1.0, 5e-324])}
    meta = {
        "format": 1,
        "frame": 3,
        "time_s": 0.1 + 0.2,  # not a short decimal: repr must round-trip
        "dt_min_used": math.inf,
        "prev_dt_s": None,
        "nested": {"a": [1, 2.5, "x"], "b": (1, 2)},
    }
    path = checkpoint_path(tmp_path)
    assert path.name == CHECKPOINT_NAME
    write_checkpoint(path, Checkpoint(meta=meta, arrays=arrays))
    back = read_checkpoint(path)
    assert back is not None
    assert back.frame == 3
    assert back.meta["time_s"] == 0.1 + 0.2
    assert back.meta["dt_min_used"] == math.inf
    assert back.meta["nested"] == {"a": [1, 2.5, "x"], "b": [1, 2]}
    assert back.arrays.keys() == arrays.keys()
    for key, value in arrays.items():
        assert back.arrays[key].tobytes() == value.tobytes()
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temporaries


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path / CHECKPOINT_NAME) is None
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable cosinter checkpoint"):
        read_checkpoint(bad)
    other = tmp_path / "other.npz"
    write_checkpoint(other, Checkpoint(meta={"format": 999}))
    with pytest.raises(InputError, match="checkpoint layout 999"):
        read_checkpoint(other)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(2))  # an npz without meta
    with pytest.raises(InputError):
        read_checkpoint(plain)


def test_hash_ignores_key_order_not_values() -> None:
    assert sha256_of({"a": 1, "b": [1.0, 2.0]}) == sha256_of({"b": [1.0, 2.0], "a": 1})
    assert sha256_of({"a": 1.0}) != sha256_of({"a": 1.0 + 1e-15})


def test_flatten() -> None:
    assert flatten({"a": {"b": [1, {"c": 2}], "d": {}, "e": []}}) == {
        "a.b.0": 1,
        "a.b.1.c": 2,
        "a.d": {},
        "a.e": [],
    }


def test_case_changes_name_keys_with_units_as_written() -> None:
    old = {"temperature": {"steps": [{"ramp": 0.5, "to": 973.15}]}, "solver": {"rtol": 1e-3}}
    new = {"temperature": {"steps": [{"ramp": 0.5, "to": 923.15}]}, "solver": {"rtol": 1e-3}}
    old_raw = {"temperature": {"steps": [{"ramp": "30 K/min", "to": "700 degC"}]}}
    new_raw = {"temperature": {"steps": [{"ramp": "30 K/min", "to": "650 degC"}]}}
    assert case_changes(old, new, old_raw, new_raw) == [
        "temperature.steps.0.to: 700 degC -> 650 degC (SI: 973.15 -> 923.15)"
    ]
    assert case_changes(old, new) == ["temperature.steps.0.to: 973.15 -> 923.15"]
    # a default made explicit, or a value written in other units: no change
    assert case_changes(old, old, old_raw, {"temperature": {"steps": [{"to": "973.15 K"}]}}) == []
    # added and removed entries
    grown = {**new, "output": {"at_temperatures": [400.0]}}
    assert case_changes(new, grown) == ["output.at_temperatures.0: (absent) -> 400.0"]
    assert case_changes({"x": [1, 2]}, {"x": [1]}) == ["x.1: 2 -> (absent)"]
    assert case_changes({"x": None}, {"x": "a"}) == ["x: null -> a"]


# --------------------------------------------------------------------------- writers


def test_pvd_series_restore_drops_later_frames(tmp_path: Path) -> None:
    series = PvdSeries(tmp_path)
    for t in (0.0, 1.5, 3.0):
        series.add_frame(t, 300.0, X, None, None, {"Li": np.array([1.0, 2.0])})
    # a kill after frame 2's VTU but before its checkpoint: the checkpoint knows two frames
    (series.frame_dir / ".frame_0003.abc.vtu").write_text("partial")
    again = PvdSeries(tmp_path)
    again.restore([0.0, 1.5])
    assert sorted(p.name for p in again.frame_dir.iterdir()) == ["frame_0000.vtu", "frame_0001.vtu"]
    fresh = PvdSeries(tmp_path / "fresh")
    for t in (0.0, 1.5):
        fresh.add_frame(t, 300.0, X, None, None, {"Li": np.array([1.0, 2.0])})
    pvd_after_two = fresh.pvd_path.read_text()
    assert again.pvd_path.read_text() == pvd_after_two
    # the next frame continues the numbering
    assert again.add_frame(4.0, 300.0, X, None, None, {"Li": np.zeros(2)}).name == "frame_0002.vtu"
    with pytest.raises(FileNotFoundError, match=r"frame_0003\.vtu: frame missing"):
        PvdSeries(tmp_path).restore([0.0] * 6)


def test_csv_table_reopen_keeps_checked_rows(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    table = CsvTable(path, ["frame", "value"])
    table.add_rows([[0, 0.1], [1, 0.2]])
    rows, digest = table.n_rows, table.digest()
    table.add_rows([[2, 0.3]])  # written after the checkpoint
    reopened = CsvTable.reopen(path, ["frame", "value"], rows, digest)
    assert path.read_text() == "frame,value\n0,0.1\n1,0.2\n"
    assert reopened.digest() == digest
    reopened.add_rows([[2, 0.4]])
    straight = CsvTable(tmp_path / "straight.csv", ["frame", "value"])
    straight.add_rows([[0, 0.1], [1, 0.2], [2, 0.4]])
    assert reopened.digest() == straight.digest()
    assert path.read_text() == straight.path.read_text()


def test_csv_table_reopen_refuses_changed_files(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    table = CsvTable(path, ["frame", "value"])
    table.add_rows([[0, 0.1], [1, 0.2]])
    digest = table.digest()
    with pytest.raises(ValueError, match="header"):
        CsvTable.reopen(path, ["frame", "other"], 2, digest)
    with pytest.raises(ValueError, match="expected at least 3"):
        CsvTable.reopen(path, ["frame", "value"], 3, digest)
    path.write_text("frame,value\n0,0.1\n1,0.25\n")
    with pytest.raises(ValueError, match="changed"):
        CsvTable.reopen(path, ["frame", "value"], 2, digest)
    with pytest.raises(ValueError, match="missing"):
        CsvTable.reopen(tmp_path / "none.csv", ["frame", "value"], 0, digest)
