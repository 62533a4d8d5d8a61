r"""Transport physics in plain numpy: Arrhenius tensors, chemical potential, fluxes.

Species :math:`i` with concentration :math:`c` (mol/m^3), optional site density
:math:`s` (lattice gas) and reference chemical potential :math:`\mu^0`:

.. math::

   \theta = c/s, \qquad
   \mu = \mu^0 + k T \ln\frac{\theta}{1-\theta} \quad\text{(lattice gas)}, \qquad
   \mu = \mu^0 + k T \ln\frac{c}{c^\circ} \quad\text{(dilute, } c^\circ = 1\ \mathrm{mol\,m^{-3}})

   \mathbf{J} = -\mathbf{D}\cdot\left[\nabla c - c\nabla\ln s
        + c(1-\theta)\nabla\mu^0/kT\right]

Inside one material this is Fick's law with the chemical diffusivity
:math:`\mathbf{D}`. Writing :math:`\mu/kT = \ln c + \psi` defines the *excess
potential*

.. math::

   \psi = \mu^0/kT - \ln s - \ln(1-\theta) \quad\text{(lattice gas)}, \qquad
   \psi = \mu^0/kT \quad\text{(dilute)},

whose jump across a material interface is what drives partitioning. Integrating
the flux law across a sharp interface at zero flux gives exactly the Fermi–Dirac
(lattice gas) or Boltzmann (dilute) partition, and the solver uses that jump as
the Scharfetter–Gummel drift on interface faces only.

Diffusion tensor in the lab frame:

.. math::

   \mathbf{D}(T) = \mathbf{R}\,\mathrm{diag}\big(D_{0,k}\,e^{-E_{a,k}/kT}\big)\,\mathbf{R}^T
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cosinter.units import BOLTZMANN, FARADAY, GAS_CONSTANT

FloatArray = NDArray[np.float64]

#: Standard concentration of an ideal dilute species (mol/m^3).
DILUTE_REFERENCE = 1.0


def arrhenius(
    D0: FloatArray | Sequence[float], Ea: FloatArray | Sequence[float], T: float
) -> FloatArray:
    r"""Principal diffusivities :math:`D_0 e^{-E_a/k_B T}` (m^2/s), elementwise."""
    return np.asarray(D0, dtype=float) * np.exp(-np.asarray(Ea, dtype=float) / (BOLTZMANN * T))


def lab_tensors(rotations: FloatArray, D0: FloatArray, Ea: FloatArray, T: float) -> FloatArray:
    r"""Per-cell lab-frame diffusion tensors.

    Parameters
    ----------
    rotations
        (n, 3, 3) crystal -> lab rotation of each cell.
    D0, Ea
        (n, 3) principal prefactors (m^2/s) and activation energies (J).
    T
        Temperature (K).

    Returns
    -------
    ndarray
        (n, 3, 3) :math:`R\,\mathrm{diag}(D)\,R^T`.
    """
    principal = arrhenius(D0, Ea, T)
    return np.einsum("nij,nj,nkj->nik", rotations, principal, rotations)


def site_fraction(c: FloatArray, sites: FloatArray) -> FloatArray:
    """theta = c / s; zero where a species is dilute (``sites`` = inf)."""
    return np.asarray(c) / sites


def excess_potential(c: FloatArray, mu0: FloatArray, sites: FloatArray, T: float) -> FloatArray:
    r"""Dimensionless excess potential :math:`\psi = \mu/kT - \ln c` per cell.

    ``sites`` is +inf for a dilute species (then :math:`\psi = \mu^0/kT - \ln c^\circ`).
    """
    theta = np.clip(site_fraction(c, sites), 0.0, 1.0 - 1e-15)
    finite = np.isfinite(sites)
    log_s = np.where(finite, np.log(np.where(finite, sites, 1.0)), np.log(DILUTE_REFERENCE))
    return np.asarray(mu0 / (BOLTZMANN * T) - log_s - np.log1p(-theta), dtype=float)


def partition_equilibrium(
    theta_left: float,
    mu0_left: float,
    mu0_right: float,
    T: float,
    sites_right: float | None = None,
) -> float:
    r"""Concentration on the right in equilibrium with site fraction ``theta_left``.

    Lattice gas on both sides:
    :math:`\mathrm{logit}\,\theta_R = \mathrm{logit}\,\theta_L - (\mu^0_R-\mu^0_L)/kT`.
    Returns the right-hand *site fraction* if ``sites_right`` is None, else the
    concentration.
    """
    logit = np.log(theta_left / (1.0 - theta_left)) - (mu0_right - mu0_left) / (BOLTZMANN * T)
    theta_right = float(1.0 / (1.0 + np.exp(-logit)))
    return theta_right if sites_right is None else theta_right * sites_right


def nernst_einstein_conductivity(c: FloatArray, D: FloatArray, z: int, T: float) -> FloatArray:
    r"""Ionic conductivity :math:`\sigma = z^2 F^2 c D / (R T)` (S/m)."""
    return np.asarray(z**2 * FARADAY**2 * np.asarray(c) * np.asarray(D) / (GAS_CONSTANT * T))
