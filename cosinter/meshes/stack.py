"""Layered stack geometry: 1D/2D/3D rectilinear grids with per-cell layer ids.

No physics and no FiPy here: :class:`StackGeometry` is a small immutable object
(``with_*`` methods return modified copies) that the solver turns into a FiPy
mesh. Cells are ordered x fastest, then y, then z (FiPy's grid ordering).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class StackGeometry:
    """A rectilinear stack of layers along x.

    Attributes
    ----------
    thicknesses
        Layer thicknesses along x (m), in order.
    cell_size
        Target cell size along x (m); each layer gets ``ceil(t / cell_size)`` cells.
    dimension
        1, 2 or 3.
    width
        Lateral extent (m) along y (and z in 3D).
    lateral_cell_size
        Target lateral cell size (m).
    periodic
        Lateral periodicity (2D/3D).
    """

    thicknesses: tuple[float, ...]
    cell_size: float
    dimension: int = 1
    width: float = 0.0
    lateral_cell_size: float = 0.0
    periodic: bool = True

    def __post_init__(self) -> None:
        if not self.thicknesses or min(self.thicknesses) <= 0:
            raise ValueError("every layer needs a positive thickness")
        if self.cell_size <= 0:
            raise ValueError("cell_size must be positive")
        if self.dimension not in (1, 2, 3):
            raise ValueError("dimension must be 1, 2 or 3")
        if self.dimension > 1 and (self.width <= 0 or self.lateral_cell_size <= 0):
            raise ValueError("2D/3D stacks need a positive width and lateral cell size")

    # ------------------------------------------------------------------ copies
    def with_cell_size(self, cell_size: float) -> StackGeometry:
        """A copy with another x cell size."""
        return dataclasses.replace(self, cell_size=cell_size)

    def with_thicknesses(self, thicknesses: Sequence[float]) -> StackGeometry:
        """A copy with other layer thicknesses."""
        return dataclasses.replace(self, thicknesses=tuple(thicknesses))

    # ------------------------------------------------------------------ x direction
    @property
    def cells_per_layer(self) -> tuple[int, ...]:
        """Cells in each layer (at least 1), so interfaces fall on faces."""
        # the 1e-9 slack keeps 100 nm / 0.5 nm at exactly 200 cells despite round-off
        return tuple(max(1, math.ceil(t / self.cell_size - 1e-9)) for t in self.thicknesses)

    @property
    def dx(self) -> NDArray[np.float64]:
        """Cell widths along x (m)."""
        return np.concatenate(
            [np.full(n, t / n) for t, n in zip(self.thicknesses, self.cells_per_layer, strict=True)]
        )

    @property
    def x_faces(self) -> NDArray[np.float64]:
        """Face positions along x (m), from 0 to the stack thickness."""
        faces = np.concatenate([[0.0], np.cumsum(self.dx)])
        faces[-1] = self.length
        return faces

    @property
    def length(self) -> float:
        """Total stack thickness (m)."""
        return float(sum(self.thicknesses))

    @property
    def interfaces(self) -> NDArray[np.float64]:
        """x positions of the internal interfaces (m)."""
        return np.cumsum(self.thicknesses)[:-1]

    @property
    def nx(self) -> int:
        return int(sum(self.cells_per_layer))

    # ------------------------------------------------------------------ lateral
    @property
    def n_lateral(self) -> int:
        """Cells along y (and along z in 3D)."""
        if self.dimension == 1:
            return 1
        return max(1, math.ceil(self.width / self.lateral_cell_size - 1e-9))

    @property
    def d_lateral(self) -> float:
        """Lateral cell size actually used (m)."""
        return self.width / self.n_lateral if self.dimension > 1 else 1.0

    def lateral_faces(self) -> NDArray[np.float64] | None:
        """Face positions along y (and z) (m), or None in 1D."""
        if self.dimension == 1:
            return None
        return np.linspace(0.0, self.width, self.n_lateral + 1)

    @property
    def shape(self) -> tuple[int, ...]:
        """Cells along (x, y, z) for the dimension."""
        return (self.nx,) + (self.n_lateral,) * (self.dimension - 1)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def lateral_area(self) -> float:
        """Interface area the 1D-equivalent inventories are divided by (m^2; 1 in 1D)."""
        return self.width ** (self.dimension - 1) if self.dimension > 1 else 1.0

    # ------------------------------------------------------------------ per cell
    @property
    def layer_of_column(self) -> NDArray[np.int64]:
        """Layer index of each x column."""
        return np.repeat(np.arange(len(self.thicknesses)), self.cells_per_layer)

    @property
    def cell_layer(self) -> NDArray[np.int64]:
        """Layer index of every cell (x fastest)."""
        return np.tile(self.layer_of_column, self.n_cells // self.nx)

    @property
    def cell_x(self) -> NDArray[np.float64]:
        """x of every cell centre (m)."""
        xf = self.x_faces
        return np.tile(0.5 * (xf[1:] + xf[:-1]), self.n_cells // self.nx)

    @property
    def cell_volumes(self) -> NDArray[np.float64]:
        """Cell volumes (m^3; m in 1D, m^2 in 2D)."""
        lateral = self.d_lateral ** (self.dimension - 1)
        return np.tile(self.dx, self.n_cells // self.nx) * lateral

    def column_average(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Average a per-cell field over y (and z): one value per x column."""
        return np.asarray(values).reshape(-1, self.nx).mean(axis=0)
