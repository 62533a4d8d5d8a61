r"""Species transport in FiPy: one backward-Euler step at a time.

For every solved species

.. math::

   \frac{\partial c}{\partial t} = \nabla\cdot\left(\mathbf{D}\nabla c\right)
       - \nabla\cdot\left(\mathbf{u}\,c\right) - \nabla\cdot\mathbf{g}

Inside a material :math:`\mathbf{u} = \mathbf{g} = 0`: Fick's law with the rotated
tensor, face normal components by harmonic mean. On faces between cells whose
:math:`\mu^0` or :math:`s` differ (material interfaces) the face flux is the
exact two-half-cell flux across the partition jump, in hop form (each direction
weighted by the receiving side's vacancy fraction), linearised by Newton as
:math:`\alpha c_1 - \beta c_2 + \gamma`
(see :meth:`TransportSystem._update_interfaces`). It is handed to FiPy as a face
diffusivity :math:`(\alpha+\beta)d/2`, a central-difference velocity
:math:`\alpha-\beta` and an explicit face flux :math:`\gamma`; with
:math:`\alpha, \beta > 0` the matrix keeps its M-matrix sign pattern, so
concentrations stay non-negative, and the flux vanishes exactly at the
lattice-gas (Fermi–Dirac) or dilute (Boltzmann) partition.

Steps are swept until the Newton update is below a tolerance; anisotropic tensors
in 2D/3D are swept too, because FiPy treats their tangential part explicitly.

Why not FiPy's ``ExponentialConvectionTerm``: it caches its weights with the
diffusivity frozen as numbers at first use (and ``-``/``==`` copy terms, so the
cached object is hard to reach), and with a face-varying coefficient its Peclet
number did not reproduce the exact SG weights in our checks (interface flux off
by ~10 %). Specifying the two face coefficients directly avoids both; issue 3's
electrostatic drift inside materials will need the same care.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import fipy
import numpy as np
from numpy.typing import NDArray

from cosinter.meshes.stack import StackGeometry
from cosinter.models.properties import CellProperties, SpeciesCellData
from cosinter.models.transport import excess_potential
from cosinter.solver.fields import FaceGeometry, build_mesh, face_tensor, normal_component

FloatArray = NDArray[np.float64]


@dataclass
class SpeciesState:
    """FiPy objects of one species."""

    data: SpeciesCellData
    var: fipy.CellVariable
    diffusivity: fipy.FaceVariable
    velocity: fipy.FaceVariable
    equation: fipy.terms.term.Term
    explicit_flux: fipy.FaceVariable
    jump_faces: NDArray[np.bool_]
    nonlinear: bool
    scale: float
    fixed_left: float | None = None
    fixed_right: float | None = None
    boundary_inflow: float = 0.0  # cumulative mol per lateral area through x = 0
    base_diffusivity: FloatArray = field(default_factory=lambda: np.zeros(0))
    rates: tuple[FloatArray, FloatArray] = (np.zeros(0), np.zeros(0))  # k+, k- on jump faces


@dataclass
class SweepResult:
    """Outcome of one implicit step."""

    converged: bool
    sweeps: int
    species: str | None = None
    change: float = 0.0
    negative: bool = False


@dataclass
class TransportSystem:
    """All species on one mesh; implicit steps with adaptive-stepper hooks.

    Parameters
    ----------
    geometry
        The stack grid.
    props
        Per-cell properties.
    fixed
        ``{"left": {species: c}, "right": {...}}`` fixed concentrations (mol/m^3).
    """

    geometry: StackGeometry
    props: CellProperties
    fixed: Mapping[str, Mapping[str, float]]
    mesh: fipy.meshes.mesh.Mesh = field(init=False)
    faces: FaceGeometry = field(init=False)
    species: dict[str, SpeciesState] = field(init=False)
    solver: object = field(init=False)
    max_inventory_correction: float = field(init=False, default=0.0)
    anisotropic: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.mesh = build_mesh(self.geometry)
        self.faces = FaceGeometry.of(self.mesh, self.geometry)
        self.solver = fipy.LinearLUSolver(tolerance=1e-12, iterations=1)
        self.species = {name: self._build(data) for name, data in self.props.species.items()}
        self.anisotropic = self._has_off_diagonal()

    # ------------------------------------------------------------------ set-up
    def _build(self, data: SpeciesCellData) -> SpeciesState:
        mesh, dim = self.mesh, self.geometry.dimension
        var = fipy.CellVariable(mesh=mesh, name=data.name, value=data.initial.copy(), hasOld=True)
        if dim == 1:
            diffusivity = fipy.FaceVariable(mesh=mesh, value=0.0)
        else:
            diffusivity = fipy.FaceVariable(
                mesh=mesh, rank=2, value=np.zeros((dim, dim, mesh.numberOfFaces))
            )
        velocity = fipy.FaceVariable(mesh=mesh, rank=1, value=np.zeros((dim, mesh.numberOfFaces)))
        c1, c2 = self.faces.cell1, self.faces.cell2
        jump = self.faces.interior & (
            (data.mu0[c1] != data.mu0[c2]) | (data.sites[c1] != data.sites[c2])
        )
        coeff = diffusivity if dim == 1 else (diffusivity,)
        convection = fipy.CentralDifferenceConvectionTerm(coeff=velocity, var=var)
        explicit_flux = fipy.FaceVariable(
            mesh=mesh, rank=1, value=np.zeros((dim, mesh.numberOfFaces))
        )
        equation = (
            fipy.TransientTerm(var=var)
            == fipy.DiffusionTerm(coeff=coeff, var=var) - convection - explicit_flux.divergence
        )
        lattice_gas = bool(np.any(np.isfinite(data.sites[c1[jump]])))
        state = SpeciesState(
            data=data,
            var=var,
            diffusivity=diffusivity,
            velocity=velocity,
            equation=equation,
            explicit_flux=explicit_flux,
            jump_faces=jump,
            nonlinear=bool(jump.any()) and lattice_gas,
            scale=float(max(np.max(data.initial), 1e-300)),
        )
        for side, faces in (("left", mesh.facesLeft), ("right", mesh.facesRight)):
            value = self.fixed.get(side, {}).get(data.name)
            if value is not None:
                var.constrain(value, faces)
                setattr(state, f"fixed_{side}", value)
                state.scale = max(state.scale, value)
        return state

    def _has_off_diagonal(self) -> bool:
        """Whether any lab tensor has off-diagonal terms within the mesh's dimensions.

        FiPy treats those explicitly, so such steps are swept to convergence. The
        test uses distinct principal values, so it holds for any D0, Ea and T.
        """
        dim = self.geometry.dimension
        if dim == 1:
            return False
        R = self.props.rotations
        probe = np.einsum("nij,j,nkj->nik", R, np.array([1.0, 2.0, 3.0]), R)[:, :dim, :dim]
        return bool(
            np.any(np.abs(probe - np.einsum("nii->ni", probe)[:, :, None] * np.eye(dim)) > 1e-12)
        )

    # ------------------------------------------------------------------ coefficients
    def update_coefficients(self, T: float) -> None:
        """Face diffusivities at temperature T (interface fluxes are updated per sweep)."""
        dim = self.geometry.dimension
        for state in self.species.values():
            tensors = state.data.tensors(self.props.rotations, T)
            state.base_diffusivity = face_tensor(self.faces, tensors, dim)
            state.diffusivity.setValue(state.base_diffusivity)
            self._interface_rates(state, tensors, T)
            self._update_interfaces(state)

    def _interface_rates(self, state: SpeciesState, tensors: FloatArray, T: float) -> None:
        """The jump faces' k+ and k- (see :meth:`_update_interfaces`): they depend on T only."""
        if not state.jump_faces.any():
            return
        faces = self.faces
        index = np.flatnonzero(state.jump_faces)
        c1, c2, axis = faces.cell1[index], faces.cell2[index], faces.axis[index]
        data = state.data
        psi0 = excess_potential(np.zeros(len(data.mu0)), data.mu0, data.sites, T)
        dpsi0 = psi0[c2] - psi0[c1]
        # half-cell resistances d/D_nn of each side, the partition jump at the face
        r1 = np.log(faces.d1[index] / tensors[c1, axis, axis])
        r2 = np.log(faces.d2[index] / tensors[c2, axis, axis])
        state.rates = (
            np.exp(-np.logaddexp(r1, r2 + dpsi0)),
            np.exp(-np.logaddexp(r1 - dpsi0, r2)),
        )

    def _update_interfaces(self, state: SpeciesState) -> None:
        r"""Newton-linearised interface fluxes on jump faces from the current iterate.

        The partition jump sits on the face, between the two half cells (distances
        :math:`d_1, d_2` to the face, normal diffusivities :math:`D_1, D_2`). With
        :math:`\Delta\psi_0` the jump of :math:`\mu^0/kT - \ln s` from cell 1 to 2
        (:math:`\ln s \to 0` for a dilute species), the face flux (cell 1 -> 2) is

        .. math::

           J = k_+ (1-\theta_2)\,c_1 - k_- (1-\theta_1)\,c_2,\qquad
           k_+ = \frac{1}{d_1/D_1 + (d_2/D_2)\,e^{\Delta\psi_0}},\quad
           k_- = k_+ e^{\Delta\psi_0}

        Each direction is weighted by the vacancy fraction of the receiving side, so
        :math:`J = 0` exactly at the Fermi–Dirac partition
        :math:`\mathrm{logit}\,\theta_2 - \mathrm{logit}\,\theta_1 = -\Delta\mu^0/kT`.
        For a dilute species this is the exact series resistance of two half cells
        with the partition :math:`K = e^{-\Delta\psi_0}` at the face,
        :math:`J = (c_1 - c_2/K)/(d_1/D_1 + d_2/(K D_2))`, which keeps the scheme
        second-order accurate across the jump. Newton:
        :math:`J \approx \alpha c_1 - \beta c_2 + \gamma` with
        :math:`\alpha = \partial J/\partial c_1 > 0` and
        :math:`\beta = -\partial J/\partial c_2 > 0`. (Lagging the :math:`1-\theta`
        factors instead, Picard, diverges once the receiving side is half full.)
        """
        if not state.jump_faces.any():
            return
        faces, dim = self.faces, self.geometry.dimension
        data = state.data
        index = np.flatnonzero(state.jump_faces)
        c1, c2 = faces.cell1[index], faces.cell2[index]
        value = np.asarray(state.var.value)
        conc1, conc2 = value[c1], value[c2]
        inv_s1, inv_s2 = 1.0 / data.sites[c1], 1.0 / data.sites[c2]  # 0 if dilute
        forward, backward = state.rates
        distance = faces.d1[index] + faces.d2[index]
        alpha = forward * (1.0 - conc2 * inv_s2) + backward * conc2 * inv_s1
        beta = forward * conc1 * inv_s2 + backward * (1.0 - conc1 * inv_s1)
        gamma = conc1 * conc2 * (forward * inv_s2 - backward * inv_s1)
        # alpha, beta > 0 while 0 <= theta < 1: the face keeps the M-matrix sign pattern
        alpha, beta = np.maximum(alpha, 0.0), np.maximum(beta, 0.0)
        dnn = 0.5 * (alpha + beta) * distance
        coeff = state.base_diffusivity.copy()
        if dim == 1:
            coeff[index] = dnn
        else:
            coeff[faces.axis[index], faces.axis[index], index] = dnn
        state.diffusivity.setValue(coeff)
        normals = np.asarray(self.mesh.faceNormals)
        speed = np.zeros(len(faces.axis))
        # central differencing: J.n = (D/d)(c1 - c2) + u.n (c1 + c2)/2 = alpha c1 - beta c2
        speed[index] = alpha - beta
        state.velocity.setValue(normals * speed[None, :])
        flux = np.zeros(len(faces.axis))
        flux[index] = gamma
        state.explicit_flux.setValue(normals * flux[None, :])

    # ------------------------------------------------------------------ stepping
    def values(self) -> dict[str, FloatArray]:
        """Current concentrations (mol/m^3), copies."""
        return {n: np.array(s.var.value, dtype=float) for n, s in self.species.items()}

    def set_values(self, values: Mapping[str, FloatArray]) -> None:
        for name, v in values.items():
            self.species[name].var.setValue(v)

    def step(self, dt: float, T: float, max_sweeps: int, tol: float) -> SweepResult:
        """One backward-Euler step of length ``dt`` ending at temperature ``T``.

        Species are advanced together: each is swept to ``tol`` (max-norm change
        relative to its scale). Returns after the first species that fails.
        """
        self.update_coefficients(T)
        sweeps_total = 0
        for name, state in self.species.items():
            needs_sweeps = state.nonlinear or self.anisotropic
            change = np.inf
            sweep = 0
            previous = np.array(state.var.value)
            while sweep < (max_sweeps if needs_sweeps else 1):
                state.equation.solve(var=state.var, dt=dt, solver=self.solver)
                sweep += 1
                if state.fixed_left is None and state.fixed_right is None:
                    self._restore_inventory(state)
                current = np.array(state.var.value)
                change = float(np.max(np.abs(current - previous))) / state.scale
                previous = current
                if not needs_sweeps or change < tol:
                    break
                self._update_interfaces(state)
            sweeps_total += sweep
            if not np.all(np.isfinite(previous)):
                return SweepResult(False, sweeps_total, name, np.inf)
            if needs_sweeps and change >= tol:
                return SweepResult(False, sweeps_total, name, change)
            if np.min(previous) < -1e-9 * state.scale:
                return SweepResult(False, sweeps_total, name, change, negative=True)
        return SweepResult(True, sweeps_total)

    def _restore_inventory(self, state: SpeciesState) -> None:
        r"""Deflate the solve's round-off out of the conserved (equilibrium) mode.

        Backward Euler with no-flux walls is singular as :math:`\Delta t/\tau \to
        \infty` along the equilibrium mode (:math:`\tau = \Delta x^2/D`: 1e-12 s in
        LLTO at 700 degC while holds last minutes), so LU round-off of relative size
        :math:`\epsilon\,\Delta t/\tau` lands in the inventory. The exact step
        conserves it. The near-null vector of the linearised operator is a uniform
        shift of :math:`\mu`, :math:`v = c(1-\theta)` (lattice gas; :math:`v = c`
        dilute), so the correction is :math:`c \leftarrow c + \lambda v` with
        :math:`\lambda` restoring the inventory; it leaves the partition intact. The
        largest relative correction is reported as ``max_inventory_correction``.
        """
        volumes = self.geometry.cell_volumes
        value = np.asarray(state.var.value)
        old = float(np.dot(volumes, np.asarray(state.var.old.value)))
        new = float(np.dot(volumes, value))
        v = value * (1.0 - np.clip(value / state.data.sites, 0.0, 1.0))
        weight = float(np.dot(volumes, v))
        if old > 0 and weight > 0:
            self.max_inventory_correction = max(self.max_inventory_correction, abs(new - old) / old)
            state.var.setValue(value + (old - new) / weight * v)

    def accept(self, dt: float) -> None:
        """Make the current values the old ones; book the inflow through x = 0.

        With only the left end fixed, the inflow is the step's inventory change (the
        discrete balance, exact); with both ends fixed the left face flux is
        reconstructed as D (c_b - c_P) / d (agrees with FiPy's to ~1e-5 relative).
        """
        for state in self.species.values():
            if state.fixed_left is not None:
                if state.fixed_right is None:
                    volumes = self.geometry.cell_volumes
                    change = np.dot(
                        volumes, np.asarray(state.var.value) - np.asarray(state.var.old.value)
                    )
                    state.boundary_inflow += float(change) / self.geometry.lateral_area
                else:
                    state.boundary_inflow += dt * self._left_flux(state)
            state.var.updateOld()

    def reject(self) -> None:
        """Return to the values at the start of the step."""
        for state in self.species.values():
            state.var.setValue(state.var.old.value)

    def _left_flux(self, state: SpeciesState) -> float:
        """Flux into the stack through x = 0 (mol m^-2 s^-1, lateral mean)."""
        faces = np.asarray(self.mesh.facesLeft)
        cells = self.faces.cell1[faces]
        dnn = normal_component(
            self.faces, np.asarray(state.diffusivity.value), self.geometry.dimension
        )
        c = np.asarray(state.var.value)[cells]
        flux = dnn[faces] * (float(state.fixed_left or 0.0) - c) / self.faces.d1[faces]
        return float(np.mean(flux))
