"""Tests of cosinter.sweep: expansion, validation, failure isolation, resume, Dask.

Every point is a tiny 1D case (4 nm | 4 nm, a 2.5 s ramp to 150 degC): about a
second of solver time.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cosinter.cli import main
from cosinter.errors import CaseError
from cosinter.sweep import load_sweep, run_sweep, toml_value

BASE = """\
[case]
name = "tiny"

[mesh]
cell_size = "1 nm"

[[layers]]
material = "NCM111"
thickness = "4 nm"
orientation = { plane = [1, 0, 4] }

[[layers]]
material = "LLTO"
thickness = "4 nm"

[species.Li]
charge = 1

[temperature]
initial = "25 degC"

[[temperature.steps]]
ramp = "50 K/s"
to = "150 degC"

[output]
at_temperatures = ["100 degC"]

[solver]
max_temperature_change = "25 K"
"""

#: Four points: tilt x final temperature.
FOUR = """\
base = "base.toml"
combine = "product"

[axes]
"layers.0.orientation" = { tilt = ["0 deg", "90 deg"] }
"temperature.steps.0.to" = ["120 degC", "150 degC"]

[summary]
at = ["100 degC"]
"""


def write(folder: Path, sweep: str, base: str = BASE, name: str = "sweep.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.toml").write_text(base, encoding="utf-8")
    path = folder / name
    path.write_text(sweep, encoding="utf-8")
    return path


def table(directory: Path, drop: tuple[str, ...] = ("wall_s",)) -> list[dict[str, str]]:
    with (directory / "sweep.csv").open(newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def manifest(directory: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((directory / "manifest.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four-point sweep, run once locally with two workers."""
    folder = tmp_path_factory.mktemp("reference")
    path = write(folder, FOUR)
    assert main(["sweep", str(path), "-o", str(folder / "out"), "--workers", "2", "--quiet"]) == 0
    return folder / "out"


# --------------------------------------------------------------------------- expansion


def test_product_expands_in_axis_order(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, FOUR), validate=False)
    assert [p.id for p in sweep.points] == ["p000", "p001", "p002", "p003"]
    assert [sweep.parameters(p) for p in sweep.points][1] == {
        "layers.0.orientation": "0 deg",
        "temperature.steps.0.to": "150 degC",
    }
    assert sweep.overrides(sweep.points[2]) == [
        'layers.0.orientation={ tilt = "90 deg" }',
        'temperature.steps.0.to="120 degC"',
    ]
    assert sweep.base == (tmp_path / "base.toml").resolve()


def test_zip_pairs_values_and_refuses_unequal_lengths(tmp_path: Path) -> None:
    text = FOUR.replace('"product"', '"zip"')
    sweep = load_sweep(write(tmp_path, text), validate=False)
    assert [tuple(v.text for v in p.values) for p in sweep.points] == [
        ("0 deg", "120 degC"),
        ("90 deg", "150 degC"),
    ]
    bad = text.replace('["120 degC", "150 degC"]', '["120 degC", "130 degC", "150 degC"]')
    with pytest.raises(CaseError, match="equal length") as info:
        load_sweep(write(tmp_path, bad), validate=False)
    assert info.value.file is not None and info.value.file.endswith("sweep.toml")
    assert info.value.key == "combine" and info.value.line == 2


def test_linspace_and_logspace_keep_the_written_unit(tmp_path: Path) -> None:
    text = """\
base = "base.toml"
[axes]
"temperature.steps.0.to" = { linspace = ["400 degC", "800 degC", 5] }
"layers.0.thickness" = { logspace = ["1 nm", "100 nm", 3] }
"solver.rtol" = { logspace = [1e-4, 1e-2, 3] }
"layers.1.orientation" = { tilt = { linspace = ["0 deg", "90 deg", 7] } }
"""
    sweep = load_sweep(write(tmp_path, text), validate=False)
    texts = [[v.text for v in a.values] for a in sweep.axes]
    assert texts[0] == ["400 degC", "500 degC", "600 degC", "700 degC", "800 degC"]
    assert texts[1] == ["1 nm", "10 nm", "100 nm"]
    assert [v.value for v in sweep.axes[2].values] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert texts[3] == ["0 deg", "15 deg", "30 deg", "45 deg", "60 deg", "75 deg", "90 deg"]
    assert sweep.axes[3].tilt and sweep.axes[3].values[2].value == {"tilt": "30 deg"}
    assert len(sweep.points) == 5 * 3 * 3 * 7
    # a stop in another unit is converted to the unit of start
    other = text.replace('"800 degC"', '"1073.15 K"')
    assert [v.text for v in load_sweep(write(tmp_path, other), validate=False).axes[0].values][
        -1
    ] == "800 degC"


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ('"a.b" = "1 nm"', "an axis is a list of values"),
        ('"a.b" = []', "at least one value"),
        ('"a.b" = { linspace = ["1 nm", "2 nm"] }', "linspace takes"),
        ('"a.b" = { logspace = ["0 nm", "2 nm", 3] }', "positive start and stop"),
        ('"a.b" = { linspace = ["1 nm", "2 s", 3] }', "different dimensions"),
        ('"a.b" = [1]\n"a" = [2]', "set the same case key"),
    ],
)
def test_bad_axes_are_case_errors(tmp_path: Path, axes: str, message: str) -> None:
    with pytest.raises(CaseError, match=message) as info:
        load_sweep(write(tmp_path, f'base = "base.toml"\n[axes]\n{axes}\n'), validate=False)
    assert info.value.key is not None and info.value.key.startswith("axes.")


def test_unknown_sweep_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="did you mean 'combine'"):
        load_sweep(write(tmp_path, FOUR.replace("combine =", "combin =")), validate=False)


def test_toml_value_round_trips() -> None:
    import tomllib

    for value in ["30 deg", 'a "quoted" \\ one', 1, 2.5e-14, True, [1, "x"], {"tilt": "3 deg"}]:
        assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value


# --------------------------------------------------------------------------- validation


def test_every_point_is_validated_before_anything_runs(tmp_path: Path) -> None:
    text = FOUR.replace('"90 deg"]', '"90 deg", "120 deg"]')
    path = write(tmp_path, text)
    out = tmp_path / "out"
    with pytest.raises(CaseError) as info:
        load_sweep(path)
    err = info.value
    assert err.file == str(path) and err.key == 'axes."layers.0.orientation"'
    assert err.line == 5
    assert "'120 deg'" in str(err) and "between 0 and 90 deg" in str(err)
    assert main(["sweep", str(path), "-o", str(out), "--quiet"]) == 2
    assert not out.exists()  # nothing ran, nothing written


def test_a_point_that_fails_resolution_is_refused(tmp_path: Path) -> None:
    """Resolution (Simulation construction) errors count too: here a missing D0."""
    text = 'base = "base.toml"\n[axes]\n"materials.NCM111.species.Li.Ea" = ["0.8 eV"]\n'
    with pytest.raises(CaseError, match=r"D0.*\[materials.NCM111\] with base = \"NCM111\""):
        load_sweep(write(tmp_path, text))


# --------------------------------------------------------------------------- running


def test_a_failing_point_does_not_stop_the_others(tmp_path: Path) -> None:
    text = 'base = "base.toml"\n[axes]\n"solver.dt_min" = ["1e-12 s", "1 s", "1e-10 s"]\n'
    path = write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "-o", str(out), "--workers", "2", "--quiet"]) == 1
    points = manifest(out)["points"]
    assert [p["state"] for p in points] == ["done", "failed", "done"]
    assert "time step fell below dt_min" in points[1]["error"]
    assert points[0]["error"] is None and points[0]["wall_s"] > 0
    rows = table(out)
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert rows[1]["asr_ohm_m2@end"] == "" and float(rows[0]["asr_ohm_m2@end"]) > 0
    assert (out / "points" / "p000" / "metrics.csv").is_file()


def test_sweep_table_columns(reference: Path) -> None:
    rows = table(reference, drop=())
    header = list(rows[0])
    assert header[:7] == [
        "id",
        "layers.0.orientation",
        "temperature.steps.0.to",
        "layers.0.orientation.tilt [rad]",
        "temperature.steps.0.to [K]",
        "status",
        "wall_s",
    ]
    assert rows[3]["layers.0.orientation"] == "90 deg"
    assert float(rows[3]["layers.0.orientation.tilt [rad]"]) == pytest.approx(1.5707963267948966)
    assert float(rows[2]["temperature.steps.0.to [K]"]) == pytest.approx(393.15)
    assert {"asr_ohm_m2@end", "asr_ohm_m2@100degC", "onset_li_transferred_mol_m2_K"} <= set(header)
    # the open (tilt 90) interface passes more Li than the closed one (tilt 0)
    crossed = [float(r["crossed_Li_i0@end"]) for r in rows]
    assert crossed[2] > crossed[0] and crossed[3] > crossed[1]
    # at 100 degC both final temperatures have seen the same program
    assert rows[0]["crossed_Li_i0@100degC"] == rows[1]["crossed_Li_i0@100degC"] != ""
    for p in manifest(reference)["points"]:
        assert p["state"] == "done" and p["runs"] == 1


def test_rerun_skips_done_points_and_refuses_a_changed_sweep(
    reference: Path, tmp_path: Path
) -> None:
    folder = reference.parent
    before = {p.name: (p / "run.json").stat().st_mtime_ns for p in (reference / "points").iterdir()}
    sweep = load_sweep(folder / "sweep.toml")
    outcome = run_sweep(sweep, reference, workers=1, progress=False)
    assert outcome.ran == 0 and outcome.done == 4
    after = {p.name: (p / "run.json").stat().st_mtime_ns for p in (reference / "points").iterdir()}
    assert after == before
    changed = write(tmp_path, FOUR.replace('"150 degC"]', '"140 degC"]'), name="changed.toml")
    (tmp_path / "base.toml").write_text(BASE)
    code = main(["sweep", str(changed), "-o", str(reference), "--quiet"])
    assert code == 2


def test_resume_after_a_killed_sweep(reference: Path, tmp_path: Path) -> None:
    path = write(tmp_path, FOUR)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cosinter", "sweep", str(path), "-o", str(out)]
    process = subprocess.Popen(
        [*command, "--workers", "1", "--quiet"],
        start_new_session=True,  # its own process group: the workers die with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                states = [p["state"] for p in manifest(out)["points"]]
            except (OSError, ValueError):
                states = []
            if "done" in states:
                break
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no point finished within 120 s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = manifest(out)["points"]
    finished = {p["id"] for p in killed if p["state"] == "done"}
    assert 1 <= len(finished) < 4
    mtimes = {pid: (out / "points" / pid / "run.json").stat().st_mtime_ns for pid in finished}
    assert main(["sweep", str(path), "-o", str(out), "--workers", "2", "--quiet"]) == 0
    resumed = manifest(out)["points"]
    assert all(p["state"] == "done" for p in resumed)
    for p in resumed:
        if p["id"] in finished:  # not run again
            assert p["runs"] == 1
            assert (out / "points" / p["id"] / "run.json").stat().st_mtime_ns == mtimes[p["id"]]
    assert table(out) == table(reference)


# --------------------------------------------------------------------------- dask


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_cluster() -> Iterator[str]:
    """A scheduler and one single-threaded worker on loopback, as subprocesses."""
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,  # type: ignore[call-overload]
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while True:  # the worker needs a listening scheduler
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or processes[0].poll() is not None:
                    pytest.fail("the dask scheduler did not start")
                time.sleep(0.1)
        processes.append(
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                **quiet,  # type: ignore[call-overload]
            )
        )
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_sweep_on_a_dask_cluster_matches_the_local_run(
    reference: Path, tmp_path: Path, dask_cluster: str
) -> None:
    path = write(tmp_path, FOUR)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "-o", str(out), "--scheduler", dask_cluster, "--quiet"]) == 0
    assert table(out) == table(reference)
    assert all(p["state"] == "done" for p in manifest(out)["points"])


# --------------------------------------------------------------------------- plots


def test_plot_draws_maps_and_lines_of_a_sweep(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plots"
    assert main(["plot", str(reference), "-o", str(out)]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [
        "sweep_asr_ohm_m2_end_vs_layers_0_orientation_temperature_steps_0_to_lines.png",
        "sweep_asr_ohm_m2_end_vs_layers_0_orientation_temperature_steps_0_to_map.png",
    ]
    assert all(p.stat().st_size > 1000 for p in out.glob("*.png"))
    assert not list(out.glob(".*"))  # atomic: no temporary files left
    args = ["plot", str(reference), "-o", str(out), "--metric", "crossed_Li_i0"]
    assert main([*args, "--x", "temperature.steps.0.to"]) == 0
    assert (
        out / "sweep_crossed_Li_i0_end_vs_temperature_steps_0_to_layers_0_orientation_map.png"
    ).is_file()
    assert main(["plot", str(reference), "--metric", "nope"]) == 2
    assert "not a column of sweep.csv" in capsys.readouterr().err
    assert main(["plot", str(reference), "--x", "nope"]) == 2


def test_set_applies_fixed_overrides_to_every_point(tmp_path: Path) -> None:
    text = FOUR.replace("[axes]", '[set]\n"mesh.cell_size" = "2 nm"\n\n[axes]')
    sweep = load_sweep(write(tmp_path, text))
    assert all(sweep.overrides(p)[0] == 'mesh.cell_size="2 nm"' for p in sweep.points)
    bad = FOUR.replace("[axes]", '[set]\n"mesh.cell_size" = "-2 nm"\n\n[axes]')
    with pytest.raises(CaseError, match=r"\[set\] mesh.cell_size") as info:
        load_sweep(write(tmp_path, bad))
    assert info.value.key == 'set."mesh.cell_size"' and info.value.line == 5
    clash = FOUR.replace("[axes]", '[set]\n"layers.0.orientation.tilt" = "1 deg"\n\n[axes]')
    with pytest.raises(CaseError, match="both in"):
        load_sweep(write(tmp_path, clash), validate=False)
