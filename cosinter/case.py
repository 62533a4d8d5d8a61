"""Case files: TOML -> validated :class:`Case` holding SI floats.

A case file is TOML. Every dimensional value is a string with units (``"50 nm"``)
or a bare number meaning SI; :mod:`cosinter.units` converts at load time, so every
field of a validated :class:`Case` is SI. Unknown keys are rejected with a
suggestion for the nearest valid name. ``--set KEY=VALUE`` overrides are applied
to the raw TOML data by dotted path (``layers.0.thickness=40 nm``) and validated
with the file.

Errors are :class:`~cosinter.errors.CaseError` naming the file, the dotted key
path, the line where TOML shows it, and what was expected.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pint
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cosinter.errors import CaseError
from cosinter.units import EV, UnitParseError, to_si, ureg

# --------------------------------------------------------------------------- quantities


def _quantity(kind: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):  # pydantic would read true as 1.0 (SI)
            raise PydanticCustomError(
                "quantity",
                "expected a number or a string with units, got {value}",
                {"value": str(value).lower()},
            )
        if isinstance(value, str | int | float):
            try:
                return to_si(value, kind)
            except UnitParseError as exc:
                raise PydanticCustomError("quantity", str(exc)) from None
        return value  # let pydantic report the wrong type

    return convert


def _unit_field(kind: str, unit: str) -> Any:
    return BeforeValidator(_quantity(kind)), Field(json_schema_extra={"unit": unit})


Length = Annotated[float, *_unit_field("length", "m")]
Time = Annotated[float, *_unit_field("time", "s")]
Temperature = Annotated[float, *_unit_field("temperature", "K")]
TemperatureDifference = Annotated[float, *_unit_field("temperature_difference", "K")]
HeatingRate = Annotated[float, *_unit_field("heating_rate", "K/s")]
Diffusivity = Annotated[float, *_unit_field("diffusivity", "m^2/s")]
Energy = Annotated[float, *_unit_field("energy", "J")]
Concentration = Annotated[float, *_unit_field("concentration", "mol/m^3")]
Angle = Annotated[float, *_unit_field("angle", "rad")]
Potential = Annotated[float, *_unit_field("potential", "V")]
SurfaceCharge = Annotated[float, *_unit_field("surface_charge", "C/m^2")]
Rate = Annotated[float, *_unit_field("rate", "1/s")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _key_error(at: str, message: str) -> PydanticCustomError:
    """A check across keys that fails at the dotted key ``at`` below the raising model.

    Pydantic locates a model validator's error at the model; :func:`_case_error`
    appends ``at`` so the error names (and finds the line of) the key itself.
    """
    return PydanticCustomError("at_key", message, {"at": at})


# --------------------------------------------------------------------------- [case], [mesh]


class CaseInfo(_Strict):
    """``[case]``: name and description of the run."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Run name: letters, digits and `_.-`; names the default output folder.",
    )
    description: str = Field("", description="Free text, copied to run.json.")


class RefineSpec(_Strict):
    """``[mesh] refine``: cells graded geometrically away from the interfaces."""

    near: Literal["interfaces"] = Field(
        "interfaces", description="Where the fine cells go: every internal interface."
    )
    cell_size: Length = Field(gt=0, description="Cell size at the interfaces along x (m).")
    width: Length = Field(
        gt=0,
        description="Depth of the fine zone on each side of every interface (m); beyond "
        "it cells grow geometrically by `growth` up to the mesh `cell_size`.",
    )
    growth: float = Field(
        1.2,
        gt=1.0,
        le=2.0,
        description="Largest ratio of neighbouring cell sizes in the graded zone (dimensionless).",
    )


class GrainsSpec(_Strict):
    """``[mesh] grains``: a Voronoi polycrystal filling one layer (2D/3D).

    ``count`` seeds drawn uniformly in the layer (seeded, so reproducible); each cell
    of the layer belongs to the nearest seed, across periodic lateral boundaries.
    The layer's ``orientation`` then sets the grains' orientations: one table for
    all, ``"random"``, or a list of tables, one per grain.
    """

    layer: int = Field(
        ge=0,
        description="Index of the polycrystalline layer in [[layers]] (integer, "
        "dimensionless; 0: the first).",
    )
    count: int = Field(ge=1, description="Number of grains (integer, dimensionless).")
    seed: int = Field(
        0,
        description="Seed of the random grain seeds and random orientations (integer, "
        "dimensionless): the same seed gives the same grains.",
    )


class ChannelsSpec(_Strict):
    """``[mesh] channels``: fast-diffusion line defects through one layer (2D/3D).

    Channels run along x through the whole layer at y = spacing/2 + k spacing (in
    3D at every (y, z) of that form); the cells whose centre lies within width/2 of a
    channel get every species' D0 multiplied by ``D_factor``.
    """

    layer: int = Field(
        ge=0,
        description="Index of the layer holding the channels in [[layers]] (integer, "
        "dimensionless; 0: the first).",
    )
    spacing: Length = Field(gt=0, description="Distance between neighbouring channels (m).")
    width: Length = Field(
        gt=0,
        description="Channel width (m), below `spacing`; every channel must hold a cell "
        "centre, so not much below the lateral cell size.",
    )
    D_factor: float = Field(
        gt=0, description="Factor on every species' D0 in the channel cells (dimensionless)."
    )

    @model_validator(mode="after")
    def _width_below_spacing(self) -> ChannelsSpec:
        if self.width >= self.spacing:
            raise ValueError(
                f"`width` ({self.width:g} m) must be below `spacing` ({self.spacing:g} m)"
            )
        return self


class MeshSpec(_Strict):
    """``[mesh]``: the grid. x is the stack normal; y, z lie in the interfaces."""

    dimension: Literal[1, 2, 3] = Field(1, description="1, 2 or 3 dimensions.")
    cell_size: Length = Field(
        gt=0,
        description="Cell size along x (m). Each layer gets an integer number of cells, "
        "the size adjusted down so interfaces fall on cell faces.",
    )
    width: Length | None = Field(
        None, gt=0, description="Lateral extent along y (and z in 3D) (m); 2D/3D only."
    )
    lateral_cell_size: Length | None = Field(
        None, gt=0, description="Cell size along y and z (m); default: `cell_size`."
    )
    lateral: Literal["periodic", "no_flux"] = Field(
        "periodic", description="Lateral boundaries in 2D/3D: periodic or no flux."
    )
    refine: RefineSpec | None = Field(
        None,
        description="Graded x cells near the interfaces (for Debye lengths below a nm); "
        "default: uniform cells.",
    )
    grains: GrainsSpec | None = Field(
        None, description="A Voronoi polycrystal in one layer (2D/3D); default: single crystals."
    )
    channels: ChannelsSpec | None = Field(
        None, description="Fast-diffusion channels through one layer (2D/3D); default: none."
    )

    @model_validator(mode="after")
    def _lateral_needs_width(self) -> MeshSpec:
        if self.dimension > 1 and self.width is None:
            raise ValueError(f"a {self.dimension}D mesh needs `width` (e.g. width = '20 nm')")
        if self.dimension == 1 and (self.width is not None or self.lateral_cell_size is not None):
            raise ValueError("`width` and `lateral_cell_size` apply to 2D/3D meshes only")
        if self.refine is not None and self.refine.cell_size > self.cell_size:
            raise ValueError(
                f"refine.cell_size ({self.refine.cell_size:g} m) must not exceed the mesh "
                f"cell_size ({self.cell_size:g} m)"
            )
        for key in ("grains", "channels"):
            if self.dimension == 1 and getattr(self, key) is not None:
                raise _key_error(
                    key, f"`{key}` applies to 2D/3D meshes only (set dimension = 2 or 3)"
                )
        return self


# --------------------------------------------------------------------------- materials


def _principal(kind: str) -> Callable[[Any], Any]:
    """Scalar, ``{a, b, c}`` or ``{ab, c}`` -> (a, b, c) in SI."""
    scalar = _quantity(kind)

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            keys = set(value)
            if keys == {"ab", "c"}:
                ab, c = scalar(value["ab"]), scalar(value["c"])
                return (ab, ab, c)
            if keys == {"a", "b", "c"}:
                return tuple(scalar(value[k]) for k in ("a", "b", "c"))
            raise PydanticCustomError(
                "principal",
                "expected a scalar or a table of principal values { a, b, c } or { ab, c }, "
                "got keys {keys}",
                {"keys": sorted(keys)},
            )
        v = scalar(value)
        return (v, v, v)

    return convert


Principal3 = tuple[float, float, float]
PrincipalDiffusivity = Annotated[
    Principal3,
    BeforeValidator(_principal("diffusivity")),
    Field(json_schema_extra={"unit": "m^2/s"}),
]
PrincipalEnergy = Annotated[
    Principal3, BeforeValidator(_principal("energy")), Field(json_schema_extra={"unit": "J"})
]


class LatticeSpec(_Strict):
    """``lattice``: crystal system and cell lengths (m); b and c default to a."""

    system: Literal["cubic", "tetragonal", "hexagonal", "orthorhombic"] = Field(
        description="Crystal system (hexagonal: gamma = 120 deg, others orthogonal)."
    )
    a: Length = Field(gt=0, description="Lattice parameter a (m).")
    b: Length | None = Field(None, gt=0, description="Lattice parameter b (m); default a.")
    c: Length | None = Field(None, gt=0, description="Lattice parameter c (m); default a.")


class DefectMobilitySpec(_Strict):
    r"""``mobility = { model = "llto_defect", ... }``: Li mobility carried by A-site defects.

    For Li\ :sub:`x`\ La\ :sub:`y`\ TiO\ :sub:`3` the diffusivity scales with the free
    defect content: vacancies below full A-site occupancy ``full_occupancy``,
    interstitials above it, none at it (see the theory chapter for the equations).
    """

    model: Literal["llto_defect"] = Field(description="The model's name.")
    formula_density: Concentration = Field(
        gt=0, description="Formula units ABO3 per volume (mol/m^3): x = c / formula_density."
    )
    full_occupancy: float = Field(
        gt=0,
        description="Li per formula unit that fills the A sites, 1 - y (dimensionless).",
    )
    reference: float = Field(
        gt=0,
        description="Li per formula unit at which D0 and Ea hold (dimensionless).",
    )
    intrinsic: float = Field(
        ge=0,
        description="Thermal (Frenkel) defect fraction per formula unit left at full "
        "occupancy (dimensionless).",
    )
    crowding_temperatures: list[Temperature] = Field(
        min_length=2,
        description="Temperatures of the crowding turning points (K), ascending.",
    )
    crowding_compositions: list[float] = Field(
        min_length=2,
        description="Li per formula unit of the conductivity maximum at each of "
        "`crowding_temperatures` (dimensionless).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DefectMobilitySpec:
        if len(self.crowding_temperatures) != len(self.crowding_compositions):
            raise ValueError(
                "`crowding_temperatures` and `crowding_compositions` need the same length"
            )
        temps = self.crowding_temperatures
        if any(b <= a for a, b in itertools.pairwise(temps)):
            raise ValueError("`crowding_temperatures` must be strictly ascending")
        if any(x <= self.full_occupancy for x in self.crowding_compositions):
            raise ValueError(
                "every crowding composition must lie above `full_occupancy` "
                "(crowding is an interstitial effect)"
            )
        if self.reference == self.full_occupancy:
            raise ValueError("`reference` must differ from `full_occupancy` (no free defects)")
        return self


class ArrheniusRateSpec(_Strict):
    """An Arrhenius rate constant k = prefactor exp(-Ea / kT)."""

    prefactor: Rate = Field(gt=0, description="Attempt frequency (1/s).")
    Ea: Energy = Field(ge=0, description="Activation energy (J; write e.g. '2.5 eV').")


class CompensationSpec(_Strict):
    r"""``compensation = { model = "layered_oxide", ... }``: what balances Li loss.

    In a layered-oxide cathode the charge left by Li extraction (the deficit below
    ``reference``) is compensated, in order, by transition-metal oxidation up to
    ``tm_capacity``, by incoming high-valent cations (``cation_charges``), and
    otherwise by oxygen release, which creates the vacancy species ``vacancy``
    within ``release_depth`` of an interface to another material at the rate
    ``release``. Oxygen vacancies lower the Li diffusivity by exp(-theta_VO /
    ``degradation``). Equations: the theory chapter, "Interface chemistry".
    """

    model: Literal["layered_oxide"] = Field(description="The model's name.")
    lithium: str = Field("Li", description="The species whose loss is compensated.")
    vacancy: str = Field("VO", description="The oxygen-vacancy species oxygen release creates.")
    reference: Concentration | None = Field(
        None, gt=0, description="Pristine Li content (mol/m^3); default: the Li `initial`."
    )
    tm_capacity: Concentration = Field(
        ge=0,
        description="Holes the transition metals can take by oxidation (mol/m^3 of "
        "elementary charges).",
    )
    cation_charges: dict[str, float] = Field(
        default_factory=dict,
        description="Excess positive charge each incoming cation brings, per species "
        "(elementary charges per ion, e.g. { Ti = 1, La = 2 }).",
    )
    oxygen_sites: Concentration = Field(
        gt=0, description="Oxygen sites (mol/m^3): V_O site fraction = c_VO / oxygen_sites."
    )
    release: ArrheniusRateSpec = Field(
        description="Rate constant of oxygen release from the uncompensated deficit."
    )
    release_depth: Length = Field(
        gt=0, description="Depth from an interface to another material where O is lost (m)."
    )
    degradation: float = Field(
        gt=0,
        description="V_O site fraction that lowers the Li diffusivity by a factor e "
        "(dimensionless).",
    )


class SpeciesInMaterial(_Strict):
    """``[materials.NAME.species.SP]``: parameters of species SP in this material."""

    initial: Concentration | None = Field(
        None, ge=0, description="Initial concentration (mol/m^3); default 0."
    )
    sites: Concentration | None = Field(
        None,
        gt=0,
        description="Site density (mol/m^3). Given: lattice gas, "
        "mu = mu0 + kT ln(theta/(1-theta)). Omitted: ideal dilute, mu = mu0 + kT ln c.",
    )
    mu0: Energy | None = Field(
        None, description="Reference chemical potential (J; write e.g. '-0.1 eV'); default 0."
    )
    D0: PrincipalDiffusivity | None = Field(
        None,
        description="Arrhenius prefactor (m^2/s): a scalar or principal values along the "
        "crystal axes {a, b, c} or {ab, c}.",
    )
    Ea: PrincipalEnergy | None = Field(
        None, description="Activation energy (J; write e.g. '0.85 eV'), scalar or principal."
    )

    background: Concentration | None = Field(
        None,
        ge=0,
        description="Immobile background (mol/m^3) whose charge -z F background offsets "
        "this species' charge in Poisson's equation; default: `initial` (a neutral start).",
    )
    mobility: DefectMobilitySpec | None = Field(
        None,
        description="Concentration-dependent diffusivity model; default: none "
        "(D from D0 and Ea only).",
    )

    @model_validator(mode="after")
    def _sites_hold_initial(self) -> SpeciesInMaterial:
        if self.sites is not None and self.initial is not None and self.initial >= self.sites:
            raise ValueError(
                f"`initial` ({self.initial:g} mol/m^3) must be below `sites` "
                f"({self.sites:g} mol/m^3): a full lattice gas has no chemical potential"
            )
        if self.D0 is not None and min(self.D0) < 0:
            raise ValueError("D0 must not be negative")
        return self


class MaterialSpec(_Strict):
    """``[materials.NAME]``: an inline material, or an override of ``base``."""

    base: str | None = Field(
        None, description="Library entry or other case material this one starts from."
    )
    description: str = Field("", description="Free text.")
    lattice: LatticeSpec | None = Field(None, description="Crystal lattice.")
    relative_permittivity: float | None = Field(
        None, gt=0, description="Relative permittivity eps_r (dimensionless)."
    )
    species: dict[str, SpeciesInMaterial] = Field(
        default_factory=dict, description="Per-species parameters."
    )
    compensation: CompensationSpec | None = Field(
        None,
        description="Charge compensation of Li loss (cathodes); active when the case "
        "solves its `vacancy` species.",
    )
    oxygen_uptake: float | None = Field(
        None,
        ge=0,
        le=1,
        description="How freely oxygen released by a neighbouring cathode leaves into "
        "this material, 0 (not at all) to 1 (freely) (dimensionless); default 1.",
    )
    sources: dict[str, str] = Field(
        default_factory=dict,
        description="Citation per key path (e.g. 'species.Li.D0'); required in the library.",
    )


# --------------------------------------------------------------------------- layers


class Orientation(_Strict):
    """``orientation``: the crystal plane in the interface, Bunge Euler angles, or a tilt.

    ``{ plane = [h, k, l] }`` or ``[h, k, i, l]``: the plane normal maps to +x; the
    projection of the crystal c axis on the interface plane maps to +z (crystal a
    to +y when the plane is (00l)); ``in_plane`` then rotates about x.
    ``{ euler = [phi1, Phi, phi2] }``: Bunge ZXZ, the crystal -> lab rotation is
    g^T with g = Rz(phi2) Rx(Phi) Rz(phi1).
    ``{ tilt = "30 deg" }``: the crystal c axis tilted by that angle from the stack
    normal x toward +z (a rotation about y), crystal a along +y: 0 deg is c along x
    (the closed (003) interface), 90 deg puts c in the interface plane.
    """

    plane: list[int] | None = Field(
        None, description="Miller [h, k, l] or Miller-Bravais [h, k, i, l] indices."
    )
    in_plane: Angle = Field(0.0, description="Rotation about the stack normal x (rad).")
    euler: list[Angle] | None = Field(
        None, description="Bunge Euler angles [phi1, Phi, phi2] (rad; write '30 deg')."
    )
    tilt: Angle | None = Field(
        None,
        description="Angle between the crystal c axis and the stack normal x, 0 to pi/2 "
        "(rad; write '30 deg'); c turns about y toward +z, crystal a stays along +y. "
        "No lattice needed.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Orientation:
        kinds = [k for k in ("plane", "euler", "tilt") if getattr(self, k) is not None]
        if len(kinds) != 1:
            given = f" (got {' and '.join(kinds)})" if kinds else ""
            raise ValueError(f"give exactly one of `plane`, `euler` or `tilt`{given}")
        if self.tilt is not None:
            if not 0.0 <= self.tilt <= math.pi / 2:
                raise _key_error(
                    "tilt",
                    f"`tilt` must lie between 0 and 90 deg (got {math.degrees(self.tilt):.6g} "
                    "deg): the angle between the crystal c axis and the stack normal",
                )
            if self.in_plane != 0.0:
                raise ValueError("`in_plane` applies to `plane` orientations only")
            return self
        if self.plane is not None and len(self.plane) not in (3, 4):
            raise ValueError("`plane` takes 3 (Miller) or 4 (Miller-Bravais) indices")
        if self.euler is not None and len(self.euler) != 3:
            raise ValueError("`euler` takes 3 angles [phi1, Phi, phi2]")
        if self.euler is not None and self.in_plane != 0.0:
            raise ValueError("`in_plane` applies to `plane` orientations only")
        return self


def _orientation_kind(value: Any) -> str | None:
    if isinstance(value, dict | Orientation):
        return "table"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, str):
        return "random"
    return None


#: Union tags of ``orientation`` (pydantic puts them in error locations).
_ORIENTATION_TAGS = ("table", "list", "random")

LayerOrientation = Annotated[
    Annotated[Orientation, Tag("table")]
    | Annotated[list[Orientation], Tag("list")]
    | Annotated[Literal["random"], Tag("random")],
    Discriminator(
        _orientation_kind,
        custom_error_type="orientation_kind",
        custom_error_message="an orientation is a table { plane = ... }, { euler = ... } or "
        "{ tilt = ... }, a list of such tables (one per grain) or the string 'random'",
    ),
]


class LayerSpec(_Strict):
    """``[[layers]]``: one layer of the stack, in order along +x."""

    material: str = Field(description="Name of a case material or a library entry.")
    thickness: Length = Field(gt=0, description="Layer thickness along x (m).")
    orientation: LayerOrientation | None = Field(
        None,
        description="Crystal orientation (angles in rad); default: crystal axes = lab axes. "
        'On the layer of `[mesh] grains` also `"random"` (a uniformly random orientation '
        "per grain) or a list of `grains.count` tables, one per grain.",
    )


class SpeciesSpec(_Strict):
    """``[species.NAME]``: a solved species."""

    charge: int = Field(0, description="Charge number z (integer).")
    description: str = Field("", description="Free text.")


# --------------------------------------------------------------------------- temperature


class RampStep(_Strict):
    """``{ ramp = "10 K/min", to = "850 degC" }``: heat or cool at |ramp| to ``to``."""

    ramp: HeatingRate = Field(gt=0, description="Rate magnitude (K/s); the sign comes from `to`.")
    to: Temperature = Field(gt=0, description="Target temperature (K).")


class HoldStep(_Strict):
    """``{ hold = "1 h" }``: constant temperature."""

    hold: Time = Field(ge=0, description="Duration (s).")


class Staircase(_Strict):
    """``staircase``: ramp by ``step`` at ``rate``, hold ``hold``, repeat up to ``to``."""

    to: Temperature = Field(gt=0, description="Final temperature (K).")
    step: TemperatureDifference = Field(gt=0, description="Temperature increment (K).")
    rate: HeatingRate = Field(gt=0, description="Ramp rate between holds (K/s).")
    hold: Time = Field(ge=0, description="Hold after each increment (s).")


class StaircaseStep(_Strict):
    """``{ staircase = { to, step, rate, hold } }``: the in situ XRD protocol."""

    staircase: Staircase


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("ramp", "hold", "staircase"):
            if key in value:
                return key
        return None
    return type(value).__name__.removesuffix("Step").lower() or None


Step = Annotated[
    Annotated[RampStep, Tag("ramp")]
    | Annotated[HoldStep, Tag("hold")]
    | Annotated[StaircaseStep, Tag("staircase")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="each step is one of { ramp, to }, { hold } or { staircase = {...} }",
    ),
]


class TemperatureSpec(_Strict):
    """``[temperature]``: the heating program."""

    initial: Temperature = Field(298.15, gt=0, description="Start temperature (K).")
    steps: list[Step] = Field(
        min_length=1, description="Program steps in order: ramp, hold or staircase."
    )


# --------------------------------------------------------------------------- boundaries, output


class BoundarySpec(_Strict):
    """``[boundaries.left]`` / ``[boundaries.right]``: no flux unless ``fixed``.

    With electrostatics: ``potential`` (fixed), ``surface_charge`` (fixed field), or
    neither (zero field).
    """

    fixed: dict[str, Concentration] = Field(
        default_factory=dict, description="Fixed concentrations (mol/m^3) per species."
    )
    potential: Potential | None = Field(
        None, description="Fixed electric potential at this end (V); needs electrostatics."
    )
    surface_charge: SurfaceCharge | None = Field(
        None,
        description="Charge per area on this end (C/m^2): eps dphi/dn = surface_charge "
        "(n the outward normal); needs electrostatics.",
    )

    @model_validator(mode="after")
    def _one_potential_condition(self) -> BoundarySpec:
        if self.potential is not None and self.surface_charge is not None:
            raise ValueError("give at most one of `potential` or `surface_charge`")
        return self


class BoundariesSpec(_Strict):
    """``[boundaries]``: the two x ends of the stack."""

    left: BoundarySpec = Field(default_factory=BoundarySpec, description="x = 0 end.")
    right: BoundarySpec = Field(default_factory=BoundarySpec, description="x = L end.")


class InterfaceSpec(_Strict):
    """``[[interfaces]]``: space-charge conditions at an internal interface."""

    after_layer: int = Field(
        ge=0, description="The interface between layer `after_layer` and the next one."
    )
    sheet_charge: SurfaceCharge = Field(
        0.0, description="Fixed charge per area on the interface (C/m^2)."
    )
    potential: Potential | None = Field(
        None, description="Electric potential pinned on the interface (V); default: free."
    )


class ElectrostaticsSpec(_Strict):
    """``[electrostatics]``: Poisson's equation solved with the species."""

    enabled: bool = Field(
        False,
        description="Solve the potential: charged species drift in the field they create.",
    )


class InterphaseSpec(_Strict):
    r"""``[interphase]``: the reaction layer that forms where cations interdiffuse.

    An Allen–Cahn phase field :math:`\eta` in the cells of materials with a
    ``compensation`` model (the cathode), driven by the local content of the
    ``cations`` and by Li depletion; where :math:`\eta \to 1` the species move with
    ``material``'s coefficients (principal values interpolated linearly with
    :math:`p(\eta) = \eta^3(6\eta^2 - 15\eta + 10)`).
    """

    enabled: bool = Field(False, description="Solve the interphase phase field eta.")
    material: str = Field("Interphase", description="Material whose transport holds where eta = 1.")
    cations: list[str] = Field(
        default_factory=lambda: ["Ti", "La"],
        description="Species whose content drives the interphase (solved ones count).",
    )
    width: Length = Field(
        1e-9,
        gt=0,
        description="Half-width delta of the tanh profile of the phase boundary (m).",
    )
    mobility: ArrheniusRateSpec = Field(
        default_factory=lambda: ArrheniusRateSpec(prefactor=1e10, Ea=1.6 * EV),
        description="Relaxation rate of eta (1/s); default calibrated (theory chapter).",
    )
    cation_fraction: float = Field(
        0.1,
        gt=0,
        description="Cation content (per `compensation.reference` Li site) at which the "
        "drive reaches the spinodal without Li loss (dimensionless).",
    )
    li_depletion: float = Field(
        0.1,
        gt=0,
        description="Fractional Li loss that doubles the drive (dimensionless).",
    )


def _amount_per_area(value: Any) -> Any:
    """An amount per area ("1e-6 mol/m^2", "1 umol/cm^2") or a bare number (mol/m^2)."""
    if not isinstance(value, str):
        return _quantity("dimensionless")(value)  # a number is SI; true/false rejected
    try:
        q: Any = ureg.Quantity(value.strip())
        result = float(q.magnitude if q.unitless else q.to("mol/m**2").magnitude)
    except pint.DimensionalityError:
        raise PydanticCustomError(
            "quantity",
            "{value!r} is not an amount per area; expected mol/m^2 (e.g. '1e-6 mol/m^2')",
            {"value": value},
        ) from None
    except Exception as exc:  # pint raises several unrelated types
        raise PydanticCustomError(
            "quantity", "cannot read {value!r} as a quantity ({exc})", {"value": value, "exc": exc}
        ) from None
    if not math.isfinite(result):
        raise PydanticCustomError("quantity", "{value!r} is not a finite number", {"value": value})
    return result


AmountPerArea = Annotated[
    float, BeforeValidator(_amount_per_area), Field(json_schema_extra={"unit": "mol/m^2"})
]


class OnsetThresholds(_Strict):
    """``[output] onset_thresholds``: when an interface metric counts as started.

    ``onsets.json`` records, for every interface metric column of ``metrics.csv``,
    the first temperature (and time) at which it reaches its threshold; the keys
    are the metric names without the interface suffix.
    """

    li_transferred_mol_m2: AmountPerArea = Field(
        1e-4,
        gt=0,
        description="Li transferred out of the cathode (mol/m^2); the default, 10 % of "
        "the NCM111 Li within 20 nm of the interface, is about what EELS resolves.",
    )
    ti_depth_m: Length = Field(1e-9, gt=0, description="Ti penetration depth into the cathode (m).")
    la_depth_m: Length = Field(1e-9, gt=0, description="La penetration depth into the cathode (m).")
    vo_max: float = Field(
        1e-4, gt=0, description="Largest V_O site fraction in the cathode (dimensionless)."
    )
    interphase_thickness_m: Length = Field(
        1e-9, gt=0, description="Interphase thickness, the integral of eta over x (m)."
    )
    asr_ratio: float = Field(
        1.5,
        gt=1,
        description="Interfacial resistance `asr_ohm_m2` relative to its value in frame 0 "
        "(dimensionless).",
    )


class OutputSpec(_Strict):
    """``[output]``: where and when frames are written (the final state always is)."""

    directory: str | None = Field(
        None, description="Output folder; default `results/<case name>` (relative to CWD)."
    )
    every: Time | None = Field(
        None, gt=0, description="A frame every this much simulated time (s)."
    )
    at_temperatures: list[Temperature] = Field(
        default_factory=list, description="Frames when the program first reaches each T (K)."
    )
    at_step_ends: bool = Field(False, description="A frame at the end of every program step.")
    penetration_threshold: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Penetration depth threshold, as a fraction of the species' largest "
        "initial concentration in the stack (dimensionless).",
    )
    measure_at: Temperature = Field(
        298.15,
        gt=0,
        description="Temperature at which `asr_ohm_m2` is evaluated from each frame's "
        "frozen state (K; default 25 degC).",
    )
    asr_half_width: Length = Field(
        20e-9,
        gt=0,
        description="Half-width w of the zone x_f - w .. x_f + w around an interface x_f "
        "whose area-specific resistance `asr_ohm_m2` is reported (m).",
    )
    carriers: list[str] = Field(
        default_factory=lambda: ["Li"],
        description="Species (names from [species]) whose ionic conduction makes up "
        "`asr_ohm_m2` (no unit); by default Li, if solved. An empty list writes no ASR.",
    )
    onset_thresholds: OnsetThresholds = Field(
        default_factory=OnsetThresholds,
        description="Thresholds of the interface metrics for `onsets.json`, in each metric's unit.",
    )


class SolverSpec(_Strict):
    """``[solver]``: time-step control."""

    rtol: float = Field(1e-3, gt=0, lt=1, description="Relative local error per step.")
    max_temperature_change: TemperatureDifference = Field(
        5.0, gt=0, description="Largest temperature change in one step (K)."
    )
    dt_max: Time | None = Field(None, gt=0, description="Largest time step (s); default none.")
    dt_initial: Time = Field(1e-3, gt=0, description="First trial step (s).")
    dt_min: Time = Field(1e-12, gt=0, description="Below this step the run fails (s).")
    max_sweeps: int = Field(
        30, ge=1, description="Nonlinear sweeps per step before the step is rejected."
    )
    interphase_rtol: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Relative local error per step of the interphase field eta "
        "(default: rtol). Each cell's eta switches within ~1/rate (20 ms at 700 degC); "
        "resolving every switch to rtol costs thousands of steps in 2D.",
    )


# --------------------------------------------------------------------------- the case


class Case(_Strict):
    """A validated case: every dimensional field in SI."""

    case: CaseInfo
    mesh: MeshSpec
    materials: dict[str, MaterialSpec] = Field(
        default_factory=dict, description="Inline materials and overrides of library entries."
    )
    layers: list[LayerSpec] = Field(min_length=1, description="The stack, in order along +x.")
    species: dict[str, SpeciesSpec] = Field(min_length=1, description="Solved species.")
    temperature: TemperatureSpec
    boundaries: BoundariesSpec = Field(default_factory=BoundariesSpec)
    electrostatics: ElectrostaticsSpec = Field(default_factory=ElectrostaticsSpec)
    interphase: InterphaseSpec = Field(default_factory=InterphaseSpec)
    interfaces: list[InterfaceSpec] = Field(
        default_factory=list, description="Space-charge conditions at internal interfaces."
    )
    output: OutputSpec = Field(default_factory=OutputSpec)
    solver: SolverSpec = Field(default_factory=SolverSpec)

    @model_validator(mode="after")
    def _fixed_species_are_solved(self) -> Case:
        for side in ("left", "right"):
            for sp in getattr(self.boundaries, side).fixed:
                if sp not in self.species:
                    raise PydanticCustomError(
                        "unknown_species",
                        "boundaries.{side}.fixed names species '{sp}', which is not in "
                        "[species] ({known})",
                        {"side": side, "sp": sp, "known": ", ".join(self.species)},
                    )
        return self

    @model_validator(mode="after")
    def _electrostatic_keys_need_poisson(self) -> Case:
        if self.electrostatics.enabled:
            if not any(s.charge for s in self.species.values()):
                raise ValueError(
                    "electrostatics is enabled but no species has a `charge`; "
                    "set e.g. [species.Li] charge = 1"
                )
        else:
            for side in ("left", "right"):
                b = getattr(self.boundaries, side)
                if b.potential is not None or b.surface_charge is not None:
                    raise ValueError(
                        f"boundaries.{side} sets a potential or surface charge, which "
                        "needs [electrostatics] enabled = true"
                    )
            if self.interfaces:
                raise ValueError("[[interfaces]] needs [electrostatics] enabled = true")
        seen: set[int] = set()
        for k, iface in enumerate(self.interfaces):
            if iface.after_layer >= len(self.layers) - 1:
                raise ValueError(
                    f"interfaces.{k}.after_layer = {iface.after_layer}: the stack has "
                    f"{len(self.layers)} layers, so internal interfaces are 0.."
                    f"{len(self.layers) - 2}"
                )
            if iface.potential is not None and iface.sheet_charge != 0.0:
                raise ValueError(
                    f"interfaces.{k}: give `sheet_charge` or `potential`, not both (a "
                    "pinned potential takes whatever charge it needs)"
                )
            if iface.after_layer in seen:
                raise ValueError(f"interfaces.{k}: interface {iface.after_layer} listed twice")
            seen.add(iface.after_layer)
        return self

    @model_validator(mode="after")
    def _carriers_are_solved(self) -> Case:
        if "carriers" not in self.output.model_fields_set:
            return self  # the default ["Li"] counts only when Li is solved
        for name in self.output.carriers:
            if name not in self.species:
                raise _key_error(
                    "output.carriers",
                    f"output.carriers names species '{name}', which is not in [species] "
                    f"({', '.join(self.species)}){_suggest(name, self.species)}",
                )
        if len(set(self.output.carriers)) != len(self.output.carriers):
            raise _key_error("output.carriers", "output.carriers lists a species twice")
        return self

    @model_validator(mode="after")
    def _microstructure_fits_the_stack(self) -> Case:
        n = len(self.layers)
        grains, channels = self.mesh.grains, self.mesh.channels
        for key, spec in (("grains", grains), ("channels", channels)):
            if spec is not None and spec.layer >= n:
                raise _key_error(
                    f"mesh.{key}.layer",
                    f"mesh.{key}.layer = {spec.layer}: the stack has {n} layer"
                    f"{'s' if n > 1 else ''}, numbered 0..{n - 1}",
                )
        for index, layer in enumerate(self.layers):
            o = layer.orientation
            if not isinstance(o, str | list):
                continue
            kind = "'random'" if isinstance(o, str) else "a list of orientations"
            if grains is None or grains.layer != index:
                where = "no [mesh] grains" if grains is None else f"grains.layer = {grains.layer}"
                raise _key_error(
                    f"layers.{index}.orientation",
                    f"layers.{index}.orientation = {kind} applies to the grain layer only "
                    f"(set [mesh] grains with layer = {index}); the case has {where}",
                )
            if isinstance(o, list) and len(o) != grains.count:
                raise _key_error(
                    f"layers.{index}.orientation",
                    f"layers.{index}.orientation lists {len(o)} orientations, but "
                    f"mesh.grains.count = {grains.count}: give one per grain",
                )
        return self

    def output_directory(self) -> Path:
        """The output folder: ``[output] directory`` or ``results/<case name>``."""
        if self.output.directory:
            return Path(self.output.directory)
        return Path("results") / self.case.name


# --------------------------------------------------------------------------- loading


def load_case(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Case, dict[str, Any]]:
    """Read, override and validate a case file.

    Parameters
    ----------
    path
        The TOML case file.
    overrides
        ``KEY=VALUE`` strings; KEY is a dotted path into the file (list indices as
        numbers), VALUE a TOML value or a bare string (``"40 nm"``).

    Returns
    -------
    case, raw
        The validated case and the raw (overridden) TOML data, for run.json.

    Raises
    ------
    CaseError
        Unreadable file, bad TOML, unknown key, wrong value; the message names the
        file, key path and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(f"cannot read the case file ({exc.strerror})", file=str(path)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise CaseError(
            f"not valid TOML: {exc}",
            file=str(path),
            key=key_at_line(text, line) if line else None,
            line=line,
        ) from None
    raw = apply_overrides(raw, overrides, file=str(path))
    return validate_case(raw, file=str(path), text=text, overrides=overrides), raw


def validate_case(
    raw: dict[str, Any],
    *,
    file: str | None = None,
    text: str | None = None,
    overrides: Sequence[str] = (),
) -> Case:
    """Validate raw TOML data into a :class:`Case`, with file/key/line errors."""
    try:
        return Case.model_validate(raw)
    except ValidationError as exc:
        raise _case_error(exc, file=file, text=text, overrides=overrides) from None


def _parse_override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def apply_overrides(
    raw: dict[str, Any], overrides: Iterable[str], *, file: str | None = None
) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides to a copy of raw TOML data.

    List indices must exist; missing tables are created, and the schema then
    decides whether the new keys are allowed.
    """
    data = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise CaseError(f"--set expects KEY=VALUE, got {item!r}", file=file, key=item.strip())
        key, value = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                    raise CaseError(
                        f"--set {key}: '{part}' is not an index of a list of {len(node)}",
                        file=file,
                        key=where,
                    )
                if last:
                    node[int(part)] = _parse_override_value(value)
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = _parse_override_value(value)
                else:
                    # a table the file omits ([boundaries], [solver], ...) starts empty;
                    # the schema then rejects it if no such key exists
                    node = node.setdefault(part, {})
            else:
                raise CaseError(
                    f"--set {key}: '{'.'.join(parts[:depth])}' is a value, not a table",
                    file=file,
                    key=where,
                )
    return data


def override_for(key: str, overrides: Iterable[str]) -> str | None:
    """The ``--set`` item that set ``key``, a table above it, or a key inside it."""
    for item in overrides:
        okey = item.split("=", 1)[0].strip()
        if okey == key or key.startswith(okey + ".") or okey.startswith(key + "."):
            return item
    return None


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_STEP_MODELS: dict[str, type[BaseModel]] = {
    "ramp": RampStep,
    "hold": HoldStep,
    "staircase": StaircaseStep,
}


def _is_step_tag(loc: Sequence[str | int], i: int) -> bool:
    """Is ``loc[i]`` the union tag pydantic inserts after ``temperature.steps.N``?"""
    return (
        i >= 3
        and loc[i] in _STEP_MODELS
        and isinstance(loc[i - 1], int)
        and loc[i - 2] == "steps"
        and loc[i - 3] == "temperature"
    )


def _is_orientation_tag(loc: Sequence[str | int], i: int) -> bool:
    """Is ``loc[i]`` the union tag pydantic inserts after ``layers.N.orientation``?"""
    return (
        i >= 3
        and loc[i] in _ORIENTATION_TAGS
        and loc[i - 1] == "orientation"
        and isinstance(loc[i - 2], int)
        and loc[i - 3] == "layers"
    )


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for name suggestions).

    ``loc`` is pydantic's raw error location, with the union tag of a temperature
    step (``temperature.steps.0.<tag>``) that tells which step model applies.
    """
    import typing

    model: Any = Case
    skip_next = False  # the next part is a dict key or list index, not a field
    for i, part in enumerate(loc[:-1]):
        if _is_step_tag(loc, i):
            model = _STEP_MODELS[str(part)]
            continue
        if _is_orientation_tag(loc, i):  # the model is Orientation for every tag
            continue
        if skip_next or isinstance(part, int):
            skip_next = False
            continue
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        annotation = fields[part].annotation
        if typing.get_origin(annotation) in (dict, list):
            skip_next = typing.get_origin(annotation) is dict
            annotation = typing.get_args(annotation)[-1]
        model = _inner_model(annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The first BaseModel inside an annotation (through Optional/Annotated)."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _clean_loc(loc: Sequence[str | int]) -> list[str | int]:
    """Drop pydantic's union tags and validator names from an error location."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if _is_step_tag(loc, i):
            continue  # a Tag, never a key (a real 'staircase' key follows its tag)
        if _is_orientation_tag(loc, i):
            continue
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return out


def _case_error(
    exc: ValidationError,
    *,
    file: str | None,
    text: str | None,
    overrides: Sequence[str],
) -> CaseError:
    errors = exc.errors()
    # An unknown key is the likeliest root cause: a misspelt 'thikness' also makes
    # 'thickness' missing, and the message should be about the misspelling.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    raw_loc: Sequence[str | int] = err["loc"]
    ctx = err.get("ctx") or {}
    if err["type"] == "unknown_species":  # raised by Case, so pydantic gives no location
        raw_loc = ("boundaries", ctx["side"], "fixed", ctx["sp"])
    if err["type"] == "at_key":  # a check across keys, at a key below the raising model
        raw_loc = (*raw_loc, *(int(p) if p.isdigit() else p for p in ctx["at"].split(".")))
    loc = _clean_loc(raw_loc)
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        model = _model_at(raw_loc)
        allowed = list(model.model_fields) if model is not None else []
        hint = _suggest(str(loc[-1]), allowed)
        allowed_txt = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        message = f"unknown key '{loc[-1]}'{hint}{allowed_txt}"
    elif err["type"] == "missing":
        message = f"required key '{loc[-1]}' is missing"
    else:
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        got = err.get("input")
        if err["type"] == "step_kind" and isinstance(got, dict):
            hints = [_suggest(str(k), ("ramp", "to", "hold", "staircase")) for k in got]
            message += f"; got keys {sorted(got)}" + "".join(h for h in hints if h)
        elif err["type"] not in ("quantity", "value_error", "at_key") and not isinstance(
            got, dict | list
        ):
            message += f" (got {got!r})"
    more = len(errors) - 1
    if more:
        message += f" [and {more} more problem{'s' if more > 1 else ''}]"
    from_override = override_for(key, overrides)
    if from_override:
        message += f" [from --set {from_override}]"
    line = locate_key(text, loc) if text is not None and not from_override else None
    return CaseError(message, file=file, key=key, line=line)


# --------------------------------------------------------------------------- line lookup

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYLINE = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _split_key(key: str) -> list[str]:
    return [p.strip().strip("\"'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', key)]


def _key_lines(text: str) -> Iterator[tuple[int, list[list[str]], list[str]]]:
    """For each line: its number, the key paths written on it, and the current table."""
    current: list[str] = []
    counters: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0] if '"' not in line else line
        header = _HEADER.match(stripped)
        paths: list[list[str]] = []
        if header:
            parts = _split_key(header.group(2))
            if header.group(1) == "[[":
                base = tuple(parts)
                counters[base] = counters.get(base, -1) + 1
                current = [*parts, str(counters[base])]
            else:
                # resolve array-of-table prefixes ([layers.orientation] after [[layers]])
                resolved: list[str] = []
                for part in parts:
                    resolved.append(part)
                    idx = counters.get(tuple(p for p in resolved if not p.isdigit()))
                    if idx is not None:
                        resolved.append(str(idx))
                current = resolved
            paths.append(current)
        else:
            keyline = _KEYLINE.match(stripped)
            if keyline:
                base_path = [*current, *_split_key(keyline.group(1))]
                paths.append(base_path)
                # keys inside an inline table: { plane = [...], in_plane = ... }
                for inner in re.findall(r"[{,]\s*([A-Za-z0-9_\-\"']+)\s*=", stripped):
                    paths.append([*base_path, inner.strip("\"'")])
        yield number, paths, current


def locate_key(text: str, loc: Sequence[str | int]) -> int | None:
    """1-based line of the deepest prefix of ``loc`` written in the TOML ``text``.

    Handles ``[table]`` and ``[[array]]`` headers, dotted keys and keys inside
    inline tables on the same line. Returns None if nothing matches.
    """
    target = [str(p) for p in loc]
    best: tuple[int, int] | None = None  # (matched length, line)
    for number, paths, _ in _key_lines(text):
        for p in paths:
            n = 0
            while n < min(len(p), len(target)) and p[n] == target[n]:
                n += 1
            if n == len(p) and n > 0 and (best is None or n > best[0]):
                best = (n, number)
    return best[1] if best else None


def key_at_line(text: str, line: int) -> str | None:
    """Dotted key written on 1-based ``line`` of TOML ``text`` (else its table), if any."""
    for number, paths, current in _key_lines(text):
        if number == line:
            path = paths[0] if paths else current
            return ".".join(path) or None
    return None
