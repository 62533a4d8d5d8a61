"""Tests of cosinter.models.materials: resolution over base chains, overrides,
symmetry checks, provenance, and errors that point at the case key."""

from __future__ import annotations

from typing import Any

import pytest

from cosinter.case import Case, MaterialSpec
from cosinter.errors import CaseError, MaterialError
from cosinter.models.materials import Material, resolve_case_materials, resolve_material

EV = 1.602176634e-19


def specs(**materials: dict[str, Any]) -> dict[str, MaterialSpec]:
    return {name: MaterialSpec.model_validate(body) for name, body in materials.items()}


NCM = resolve_material("NCM111")
NCM_LI = NCM.species["Li"]


# --------------------------------------------------------------------------- base chains


def test_override_of_library_entry_by_base() -> None:
    case = specs(fast={"base": "NCM111", "species": {"Li": {"D0": {"ab": "1e-5 m^2/s", "c": 0}}}})
    m = resolve_material("fast", case)
    li = m.species["Li"]
    assert li.D0 == (1e-5, 1e-5, 0.0)
    # everything else comes from the library entry
    assert (li.Ea, li.sites, li.initial, li.mu0) == (
        NCM_LI.Ea,
        NCM_LI.sites,
        NCM_LI.initial,
        NCM_LI.mu0,
    )
    assert m.lattice == NCM.lattice
    assert m.base_chain == ("case:fast", "library:NCM111")
    assert m.description == NCM.description


def test_base_chain_through_case_materials() -> None:
    case = specs(
        A={"base": "NCM111", "species": {"Li": {"D0": {"ab": "1e-5 m^2/s", "c": "1e-8 m^2/s"}}}},
        B={"base": "A", "species": {"Li": {"Ea": "0.5 eV", "mu0": "-0.2 eV"}}},
        C={"base": "B", "relative_permittivity": 20, "description": "third"},
    )
    m = resolve_material("C", case)
    li = m.species["Li"]
    assert m.base_chain == ("case:C", "case:B", "case:A", "library:NCM111")
    assert li.D0 == (1e-5, 1e-5, 1e-8)  # from A
    assert li.Ea == pytest.approx((0.5 * EV,) * 3)  # from B
    assert li.mu0 == pytest.approx(-0.2 * EV)  # from B
    assert li.sites == NCM_LI.sites  # from the library
    assert m.relative_permittivity == 20
    assert m.description == "third"


def test_case_material_named_like_library_entry_with_itself_as_base() -> None:
    """`[materials.NCM111] base = "NCM111"` overrides the library entry of that name."""
    case = specs(NCM111={"base": "NCM111", "species": {"Li": {"D0": "1e-9 m^2/s"}}})
    m = resolve_material("NCM111", case)
    assert m.base_chain == ("case:NCM111", "library:NCM111")
    assert m.species["Li"].D0 == (1e-9, 1e-9, 1e-9)
    assert m.species["Li"].Ea == NCM_LI.Ea
    # the library entry itself is unchanged
    assert resolve_material("NCM111").species["Li"].D0 == NCM_LI.D0


def test_case_material_shadows_library_entry() -> None:
    """Without `base`, a case material named like a library entry replaces it."""
    case = specs(
        LLTO={"species": {"Li": {"initial": "1 mol/L", "D0": "1e-12 m^2/s", "Ea": "0.3 eV"}}}
    )
    m = resolve_material("LLTO", case)
    assert m.base_chain == ("case:LLTO",)
    assert m.lattice is None
    assert m.species["Li"].sites is None


def test_inline_material_defaults() -> None:
    case = specs(X={"species": {"Li": {"D0": "1e-14 m^2/s", "Ea": "1 eV"}}})
    li = resolve_material("X", case).species["Li"]
    assert (li.initial, li.sites, li.mu0) == (0.0, None, 0.0)


@pytest.mark.parametrize(
    "materials",
    [
        {"A": {"base": "A"}},
        {"A": {"base": "B"}, "B": {"base": "A"}},
        {"A": {"base": "B"}, "B": {"base": "C"}, "C": {"base": "B"}},
    ],
)
def test_circular_bases_raise(materials: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(MaterialError, match="circular base chain"):
        resolve_material("A", specs(**materials))


def test_library_name_reached_through_another_case_material() -> None:
    """NCM111 (case) -> X -> NCM111 ends at the library entry, not in a loop."""
    case = specs(NCM111={"base": "X"}, X={"base": "NCM111", "relative_permittivity": 9})
    m = resolve_material("NCM111", case)
    assert m.base_chain == ("case:NCM111", "case:X", "library:NCM111")
    assert m.relative_permittivity == 9
    assert m.species["Li"] == NCM_LI


def test_unknown_material_suggests_nearest() -> None:
    with pytest.raises(
        MaterialError, match=r"unknown material 'NCM11' \(did you mean 'NCM111'\?\)"
    ):
        resolve_material("NCM11")
    with pytest.raises(MaterialError, match="did you mean 'mine'"):
        resolve_material("mien", specs(mine={"base": "LLTO"}))


def test_unknown_base_names_it() -> None:
    with pytest.raises(MaterialError, match="unknown material 'LLT0'"):
        resolve_material("X", specs(X={"base": "LLT0"}))


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize(
    ("lattice", "species", "needle"),
    [
        (
            None,  # inherits NCM111's hexagonal lattice
            {"D0": {"a": "1e-5 m^2/s", "b": "2e-5 m^2/s", "c": "1e-8 m^2/s"}},
            "D0_a = D0_b",
        ),
        (None, {"Ea": {"a": "0.8 eV", "b": "0.9 eV", "c": "0.9 eV"}}, "Ea_a = Ea_b"),
        (
            {"system": "tetragonal", "a": "5 angstrom", "c": "7 angstrom"},
            {"D0": {"a": 1, "b": 2, "c": 3}},
            "tetragonal",
        ),
        (
            {"system": "cubic", "a": "4 angstrom"},
            {"D0": {"ab": "1e-5 m^2/s", "c": "1e-8 m^2/s"}},
            "isotropic",
        ),
    ],
)
def test_symmetry_errors(
    lattice: dict[str, Any] | None, species: dict[str, Any], needle: str
) -> None:
    body: dict[str, Any] = {"base": "NCM111", "species": {"Li": species}}
    if lattice is not None:
        body["lattice"] = lattice
    with pytest.raises(MaterialError, match=needle):
        resolve_material("X", specs(X=body))


def test_orthorhombic_allows_three_values() -> None:
    body = {
        "base": "NCM111",
        "lattice": {"system": "orthorhombic", "a": 3e-10, "b": 4e-10, "c": 5e-10},
        "species": {"Li": {"D0": {"a": 1e-6, "b": 2e-6, "c": 3e-6}}},
    }
    m = resolve_material("X", specs(X=body))
    assert m.species["Li"].D0 == (1e-6, 2e-6, 3e-6)


def test_inconsistent_lattice_is_a_material_error() -> None:
    body = {"base": "NCM111", "lattice": {"system": "hexagonal", "a": 2e-10, "b": 3e-10, "c": 1e-9}}
    with pytest.raises(MaterialError, match="lattice"):
        resolve_material("X", specs(X=body))


def test_initial_must_stay_below_sites_after_merge() -> None:
    """Each table is valid alone; the merge puts initial above the library's sites."""
    body = {"base": "NCM111", "species": {"Li": {"initial": "60 mol/L"}}}
    with pytest.raises(MaterialError, match="not below sites"):
        resolve_material("X", specs(X=body))


def test_solved_species_needs_transport_parameters() -> None:
    with pytest.raises(MaterialError, match="no parameters for solved species 'Co'"):
        resolve_material("NCM111", species={"Li": None, "Co": None})
    half = specs(X={"species": {"Li": {"D0": "1e-14 m^2/s"}}})
    with pytest.raises(MaterialError, match="'Ea' is missing"):
        resolve_material("X", half, species={"Li": None})
    # an unsolved species without D0/Ea is simply left out
    assert "Li" not in resolve_material("X", half).species


# --------------------------------------------------------------------------- provenance


def test_override_drops_the_replaced_citation() -> None:
    """A D0 the case changes must not carry the library's citation for D0."""
    m = resolve_material(
        "NCM111", specs(NCM111={"base": "NCM111", "species": {"Li": {"D0": "1e-9 m^2/s"}}})
    )
    assert m.source_of("species.Li.D0") == ""
    assert m.source_of("species.Li.Ea") == NCM.source_of("species.Li.Ea") != ""
    assert m.source_of("lattice") == NCM.source_of("lattice")


def test_override_with_its_own_source() -> None:
    body = {
        "base": "LLTO",
        "species": {"Li": {"Ea": "0.3 eV"}},
        "sources": {"species.Li.Ea": "calibrated: to my experiment"},
    }
    m = resolve_material("X", specs(X=body))
    assert m.source_of("species.Li.Ea") == "calibrated: to my experiment"


def test_source_of_never_answers_with_a_sibling() -> None:
    m = Material(
        name="X",
        description="",
        lattice=None,
        relative_permittivity=None,
        species={},
        sources={"species.Li.Ea": "E source", "species.Li.D0.ab": "ab", "species.Li.D0.c": "c"},
    )
    assert m.source_of("species.Li.Ea") == "E source"
    assert m.source_of("species.Li.D0") == "ab | c"
    assert m.source_of("species.Li.sites") == ""
    assert m.source_of("lattice") == ""
    parent = Material(
        name="Y",
        description="",
        lattice=None,
        relative_permittivity=None,
        species={},
        sources={"species.Li": "whole table"},
    )
    assert parent.source_of("species.Li.sites") == "whole table"


# --------------------------------------------------------------------------- case level


def _case(materials: dict[str, Any], layers: list[dict[str, Any]]) -> Case:
    return Case.model_validate(
        {
            "case": {"name": "t"},
            "mesh": {"cell_size": "1 nm"},
            "materials": materials,
            "layers": layers,
            "species": {"Li": {"charge": 1}},
            "temperature": {"steps": [{"hold": "1 s"}]},
        }
    )


def test_resolve_case_materials() -> None:
    case = _case(
        {"NCM111": {"base": "NCM111", "species": {"Li": {"D0": "1e-9 m^2/s"}}}},
        [
            {"material": "NCM111", "thickness": "10 nm"},
            {"material": "LLTO", "thickness": "10 nm"},
            {"material": "NCM111", "thickness": "5 nm"},
        ],
    )
    out = resolve_case_materials(case)
    assert set(out) == {"NCM111", "LLTO"}
    assert out["NCM111"].species["Li"].D0 == (1e-9,) * 3
    assert out["LLTO"].base_chain == ("library:LLTO",)


def test_case_errors_point_at_the_layer_or_the_material() -> None:
    case = _case(
        {}, [{"material": "LLTO", "thickness": "1 nm"}, {"material": "NCM11", "thickness": "1 nm"}]
    )
    with pytest.raises(CaseError, match="did you mean 'NCM111'") as info:
        resolve_case_materials(case)
    assert info.value.key == "layers.1.material"

    case = _case({"A": {"base": "B"}, "B": {"base": "A"}}, [{"material": "A", "thickness": "1 nm"}])
    with pytest.raises(CaseError, match="circular") as info:
        resolve_case_materials(case)
    assert info.value.key == "materials.A"
