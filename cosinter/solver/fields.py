"""FiPy meshes and face coefficients built from the numpy models.

This is the FiPy room: camelCase FiPy objects stay inside ``cosinter.solver``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fipy
import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from cosinter.meshes.stack import StackGeometry

FloatArray = NDArray[np.float64]


def build_mesh(geometry: StackGeometry) -> fipy.meshes.mesh.Mesh:
    """A FiPy grid for the stack (x fastest; periodic laterally if asked)."""
    dx = geometry.dx
    if geometry.dimension == 1:
        return fipy.Grid1D(dx=dx)
    n = geometry.n_lateral
    dl = geometry.d_lateral
    if geometry.dimension == 2:
        if geometry.periodic:
            return fipy.PeriodicGrid2DTopBottom(dx=dx, dy=[dl] * n, nx=len(dx), ny=n)
        return fipy.Grid2D(dx=dx, dy=[dl] * n)
    if geometry.periodic:
        return fipy.PeriodicGrid3DTopBottomFrontBack(
            dx=dx, dy=[dl] * n, dz=[dl] * n, nx=len(dx), ny=n, nz=n
        )
    return fipy.Grid3D(dx=dx, dy=[dl] * n, dz=[dl] * n)


@dataclass(frozen=True)
class FaceGeometry:
    """Per-face index data for turning cell quantities into face coefficients.

    Attributes
    ----------
    cell1, cell2
        The two cells of each face (``cell2 == cell1`` on the exterior).
    interior
        True for faces between two cells (including periodic ones).
    axis
        The lab axis each face is normal to (0 = x).
    d1, d2
        Distances from each cell centre to the face, along the normal (m).
    """

    cell1: NDArray[np.int64]
    cell2: NDArray[np.int64]
    interior: NDArray[np.bool_]
    axis: NDArray[np.int64]
    d1: FloatArray
    d2: FloatArray

    @classmethod
    def of(cls, mesh: fipy.meshes.mesh.Mesh, geometry: StackGeometry) -> FaceGeometry:
        ids = mesh.faceCellIDs
        cell1 = np.asarray(ids[0].filled(-1), dtype=np.int64)
        mask = np.ma.getmaskarray(ids[1])
        cell2 = np.where(mask, cell1, np.asarray(ids[1].filled(0), dtype=np.int64))
        normals = np.asarray(mesh.faceNormals)
        axis = np.argmax(np.abs(normals), axis=0)
        widths = np.empty((geometry.dimension, geometry.n_cells))
        widths[0] = geometry.cell_dx
        widths[1:] = geometry.d_lateral
        d1 = 0.5 * widths[axis, cell1]
        d2 = np.where(mask, d1, 0.5 * widths[axis, cell2])
        return cls(
            cell1=cell1,
            cell2=cell2,
            interior=~mask,
            axis=axis,
            d1=d1,
            d2=d2,
        )


def face_tensor(faces: FaceGeometry, cell_tensors: FloatArray, dim: int) -> FloatArray:
    r"""Face diffusion coefficients from per-cell lab tensors.

    The normal component is the distance-weighted harmonic mean, which makes the
    flux continuous across a material jump; the other components are arithmetic
    means.

    .. math::

       D_{nn,f} = \frac{d_1 + d_2}{d_1/D_{nn,1} + d_2/D_{nn,2}}

    Returns
    -------
    ndarray
        (n_faces,) in 1D, else (dim, dim, n_faces).
    """
    t1 = cell_tensors[faces.cell1][:, :dim, :dim]
    t2 = cell_tensors[faces.cell2][:, :dim, :dim]
    idx = np.arange(len(faces.axis))
    n1 = t1[idx, faces.axis, faces.axis]
    n2 = t2[idx, faces.axis, faces.axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = np.where(
            (n1 > 0) & (n2 > 0),
            (faces.d1 + faces.d2)
            / (faces.d1 / np.where(n1 > 0, n1, 1) + faces.d2 / np.where(n2 > 0, n2, 1)),
            0.0,
        )
    if dim == 1:
        return np.asarray(harmonic)
    mean = 0.5 * (t1 + t2)
    mean[idx, faces.axis, faces.axis] = harmonic
    return np.ascontiguousarray(np.transpose(mean, (1, 2, 0)))


def normal_component(faces: FaceGeometry, coeff: FloatArray, dim: int) -> FloatArray:
    """n . D . n on every face from :func:`face_tensor`'s output."""
    if dim == 1:
        return coeff
    idx = np.arange(len(faces.axis))
    return np.asarray(coeff[faces.axis, faces.axis, idx])


def monotonized_central(a: FloatArray, b: FloatArray) -> FloatArray:
    r"""The monotonized-central slope limiter of two one-sided differences.

    .. math::

       L(a, b) = \begin{cases}
           \operatorname{sign}(a)\min\left(2|a|, 2|b|, |a+b|/2\right) & ab > 0\\
           0 & \text{otherwise}
       \end{cases}
    """
    small = np.minimum(np.minimum(2.0 * np.abs(a), 2.0 * np.abs(b)), 0.5 * np.abs(a + b))
    return np.where(a * b > 0.0, np.sign(a) * small, 0.0)


#: Per axis, the weights of the inner (cell slope) and outer (face) limiters.
LimiterChoice = list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]]


def _mc_weights(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The weights ``(wa, wb)`` with ``monotonized_central(a, b) == wa a + wb b``."""
    first = 2.0 * np.abs(a) <= np.minimum(2.0 * np.abs(b), 0.5 * np.abs(a + b))
    second = ~first & (2.0 * np.abs(b) <= 0.5 * np.abs(a + b))
    same = a * b > 0.0
    wa = np.where(same, np.where(first, 2.0, np.where(second, 0.0, 0.5)), 0.0)
    wb = np.where(same, np.where(first, 0.0, np.where(second, 2.0, 0.5)), 0.0)
    return wa, wb


def _rows(weights: FloatArray, matrix: sparse.csr_matrix, rows: NDArray[np.int64]) -> Any:
    """``diag(weights) @ matrix[rows]``."""
    return sparse.diags(weights) @ matrix[rows]


@dataclass(frozen=True)
class CrossStencil:
    r"""Neighbour faces of every cell along every axis, for the tensor's cross terms.

    The off-diagonal part of :math:`-\mathbf{D}\nabla c` on a face normal to axis
    :math:`a` is :math:`-\sum_{t\ne a} D_{at}\,\partial_t c`. The transverse
    derivative on the face is built as in Sharma & Hammett (J. Comput. Phys. 227,
    123, 2007, "limited symmetric" scheme): the one-sided differences across the
    faces normal to :math:`t` of each of the face's two cells are limited per cell,
    and the two cell slopes are limited again,

    .. math::

       \partial_t c\big|_f = L\bigl(L(\delta^-_{t,1}, \delta^+_{t,1}),
                                   L(\delta^-_{t,2}, \delta^+_{t,2})\bigr),

    so the explicit cross flux vanishes at extrema and cannot dig a new minimum
    (FiPy's own treatment, harmonic face averages of Gauss cell gradients, puts
    undershoots next to steep fronts: negative Ti in rotated grains).

    Attributes
    ----------
    minus, plus
        ``(dim, n_cells)`` face on the low / high side of each cell along each axis.
    sign
        ``(n_faces,)`` +1 where the face normal points along its axis, -1 otherwise
        (FiPy's normals run from ``cell1`` to ``cell2``, outward on the exterior).
    """

    minus: NDArray[np.int64]
    plus: NDArray[np.int64]
    sign: FloatArray
    divergence: sparse.csr_matrix  # (n_cells, n_faces): net inflow per face flux (m^2)

    @classmethod
    def of(cls, mesh: fipy.meshes.mesh.Mesh, faces: FaceGeometry, dim: int) -> CrossStencil:
        normals = np.asarray(mesh.faceNormals)
        index = np.arange(len(faces.axis))
        sign = np.sign(normals[faces.axis, index])
        n_cells = int(mesh.numberOfCells)
        minus = np.full((dim, n_cells), -1, dtype=np.int64)
        plus = np.full((dim, n_cells), -1, dtype=np.int64)
        up = sign > 0
        # exterior faces first: a periodic grid keeps its seam's outer faces too, and
        # the interior (wrapping) face must win
        for group in (~faces.interior, faces.interior):
            a, c1, c2, ids = faces.axis[group], faces.cell1[group], faces.cell2[group], index[group]
            positive = up[group]
            plus[a[positive], c1[positive]] = ids[positive]
            minus[a[~positive], c1[~positive]] = ids[~positive]
            if group is faces.interior:
                minus[a[positive], c2[positive]] = ids[positive]
                plus[a[~positive], c2[~positive]] = ids[~positive]
        if np.any(minus < 0) or np.any(plus < 0):
            raise AssertionError("structured grid expected: a cell lacks a face along an axis")
        # a flux J.n (cell1 -> cell2) times the face area leaves cell1 and enters cell2
        inner = np.flatnonzero(faces.interior)
        area = np.asarray(mesh._faceAreas)[inner]
        divergence = sparse.csr_matrix(
            (
                np.concatenate([-area, area]),
                (np.concatenate([faces.cell1[inner], faces.cell2[inner]]), np.tile(inner, 2)),
            ),
            shape=(n_cells, len(faces.axis)),
        )
        return cls(minus=minus, plus=plus, sign=sign.astype(float), divergence=divergence)

    def linearised(
        self,
        faces: FaceGeometry,
        tensor: FloatArray,
        values: FloatArray,
        closed: NDArray[np.bool_],
        fixed: dict[int, float],
        dim: int,
        frozen: LimiterChoice | None = None,
    ) -> tuple[sparse.csr_matrix, FloatArray, LimiterChoice]:
        r"""The cross flux as :math:`F = T c + t_0`, the limiters frozen at ``values``.

        Every limiter output is one of :math:`2a, 2b, (a+b)/2, 0`, a linear function
        of the differences, so with the choice each limiter makes at ``values`` the
        cross flux is linear (affine with fixed ends) in :math:`c`, and
        :math:`T\,\mathrm{values} + t_0` is exactly :meth:`cross_flux` of
        ``values``. The solver puts :math:`T` in the matrix (implicit) and sweeps
        until the choices settle, instead of iterating an explicit cross flux, which
        converges as slowly as :math:`|D_{xy}|/D_{xx}\to 1` for a strongly
        anisotropic grain turned by 45 degrees.

        Parameters
        ----------
        faces, tensor, dim
            As for :meth:`cross_flux`.
        values
            ``(n_cells,)`` the current iterate (mol/m^3).
        closed
            ``(n_faces,)`` faces with no slope and no cross flux: the exterior and
            material interfaces.
        fixed
            Exterior face -> fixed concentration (mol/m^3): a one-sided slope to it.
        frozen
            The limiters' choices to use instead of those at ``values`` (a sweep
            that toggles between two choices settles once they are frozen).

        Returns
        -------
        T, t0, choice
            ``(n_faces, n_cells)`` sparse and ``(n_faces,)``: the face flux
            :math:`\mathbf J\cdot\hat n_f` (mol m^-2 s^-1) is ``T @ c + t0``;
            the limiters' choices it was built with.
        """
        n_faces, n_cells = len(faces.axis), len(values)
        open_ = np.flatnonzero(~closed)
        scale = self.sign[open_] / (faces.d1[open_] + faces.d2[open_])
        # g = G c + g0: the difference across every face along its own axis
        G = sparse.csr_matrix(
            (
                np.concatenate([scale, -scale]),
                (np.tile(open_, 2), np.concatenate([faces.cell2[open_], faces.cell1[open_]])),
            ),
            shape=(n_faces, n_cells),
        )
        g0 = np.zeros(n_faces)
        if fixed:
            ids = np.fromiter(fixed, dtype=np.int64)
            at = self.sign[ids] / faces.d1[ids]
            G = G + sparse.csr_matrix((-at, (ids, faces.cell1[ids])), shape=(n_faces, n_cells))
            g0[ids] = at * np.fromiter(fixed.values(), dtype=float)
        g = G @ values + g0
        T = sparse.csr_matrix((n_faces, n_cells))
        t0 = np.zeros(n_faces)
        choice: LimiterChoice = []
        for t in range(dim):
            if frozen is None:
                wa, wb = _mc_weights(g[self.minus[t]], g[self.plus[t]])
            else:
                wa, wb = frozen[t][0], frozen[t][1]
            slope = _rows(wa, G, self.minus[t]) + _rows(wb, G, self.plus[t])
            slope0 = wa * g0[self.minus[t]] + wb * g0[self.plus[t]]
            value = slope @ values + slope0
            across = np.flatnonzero(~closed & (faces.axis != t))
            c1, c2 = faces.cell1[across], faces.cell2[across]
            if frozen is None:
                ua, ub = _mc_weights(value[c1], value[c2])
            else:
                ua, ub = frozen[t][2], frozen[t][3]
            choice.append((wa, wb, ua, ub))
            coeff = -tensor[faces.axis[across], t, across] * self.sign[across]
            transverse = _rows(ua * coeff, slope, c1) + _rows(ub * coeff, slope, c2)
            select = sparse.csr_matrix(
                (np.ones(len(across)), (across, np.arange(len(across)))),
                shape=(n_faces, len(across)),
            )
            T = T + select @ transverse
            t0[across] += coeff * (ua * slope0[c1] + ub * slope0[c2])
        return sparse.csr_matrix(T), t0, choice

    def cross_flux(
        self,
        faces: FaceGeometry,
        tensor: FloatArray,
        face_gradient: FloatArray,
        dim: int,
    ) -> FloatArray:
        r"""Cross-term flux along each face's normal (cell1 -> cell2 on interior faces).

        The readable reference of :meth:`linearised` (which the solver uses): the
        limiters applied to the numbers directly.

        Parameters
        ----------
        faces
            The face geometry.
        tensor
            ``(dim, dim, n_faces)`` face tensors (:func:`face_tensor`), m^2/s.
        face_gradient
            ``(n_faces,)`` one-sided derivative along each face's own axis, towards
            +axis (mol m^-4); zero where the cross flux must not look across
            (material jumps, closed walls).

        Returns
        -------
        ndarray
            ``(n_faces,)`` :math:`\mathbf{J}\cdot\hat n_f`, mol m^-2 s^-1.
        """
        flux = np.zeros(len(faces.axis))
        for t in range(dim):
            slope = monotonized_central(face_gradient[self.minus[t]], face_gradient[self.plus[t]])
            transverse = monotonized_central(slope[faces.cell1], slope[faces.cell2])
            across = faces.axis != t
            index = np.flatnonzero(across)
            flux[index] -= tensor[faces.axis[index], t, index] * transverse[index]
        return self.sign * flux
