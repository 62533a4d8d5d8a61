"""Per-cell material properties: what the solver needs, as plain numpy arrays.

Joins the geometry (which layer each cell is in), the resolved materials and the
layer orientations into arrays indexed by cell. No FiPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from cosinter.models import crystal
from cosinter.models.materials import Material
from cosinter.models.transport import DefectMobility, lab_tensors

FloatArray = NDArray[np.float64]


#: Smallest 1 - theta the mobility correction divides by (a full lattice gas).
MIN_VACANCY_FRACTION = 1e-3


class MobilityModel(Protocol):
    """A concentration-dependent diffusivity: D(c, T) = D_Arrhenius(T) * factor(c, T)."""

    def factor(self, c: FloatArray, T: float) -> FloatArray: ...


@dataclass(frozen=True)
class SpeciesCellData:
    """One species' parameters in every cell (SI).

    ``sites`` is +inf where the species is ideal dilute.
    """

    name: str
    charge: int
    initial: FloatArray
    sites: FloatArray
    mu0: FloatArray
    D0: FloatArray  # (n, 3)
    Ea: FloatArray  # (n, 3)
    background: FloatArray | None = None  # immobile background (mol/m^3); None: initial
    mobility_models: tuple[MobilityModel, ...] = ()
    mobility_index: NDArray[np.int64] | None = None  # per cell: model index, -1 none

    def tensors(self, rotations: FloatArray, T: float) -> FloatArray:
        """Lab-frame diffusion tensors (n, 3, 3) at temperature T."""
        return lab_tensors(rotations, self.D0, self.Ea, T)

    @property
    def has_mobility(self) -> bool:
        """Whether some cell's diffusivity depends on the concentration."""
        return bool(self.mobility_models)

    def mobility_factor(self, c: FloatArray, T: float) -> FloatArray:
        r"""D(c, T) / D(T) per cell: 1 where no mobility model applies.

        A model's factor sets the conductivity, :math:`\sigma \propto c\,D\,f`. In a
        lattice gas the flux already carries the blocking factor
        :math:`c(1-\theta)`, so there the factor is divided by :math:`1-\theta`
        (floored at :data:`MIN_VACANCY_FRACTION`) to keep the model's conductivity,
        and with it its sourced turning compositions.
        """
        out = np.ones(len(c))
        if self.mobility_index is None:
            return out
        for k, model in enumerate(self.mobility_models):
            mask = self.mobility_index == k
            vacancy = np.maximum(1.0 - c[mask] / self.sites[mask], MIN_VACANCY_FRACTION)
            out[mask] = model.factor(c[mask], T) / vacancy
        return out


@dataclass(frozen=True)
class CellProperties:
    """Everything per cell: layer, material, rotation, grain, species data.

    ``grain`` is the grain index of every cell, -1 outside the grain layer; left
    out, every cell gets -1 (no grains).
    """

    layer: NDArray[np.int64]
    material: NDArray[np.int64]
    material_names: tuple[str, ...]
    rotations: FloatArray  # (n, 3, 3) crystal -> lab
    species: Mapping[str, SpeciesCellData]
    grain: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.grain.size == 0 and self.layer.size > 0:
            object.__setattr__(self, "grain", np.full(self.layer.shape, -1, dtype=np.int64))
        if self.grain.shape != self.layer.shape:
            raise ValueError(f"grain has shape {self.grain.shape}, the cells {self.layer.shape}")


def layer_rotation(
    material: Material,
    plane: Sequence[int] | None,
    in_plane: float,
    euler: Sequence[float] | None,
    tilt: float | None = None,
) -> FloatArray:
    """Crystal -> lab rotation of a layer (identity when no orientation is given).

    At most one of ``plane``, ``euler`` and ``tilt`` (rad) is given (the case
    schema checks it).

    Raises
    ------
    ValueError
        A plane orientation for a material without a lattice, or bad indices.
    """
    if euler is not None:
        return crystal.rotation_from_euler(*euler)
    if tilt is not None:
        return crystal.rotation_from_tilt(tilt)
    if plane is not None:
        if material.lattice is None:
            raise ValueError(
                f"material '{material.name}' has no lattice, so a plane orientation is "
                "undefined; give `lattice` or use `euler`"
            )
        return crystal.rotation_from_plane(material.lattice, plane, in_plane)
    return np.eye(3)


def build_cell_properties(
    cell_layer: NDArray[np.int64],
    layer_materials: Sequence[Material],
    layer_rotations: Sequence[FloatArray],
    charges: Mapping[str, int],
    *,
    cell_rotations: FloatArray | None = None,
    d_factor: FloatArray | None = None,
    grain: NDArray[np.int64] | None = None,
) -> CellProperties:
    """Per-cell arrays from per-layer materials and rotations.

    Parameters
    ----------
    cell_layer
        Layer index of every cell.
    layer_materials, layer_rotations
        Per layer, in stack order.
    charges
        Solved species and their charge numbers.
    cell_rotations
        Crystal -> lab rotation of every cell, shape (n, 3, 3) (grains); default:
        each cell takes its layer's rotation.
    d_factor
        Factor on every species' D0 in every cell, shape (n,) (fast-diffusion
        channels); default 1.
    grain
        Grain index of every cell, -1 outside grains; default: all -1.
    """
    names = tuple(dict.fromkeys(m.name for m in layer_materials))
    material_of_layer = np.array([names.index(m.name) for m in layer_materials])
    n = len(cell_layer)
    if cell_rotations is None:
        rotations = np.stack(layer_rotations)[cell_layer]
    else:
        rotations = np.asarray(cell_rotations, dtype=float)
        if rotations.shape != (n, 3, 3):
            raise ValueError(f"cell_rotations must have shape ({n}, 3, 3), got {rotations.shape}")
    factor = np.ones(n) if d_factor is None else np.asarray(d_factor, dtype=float)
    if factor.shape != (n,):
        raise ValueError(f"d_factor must have shape ({n},), got {factor.shape}")
    species: dict[str, SpeciesCellData] = {}
    for sp, z in charges.items():
        per_layer = [m.species[sp] for m in layer_materials]
        initial = np.array([p.initial for p in per_layer])[cell_layer]
        sites = np.array([p.sites if p.sites is not None else np.inf for p in per_layer])
        models: list[MobilityModel] = []
        model_of_layer = np.full(len(per_layer), -1, dtype=np.int64)
        for k, p in enumerate(per_layer):
            if p.mobility is not None:
                models.append(DefectMobility.from_spec(p.mobility))
                model_of_layer[k] = len(models) - 1
        species[sp] = SpeciesCellData(
            name=sp,
            charge=z,
            initial=initial,
            sites=sites[cell_layer],
            mu0=np.array([p.mu0 for p in per_layer])[cell_layer],
            D0=np.array([p.D0 for p in per_layer], dtype=float)[cell_layer] * factor[:, None],
            Ea=np.array([p.Ea for p in per_layer], dtype=float)[cell_layer],
            background=np.array([p.background for p in per_layer])[cell_layer],
            mobility_models=tuple(models),
            mobility_index=model_of_layer[cell_layer] if models else None,
        )
    return CellProperties(
        layer=cell_layer,
        material=material_of_layer[cell_layer],
        material_names=names,
        rotations=rotations,
        species=species,
        grain=np.full(n, -1, dtype=np.int64) if grain is None else np.asarray(grain, np.int64),
    )
