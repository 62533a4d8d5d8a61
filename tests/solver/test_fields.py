"""The cross-term stencil of rotated tensors: exact on linear fields, silent at extrema."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import fipy
import numpy as np
import pytest

from cosinter.solver.fields import (
    CrossStencil,
    FaceGeometry,
    LimiterChoice,
    _mc_weights,
    monotonized_central,
)

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
    ridge = (faces.axis == 0) & np.isclose(fy, 2.5 * DY, atol=0)
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


def _mc_weights_nested(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The limiter weights as first written (nested np.where): the reference of the table."""
    first = 2.0 * np.abs(a) <= np.minimum(2.0 * np.abs(b), 0.5 * np.abs(a + b))
    second = ~first & (2.0 * np.abs(b) <= 0.5 * np.abs(a + b))
    same = a * b > 0.0
    wa = np.where(same, np.where(first, 2.0, np.where(second, 0.0, 0.5)), 0.0)
    wb = np.where(same, np.where(first, 0.0, np.where(second, 2.0, 0.5)), 0.0)
    return wa, wb


def test_limiter_weights_give_the_limiter() -> None:
    """wa a + wb b is the MC limiter on every branch, ties and zeros included."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=400), rng.normal(size=400)
    b[::5] = a[::5]  # (a+b)/2 == a: equal slopes
    b[1::5] = 3.0 * a[1::5]  # 2|a| == |a+b|/2: a tie of two branches
    a[2::5] = 0.0
    b[3::5] = -a[3::5]
    wa, wb = _mc_weights(a, b)
    assert wa * a + wb * b == pytest.approx(monotonized_central(a, b), rel=1e-15, abs=0.0)
    for new, old in zip((wa, wb), _mc_weights_nested(a, b), strict=True):
        np.testing.assert_array_equal(new, old)


def _stencil(
    dim: int, periodic: bool, n: int
) -> tuple[fipy.meshes.mesh.Mesh, FaceGeometry, CrossStencil]:
    """A dim-D grid of n cells per side (x widths uneven), its faces and stencil."""
    dx = np.linspace(1.0, 2.0, n)
    if dim == 2:
        grid_type = fipy.PeriodicGrid2DTopBottom if periodic else fipy.Grid2D
        mesh = grid_type(dx=dx, dy=DY, nx=n, ny=n)
    else:
        grid_type = fipy.PeriodicGrid3DTopBottomFrontBack if periodic else fipy.Grid3D
        mesh = grid_type(dx=dx, dy=DY, dz=DY, nx=n, ny=n, nz=n)
    n_cells = n**dim
    geometry = SimpleNamespace(
        dimension=dim, n_cells=n_cells, cell_dx=np.tile(dx, n_cells // n), d_lateral=DY
    )
    faces = FaceGeometry.of(mesh, geometry)  # type: ignore[arg-type]
    return mesh, faces, CrossStencil.of(mesh, faces, dim)


def _rotated_tensors(rng: np.random.Generator, dim: int, n_faces: int) -> np.ndarray:
    """``(dim, dim, n_faces)`` random symmetric positive tensors, randomly rotated."""
    q, _ = np.linalg.qr(rng.normal(size=(n_faces, dim, dim)))
    eig = 10.0 ** rng.uniform(-2.0, 0.0, size=(n_faces, dim))
    tensors = np.einsum("fij,fj,fkj->fik", q, eig, q)
    return np.ascontiguousarray(np.transpose(tensors, (1, 2, 0)))


def _assert_same_operator(
    stencil: CrossStencil,
    faces: FaceGeometry,
    tensor: np.ndarray,
    values: np.ndarray,
    closed: np.ndarray,
    fixed: dict[int, float],
    frozen: LimiterChoice | None = None,
) -> None:
    """linearised and its sparse-product reference give the same T, t0 and choice."""
    dim = tensor.shape[0]
    T, t0, choice = stencil.linearised(faces, tensor, values, closed, fixed, dim, frozen)
    R, r0, reference_choice = stencil._linearised_reference(
        faces, tensor, values, closed, fixed, dim, frozen
    )
    dense, expected = T.toarray(), R.toarray()
    assert np.any(expected != 0.0)
    np.testing.assert_allclose(dense, expected, rtol=1e-15, atol=1e-15 * np.abs(expected).max())
    np.testing.assert_allclose(t0, r0, rtol=1e-15, atol=1e-15 * max(np.abs(r0).max(), 1e-300))
    assert len(choice) == len(reference_choice)
    for mine, theirs in zip(choice, reference_choice, strict=True):
        for w, v in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(w, v)


@pytest.mark.parametrize(
    ("dim", "periodic", "n", "ends"),
    [
        (2, True, 9, ()),
        (2, True, 9, ("Left",)),
        (2, True, 9, ("Left", "Right")),
        (2, False, 7, ("Right",)),
        (3, True, 5, ()),
        (3, False, 4, ("Left",)),
    ],
)
def test_fast_linearised_is_the_reference(
    dim: int, periodic: bool, n: int, ends: tuple[str, ...]
) -> None:
    """The cached-pattern operator equals the sparse-product one: random rotated
    tensors and values, material-jump faces, fixed ends, frozen choices."""
    mesh, faces, stencil = _stencil(dim, periodic, n)
    rng = np.random.default_rng(11 + dim + len(ends))
    n_faces, n_cells = len(faces.axis), n**dim
    tensor = _rotated_tensors(rng, dim, n_faces)
    x = np.asarray(mesh.faceCenters)[0]
    # a material interface normal to x, plus a few scattered closed faces
    jump = faces.interior & (faces.axis == 0) & np.isclose(x, x[faces.axis == 0][n // 2], atol=0)
    assert np.any(jump)
    closed = ~faces.interior | jump | (faces.interior & (rng.random(n_faces) < 0.05))
    fixed: dict[int, float] = {}
    for end in ends:
        ids = np.flatnonzero(np.asarray(getattr(mesh, f"faces{end}")))
        fixed.update(zip(ids.tolist(), rng.random(len(ids)).tolist(), strict=True))
    values = rng.random(n_cells)
    _assert_same_operator(stencil, faces, tensor, values, closed, fixed)
    # the pattern is reused: new values, tensors and fixed concentrations
    other = rng.random(n_cells)
    tensor = _rotated_tensors(rng, dim, n_faces)
    fixed = {face: 2.0 * value for face, value in fixed.items()}
    _assert_same_operator(stencil, faces, tensor, other, closed.copy(), fixed)
    _assert_same_operator(stencil, faces, np.asfortranarray(tensor), other, closed, fixed)
    assert len(stencil._patterns) == 1
    # frozen choices (those of another iterate)
    _T, _t0, choice = stencil.linearised(faces, tensor, values, closed, fixed, dim)
    _assert_same_operator(stencil, faces, tensor, other, closed, fixed, choice)
    # another closed mask gets its own pattern
    _assert_same_operator(stencil, faces, tensor, other, ~faces.interior, fixed)
    assert len(stencil._patterns) == 2


def test_fast_linearised_owns_nothing_it_returns() -> None:
    """Changing a returned T in place leaves the cached pattern (and the next T) intact."""
    _mesh, faces, stencil = _stencil(2, True, 6)
    rng = np.random.default_rng(5)
    tensor = _rotated_tensors(rng, 2, len(faces.axis))
    args: tuple[Any, ...] = (faces, tensor, rng.random(36), ~faces.interior, {}, 2)
    T, _t0, _choice = stencil.linearised(*args)
    expected = T.toarray()
    T.indices[:] = 0
    T.indptr[:] = 0
    T.data[:] = 0.0
    again, _t0, _choice = stencil.linearised(*args)
    np.testing.assert_array_equal(again.toarray(), expected)
