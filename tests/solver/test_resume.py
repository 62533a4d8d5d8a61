"""Restart of long runs: kill a run between frames, ``--resume``, compare with an
uninterrupted run (issue 5, part 2).

The comparisons are exact: a resumed run restores the fields and the adaptive
stepper's state bit for bit, so every output except wall times and the command
line is identical to the uninterrupted run's.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import meshio
import numpy as np
import pytest

import cosinter
from cosinter.case import validate_case
from cosinter.cli import main
from cosinter.errors import CaseError, InputError
from cosinter.results.checkpoint import CHECKPOINT_NAME, read_checkpoint
from cosinter.solver import simulation
from cosinter.solver.equations import TransportSystem
from cosinter.solver.simulation import Simulation

REPO = Path(__file__).resolve().parents[2]

# 1D NCM111(104) | LLTO, 20 cells: Li, Ti, VO (oxygen release) and the interphase;
# 350 -> 500 degC and a hold, a frame every 15 s: 29 frames, ~100 steps (a few s)
CASE_TOML = """\
[case]
name = "resume_1d"

[mesh]
dimension = 1
cell_size = "2 nm"

[[layers]]
material = "NCM111"
thickness = "20 nm"
orientation = { plane = [1, 0, 4] }

[[layers]]
material = "LLTO"
thickness = "20 nm"

[species.Li]
charge = 1

[species.Ti]
[species.VO]

[interphase]
enabled = true

[temperature]
initial = "350 degC"

[[temperature.steps]]
ramp = "50 K/min"
to = "500 degC"

[[temperature.steps]]
hold = "4 min"

[output]
every = "15 s"

[solver]
rtol = 3e-2
max_temperature_change = "25 K"
"""
FRAMES = 29


# --------------------------------------------------------------------------- helpers


def read_vtu(path: Path) -> dict[str, np.ndarray]:
    mesh = meshio.read(path)
    return {name: np.asarray(data[0]) for name, data in mesh.cell_data.items()}


def metrics_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_same_outputs(reference: Path, resumed: Path) -> None:
    """Every output of two run folders agrees, bit for bit, except wall times."""
    frames = sorted(p.name for p in (reference / "fields").glob("*.vtu"))
    assert frames == sorted(p.name for p in (resumed / "fields").glob("*.vtu"))
    assert not list((resumed / "fields").glob(".*")), "temporary files left behind"
    for name in frames:
        a, b = read_vtu(reference / "fields" / name), read_vtu(resumed / "fields" / name)
        assert a.keys() == b.keys(), name
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
        # the files themselves too (field data time_s, T_K included)
        assert (reference / "fields" / name).read_bytes() == (
            resumed / "fields" / name
        ).read_bytes(), name
    assert (reference / "fields.pvd").read_text() == (resumed / "fields.pvd").read_text()
    assert (reference / "profiles.csv").read_text() == (resumed / "profiles.csv").read_text()
    ref_onsets = json.loads((reference / "onsets.json").read_text())
    assert ref_onsets == json.loads((resumed / "onsets.json").read_text())
    assert ref_onsets["status"] == "completed"
    rows_a, rows_b = metrics_rows(reference / "metrics.csv"), metrics_rows(resumed / "metrics.csv")
    assert len(rows_a) == len(rows_b) == len(frames)
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            if key != "wall_s":  # wall times differ between any two runs
                assert row_a[key] == row_b[key], (row_a["frame"], key)
    run_a = json.loads((reference / "run.json").read_text())
    run_b = json.loads((resumed / "run.json").read_text())
    assert run_a["status"] == run_b["status"] == "completed"
    for key in ("case", "case_sha256", "resolved", "materials", "mesh", "program_segments"):
        assert run_a[key] == run_b[key], key
    stats_a, stats_b = run_a["solver_statistics"], run_b["solver_statistics"]
    assert stats_a.pop("wall_s") > 0 and stats_b.pop("wall_s") > 0
    assert stats_a == stats_b  # steps accepted / rejected, sweeps, dt range, drift
    # the final checkpoints hold the same fields and stepper state
    ck_a, ck_b = (
        read_checkpoint(reference / CHECKPOINT_NAME),
        read_checkpoint(resumed / CHECKPOINT_NAME),
    )
    assert ck_a is not None and ck_b is not None
    assert ck_a.arrays.keys() == ck_b.arrays.keys()
    for key in ck_a.arrays:
        np.testing.assert_array_equal(ck_a.arrays[key], ck_b.arrays[key], err_msg=key)
    for key in ("time_s", "T_K", "dt_next_s", "prev_dt_s", "boundary_inflow_mol_m2", "onsets"):
        assert ck_a.meta[key] == ck_b.meta[key], key


def checkpoint_frame(directory: Path) -> int:
    try:
        checkpoint = read_checkpoint(directory / CHECKPOINT_NAME)
    except InputError:
        return -1
    return -1 if checkpoint is None else checkpoint.frame


def kill_between_frames(case: Path, out: Path, at_frame: int, *extra: str) -> int:
    """Start ``python -m cosinter run`` and SIGKILL it once frame ``at_frame`` is complete.

    Returns the frame of the checkpoint left behind.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "cosinter", "run", str(case), "-o", str(out), "--quiet", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while checkpoint_frame(out) < at_frame:
            assert proc.poll() is None, f"the run ended before frame {at_frame}: {proc.stderr}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed"
    frame = checkpoint_frame(out)
    assert at_frame <= frame < FRAMES - 1
    return frame


@pytest.fixture(scope="module")
def case_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("case") / "resume_1d.toml"
    path.write_text(CASE_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(case_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The uninterrupted run (started with --resume into an empty folder: a fresh run)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    code = main(["run", str(case_file), "-o", str(out), "--quiet", "--resume"])
    assert code == 0
    yield out


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- the CLI


def test_killed_run_resumes_to_identical_outputs(
    case_file: Path, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    frame = kill_between_frames(case_file, out, at_frame=2)
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["status"] == "running"  # killed from outside
    before = (out / CHECKPOINT_NAME).read_bytes()

    # a changed case refuses, names the key, and touches nothing
    code, _, err = cli(
        capsys, "run", case_file, "-o", out, "--resume", "--set", "temperature.steps.0.to=480 degC"
    )
    assert code == 2
    assert "temperature.steps.0.to: 500 degC -> 480 degC" in err
    assert "cannot resume" in err and str(case_file) in err
    assert (out / CHECKPOINT_NAME).read_bytes() == before

    code, _, err = cli(capsys, "run", case_file, "-o", out, "--resume")
    assert code == 0, err
    assert f"resuming from frame {frame} of {FRAMES - 1}" in err
    assert_same_outputs(reference, out)
    record = json.loads((out / "run.json").read_text())
    assert [r["frame"] for r in record["resumes"]] == [frame]
    assert "resumes" not in json.loads((reference / "run.json").read_text())


def test_fresh_run_with_resume_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "fresh.toml"
    case.write_text(
        '[case]\nname = "fresh"\n[mesh]\ndimension = 1\ncell_size = "2 nm"\n'
        '[[layers]]\nmaterial = "LLTO"\nthickness = "10 nm"\n[species.Li]\ncharge = 1\n'
        '[temperature]\ninitial = "25 degC"\n[[temperature.steps]]\nhold = "1 s"\n',
        encoding="utf-8",
    )
    code, _, err = cli(capsys, "run", case, "-o", tmp_path / "out", "--resume")
    assert code == 0
    assert "no checkpoint to resume from; starting at t = 0" in err
    assert (tmp_path / "out" / CHECKPOINT_NAME).is_file()


def test_completed_run_with_resume_does_nothing(
    case_file: Path, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "done"
    shutil.copytree(reference, out)
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    code, stdout, _ = cli(capsys, "run", case_file, "-o", out, "--resume")
    assert code == 0
    assert f"the run is complete ({FRAMES} frames); nothing to do" in stdout
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after == stamps


def test_changed_case_file_refuses_naming_the_keys(
    case_file: Path, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "done"
    shutil.copytree(reference, out)
    changed = tmp_path / "changed.toml"
    changed.write_text(
        CASE_TOML.replace('hold = "4 min"', 'hold = "5 min"').replace("rtol = 3e-2", "rtol = 1e-2"),
        encoding="utf-8",
    )
    code, _, err = cli(capsys, "run", changed, "-o", out, "--resume")
    assert code == 2
    assert "temperature.steps.1.hold: 4 min -> 5 min (SI: 240.0 -> 300.0)" in err
    assert "solver.rtol: 0.03 -> 0.01" in err
    assert str(changed) in err
    # written differently, resolving to the same values: the same case
    same = tmp_path / "same.toml"
    same.write_text(CASE_TOML.replace('hold = "4 min"', 'hold = "240 s"'), encoding="utf-8")
    code, stdout, _ = cli(capsys, "run", same, "-o", out, "--resume")
    assert code == 0
    assert "nothing to do" in stdout


def test_other_cosinter_version_refuses(
    case_file: Path, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "done"
    shutil.copytree(reference, out)
    monkeypatch.setattr(cosinter, "__version__", "99.0")
    sim = Simulation(*_load(case_file))
    with pytest.raises(InputError, match=r"written by cosinter 0\.1\.0, this is 99\.0"):
        sim.checkpoint_status(out)


def _load(path: Path) -> tuple[Any, Any]:
    from cosinter.case import load_case

    return load_case(path, [])


# --------------------------------------------------------------------------- Python API


def interrupt_after(monkeypatch: pytest.MonkeyPatch, frame: int) -> None:
    """Make the run stop right after the checkpoint of ``frame`` (as a kill would)."""
    write = simulation.write_checkpoint

    def write_then_stop(path: Any, checkpoint: Any) -> None:
        write(path, checkpoint)
        if checkpoint.frame >= frame:
            raise KeyboardInterrupt

    monkeypatch.setattr(simulation, "write_checkpoint", write_then_stop)


def test_grains_survive_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2D, random per-grain orientations (rotated tensors, swept cross terms)."""
    raw = {
        "case": {"name": "grains"},
        "mesh": {
            "dimension": 2,
            "cell_size": "2 nm",
            "width": "6 nm",
            "grains": {"layer": 0, "count": 3, "seed": 4},
        },
        "layers": [
            {"material": "NCM111", "thickness": "12 nm", "orientation": "random"},
            {"material": "LLTO", "thickness": "8 nm"},
        ],
        "species": {"Li": {"charge": 1}},
        "temperature": {"initial": "250 degC", "steps": [{"ramp": "50 K/min", "to": "350 degC"}]},
        "output": {"every": "20 s"},
        "solver": {"rtol": 3e-2},
    }
    case = validate_case(raw)
    reference = Simulation(case, raw).run(tmp_path / "reference", progress=False)
    assert reference.frames == 7
    interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        Simulation(case, raw).run(tmp_path / "resumed", progress=False)
    monkeypatch.undo()
    sim = Simulation(case, raw)
    point = sim.checkpoint_status(tmp_path / "resumed")
    assert point is not None and point.frame == 2 and not point.complete
    result = sim.run(tmp_path / "resumed", progress=False, resume=True)
    assert result.resumed_from == 2 and result.frames == 7
    assert result.metrics == reference.metrics
    assert_same_outputs(tmp_path / "reference", tmp_path / "resumed")
    grain = read_vtu(tmp_path / "resumed" / "fields" / "frame_0006.vtu")["grain"]
    assert set(np.unique(grain)) == {-1, 0, 1, 2}
    again = sim.run(tmp_path / "resumed", progress=False, resume=True)
    assert again.already_complete and again.frames == 7


def test_potential_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With electrostatics the potential (Newton's start) is restored too."""
    raw = {
        "case": {"name": "space_charge"},
        "mesh": {"dimension": 1, "cell_size": "1 nm"},
        "layers": [
            {"material": "NCM111", "thickness": "10 nm", "orientation": {"plane": [1, 0, 4]}},
            {"material": "LLTO", "thickness": "10 nm"},
        ],
        "species": {"Li": {"charge": 1}},
        "electrostatics": {"enabled": True},
        "temperature": {"initial": "200 degC", "steps": [{"ramp": "50 K/min", "to": "300 degC"}]},
        "output": {"every": "20 s"},
        "solver": {"rtol": 1e-2, "dt_initial": "1e-9 s"},
    }
    case = validate_case(raw)
    Simulation(case, raw).run(tmp_path / "reference", progress=False)
    interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        Simulation(case, raw).run(tmp_path / "resumed", progress=False)
    monkeypatch.undo()
    assert json.loads((tmp_path / "resumed" / "run.json").read_text())["status"] == "failed"

    def not_on_resume(self: Any) -> None:
        raise AssertionError("the checkpoint holds the potential: no initial solve")

    # one LU less at set-up (a large one at 10^6 cells)
    monkeypatch.setattr(TransportSystem, "_initial_potential", not_on_resume)
    result = Simulation(case, raw).run(tmp_path / "resumed", progress=False, resume=True)
    assert result.resumed_from == 3
    assert_same_outputs(tmp_path / "reference", tmp_path / "resumed")
    checkpoint = read_checkpoint(tmp_path / "resumed" / CHECKPOINT_NAME)
    assert checkpoint is not None and "phi" in checkpoint.arrays


def test_changed_case_raises_case_error_in_the_api(tmp_path: Path) -> None:
    raw: dict[str, Any] = {
        "case": {"name": "api"},
        "mesh": {"dimension": 1, "cell_size": "2 nm"},
        "layers": [{"material": "LLTO", "thickness": "10 nm"}],
        "species": {"Li": {"charge": 1}},
        "temperature": {"initial": "25 degC", "steps": [{"hold": "1 s"}]},
    }
    Simulation(validate_case(raw), raw).run(tmp_path, progress=False)
    raw["layers"][0]["thickness"] = "12 nm"
    with pytest.raises(CaseError, match=r"layers\.0\.thickness: 10 nm -> 12 nm"):
        Simulation(validate_case(raw), raw).run(tmp_path, progress=False, resume=True)
    # without resume the folder is simply replaced (unchanged behaviour)
    result = Simulation(validate_case(raw), raw).run(tmp_path, progress=False)
    assert result.resumed_from is None
