"""Tests of cosinter.models.crystal: lattices, plane normals, rotations, tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosinter.models.crystal import (
    Lattice,
    angle_to_c,
    direct_basis,
    euler_from_rotation,
    miller_to_hkl,
    plane_normal,
    principal_tensor,
    reciprocal_basis,
    rotate_tensor,
    rotate_tensors,
    rotation_from_euler,
    rotation_from_plane,
    rotation_from_tilt,
)

ANGSTROM = 1e-10
NCM = Lattice("hexagonal", 2.864 * ANGSTROM, 2.864 * ANGSTROM, 14.233 * ANGSTROM)
LLTO = Lattice("tetragonal", 5.480 * ANGSTROM, 5.480 * ANGSTROM, 7.756 * ANGSTROM)
ORTHO = Lattice("orthorhombic", 3.1 * ANGSTROM, 4.7 * ANGSTROM, 9.2 * ANGSTROM)
CUBIC = Lattice("cubic", 4.0 * ANGSTROM, 4.0 * ANGSTROM, 4.0 * ANGSTROM)
LATTICES = [NCM, LLTO, ORTHO, CUBIC]

X = np.array([1.0, 0.0, 0.0])


def assert_rotation(R: np.ndarray) -> None:
    assert R.shape == (3, 3)
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random rotation (QR of a Gaussian matrix with the sign fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# -- lattice ------------------------------------------------------------------------------


def test_lattice_angles() -> None:
    assert NCM.gamma == pytest.approx(math.radians(120))
    assert LLTO.gamma == pytest.approx(math.pi / 2)
    assert NCM.alpha == NCM.beta == pytest.approx(math.pi / 2)
    # NCM111 cell volume 101.1 A^3 (LITERATURE.md)
    assert NCM.volume / ANGSTROM**3 == pytest.approx(101.1, abs=0.1)


@pytest.mark.parametrize(
    ("system", "a", "b", "c", "match"),
    [
        ("cubic", 1e-10, 1e-10, 2e-10, "a = b = c"),
        ("tetragonal", 1e-10, 2e-10, 2e-10, "a = b"),
        ("hexagonal", 1e-10, 1.1e-10, 2e-10, "a = b"),
        ("orthorhombic", 1e-10, 0.0, 2e-10, "positive"),
        ("orthorhombic", -1e-10, 1e-10, 2e-10, "positive"),
        ("hexagonal", 1e-10, 1e-10, float("nan"), "positive"),
        ("monoclinic", 1e-10, 1e-10, 1e-10, "unknown lattice system"),
    ],
)
def test_lattice_validation(system: str, a: float, b: float, c: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Lattice(system, a, b, c)  # type: ignore[arg-type]


def test_lattice_equal_within_tolerance() -> None:
    Lattice("cubic", 4e-10, 4e-10 * (1 + 1e-12), 4e-10)


@pytest.mark.parametrize("lattice", LATTICES)
def test_direct_and_reciprocal_bases(lattice: Lattice) -> None:
    A = direct_basis(lattice)
    B = reciprocal_basis(lattice)
    np.testing.assert_allclose(A.T @ B, np.eye(3), atol=1e-12)
    assert np.linalg.norm(A[:, 0]) == pytest.approx(lattice.a)
    assert np.linalg.norm(A[:, 1]) == pytest.approx(lattice.b)
    np.testing.assert_allclose(A[:, 2], [0, 0, lattice.c])
    np.testing.assert_allclose(A[:, 0] / lattice.a, X)


def test_hexagonal_a2() -> None:
    a = NCM.a
    np.testing.assert_allclose(direct_basis(NCM)[:, 1], a * np.array([-0.5, math.sqrt(3) / 2, 0]))


# -- indices and normals ------------------------------------------------------------------


def test_miller_to_hkl() -> None:
    assert miller_to_hkl((1, 0, 4)) == (1, 0, 4)
    assert miller_to_hkl((1, 0, -1, 4)) == (1, 0, 4)
    assert miller_to_hkl((1, 1, -2, 0)) == (1, 1, 0)
    assert miller_to_hkl([np.int64(0), 0, 3]) == (0, 0, 3)  # type: ignore[list-item]
    assert miller_to_hkl([1.0, 0.0, 4.0]) == (1, 0, 4)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("indices", "match"),
    [
        ((1, 0, 0, 4), r"i must be -\(h\+k\) = -1"),
        ((0, 0, 0), "all zero"),
        ((0, 0, 0, 0), "all zero"),
        ((1, 0), "3 \\(hkl\\) or 4 \\(hkil\\)"),
        ((1, 0, 0, 0, 1), "3 \\(hkl\\) or 4"),
        ((1.5, 0, 4), "integers"),
    ],
)
def test_miller_errors(indices: tuple[float, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        miller_to_hkl(indices)  # type: ignore[arg-type]


def test_four_indices_need_hexagonal() -> None:
    with pytest.raises(ValueError, match="hexagonal"):
        plane_normal(LLTO, (1, 0, -1, 4))


@pytest.mark.parametrize(
    ("indices", "degrees"),
    [
        ((0, 0, 3), 0.0),
        ((1, 0, 4), 55.1),
        ((1, 0, 8), 35.7),
        ((0, 1, 2), 70.8),
        ((1, 0, 1), 80.1),
        ((1, 1, 0), 90.0),
    ],
)
def test_ncm_plane_angles(indices: tuple[int, int, int], degrees: float) -> None:
    """Angles of LITERATURE.md (computed there from a = 2.864 A, c = 14.233 A)."""
    assert math.degrees(angle_to_c(NCM, indices)) == pytest.approx(degrees, abs=0.05)


def test_opposite_plane_gives_supplementary_angle() -> None:
    assert angle_to_c(NCM, (0, 0, -3)) == pytest.approx(math.pi)
    assert angle_to_c(NCM, (-1, 0, -4)) == pytest.approx(math.pi - angle_to_c(NCM, (1, 0, 4)))


def test_miller_bravais_equals_miller() -> None:
    np.testing.assert_allclose(plane_normal(NCM, (1, 0, -1, 4)), plane_normal(NCM, (1, 0, 4)))
    np.testing.assert_allclose(plane_normal(NCM, (1, 1, -2, 0)), plane_normal(NCM, (1, 1, 0)))


@pytest.mark.parametrize("lattice", LATTICES)
def test_normal_is_perpendicular_to_plane(lattice: Lattice) -> None:
    """(hkl) contains the lattice vectors a1/h - a2/k etc.; the normal is orthogonal to them."""
    A = direct_basis(lattice)
    h, k, l = 2, 1, 3  # noqa: E741
    n = plane_normal(lattice, (h, k, l))
    assert np.linalg.norm(n) == pytest.approx(1.0)
    for u in (A[:, 0] / h - A[:, 1] / k, A[:, 1] / k - A[:, 2] / l):
        assert abs(n @ u) < 1e-12 * np.linalg.norm(u)


def test_cubic_normal_is_hkl_direction() -> None:
    np.testing.assert_allclose(plane_normal(CUBIC, (1, 1, 1)), np.ones(3) / math.sqrt(3))


# -- rotation from a plane ----------------------------------------------------------------

indices_st = st.tuples(*(st.integers(-6, 6),) * 3).filter(lambda v: v != (0, 0, 0))


@settings(max_examples=200, deadline=None)
@given(
    lattice=st.sampled_from(LATTICES),
    indices=indices_st,
    in_plane=st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False),
)
def test_rotation_from_plane_properties(
    lattice: Lattice, indices: tuple[int, int, int], in_plane: float
) -> None:
    R = rotation_from_plane(lattice, indices, in_plane)
    assert_rotation(R)
    np.testing.assert_allclose(R @ plane_normal(lattice, indices), X, atol=1e-12)
    if in_plane == 0.0:
        c_lab = R @ np.array([0.0, 0.0, 1.0])
        assert abs(c_lab[1]) < 1e-12  # c lies in the lab x-z plane
        assert c_lab[2] >= -1e-12  # ... projecting onto +z
        assert c_lab[0] == pytest.approx(math.cos(angle_to_c(lattice, indices)), abs=1e-12)


def test_rotation_from_plane_c_parallel_normal() -> None:
    R = rotation_from_plane(NCM, (0, 0, 3))
    assert_rotation(R)
    # c -> +x, a -> +y, e2 -> +z
    np.testing.assert_allclose(R, [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-15)
    R_down = rotation_from_plane(NCM, (0, 0, -3))
    assert_rotation(R_down)
    np.testing.assert_allclose(R_down @ [0, 0, 1], -X, atol=1e-15)
    np.testing.assert_allclose(R_down @ [1, 0, 0], [0, 1, 0], atol=1e-15)


def test_rotation_from_plane_in_plane_angle() -> None:
    """A positive in-plane angle turns lab +y toward +z about x."""
    R0 = rotation_from_plane(NCM, (0, 0, 3))
    R = rotation_from_plane(NCM, (0, 0, 3), in_plane=math.pi / 2)
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 0, 1], atol=1e-15)  # a: +y -> +z
    np.testing.assert_allclose(R @ [0, 0, 1], R0 @ [0, 0, 1], atol=1e-15)  # normal unchanged
    R104 = rotation_from_plane(NCM, (1, 0, 4), in_plane=0.3)
    np.testing.assert_allclose(R104 @ plane_normal(NCM, (1, 0, 4)), X, atol=1e-12)


def test_rotation_from_plane_rejects_nan_angle() -> None:
    with pytest.raises(ValueError, match="in_plane"):
        rotation_from_plane(NCM, (1, 0, 4), float("nan"))


# -- tilt ---------------------------------------------------------------------------------


def test_tilt_zero_equals_003() -> None:
    np.testing.assert_allclose(rotation_from_tilt(0.0), rotation_from_plane(NCM, (0, 0, 3)))


@pytest.mark.parametrize("indices", [(1, 0, 4), (1, 0, 8), (0, 1, 2), (1, 0, 1), (1, 1, 0)])
def test_tilt_and_plane_put_c_in_the_same_place(indices: tuple[int, int, int]) -> None:
    theta = angle_to_c(NCM, indices)
    R_tilt = rotation_from_tilt(theta)
    R_plane = rotation_from_plane(NCM, indices)
    assert_rotation(R_tilt)
    c = np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(R_tilt @ c, R_plane @ c, atol=1e-12)
    np.testing.assert_allclose(R_tilt @ c, [math.cos(theta), 0, math.sin(theta)], atol=1e-15)


def test_tilt_104_is_55_degrees() -> None:
    c_lab = rotation_from_plane(NCM, (1, 0, 4)) @ np.array([0.0, 0.0, 1.0])
    assert math.degrees(math.acos(c_lab[0])) == pytest.approx(55.1, abs=0.05)
    assert c_lab[2] > 0


def test_tilt_axes() -> None:
    t = 0.4
    R = rotation_from_tilt(t)
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0])
    np.testing.assert_allclose(R @ [0, 0, 1], [math.cos(t), 0, math.sin(t)])


# -- Euler angles -------------------------------------------------------------------------


def bunge_g(phi1: float, Phi: float, phi2: float) -> np.ndarray:
    """Bunge's explicit matrix (Bunge 1982, eq. 2.37), written out independently."""
    c1, s1, c, s, c2, s2 = (
        math.cos(phi1),
        math.sin(phi1),
        math.cos(Phi),
        math.sin(Phi),
        math.cos(phi2),
        math.sin(phi2),
    )
    return np.array(
        [
            [c1 * c2 - s1 * s2 * c, s1 * c2 + c1 * s2 * c, s2 * s],
            [-c1 * s2 - s1 * c2 * c, -s1 * s2 + c1 * c2 * c, c2 * s],
            [s1 * s, -c1 * s, c],
        ]
    )


def test_euler_identity() -> None:
    np.testing.assert_allclose(rotation_from_euler(0.0, 0.0, 0.0), np.eye(3))
    assert euler_from_rotation(np.eye(3)) == (0.0, 0.0, 0.0)


def test_euler_matches_bunge_matrix() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        angles = rng.uniform([0, 0, 0], [2 * math.pi, math.pi, 2 * math.pi])
        np.testing.assert_allclose(rotation_from_euler(*angles), bunge_g(*angles).T, atol=1e-14)


def test_euler_single_axis() -> None:
    """phi1 alone: the crystal is turned by +phi1 about lab z (passive g = Rz(phi1))."""
    R = rotation_from_euler(math.pi / 2, 0.0, 0.0)
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    R = rotation_from_euler(0.0, math.pi / 2, 0.0)
    np.testing.assert_allclose(R @ [0, 0, 1], [0, -1, 0], atol=1e-15)


def test_euler_round_trip_random_rotations() -> None:
    rng = np.random.default_rng(12345)
    for _ in range(500):
        R = random_rotation(rng)
        phi1, Phi, phi2 = euler_from_rotation(R)
        assert 0 <= phi1 < 2 * math.pi
        assert 0 <= phi2 < 2 * math.pi
        assert 0 <= Phi <= math.pi
        np.testing.assert_allclose(rotation_from_euler(phi1, Phi, phi2), R, atol=1e-12)


def test_euler_angles_round_trip() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        angles = rng.uniform([0, 0.01, 0], [2 * math.pi, math.pi - 0.01, 2 * math.pi])
        np.testing.assert_allclose(
            euler_from_rotation(rotation_from_euler(*angles)), angles, atol=1e-10
        )


@pytest.mark.parametrize(
    ("phi1", "Phi", "phi2", "expected_phi1", "expected_Phi"),
    [
        (0.3, 0.0, 0.5, 0.8, 0.0),  # Phi = 0: g = Rz(phi1 + phi2)
        (0.3, math.pi, 0.5, 2 * math.pi - 0.2, math.pi),  # Phi = pi: g = Rx(pi) Rz(phi1 - phi2)
        (5.0, 0.0, 4.0, 9.0 - 2 * math.pi, 0.0),
        (1.0, 1e-13, 0.0, 1.0, 0.0),  # numerically locked
        (0.0, math.pi, 0.0, 0.0, math.pi),
    ],
)
def test_euler_gimbal_lock(
    phi1: float, Phi: float, phi2: float, expected_phi1: float, expected_Phi: float
) -> None:
    R = rotation_from_euler(phi1, Phi, phi2)
    got_phi1, got_Phi, got_phi2 = euler_from_rotation(R)
    assert got_phi2 == 0.0
    assert got_Phi == pytest.approx(expected_Phi, abs=1e-12)
    assert got_phi1 == pytest.approx(expected_phi1, abs=1e-12)
    np.testing.assert_allclose(rotation_from_euler(got_phi1, got_Phi, got_phi2), R, atol=1e-12)


def test_euler_from_plane_rotation_round_trip() -> None:
    R = rotation_from_plane(NCM, (1, 0, 4), 0.7)
    np.testing.assert_allclose(rotation_from_euler(*euler_from_rotation(R)), R, atol=1e-12)


@pytest.mark.parametrize(
    "matrix",
    [np.diag([1.0, 1.0, -1.0]), 2 * np.eye(3), np.eye(2), np.full((3, 3), np.nan)],
)
def test_euler_from_rotation_rejects_non_rotations(matrix: np.ndarray) -> None:
    with pytest.raises(ValueError):
        euler_from_rotation(matrix)


# -- tensors ------------------------------------------------------------------------------

D_AB, D_C = 1e-14, 1e-17


def test_principal_tensor() -> None:
    np.testing.assert_array_equal(principal_tensor(NCM, (1.0, 2.0, 3.0)), np.diag([1.0, 2, 3]))
    with pytest.raises(ValueError, match="3 finite"):
        principal_tensor(NCM, (1.0, 2.0, float("inf")))


def test_003_closed_channels() -> None:
    D = rotate_tensor(rotation_from_plane(NCM, (0, 0, 3)), principal_tensor(NCM, (D_AB, D_AB, D_C)))
    assert D[0, 0] == pytest.approx(D_C, rel=1e-12)
    assert D[1, 1] == pytest.approx(D_AB, rel=1e-12)
    assert D[2, 2] == pytest.approx(D_AB, rel=1e-12)


def test_104_open_channels() -> None:
    D = rotate_tensor(rotation_from_plane(NCM, (1, 0, 4)), principal_tensor(NCM, (D_AB, D_AB, D_C)))
    theta = math.radians(55.1)
    expected = D_AB * math.sin(theta) ** 2 + D_C * math.cos(theta) ** 2
    assert D[0, 0] == pytest.approx(expected, rel=2e-3)
    exact_theta = angle_to_c(NCM, (1, 0, 4))
    exact = D_AB * math.sin(exact_theta) ** 2 + D_C * math.cos(exact_theta) ** 2
    assert D[0, 0] == pytest.approx(exact, rel=1e-12)
    np.testing.assert_allclose(D, D.T, rtol=0, atol=1e-30)
    assert np.trace(D) == pytest.approx(2 * D_AB + D_C, rel=1e-12)


def test_tilt_and_plane_give_same_uniaxial_tensor() -> None:
    T = principal_tensor(NCM, (D_AB, D_AB, D_C))
    theta = angle_to_c(NCM, (1, 0, 4))
    np.testing.assert_allclose(
        rotate_tensor(rotation_from_tilt(theta), T),
        rotate_tensor(rotation_from_plane(NCM, (1, 0, 4)), T),
        rtol=0,
        atol=1e-28,
    )


def test_rotate_tensors_matches_loop() -> None:
    rng = np.random.default_rng(3)
    n = 17
    Rs = np.stack([random_rotation(rng) for _ in range(n)])
    principal = rng.uniform(0.1, 2.0, size=(n, 3))
    out = rotate_tensors(Rs, principal)
    assert out.shape == (n, 3, 3)
    for i in range(n):
        np.testing.assert_allclose(out[i], rotate_tensor(Rs[i], np.diag(principal[i])), atol=1e-14)


def test_rotate_tensor_shape_errors() -> None:
    with pytest.raises(ValueError):
        rotate_tensor(np.eye(3), np.eye(2))
    with pytest.raises(ValueError):
        rotate_tensors(np.eye(3), np.ones(3))
    with pytest.raises(ValueError):
        rotate_tensors(np.stack([np.eye(3)] * 2), np.ones((3, 3)))
