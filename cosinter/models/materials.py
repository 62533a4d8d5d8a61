"""Materials: the built-in library, inline case materials, overrides by ``base``.

The library lives in ``cosinter/models/library/*.toml``; each top-level table is a
material with the same keys as a case's ``[materials.NAME]`` plus ``sources``, a
citation (or "calibrated: <observation>") for every number. Resolution merges a
material over its ``base`` chain field by field, species by species.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from cosinter.case import (
    CompensationSpec,
    DefectMobilitySpec,
    LatticeSpec,
    MaterialSpec,
    SpeciesInMaterial,
)
from cosinter.errors import CaseError, MaterialError
from cosinter.models.crystal import Lattice


@dataclass(frozen=True)
class SpeciesParams:
    """Parameters of one species in one material, SI.

    Attributes
    ----------
    initial
        Initial concentration (mol/m^3).
    sites
        Site density (mol/m^3), or None for an ideal dilute species.
    mu0
        Reference chemical potential (J).
    D0
        Arrhenius prefactors along the crystal axes a, b, c (m^2/s).
    Ea
        Activation energies along a, b, c (J).
    background
        Immobile background (mol/m^3) offsetting the species' charge in Poisson's
        equation; equals ``initial`` unless given.
    mobility
        Concentration-dependent diffusivity model, or None.
    """

    initial: float
    sites: float | None
    mu0: float
    D0: tuple[float, float, float]
    Ea: tuple[float, float, float]
    background: float = 0.0
    mobility: DefectMobilitySpec | None = None


@dataclass(frozen=True)
class Material:
    """A resolved material: lattice, permittivity, per-species parameters, sources."""

    name: str
    description: str
    lattice: Lattice | None
    relative_permittivity: float | None
    species: Mapping[str, SpeciesParams]
    sources: Mapping[str, str] = field(default_factory=dict)
    base_chain: tuple[str, ...] = ()
    compensation: CompensationSpec | None = None
    oxygen_uptake: float = 1.0

    def source_of(self, key: str) -> str:
        """The citation for ``key`` (e.g. ``species.Li.D0``), or the nearest parent's.

        Sources of the key's parts (``species.Li.D0.ab`` and ``.c``) together document
        the key; a sibling's source (``species.Li.Ea``) never does.
        """
        hit = self.sources.get(key)
        if hit:
            return hit
        children = [v for k, v in self.sources.items() if k.startswith(key + ".")]
        if children:
            return " | ".join(dict.fromkeys(children))
        parts = key.split(".")[:-1]
        while parts:
            hit = self.sources.get(".".join(parts))
            if hit:
                return hit
            parts.pop()
        return ""


# --------------------------------------------------------------------------- library


@cache
def library_specs() -> dict[str, MaterialSpec]:
    """All library entries, validated (cached)."""
    specs: dict[str, MaterialSpec] = {}
    folder = resources.files("cosinter.models") / "library"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        for name, body in data.items():
            try:
                specs[name] = MaterialSpec.model_validate(body)
            except ValidationError as exc:  # a packaging bug, not user input
                raise MaterialError(f"library file {entry.name}, material {name}: {exc}") from exc
    return specs


def library_names() -> list[str]:
    """Names of the built-in materials."""
    return sorted(library_specs())


# --------------------------------------------------------------------------- resolution


def _merge_species(base: SpeciesInMaterial, over: SpeciesInMaterial) -> SpeciesInMaterial:
    # attributes, not model_dump(): nested models (mobility) must stay models
    fields = SpeciesInMaterial.model_fields
    values = {k: getattr(base, k) for k in fields}
    values.update({k: getattr(over, k) for k in fields if getattr(over, k) is not None})
    return SpeciesInMaterial.model_construct(**values)


def _overridden_keys(over: MaterialSpec) -> list[str]:
    """Source keys (``lattice``, ``species.Li.D0``, ...) whose values ``over`` sets."""
    keys = [
        k
        for k in ("lattice", "relative_permittivity", "compensation", "oxygen_uptake")
        if getattr(over, k) is not None
    ]
    for name, sp in over.species.items():
        keys += [f"species.{name}.{k}" for k, v in sp.model_dump().items() if v is not None]
    return keys


def _merge(base: MaterialSpec, over: MaterialSpec) -> MaterialSpec:
    species = dict(base.species)
    for name, sp in over.species.items():
        species[name] = _merge_species(species[name], sp) if name in species else sp
    # a value the override replaces no longer has the base's citation
    replaced = _overridden_keys(over)
    sources = {
        k: v
        for k, v in base.sources.items()
        if not any(k == r or k.startswith(r + ".") for r in replaced)
    }
    return MaterialSpec.model_construct(
        base=None,
        description=over.description or base.description,
        lattice=over.lattice or base.lattice,
        relative_permittivity=(
            over.relative_permittivity
            if over.relative_permittivity is not None
            else base.relative_permittivity
        ),
        species=species,
        compensation=over.compensation or base.compensation,
        oxygen_uptake=(
            over.oxygen_uptake if over.oxygen_uptake is not None else base.oxygen_uptake
        ),
        sources={**sources, **over.sources},
    )


def _lattice(spec: LatticeSpec | None) -> Lattice | None:
    if spec is None:
        return None
    b = spec.b if spec.b is not None else spec.a
    c = spec.c if spec.c is not None else spec.a
    return Lattice(system=spec.system, a=spec.a, b=b, c=c)


def _flatten(
    name: str, case_specs: Mapping[str, MaterialSpec], chain: tuple[str, ...]
) -> tuple[MaterialSpec, tuple[str, ...]]:
    """Merge ``name`` over its base chain.

    A case material shadows a library entry of the same name; inside its own chain
    (``[materials.NCM111] base = "NCM111"``) the name then refers to the library.
    Chain entries are ``"case:NAME"`` or ``"library:NAME"``.
    """
    library = library_specs()
    if name in case_specs and f"case:{name}" not in chain:
        spec, origin = case_specs[name], f"case:{name}"
    elif name in library and f"library:{name}" not in chain:
        spec, origin = library[name], f"library:{name}"
    elif f"case:{name}" in chain or f"library:{name}" in chain:
        path = " -> ".join(c.split(":", 1)[1] for c in (*chain, f"x:{name}"))
        raise MaterialError(f"material '{name}': circular base chain {path}")
    else:
        known = sorted(set(library) | set(case_specs))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise MaterialError(f"unknown material '{name}'{hint}; known: {', '.join(known)}")
    chain = (*chain, origin)
    if spec.base is not None:
        base_spec, chain = _flatten(spec.base, case_specs, chain)
        spec = _merge(base_spec, spec)
    return spec, chain


def resolve_material(
    name: str,
    case_specs: Mapping[str, MaterialSpec] | None = None,
    species: Mapping[str, Any] | None = None,
) -> Material:
    """Resolve ``name`` over its base chain into a :class:`Material`.

    Parameters
    ----------
    name
        A case material or a library entry.
    case_specs
        The case's ``[materials]`` table.
    species
        If given, every one of these species must have D0 and Ea in the material.

    Raises
    ------
    MaterialError
        Unknown name, circular ``base`` chain, missing transport parameters.
    """
    case_specs = case_specs or {}
    spec, chain = _flatten(name, case_specs, ())
    params: dict[str, SpeciesParams] = {}
    for sp_name, sp in spec.species.items():
        if sp.D0 is None or sp.Ea is None:
            if species is not None and sp_name in species:
                missing = "D0" if sp.D0 is None else "Ea"
                raise MaterialError(
                    f"material '{name}', species '{sp_name}': '{missing}' is missing "
                    f"(key materials.{name}.species.{sp_name}.{missing})"
                )
            continue
        initial = sp.initial or 0.0
        if sp.sites is not None and initial >= sp.sites:
            raise MaterialError(
                f"material '{name}', species '{sp_name}': initial {initial:g} mol/m^3 is not "
                f"below sites {sp.sites:g} mol/m^3"
            )
        params[sp_name] = SpeciesParams(
            initial=initial,
            sites=sp.sites,
            mu0=sp.mu0 or 0.0,
            D0=sp.D0,
            Ea=sp.Ea,
            background=sp.background if sp.background is not None else initial,
            mobility=sp.mobility,
        )
    if species is not None:
        for sp_name in species:
            if sp_name not in params:
                raise MaterialError(
                    f"material '{name}' has no parameters for solved species '{sp_name}' "
                    f"(add [materials.{name}.species.{sp_name}] with D0 and Ea)"
                )
    try:
        lattice = _lattice(spec.lattice)
    except ValueError as exc:  # e.g. a hexagonal lattice with a != b
        raise MaterialError(f"material '{name}', lattice: {exc}") from None
    if lattice is not None:
        for sp_name, p in params.items():
            _check_symmetry(name, sp_name, lattice, p)
    return Material(
        name=name,
        description=spec.description,
        lattice=lattice,
        relative_permittivity=spec.relative_permittivity,
        species=params,
        sources=dict(spec.sources),
        base_chain=chain,
        compensation=spec.compensation,
        oxygen_uptake=spec.oxygen_uptake if spec.oxygen_uptake is not None else 1.0,
    )


def _check_symmetry(name: str, sp_name: str, lattice: Lattice, p: SpeciesParams) -> None:
    """Crystal symmetry fixes which principal values may differ."""
    for key, values in (("D0", p.D0), ("Ea", p.Ea)):
        a, b, c = values
        if lattice.system in ("hexagonal", "tetragonal") and not _close(a, b):
            raise MaterialError(
                f"material '{name}', species '{sp_name}': a {lattice.system} crystal has "
                f"{key}_a = {key}_b by symmetry (use {{ ab, c }})"
            )
        if lattice.system == "cubic" and not (_close(a, b) and _close(b, c)):
            raise MaterialError(
                f"material '{name}', species '{sp_name}': a cubic crystal has an isotropic "
                f"{key} by symmetry (give a scalar)"
            )


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-12 * max(abs(x), abs(y), 1e-300)


def resolve_case_materials(case: Any) -> dict[str, Material]:
    """Resolve every material a case's layers use, with errors pointing at the key.

    Raises
    ------
    CaseError
        Pointing at ``layers.N.material`` or ``materials.NAME``.
    """
    out: dict[str, Material] = {}
    for index, layer in enumerate(case.layers):
        if layer.material in out:
            continue
        try:
            out[layer.material] = resolve_material(layer.material, case.materials, case.species)
        except MaterialError as exc:
            key = (
                f"materials.{layer.material}"
                if layer.material in case.materials
                else f"layers.{index}.material"
            )
            raise CaseError(str(exc), key=key) from None
    return out
