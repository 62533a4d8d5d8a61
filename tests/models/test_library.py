"""Tests of the built-in materials library: every entry resolves, every number has a
source, and the numbers agree with the observations their sources quote."""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources

import numpy as np
import pytest

from cosinter.models.materials import (
    Material,
    SpeciesParams,
    library_names,
    library_specs,
    resolve_material,
)
from cosinter.units import AVOGADRO, BOLTZMANN, FARADAY, GAS_CONSTANT

T25 = 298.15
EXPECTED = {
    "NCM111",
    "LLTO",
    "Li2TiO3",
    "LNTO_350",
    "LNTO_450",
    "LNTO_550",
    "Interphase",
    "NMC532",
}
LEAVES = ("initial", "sites", "mu0", "D0", "Ea")


def _raw_library() -> dict[str, dict[str, object]]:
    """The library TOML files as written (independent of the loader)."""
    out: dict[str, dict[str, object]] = {}
    folder = resources.files("cosinter.models") / "library"
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            out.update(tomllib.loads(entry.read_text(encoding="utf-8")))
    return out


def diffusivity_at(material: Material, species: str, T: float) -> np.ndarray:
    p = material.species[species]
    return np.array(p.D0) * np.exp(-np.array(p.Ea) / (BOLTZMANN * T))


def test_library_has_the_issue_entries() -> None:
    assert set(library_names()) == EXPECTED
    assert set(library_names()) == set(_raw_library())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_entry_resolves(name: str) -> None:
    m = resolve_material(name, species={"Li": None})
    assert m.name == name
    assert m.description
    li = m.species["Li"]
    assert li.sites is not None and 0 < li.initial < li.sites
    assert all(d > 0 for d in li.D0) and all(e > 0 for e in li.Ea)


# --------------------------------------------------------------------------- sources

_CITES = re.compile(r"\b(19|20)\d\d\b|doi:|arXiv:|https?://")


def _acceptable_source(leaf: str, text: str) -> bool:
    """A source cites (a year or a doi/arXiv id), or is a calibration that says to
    what, or is the definition of the energy reference (mu0 only)."""
    if _CITES.search(text):
        return True
    if text.startswith("calibrated:") and len(text.split(":", 1)[1].split()) >= 5:
        return True
    return leaf.endswith("mu0") and text.startswith("reference")


def _numeric_leaves(material: Material) -> list[str]:
    leaves = ["lattice"] if material.lattice is not None else []
    if material.relative_permittivity is not None:
        leaves.append("relative_permittivity")
    if material.oxygen_uptake != 1.0:
        leaves.append("oxygen_uptake")
    if material.compensation is not None:
        numbers = material.compensation.model_dump(
            exclude={"model", "lithium", "vacancy"}, exclude_none=True
        )
        leaves += [f"compensation.{key}" for key in numbers]
    for sp, params in material.species.items():
        # a dilute species has no site density to source
        leaves += [
            f"species.{sp}.{key}" for key in LEAVES if key != "sites" or params.sites is not None
        ]
        if params.mobility is not None:
            numbers = params.mobility.model_dump(exclude={"model"})
            leaves += [f"species.{sp}.mobility.{key}" for key in numbers]
    return leaves


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_number_has_a_source(name: str) -> None:
    m = resolve_material(name)
    for leaf in _numeric_leaves(m):
        source = m.source_of(leaf)
        assert source.strip(), f"{name}: no source for {leaf}"
        for part in source.split(" | "):  # {ab, c} tables: each part has its own
            assert _acceptable_source(leaf, part), f"{name}.{leaf}: {part!r}"


def test_every_library_material_has_a_permittivity() -> None:
    for name in sorted(EXPECTED):
        eps = resolve_material(name).relative_permittivity
        assert eps is not None and 1.0 < eps < 1000.0, name


def test_source_rule_rejects_bare_texts() -> None:
    """The rule above is not vacuous."""
    assert not _acceptable_source("species.Li.D0", "a typical value")
    assert not _acceptable_source("species.Li.D0", "calibrated")
    assert not _acceptable_source("species.Li.D0", "reference value")
    assert _acceptable_source("species.Li.D0", "Stramare et al., Chem. Mater. 15 (2003) 3974")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_source_key_names_a_real_value(name: str) -> None:
    """A misspelt key in [X.sources] would leave a number silently unsourced."""
    raw = _raw_library()[name]
    sources = raw.get("sources", {})
    assert isinstance(sources, dict)
    m = resolve_material(name)
    leaves = _numeric_leaves(m)
    for key in sources:
        parent = key.rsplit(".", 1)[0]
        assert key in leaves or (parent in leaves and key.rsplit(".", 1)[1] in "abc ab"), key


def test_sources_do_not_leak_between_siblings() -> None:
    """source_of for one key never answers with another key's citation."""
    m = resolve_material("NCM111")
    assert m.source_of("species.Li.Ea") != m.source_of("species.Li.D0")
    assert "Van der Ven" in m.source_of("species.Li.D0")  # from D0.ab and D0.c
    assert m.source_of("species.Li.D0.c").startswith("calibrated:")
    assert m.source_of("species.Li.nothing") == ""


# --------------------------------------------------------------------------- numbers


def test_ncm111_lattice_and_sites() -> None:
    m = resolve_material("NCM111")
    assert m.lattice is not None
    assert m.lattice.system == "hexagonal"
    assert m.lattice.a == pytest.approx(2.864e-10)
    assert m.lattice.c == pytest.approx(14.233e-10)
    a, c = 2.864e-10, 14.233e-10
    cell_volume = math.sqrt(3) / 2 * a**2 * c  # hexagonal setting, Z = 3
    sites = 3 / (cell_volume * AVOGADRO)  # mol/m^3
    assert m.species["Li"].sites == pytest.approx(sites, rel=1e-3)


def test_ncm111_is_anisotropic_with_blocked_c() -> None:
    """D_c/D_ab: 7.6e-7 at 700 degC, smaller on cooling (Ea 1.3 eV along c, 0.85 in-plane)."""
    m = resolve_material("NCM111")
    hot = diffusivity_at(m, "Li", 700 + 273.15)
    cold = diffusivity_at(m, "Li", T25)
    assert hot[0] == hot[1]
    assert hot[2] / hot[0] == pytest.approx(7.6e-7, rel=0.01)
    assert cold[2] / cold[0] == pytest.approx(4.0e-12, rel=0.05)


def test_llto_nernst_einstein_conductivity() -> None:
    """sigma = F^2 c D / (R T) at 25 degC is the 1e-3 S/cm of Stramare et al."""
    m = resolve_material("LLTO")
    li = m.species["Li"]
    D = diffusivity_at(m, "Li", T25)
    assert np.allclose(D, D[0])  # quasi-isotropic
    sigma = FARADAY**2 * li.initial * D[0] / (GAS_CONSTANT * T25)  # S/m
    assert sigma / 100 == pytest.approx(1e-3, rel=0.02)  # S/cm
    assert li.initial == pytest.approx(10_000.0)


@pytest.mark.parametrize(
    ("name", "D_cm2_s"),
    [("LNTO_350", 4.55e-11), ("LNTO_450", 1.36e-10), ("LNTO_550", 1.11e-11)],
)
def test_lnto_room_temperature_diffusivity_is_the_gitt_value(name: str, D_cm2_s: float) -> None:
    D = diffusivity_at(resolve_material(name), "Li", T25)
    assert np.allclose(D, D[0])
    assert D[0] * 1e4 == pytest.approx(D_cm2_s, rel=0.01)


def test_lnto_anneal_states_share_the_rest() -> None:
    """LNTO_450/550 override only D0 of LNTO_350: same sites, initial, mu0, Ea."""
    base = resolve_material("LNTO_350").species["Li"]
    for name in ("LNTO_450", "LNTO_550"):
        m = resolve_material(name)
        p = m.species["Li"]
        assert m.base_chain == (f"library:{name}", "library:LNTO_350")
        assert (p.sites, p.initial, p.mu0, p.Ea) == (base.sites, base.initial, base.mu0, base.Ea)
        assert p.D0 != base.D0


def test_nmc532_from_its_sources() -> None:
    """Sites from the molar volume 20.73 cm^3/mol, D(25 degC) = 4.62e-10 cm^2/s (Wang
    et al. 2020), Ea = 80.6 kJ/mol (Ecker et al. 2015), isotropic, site fraction 0.98."""
    m = resolve_material("NMC532")
    li = m.species["Li"]
    assert li.sites is not None
    assert li.sites == pytest.approx(1.0 / 20.73e-6, rel=1e-3)  # mol/m^3
    assert li.initial / li.sites == pytest.approx(0.98, rel=1e-3)
    D = diffusivity_at(m, "Li", T25)
    assert np.allclose(D, D[0])
    assert D[0] * 1e4 == pytest.approx(4.62e-10, rel=0.01)
    assert li.Ea[0] * AVOGADRO == pytest.approx(80.6e3, rel=1e-3)
    assert m.lattice is None and m.compensation is None


def test_li2tio3_conductivity_from_its_source() -> None:
    """The Li2TiO3 D0 source quotes D(25 degC) = 4.3e-15 m^2/s from ~1e-5 S/cm."""
    m = resolve_material("Li2TiO3")
    D = diffusivity_at(m, "Li", T25)
    assert D[0] == pytest.approx(4.3e-15, rel=0.02)
    sigma = FARADAY**2 * m.species["Li"].initial * D[0] / (GAS_CONSTANT * T25) / 100
    assert sigma == pytest.approx(1e-5, rel=0.02)
    assert m.lattice is None


def test_li_flows_from_ncm_into_llto() -> None:
    """Equal mu0, higher site fraction in NCM111: Li's chemical potential is higher there."""
    ncm, llto = (resolve_material(n).species["Li"] for n in ("NCM111", "LLTO"))
    kT = BOLTZMANN * T25

    def mu(p: SpeciesParams) -> float:
        assert p.sites is not None
        theta = p.initial / p.sites
        return p.mu0 + kT * math.log(theta / (1 - theta))

    assert mu(ncm) > mu(llto)


def test_library_specs_are_cached_and_validated() -> None:
    assert library_specs() is library_specs()
    assert all(spec.sources for spec in library_specs().values())
