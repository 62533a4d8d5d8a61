r"""Interface chemistry: charge compensation, oxygen release, the interphase field.

Plain numpy; the solver (:mod:`cosinter.solver.equations`) calls these per step.

**Charge compensation in a layered-oxide cathode**
(:class:`LayeredOxideCompensation`). Li that leaves the cathode leaves a charge
deficit :math:`q = \max(c_\mathrm{ref} - c_\mathrm{Li}, 0)` (mol/m\ :sup:`3` of
elementary charges). NCM conducts electrons, so holes spread over the whole
cathode layer; the balance is kept per layer, with volume averages
:math:`\langle\cdot\rangle`. In order of availability the deficit is taken by

1. transition-metal oxidation, up to the capacity :math:`C_\mathrm{TM}`;
2. incoming high-valent cations, :math:`\sum_k z_k \langle c_k\rangle` (Ti\ :sup:`4+`
   on a TM\ :sup:`3+` site brings :math:`z = 1`, La\ :sup:`3+` on a Li\ :sup:`+` site
   :math:`z = 2`);
3. oxygen vacancies already formed, two charges each.

What is left, :math:`u = \langle q\rangle - C_\mathrm{TM} - \sum_k z_k\langle c_k\rangle -
2\langle c_{V_O}\rangle`, drives oxygen release. Oxygen leaves where it can escape,
through the interface to another material: within ``release_depth`` of it, as
freely as the neighbour takes oxygen up (its ``oxygen_uptake`` :math:`w`), and not
through a formed interphase: :math:`\hat\eta` is the largest :math:`\eta` on the
straight path from the cell to the interface (the cell included), and the
blocking is interpolated with the same :math:`p(\eta)` as transport (below),

.. math::

   R_{V_O} = \tfrac12\, k(T)\,w\,(1-p(\hat\eta))\,\max(u, 0), \qquad
   k(T) = k_0\, e^{-E_a/kT}

(mol/m\ :sup:`3`/s of vacancies). Over a step the layer average follows
:math:`d\langle c_{V_O}\rangle/dt = \tfrac12 k \phi \max(u,0)`, with
:math:`\phi = \sum_\mathrm{zone} V_i w_i (1-p(\hat\eta_i)) / V_\mathrm{layer}`, and :math:`u`
falls by two per vacancy formed; it is integrated by backward Euler exactly
(:meth:`LayeredOxideCompensation.release_step`), so the release cannot overshoot
the deficit at any step size. Vacancies then diffuse with the species' own
transport. They lower the Li diffusivity (the degraded cathode),
:math:`D_\mathrm{Li} \to D_\mathrm{Li}\, e^{-\theta_{V_O}/\theta_d}`,
:math:`\theta_{V_O} = c_{V_O}/s_O`.

**Interphase phase field** (:class:`AllenCahnInterphase`). In the cathode cells

.. math::

   \frac{\partial\eta}{\partial t} = M(T)\left[\ell^2\nabla^2\eta - g'(\eta)
       + \tfrac{s d}{4}(1-\eta) - b\,p'(\eta)\right],\qquad g = \eta^2(1-\eta)^2,\quad
   \ell^2 = \delta^2/2,\quad b = 1/16,

with :math:`M = M_0 e^{-E_a/kT}` and the drive

.. math::

   d = \frac{\sum_k c_k / c_\mathrm{ref}}{x^*}\left(1 + \frac{\langle\text{Li loss}\rangle}
       {\lambda^*}\right)

from the local cation content (per pristine Li site) and the fractional Li loss of
the layer. The tilt :math:`(s d/4)(1-\eta)` vanishes at :math:`\eta = 1`, so the
interphase is a stable state, and is finite at :math:`\eta = 0`, so it can
nucleate without a seed. The cost :math:`b\,p(\eta)` of the interphase itself
(:math:`p' = 30\eta^2(1-\eta)^2`, zero at both ends) makes :math:`\eta = 0` the
lower state where :math:`d < 8b/s` (:math:`f(1) - f(0) = b - s d/8`), so a formed
interphase advances only into cathode with cations, not through all of it. The
scale :math:`s = 4\max_\eta r(\eta) \approx 1.443`,
:math:`r = 2\eta - (4 - 30b)\eta^2 - 30b\eta^3`, puts the spinodal at
:math:`d = 1`: below it the field stays at a small root (:math:`\eta < 0.33`), above
it the field runs to 1 with a tanh front of half-width :math:`\delta`;
coexistence is at :math:`d = 8b/s \approx 0.35`. Transport interpolates the principal
diffusivities linearly between the cathode's and the interphase material's with
:math:`p(\eta) = \eta^3(6\eta^2 - 15\eta + 10)`:
:math:`D_k = (1-p)\,D_{k,\mathrm{host}} + p\,D_{k,\mathrm{int}}`, so the precursor
(:math:`\eta \le 1/4`, :math:`p \le 0.1`) changes transport by at most 10 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cosinter.case import Case, CompensationSpec, InterphaseSpec
from cosinter.errors import CaseError, MaterialError
from cosinter.meshes.stack import StackGeometry
from cosinter.models.materials import Material, resolve_material
from cosinter.units import BOLTZMANN

FloatArray = NDArray[np.float64]


def _mean(values: FloatArray, volumes: FloatArray) -> float:
    """Volume average."""
    return float(np.dot(volumes, values)) / float(np.sum(volumes))


@dataclass(frozen=True)
class LayeredOxideCompensation:
    """Charge compensation of Li loss in a layered-oxide cathode (see module doc).

    All concentrations in mol/m^3; ``tm_capacity`` in mol/m^3 of elementary
    charges; ``release_prefactor`` in 1/s; ``release_energy`` in J.
    """

    lithium: str
    vacancy: str
    reference: float
    tm_capacity: float
    cation_charges: Mapping[str, float]
    oxygen_sites: float
    release_prefactor: float
    release_energy: float
    release_depth: float
    degradation: float

    @classmethod
    def from_spec(cls, spec: CompensationSpec, li_initial: float) -> LayeredOxideCompensation:
        """The model of ``spec``; ``li_initial`` is the default reference."""
        return cls(
            lithium=spec.lithium,
            vacancy=spec.vacancy,
            reference=spec.reference if spec.reference is not None else li_initial,
            tm_capacity=spec.tm_capacity,
            cation_charges=dict(spec.cation_charges),
            oxygen_sites=spec.oxygen_sites,
            release_prefactor=spec.release.prefactor,
            release_energy=spec.release.Ea,
            release_depth=spec.release_depth,
            degradation=spec.degradation,
        )

    def rate_constant(self, T: float) -> float:
        """:math:`k(T) = k_0 e^{-E_a/kT}` (1/s)."""
        return self.release_prefactor * float(np.exp(-self.release_energy / (BOLTZMANN * T)))

    def deficit(self, li: FloatArray) -> FloatArray:
        """Charge deficit left by Li loss, per cell (mol/m^3)."""
        return np.maximum(self.reference - li, 0.0)

    def mean_deficit(self, li: FloatArray, volumes: FloatArray) -> float:
        """Layer-average charge deficit (mol/m^3)."""
        return _mean(self.deficit(li), volumes)

    def _left_for_tm(
        self, li: FloatArray, cations: Mapping[str, FloatArray], volumes: FloatArray
    ) -> float:
        """Layer-average deficit the incoming cations leave (mol/m^3)."""
        q = self.mean_deficit(li, volumes)
        for name, z in self.cation_charges.items():
            if name in cations:
                q -= z * _mean(cations[name], volumes)
        return q

    def uncompensated(
        self,
        li: FloatArray,
        cations: Mapping[str, FloatArray],
        vacancies: FloatArray,
        volumes: FloatArray,
    ) -> float:
        r"""Layer-average deficit left after TM oxidation, cations and V_O: :math:`u`."""
        left = self._left_for_tm(li, cations, volumes)
        return left - self.tm_capacity - 2.0 * _mean(vacancies, volumes)

    def tm_holes(
        self, li: FloatArray, cations: Mapping[str, FloatArray], volumes: FloatArray
    ) -> float:
        """Layer-average holes on the transition metals (mol/m^3), at most the capacity."""
        return float(np.clip(self._left_for_tm(li, cations, volumes), 0.0, self.tm_capacity))

    def release_step(
        self, u_start: float, open_fraction: float, T: float, dt: float
    ) -> tuple[float, float]:
        r"""Backward-Euler step of the layer-average release.

        Parameters
        ----------
        u_start
            :math:`u` with the vacancies at the start of the step (mol/m^3).
        open_fraction
            :math:`\phi = \sum_\mathrm{zone} V_i (1-\eta_i) / V_\mathrm{layer}`.

        Returns
        -------
        formed, u_end
            Layer-average vacancies formed in the step (mol/m^3) and :math:`u` at
            its end; the zone cells' source is :math:`\tfrac12 k (1-\eta_i) u_\mathrm{end}`.
        """
        if u_start <= 0.0 or open_fraction <= 0.0:
            return 0.0, u_start
        a = 0.5 * self.rate_constant(T) * open_fraction * dt
        formed = a * u_start / (1.0 + 2.0 * a)
        return formed, u_start - 2.0 * formed

    def li_factor(self, vacancies: FloatArray) -> FloatArray:
        r"""Li diffusivity factor of the degraded cathode, :math:`e^{-\theta_{V_O}/\theta_d}`."""
        theta = np.maximum(vacancies, 0.0) / self.oxygen_sites
        return np.exp(-theta / self.degradation)


def _tilt_scale(b: float) -> float:
    r""":math:`s = 4\max_\eta r(\eta)`, :math:`r = 2\eta - (4-30b)\eta^2 - 30b\eta^3`."""
    q = 4.0 - 30.0 * b
    eta = (-2.0 * q + np.sqrt(4.0 * q * q + 720.0 * b)) / (180.0 * b)  # r'(eta) = 0
    return float(4.0 * (2.0 * eta - q * eta**2 - 30.0 * b * eta**3))


@dataclass(frozen=True)
class AllenCahnInterphase:
    """The interphase phase field's parameters (see module doc)."""

    width: float
    prefactor: float
    energy: float
    cation_fraction: float
    li_depletion: float
    cations: tuple[str, ...] = field(default=("Ti", "La"))

    @classmethod
    def from_spec(cls, spec: InterphaseSpec) -> AllenCahnInterphase:
        return cls(
            width=spec.width,
            prefactor=spec.mobility.prefactor,
            energy=spec.mobility.Ea,
            cation_fraction=spec.cation_fraction,
            li_depletion=spec.li_depletion,
            cations=tuple(spec.cations),
        )

    @property
    def gradient(self) -> float:
        r""":math:`\ell^2 = \delta^2/2` (m^2)."""
        return 0.5 * self.width**2

    def rate(self, T: float) -> float:
        """:math:`M(T)` (1/s)."""
        return self.prefactor * float(np.exp(-self.energy / (BOLTZMANN * T)))

    def drive(self, cation_content: FloatArray, li_loss: FloatArray | float) -> FloatArray:
        """The drive d per cell from cations per reference Li site and the layer's Li loss."""
        return (
            np.maximum(cation_content, 0.0)
            / self.cation_fraction
            * (1.0 + np.maximum(li_loss, 0.0) / self.li_depletion)
        )

    #: Cost of the interphase itself, b p(eta): eta = 0 is the lower state below 8b/s.
    COST = 1.0 / 16.0
    #: Tilt scale s that puts the spinodal at d = 1: s = 4 max r(eta) (module doc).
    TILT = _tilt_scale(COST)

    @classmethod
    def force(cls, eta: FloatArray, drive: FloatArray) -> FloatArray:
        r"""Local part of the rate: :math:`-g'(\eta) + (s d/4)(1-\eta) - b\,p'(\eta)`."""
        e1 = 1.0 - eta
        return (
            -2.0 * eta * e1 * (1.0 - 2.0 * eta)
            + 0.25 * cls.TILT * drive * e1
            - cls.COST * 30.0 * eta * eta * e1 * e1
        )

    @classmethod
    def force_slope(cls, eta: FloatArray, drive: FloatArray) -> FloatArray:
        r""":math:`\partial/\partial\eta` of :meth:`force`."""
        return (
            -(2.0 - 12.0 * eta + 12.0 * eta * eta)
            - 0.25 * cls.TILT * drive
            - cls.COST * 60.0 * eta * (1.0 - eta) * (1.0 - 2.0 * eta)
        )


def interpolation(eta: FloatArray) -> FloatArray:
    r""":math:`p(\eta) = \eta^3(6\eta^2 - 15\eta + 10)`, clipped to [0, 1]."""
    e = np.clip(eta, 0.0, 1.0)
    return e**3 * (6.0 * e * e - 15.0 * e + 10.0)


@dataclass(frozen=True)
class CompensationLayer:
    """One cathode layer's compensation model and where it acts.

    ``cells``: indices of the layer's cells; ``zone``: indices (into the mesh) of its
    cells within ``release_depth`` of an interface to another material; ``uptake``:
    per zone cell, the neighbour's ``oxygen_uptake``; ``paths``: per zone cell, the
    cells between it and the interface (:func:`release_zone`).
    """

    model: LayeredOxideCompensation
    cells: NDArray[np.int64]
    zone: NDArray[np.int64]
    uptake: FloatArray
    paths: NDArray[np.int64]


@dataclass(frozen=True)
class InterphaseSetup:
    """The phase field's parameters, host cells and the interphase's transport.

    ``D0``/``Ea``: per species, the interphase material's principal values (3,).
    ``reference``: per cell, the pristine Li content cations are counted against.
    """

    model: AllenCahnInterphase
    host: NDArray[np.bool_]
    D0: Mapping[str, FloatArray]
    Ea: Mapping[str, FloatArray]
    reference: FloatArray


@dataclass(frozen=True)
class ChemistrySetup:
    """Everything the solver needs for the interface chemistry of a case."""

    compensations: tuple[CompensationLayer, ...] = ()
    interphase: InterphaseSetup | None = None

    @property
    def active(self) -> bool:
        return bool(self.compensations) or self.interphase is not None


def mixed_principal(
    D0: FloatArray, Ea: FloatArray, D0_int: FloatArray, Ea_int: FloatArray, p: FloatArray, T: float
) -> FloatArray:
    r"""Principal diffusivities :math:`(1-p)\,D_{\mathrm{host}} + p\,D_{\mathrm{int}}` per cell.

    ``D0``, ``Ea``: (n, 3); ``D0_int``, ``Ea_int``: (3,); ``p``: (n,).
    """
    kT = BOLTZMANN * T
    weight = np.clip(p, 0.0, 1.0)[:, None]
    host = D0 * np.exp(-Ea / kT)
    interphase = np.asarray(D0_int) * np.exp(-np.asarray(Ea_int) / kT)
    return np.asarray((1.0 - weight) * host + weight * interphase, dtype=float)


def release_zone(
    centres: FloatArray,
    cells: NDArray[np.int64],
    exits: list[tuple[float, float]],
    depth: float,
) -> tuple[NDArray[np.int64], FloatArray, NDArray[np.int64]]:
    """The cells among ``cells`` within ``depth`` of an exit (x, uptake), their uptake, paths.

    ``centres``: (n, 3) cell centres of the mesh. A cell near two exits takes the one
    of larger uptake. ``paths[i]`` lists the mesh cells on the straight line (same
    lateral position) from zone cell ``i`` to its exit, the cell itself included,
    padded by repeating the cell: oxygen from that cell escapes only through them.
    """
    x = centres[cells, 0]
    weight = np.zeros(len(cells))
    chosen = np.full(len(cells), -1)
    for j, (x_exit, uptake) in enumerate(exits):
        near = (np.abs(x - x_exit) < depth) & ((chosen < 0) | (uptake > weight))
        weight[near] = uptake
        chosen[near] = j
    inside = np.flatnonzero(chosen >= 0)
    rows: list[list[int]] = []
    lateral = np.round(centres[cells][:, 1:] / max(depth, 1e-300), 9)
    for j, (x_exit, _) in enumerate(exits):
        mine = inside[chosen[inside] == j]
        for i in mine:
            same = mine[np.all(lateral[mine] == lateral[i], axis=1)]
            on_path = same[np.abs(x[same] - x_exit) <= abs(x[i] - x_exit) * (1 + 1e-12)]
            rows.append([int(cells[i]), *(int(c) for c in cells[on_path] if c != cells[i])])
    order = np.argsort([r[0] for r in rows]) if rows else np.zeros(0, dtype=int)
    rows = [rows[k] for k in order]
    width = max((len(r) for r in rows), default=1)
    paths = np.array([r + [r[0]] * (width - len(r)) for r in rows], dtype=np.int64).reshape(
        len(rows), width
    )
    zone = cells[inside]
    position = np.argsort(zone)
    return zone[position], weight[inside][position], paths


def blocked_path(eta: FloatArray, paths: NDArray[np.int64]) -> FloatArray:
    r"""Per zone cell, the largest :math:`\eta` between it and its exit (itself included)."""
    if paths.size == 0:
        return np.zeros(len(paths))
    return np.asarray(np.max(eta[paths], axis=1), dtype=float)


def build_chemistry(
    case: Case,
    geometry: StackGeometry,
    materials: Mapping[str, Material],
) -> ChemistrySetup:
    """The interface chemistry of a case: compensation layers and the interphase.

    A layer whose material has a ``compensation`` model is a cathode layer; its
    release zone lies within ``release_depth`` of each internal interface to a layer
    of another material (the stack ends are not oxygen exits).

    Raises
    ------
    CaseError
        The interphase is enabled but no layer can host it, or its material cannot
        be resolved for the solved species.
    """
    layers = case.layers
    interfaces = geometry.interfaces
    compensations: list[CompensationLayer] = []
    host = np.zeros(geometry.n_cells, dtype=bool)
    reference = np.ones(geometry.n_cells)
    for k, layer in enumerate(layers):
        material = materials[layer.material]
        spec = material.compensation
        if spec is None:
            continue
        li = material.species.get(spec.lithium)
        model = LayeredOxideCompensation.from_spec(spec, li.initial if li is not None else 0.0)
        cells = np.flatnonzero(geometry.cell_layer == k)
        host[cells] = True
        reference[cells] = model.reference
        if spec.vacancy not in case.species or spec.lithium not in case.species:
            continue
        exits = [
            (float(interfaces[j]), materials[layers[other].material].oxygen_uptake)
            for j, other in ((k - 1, k - 1), (k, k + 1))
            if 0 <= other < len(layers) and layers[other].material != layer.material
        ]
        zone, uptake, paths = release_zone(geometry.cell_centres, cells, exits, spec.release_depth)
        compensations.append(CompensationLayer(model, cells, zone, uptake, paths))
    interphase = None
    if case.interphase.enabled:
        if not host.any():
            raise CaseError(
                "[interphase] is enabled but no layer's material has a `compensation` "
                "model (the interphase grows in the cathode)",
                key="interphase.enabled",
            )
        try:
            material = resolve_material(case.interphase.material, case.materials, case.species)
        except MaterialError as exc:
            raise CaseError(str(exc), key="interphase.material") from None
        interphase = InterphaseSetup(
            model=AllenCahnInterphase.from_spec(case.interphase),
            host=host,
            D0={n: np.asarray(p.D0, dtype=float) for n, p in material.species.items()},
            Ea={n: np.asarray(p.Ea, dtype=float) for n, p in material.species.items()},
            reference=reference,
        )
    return ChemistrySetup(tuple(compensations), interphase)
