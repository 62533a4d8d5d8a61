"""Tests of cosinter.case: the case-file schema, overrides and error locations."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cosinter.case import (
    Case,
    HoldStep,
    RampStep,
    StaircaseStep,
    apply_overrides,
    load_case,
    locate_key,
    validate_case,
)
from cosinter.errors import CaseError

EV = 1.602176634e-19
DEG = math.pi / 180

# Every key of issue 2 section 2, written exactly as the issue writes it.
FULL = """\
[case]
name = "full-case_1.0"
description = "every key"

[mesh]
dimension = 2
cell_size = "0.5 nm"
width = "20 nm"
lateral_cell_size = "2 nm"
lateral = "no_flux"

[materials.NCM_fast]
base = "NCM111"
relative_permittivity = 12.5

[materials.NCM_fast.species.Li]
D0 = { ab = "1e-5 m^2/s", c = "1e-8 m^2/s" }

[materials.ortho]
description = "an inline material"
lattice = { system = "orthorhombic", a = "3.1 angstrom", b = "4.7 angstrom", c = "9.2 angstrom" }
relative_permittivity = 30

[materials.ortho.species.Li]
initial = "49.3 mol/L"
sites = "60 mol/L"
mu0 = "-0.1 eV"
D0 = { a = "1e-6 m^2/s", b = "2e-6 m^2/s", c = "3e-6 m^2/s" }
Ea = { a = "0.85 eV", b = "0.9 eV", c = "0.95 eV" }

[materials.ortho.species.La]
initial = "1 mol/L"
D0 = "1e-14 m^2/s"
Ea = "1.2 eV"

[[layers]]
material = "NCM_fast"
thickness = "40 nm"
orientation = { plane = [1, 0, -1, 4], in_plane = "30 deg" }

[[layers]]
material = "ortho"
thickness = "10 nm"
orientation = { euler = ["10 deg", "20 deg", "30 deg"] }

[[layers]]
material = "LLTO"
thickness = "30 nm"
orientation = { plane = [0, 0, 1] }

[[layers]]
material = "LLTO"
thickness = 2e-8

[species.Li]
charge = 1

[species.La]
charge = 3

[temperature]
initial = "25 degC"

[[temperature.steps]]
ramp = "10 K/min"
to = "850 degC"

[[temperature.steps]]
hold = "1 h"

[[temperature.steps]]
ramp = "5 K/min"
to = "400 degC"

[[temperature.steps]]
staircase = { to = "700 degC", step = "50 K", rate = "10 K/min", hold = "10 min" }

[boundaries.left]
fixed = { Li = "10 mol/L" }

[boundaries.right]

[output]
directory = "out/full"
every = "30 min"
at_temperatures = ["100 degC", "500 degC"]
at_step_ends = true

[solver]
rtol = 1e-4
max_temperature_change = "2 K"
dt_max = "1 min"
"""


def write(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> Case:
    return load_case(write(tmp_path, text), overrides)[0]


def error_of(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> CaseError:
    with pytest.raises(CaseError) as info:
        load_case(write(tmp_path, text), overrides)
    return info.value


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle`` (computed independently)."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


# --------------------------------------------------------------------------- every key


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Case:
    path = tmp_path_factory.mktemp("full") / "full.toml"
    path.write_text(FULL, encoding="utf-8")
    case, raw = load_case(path)
    assert raw == tomllib.loads(FULL)
    return case


def test_full_case_and_mesh(full: Case) -> None:
    assert full.case.name == "full-case_1.0"
    assert full.case.description == "every key"
    m = full.mesh
    assert m.dimension == 2
    assert m.cell_size == pytest.approx(0.5e-9)
    assert m.width == pytest.approx(20e-9)
    assert m.lateral_cell_size == pytest.approx(2e-9)
    assert m.lateral == "no_flux"


def test_full_materials(full: Case) -> None:
    fast = full.materials["NCM_fast"]
    assert fast.base == "NCM111"
    assert fast.relative_permittivity == 12.5
    assert pytest.approx((1e-5, 1e-5, 1e-8)) == fast.species["Li"].D0
    assert fast.species["Li"].Ea is None  # inherited from the base when resolved

    ortho = full.materials["ortho"]
    assert ortho.base is None
    assert ortho.lattice is not None
    assert ortho.lattice.system == "orthorhombic"
    assert (ortho.lattice.a, ortho.lattice.b, ortho.lattice.c) == pytest.approx(
        (3.1e-10, 4.7e-10, 9.2e-10)
    )
    li = ortho.species["Li"]
    assert li.initial == pytest.approx(49300.0)
    assert li.sites == pytest.approx(60000.0)
    assert li.mu0 == pytest.approx(-0.1 * EV)
    assert pytest.approx((1e-6, 2e-6, 3e-6)) == li.D0
    assert li.Ea == pytest.approx((0.85 * EV, 0.9 * EV, 0.95 * EV))
    la = ortho.species["La"]
    assert la.sites is None and la.mu0 is None
    assert pytest.approx((1e-14,) * 3) == la.D0  # a scalar is isotropic
    assert la.Ea == pytest.approx((1.2 * EV,) * 3)


def test_full_layers(full: Case) -> None:
    assert [layer.material for layer in full.layers] == ["NCM_fast", "ortho", "LLTO", "LLTO"]
    assert [layer.thickness for layer in full.layers] == pytest.approx([40e-9, 10e-9, 30e-9, 20e-9])
    o0 = full.layers[0].orientation
    assert o0 is not None
    assert o0.plane == [1, 0, -1, 4]
    assert o0.in_plane == pytest.approx(30 * DEG)
    assert o0.euler is None
    o1 = full.layers[1].orientation
    assert o1 is not None and o1.plane is None
    assert o1.euler == pytest.approx([10 * DEG, 20 * DEG, 30 * DEG])
    o2 = full.layers[2].orientation
    assert o2 is not None and o2.plane == [0, 0, 1] and o2.in_plane == 0.0
    assert full.layers[3].orientation is None


def test_full_species_temperature(full: Case) -> None:
    assert {k: v.charge for k, v in full.species.items()} == {"Li": 1, "La": 3}
    t = full.temperature
    assert t.initial == pytest.approx(298.15)
    kinds = [type(s) for s in t.steps]
    assert kinds == [RampStep, HoldStep, RampStep, StaircaseStep]
    ramp, hold, cool, stair = t.steps
    assert isinstance(ramp, RampStep) and isinstance(cool, RampStep)
    assert ramp.ramp == pytest.approx(1 / 6)
    assert ramp.to == pytest.approx(1123.15)
    assert cool.ramp == pytest.approx(5 / 60)  # magnitude; the sign comes from `to`
    assert cool.to == pytest.approx(673.15)
    assert isinstance(hold, HoldStep) and hold.hold == pytest.approx(3600.0)
    assert isinstance(stair, StaircaseStep)
    s = stair.staircase
    assert s.to == pytest.approx(973.15)
    assert s.step == pytest.approx(50.0)
    assert s.rate == pytest.approx(1 / 6)
    assert s.hold == pytest.approx(600.0)


def test_full_boundaries_output_solver(full: Case) -> None:
    assert full.boundaries.left.fixed == {"Li": pytest.approx(10000.0)}
    assert full.boundaries.right.fixed == {}
    out = full.output
    assert out.directory == "out/full"
    assert full.output_directory() == Path("out/full")
    assert out.every == pytest.approx(1800.0)
    assert out.at_temperatures == pytest.approx([373.15, 773.15])
    assert out.at_step_ends is True
    sv = full.solver
    assert sv.rtol == pytest.approx(1e-4)
    assert sv.max_temperature_change == pytest.approx(2.0)
    assert sv.dt_max == pytest.approx(60.0)


def test_defaults(tmp_path: Path) -> None:
    case = load_text(tmp_path, MINIMAL)
    assert case.mesh.dimension == 1 and case.mesh.lateral == "periodic"
    assert case.temperature.initial == pytest.approx(298.15)
    assert case.boundaries.left.fixed == {} and case.boundaries.right.fixed == {}
    assert case.output.directory is None
    assert case.output_directory() == Path("results") / "mini"
    assert case.output.at_step_ends is False and case.output.at_temperatures == []
    assert case.layers[0].orientation is None
    assert case.solver.dt_max is None


MINIMAL = """\
[case]
name = "mini"

[mesh]
cell_size = "1 nm"

[[layers]]
material = "NCM111"
thickness = "10 nm"

[[layers]]
material = "LLTO"
thickness = "10 nm"

[species.Li]
charge = 1

[[temperature.steps]]
hold = "1 min"
"""


# --------------------------------------------------------------------------- unknown keys


def _set(data: dict[str, Any], path: list[str | int], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


UNKNOWN_KEYS: list[list[str | int]] = [  # where to add a bogus key
    [],
    ["case"],
    ["mesh"],
    ["materials", "ortho"],
    ["materials", "ortho", "lattice"],
    ["materials", "ortho", "species", "Li"],
    ["layers", 1],
    ["layers", 0, "orientation"],
    ["species", "Li"],
    ["temperature"],
    ["temperature", "steps", 0],
    ["temperature", "steps", 1],
    ["temperature", "steps", 3],
    ["temperature", "steps", 3, "staircase"],
    ["boundaries"],
    ["boundaries", "left"],
    ["output"],
    ["solver"],
]


@pytest.mark.parametrize("where", UNKNOWN_KEYS)
def test_unknown_keys_rejected_at_every_level(where: list[str | int]) -> None:
    data = tomllib.loads(FULL)
    _set(data, [*where, "bogus_key"], 1)
    with pytest.raises(CaseError) as info:
        validate_case(data, file="x.toml")
    err = info.value
    assert err.key == ".".join(str(p) for p in [*where, "bogus_key"])
    assert "unknown key 'bogus_key'" in err.detail


@pytest.mark.parametrize(
    ("where", "typo", "right"),
    [
        (["mesh"], "cel_size", "cell_size"),
        (["layers", 0], "thikness", "thickness"),
        (["layers", 0, "orientation"], "inplane", "in_plane"),
        (["materials", "ortho", "species", "Li"], "D_0", "D0"),
        (["materials", "ortho", "lattice"], "sytem", "system"),
        (["temperature", "steps", 0], "too", "to"),
        (["temperature", "steps", 3, "staircase"], "hodl", "hold"),
        (["boundaries", "left"], "fixd", "fixed"),
        (["output"], "at_step_end", "at_step_ends"),
        (["solver"], "rtl", "rtol"),
        ([], "layer", "layers"),
    ],
)
def test_misspelt_key_suggests_the_right_one(where: list[str | int], typo: str, right: str) -> None:
    """Renaming a key (so the real one is also missing) reports the misspelling."""
    data = tomllib.loads(FULL)
    node: Any = data
    for part in where:
        node = node[part]
    if right in node:
        node[typo] = node.pop(right)
    else:
        node[typo] = 1
    with pytest.raises(CaseError) as info:
        validate_case(data, file="x.toml")
    err = info.value
    assert err.key == ".".join(str(p) for p in [*where, typo])
    assert f"did you mean '{right}'?" in err.detail


def test_allowed_keys_of_the_right_step_kind() -> None:
    """An unknown key in a hold step lists the hold step's keys, not the ramp's."""
    data = tomllib.loads(FULL)
    data["temperature"]["steps"][1]["extra"] = 1
    with pytest.raises(CaseError) as info:
        validate_case(data)
    assert info.value.key == "temperature.steps.1.extra"
    assert "allowed here: hold" in info.value.detail
    assert "ramp" not in info.value.detail


def test_unknown_step_kind_suggests() -> None:
    data = tomllib.loads(FULL)
    data["temperature"]["steps"][3] = {"staircas": data["temperature"]["steps"][3]["staircase"]}
    with pytest.raises(CaseError) as info:
        validate_case(data)
    assert info.value.key == "temperature.steps.3"
    assert "did you mean 'staircase'?" in info.value.detail


# --------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("path", "value", "needle", "cut"),
    [
        (["layers", 0, "thickness"], "5 K", "expected m", None),
        (["layers", 0, "thickness"], "-5 nm", "greater than 0", None),
        (["layers", 0, "thickness"], "0 nm", "greater than 0", None),
        (["layers", 0, "thickness"], True, "expected a number or a string with units", None),
        (["layers", 0, "thickness"], "inf nm", "finite", None),
        (["mesh", "dimension"], 4, "1, 2 or 3", None),
        (["mesh", "lateral"], "open", "periodic", None),
        (["case", "name"], "has space", "pattern", None),
        (["temperature", "steps", 3, "staircase", "step"], "-50 K", "greater than 0", None),
        (["temperature", "steps", 0, "ramp"], "10 K", "expected K/s", None),
        # checks across keys point at the table holding them
        (["materials", "ortho", "species", "Li", "initial"], "70 mol/L", "below `sites`", -1),
        (
            ["materials", "ortho", "species", "Li", "D0"],
            {"ab": 1, "cc": 2},
            "or { ab, c }, got keys",
            None,
        ),
        (["materials", "ortho", "lattice", "system"], "monoclinic", "hexagonal", None),
        (["layers", 0, "orientation", "plane"], [1, 0], "3 (Miller) or 4", -1),
        (["boundaries", "left", "fixed", "Li"], "1 nm", "expected mol/m^3", None),
        (["output", "at_temperatures", 1], "5 min", "expected K", None),
        (["solver", "rtol"], 2, "less than 1", None),
    ],
)
def test_bad_values_name_the_key(
    path: list[str | int], value: Any, needle: str, cut: int | None
) -> None:
    data = tomllib.loads(FULL)
    _set(data, path, value)
    with pytest.raises(CaseError) as info:
        validate_case(data, file="x.toml")
    assert info.value.key == ".".join(str(p) for p in path[:cut])
    assert needle in info.value.detail
    assert "x.toml" in str(info.value)


def test_width_required_in_2d_forbidden_in_1d() -> None:
    data = tomllib.loads(FULL)
    del data["mesh"]["width"]
    with pytest.raises(CaseError, match="needs `width`"):
        validate_case(data)
    data = tomllib.loads(FULL)
    data["mesh"]["dimension"] = 1
    with pytest.raises(CaseError, match="2D/3D meshes only"):
        validate_case(data)


def test_orientation_needs_exactly_one_kind() -> None:
    data = tomllib.loads(FULL)
    data["layers"][0]["orientation"] = {"plane": [0, 0, 1], "euler": [0, 0, 0]}
    with pytest.raises(CaseError, match="exactly one"):
        validate_case(data)
    data["layers"][0]["orientation"] = {"euler": [0, 0, 0], "in_plane": "10 deg"}
    with pytest.raises(CaseError, match="`in_plane` applies to `plane`"):
        validate_case(data)


def test_fixed_boundary_species_must_be_solved(tmp_path: Path) -> None:
    text = FULL.replace('fixed = { Li = "10 mol/L" }', 'fixed = { Na = "10 mol/L" }')
    err = error_of(tmp_path, text)
    assert err.key == "boundaries.left.fixed.Na"
    assert err.line == line_of(text, "fixed = { Na")
    assert "not in [species]" in err.detail


# --------------------------------------------------------------------------- file errors


def test_error_names_file_key_and_line(tmp_path: Path) -> None:
    text = FULL.replace('thickness = "10 nm"', 'thickness = "10 K"')
    err = error_of(tmp_path, text)
    assert err.file is not None and err.file.endswith("case.toml")
    assert err.key == "layers.1.thickness"
    assert err.line == line_of(text, 'thickness = "10 K"')
    assert str(err).startswith(f"{err.file}:{err.line}, key 'layers.1.thickness': ")


def test_toml_syntax_error(tmp_path: Path) -> None:
    text = FULL.replace('lateral = "no_flux"', "lateral = no_flux")
    err = error_of(tmp_path, text)
    assert err.line == line_of(text, "lateral = no_flux")
    assert err.key == "mesh.lateral"
    assert "not valid TOML" in err.detail


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="cannot read the case file") as info:
        load_case(tmp_path / "nope.toml")
    assert info.value.file == str(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- locate_key


def test_locate_key_second_layer_and_inline_tables() -> None:
    text = FULL
    second_layer = line_of(text, "[[layers]]", 2)
    assert locate_key(text, ["layers", 1]) == second_layer
    assert locate_key(text, ["layers", 1, "thickness"]) == line_of(text, 'thickness = "10 nm"')
    assert locate_key(text, ["layers", 1, "material"]) == line_of(text, 'material = "ortho"')
    assert locate_key(text, ["layers", 3, "thickness"]) == line_of(text, "thickness = 2e-8")
    # keys inside inline tables
    orient0 = line_of(text, "in_plane")
    assert locate_key(text, ["layers", 0, "orientation", "in_plane"]) == orient0
    assert locate_key(text, ["layers", 0, "orientation", "plane"]) == orient0
    assert locate_key(text, ["layers", 1, "orientation", "euler", 2]) == line_of(text, "euler")
    assert locate_key(text, ["mesh", "lateral"]) == line_of(text, "lateral =")
    stair = line_of(text, "staircase = {")
    assert locate_key(text, ["temperature", "steps", 3, "staircase", "hold"]) == stair
    assert locate_key(text, ["temperature", "steps", 2, "to"]) == line_of(text, 'to = "400 degC"')
    assert locate_key(text, ["boundaries", "left", "fixed", "Li"]) == line_of(text, "fixed = {")
    lattice = line_of(text, "lattice = {")
    assert locate_key(text, ["materials", "ortho", "lattice", "b"]) == lattice


def test_locate_key_species_tables() -> None:
    text = FULL
    la_header = line_of(text, "[materials.ortho.species.La]")
    assert locate_key(text, ["materials", "ortho", "species", "La"]) == la_header
    assert locate_key(text, ["materials", "ortho", "species", "La", "Ea"]) == line_of(
        text, 'Ea = "1.2 eV"'
    )
    assert locate_key(text, ["materials", "ortho", "species", "Li", "mu0"]) == line_of(
        text, "mu0 ="
    )
    assert locate_key(text, ["materials", "NCM_fast", "species", "Li", "D0"]) == line_of(
        text, 'D0 = { ab = "1e-5'
    )
    # a key not written falls back to the deepest written prefix
    assert locate_key(text, ["materials", "ortho", "species", "La", "sites"]) == la_header
    assert locate_key(text, ["nothing", "here"]) is None


# --------------------------------------------------------------------------- overrides


def test_override_changes_value(tmp_path: Path) -> None:
    case = load_text(tmp_path, FULL, ("layers.0.thickness=20 nm", "solver.rtol=1e-2"))
    assert case.layers[0].thickness == pytest.approx(2e-8)
    assert case.solver.rtol == pytest.approx(1e-2)
    step = case.temperature.steps[0]
    assert isinstance(step, RampStep)
    case = load_text(tmp_path, FULL, ("temperature.steps.0.to=700 degC",))
    step = case.temperature.steps[0]
    assert isinstance(step, RampStep) and step.to == pytest.approx(973.15)


def test_override_toml_values(tmp_path: Path) -> None:
    case = load_text(
        tmp_path,
        FULL,
        (
            "output.at_temperatures=['200 degC']",
            "output.at_step_ends=false",
            "layers.2.orientation={ plane = [1, 0, 4] }",
        ),
    )
    assert case.output.at_temperatures == pytest.approx([473.15])
    assert case.output.at_step_ends is False
    o = case.layers[2].orientation
    assert o is not None and o.plane == [1, 0, 4]


def test_override_creates_missing_tables(tmp_path: Path) -> None:
    """A table the file omits can be set: `[boundaries]` is absent in MINIMAL."""
    case = load_text(tmp_path, MINIMAL, ("boundaries.right.fixed.Li=5 mol/L",))
    assert case.boundaries.right.fixed == {"Li": pytest.approx(5000.0)}


def test_overrides_do_not_touch_the_input() -> None:
    raw = tomllib.loads(FULL)
    before = tomllib.loads(FULL)
    out = apply_overrides(raw, ["layers.0.thickness=1 nm"])
    assert raw == before
    assert out["layers"][0]["thickness"] == "1 nm"


@pytest.mark.parametrize(
    ("item", "key", "needle"),
    [
        ("layers.5.thickness=1 nm", "layers.5", "not an index of a list of 4"),
        ("layers.x.thickness=1 nm", "layers.x", "not an index"),
        ("nope.x=1", "nope", "unknown key 'nope'"),
        ("layer.0.thickness=1 nm", "layer", "did you mean 'layers'?"),
        ("layers.0.thikness=1 nm", "layers.0.thikness", "did you mean 'thickness'?"),
        ("layers.0.thickness=abc", "layers.0.thickness", "cannot read 'abc'"),
        ("layers.0.thickness=5 K", "layers.0.thickness", "expected m"),
        ("layers.0.thickness.x=1", "layers.0.thickness.x", "is a value, not a table"),
        ("layers.0.thickness", "layers.0.thickness", "expects KEY=VALUE"),
    ],
)
def test_bad_overrides(tmp_path: Path, item: str, key: str, needle: str) -> None:
    err = error_of(tmp_path, FULL, (item,))
    assert err.key == key
    assert needle in err.detail
    assert err.file is not None and err.file.endswith("case.toml")
    assert err.line is None  # the bad value is on the command line, not in the file


def test_error_from_override_says_so(tmp_path: Path) -> None:
    err = error_of(tmp_path, FULL, ("mesh.dimension=1",))
    assert err.key == "mesh"
    assert "[from --set mesh.dimension=1]" in err.detail


# --------------------------------------------------------------------------- grains, channels

GRAINS = {"layer": 0, "count": 4, "seed": 2}
CHANNELS = {"layer": 2, "spacing": "10 nm", "width": "2 nm", "D_factor": 1e4}


def grain_case(**mesh: Any) -> dict[str, Any]:
    data = tomllib.loads(FULL)
    data["mesh"].update(mesh)
    return data


def test_grains_and_channels_validate_in_si() -> None:
    data = grain_case(grains=GRAINS, channels=CHANNELS)
    data["layers"][0]["orientation"] = "random"
    case = validate_case(data)
    assert case.mesh.grains is not None and case.mesh.channels is not None
    assert (case.mesh.grains.layer, case.mesh.grains.count, case.mesh.grains.seed) == (0, 4, 2)
    assert case.mesh.channels.spacing == pytest.approx(10e-9)
    assert case.mesh.channels.width == pytest.approx(2e-9)
    assert case.layers[0].orientation == "random"
    data["layers"][0]["orientation"] = [{"plane": [0, 0, 3]}, {"euler": [0, "90 deg", 0]}] * 2
    listed = validate_case(data).layers[0].orientation
    assert isinstance(listed, list) and len(listed) == 4
    assert listed[1].euler == pytest.approx([0, 90 * DEG, 0])
    assert validate_case(grain_case(grains={"layer": 1, "count": 1})).mesh.grains.seed == 0


@pytest.mark.parametrize("key", ["grains", "channels"])
def test_grains_and_channels_need_2d_or_3d(key: str) -> None:
    data = grain_case(grains=GRAINS, channels=CHANNELS)
    data["mesh"] = {"dimension": 1, "cell_size": "1 nm", key: data["mesh"][key]}
    with pytest.raises(CaseError) as info:
        validate_case(data)
    assert info.value.key == f"mesh.{key}"
    assert "2D/3D meshes only" in info.value.detail


@pytest.mark.parametrize("key", ["grains", "channels"])
def test_grain_and_channel_layer_must_exist(tmp_path: Path, key: str) -> None:
    line = {
        "grains": "grains = { layer = 4, count = 4 }",
        "channels": 'channels = { layer = 4, spacing = "10 nm", width = "2 nm", D_factor = 10 }',
    }[key]
    text = FULL.replace('lateral = "no_flux"\n', f'lateral = "no_flux"\n{line}\n')
    err = error_of(tmp_path, text)
    assert err.key == f"mesh.{key}.layer"
    assert f"mesh.{key}.layer = 4: the stack has 4 layers, numbered 0..3" in err.detail
    assert err.line == line_of(text, f"{key} = ")


def test_orientation_list_needs_one_per_grain() -> None:
    data = grain_case(grains=GRAINS)
    data["layers"][0]["orientation"] = [{"plane": [0, 0, 3]}] * 3
    with pytest.raises(CaseError) as info:
        validate_case(data)
    assert info.value.key == "layers.0.orientation"
    assert "lists 3 orientations, but mesh.grains.count = 4" in info.value.detail


@pytest.mark.parametrize(
    ("mesh", "needle"),
    [
        ({}, "the case has no [mesh] grains"),
        ({"grains": {"layer": 0, "count": 4}}, "the case has grains.layer = 0"),
    ],
)
def test_random_orientation_only_on_the_grain_layer(mesh: dict[str, Any], needle: str) -> None:
    data = grain_case(**mesh)
    data["layers"][1]["orientation"] = "random"
    with pytest.raises(CaseError) as info:
        validate_case(data)
    assert info.value.key == "layers.1.orientation"
    assert "'random' applies to the grain layer only" in info.value.detail
    assert needle in info.value.detail
    data["layers"][1]["orientation"] = [{"plane": [0, 0, 1]}] * 4
    with pytest.raises(CaseError, match="a list of orientations applies to the grain layer"):
        validate_case(data)


@pytest.mark.parametrize(
    ("path", "value", "key", "needle"),
    [
        (["layers", 0, "orientation"], "randm", "layers.0.orientation", "'random'"),
        (["layers", 0, "orientation"], 5, "layers.0.orientation", "a list of such tables"),
        (
            ["layers", 0, "orientation"],
            [{"plane": [0, 0, 3]}] * 3 + [{"plane": [0, 0, 3], "inplane": 1}],
            "layers.0.orientation.3.inplane",
            "did you mean 'in_plane'?",
        ),
        (
            ["layers", 0, "orientation"],
            [{"plane": [0, 3]}] * 4,
            "layers.0.orientation.0",
            "3 (Miller)",
        ),
        (["mesh", "grains", "count"], 0, "mesh.grains.count", "greater than or equal to 1"),
        (["mesh", "channels", "width"], "10 nm", "mesh.channels", "must be below `spacing`"),
        (["mesh", "channels", "D_factor"], 0, "mesh.channels.D_factor", "greater than 0"),
        (["mesh", "channels", "spacing"], "5 K", "mesh.channels.spacing", "expected m"),
    ],
)
def test_bad_grain_and_channel_values_name_the_key(
    path: list[str | int], value: Any, key: str, needle: str
) -> None:
    data = grain_case(grains=dict(GRAINS), channels=dict(CHANNELS))
    _set(data, path, value)
    with pytest.raises(CaseError) as info:
        validate_case(data)
    assert info.value.key == key
    assert needle in info.value.detail


# --------------------------------------------------------------------------- tilt orientation


def _rotation(case: Case, layer: int) -> Any:
    """Crystal -> lab rotation of ``layer`` as the simulation builds it."""
    from cosinter.models.materials import resolve_material
    from cosinter.models.properties import layer_rotation

    o = case.layers[layer].orientation
    assert o is None or not isinstance(o, str | list)
    return layer_rotation(
        resolve_material(case.layers[layer].material),
        o.plane if o else None,
        o.in_plane if o else 0.0,
        o.euler if o else None,
        o.tilt if o else None,
    )


def _lab_tensor(case: Case, layer: int, T: float = 973.15) -> Any:
    """Li lab tensor of ``layer`` as the simulation builds it (via layer_rotation)."""
    import numpy as np

    from cosinter.models.materials import resolve_material
    from cosinter.models.transport import lab_tensors

    material = resolve_material(case.layers[layer].material)
    o = case.layers[layer].orientation
    assert o is None or not isinstance(o, str | list)
    R = _rotation(case, layer)
    p = material.species["Li"]
    return lab_tensors(R[None], np.array([p.D0]), np.array([p.Ea]), T)[0]


def test_tilt_zero_is_the_closed_003_interface(tmp_path: Path) -> None:
    import numpy as np

    tilted = load_text(tmp_path, MINIMAL, ("layers.0.orientation={ tilt = '0 deg' }",))
    o = tilted.layers[0].orientation
    assert o is not None and not isinstance(o, str | list)
    assert o.tilt == 0.0 and o.plane is None
    assert o.euler is None  # the case keeps what was written
    closed = load_text(tmp_path, MINIMAL, ("layers.0.orientation={ plane = [0, 0, 3] }",))
    D_tilt, D_003 = _lab_tensor(tilted, 0), _lab_tensor(closed, 0)
    np.testing.assert_allclose(D_tilt, D_003, rtol=1e-12, atol=1e-12 * abs(D_003).max())


def test_tilt_90_puts_c_in_the_interface_plane(tmp_path: Path) -> None:
    import numpy as np

    from cosinter.models.crystal import rotation_from_euler, rotation_from_tilt

    case = load_text(tmp_path, MINIMAL, ("layers.0.orientation.tilt=90 deg",))
    R = _rotation(case, 0)
    np.testing.assert_allclose(R @ [0, 0, 1], [0, 0, 1], atol=1e-15)  # c along +z
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-15)  # a along +y
    np.testing.assert_allclose(R, rotation_from_tilt(math.pi / 2), atol=1e-15)
    # the Bunge equivalent [90 deg, 90 deg - tilt, 0]
    np.testing.assert_allclose(R, rotation_from_euler(math.pi / 2, 0.0, 0.0), atol=1e-15)
    D = _lab_tensor(case, 0)
    from cosinter.models.materials import resolve_material
    from cosinter.models.transport import arrhenius

    p = resolve_material("NCM111").species["Li"]
    d_a, _, d_c = arrhenius(np.array([p.D0]), np.array([p.Ea]), 973.15)[0]
    assert D[0, 0] == pytest.approx(d_a, rel=1e-12)  # D_xx = D_ab: open channels
    assert D[2, 2] == pytest.approx(d_c, rel=1e-12)


def test_tilt_moves_d_xx_monotonically_from_d_c_to_d_ab(tmp_path: Path) -> None:
    import numpy as np

    angles = np.linspace(0.0, 90.0, 10)
    d_xx = [
        _lab_tensor(load_text(tmp_path, MINIMAL, (f"layers.0.orientation.tilt={a} deg",)), 0)[0, 0]
        for a in angles
    ]
    assert np.all(np.diff(d_xx) > 0)  # NCM111: D_ab > D_c
    # D_xx = D_c cos^2 + D_ab sin^2; the (104) plane is the same tensor as 55.1 deg
    t = np.radians(angles)
    expected = d_xx[0] * np.cos(t) ** 2 + d_xx[-1] * np.sin(t) ** 2
    np.testing.assert_allclose(d_xx, expected, rtol=1e-10)
    c104 = load_text(tmp_path, MINIMAL, ("layers.0.orientation={ plane = [1, 0, 4] }",))
    from cosinter.models.crystal import angle_to_c
    from cosinter.models.materials import resolve_material

    lattice = resolve_material("NCM111").lattice
    assert lattice is not None
    theta = math.degrees(angle_to_c(lattice, (1, 0, 4)))
    tilted = load_text(tmp_path, MINIMAL, (f"layers.0.orientation.tilt={theta} deg",))
    assert _lab_tensor(tilted, 0)[0, 0] == pytest.approx(_lab_tensor(c104, 0)[0, 0], rel=1e-12)


@pytest.mark.parametrize(
    ("orientation", "message"),
    [
        ("{ tilt = '91 deg' }", "`tilt` must lie between 0 and 90 deg"),
        ("{ tilt = '-1 deg' }", "`tilt` must lie between 0 and 90 deg"),
        ("{ tilt = '30 nm' }", "expected rad"),
        ("{ tilt = '30 deg', euler = [0, 0, 0] }", "exactly one of `plane`, `euler` or `tilt`"),
        ("{ tilt = '30 deg', in_plane = '10 deg' }", "`in_plane` applies to `plane`"),
    ],
)
def test_tilt_is_validated(tmp_path: Path, orientation: str, message: str) -> None:
    err = error_of(tmp_path, MINIMAL, (f"layers.0.orientation={orientation}",))
    assert message in str(err)
    assert err.key is not None and err.key.startswith("layers.0.orientation")
