"""FiPy meshes and face coefficients built from the numpy models.

This is the FiPy room: camelCase FiPy objects stay inside ``cosinter.solver``.
"""

from __future__ import annotations

from dataclasses import dataclass

import fipy
import numpy as np
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
