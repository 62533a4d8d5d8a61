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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq, minimize_scalar

from cosinter.models.crystal import rotate_tensors
from cosinter.models.reactions import interpolation, mixed_principal
from cosinter.units import BOLTZMANN, FARADAY, GAS_CONSTANT

if TYPE_CHECKING:  # annotations only (properties imports this module)
    from cosinter.case import DefectMobilitySpec
    from cosinter.models.properties import SpeciesCellData
    from cosinter.models.reactions import CompensationLayer, InterphaseSetup

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
    return rotate_tensors(rotations, arrhenius(D0, Ea, T))


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


def effective_tensors(
    data: SpeciesCellData,
    rotations: FloatArray,
    T: float,
    interphase: InterphaseSetup | None,
    eta: FloatArray | None,
    compensations: Sequence[CompensationLayer],
    concentrations: Mapping[str, FloatArray],
) -> FloatArray:
    r"""Lab-frame diffusion tensors of one species with the interphase and the degraded cathode.

    The tensors the solver's transport uses (before a concentration-dependent
    mobility factor). Without an interphase, or where the interphase material has no
    parameters for the species, the host tensors
    :math:`\mathbf{R}\,\mathrm{diag}(D_{0,k} e^{-E_{a,k}/kT})\,\mathbf{R}^T`; with
    one, the principal values are mixed with :math:`p(\eta)` in the host cells,

    .. math::

       D_k = (1-p)\,D_{k,\mathrm{host}} + p\,D_{k,\mathrm{int}}, \qquad
       p = p(\eta)\ \text{in host cells, else } 0,

    and in every compensation layer whose ``lithium`` is this species (with its
    vacancy species given) the tensors are scaled by the degradation factor

    .. math::

       \mathbf{D} \to \mathbf{D}\, e^{-\theta_{V_O}/\theta_d}, \qquad
       \theta_{V_O} = c_{V_O}/s_O.

    Parameters
    ----------
    data
        The species' per-cell parameters (``name``, ``D0``, ``Ea`` (n, 3)).
    rotations
        (n, 3, 3) crystal -> lab rotation of every cell.
    T
        Temperature (K).
    interphase
        The interphase set-up, or None when it is not solved.
    eta
        Phase field per cell (-), or None; ignored without ``interphase``.
    compensations
        The cathode layers' compensation models and cells.
    concentrations
        Per-cell concentrations (mol/m^3) of the solved species; only the vacancy
        species of ``compensations`` are read, and a compensation layer whose vacancy
        species is missing does not act.

    Returns
    -------
    ndarray
        (n, 3, 3) tensors (m^2/s).
    """
    if interphase is None or eta is None or data.name not in interphase.D0:
        tensors = data.tensors(rotations, T)
    else:
        p = np.where(interphase.host, interpolation(np.asarray(eta, dtype=float)), 0.0)
        principal = mixed_principal(
            data.D0, data.Ea, interphase.D0[data.name], interphase.Ea[data.name], p, T
        )
        tensors = rotate_tensors(rotations, principal)
    for layer in compensations:
        model = layer.model
        if data.name == model.lithium and model.vacancy in concentrations:
            vacancies = np.asarray(concentrations[model.vacancy], dtype=float)[layer.cells]
            tensors[layer.cells] *= model.li_factor(vacancies)[:, None, None]
    return tensors


# --------------------------------------------------------------------------- defect mobility

#: Smallest crowding scale :math:`n_c` (Li per formula unit) the extrapolation in
#: :math:`1/T` may reach; keeps :math:`n_c > 0` above the hottest turning point.
CROWDING_SCALE_FLOOR = 1e-3


@dataclass(frozen=True)
class DefectMobility:
    r"""Defect-mediated Li mobility in Li\ :sub:`x`\ La\ :sub:`y`\ TiO\ :sub:`3` (LLTO).

    Li moves by A-site vacancies below full A-site occupancy :math:`x_0 = 1 - y`
    and by interstitials above it; at :math:`x \approx x_0` there are no free
    defects and Li does not diffuse; vacancy and interstitial mobilities are
    similar; crowding of interstitials lowers their mobility at high :math:`x`
    and high :math:`T`, so that the conductivity maximum over :math:`x` (the
    turning composition :math:`x_t`) moves from 0.60 to 0.55 to 0.50 at 575, 650
    and 750 K (Ma & Li, Acc. Mater. Res. 5 (2024) 523,
    doi:10.1021/accountsmr.3c00223).

    Free defects per formula unit, with a thermal (Frenkel) floor :math:`n_i`
    (``intrinsic``): vacancies :math:`v` and interstitials :math:`i` with
    :math:`i - v = x - x_0` and :math:`i\,v = (n_i/2)^2`,

    .. math::

       x = \frac{c}{\rho_f}, \qquad
       n = \sqrt{(x - x_0)^2 + n_i^2}, \qquad
       i = \frac{n + (x - x_0)}{2}, \qquad
       v = \frac{n - (x - x_0)}{2},

    so that :math:`i + v = n` (``formula_density`` :math:`\rho_f` in mol/m^3).
    Crowding acts on interstitials only, the mobility per interstitial falling as
    :math:`e^{-i/n_c(T)}`; vacancies and uncrowded interstitials are equally
    mobile. The diffusivity relative to the reference composition
    :math:`x_\mathrm{ref}` (``reference``, where the material's Arrhenius
    :math:`D_0, E_a` hold) is

    .. math::

       m(x, T) = v + i\,e^{-i/n_c(T)}, \qquad
       f(x, T) = \frac{m(x, T)}{m(x_\mathrm{ref}, T)}, \qquad
       D(c, T) = D_0\,e^{-E_a/k_B T}\,f(c/\rho_f, T),

    so :math:`f = 1` at :math:`x_\mathrm{ref}` at every temperature, :math:`f`
    is linear in :math:`x_0 - x` on the vacancy side far from :math:`x_0`, and at
    :math:`x_0` only the floor is left, :math:`f \approx n_i / m(x_\mathrm{ref})`
    (exactly 0 for :math:`n_i = 0`).

    **Which quantity turns over.** :math:`f` multiplies the diffusivity
    :math:`D` of the code's flux law, :math:`\mathbf{J} = -D(\nabla c + c\,z e
    \nabla\phi/k_B T)`. Ma & Li's conductivities are Nernst–Einstein values
    from the Li diffusivity, :math:`\sigma = \rho F^2 z^2 D/RT` with
    :math:`\rho` the Li density, so the quantity whose maximum over :math:`x`
    defines :math:`x_t` is :math:`\sigma \propto c\,D \propto x\,f(x, T)`, not
    :math:`f` alone. The crowding scale at each sourced turning point
    :math:`(T_k, x_{t,k})` is therefore the root of

    .. math::

       \frac{\partial}{\partial x}\big[x\,m(x, T_k)\big]_{x = x_{t,k}}
       = m + \frac{x}{n}\Big[-v + i\,e^{-i/n_c}\big(1 - \tfrac{i}{n_c}\big)\Big]
       = 0,

    solved for :math:`n_c` with Brent's method once, at construction; without
    the floor (:math:`n_i = 0`) it is :math:`n_c = x_t(x_t - x_0)/(2x_t - x_0)`,
    smaller than the :math:`x_t - x_0` a maximum of :math:`f` alone would give.
    :math:`x_t` is the maximum on the interstitial side, :math:`x > x_0`; the
    vacancy side has its own maximum near :math:`x_0/2`, which is not the
    crowding turning point of the source. Between the sourced temperatures
    :math:`n_c` is interpolated linearly in :math:`1/T`; outside them
    :math:`\ln n_c` is extrapolated linearly in :math:`1/T` with the end segments'
    slopes and clipped below at :data:`CROWDING_SCALE_FLOOR` (:math:`10^{-3}`).

    The fit assumes :math:`\sigma \propto c\,D f`. In a lattice gas the flux
    carries :math:`c(1-\theta)`, so the solver divides :math:`f` by
    :math:`1-\theta` there (:meth:`cosinter.models.properties.SpeciesCellData.mobility_factor`)
    and the turning points stay where the source puts them.

    Attributes
    ----------
    formula_density
        Formula units ABO\ :sub:`3` per volume (mol/m^3): :math:`x = c/\rho_f`.
    full_occupancy
        :math:`x_0`, Li per formula unit that fills the A sites (1 - La content).
    reference
        :math:`x_\mathrm{ref}`, Li per formula unit at which :math:`D_0, E_a` hold.
    intrinsic
        :math:`n_i`, thermal defect fraction per formula unit left at :math:`x_0`.
    crowding_temperatures
        Temperatures of the turning points (K), strictly ascending.
    crowding_compositions
        Turning compositions :math:`x_t` (Li per formula unit), each above :math:`x_0`.
    """

    formula_density: float
    full_occupancy: float
    reference: float
    intrinsic: float
    crowding_temperatures: tuple[float, ...]
    crowding_compositions: tuple[float, ...]
    _inverse_temps: FloatArray = field(init=False, repr=False, compare=False)
    _scales: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        temps = np.asarray(self.crowding_temperatures, dtype=float)
        comps = np.asarray(self.crowding_compositions, dtype=float)
        if self.formula_density <= 0:
            raise ValueError("formula_density must be positive")
        if self.full_occupancy <= 0 or self.reference <= 0:
            raise ValueError("full_occupancy and reference must be positive")
        if self.reference == self.full_occupancy:
            raise ValueError("reference must differ from full_occupancy (no free defects)")
        if self.intrinsic < 0:
            raise ValueError("intrinsic must not be negative")
        if temps.shape != comps.shape or temps.size < 2:
            raise ValueError("need at least two crowding temperatures and as many compositions")
        if np.any(temps <= 0) or np.any(np.diff(temps) <= 0):
            raise ValueError("crowding_temperatures must be positive and strictly ascending")
        if np.any(comps <= self.full_occupancy):
            raise ValueError("every crowding composition must lie above full_occupancy")
        scales = np.array([self._fit_scale(float(x)) for x in comps])
        # ascending in 1/T for interpolation: reverse the ascending temperatures
        object.__setattr__(self, "_inverse_temps", (1.0 / temps)[::-1].copy())
        object.__setattr__(self, "_scales", scales[::-1].copy())

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_spec(cls, spec: DefectMobilitySpec) -> DefectMobility:
        """The model from a case/library ``mobility = { model = "llto_defect", ... }``."""
        return cls(
            formula_density=float(spec.formula_density),
            full_occupancy=float(spec.full_occupancy),
            reference=float(spec.reference),
            intrinsic=float(spec.intrinsic),
            crowding_temperatures=tuple(float(t) for t in spec.crowding_temperatures),
            crowding_compositions=tuple(float(x) for x in spec.crowding_compositions),
        )

    def _fit_scale(self, x_turn: float) -> float:
        """n_c for which x m(x) is stationary at ``x_turn`` (Brent's method)."""

        def slope(n_c: float) -> float:
            return float(self._conductivity_slope(x_turn, n_c))

        d = x_turn - self.full_occupancy
        lo, hi = d / 50.0, 50.0 * d
        if not slope(lo) < 0.0 < slope(hi):
            raise ValueError(
                f"no crowding scale puts the conductivity maximum at x = {x_turn:g} "
                f"(intrinsic = {self.intrinsic:g} too large?)"
            )
        return float(brentq(slope, lo, hi, xtol=1e-14, rtol=1e-12))

    def _conductivity_slope(self, x: float, n_c: float) -> float:
        r""":math:`\partial_x [x\,m(x)]` at fixed :math:`n_c`."""
        v, i = self.defects(np.array([x]))
        n = v[0] + i[0]
        crowd = np.exp(-i[0] / n_c)
        m = v[0] + i[0] * crowd
        dm = (-v[0] + i[0] * crowd * (1.0 - i[0] / n_c)) / n
        return float(m + x * dm)

    # ---------------------------------------------------------------- model
    @property
    def crowding_scales(self) -> tuple[float, ...]:
        """The fitted :math:`n_c` at ``crowding_temperatures`` (same order)."""
        return tuple(float(s) for s in self._scales[::-1])

    def composition(self, c: ArrayLike) -> FloatArray:
        """Li per formula unit :math:`x = c/\\rho_f`; negative round-off counts as 0."""
        return np.maximum(np.asarray(c, dtype=float), 0.0) / self.formula_density

    def defects(self, x: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Free vacancies and interstitials ``(v, i)`` per formula unit at composition ``x``.

        The majority defect is :math:`(n + |x - x_0|)/2`, the minority one
        :math:`n_i^2/4` divided by it (no cancellation far from :math:`x_0`).
        """
        delta = np.asarray(x, dtype=float) - self.full_occupancy
        total = np.hypot(delta, self.intrinsic)
        major = 0.5 * (total + np.abs(delta))
        safe = np.where(major > 0.0, major, 1.0)
        minor = np.where(major > 0.0, 0.25 * self.intrinsic**2 / safe, 0.0)
        above = delta >= 0.0
        return np.where(above, minor, major), np.where(above, major, minor)

    def crowding_scale(self, T: float) -> float:
        r"""Crowding scale :math:`n_c(T)` (Li per formula unit), linear in :math:`1/T`.

        Interpolated linearly between the fitted turning points; outside them
        :math:`\ln n_c` is extrapolated linearly in :math:`1/T` with the end
        segment's slope (a linear extrapolation of :math:`n_c` itself would reach
        zero at 952 K, inside the sintering range), and the result is clipped below
        at :data:`CROWDING_SCALE_FLOOR`.
        """
        if not T > 0:
            raise ValueError(f"temperature must be positive, got {T!r}")
        u = 1.0 / T
        us, ns = self._inverse_temps, self._scales
        if u < us[0]:  # hotter than the hottest turning point
            slope = np.log(ns[1] / ns[0]) / (us[1] - us[0])
            n_c = ns[0] * np.exp(slope * (u - us[0]))
        elif u > us[-1]:  # colder than the coldest one
            slope = np.log(ns[-1] / ns[-2]) / (us[-1] - us[-2])
            n_c = ns[-1] * np.exp(slope * (u - us[-1]))
        else:
            n_c = np.interp(u, us, ns)
        return float(max(n_c, CROWDING_SCALE_FLOOR))

    def _mobility(self, x: ArrayLike, n_c: float) -> FloatArray:
        v, i = self.defects(x)
        return np.asarray(v + i * np.exp(-i / n_c), dtype=float)

    def factor(self, c: ArrayLike, T: float) -> FloatArray:
        """Diffusivity factor :math:`f(c/\\rho_f, T)` per cell (1 at the reference).

        Parameters
        ----------
        c
            Li concentration per cell (mol/m^3); negative round-off counts as 0.
        T
            Temperature (K).

        Returns
        -------
        ndarray
            Non-negative, finite factors, the shape of ``c``.
        """
        n_c = self.crowding_scale(T)
        ref = self._mobility(np.array([self.reference]), n_c)[0]
        return self._mobility(self.composition(c), n_c) / ref

    def conductivity_factor(self, c: ArrayLike, T: float) -> FloatArray:
        r""":math:`x f / x_\mathrm{ref}`: conductivity :math:`\propto c D` relative to the
        reference composition."""
        return self.composition(c) * self.factor(c, T) / self.reference

    def turning_composition(self, T: float) -> float:
        """Composition of the conductivity maximum (of ``x * factor``) above ``full_occupancy``.

        A grid search over :math:`x_0 < x \\le x_0 + 4 n_c + 20 n_i` refined by a
        bounded scalar minimisation (for tests and documentation).
        """
        n_c = self.crowding_scale(T)
        x0 = self.full_occupancy
        xs = x0 + np.linspace(0.0, 4.0 * n_c + 20.0 * self.intrinsic, 4001)[1:]
        g = xs * self._mobility(xs, n_c)
        k = int(np.argmax(g))
        step = xs[1] - xs[0]
        lo, hi = max(xs[k] - step, x0), xs[k] + step
        best = minimize_scalar(
            lambda x: -x * float(self._mobility(np.array([x]), n_c)[0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-10},
        )
        return float(best.x)
