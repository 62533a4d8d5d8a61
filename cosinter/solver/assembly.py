r"""Finite-volume matrices assembled directly, on a sparsity pattern built once.

FiPy rebuilds every term of an equation each time it is solved: it evaluates the
coefficient variables, builds a small sparse matrix per term and adds them. On the
1D reference case that was 86 % of the run time (``docs/performance.md``,
section 5), ~15 ms per sweep on 320 cells, against ~0.3 ms for the LU. The
equations of :class:`~cosinter.solver.equations.TransportSystem` are few and fixed:
per cell field :math:`u` on cells :math:`P` with volume :math:`V_P`,

.. math::

   \frac{V_P}{\Delta t}\,u_P + \sum_{f=(P,N)} \Bigl[g_f\,(u_P - u_N)
       + \frac{s_f}{2}\,(u_P + u_N)\Bigr] + V_P\,k_P\,u_P
       + \sum_\text{fields $v$} \Bigl[\sum_f h_f\,(v_P - v_N) + V_P\,m_P\,v_P\Bigr]
       = \text{rhs}_P,

with face conductances :math:`g_f = D_f A_f/d_f` (diffusion), central-difference
convection :math:`s_f = (\mathbf{u}\cdot\hat n)_f A_f`, diagonal sources
:math:`k_P`, and couplings to other fields :math:`v` through faces (:math:`h_f`)
or cells (:math:`m_P`). Only the numbers change from sweep to sweep, so the
pattern (where each face and cell contribution lands in the CSR arrays) is found
once and each assembly is a ``bincount`` into it.

FiPy's terms stay the readable reference (``TransportSystem(reference_assembly=True)``):
``tests/solver/test_assembly.py`` checks that these matrices and right-hand sides
are FiPy's. Both back ends (SuperLU, MUMPS through PETSc) factor these matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: A slot of a block matrix: cell (diagonal) or face (two-point) entries, from the
#: field of block ``row`` to the equation of block ``column``.
SlotKind = Literal["cells", "faces"]


@dataclass(frozen=True)
class FaceMesh:
    """The numbers of a cell-centred finite-volume mesh the assembly needs.

    Attributes
    ----------
    volumes
        ``(n_cells,)`` cell volumes (m^3; m^2 in 2D, m in 1D).
    area
        ``(n_faces,)`` face areas (m^2; m in 2D, 1 in 1D).
    inner, cell1, cell2
        Interior faces (periodic ones included) and their two cells; the face
        normal runs from ``cell1`` to ``cell2``.
    transmissibility
        ``(len(inner),)`` :math:`A_f/(d_1+d_2)`, what a face diffusivity is
        multiplied by to give a conductance.
    outer, outer_cell
        Exterior faces (normal outward) and their cell.
    face_cell, half_transmissibility
        ``(n_faces,)`` the first cell of every face and :math:`A_f/d_1`: a fixed
        value on an exterior face is half a cell away.
    """

    volumes: FloatArray
    area: FloatArray
    inner: IntArray
    cell1: IntArray
    cell2: IntArray
    transmissibility: FloatArray
    outer: IntArray
    outer_cell: IntArray
    face_cell: IntArray
    half_transmissibility: FloatArray

    @property
    def n_cells(self) -> int:
        return len(self.volumes)

    @classmethod
    def of(
        cls,
        cell1: IntArray,
        cell2: IntArray,
        interior: NDArray[np.bool_],
        d1: FloatArray,
        d2: FloatArray,
        area: FloatArray,
        volumes: FloatArray,
    ) -> FaceMesh:
        """From per-face cells and distances (:class:`~cosinter.solver.fields.FaceGeometry`)."""
        inner = np.flatnonzero(interior)
        outer = np.flatnonzero(~interior)
        area = np.asarray(area, dtype=float)
        return cls(
            volumes=np.asarray(volumes, dtype=float).copy(),
            area=area.copy(),
            inner=inner,
            cell1=np.asarray(cell1)[inner],
            cell2=np.asarray(cell2)[inner],
            transmissibility=area[inner] / (d1[inner] + d2[inner]),
            outer=outer,
            outer_cell=np.asarray(cell1)[outer],
            face_cell=np.asarray(cell1).copy(),
            half_transmissibility=area / d1,
        )

    def dirichlet(
        self, faces: IntArray, coeff: FloatArray, values: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        r"""Diagonal and right-hand side of fixed values on exterior faces.

        The face's outflow is :math:`g\,(u_P - u_b)` with :math:`g = D_f A_f/d_1`.

        Parameters
        ----------
        faces
            Exterior face ids.
        coeff
            ``(len(faces),)`` the face coefficients :math:`D_f`.
        values
            ``(len(faces),)`` the fixed values :math:`u_b`.
        """
        g = coeff * self.half_transmissibility[faces]
        cells = self.face_cell[faces]
        n = self.n_cells
        return _sum_at(cells, g, n), _sum_at(cells, g * values, n)

    def outflow(self, flux: FloatArray) -> FloatArray:
        r"""Net outflow of every cell, :math:`\sum_f (\mathbf J\cdot\hat n)_f A_f`.

        Parameters
        ----------
        flux
            ``(n_faces,)`` normal flux (cell1 -> cell2 inside, outward outside).
        """
        carried = flux * self.area
        n = self.n_cells
        return (
            _sum_at(self.cell1, carried[self.inner], n)
            - _sum_at(self.cell2, carried[self.inner], n)
            + _sum_at(self.outer_cell, carried[self.outer], n)
        )


def _sum_at(index: NDArray[np.integer], values: FloatArray, n: int) -> FloatArray:
    """``out[index] += values`` into ``n`` zeros (``np.add.at``, but ~10x faster)."""
    return np.asarray(np.bincount(index, weights=values, minlength=n), dtype=float)


def face_entries(conductance: FloatArray, speed: FloatArray | None = None) -> FloatArray:
    r"""The four matrix entries of every interior face, for a face slot.

    The face's outflow from cell 1 is :math:`g\,(u_1-u_2) + s\,(u_1+u_2)/2`; it
    leaves row 1 and enters row 2. Order: (1,1), (1,2), (2,1), (2,2).

    Parameters
    ----------
    conductance
        ``(n_inner,)`` :math:`g_f` (m^3/s per unit of the field; per unit depth in 2D).
    speed
        ``(n_inner,)`` :math:`s_f`, the normal velocity times the face area, or None.
    """
    if speed is None:
        return np.concatenate([conductance, -conductance, -conductance, conductance])
    half = 0.5 * speed
    return np.concatenate(
        [conductance + half, half - conductance, -conductance - half, conductance - half]
    )


class SparsePattern:
    """A CSR pattern for contributions at fixed (row, column) positions.

    Duplicate positions are summed. Built once; :meth:`matrix` costs one
    ``bincount`` per call, which is why it is worth keeping.
    """

    def __init__(
        self,
        rows: NDArray[np.signedinteger],
        columns: NDArray[np.signedinteger],
        shape: tuple[int, int],
    ) -> None:
        n_rows, n_columns = shape
        if max(shape) >= 2**31:
            raise ValueError(f"{shape} is beyond 32-bit sparse indices")
        # SciPy's compiled COO -> CSR merges the duplicates: np.unique on int64 keys
        # held ~2 GiB of temporaries for the 27 M contributions of 10^6 cells
        rows32 = np.asarray(rows, dtype=np.int32)
        columns32 = np.asarray(columns, dtype=np.int32)
        merged = sparse.coo_matrix(
            (np.ones(len(rows32), dtype=np.int8), (rows32, columns32)), shape=shape
        ).tocsr()
        merged.sum_duplicates()  # canonical: sorted columns, one entry each
        self.shape = shape
        if merged.nnz >= 2**31:
            raise ValueError(f"{merged.nnz} entries are beyond 32-bit sparse indices")
        self.nnz = int(merged.nnz)
        self._indices = merged.indices.astype(np.int32, copy=False)
        self._indptr = merged.indptr.astype(np.int32, copy=False)
        del merged
        # each contribution's entry: its column's place in its row, found in chunks
        keys = np.repeat(np.arange(n_rows, dtype=np.int64) * n_columns, np.diff(self._indptr))
        keys += self._indices
        # 32-bit: half the held memory; bincount widens them per assembly (a
        # temporary of 8 bytes per contribution, before the factorization's peak)
        self._slot: NDArray[np.int32] = np.empty(len(rows32), dtype=np.int32)
        for start in range(0, len(rows32), self._CHUNK):
            part = slice(start, start + self._CHUNK)
            wanted = rows32[part].astype(np.int64) * n_columns + columns32[part]
            self._slot[part] = np.searchsorted(keys, wanted)

    #: Contributions whose entries are looked up at once while building.
    _CHUNK = 1 << 22

    def matrix(self, values: FloatArray) -> sparse.csr_matrix:
        """The matrix with ``values`` (one per contribution, in construction order)."""
        data = _sum_at(self._slot, values, self.nnz)
        return sparse.csr_matrix((data, self._indices.copy(), self._indptr.copy()), self.shape)


@dataclass(frozen=True)
class Slot:
    """One kind of contribution of a block matrix: ``row`` block's equation, ``column`` field."""

    kind: SlotKind
    row: int
    column: int


class BlockAssembler:
    """Block matrices of ``n_blocks`` cell fields on one mesh, with a fixed pattern.

    Parameters
    ----------
    mesh
        The mesh numbers.
    n_blocks
        How many cell fields are solved together (one per equation).
    slots
        Which contributions the matrix has; :meth:`matrix` takes their values in
        this order: ``(n_cells,)`` for a ``"cells"`` slot (added on the diagonal of
        the block), :func:`face_entries` for a ``"faces"`` slot.
    """

    def __init__(self, mesh: FaceMesh, n_blocks: int, slots: Sequence[Slot]) -> None:
        self.mesh = mesh
        self.slots = tuple(slots)
        n = mesh.n_cells
        size = n_blocks * n
        if size >= 2**31:
            raise ValueError(f"{size} unknowns are beyond 32-bit sparse indices")
        # 32-bit positions (SparsePattern's): half the memory of the 10^6-cell build
        cells = np.arange(n, dtype=np.int32)
        c1, c2 = mesh.cell1.astype(np.int32), mesh.cell2.astype(np.int32)
        rows: list[NDArray[np.int32]] = []
        columns: list[NDArray[np.int32]] = []
        for slot in self.slots:
            r, c = np.int32(slot.row * n), np.int32(slot.column * n)
            if slot.kind == "cells":
                rows.append(r + cells)
                columns.append(c + cells)
            else:
                rows.append(r + np.concatenate([c1, c1, c2, c2]))
                columns.append(c + np.concatenate([c1, c2, c1, c2]))
        self.pattern = SparsePattern(np.concatenate(rows), np.concatenate(columns), (size, size))

    def matrix(self, values: Sequence[FloatArray]) -> sparse.csr_matrix:
        """The assembled matrix; ``values`` per slot, as described in the class."""
        if len(values) != len(self.slots):
            raise ValueError(f"{len(values)} slot values for {len(self.slots)} slots")
        return self.pattern.matrix(np.concatenate(values))
