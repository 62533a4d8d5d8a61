"""Layered stack geometry: 1D/2D/3D rectilinear grids with per-cell layer ids.

No physics and no FiPy here: :class:`StackGeometry` is a small immutable object
(``with_*`` methods return modified copies) that the solver turns into a FiPy
mesh. Cells are ordered x fastest, then y, then z (FiPy's grid ordering).

Along x the cells are uniform within each layer unless :attr:`StackGeometry.refine`
asks for geometric grading toward the internal interfaces (see
:meth:`StackGeometry.with_refinement`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

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
    refine
        Optional grading toward the internal interfaces along x, as
        ``(fine_cell_size, width, growth)`` in (m, m, -); ``None`` (default) keeps every
        layer uniform. Here ``width`` is the depth of the fine zone on each side of an
        interface, not the lateral :attr:`width`. See :meth:`with_refinement` for the
        exact grading rule.
    """

    thicknesses: tuple[float, ...]
    cell_size: float
    dimension: int = 1
    width: float = 0.0
    lateral_cell_size: float = 0.0
    periodic: bool = True
    refine: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not self.thicknesses or min(self.thicknesses) <= 0:
            raise ValueError("every layer needs a positive thickness")
        if self.cell_size <= 0:
            raise ValueError("cell_size must be positive")
        if self.dimension not in (1, 2, 3):
            raise ValueError("dimension must be 1, 2 or 3")
        if self.dimension > 1 and (self.width <= 0 or self.lateral_cell_size <= 0):
            raise ValueError("2D/3D stacks need a positive width and lateral cell size")
        if self.refine is not None:
            object.__setattr__(self, "refine", _checked_refine(self.refine, self.cell_size))

    # ------------------------------------------------------------------ copies
    def with_cell_size(self, cell_size: float) -> StackGeometry:
        """A copy with another x cell size."""
        return dataclasses.replace(self, cell_size=cell_size)

    def with_thicknesses(self, thicknesses: Sequence[float]) -> StackGeometry:
        """A copy with other layer thicknesses."""
        return dataclasses.replace(self, thicknesses=tuple(thicknesses))

    def with_refinement(
        self, fine_cell_size: float, width: float, growth: float = 1.2
    ) -> StackGeometry:
        """A copy graded geometrically toward every internal interface.

        Within each layer the target cell size at distance ``d`` from the nearest
        internal interface bounding that layer (the stack ends ``x = 0`` and
        ``x = length`` are not interfaces) is::

            h(d) = min(cell_size, fine_cell_size + ln(growth) * max(0, d - width))

        i.e. ``fine_cell_size`` throughout the first ``width`` (the fine zone), then a
        linear ramp in ``d`` - which is geometric growth by exactly ``growth`` per cell -
        up to ``cell_size``. A ``width`` below ``fine_cell_size`` is raised to it, so the
        fine zone always holds at least the cell touching the interface. A layer bounded
        by two interfaces uses the nearer one, so it is graded at both ends, and a layer
        thinner than ``2 * width`` is fine throughout.

        The faces of a layer of thickness ``t`` are the images of ``N`` equal steps of
        the cell-count coordinate ``psi(x) = integral_0^x dx' / h``, with
        ``N = ceil(psi(t))`` (at least 1). Rounding ``N`` up shrinks the *whole* layer's
        cells by the same factor ``psi(t) / N <= 1`` rather than squeezing the last
        cells, so: the layer's cells sum to ``t`` and its boundaries fall on faces; no
        cell is larger than ``h`` (the interface cell is ``fine_cell_size`` times that
        factor, within ``1 / psi(t)`` of it); and the ratio of neighbouring cells is at
        most ``growth ** (psi(t) / N) <= growth``, also where the zones meet. The
        result is deterministic, and with ``fine_cell_size == cell_size`` every layer is
        uniform. A single-layer stack has no internal interface and stays uniform.

        Parameters
        ----------
        fine_cell_size
            Cell size at the interfaces (m), ``0 < fine_cell_size <= cell_size``.
        width
            Depth of the fine zone on each side of an interface (m), ``> 0``.
        growth
            Largest ratio of neighbouring cell sizes, ``1 < growth <= 2``.

        Returns
        -------
        StackGeometry
            A new geometry; ``self`` is unchanged.

        Raises
        ------
        ValueError
            If a parameter is out of range.
        """
        return dataclasses.replace(self, refine=(fine_cell_size, width, growth))

    def without_refinement(self) -> StackGeometry:
        """A copy with uniform cells in every layer (``refine=None``)."""
        return dataclasses.replace(self, refine=None)

    # ------------------------------------------------------------------ x direction
    @cached_property
    def _layer_dx(self) -> tuple[NDArray[np.float64], ...]:
        """Cell widths along x of each layer (m); read-only arrays, computed once.

        The single source of the x discretisation: everything along x derives from it.
        """
        n_layers = len(self.thicknesses)
        out = []
        for i, t in enumerate(self.thicknesses):
            left, right = i > 0, i < n_layers - 1
            if self.refine is None or not (left or right):
                # the 1e-9 slack keeps 100 nm / 0.5 nm at exactly 200 cells despite round-off
                n = max(1, math.ceil(t / self.cell_size - 1e-9))
                widths = np.full(n, t / n)
            else:
                fine, width, growth = self.refine
                # at least one fine cell deep, so the interface cell is never on the ramp
                width = max(width, fine)
                widths = _graded_layer(t, self.cell_size, fine, width, growth, left, right)
            widths.setflags(write=False)
            out.append(widths)
        return tuple(out)

    @property
    def cells_per_layer(self) -> tuple[int, ...]:
        """Cells in each layer (at least 1), so interfaces fall on faces."""
        return tuple(len(w) for w in self._layer_dx)

    @property
    def dx(self) -> NDArray[np.float64]:
        """Cell widths along x (m); a fresh array on every call."""
        return np.concatenate(self._layer_dx)

    @property
    def min_dx(self) -> float:
        """Smallest cell width along x (m)."""
        return float(min(w.min() for w in self._layer_dx))

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
    def cell_centres(self) -> NDArray[np.float64]:
        """Centre of every cell (m), shape (n_cells, dimension): x, then y (and z)."""
        columns = [self.cell_x]
        faces = self.lateral_faces()
        if faces is not None:
            centres = 0.5 * (faces[1:] + faces[:-1])
            nx, ny = self.nx, self.n_lateral
            # x fastest, then y, then z (FiPy's grid ordering)
            columns.append(np.tile(np.repeat(centres, nx), self.n_cells // (nx * ny)))
            if self.dimension == 3:
                columns.append(np.repeat(centres, nx * ny))
        return np.column_stack(columns)

    @property
    def cell_dx(self) -> NDArray[np.float64]:
        """x width of every cell (m)."""
        return np.tile(self.dx, self.n_cells // self.nx)

    @property
    def cell_volumes(self) -> NDArray[np.float64]:
        """Cell volumes (m^3; m in 1D, m^2 in 2D)."""
        return self.cell_dx * self.d_lateral ** (self.dimension - 1)

    def column_average(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Average a per-cell field over y (and z): one value per x column."""
        return np.asarray(values).reshape(-1, self.nx).mean(axis=0)


# ---------------------------------------------------------------------- grading helpers
def _checked_refine(refine: Sequence[float], cell_size: float) -> tuple[float, float, float]:
    """Validate ``(fine_cell_size, width, growth)`` and return it as a tuple of floats."""
    values = tuple(float(v) for v in refine)
    if len(values) != 3:
        raise ValueError(
            f"refine must be (fine_cell_size, width, growth), got {len(values)} values"
        )
    fine, width, growth = values
    if not (math.isfinite(fine) and 0.0 < fine <= cell_size):
        raise ValueError(
            f"refine fine_cell_size must be positive and <= cell_size ({cell_size!r}), got {fine!r}"
        )
    if not (math.isfinite(width) and width > 0.0):
        raise ValueError(f"refine width must be positive, got {width!r}")
    if not (1.0 < growth <= 2.0):
        raise ValueError(f"refine growth must satisfy 1 < growth <= 2, got {growth!r}")
    return fine, width, growth


# a piece of the target size profile: (x_start, x_end, h_start, h_end), h linear in between
_Segment = tuple[float, float, float, float]


def _profile_from_interface(
    depth: float, cell_size: float, fine: float, width: float, growth: float
) -> list[_Segment]:
    """Pieces of ``h(d)`` for ``0 <= d <= depth``, ``d`` = distance from the interface."""
    slope = math.log(growth)
    ramp_end = width + (cell_size - fine) / slope
    # (start, end, h at start, h at end): the fine zone, the ramp, the plateau; the
    # constant pieces carry exact values so that they are recognised as constant
    pieces: list[_Segment] = [
        (0.0, width, fine, fine),
        (width, ramp_end, fine, cell_size),
        (ramp_end, math.inf, cell_size, cell_size),
    ]
    clipped: list[_Segment] = []
    for d0, d1, h0, h1 in pieces:
        if d1 > depth:
            d1 = depth
            h1 = h0 if h0 == h1 else min(cell_size, fine + slope * (d1 - width))
        if d1 > d0:
            clipped.append((d0, d1, h0, h1))
        if d1 >= depth:
            break
    return clipped


def _graded_layer(
    thickness: float,
    cell_size: float,
    fine: float,
    width: float,
    growth: float,
    left: bool,
    right: bool,
) -> NDArray[np.float64]:
    """Cell widths of one layer graded toward its interface(s) (``left`` and/or ``right``).

    See :meth:`StackGeometry.with_refinement` for the rule.
    """
    t = thickness
    segments: list[_Segment] = []
    if left:
        depth = 0.5 * t if right else t
        segments += _profile_from_interface(depth, cell_size, fine, width, growth)
    if right:
        depth = 0.5 * t if left else t
        mirrored = _profile_from_interface(depth, cell_size, fine, width, growth)
        # x = t - d, walked from the middle (or the left end) toward the right interface
        segments += [(t - d1, t - d0, h1, h0) for d0, d1, h0, h1 in reversed(mirrored)]
    # pieces tile [0, t] exactly: t - 0.5 * t == 0.5 * t and t - t == 0 in floating point

    # cell-count coordinate psi = integral dx / h, per piece and cumulated
    # on a ramp h = ha * (1 + u s / (b - a)), so the count is (b - a) / ha * log1p(u) / u
    counts = np.array(
        [
            (b - a) / ha * (1.0 if hb == ha else math.log1p((hb - ha) / ha) / ((hb - ha) / ha))
            for a, b, ha, hb in segments
        ]
    )
    psi = np.concatenate([[0.0], np.cumsum(counts)])
    total = float(psi[-1])
    n = max(1, math.ceil(total - 1e-9))

    targets = total * np.arange(1, n) / n
    which = np.clip(np.searchsorted(psi, targets, side="right") - 1, 0, len(segments) - 1)
    inner = np.empty(n - 1)
    for k, (a, b, ha, hb) in enumerate(segments):
        mask = which == k
        if not mask.any():
            continue
        s = targets[mask] - psi[k]
        if ha == hb:
            x = a + s * ha
        else:
            rate = (hb - ha) / (b - a)  # dh/dx on this piece
            x = a + ha * np.expm1(rate * s) / rate
        inner[mask] = np.clip(x, a, b)
    faces = np.concatenate([[0.0], inner, [t]])
    return np.diff(faces)
