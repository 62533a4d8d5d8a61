r"""The two-point face flux: exact steady flux between two cell centres.

Every face the solver treats in hop form (material interfaces always; every face of
a charged species when the potential is solved; every face of a species with a
concentration-dependent mobility) carries

.. math::

   J = k_+ (1-\theta_2)\,c_1 - k_- (1-\theta_1)\,c_2

from cell 1 to cell 2 (:math:`\theta = c/s`, zero for a dilute species). The rates
come from integrating the dilute flux :math:`J = -D(c' + c\,\psi')` exactly along the
normal from centre 1 to centre 2 with

* the half-cell resistances :math:`r_{1,2} = d_{1,2}/D_{1,2}` (distances to the face
  over the normal diffusivities),
* a step :math:`\Delta\psi_0` of the excess potential
  :math:`\psi_0 = \mu^0/kT - \ln s` at the face (the material jump), and
* a linear electrostatic part :math:`v = z e (\phi_2-\phi_1)/kT` between the centres
  (fractions :math:`f_{1,2} = d_{1,2}/(d_1+d_2)` on each side):

.. math::

   \frac{1}{k_+} = Q = r_1\,E(v f_1) + r_2\,e^{\Delta\psi_0 + v f_1}\,E(v f_2),
   \qquad k_- = k_+\,e^{\Delta\psi_0 + v},
   \qquad E(y) = \frac{e^{y}-1}{y}.

With :math:`\Delta\psi_0 = 0` and equal halves this is the Scharfetter–Gummel flux
:math:`(D/d)\,[B(v)\,c_1 - B(-v)\,c_2]`, :math:`B(y) = y/(e^y-1)`; with :math:`v = 0`
it is the series resistance across a partition. The hop form's :math:`(1-\theta)`
weights make :math:`J = 0` exactly at the Fermi–Dirac equilibrium
:math:`\mathrm{logit}\,\theta + \mu^0/kT + z e\phi/kT = \text{const}`, and both rates
are positive, so the linearised scheme keeps the M-matrix sign pattern (positivity).

Everything is evaluated in logarithms, so :math:`|v|` of several hundred (a volt over
one cell at room temperature) neither overflows nor loses the small rate.
:func:`hop_rates_reference` is the plain formula above, kept for the tests.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

_SMALL = 1e-6  # below this |y| the series of ln E and its derivative are exact to 1e-13


def log_e(y: FloatArray) -> FloatArray:
    r""":math:`\ln E(y) = \ln\frac{e^y-1}{y}`, stable for every real ``y``.

    .. math::

       \ln E(y) = y + \ln\frac{1-e^{-y}}{y} \ (y>0), \qquad
       \ln E(y) = \ln\frac{1-e^{y}}{-y} \ (y<0), \qquad \ln E(0) = 0.
    """
    y = np.asarray(y, dtype=float)
    a = np.abs(y)
    safe = np.where(a < _SMALL, 1.0, a)
    # ln((1 - e^-a)/a) for a > 0; then add y when y > 0
    core = np.log(-np.expm1(-safe) / safe)
    out = np.where(y > 0, y + core, core)
    return np.where(a < _SMALL, 0.5 * y + y * y / 24.0, out)


def dlog_e(y: FloatArray) -> FloatArray:
    r"""Derivative :math:`\frac{d}{dy}\ln E(y) = \frac{1}{1-e^{-y}} - \frac{1}{y}`.

    Between 0 and 1, equal to 1/2 at y = 0.
    """
    y = np.asarray(y, dtype=float)
    a = np.abs(y)
    safe = np.where(a < _SMALL, 1.0, y)
    # 1/(1-e^-y) = -1/expm1(-y) for y > 0, = e^y/expm1(y) for y < 0 (no overflow)
    pos = np.where(safe > 0, safe, 1.0)
    neg = np.where(safe < 0, safe, -1.0)
    first = np.where(safe > 0, -1.0 / np.expm1(-pos), np.exp(neg) / np.expm1(neg))
    out = first - 1.0 / safe
    return np.where(a < _SMALL, 0.5 + y / 12.0, out)


def hop_rates(
    log_r1: FloatArray,
    log_r2: FloatArray,
    dpsi0: FloatArray,
    v: FloatArray,
    f1: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    r"""Forward and backward rates and their derivatives with respect to ``v``.

    Parameters
    ----------
    log_r1, log_r2
        :math:`\ln(d_1/D_1)`, :math:`\ln(d_2/D_2)` (s/m; +inf blocks the face).
    dpsi0
        Step of :math:`\mu^0/kT - \ln s` from cell 1 to cell 2 at the face.
    v
        :math:`z e (\phi_2-\phi_1)/kT`.
    f1
        :math:`d_1/(d_1+d_2)`.

    Returns
    -------
    k_plus, k_minus, dk_plus_dv, dk_minus_dv
        Rates (m/s) and their derivatives with respect to ``v``.
    """
    return hop_rates_and_weight(log_r1, log_r2, dpsi0, v, f1)[:4]


def hop_rates_and_weight(
    log_r1: FloatArray,
    log_r2: FloatArray,
    dpsi0: FloatArray,
    v: FloatArray,
    f1: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    r""":func:`hop_rates` plus side 1's share of :math:`Q = 1/k_+`.

    The share is :math:`w_1 = \partial\ln Q/\partial\ln r_1` (side 2's is
    :math:`1 - w_1`). With a concentration-dependent diffusivity,
    :math:`\partial J/\partial c_1 \mathrel{+}= J\,w_1\,\partial\ln D_1/\partial c_1`
    (and likewise for side 2), which is how the solver's Newton step accounts for
    :math:`D(c)`.
    """
    f2 = 1.0 - f1
    a = log_r1 + log_e(v * f1)
    b = log_r2 + dpsi0 + v * f1 + log_e(v * f2)
    with np.errstate(invalid="ignore"):
        log_q = np.logaddexp(a, b)
        wa = np.where(np.isfinite(log_q), np.exp(a - log_q), 0.5)
    wb = 1.0 - wa
    dlog_q = wa * f1 * dlog_e(v * f1) + wb * (f1 + f2 * dlog_e(v * f2))
    k_plus = np.exp(-log_q)
    k_minus = np.exp(dpsi0 + v - log_q)
    return k_plus, k_minus, -k_plus * dlog_q, k_minus * (1.0 - dlog_q), wa


def hop_rates_reference(
    r1: float, r2: float, dpsi0: float, v: float, f1: float
) -> tuple[float, float]:
    """The same rates from the plain formula (moderate arguments only; for tests)."""

    def e(y: float) -> float:
        return 1.0 if y == 0 else float(np.expm1(y) / y)

    f2 = 1.0 - f1
    q = r1 * e(v * f1) + r2 * np.exp(dpsi0 + v * f1) * e(v * f2)
    return 1.0 / q, float(np.exp(dpsi0 + v)) / q


def hop_flux(
    k_plus: FloatArray,
    k_minus: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    inv_s1: FloatArray,
    inv_s2: FloatArray,
) -> FloatArray:
    r""":math:`J = k_+(1-\theta_2)c_1 - k_-(1-\theta_1)c_2` (mol m^-2 s^-1, cell 1 -> 2)."""
    return k_plus * (1.0 - c2 * inv_s2) * c1 - k_minus * (1.0 - c1 * inv_s1) * c2
