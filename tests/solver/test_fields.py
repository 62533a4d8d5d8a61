"""The cross-term stencil of rotated tensors: exact on linear fields, silent at extrema."""

from __future__ import annotations

from types import SimpleNamespace

import fipy
import numpy as np
import pytest

from cosinter.solver.fields import CrossStencil, FaceGeometry, monotonized_central

NX, NY, DX, DY = 6, 5, 2.0, 3.0
TENSOR = np.array([[2.0, 0.7], [0.7, 1.0]])


def grid(periodic: bool) -> tuple[fipy.meshes.mesh.Mesh, FaceGeometry, CrossStencil]:
    if periodic:
        mesh = fipy.PeriodicGrid2DTopBottom(dx=DX, dy=DY, nx=NX, ny=NY)
    else:
        mesh = fipy.Grid2D(dx=DX, dy=DY, nx=NX, ny=NY)
    geometry = SimpleNamespace(
        dimension=2, n_cells=NX * NY, cell_dx=np.full(NX * NY, DX), d_lateral=DY
    )
    faces = FaceGeometry.of(mesh, geometry)  # type: ignore[arg-type]
    return mesh, faces, CrossStencil.of(mesh, faces, 2)


def cross(mesh: fipy.meshes.mesh.Mesh, faces: FaceGeometry, stencil: CrossStencil, c: np.ndarray):
    """Cross flux with the solver's convention: no slope through the exterior."""
    gradient = stencil.sign * (c[faces.cell2] - c[faces.cell1]) / (faces.d1 + faces.d2)
    gradient[~faces.interior] = 0.0
    tensor = np.repeat(TENSOR[:, :, None], len(faces.axis), axis=2)
    return stencil.cross_flux(faces, tensor, gradient, 2)


def test_limiter_keeps_equal_slopes_and_stops_at_extrema() -> None:
    a = np.array([1.0, 1.0, -1.0, 0.0, 1.0])
    b = np.array([1.0, 3.0, 2.0, 5.0, 0.2])
    # equal: itself; same sign: min(2|a|, 2|b|, |a+b|/2); opposite or zero: 0
    assert monotonized_central(a, b) == pytest.approx([1.0, 2.0, 0.0, 0.0, 0.4])


def test_cross_flux_is_exact_for_a_linear_field_inside() -> None:
    mesh, faces, stencil = grid(periodic=False)
    x, y = np.asarray(mesh.cellCenters)
    c = 0.5 * x + 2.0 * y
    flux = cross(mesh, faces, stencil, c)
    fx, fy = np.asarray(mesh.faceCenters)
    # faces whose two cells have neighbours on both sides along the other axis
    inner_x = (faces.axis == 0) & (fy > DY) & (fy < (NY - 1) * DY)
    inner_y = (faces.axis == 1) & (fx > DX) & (fx < (NX - 1) * DX) & faces.interior
    # J.n = -D_xy dc/dy on x faces (normal +x), -D_yx dc/dx on y faces (normal +y)
    assert flux[inner_x & faces.interior] == pytest.approx(-0.7 * 2.0)
    assert flux[inner_y] == pytest.approx(-0.7 * 0.5)


def test_periodic_wrap_faces_match_interior_ones() -> None:
    """Shifting a y-periodic field by one row shifts the cross flux by one row."""
    mesh, faces, stencil = grid(periodic=True)
    x, y = np.asarray(mesh.cellCenters)
    rows = np.rint((y - DY / 2) / DY).astype(int)
    profile = np.array([0.0, 1.0, 3.0, 4.0, 2.0])
    xf, yf = np.asarray(mesh.faceCenters)
    x_faces = np.flatnonzero((faces.axis == 0) & faces.interior)
    key = np.rint(yf[x_faces] / DY - 0.5).astype(int), np.rint(xf[x_faces] / DX).astype(int)
    table = []
    for shift in (0, 1):
        flux = cross(mesh, faces, stencil, profile[(rows + shift) % NY] + 0.0 * x)
        grid_flux = np.zeros((NY, NX + 1))
        grid_flux[key] = flux[x_faces]
        table.append(grid_flux)
    assert np.any(table[0] != 0.0)
    assert table[1] == pytest.approx(np.roll(table[0], -1, axis=0))


def test_no_cross_flux_at_a_transverse_extremum() -> None:
    mesh, faces, stencil = grid(periodic=False)
    _x, y = np.asarray(mesh.cellCenters)
    c = -((y - 2.5 * DY) ** 2)  # a ridge along x at the middle row
    flux = cross(mesh, faces, stencil, c)
    _fx, fy = np.asarray(mesh.faceCenters)
    ridge = (faces.axis == 0) & np.isclose(fy, 2.5 * DY)
    assert np.all(flux[ridge] == 0.0)


@pytest.mark.parametrize("periodic", [False, True])
def test_linearised_cross_flux_is_the_limited_flux(periodic: bool) -> None:
    """T c + t0 with the limiters frozen at c reproduces cross_flux(c), fixed ends too."""
    mesh, faces, stencil = grid(periodic)
    rng = np.random.default_rng(7)
    x, y = np.asarray(mesh.cellCenters)
    c = 0.5 * x + np.sin(y) + 0.2 * rng.random(NX * NY)  # limiters pick every branch
    closed = ~faces.interior
    left = np.flatnonzero(np.asarray(mesh.facesLeft))
    fixed = dict.fromkeys(left.tolist(), -1.5)
    gradient = stencil.sign * (c[faces.cell2] - c[faces.cell1]) / (faces.d1 + faces.d2)
    gradient[closed] = 0.0
    gradient[left] = stencil.sign[left] * (-1.5 - c[faces.cell1[left]]) / faces.d1[left]
    tensor = np.repeat(TENSOR[:, :, None], len(faces.axis), axis=2)
    reference = stencil.cross_flux(faces, tensor, gradient, 2)
    reference[closed] = 0.0
    T, t0, choice = stencil.linearised(faces, tensor, c, closed, fixed, 2)
    assert np.any(t0 != 0.0)
    assert T @ c + t0 == pytest.approx(reference, abs=1e-14)
    # the inflow matrix conserves: columns of divergence @ T sum to zero
    inflow = stencil.divergence @ T
    assert np.abs(np.asarray(inflow.sum(axis=0))).max() < 1e-12
    # frozen choices rebuild the same operator from any other iterate
    again, t0_again, _ = stencil.linearised(faces, tensor, 2.0 * c, closed, fixed, 2, choice)
    assert (again - T).count_nonzero() == 0 and t0_again == pytest.approx(t0)
