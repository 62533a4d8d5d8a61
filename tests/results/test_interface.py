"""Interface metrics, interfacial resistance (ASR), onsets and the effective tensors.

Hand-built geometries with known profiles, each compared with a number worked out
here by hand; an end-to-end run of a shortened Lee et al. case at the end.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cosinter.case import OutputSpec, load_case, validate_case
from cosinter.errors import CaseError
from cosinter.meshes.stack import StackGeometry
from cosinter.models.crystal import rotation_from_euler
from cosinter.models.properties import SpeciesCellData
from cosinter.models.reactions import (
    AllenCahnInterphase,
    CompensationLayer,
    InterphaseSetup,
    LayeredOxideCompensation,
)
from cosinter.models.transport import effective_tensors
from cosinter.results.interface import (
    Cathode,
    InterfaceLayout,
    OnsetTracker,
    carrier_conductivity,
    crossing,
    interface_metrics,
    interface_names,
    zone_resistance,
)
from cosinter.solver.simulation import Simulation
from cosinter.units import BOLTZMANN, FARADAY, GAS_CONSTANT

NCM = Cathode(lithium="Li", vacancy="VO", oxygen_sites=1000.0)
CASES = Path(__file__).parents[2] / "cases"


def two_layers(cell: float = 1e-9, **kwargs: float) -> StackGeometry:
    return StackGeometry((40e-9, 40e-9), cell, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ASR


def test_asr_of_a_uniform_conductivity_is_the_zone_width_over_sigma() -> None:
    g = two_layers()
    sigma = np.full(g.n_cells, 2e-3)
    assert zone_resistance(g, sigma, 0, 20e-9) == pytest.approx(40e-9 / 2e-3, rel=1e-12)
    # a zone wider than the layers is clipped to them
    assert zone_resistance(g, sigma, 0, 1e-6) == pytest.approx(80e-9 / 2e-3, rel=1e-12)


def test_asr_weights_a_half_covered_cell_by_its_overlap() -> None:
    g = two_layers()  # interface at 40 nm, 1 nm cells
    sigma = np.arange(1.0, g.n_cells + 1.0)  # column j (from 0) conducts j + 1 S/m
    # w = 2.5 nm: columns 38, 39 | 40, 41 whole, and half of 37 and of 42
    expected = 1e-9 * (1 / 39 + 1 / 40 + 1 / 41 + 1 / 42) + 0.5e-9 * (1 / 38 + 1 / 43)
    assert zone_resistance(g, sigma, 0, 2.5e-9) == pytest.approx(expected, rel=1e-12)


def test_asr_takes_the_columns_of_a_2d_stack_in_parallel() -> None:
    g = two_layers(dimension=2, width=2e-9, lateral_cell_size=1e-9)
    assert g.shape == (80, 2)
    sigma = np.concatenate([np.full(80, 1e-3), np.full(80, 3e-3)])  # row y0, row y1
    # parallel per column: mean 2e-3 S/m (series per row would give 40 nm / 1.5e-3)
    assert zone_resistance(g, sigma, 0, 20e-9) == pytest.approx(40e-9 / 2e-3, rel=1e-12)


def test_a_column_that_does_not_conduct_makes_the_asr_infinite() -> None:
    g = two_layers()
    sigma = np.full(g.n_cells, 1.0)
    sigma[45] = 0.0  # 5 nm into layer 1: inside a 20 nm zone
    layout = InterfaceLayout((NCM, None), frozenset({"Li"}), asr=True)
    m = interface_metrics(layout, g, {"crossed_Li_i0": 0.0}, {}, conductivity=sigma)
    assert m["asr_ohm_m2"] == math.inf == m["asr_ohm_m2_i0"]
    sigma[45], sigma[70] = 1.0, 0.0  # outside the zone: does not count
    assert zone_resistance(g, sigma, 0, 20e-9) == pytest.approx(40e-9)


def test_carrier_conductivity_is_nernst_einstein_of_the_mobile_fraction() -> None:
    c, sites, d, T = np.array([100.0, 100.0]), np.array([400.0, np.inf]), np.full(2, 1e-15), 300.0
    sigma = carrier_conductivity(c, sites, d, 1, T)
    unit = FARADAY**2 * 100.0 * 1e-15 / (GAS_CONSTANT * T)
    assert sigma == pytest.approx([0.75 * unit, unit], rel=1e-12)  # theta 1/4; dilute
    # an uncharged species counts with z = 1; a charge of 2 with z^2 = 4
    assert carrier_conductivity(c, sites, d, 0, T) == pytest.approx(sigma, rel=1e-12)
    assert carrier_conductivity(c, sites, d, 2, T) == pytest.approx(4 * sigma, rel=1e-12)
    factor = np.array([2.0, 0.5])
    assert carrier_conductivity(c, sites, d, 1, T, factor) == pytest.approx(
        sigma * factor, rel=1e-12
    )


# --------------------------------------------------------------------------- metrics


def test_names_put_the_cathode_interface_first_and_only_what_is_solved() -> None:
    # NCM | Li2TiO3 | LLTO with Li, Ti, VO and the interphase: the cathode interface is 0
    layout = InterfaceLayout(
        (NCM, None, None), frozenset({"Li", "Ti", "VO"}), interphase=True, asr=True
    )
    assert interface_names(layout) == [
        "li_transferred_mol_m2",
        "ti_depth_m",
        "vo_max",
        "interphase_thickness_m",
        "asr_ohm_m2",
        *(f"{n}_i0" for n in ("li_transferred_mol_m2", "ti_depth_m", "vo_max")),
        "interphase_thickness_m_i0",
        "asr_ohm_m2_i0",
        # interface 1 has no cathode neighbour: no vo_max
        *(f"{n}_i1" for n in ("li_transferred_mol_m2", "ti_depth_m")),
        "interphase_thickness_m_i1",
        "asr_ohm_m2_i1",
    ]
    # no cathode: suffixed columns only; no Li: no transfer
    plain = InterfaceLayout((None, None), frozenset({"Ti", "La"}))
    assert interface_names(plain) == ["ti_depth_m_i0", "la_depth_m_i0"]


def test_li_transferred_counts_out_of_the_cathode() -> None:
    g = StackGeometry((10e-9, 10e-9, 10e-9), 1e-9)
    crossed = {"crossed_Li_i0": 3e-6, "crossed_Li_i1": 2e-6}
    # LLTO | NCM | coating: the cathode is right of interface 0, left of interface 1
    layout = InterfaceLayout((None, NCM, None), frozenset({"Li"}))
    m = interface_metrics(layout, g, crossed, {})
    assert m["li_transferred_mol_m2_i0"] == -3e-6  # +x is into the cathode
    assert m["li_transferred_mol_m2_i1"] == 2e-6
    assert m["li_transferred_mol_m2"] == -3e-6  # the first cathode interface
    # no cathode anywhere: net +x, no unsuffixed column
    m = interface_metrics(InterfaceLayout((None, None, None), frozenset({"Li"})), g, crossed, {})
    assert m == {"li_transferred_mol_m2_i0": 3e-6, "li_transferred_mol_m2_i1": 2e-6}
    # the cathode's own lithium species name
    own = InterfaceLayout((Cathode("Li6", "VO", 1.0), None, None), frozenset({"Li6"}))
    m = interface_metrics(own, g, {"crossed_Li6_i0": 1e-6, "crossed_Li6_i1": 5e-7}, {})
    assert m["li_transferred_mol_m2"] == 1e-6
    assert "li_transferred_mol_m2_i1" not in m  # no cathode there: "Li", not solved


def test_depths_are_taken_on_the_cathode_side() -> None:
    g = StackGeometry((10e-9, 10e-9, 10e-9), 1e-9)
    depths = {
        "depth_Ti_i0_left": 1e-9,
        "depth_Ti_i0_right": 4e-9,
        "depth_Ti_i1_left": 2e-9,
        "depth_Ti_i1_right": 3e-9,
    }
    layout = InterfaceLayout((NCM, None, None), frozenset({"Ti"}))
    m = interface_metrics(layout, g, depths, {})
    # interface 0: NCM is left, so not the larger right-hand depth
    assert m["ti_depth_m"] == m["ti_depth_m_i0"] == 1e-9
    assert m["ti_depth_m_i1"] == 3e-9  # no cathode: the larger side
    m = interface_metrics(InterfaceLayout((None, NCM, None), frozenset({"Ti"})), g, depths, {})
    assert m["ti_depth_m_i0"] == 4e-9 and m["ti_depth_m_i1"] == 2e-9


def test_vo_max_is_the_largest_site_fraction_in_the_adjacent_cathode() -> None:
    g = StackGeometry((5e-9, 5e-9, 5e-9), 1e-9, dimension=2, width=2e-9, lateral_cell_size=1e-9)
    vo = np.zeros(g.n_cells)
    cathode_cells = np.flatnonzero(g.cell_layer == 1)
    vo[cathode_cells[3]] = 2.0  # one cell, one row: 2 / 1000 sites
    vo[g.cell_layer == 2] = 50.0  # more V_O outside the cathode does not count
    layout = InterfaceLayout((None, NCM, None), frozenset({"VO"}))
    m = interface_metrics(layout, g, {}, {"VO": vo})
    assert m["vo_max_i0"] == m["vo_max_i1"] == m["vo_max"] == pytest.approx(2e-3)
    # the vacancy species not solved: no column
    assert interface_metrics(InterfaceLayout((None, NCM, None), frozenset()), g, {}, {}) == {}


def test_interphase_thickness_integrates_the_column_averaged_eta() -> None:
    g = StackGeometry((10e-9, 10e-9), 1e-9, dimension=2, width=2e-9, lateral_cell_size=1e-9)
    eta = np.zeros(g.n_cells)
    cols = np.arange(g.nx)
    row0 = np.where(cols >= 7, 1.0, 0.0) * (cols < 10)  # 3 nm of eta = 1 next to x_f
    row0[6] = 0.5
    eta[: g.nx] = row0  # row y0 only: the lateral mean halves it
    layout = InterfaceLayout((NCM, None), frozenset(), interphase=True)
    m = interface_metrics(layout, g, {}, {}, eta=eta)
    assert m["interphase_thickness_m"] == pytest.approx(0.5 * 3.5e-9, rel=1e-12)


# --------------------------------------------------------------------------- onsets


def test_crossing_interpolates_linearly_in_temperature_and_time() -> None:
    T, t = crossing((500.0, 100.0, 0.0), (600.0, 300.0, 4e-6), 1e-6)
    assert (T, t) == pytest.approx((525.0, 150.0))
    # an infinite value after: the later frame
    assert crossing((500.0, 100.0, 1.0), (600.0, 300.0, math.inf), 1.5) == (600.0, 300.0)


def test_onsets_interpolate_between_the_bracketing_frames() -> None:
    thresholds = {"li_transferred_mol_m2": 1e-6, "vo_max": 1e-3, "asr_ratio": 1.5}
    columns = ["li_transferred_mol_m2", "vo_max_i0", "asr_ohm_m2"]
    tracker = OnsetTracker(thresholds, columns)
    frames = [  # (t, T, li, vo, asr)
        (0.0, 300.0, 0.0, 0.0, 100.0),
        (60.0, 400.0, 5e-7, 0.0, 120.0),
        (180.0, 500.0, 1.5e-6, 1e-4, 200.0),
        (240.0, 600.0, 9e-7, 2e-4, 80.0),  # falling back does not undo an onset
    ]
    for frame, (t, T, li, vo, asr) in enumerate(frames):
        metrics = {"li_transferred_mol_m2": li, "vo_max_i0": vo, "asr_ohm_m2": asr}
        tracker.update(frame, t, T, metrics)
    out = json.loads(json.dumps(tracker.as_dict("completed"), allow_nan=False))
    li = out["onsets"]["li_transferred_mol_m2"]
    assert li["frame"] == 2 and li["threshold"] == 1e-6
    assert li["T_K"] == pytest.approx(450.0) and li["time_s"] == pytest.approx(120.0)
    assert li["T_degC"] == pytest.approx(450.0 - 273.15)
    # ASR: 1.5 x 100 ohm m^2 (frame 0) = 150, between 120 (frame 1) and 200 (frame 2)
    asr = out["onsets"]["asr_ohm_m2"]
    assert asr["threshold"] == pytest.approx(150.0) and asr["frame"] == 2
    assert asr["T_K"] == pytest.approx(400.0 + 100.0 * 30.0 / 80.0)
    assert out["asr_reference_ohm_m2"] == {"asr_ohm_m2": 100.0}
    assert out["onsets"]["vo_max_i0"] is None
    assert out["thresholds"] == thresholds and out["frames"] == 4
    assert out["status"] == "completed"


def test_onset_at_the_first_frame_and_an_infinite_initial_asr() -> None:
    tracker = OnsetTracker({"ti_depth_m": 1e-9, "asr_ratio": 1.5}, ["ti_depth_m", "asr_ohm_m2"])
    tracker.update(0, 0.0, 300.0, {"ti_depth_m": 2e-9, "asr_ohm_m2": math.inf})
    tracker.update(1, 10.0, 310.0, {"ti_depth_m": 3e-9, "asr_ohm_m2": math.inf})
    out = json.loads(json.dumps(tracker.as_dict(), allow_nan=False))  # valid JSON
    assert out["onsets"]["ti_depth_m"]["frame"] == 0
    assert out["onsets"]["ti_depth_m"]["T_K"] == 300.0
    assert out["onsets"]["asr_ohm_m2"] is None  # inf cannot rise by a ratio
    assert out["asr_reference_ohm_m2"] == {"asr_ohm_m2": None}


# --------------------------------------------------------------------------- tensors


def test_effective_tensors_match_a_hand_computation() -> None:
    n, T = 4, 700.0
    kT = BOLTZMANN * T
    D0 = np.array([[1e-6, 1e-6, 1e-9]] * n)
    Ea = np.array([[1.2e-19, 1.2e-19, 1.4e-19]] * n)
    data = SpeciesCellData(
        name="Li",
        charge=1,
        initial=np.full(n, 1.0),
        sites=np.full(n, np.inf),
        mu0=np.zeros(n),
        D0=D0,
        Ea=Ea,
    )
    R = np.stack([rotation_from_euler(0.3, 0.9 * k, 0.1) for k in range(n)])
    D0_int, Ea_int = np.array([2e-8, 2e-8, 2e-8]), np.array([1.0e-19, 1.0e-19, 1.0e-19])
    interphase = InterphaseSetup(
        model=AllenCahnInterphase(1e-9, 1e10, 2.5e-19, 0.1, 0.1),
        host=np.array([True, True, False, False]),
        D0={"Li": D0_int},
        Ea={"Li": Ea_int},
        reference=np.ones(n),
    )
    model = LayeredOxideCompensation(
        lithium="Li",
        vacancy="VO",
        reference=1.0,
        tm_capacity=0.0,
        cation_charges={},
        oxygen_sites=1000.0,
        release_prefactor=1e13,
        release_energy=4e-19,
        release_depth=1e-9,
        degradation=0.01,
    )
    # cells 0, 1; zone and release paths do not enter the tensors
    layer = CompensationLayer(
        model=model,
        cells=np.array([0, 1]),
        zone=np.array([1]),
        uptake=np.array([1.0]),
        paths=np.array([[1]]),
    )
    eta = np.array([0.5, 1.0, 0.7, 0.0])  # cell 2 is not a host: its eta does not count
    vo = np.array([5.0, 10.0, 99.0, 0.0])  # nor do V_O outside the compensation layer
    out = effective_tensors(data, R, T, interphase, eta, (layer,), {"VO": vo})

    expected = np.empty((n, 3, 3))
    for i in range(n):
        host = D0[i] * np.exp(-Ea[i] / kT)
        e = eta[i] if interphase.host[i] else 0.0
        p = e**3 * (6 * e * e - 15 * e + 10)  # p(0.5) = 0.5, p(1) = 1
        principal = (1 - p) * host + p * D0_int * np.exp(-Ea_int / kT)
        if i in (0, 1):
            principal = principal * np.exp(-(vo[i] / 1000.0) / 0.01)
        expected[i] = R[i] @ np.diag(principal) @ R[i].T
    scale = 1e-12 * float(np.max(np.abs(expected)))  # round-off of zero off-diagonals
    assert out == pytest.approx(expected, rel=1e-12, abs=scale)
    # without the interphase or the vacancies: the host tensors
    plain = effective_tensors(data, R, T, None, None, (layer,), {})
    assert plain == pytest.approx(data.tensors(R, T), rel=1e-12, abs=scale)
    # another species is neither mixed (no interphase data) nor degraded
    ti = SpeciesCellData("Ti", 0, data.initial, data.sites, data.mu0, D0, Ea)
    other = effective_tensors(ti, R, T, interphase, eta, (layer,), {"VO": vo})
    assert other == pytest.approx(data.tensors(R, T), rel=1e-12, abs=scale)


# --------------------------------------------------------------------------- schema


def test_output_keys_have_units_and_defaults() -> None:
    o = OutputSpec()
    assert o.measure_at == 298.15 and o.asr_half_width == 20e-9 and o.carriers == ["Li"]
    t = OutputSpec(
        measure_at="100 degC",
        onset_thresholds={"li_transferred_mol_m2": "1 umol/cm^2", "ti_depth_m": "2 nm"},
    )
    assert t.measure_at == pytest.approx(373.15)
    assert t.onset_thresholds.li_transferred_mol_m2 == pytest.approx(1e-2)
    assert t.onset_thresholds.ti_depth_m == pytest.approx(2e-9)
    assert t.onset_thresholds.asr_ratio == 1.5  # the others keep their defaults


def _raw(**output: object) -> dict[str, object]:
    return {
        "case": {"name": "t"},
        "mesh": {"dimension": 1, "cell_size": "1 nm"},
        "layers": [{"material": "NCM111", "thickness": "5 nm"}],
        "species": {"Li": {}},
        "temperature": {"steps": [{"hold": "1 s"}]},
        "output": output,
    }


def test_bad_output_keys_are_case_errors_at_the_key() -> None:
    with pytest.raises(CaseError) as info:
        validate_case(_raw(onset_thresholds={"li_transfered_mol_m2": 1e-6}))
    assert info.value.key == "output.onset_thresholds.li_transfered_mol_m2"
    assert "did you mean 'li_transferred_mol_m2'" in str(info.value)
    with pytest.raises(CaseError) as info:
        validate_case(_raw(carriers=["Li", "Ti"]))
    assert info.value.key == "output.carriers" and "'Ti'" in str(info.value)
    with pytest.raises(CaseError) as info:
        validate_case(_raw(onset_thresholds={"li_transferred_mol_m2": "1 nm"}))
    assert "mol/m^2" in str(info.value)
    with pytest.raises(CaseError):
        validate_case(_raw(asr_half_width="0 nm"))
    # the default carriers need no Li
    raw = _raw()
    raw["species"] = {"Ti": {}}
    assert validate_case(raw).output.carriers == ["Li"]


# --------------------------------------------------------------------------- end to end


def test_a_short_lee2024_run_writes_the_interface_metrics_and_onsets(tmp_path: Path) -> None:
    case, raw = load_case(
        CASES / "lee2024_ncm104.toml",
        [
            "temperature.steps.0.staircase.to=200 degC",
            "temperature.steps.0.staircase.hold=1 min",
            'output.at_temperatures=["100 degC"]',
            "mesh.cell_size=1 nm",
            "output.onset_thresholds.ti_depth_m=0.5 nm",
        ],
    )
    result = Simulation(case, raw).run(tmp_path, progress=False)
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    names = [
        "li_transferred_mol_m2",
        "ti_depth_m",
        "la_depth_m",
        "vo_max",
        "interphase_thickness_m",
        "asr_ohm_m2",
    ]
    header = list(rows[0])
    start = header.index("li_transferred_mol_m2")
    assert header[start : start + 12] == names + [f"{n}_i0" for n in names]
    assert header[start + 12] == "steps_accepted"
    for row in rows:
        for name in names:
            assert math.isfinite(float(row[name])), (name, row[name])
            assert row[name] == row[f"{name}_i0"]
    last = result.metrics
    # Li leaves NCM (on the left) for LLTO from ~100 degC
    assert last["li_transferred_mol_m2"] == last["crossed_Li_i0"] > 1e-6
    assert last["asr_ohm_m2"] > 0
    onsets = json.loads((tmp_path / "onsets.json").read_text())
    assert onsets["status"] == "completed" and onsets["frames"] == len(rows) == result.frames
    assert onsets["thresholds"] == {
        "li_transferred_mol_m2": 1e-4,
        "ti_depth_m": 0.5e-9,
        "la_depth_m": 1e-9,
        "vo_max": 1e-4,
        "interphase_thickness_m": 1e-9,
        "asr_ratio": 1.5,
    }
    assert set(onsets["onsets"]) == set(names) | {f"{n}_i0" for n in names}
    li = onsets["onsets"]["li_transferred_mol_m2"]
    assert li is not None and 298.15 <= li["T_K"] <= float(rows[li["frame"]]["T_K"])
    assert onsets["asr_reference_ohm_m2"]["asr_ohm_m2"] == pytest.approx(
        float(rows[0]["asr_ohm_m2"])
    )
