"""Tests of the ``cosinter`` command line: exit codes, error messages, --set, and the
run / check / materials / plot commands on short runs."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cosinter.cli import main
from cosinter.models.materials import library_names, resolve_material
from cosinter.units import BOLTZMANN

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "cases" / "demo_ncm104_llto.toml"
DEMO_TEXT = DEMO.read_text(encoding="utf-8")
SHORT = [  # a ~2000 s program instead of ~8000 s: a run takes a few seconds
    "--set",
    "temperature.steps.0.staircase.to=200 degC",
    "--set",
    "output.at_temperatures=['100 degC']",
]
NCM104_ANGLE = math.radians(55.1)  # (104) normal vs c for a = 2.864 A, c = 14.233 A


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich wraps tables at 80 columns when not on a terminal; widen for parsing."""
    monkeypatch.setenv("COLUMNS", "250")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def principal_diffusivities(name: str, T: float) -> tuple[float, float, float]:
    p = resolve_material(name).species["Li"]
    D0, Ea = np.array(p.D0), np.array(p.Ea)
    a, b, c = D0 * np.exp(-Ea / (BOLTZMANN * T))
    return float(a), float(b), float(c)


def ncm104_lab(T: float) -> tuple[float, float, float]:
    """D_xx, D_yy, D_zz of NCM111 with the (104) plane in the interface, by hand:
    x is 55.1 deg from c, y is in the Li layer, z is the projection of c."""
    d_ab, _, d_c = principal_diffusivities("NCM111", T)
    s2, c2 = math.sin(NCM104_ANGLE) ** 2, math.cos(NCM104_ANGLE) ** 2
    return d_ab * s2 + d_c * c2, d_ab, d_ab * c2 + d_c * s2


# --------------------------------------------------------------------------- bad input

# (label, edit of the demo text (old, new) or None, extra argv, expected key,
#  the needle whose line the message must give (None: no line), text in the message)
BAD_INPUTS: list[tuple[str, tuple[str, str] | None, list[str], str | None, str | None, str]] = [
    (
        "toml-syntax",
        ('cell_size = "0.5 nm"', 'cell_size = "0.5 nm'),
        [],
        "mesh.cell_size",
        'cell_size = "0.5 nm',
        "not valid TOML",
    ),
    (
        "unknown-top-level-key",
        ("[case]", "colour = 'blue'\n\n[case]"),
        [],
        "colour",
        "colour = 'blue'",
        "unknown key 'colour'",
    ),
    (
        "misspelt-nested-key",
        ('thickness = "40 nm"', 'thikness = "40 nm"'),
        [],
        "layers.0.thikness",
        "thikness",
        "did you mean 'thickness'?",
    ),
    (
        "wrong-unit",
        ('thickness = "40 nm"', 'thickness = "5 K"'),
        [],
        "layers.0.thickness",
        'thickness = "5 K"',
        "expected m",
    ),
    (
        "negative-thickness",
        ('thickness = "40 nm"', 'thickness = "-40 nm"'),
        [],
        "layers.0.thickness",
        'thickness = "-40 nm"',
        "greater than 0",
    ),
    (
        "unknown-material",
        ('material = "NCM111"', 'material = "NCM11"'),
        [],
        "layers.0.material",
        'material = "NCM11"',
        "did you mean 'NCM111'?",
    ),
    (
        "unknown-fixed-species",
        ("[species.Li]", '[boundaries.left]\nfixed = { Na = "1 mol/L" }\n\n[species.Li]'),
        [],
        "boundaries.left.fixed.Na",
        "fixed = { Na",
        "species 'Na'",
    ),
    (
        "set-bad-index",
        None,
        ["--set", "layers.5.thickness=1 nm"],
        "layers.5",
        None,
        "not an index of a list of 2",
    ),
    ("set-bad-path", None, ["--set", "nope.x=1"], "nope", None, "unknown key 'nope'"),
    (
        "set-bad-value",
        None,
        ["--set", "layers.0.thickness=thick"],
        "layers.0.thickness",
        None,
        "cannot read 'thick'",
    ),
    (
        "set-wrong-unit",
        None,
        ["--set", "temperature.steps.0.staircase.to=200 nm"],
        "temperature.steps.0.staircase.to",
        None,
        "expected K",
    ),
    (
        "temperature-never-reached",
        ('"600 degC"]', '"600 degC", "900 degC"]'),
        [],
        "output.at_temperatures.6",
        "at_temperatures",
        "never reaches",
    ),
    (
        "plane-without-lattice",
        ('material = "LLTO"', 'material = "Li2TiO3"\norientation = { plane = [0, 0, 1] }'),
        [],
        "layers.1.orientation",
        "orientation = { plane = [0, 0, 1] }",
        "no lattice",
    ),
]


def _bad_case(tmp_path: Path, edit: tuple[str, str] | None) -> tuple[Path, str]:
    text = DEMO_TEXT if edit is None else replace_once(DEMO_TEXT, *edit)
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path, text


@pytest.mark.parametrize(
    ("label", "edit", "extra", "key", "needle", "message"),
    BAD_INPUTS,
    ids=[b[0] for b in BAD_INPUTS],
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_bad_input_exit_2_names_file_key_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    label: str,
    edit: tuple[str, str] | None,
    extra: list[str],
    key: str | None,
    needle: str | None,
    message: str,
) -> None:
    path, text = _bad_case(tmp_path, edit)
    argv = [command, str(path), *extra]
    if command == "run":
        argv += ["-o", str(tmp_path / "out"), "--quiet"]
    code, out, err = cli(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in out + err
    assert err.startswith("cosinter: error: ")
    assert len(err.strip().splitlines()) == 1  # one paragraph
    assert str(path) in err
    assert f"key '{key}'" in err
    assert message in err
    if needle is None:
        assert f"{path}:" not in err  # the problem is on the command line
    else:
        assert f"{path}:{line_of(text, needle)}," in err
    if command == "run":
        assert not (tmp_path / "out").exists()


def test_missing_case_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no_such_case.toml"
    for command in ("check", "run"):
        code, out, err = cli(capsys, command, missing)
        assert code == 2
        assert str(missing) in err and "cannot read the case file" in err
        assert "Traceback" not in out + err


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("label", ["misspelt-nested-key", "unknown-material", "set-bad-value"])
def test_failed_validation_leaves_output_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str
) -> None:
    _, edit, extra, *_ = next(b for b in BAD_INPUTS if b[0] == label)
    path, _ = _bad_case(tmp_path, edit)
    out_dir = tmp_path / "previous_run"
    (out_dir / "fields").mkdir(parents=True)
    (out_dir / "run.json").write_text('{"precious": true}')
    (out_dir / "profiles.csv").write_bytes(b"frame,time_s\n0,0.0\n")
    (out_dir / "fields" / "frame_0000.vtu").write_bytes(bytes(range(256)))
    before = _snapshot(out_dir)
    code, _, err = cli(capsys, "run", path, "-o", out_dir, "--quiet", *extra)
    assert code == 2, err
    assert _snapshot(out_dir) == before


def test_failed_validation_leaves_configured_directory_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Same through `[output] directory` instead of -o."""
    out_dir = tmp_path / "configured"
    out_dir.mkdir()
    (out_dir / "metrics.csv").write_text("keep me\n")
    before = _snapshot(out_dir)
    text = replace_once(DEMO_TEXT, "[output]", f"[output]\ndirectory = '{out_dir}'")
    text = replace_once(text, 'material = "LLTO"', 'material = "LLT0"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, _, err = cli(capsys, "run", path, "--quiet")
    assert code == 2 and "did you mean 'LLTO'?" in err
    assert _snapshot(out_dir) == before


def test_unexpected_errors_exit_1_traceback_only_with_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cosinter.solver import simulation

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(simulation.Simulation, "run", boom)
    code, out, err = cli(capsys, "run", DEMO, "-o", tmp_path / "x", "--quiet")
    assert code == 1
    assert "RuntimeError: solver exploded" in err and "Traceback" not in out + err
    code, _, err = cli(capsys, "--debug", "run", DEMO, "-o", tmp_path / "x", "--quiet")
    assert code == 1 and "Traceback" in err


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    """A real process: `python -m cosinter` maps bad input to exit code 2."""
    path, text = _bad_case(tmp_path, ('thickness = "40 nm"', 'thikness = "40 nm"'))
    proc = subprocess.run(
        [sys.executable, "-m", "cosinter", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert f"{path}:{line_of(text, 'thikness')}, key 'layers.0.thikness'" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "cosinter"
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    proc = subprocess.run(
        [str(script), "materials"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0
    assert "NCM111" in proc.stdout
    proc = subprocess.run(
        [str(script), "materials", "NCM11"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "did you mean 'NCM111'?" in proc.stderr


# --------------------------------------------------------------------------- run + --set


@pytest.fixture(scope="module")
def thin_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "thin"
    code = main(
        ["run", str(DEMO), "-o", str(out), "--quiet", *SHORT, "--set", "layers.0.thickness=20 nm"]
    )
    assert code == 0
    return out


def test_set_changes_the_run(thin_run: Path) -> None:
    record = json.loads((thin_run / "run.json").read_text())
    assert record["resolved"]["layers"][0]["thickness"] == pytest.approx(2e-8, rel=1e-12)
    assert record["resolved"]["layers"][1]["thickness"] == pytest.approx(4e-8, rel=1e-12)
    assert record["mesh"]["cells"] == (20 + 40) * 2  # 0.5 nm cells
    x = np.loadtxt(thin_run / "profiles.csv", delimiter=",", skiprows=1, usecols=3)
    assert x.max() < 60e-9 and x.max() > 59e-9
    assert record["case"]["layers"][0]["thickness"] == "20 nm"  # the overridden raw data


def test_set_shortens_the_program(thin_run: Path) -> None:
    record = json.loads((thin_run / "run.json").read_text())
    segments = record["program_segments"]
    # 25 -> 125 degC (600 s), hold 600 s, 125 -> 200 degC (450 s), hold 600 s
    assert [s["kind"] for s in segments] == ["ramp", "hold", "ramp", "hold"]
    assert segments[-1]["t_end_s"] == pytest.approx(2250.0)
    assert max(s["T_end_K"] for s in segments) == pytest.approx(473.15)
    assert record["solver_statistics"]["final_time_s"] == pytest.approx(2250.0)
    assert record["status"] == "completed"


def test_run_outputs_exist(thin_run: Path) -> None:
    for name in ("fields.pvd", "profiles.csv", "metrics.csv", "run.json"):
        assert (thin_run / name).is_file(), name
    frames = sorted((thin_run / "fields").glob("frame_*.vtu"))
    assert len(frames) == 3  # start, 100 degC, end (= the only step's end)


def test_plot_writes_pngs(capsys: pytest.CaptureFixture[str], thin_run: Path) -> None:
    code, out, err = cli(capsys, "plot", thin_run)
    assert code == 0, err
    printed = [Path(line) for line in out.split()]
    assert printed and all(p.suffix == ".png" and p.is_file() for p in printed)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in printed)
    assert {p.parent for p in printed} == {thin_run / "plots"}


def test_plot_missing_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "plot", tmp_path / "nothing")
    assert code == 2 and "not a folder" in err and str(tmp_path / "nothing") in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = cli(capsys, "plot", empty)
    assert code == 2 and "profiles.csv" in err and "Traceback" not in out + err


# --------------------------------------------------------------------------- check

_TRIPLE = r"([0-9.e+-]+) / ([0-9.e+-]+) / ([0-9.e+-]+)"


def _layer_rows(out: str) -> dict[str, list[tuple[float, float, float]]]:
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for line in out.splitlines():
        m = re.match(r"\W*\d+\W+(\w+)\W", line)
        triples = re.findall(_TRIPLE, line)
        if m and triples:
            rows[m.group(1)] = [(float(a), float(b), float(c)) for a, b, c in triples]
    return rows


def _program_rows(out: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in out.splitlines()
        if re.search(r"│\s*(ramp|hold)\s*│", line)
    ]


def test_check_prints_tensors_and_program(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "check", DEMO)
    assert code == 0, err
    assert "D_xx / D_yy / D_zz at 25 degC" in out
    assert "D_xx / D_yy / D_zz at 700 degC" in out
    rows = _layer_rows(out)
    assert set(rows) == {"NCM111", "LLTO"}
    for T, printed in zip((298.15, 973.15), rows["NCM111"], strict=True):
        np.testing.assert_allclose(printed, ncm104_lab(T), rtol=6e-3)
    for T, printed in zip((298.15, 973.15), rows["LLTO"], strict=True):
        np.testing.assert_allclose(printed, principal_diffusivities("LLTO", T), rtol=6e-3)
    program = _program_rows(out)
    # staircase 25 -> 700 degC in 100 K steps: 7 ramps and 7 holds
    assert [r[2] for r in program] == ["ramp", "hold"] * 7
    assert float(program[-1][6]) == pytest.approx(700.0)  # T end (degC)
    assert float(program[-1][4]) == pytest.approx(8250.0)  # t end (s)
    assert float(program[0][7]) == pytest.approx(10.0)  # K/min
    assert "[output]" in out  # literal text, not swallowed as markup


def test_check_with_set_shortens_program(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "check", DEMO, *SHORT)
    assert code == 0, err
    program = _program_rows(out)
    assert len(program) == 4
    assert float(program[-1][4]) == pytest.approx(2250.0)
    assert float(program[-1][6]) == pytest.approx(200.0)


def test_check_closed_twin(capsys: pytest.CaptureFixture[str]) -> None:
    """NCM(003): the stack normal is c, so D_xx = D_c (closed channels)."""
    code, out, err = cli(capsys, "check", REPO / "cases" / "demo_ncm003_llto.toml")
    assert code == 0, err
    d_ab, _, d_c = principal_diffusivities("NCM111", 298.15)
    printed = _layer_rows(out)["NCM111"][0]
    np.testing.assert_allclose(printed, (d_c, d_ab, d_ab), rtol=6e-3)


def test_check_does_not_create_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = replace_once(DEMO_TEXT, "[output]", f"[output]\ndirectory = '{tmp_path / 'o'}'")
    path = tmp_path / "c.toml"
    path.write_text(text)
    code, _, _ = cli(capsys, "check", path)
    assert code == 0
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- materials


def test_materials_lists_library(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "materials")
    assert code == 0
    names = set(re.findall(r"^│ (\S+)\s+│", out, flags=re.MULTILINE)) - {"name"}
    assert names == set(library_names())


def test_materials_entry_with_plane(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "materials", "NCM111", "--plane", "1,0,4", "--T", "400 degC")
    assert code == 0, err
    m = re.search(r"D_xx / D_yy / D_zz\s*│\s*" + _TRIPLE, out)
    assert m is not None, out
    printed = tuple(float(v) for v in m.groups())
    T = 400 + 273.15
    d_ab, _, d_c = principal_diffusivities("NCM111", T)
    expected_xx = d_ab * math.sin(NCM104_ANGLE) ** 2 + d_c * math.cos(NCM104_ANGLE) ** 2
    assert printed[0] == pytest.approx(expected_xx, rel=6e-3)
    np.testing.assert_allclose(printed, ncm104_lab(T), rtol=6e-3)
    # values, units and sources are shown
    assert "Uxa" in out and "mol/L" in out and "eV" in out
    assert "49.27" in out  # sites


def test_materials_miller_bravais_equals_miller(capsys: pytest.CaptureFixture[str]) -> None:
    _, a, _ = cli(capsys, "materials", "NCM111", "--plane", "1,0,4")
    _, b, _ = cli(capsys, "materials", "NCM111", "--plane", "1,0,-1,4")
    row = re.compile(r"D_xx / D_yy / D_zz\s*│\s*" + _TRIPLE)
    ma, mb = row.search(a), row.search(b)
    assert ma is not None and mb is not None
    assert ma.groups() == mb.groups()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["materials", "NCM11"], "did you mean 'NCM111'?"),
        (["materials", "Li2TiO3", "--plane", "1,0,4"], "no lattice"),
        (["materials", "NCM111", "--plane", "1,x,4"], "--plane 1,x,4"),
        (["materials", "NCM111", "--plane", "0,0,0"], "--plane 0,0,0"),
        (["materials", "NCM111", "--T", "5 nm"], "--T"),
    ],
)
def test_materials_bad_input(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in out + err
    assert out == ""  # nothing half-printed before the error
