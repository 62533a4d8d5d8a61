r"""Crystal lattices, plane normals and orientations (crystal frame -> lab frame).

Frames and conventions
----------------------
*Crystal Cartesian frame* (orthonormal :math:`e_1, e_2, e_3`): :math:`e_1 \parallel a`,
:math:`e_3 \parallel c` and :math:`e_2 = e_3 \times e_1`. For every lattice system
supported here (cubic, tetragonal, hexagonal, orthorhombic) :math:`c` is perpendicular
to :math:`a` and :math:`b`, so this frame is well defined; for hexagonal lattices
:math:`b = a_2 = a(-\tfrac12, \tfrac{\sqrt3}{2}, 0)` (:math:`\gamma = 120^\circ`).

*Lab frame*: :math:`x` is the stack normal (through the layers); :math:`y` and
:math:`z` lie in the interface plane.

*Orientation*: :math:`R` is the rotation matrix from the crystal Cartesian frame to
the lab frame,

.. math::

    v_\mathrm{lab} = R\, v_\mathrm{crystal}, \qquad
    T_\mathrm{lab} = R\, T_\mathrm{crystal}\, R^\mathsf{T},

with :math:`R^\mathsf{T} R = I` and :math:`\det R = +1`. Ways to build it:

* :func:`rotation_from_plane` -- the interface plane :math:`(hkl)` or :math:`(hkil)`:
  its unit normal :math:`n` goes to lab :math:`+x`. Lab :math:`+z` is the direction of
  the projection of the crystal :math:`c` axis onto the interface plane (so a tilted
  :math:`c` axis lies in the lab :math:`x`--:math:`z` plane with a positive :math:`z`
  component). If :math:`n \parallel c`, lab :math:`+y` is the crystal :math:`a` axis
  instead. An optional ``in_plane`` angle then rotates the crystal about lab :math:`x`
  (right-hand rule: a positive angle turns :math:`+y` toward :math:`+z`).
* :func:`rotation_from_euler` -- Bunge (ZXZ) Euler angles
  :math:`(\varphi_1, \Phi, \varphi_2)`; Bunge's passive matrix :math:`g` (lab ->
  crystal) is :math:`g = R_z(\varphi_2) R_x(\Phi) R_z(\varphi_1)` and :math:`R = g^\mathsf{T}`.
* :func:`rotation_from_tilt` -- crystal :math:`c` axis tilted by :math:`t` from lab
  :math:`x` toward lab :math:`+z`, crystal :math:`a` axis along lab :math:`y`.

Plane indices are integers: three Miller indices :math:`(hkl)` or, for hexagonal
lattices, four Miller--Bravais indices :math:`(hkil)` with :math:`i = -(h + k)`.
Plane normals are :math:`h a^* + k b^* + l c^*` with the reciprocal vectors
:math:`a_i \cdot a^*_j = \delta_{ij}` (no factor :math:`2\pi`). A plane and its
opposite, :math:`(hkl)` and :math:`(\bar h \bar k \bar l)`, have opposite normals: the sign
says which face of the crystal points along lab :math:`+x`.

All lengths are in metres and all angles in radians. Bad geometry input raises
:class:`ValueError` (callers turn it into a case error).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "Lattice",
    "LatticeSystem",
    "angle_to_c",
    "direct_basis",
    "euler_from_rotation",
    "miller_to_hkl",
    "plane_normal",
    "principal_tensor",
    "reciprocal_basis",
    "rotate_tensor",
    "rotate_tensors",
    "rotation_from_euler",
    "rotation_from_plane",
    "rotation_from_tilt",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
LatticeSystem: TypeAlias = Literal["cubic", "tetragonal", "hexagonal", "orthorhombic"]

_SYSTEMS: Final = ("cubic", "tetragonal", "hexagonal", "orthorhombic")
#: Relative tolerance for "equal" lattice parameters (a = b, a = b = c).
_LENGTH_RTOL: Final = 1e-9
#: Below this |sin| two directions count as parallel (normal || c, Phi = 0 or pi).
_PARALLEL_TOL: Final = 1e-9
#: Tolerance on R^T R = I and det R = 1 for matrices handed in by callers.
_ORTHO_TOL: Final = 1e-6


@dataclass(frozen=True)
class Lattice:
    r"""Lattice parameters of a crystal whose :math:`c` axis is normal to :math:`a, b`.

    Parameters
    ----------
    system
        ``"cubic"`` (:math:`a = b = c`), ``"tetragonal"`` (:math:`a = b`),
        ``"hexagonal"`` (:math:`a = b`, :math:`\gamma = 120^\circ`) or
        ``"orthorhombic"``. All inter-axial angles are :math:`90^\circ` except the
        hexagonal :math:`\gamma`.
    a, b, c
        Lattice parameters in metres (positive, finite).

    Raises
    ------
    ValueError
        Unknown system, non-positive lengths, or lengths that break the system's
        equalities (relative tolerance 1e-9).
    """

    system: LatticeSystem
    a: float
    b: float
    c: float

    def __post_init__(self) -> None:
        if self.system not in _SYSTEMS:
            raise ValueError(
                f"unknown lattice system {self.system!r}; expected one of {', '.join(_SYSTEMS)}"
            )
        for name in ("a", "b", "c"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"lattice parameter {name} must be a positive length, got {value}")
        if self.system in ("cubic", "tetragonal", "hexagonal") and not math.isclose(
            self.a, self.b, rel_tol=_LENGTH_RTOL
        ):
            raise ValueError(
                f"{self.system} lattice requires a = b, got a = {self.a} m, b = {self.b} m"
            )
        if self.system == "cubic" and not math.isclose(self.a, self.c, rel_tol=_LENGTH_RTOL):
            raise ValueError(
                f"cubic lattice requires a = b = c, got a = {self.a} m, c = {self.c} m"
            )

    @property
    def alpha(self) -> float:
        """Angle between b and c (rad): always 90 deg here."""
        return math.pi / 2.0

    @property
    def beta(self) -> float:
        """Angle between a and c (rad): always 90 deg here."""
        return math.pi / 2.0

    @property
    def gamma(self) -> float:
        """Angle between a and b (rad): 120 deg for hexagonal, else 90 deg."""
        return 2.0 * math.pi / 3.0 if self.system == "hexagonal" else math.pi / 2.0

    @property
    def volume(self) -> float:
        r"""Unit-cell volume (m^3), :math:`a b c \sin\gamma` (since :math:`c \perp a, b`)."""
        return self.a * self.b * self.c * math.sin(self.gamma)


def direct_basis(lattice: Lattice) -> FloatArray:
    r"""Direct lattice vectors in the crystal Cartesian frame.

    .. math::

        a_1 = a\,e_1, \quad
        a_2 = b\,(\cos\gamma\, e_1 + \sin\gamma\, e_2), \quad
        a_3 = c\,e_3

    (for hexagonal lattices :math:`a_2 = a(-\tfrac12, \tfrac{\sqrt3}{2}, 0)`).

    Parameters
    ----------
    lattice
        The lattice.

    Returns
    -------
    numpy.ndarray
        Shape (3, 3); the columns are :math:`a_1, a_2, a_3` in metres.
    """
    # Exact cos/sin of gamma: math.cos(pi/2) is 6e-17, which would tilt b off e2.
    cos_g, sin_g = (-0.5, math.sqrt(3.0) / 2.0) if lattice.system == "hexagonal" else (0.0, 1.0)
    return np.array(
        [
            [lattice.a, lattice.b * cos_g, 0.0],
            [0.0, lattice.b * sin_g, 0.0],
            [0.0, 0.0, lattice.c],
        ],
        dtype=np.float64,
    )


def reciprocal_basis(lattice: Lattice) -> FloatArray:
    r"""Reciprocal lattice vectors (without :math:`2\pi`) in the crystal Cartesian frame.

    With :math:`A` the matrix whose columns are the direct vectors,

    .. math::

        A^* = (A^{-1})^\mathsf{T}, \qquad a_i \cdot a^*_j = \delta_{ij}.

    Parameters
    ----------
    lattice
        The lattice.

    Returns
    -------
    numpy.ndarray
        Shape (3, 3); the columns are :math:`a^*, b^*, c^*` in 1/m.
    """
    return np.asarray(np.linalg.inv(direct_basis(lattice)).T, dtype=np.float64)


def miller_to_hkl(indices: Sequence[int]) -> tuple[int, int, int]:
    r"""Reduce Miller :math:`(hkl)` or Miller--Bravais :math:`(hkil)` indices to :math:`(h, k, l)`.

    For four indices the redundant :math:`i` must satisfy :math:`i = -(h + k)`.

    Parameters
    ----------
    indices
        Three or four integers.

    Returns
    -------
    tuple of int
        :math:`(h, k, l)`.

    Raises
    ------
    ValueError
        Wrong number of indices, non-integer indices, :math:`i \ne -(h+k)`, or all zero.
    """
    values: list[int] = []
    for value in indices:
        try:
            values.append(operator.index(value))
        except TypeError:
            # 1.0 is accepted (case files may give floats), 1.5 is not.
            number: object = value
            if isinstance(number, float) and number.is_integer():
                values.append(int(number))
            else:
                raise ValueError(
                    f"plane indices must be integers, got {tuple(indices)!r}"
                ) from None
    if len(values) == 4:
        h, k, i, l = values  # noqa: E741 - crystallographic name
        if i != -(h + k):
            raise ValueError(
                f"Miller-Bravais indices {tuple(values)} are inconsistent: "
                f"i must be -(h+k) = {-(h + k)}, got {i}"
            )
    elif len(values) == 3:
        h, k, l = values  # noqa: E741 - crystallographic name
    else:
        raise ValueError(
            f"plane indices need 3 (hkl) or 4 (hkil) integers, got {len(values)}: {tuple(values)}"
        )
    if h == k == l == 0:
        raise ValueError(f"plane indices {tuple(values)} are all zero: no such plane")
    return h, k, l


def plane_normal(lattice: Lattice, indices: Sequence[int]) -> FloatArray:
    r"""Unit normal of the plane :math:`(hkl)` or :math:`(hkil)` in the crystal Cartesian frame.

    .. math::

        n = \frac{h a^* + k b^* + l c^*}{\lVert h a^* + k b^* + l c^* \rVert}

    Parameters
    ----------
    lattice
        The lattice.
    indices
        Miller :math:`(hkl)` or, for hexagonal lattices only, Miller--Bravais
        :math:`(hkil)` indices.

    Returns
    -------
    numpy.ndarray
        Shape (3,), unit length.

    Raises
    ------
    ValueError
        Bad indices (see :func:`miller_to_hkl`), or four indices for a
        non-hexagonal lattice.
    """
    hkl = miller_to_hkl(indices)
    if len(indices) == 4 and lattice.system != "hexagonal":
        raise ValueError(
            f"four-index (hkil) notation {tuple(indices)} only applies to hexagonal lattices, "
            f"not {lattice.system}"
        )
    g = reciprocal_basis(lattice) @ np.asarray(hkl, dtype=np.float64)
    return np.asarray(g / np.linalg.norm(g), dtype=np.float64)


def angle_to_c(lattice: Lattice, indices: Sequence[int]) -> float:
    r"""Angle (rad) between the plane normal and the crystal :math:`c` axis.

    .. math::

        \theta = \arccos(n \cdot e_3) \in [0, \pi]

    :math:`(hkl)` and :math:`(\bar h \bar k \bar l)` give :math:`\theta` and
    :math:`\pi - \theta`. For NCM111 (a = 2.864 A, c = 14.233 A), (003) gives 0 and
    (104) gives 55.1 deg.

    Parameters
    ----------
    lattice
        The lattice.
    indices
        Miller or Miller--Bravais indices.

    Returns
    -------
    float
        The angle in radians.
    """
    n = plane_normal(lattice, indices)
    return math.acos(min(1.0, max(-1.0, float(n[2]))))


def _rot_x(angle: float) -> FloatArray:
    """Active rotation about x by ``angle`` (rad): turns +y toward +z."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=np.float64)


def _check_angle(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite angle in radians, got {value}")


def rotation_from_plane(
    lattice: Lattice, indices: Sequence[int], in_plane: float = 0.0
) -> FloatArray:
    r"""Rotation crystal -> lab that puts the plane :math:`(hkl)` into the interface.

    The rows of :math:`R_0` are the lab axes written in the crystal frame:

    .. math::

        \hat x = n, \qquad
        \hat z = \frac{e_3 - (e_3 \cdot n)\,n}{\lVert e_3 - (e_3 \cdot n)\,n \rVert}, \qquad
        \hat y = \hat z \times \hat x,

    so that :math:`R_0 n = (1, 0, 0)` and the crystal :math:`c` axis maps into the lab
    :math:`x`--:math:`z` plane with :math:`c_z > 0`. If :math:`n \parallel c`
    (:math:`\lVert n \times e_3 \rVert < 10^{-9}`), :math:`\hat y = e_1` (crystal
    :math:`a`) and :math:`\hat z = \hat x \times \hat y`. Finally

    .. math::

        R = R_x(\psi)\, R_0, \qquad
        R_x(\psi) = \begin{pmatrix} 1 & 0 & 0 \\ 0 & \cos\psi & -\sin\psi \\
        0 & \sin\psi & \cos\psi \end{pmatrix}

    with :math:`\psi` = ``in_plane`` (a right-handed rotation about lab :math:`x`).

    Parameters
    ----------
    lattice
        The lattice.
    indices
        Interface plane, Miller or Miller--Bravais indices.
    in_plane
        Extra rotation about the stack normal (rad).

    Returns
    -------
    numpy.ndarray
        Shape (3, 3), proper rotation (:math:`\det R = +1`), :math:`v_\mathrm{lab} = R v`.
    """
    _check_angle("in_plane", in_plane)
    x_hat = plane_normal(lattice, indices)
    e3 = np.array([0.0, 0.0, 1.0])
    c_perp = e3 - float(e3 @ x_hat) * x_hat
    norm = float(np.linalg.norm(c_perp))
    if norm < _PARALLEL_TOL:
        # c is along the normal: its projection is undefined, so use the a axis as lab y.
        y_hat = np.array([1.0, 0.0, 0.0])
        # Remove round-off so the frame stays exactly orthonormal.
        y_hat = y_hat - float(y_hat @ x_hat) * x_hat
        y_hat /= np.linalg.norm(y_hat)
        z_hat = np.cross(x_hat, y_hat)
    else:
        z_hat = c_perp / norm
        y_hat = np.cross(z_hat, x_hat)
    r0 = np.vstack([x_hat, y_hat, z_hat])
    return np.asarray(_rot_x(in_plane) @ r0, dtype=np.float64)


def rotation_from_euler(phi1: float, Phi: float, phi2: float) -> FloatArray:
    r"""Rotation crystal -> lab from Bunge (ZXZ) Euler angles.

    Bunge's orientation matrix is passive and maps lab (sample) coordinates to
    crystal coordinates,

    .. math::

        g = R_z(\varphi_2)\, R_x(\Phi)\, R_z(\varphi_1), \quad
        R_z(\omega) = \begin{pmatrix} \cos\omega & \sin\omega & 0 \\
        -\sin\omega & \cos\omega & 0 \\ 0 & 0 & 1 \end{pmatrix}, \quad
        R_x(\omega) = \begin{pmatrix} 1 & 0 & 0 \\ 0 & \cos\omega & \sin\omega \\
        0 & -\sin\omega & \cos\omega \end{pmatrix},

    and the returned matrix is :math:`R = g^\mathsf{T}` (crystal -> lab), so the
    rows of :math:`g` (columns of :math:`R`) are the crystal axes
    :math:`e_1, e_2, e_3` in lab coordinates. :math:`(0, 0, 0)` is the identity
    (crystal :math:`c` along lab :math:`z`, i.e. in the interface plane).

    Parameters
    ----------
    phi1, Phi, phi2
        Bunge Euler angles in radians.

    Returns
    -------
    numpy.ndarray
        Shape (3, 3), proper rotation.
    """
    for name, value in (("phi1", phi1), ("Phi", Phi), ("phi2", phi2)):
        _check_angle(name, value)

    def rz(w: float) -> FloatArray:
        c, s = math.cos(w), math.sin(w)
        return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=np.float64)

    g = rz(phi2) @ _rot_x(Phi).T @ rz(phi1)  # _rot_x(w).T is Bunge's passive R_x(w)
    return np.asarray(g.T, dtype=np.float64)


def _check_rotation(R: npt.ArrayLike) -> FloatArray:
    m = np.asarray(R, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError(f"a rotation must be a finite 3x3 matrix, got shape {m.shape}")
    if not np.allclose(m.T @ m, np.eye(3), atol=_ORTHO_TOL) or not math.isclose(
        float(np.linalg.det(m)), 1.0, abs_tol=_ORTHO_TOL
    ):
        raise ValueError("matrix is not a proper rotation (needs R^T R = I and det R = +1)")
    return m


def euler_from_rotation(R: npt.ArrayLike) -> tuple[float, float, float]:
    r"""Bunge Euler angles of a rotation crystal -> lab (inverse of :func:`rotation_from_euler`).

    With :math:`g = R^\mathsf{T}`:

    .. math::

        \Phi = \operatorname{atan2}\!\left(\sqrt{g_{13}^2 + g_{23}^2},\ g_{33}\right), \quad
        \varphi_1 = \operatorname{atan2}(g_{31}, -g_{32}), \quad
        \varphi_2 = \operatorname{atan2}(g_{13}, g_{23}).

    When :math:`\sin\Phi < 10^{-9}` (:math:`\Phi \approx 0` or :math:`\pi`) only
    :math:`\varphi_1 \pm \varphi_2` is defined; all of it goes into :math:`\varphi_1`,
    :math:`\varphi_2 = 0`, :math:`\varphi_1 = \operatorname{atan2}(g_{12}, g_{11})`.

    Parameters
    ----------
    R
        Shape (3, 3) proper rotation, crystal -> lab.

    Returns
    -------
    tuple of float
        :math:`(\varphi_1, \Phi, \varphi_2)` with :math:`\varphi_1, \varphi_2 \in
        [0, 2\pi)` and :math:`\Phi \in [0, \pi]`.

    Raises
    ------
    ValueError
        If ``R`` is not a 3x3 proper rotation (tolerance 1e-6).
    """
    g = _check_rotation(R).T
    sin_Phi = math.hypot(g[0, 2], g[1, 2])
    Phi = math.atan2(sin_Phi, g[2, 2])
    if sin_Phi < _PARALLEL_TOL:
        phi1 = math.atan2(g[0, 1], g[0, 0])
        phi2 = 0.0
        Phi = 0.0 if g[2, 2] > 0.0 else math.pi
    else:
        # g31 = sin(phi1) sin(Phi), g32 = -cos(phi1) sin(Phi); g13, g23 likewise for phi2.
        phi1 = math.atan2(g[2, 0], -g[2, 1])
        phi2 = math.atan2(g[0, 2], g[1, 2])
    return _wrap_2pi(phi1), Phi, _wrap_2pi(phi2)


def _wrap_2pi(angle: float) -> float:
    wrapped = angle % (2.0 * math.pi)
    # -1e-17 % 2pi rounds to exactly 2pi; keep the half-open interval.
    return 0.0 if wrapped >= 2.0 * math.pi else wrapped


def rotation_from_tilt(tilt: float) -> FloatArray:
    r"""Rotation crystal -> lab with the :math:`c` axis tilted from the stack normal.

    .. math::

        R e_1 = (0, 1, 0), \quad
        R e_2 = (-\sin t, 0, \cos t), \quad
        R e_3 = (\cos t, 0, \sin t),

    i.e. a rotation by :math:`-t` about lab :math:`y` applied to the
    :math:`c \parallel x`, :math:`a \parallel y` orientation. For :math:`t \in [0, \pi]`
    the :math:`c` axis projects onto lab :math:`+z`, as in :func:`rotation_from_plane`,
    and ``rotation_from_tilt(0)`` equals ``rotation_from_plane(lattice, (0, 0, 1))``.
    ``rotation_from_plane`` for a plane at angle :math:`t` from :math:`c` sends
    :math:`c` to the same lab vector but may turn the crystal differently about
    :math:`c` (e.g. hexagonal (104) puts :math:`b` rather than :math:`a` along lab
    :math:`y`), which does not matter for uniaxial tensors.

    Parameters
    ----------
    tilt
        Angle between crystal :math:`c` and lab :math:`x` (rad).

    Returns
    -------
    numpy.ndarray
        Shape (3, 3), proper rotation.
    """
    _check_angle("tilt", tilt)
    c, s = math.cos(tilt), math.sin(tilt)
    # Columns are the images of e1, e2, e3.
    return np.array([[0.0, -s, c], [1.0, 0.0, 0.0], [0.0, c, s]], dtype=np.float64)


def principal_tensor(lattice: Lattice, values: tuple[float, float, float]) -> FloatArray:
    r"""Second-rank tensor with principal values along the crystal axes.

    .. math::

        T_\mathrm{crystal} = \operatorname{diag}(t_1, t_2, t_3)

    with :math:`t_1` along :math:`e_1 \parallel a`, :math:`t_2` along :math:`e_2`
    (perpendicular to :math:`a` in the basal plane) and :math:`t_3` along
    :math:`e_3 \parallel c`. For uniaxial crystals (hexagonal, tetragonal) pass
    :math:`t_1 = t_2` (e.g. :math:`(D_{ab}, D_{ab}, D_c)`).

    Parameters
    ----------
    lattice
        The lattice the values refer to (sets the frame; not otherwise used).
    values
        :math:`(t_1, t_2, t_3)`, finite, in SI units.

    Returns
    -------
    numpy.ndarray
        Shape (3, 3) diagonal matrix.
    """
    del lattice  # the frame is the same for all supported systems
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"principal values must be 3 finite numbers, got {values!r}")
    return np.diag(v)


def rotate_tensor(R: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    r"""Tensor in the lab frame, :math:`T_\mathrm{lab} = R\, T\, R^\mathsf{T}`.

    Parameters
    ----------
    R
        Shape (3, 3) rotation crystal -> lab.
    T
        Shape (3, 3) tensor in the crystal frame.

    Returns
    -------
    numpy.ndarray
        Shape (3, 3).
    """
    r = np.asarray(R, dtype=np.float64)
    t = np.asarray(T, dtype=np.float64)
    if r.shape != (3, 3) or t.shape != (3, 3):
        raise ValueError(f"expected 3x3 matrices, got R {r.shape} and T {t.shape}")
    return np.asarray(r @ t @ r.T, dtype=np.float64)


def rotate_tensors(R: npt.ArrayLike, principal: npt.ArrayLike) -> FloatArray:
    r"""Many diagonal crystal-frame tensors rotated to the lab frame (one per cell/grain).

    .. math::

        (T_n)_{ik} = \sum_j R_{n,ij}\, p_{n,j}\, R_{n,kj}

    Parameters
    ----------
    R
        Shape (n, 3, 3) rotations crystal -> lab.
    principal
        Shape (n, 3) principal values along :math:`e_1, e_2, e_3`.

    Returns
    -------
    numpy.ndarray
        Shape (n, 3, 3).
    """
    r = np.asarray(R, dtype=np.float64)
    p = np.asarray(principal, dtype=np.float64)
    if r.ndim != 3 or r.shape[1:] != (3, 3) or p.shape != (r.shape[0], 3):
        raise ValueError(
            f"expected R of shape (n, 3, 3) and principal of shape (n, 3), got {r.shape} "
            f"and {p.shape}"
        )
    return np.asarray(np.einsum("nij,nj,nkj->nik", r, p, r), dtype=np.float64)
