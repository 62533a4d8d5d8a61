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
(see :meth:`TransportSystem._update_interfaces`). It enters the matrix as a face
diffusivity :math:`(\alpha+\beta)d/2`, a central-difference velocity
:math:`\alpha-\beta` and an explicit face flux :math:`\gamma`; with
:math:`\alpha, \beta > 0` the matrix keeps its M-matrix sign pattern, so
concentrations stay non-negative, and the flux vanishes exactly at the
lattice-gas (Fermi–Dirac) or dilute (Boltzmann) partition.

Steps are swept until the Newton update is below a tolerance; anisotropic tensors
in 2D/3D are swept too, because FiPy treats their tangential part explicitly.

With electrostatics (:class:`~cosinter.models.electrostatics.PoissonSetup`) every
interior face of a charged species is a hop face: the rates of
:func:`cosinter.models.flux.hop_rates` add the exponentially fitted (Scharfetter–
Gummel) drift :math:`z e\Delta\phi/kT` to the partition step, Newton gives
:math:`J \approx \alpha c_1 - \beta c_2 + G(\phi_2-\phi_1) + \gamma`, and the
:math:`G` part enters as a ``DiffusionTerm`` in :math:`\phi` with coefficient
:math:`-G d` on interior faces only (never on boundary faces, where it would leak
drift through walls). The species and Poisson's equation are solved together in one
matrix (assembled by :mod:`cosinter.solver.assembly`; FiPy's ``&`` on the reference
path) and swept to convergence: solving them one after the other is
unstable beyond the dielectric relaxation time. A species with a concentration-
dependent mobility is a hop face species too; Newton carries its
:math:`\partial\ln D/\partial c` (lagged only on boundary faces). Newton updates
are damped when they would move the potential by more than 8 kT/e or drive a
concentration negative.

Why not FiPy's ``ExponentialConvectionTerm``: it caches its weights with the
diffusivity frozen as numbers at first use (and ``-``/``==`` copy terms, so the
cached object is hard to reach), and with a face-varying coefficient its Peclet
number did not reproduce the exact SG weights in our checks (interface flux off
by ~10 %). Specifying the two face coefficients directly avoids both.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import fipy
import fipy.solvers.scipy
import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray
from scipy.sparse.linalg import splu

from cosinter.errors import InputError
from cosinter.meshes.stack import StackGeometry
from cosinter.models.electrostatics import PoissonSetup, thermal_voltage
from cosinter.models.flux import hop_flux, hop_rates_and_weight
from cosinter.models.properties import CellProperties, SpeciesCellData
from cosinter.models.reactions import (
    ChemistrySetup,
    blocked_path,
    interpolation,
)
from cosinter.models.transport import effective_tensors, excess_potential
from cosinter.solver.assembly import BlockAssembler, FaceMesh, Slot, face_entries
from cosinter.solver.fields import (
    CrossStencil,
    FaceGeometry,
    LimiterChoice,
    build_mesh,
    container_mesh,
    face_tensor,
    normal_component,
)
from cosinter.units import FARADAY

FloatArray = NDArray[np.float64]


class _ImplicitSource(fipy.ImplicitSourceTerm):
    """An ``ImplicitSourceTerm`` that is always implicit.

    FiPy moves a source to the right-hand side (lags it by one sweep) when its sign
    opposes the diagonal's, which is right for stability of a term in the row's own
    variable but turns the coupling -F z c of Poisson's equation into a Picard lag:
    Newton sweeps then converge only linearly (found with a Gouy–Chapman run).
    """

    def _getWeight(
        self, var: Any, transientGeomCoeff: Any = None, diffusionGeomCoeff: Any = None
    ) -> dict[str, Any]:
        weight: dict[str, Any] = super()._getWeight(var, transientGeomCoeff, diffusionGeomCoeff)
        zeros = np.zeros(var.shape, "d")
        weight["diagonal"] = np.ones_like(np.asarray(weight["diagonal"]), dtype=bool)
        weight["b vector"] = zeros
        return weight


#: Linear-solver back ends of :class:`TransportSystem` (``cosinter run --solver``).
SOLVER_BACKENDS = ("scipy", "petsc")


class _ConservingLU(fipy.solvers.scipy.LinearLUSolver):
    r"""Sparse LU that holds chosen inventories exactly: a bordered system.

    Backward Euler with closed ends conserves each species' inventory
    :math:`\sum_i V_i c_i` exactly, but the linear system is nearly singular along
    the equilibrium mode once :math:`\Delta t` is many cell relaxation times
    :math:`h^2/D` (1e11 on a 0.02 nm mesh at 300 degC), so LU round-off of relative
    size :math:`\epsilon\,\Delta t D/h^2` lands in the inventory. With a potential
    the lost charge is not harmless: it charges the stack, and the field it
    makes across a poorly screening layer moves :math:`\phi` by up to a kT/e from
    sweep to sweep, so Newton never settles. Each constrained variable gets one
    extra row and column,

    .. math::

       \begin{pmatrix} A & u \\ w^{\mathsf T} & 0 \end{pmatrix}
       \begin{pmatrix} x \\ \lambda \end{pmatrix} =
       \begin{pmatrix} b \\ w^{\mathsf T} x_\mathrm{old} \end{pmatrix},

    with :math:`w` the cell volumes on that variable's block and :math:`u` a
    source there shaped like the current concentrations (the dilute equilibrium
    mode; an empty cell gets none, so positivity is kept; a species absent everywhere
    gets a uniform source). In exact arithmetic
    :math:`\lambda = 0` (the equations already conserve); in floating point the
    border removes the ill-conditioned direction, and because the whole coupled
    matrix is solved, the potential stays consistent with the held concentrations
    (unlike a projection after the solve). Solved for the correction from the
    current iterate by block elimination with :math:`A`'s LU factors plus one
    refinement step with the same factors (mixed block elimination): two more
    back-substitutions than the plain solve, where factoring the bordered matrix
    itself (dense row and column) was 10x slower.

    ``inventories`` maps a variable (by ``id``) to its cell volumes and old values;
    :class:`TransportSystem` sets it around each solve of a closed species.
    ``implicit`` maps a variable to a matrix :math:`M` of extra cell inflows
    :math:`M c` (mol/s; the cross terms of rotated tensors), added to its block.
    ``factorize`` is the back end's LU (:func:`superlu`, or MUMPS across MPI ranks:
    :class:`cosinter.solver.distributed.PetscLU`).
    """

    def __init__(self, factorize: Factorize | None = None) -> None:
        super().__init__(tolerance=1e-12, iterations=1)
        self.inventories: dict[int, tuple[FloatArray, FloatArray]] = {}
        self.implicit: dict[int, sparse.csr_matrix] = {}
        self.equilibrate = True  # see conserving_solve
        self.factorize: Factorize = superlu if factorize is None else factorize
        self.ranks = 1  # MPI ranks the factorizations run on

    def solve_system(
        self,
        L: sparse.spmatrix,
        x: FloatArray,
        b: FloatArray,
        rows: list[tuple[int, FloatArray, FloatArray]],
        overwrite: bool = False,
    ) -> FloatArray:
        """:func:`conserving_solve` with this solver's LU and row scaling."""
        return conserving_solve(L, x, b, rows, self.equilibrate, self.factorize, overwrite)

    def _solve_(self, L: Any, x: FloatArray, b: FloatArray) -> FloatArray:
        variables = getattr(self.var, "vars", [self.var])
        rows: list[tuple[int, FloatArray, FloatArray]] = []
        offset = 0
        for var in variables:
            size = int(np.size(var.value))
            entry = self.inventories.get(id(var))
            if entry is not None:
                rows.append((offset, *entry))
            inflow = self.implicit.get(id(var))
            if inflow is not None:
                # FiPy's rows read (V/dt + ...) c = V c_old/dt + V S: an inflow M c
                # moves to the left with the sign of the block's diagonal
                block = slice(offset, offset + size)
                sign = float(np.sign(np.sum(L.diagonal()[block])))
                L = L - sign * _embed(inflow, offset, L.shape)
            offset += size
        return self.solve_system(sparse.csr_matrix(L), x, b, rows)


#: SuperLU's column ordering: minimum degree on A^T + A. With the 2D/3D settings of
#: :data:`LU_2D_OPTIONS` it fills 0.49x what COLAMD (FiPy's choice) does on the
#: 2e5-unknown coupled matrix of a 1e5-cell step and 0.40x at 1e6 cells; with plain
#: partial pivoting it can fill 3.4x COLAMD (a 600-cell grain case). The 1D matrices
#: are banded either way.
LU_ORDERING = "MMD_AT_PLUS_A"


#: SuperLU settings for 2D/3D matrices. In the coupled Li + potential matrices the
#: drift coupling outweighs the diagonal (``|A12 A21| > |A11 A22|`` per cell), so partial
#: pivoting swaps rows and fills in: on the 2e5-unknown matrix of a 1e5-cell step,
#: 48.9 M entries (34.3 M with equilibrated rows) against 26.2 M with a 0.1 threshold
#: and the symmetric mode, 1.8 s against 6.7 s to factor, backward error 1.3e-16
#: after one refinement either way; at 1e6 cells 335 M entries, 3.3 GiB, and
#: ``panel_size=1`` saves 0.6 GiB of SuperLU's work space (bench/lu_ordering.py,
#: docs/performance.md).
LU_2D_OPTIONS: dict[str, Any] = {
    "diag_pivot_thresh": 0.1,
    "options": {"SymmetricMode": True},
    "panel_size": 1,
}


def _row_scales(matrix: sparse.csr_matrix) -> FloatArray:
    """1 / the largest magnitude of every row (1 for an empty row)."""
    counts = np.diff(matrix.indptr)
    largest = np.zeros(matrix.shape[0])
    filled = counts > 0
    largest[filled] = np.maximum.reduceat(np.abs(matrix.data), matrix.indptr[:-1][filled])
    return np.where(largest > 0, 1.0 / np.where(largest > 0, largest, 1.0), 1.0)


def _embed(block: sparse.spmatrix, offset: int, shape: tuple[int, int]) -> sparse.csr_matrix:
    """``block`` placed on the diagonal of a matrix of ``shape`` at row/column ``offset``."""
    coo = block.tocoo()
    return sparse.csr_matrix((coo.data, (coo.row + offset, coo.col + offset)), shape=shape)


def assign(var: fipy.CellVariable, value: FloatArray) -> None:
    """``var.setValue(value)`` for a float array of the variable's shape, ~20x cheaper.

    FiPy's ``setValue`` wraps the value in a ``_Constant``, indexes it by the
    overlapping (ghost) cell ids and evaluates that expression: ~150 us per call,
    several times per Newton sweep. On a serial mesh (:func:`build_mesh` and
    :func:`~cosinter.solver.fields.container_mesh` make no other, also under
    ``mpirun``) the ids are all cells, so copying into the value
    and marking it fresh (what ``setValue`` ends with; dependent variables are
    marked stale) is the same.
    """
    var._value[...] = value
    var._markFresh()


def update_old(var: fipy.CellVariable) -> None:
    """``var.updateOld()`` through :func:`assign`."""
    assign(var.old, np.asarray(var.value))


class Factorization(Protocol):
    """An LU factorization: what :func:`conserving_solve` needs of a back end."""

    def solve(self, rhs: FloatArray) -> FloatArray:
        """:math:`A^{-1} b` for a vector, or for every column of a 2D array."""
        ...

    def close(self) -> None:
        """Free the factors (on every MPI rank for the PETSc back end)."""
        ...


#: ``factorize(matrix, equilibrate)``: the LU of a CSR matrix (canonical: sorted
#: columns, no duplicates; each back end converts to what it factors);
#: ``equilibrate`` says its rows were scaled to unit maximum (2D/3D: threshold
#: pivoting, see :data:`LU_2D_OPTIONS`).
Factorize = Callable[[sparse.csr_matrix, bool], Factorization]


class _SuperLU:
    """SciPy's SuperLU factors as a :class:`Factorization`."""

    def __init__(self, matrix: sparse.csr_matrix, equilibrate: bool) -> None:
        self._lu = splu(
            matrix.tocsc(), permc_spec=LU_ORDERING, **(LU_2D_OPTIONS if equilibrate else {})
        )

    def solve(self, rhs: FloatArray) -> FloatArray:
        return np.asarray(self._lu.solve(rhs), dtype=float)

    def close(self) -> None:
        """Nothing to free explicitly (garbage collected)."""


def superlu(matrix: sparse.csr_matrix, equilibrate: bool) -> Factorization:
    """The default back end's LU: SuperLU with :data:`LU_ORDERING` (and
    :data:`LU_2D_OPTIONS` for equilibrated 2D/3D rows), on this process."""
    return _SuperLU(matrix, equilibrate)


def petsc_lu(matrix: sparse.csr_matrix, equilibrate: bool) -> Factorization:
    """The PETSc back end's LU: MUMPS across the MPI ranks
    (:class:`cosinter.solver.distributed.PetscLU`; MUMPS pivots by its own threshold)."""
    from cosinter.solver.distributed import PetscLU

    return PetscLU(matrix)


def conserving_solve(
    L: sparse.csr_matrix,
    x: FloatArray,
    b: FloatArray,
    rows: list[tuple[int, FloatArray, FloatArray]],
    equilibrate: bool = True,
    factorize: Factorize = superlu,
    overwrite: bool = False,
) -> FloatArray:
    r"""Solve :math:`Lx = b` by sparse LU, holding chosen inventories (a bordered system).

    See :class:`_ConservingLU` for the border. ``rows`` lists, per held block, its
    offset, cell volumes and old values. Solved for the correction from the
    current iterate ``x`` (overwritten and returned). ``equilibrate`` (2D and 3D
    meshes) scales the rows to unit maximum first (the same solution) and factors
    with threshold pivoting (:data:`LU_2D_OPTIONS`), which keeps the fill of the
    symmetric :data:`LU_ORDERING`. A 1D matrix is banded, has no fill to save, and
    keeps SuperLU's defaults: its round-off stays as the 1D verification tests pin it
    (an immobile species held to 2 ulp beside Poisson's rows, 5 ulp scaled).
    ``factorize`` is the LU (default :func:`superlu`; the PETSc back end's MUMPS).
    ``overwrite`` lets the rows of a CSR ``L`` be scaled in place instead of in a
    copy (at 10^6 cells a copy is ~0.2 GiB held through the factorization).
    """
    in_place = overwrite and sparse.issparse(L) and L.format == "csr"
    matrix = sparse.csr_matrix(L, copy=not in_place)
    matrix.sum_duplicates()
    scale = float(np.max(np.abs(matrix.diagonal())))
    row_scale = _row_scales(matrix) if equilibrate else np.ones(L.shape[0])
    if equilibrate:
        matrix.data *= np.repeat(row_scale, np.diff(matrix.indptr))
    b = row_scale * b
    lu = factorize(matrix, equilibrate)
    try:
        if not rows:
            x -= lu.solve(matrix @ x - b)
            return x
        return _bordered(lu, matrix, x, b, rows, row_scale, scale)
    finally:
        lu.close()


def _bordered(
    lu: Factorization,
    matrix: sparse.csr_matrix,
    x: FloatArray,
    b: FloatArray,
    rows: list[tuple[int, FloatArray, FloatArray]],
    row_scale: FloatArray,
    scale: float,
) -> FloatArray:
    """:func:`conserving_solve` with held inventories: block elimination, refined once."""
    n, m = matrix.shape[0], len(rows)
    sources = np.zeros((n, m))
    weights = np.zeros((m, n))
    olds = np.zeros(n)
    for k, (start, volumes, old) in enumerate(rows):
        cells = slice(start, start + len(volumes))
        weights[k, cells] = volumes / float(np.max(volumes))
        # a source shaped like the equilibrium mode (dilute: c) keeps c >= 0
        peak = float(np.max(np.abs(x[cells])))
        shape = np.abs(x[cells]) / peak if peak > 0.0 else np.ones(len(volumes))
        sources[cells, k] = weights[k, cells] * shape * scale
        olds[cells] = old
    sources *= row_scale[:, None]  # the border's sources, in the scaled rows
    solved_sources = lu.solve(sources)
    schur = weights @ solved_sources

    def bordered_solve(top: FloatArray, bottom: FloatArray) -> tuple[FloatArray, FloatArray]:
        # block elimination: [A u; w^T 0] [d; l] = [top; bottom]
        y = lu.solve(top)
        lam = np.asarray(np.linalg.solve(schur, weights @ y - bottom), dtype=float)
        return y - solved_sources @ lam, lam

    # correction form: the change from the current iterate; the border rows'
    # residual w.(x - x_old) is exactly zero when nothing moved
    residual = matrix @ x - b
    delta, lam = bordered_solve(residual, weights @ (x - olds))
    # one refinement with the same factors makes block elimination as accurate as
    # factoring the bordered matrix (mixed block elimination)
    top = residual - (matrix @ delta + sources @ lam)
    bottom = weights @ (x - olds) - weights @ delta
    fix, _ = bordered_solve(top, bottom)
    x -= delta + fix
    return x


def make_solver(backend: str) -> Any:
    """The linear solver of a back end in :data:`SOLVER_BACKENDS`.

    Raises
    ------
    InputError
        An unknown back end, the scipy one under ``mpirun``, or the PETSc one
        without petsc4py/mpi4py.
    """
    if backend == "scipy":
        # under mpirun the scipy suite leaves FiPy serial: every rank would run it all
        if max(fipy.tools.parallelComm.Nproc, getattr(fipy.solvers, "_Nproc", 1)) > 1:
            raise InputError(
                "the scipy solver runs on one process; under mpirun use --solver petsc"
            )
        return _ConservingLU()
    if backend == "petsc":
        from cosinter.solver.distributed import world

        solver = _ConservingLU(factorize=petsc_lu)
        _, solver.ranks = world()  # InputError without petsc4py/mpi4py
        return solver
    raise InputError(f"unknown solver {backend!r}; one of {', '.join(SOLVER_BACKENDS)}")


_PoissonNumbers = tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64], FloatArray]


@dataclass
class ReferenceTerms:
    """FiPy's face variables and equation of one species (the reference assembly only).

    ``diffusivity`` (m^2/s), ``velocity`` (m/s, rank 1), ``explicit_flux``
    (mol m^-2 s^-1, rank 1) and ``cross`` (the potential's face coefficient) mirror
    :class:`SpeciesState`'s face numbers; the direct assembly never builds them (at
    10^6 cells they held ~0.5 GiB).
    """

    diffusivity: fipy.FaceVariable
    velocity: fipy.FaceVariable
    explicit_flux: fipy.FaceVariable
    equation: fipy.terms.term.Term
    cross: fipy.FaceVariable | None = None


@dataclass
class SpeciesState:
    """One species: its cell variable, face numbers and step state."""

    data: SpeciesCellData
    var: fipy.CellVariable
    jump_faces: NDArray[np.bool_]
    material_faces: NDArray[np.bool_]  # interior faces where mu0 or the sites jump
    nonlinear: bool
    scale: float
    fixed_left: float | None = None
    fixed_right: float | None = None
    boundary_inflow: float = 0.0  # cumulative mol per lateral area through x = 0
    base_diffusivity: FloatArray = field(default_factory=lambda: np.zeros(0))
    rates: tuple[FloatArray, FloatArray] = (np.zeros(0), np.zeros(0))  # k+, k- on hop faces
    # hop faces beyond jumps: all interior faces when charged (Poisson) or D(c)
    coupled: bool = False  # solved in one matrix with the potential
    dynamic: bool = False  # rates change within a step (with phi or c)
    source: fipy.CellVariable | None = None  # reaction source (mol m^-3 s^-1), explicit
    cross_sweeps: int = 0  # cross-term linearisations in this step
    cross_choice: LimiterChoice | None = None  # the limiters' choices of the last one
    hop_static: tuple[FloatArray, FloatArray, FloatArray, FloatArray] = (
        np.zeros(0),
        np.zeros(0),
        np.zeros(0),
        np.zeros(0),
    )  # ln r1, ln r2, dpsi0, f1 at the current T
    # the face numbers of the equation (per face; what the FiPy variables above hold)
    face_coeff: FloatArray = field(default_factory=lambda: np.zeros(0))  # m^2/s
    face_speed: FloatArray = field(default_factory=lambda: np.zeros(0))  # m/s, cell1 -> cell2
    face_explicit: FloatArray = field(default_factory=lambda: np.zeros(0))  # mol m^-2 s^-1
    face_phi: FloatArray = field(default_factory=lambda: np.zeros(0))  # -G d, mol m^-1 s^-1 V^-1
    dirichlet: tuple[NDArray[np.int64], FloatArray] = (
        np.zeros(0, np.int64),
        np.zeros(0),
    )  # fixed-end faces and their concentrations (mol/m^3)
    reference: ReferenceTerms | None = None  # FiPy's terms (reference_assembly only)


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
    reference_assembly
        Assemble the matrices with FiPy's terms instead of
        :mod:`cosinter.solver.assembly` (the same numbers, ~10x slower; FiPy's
        scipy suite only). Only then is :attr:`mesh` the stack's FiPy grid; the
        direct assembly's variables live on :func:`~cosinter.solver.fields.container_mesh`
        and its geometry is in :attr:`faces` and :attr:`face_mesh`.
    initial_potential
        Solve the potential of the initial concentrations (frame 0). A resumed run
        sets it from its checkpoint instead (at 10^6 cells one LU less); the
        reference assembly always solves it.
    """

    geometry: StackGeometry
    props: CellProperties
    fixed: Mapping[str, Mapping[str, float]]
    poisson: PoissonSetup | None = None
    chemistry: ChemistrySetup = field(default_factory=ChemistrySetup)
    backend: str = "scipy"
    reference_assembly: bool = False
    initial_potential: bool = True
    # the FiPy mesh of the variables: the stack's grid for the reference assembly, a
    # bare container of n_cells values otherwise (fields.container_mesh)
    mesh: fipy.meshes.mesh.Mesh = field(init=False)
    face_mesh: FaceMesh = field(init=False)
    faces: FaceGeometry = field(init=False)
    species: dict[str, SpeciesState] = field(init=False)
    solver: _ConservingLU = field(init=False)
    max_inventory_drift: float = field(init=False, default=0.0)
    anisotropic: bool = field(init=False, default=False)
    cross_stencil: CrossStencil | None = field(init=False, default=None)
    phi: fipy.CellVariable | None = field(init=False, default=None)
    coupled_equation: fipy.terms.term.Term | None = field(init=False, default=None)
    eta: fipy.CellVariable | None = field(init=False, default=None)
    _eta_equation: fipy.terms.term.Term | None = field(init=False, default=None)
    _eta_faces: fipy.FaceVariable | None = field(init=False, default=None)
    _eta_implicit: fipy.CellVariable | None = field(init=False, default=None)
    _eta_explicit: fipy.CellVariable | None = field(init=False, default=None)
    _eta_host_faces: NDArray[np.bool_] = field(
        init=False, default_factory=lambda: np.zeros(0, bool)
    )
    _T: float = field(init=False, default=0.0)
    _phi_old: FloatArray | None = field(init=False, default=None)
    _volumes: FloatArray = field(init=False)  # the geometry's cell volumes (a property)
    _end_faces: dict[str, NDArray[np.int64]] = field(init=False)  # "left"/"right" face ids
    _solo: BlockAssembler = field(init=False)
    _coupled: BlockAssembler | None = field(init=False, default=None)
    # Poisson's numbers: face permittivity, pinning coefficient, fixed charge + pinning
    # source (per cell), Dirichlet faces and potentials
    _poisson_numbers: _PoissonNumbers | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.solver = make_solver(self.backend)
        if self.reference_assembly and fipy.solvers.solver_suite != "scipy":
            # FiPy's terms would build PETSc matrices for a scipy-suite solver
            raise InputError("reference_assembly needs FiPy's scipy suite (FIPY_SOLVERS=scipy)")
        grid = build_mesh(self.geometry)
        self.faces = faces = FaceGeometry.of(grid, self.geometry)
        self._volumes = self.geometry.cell_volumes
        self.solver.equilibrate = self.geometry.dimension > 1
        self.face_mesh = FaceMesh.of(
            faces.cell1,
            faces.cell2,
            faces.interior,
            faces.d1,
            faces.d2,
            np.asarray(grid._faceAreas),
            np.asarray(grid.cellVolumes),
        )
        self._end_faces = {
            side: np.flatnonzero(np.asarray(getattr(grid, f"faces{side.title()}")))
            for side in ("left", "right")
        }
        self.anisotropic = self._has_off_diagonal()
        if self.anisotropic:
            self.cross_stencil = CrossStencil.of(grid, faces, self.geometry.dimension)
        if self.reference_assembly:
            self.mesh = grid
        else:
            # the direct assembly has all it needs of the grid by now (container_mesh).
            # A FiPy mesh sits in reference cycles (its topology, representation and
            # face masks point back at it): only the cyclic collector frees it, and a
            # full collection may not come for the whole run (1 GiB at 10^6 cells)
            self.mesh = container_mesh(self.geometry.n_cells)
            del grid
            gc.collect()
        self._solo = BlockAssembler(self.face_mesh, 1, [Slot("cells", 0, 0), Slot("faces", 0, 0)])
        if self.poisson is not None:
            self.phi = fipy.CellVariable(mesh=self.mesh, name="phi", value=0.0)
        self.species = {name: self._build(data) for name, data in self.props.species.items()}
        if self.poisson is not None:
            self._build_poisson(self.poisson)
        if self.chemistry.interphase is not None:
            self._build_interphase()
        for layer in self.chemistry.compensations:
            state = self.species.get(layer.model.vacancy)
            if state is not None and not np.any(state.data.initial > 0):
                # made by the reaction: measured against the vo_max onset (1e-3 of sites)
                state.scale = max(state.scale, 1e-3 * layer.model.oxygen_sites)

    # ------------------------------------------------------------------ set-up
    def _build(self, data: SpeciesCellData) -> SpeciesState:
        mesh = self.mesh
        var = fipy.CellVariable(mesh=mesh, name=data.name, value=data.initial.copy(), hasOld=True)
        c1, c2 = self.faces.cell1, self.faces.cell2
        jump = self.faces.interior & (
            (data.mu0[c1] != data.mu0[c2]) | (data.sites[c1] != data.sites[c2])
        )
        coupled = self.phi is not None and data.charge != 0
        dynamic = coupled or data.has_mobility
        hop = self.faces.interior.copy() if dynamic else jump
        source = None
        if data.name in {layer.model.vacancy for layer in self.chemistry.compensations}:
            source = fipy.CellVariable(mesh=mesh, value=0.0)  # oxygen release
        lattice_gas = bool(np.any(np.isfinite(data.sites[c1[jump]])))
        state = SpeciesState(
            data=data,
            var=var,
            jump_faces=hop,
            material_faces=jump,
            nonlinear=(bool(jump.any()) and lattice_gas) or dynamic,
            scale=float(max(np.max(data.initial), 1e-300)),
            coupled=coupled,
            dynamic=dynamic,
            source=source,
        )
        if self.reference_assembly:
            state.reference = self._reference_terms(var, coupled, source)
        ids: list[NDArray[np.int64]] = []
        values: list[FloatArray] = []
        for side, faces in self._end_faces.items():
            value = self.fixed.get(side, {}).get(data.name)
            if value is not None:
                if self.reference_assembly:
                    var.constrain(value, self._end_mask(side))
                setattr(state, f"fixed_{side}", value)
                state.scale = max(state.scale, value)
                ids.append(faces)
                values.append(np.full(len(faces), float(value)))
        if ids:
            state.dirichlet = (np.concatenate(ids), np.concatenate(values))
        n_faces = len(self.faces.axis)
        state.face_coeff = np.zeros(n_faces)
        state.face_speed = np.zeros(n_faces)
        state.face_explicit = np.zeros(n_faces)
        state.face_phi = np.zeros(n_faces)
        return state

    def _end_mask(self, side: str) -> Any:
        """FiPy's mask of the faces at x = 0 (``"left"``) or the far end (reference only)."""
        return getattr(self.mesh, f"faces{side.title()}")

    def _reference_terms(
        self, var: fipy.CellVariable, coupled: bool, source: fipy.CellVariable | None
    ) -> ReferenceTerms:
        """FiPy's equation of a species, ``TransientTerm == DiffusionTerm - convection ...``."""
        mesh, dim = self.mesh, self.geometry.dimension
        # the normal part only: the cross terms are ours (see _update_interfaces)
        diffusivity = fipy.FaceVariable(mesh=mesh, value=0.0)
        velocity = fipy.FaceVariable(mesh=mesh, rank=1, value=np.zeros((dim, mesh.numberOfFaces)))
        convection = fipy.CentralDifferenceConvectionTerm(coeff=velocity, var=var)
        explicit_flux = fipy.FaceVariable(
            mesh=mesh, rank=1, value=np.zeros((dim, mesh.numberOfFaces))
        )
        rhs = fipy.DiffusionTerm(coeff=diffusivity, var=var) - convection
        cross = None
        if coupled:
            cross = fipy.FaceVariable(mesh=mesh, value=0.0)
            # before the explicit source: FiPy needs terms in other variables first
            rhs = rhs + fipy.DiffusionTerm(coeff=cross, var=self.phi)
        rhs = rhs - explicit_flux.divergence
        if source is not None:
            rhs = rhs + source
        equation = fipy.TransientTerm(var=var) == rhs
        return ReferenceTerms(diffusivity, velocity, explicit_flux, equation, cross)

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

    def _build_poisson(self, setup: PoissonSetup) -> None:
        r"""Poisson's equation, solved in one matrix with the charged species.

        .. math::

           \nabla\cdot(\varepsilon\nabla\phi) + F\sum_i z_i c_i
               - F\sum_i z_i c_{i,\mathrm{bg}} + \rho_s = 0

        :math:`\rho_s` holds the end surface charges (in the end cells) and the
        interface sheet charges, split between the two neighbouring cells in the
        ratio that makes a piecewise-linear potential exact at the cell centres
        (cell 1 takes :math:`r_2/(r_1+r_2)` with :math:`r = d/\varepsilon`). A pinned
        interface potential cuts the face and acts as a Dirichlet value for both
        half cells. Without any fixed potential the face x = 0 is grounded: the
        stack is neutral, so that changes no field. Sets the potential of the initial
        concentrations (frame 0).
        """
        assert self.phi is not None
        faces, geometry = self.faces, self.geometry
        eps = np.asarray(setup.permittivity, dtype=float)
        e1, e2 = eps[faces.cell1], eps[faces.cell2]
        eps_face = (faces.d1 + faces.d2) / (faces.d1 / e1 + faces.d2 / e2)
        width = geometry.cell_dx
        rho_fixed = np.zeros(geometry.n_cells)
        for name, state in self.species.items():
            if state.coupled:
                rho_fixed -= FARADAY * state.data.charge * setup.backgrounds[name]
        dirichlet: dict[int, float] = {}
        for side, ids in self._end_faces.items():
            sigma = setup.surface_charge.get(side, 0.0)
            if sigma:
                cells = faces.cell1[ids]
                rho_fixed[cells] += sigma / width[cells]
            value = setup.potential.get(side)
            if value is not None:
                if self.reference_assembly:
                    self.phi.constrain(value, self._end_mask(side))
                dirichlet.update(dict.fromkeys(ids.tolist(), value))
        if not setup.has_reference:
            if self.reference_assembly:
                self.phi.constrain(0.0, self._end_mask("left"))
            dirichlet.update(dict.fromkeys(self._end_faces["left"].tolist(), 0.0))
        pin_coeff = np.zeros(geometry.n_cells)
        pin_source = np.zeros(geometry.n_cells)
        for after_layer, sigma, pinned in setup.sheets:
            index = self.interface_faces(after_layer)
            c1, c2 = faces.cell1[index], faces.cell2[index]
            r1, r2 = faces.d1[index] / e1[index], faces.d2[index] / e2[index]
            np.add.at(rho_fixed, c1, sigma * r2 / (r1 + r2) / width[c1])
            np.add.at(rho_fixed, c2, sigma * r1 / (r1 + r2) / width[c2])
            if pinned is not None:
                eps_face[index] = 0.0
                for cells, d in ((c1, faces.d1[index]), (c2, faces.d2[index])):
                    kappa = eps[cells] / (d * width[cells])
                    np.add.at(pin_coeff, cells, kappa)
                    np.add.at(pin_source, cells, kappa * pinned)
        self._poisson_numbers = (
            eps_face,
            pin_coeff,
            rho_fixed + pin_source,
            np.fromiter(dirichlet, dtype=np.int64),
            np.fromiter(dirichlet.values(), dtype=float),
        )
        # the same system for the direct assembly: species blocks, then phi
        n_coupled = sum(s.coupled for s in self.species.values())
        slots: list[Slot] = []
        for k in range(n_coupled):
            slots += [Slot("cells", k, k), Slot("faces", k, k), Slot("faces", k, n_coupled)]
        slots += [Slot("cells", n_coupled, n_coupled), Slot("faces", n_coupled, n_coupled)]
        slots += [Slot("cells", n_coupled, k) for k in range(n_coupled)]
        self._coupled = BlockAssembler(self.face_mesh, n_coupled + 1, slots)
        # the potential of the initial concentrations (frame 0)
        if self.reference_assembly:
            self.coupled_equation = self._reference_poisson()
        elif self.initial_potential:
            assign(self.phi, self._initial_potential())
        self._phi_old = np.array(self.phi.value)

    def _reference_poisson(self) -> fipy.terms.term.Term:
        """FiPy's coupled equation of the charged species and the potential.

        Solves FiPy's Poisson equation for the initial potential on the way (the
        reference assembly's frame 0).
        """
        assert self._poisson_numbers is not None and self.phi is not None
        mesh = self.mesh
        eps_face, pin_coeff, fixed_source, _, _ = self._poisson_numbers
        eps_var = fipy.FaceVariable(mesh=mesh, value=eps_face)
        pin_var = fipy.CellVariable(mesh=mesh, value=pin_coeff)
        fixed = fipy.CellVariable(mesh=mesh, value=fixed_source)

        def operator() -> fipy.terms.term.Term:
            # fresh term objects: FiPy caches matrix shapes in terms, so a term solved
            # alone cannot join a coupled system afterwards
            term = fipy.DiffusionTerm(coeff=eps_var, var=self.phi)
            if np.any(pin_coeff):
                term = term - _ImplicitSource(coeff=pin_var, var=self.phi)
            return term

        mobile = sum(
            (FARADAY * s.data.charge * s.var for s in self.species.values() if s.coupled),
            fipy.CellVariable(mesh=mesh, value=0.0),
        )
        (operator() + (fixed + mobile) == 0).solve(var=self.phi, solver=self.solver)
        # FiPy: terms in other variables must come before plain sources ("inconsistent
        # shapes" otherwise)
        equation = operator()
        for state in self.species.values():
            if state.coupled:
                equation = equation + _ImplicitSource(
                    coeff=FARADAY * state.data.charge, var=state.var
                )
        equation = equation + fixed
        coupled = None
        for state in self.species.values():
            if state.coupled:
                assert state.reference is not None
                term = state.reference.equation
                coupled = term if coupled is None else coupled & term
        return coupled & (equation == 0)

    def _initial_potential(self) -> FloatArray:
        r"""The potential of the current concentrations, assembled directly.

        .. math::

           \sum_f \varepsilon_f \frac{A_f}{d_f}(\phi_P - \phi_N) + V_P k_P \phi_P
               = V_P \rho_{\mathrm{fixed},P} + F \sum_i z_i V_P c_{i,P}

        (the potential rows of :meth:`assemble` with the concentrations known). FiPy's
        own solve of the same equation held ~2.7 GiB more at 10^6 cells, the set-up's
        peak (docs/performance.md).
        """
        assert self.phi is not None
        diag, entries, rhs = self._poisson_rows()
        matrix = self._solo.matrix([diag, entries])
        for state in self.species.values():
            if state.coupled:
                charge = FARADAY * state.data.charge * np.asarray(state.var.value)
                rhs += charge * self.face_mesh.volumes
        x = np.array(self.phi.value, dtype=float)
        return self.solver.solve_system(matrix, x, rhs, [], overwrite=True)

    def _poisson_rows(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Diagonal, face entries and right-hand side of the potential's rows, without
        the mobile charge (:meth:`assemble`, :meth:`_initial_potential`)."""
        assert self._poisson_numbers is not None
        mesh = self.face_mesh
        eps_face, pin, fixed, ids, potentials = self._poisson_numbers
        extra, inflow = mesh.dirichlet(ids, eps_face[ids], potentials)
        diag = pin * mesh.volumes + extra
        entries = face_entries(eps_face[mesh.inner] * mesh.transmissibility)
        return diag, entries, fixed * mesh.volumes + inflow

    def interface_faces(self, after_layer: int) -> NDArray[np.int64]:
        """Faces of the internal interface between layers ``after_layer`` and the next."""
        faces, layer = self.faces, self.geometry.cell_layer
        mask = (
            faces.interior
            & (faces.axis == 0)
            & (layer[faces.cell1] == after_layer)
            & (layer[faces.cell2] == after_layer + 1)
        )
        return np.flatnonzero(mask)

    # ------------------------------------------------------------------ coefficients
    def update_coefficients(self, T: float) -> None:
        """Face diffusivities at temperature T (hop-face fluxes are updated per sweep)."""
        dim = self.geometry.dimension
        self._T = T
        for state in self.species.values():
            tensors = self._tensors(state, T)
            state.base_diffusivity = face_tensor(self.faces, tensors, dim)
            state.cross_sweeps = 0
            self._hop_geometry(state, tensors, T)
            self._update_interfaces(state)

    def _tensors(self, state: SpeciesState, T: float) -> FloatArray:
        """Lab tensors of a species at T, with the interphase and the degraded cathode.

        Both are lagged by one step: the phase field and the vacancies of the step's
        start set the coefficients of the whole step
        (:func:`~cosinter.models.transport.effective_tensors`).
        """
        vacancies = {
            layer.model.vacancy: np.asarray(self.species[layer.model.vacancy].var.old.value)
            for layer in self.chemistry.compensations
            if layer.model.vacancy in self.species
        }
        return effective_tensors(
            state.data,
            self.props.rotations,
            T,
            self.chemistry.interphase,
            None if self.eta is None else np.asarray(self.eta.old.value),
            self.chemistry.compensations,
            vacancies,
        )

    def _hop_geometry(self, state: SpeciesState, tensors: FloatArray, T: float) -> None:
        """The hop faces' T-dependent parts; the rates too when they depend on T only."""
        if not state.jump_faces.any():
            return
        faces = self.faces
        index = np.flatnonzero(state.jump_faces)
        c1, c2, axis = faces.cell1[index], faces.cell2[index], faces.axis[index]
        data = state.data
        psi0 = excess_potential(np.zeros(len(data.mu0)), data.mu0, data.sites, T)
        dpsi0 = psi0[c2] - psi0[c1]
        with np.errstate(divide="ignore"):
            log_r1 = np.log(faces.d1[index] / tensors[c1, axis, axis])
            log_r2 = np.log(faces.d2[index] / tensors[c2, axis, axis])
        f1 = faces.d1[index] / (faces.d1[index] + faces.d2[index])
        state.hop_static = (log_r1, log_r2, dpsi0, f1)
        if not state.dynamic:
            # half-cell resistances d/D_nn of each side, the partition jump at the face
            state.rates = (
                np.exp(-np.logaddexp(log_r1, log_r2 + dpsi0)),
                np.exp(-np.logaddexp(log_r1 - dpsi0, log_r2)),
            )

    def _update_interfaces(self, state: SpeciesState) -> None:
        r"""Newton-linearised hop-face fluxes from the current iterate.

        The partition jump sits on the face, between the two half cells (distances
        :math:`d_1, d_2` to the face, normal diffusivities :math:`D_1, D_2`). With
        :math:`\Delta\psi_0` the jump of :math:`\mu^0/kT - \ln s` from cell 1 to 2
        (:math:`\ln s \to 0` for a dilute species), the face flux (cell 1 -> 2) is

        .. math::

           J = k_+ (1-\theta_2)\,c_1 - k_- (1-\theta_1)\,c_2,\qquad
           k_+ = \frac{1}{d_1/D_1 + (d_2/D_2)\,e^{\Delta\psi_0}},\quad
           k_- = k_+ e^{\Delta\psi_0}

        (without a potential; with one, :func:`cosinter.models.flux.hop_rates`).
        Each direction is weighted by the vacancy fraction of the receiving side, so
        :math:`J = 0` exactly at the Fermi–Dirac partition
        :math:`\mathrm{logit}\,\theta_2 - \mathrm{logit}\,\theta_1 = -\Delta\mu^0/kT`.
        For a dilute species this is the exact series resistance of two half cells
        with the partition :math:`K = e^{-\Delta\psi_0}` at the face,
        :math:`J = (c_1 - c_2/K)/(d_1/D_1 + d_2/(K D_2))`, which keeps the scheme
        second-order accurate across the jump. Newton:
        :math:`J \approx \alpha c_1 - \beta c_2 + G\,(\phi_2-\phi_1) + \gamma` with
        :math:`\alpha = \partial J/\partial c_1 > 0`,
        :math:`\beta = -\partial J/\partial c_2 > 0` and
        :math:`G = \partial J/\partial(\phi_2-\phi_1)`. (Lagging the :math:`1-\theta`
        factors instead, Picard, diverges once the receiving side is half full.)
        """
        faces, dim = self.faces, self.geometry.dimension
        coeff = normal_component(faces, state.base_diffusivity, dim).copy()
        explicit = np.zeros(len(faces.axis))
        if self.cross_stencil is not None:
            explicit += self._cross_terms(state)
        if not state.jump_faces.any():
            self._publish(state, coeff, None, explicit, None)
            return
        data = state.data
        index = np.flatnonzero(state.jump_faces)
        c1, c2 = faces.cell1[index], faces.cell2[index]
        value = np.asarray(state.var.value)
        conc1, conc2 = value[c1], value[c2]
        inv_s1, inv_s2 = 1.0 / data.sites[c1], 1.0 / data.sites[c2]  # 0 if dilute
        distance = faces.d1[index] + faces.d2[index]
        dk_plus = dk_minus = None
        dlog_d: tuple[FloatArray, FloatArray] | None = None  # d ln D/dc on sides 1, 2
        weight1 = np.zeros(0)
        cross: FloatArray | None = None
        if state.dynamic:
            log_r1, log_r2, dpsi0, f1 = state.hop_static
            v = np.zeros(len(index))
            if state.coupled and self.phi is not None:
                phi = np.asarray(self.phi.value)
                v = data.charge * (phi[c2] - phi[c1]) / thermal_voltage(self._T)
            if data.has_mobility:
                # D(c): in the rates through r = d/D, in Newton through d ln D/dc
                c = np.maximum(value, 0.0)
                factor = np.maximum(data.mobility_factor(c, self._T), 0.0)
                with np.errstate(divide="ignore"):
                    log_f = np.log(factor)
                step = 1e-6 * np.maximum(c, 1e-3 * state.scale)
                dlog_f = (
                    np.log(data.mobility_factor(c + step, self._T))
                    - np.log(data.mobility_factor(np.maximum(c - step, 0.0), self._T))
                ) / (c + step - np.maximum(c - step, 0.0))
                log_r1, log_r2 = log_r1 - log_f[c1], log_r2 - log_f[c2]
                dlog_d = (dlog_f[c1], dlog_f[c2])
                outer = ~faces.interior
                coeff[outer] = coeff[outer] * factor[faces.cell1[outer]]
            k_plus, k_minus, dk_plus, dk_minus, weight1 = hop_rates_and_weight(
                log_r1, log_r2, dpsi0, v, f1
            )
            state.rates = (k_plus, k_minus)
        forward, backward = state.rates
        alpha = forward * (1.0 - conc2 * inv_s2) + backward * conc2 * inv_s1
        beta = forward * conc1 * inv_s2 + backward * (1.0 - conc1 * inv_s1)
        gamma = conc1 * conc2 * (forward * inv_s2 - backward * inv_s1)
        extra1 = extra2 = np.zeros(len(index))
        if dlog_d is not None:
            # J scales with 1/Q and Q with r1 = d1/D1(c1), r2 = d2/D2(c2)
            flux = hop_flux(forward, backward, conc1, conc2, inv_s1, inv_s2)
            extra1 = flux * weight1 * dlog_d[0]
            extra2 = flux * (1.0 - weight1) * dlog_d[1]
            gamma = gamma - extra1 * conc1 - extra2 * conc2
        if state.coupled and dk_plus is not None and dk_minus is not None:
            assert self.phi is not None
            phi = np.asarray(self.phi.value)
            jv = hop_flux(dk_plus, dk_minus, conc1, conc2, inv_s1, inv_s2)
            g = jv * data.charge / thermal_voltage(self._T)
            gamma = gamma - g * (phi[c2] - phi[c1])
            cross = np.zeros(len(faces.axis))
            cross[index] = -g * distance
        # alpha, beta > 0 while 0 <= theta < 1: the face keeps the M-matrix sign pattern
        # the D(c) terms may break it; Newton stays exact and the damped update (see
        # _damping) keeps concentrations positive
        alpha = np.maximum(alpha, 0.0) + extra1
        beta = np.maximum(beta, 0.0) - extra2
        coeff[index] = 0.5 * (alpha + beta) * distance
        speed = np.zeros(len(faces.axis))
        # central differencing: J.n = (D/d)(c1 - c2) + u.n (c1 + c2)/2 = alpha c1 - beta c2
        speed[index] = alpha - beta
        explicit[index] += gamma
        self._publish(state, coeff, speed, explicit, cross)

    def _publish(
        self,
        state: SpeciesState,
        coeff: FloatArray,
        speed: FloatArray | None,
        explicit: FloatArray,
        cross: FloatArray | None,
    ) -> None:
        """Keep a species' face numbers; hand them to FiPy's terms if those assemble.

        ``coeff`` the face diffusivity (m^2/s), ``speed`` the normal velocity (m/s),
        ``explicit`` the explicit normal flux (mol m^-2 s^-1), ``cross`` the
        potential's face coefficient :math:`-Gd`; normal components run from
        ``cell1`` to ``cell2``.
        """
        state.face_coeff = coeff
        if speed is not None:
            state.face_speed = speed
        state.face_explicit = explicit
        if cross is not None:
            state.face_phi = cross
        terms = state.reference
        if terms is None:
            return
        normals = np.asarray(self.mesh.faceNormals)
        terms.diffusivity.setValue(coeff)
        terms.velocity.setValue(normals * state.face_speed[None, :])
        terms.explicit_flux.setValue(normals * explicit[None, :])
        if terms.cross is not None:
            terms.cross.setValue(state.face_phi)

    def _cross_terms(self, state: SpeciesState) -> FloatArray:
        r"""The tensor's off-diagonal flux: implicit part to the solver, explicit part back.

        :class:`~cosinter.solver.fields.CrossStencil` gives the limited cross flux
        linearised at the current iterate, :math:`F = T c + t_0`; the cell inflow
        :math:`\nabla_h\cdot(T c)` goes into the matrix (through
        :attr:`_ConservingLU.implicit`) and :math:`t_0` (from fixed ends) is
        returned as an explicit face flux. The sweeps iterate the
        limiters' choices to convergence. The one-sided differences are taken within
        a material only: across a material interface :math:`c` jumps by the partition and its
        difference is no gradient, so those faces (and closed walls) contribute zero
        slope, and no cross flux crosses them (only the exact normal hop flux does).
        A fixed end concentration gives its boundary face the one-sided difference to
        it.
        """
        assert self.cross_stencil is not None
        stencil, faces = self.cross_stencil, self.faces
        ids, values = state.dirichlet
        fixed = dict(zip(ids.tolist(), values.tolist(), strict=True))
        # the limited scheme may toggle between two choices from sweep to sweep (a
        # 2-cycle of ~1e-5 of the scale, seen at 750 degC in the composite): after a
        # few sweeps the choices are frozen and the sweeps converge
        state.cross_sweeps += 1
        frozen = state.cross_choice if state.cross_sweeps > self.FREEZE_LIMITERS_AFTER else None
        T, t0, state.cross_choice = stencil.linearised(
            faces,
            state.base_diffusivity,
            np.asarray(state.var.value),
            ~faces.interior | state.material_faces,
            fixed,
            self.geometry.dimension,
            frozen,
        )
        self.solver.implicit[id(state.var)] = stencil.divergence @ T
        return t0

    # ------------------------------------------------------------------ stepping
    def values(self) -> dict[str, FloatArray]:
        """Current concentrations (mol/m^3), copies."""
        return {n: np.array(s.var.value, dtype=float) for n, s in self.species.items()}

    def set_values(self, values: Mapping[str, FloatArray]) -> None:
        for name, v in values.items():
            assign(self.species[name].var, np.asarray(v, dtype=float))

    def interphase(self) -> FloatArray | None:
        """Current phase field eta per cell, a copy; None without an interphase."""
        return None if self.eta is None else np.array(self.eta.value, dtype=float)

    def state(self) -> dict[str, FloatArray]:
        """Everything the step error is measured on: concentrations and eta."""
        out = self.values()
        if self.eta is not None:
            out["eta"] = np.array(self.eta.value, dtype=float)
        return out

    def scales(self) -> dict[str, float]:
        """Reference size of every entry of :meth:`state` (eta: 1)."""
        out = {n: s.scale for n, s in self.species.items()}
        if self.eta is not None:
            out["eta"] = 1.0
        return out

    def potential(self) -> FloatArray | None:
        """Current potential (V) per cell, a copy; None without electrostatics."""
        return None if self.phi is None else np.array(self.phi.value, dtype=float)

    def step(self, dt: float, T: float, max_sweeps: int, tol: float) -> SweepResult:
        """One backward-Euler step of length ``dt`` ending at temperature ``T``.

        Species are advanced together: each is swept to ``tol`` (max-norm change
        relative to its scale; the potential relative to kT/e). The charged species
        and the potential are solved in one matrix. Returns after the first species
        (or coupled block) that fails.
        """
        self.update_coefficients(T)
        sweeps_total = 0
        vacancies = {layer.model.vacancy for layer in self.chemistry.compensations}
        for name in vacancies & {n for n, s in self.species.items() if s.coupled}:
            self._release_source(name, dt, T)  # from the step's start (lagged)
        if self._coupled is not None:
            result = self._step_coupled(dt, T, max_sweeps, tol)
            sweeps_total += result.sweeps
            if not result.converged:
                return result
        # vacancies last: their source uses the other species' new values
        order = sorted(
            (n for n, s in self.species.items() if not s.coupled), key=vacancies.__contains__
        )
        for name in order:
            state = self.species[name]
            if name in vacancies:
                self._release_source(name, dt, T)
            needs_sweeps = state.nonlinear or self.anisotropic
            change = np.inf
            sweep = 0
            previous = np.array(state.var.value)
            inventories = self._inventories({name: state}, dt)
            while sweep < (max_sweeps if needs_sweeps else 1):
                if not self.reference_assembly:
                    self._solve_direct([state], dt, inventories)
                else:
                    self.solver.inventories = inventories
                    try:
                        assert state.reference is not None
                        state.reference.equation.solve(var=state.var, dt=dt, solver=self.solver)
                    finally:
                        self.solver.inventories = {}
                sweep += 1
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
        if self.eta is not None:
            result = self._step_interphase(dt, T, max_sweeps, tol)
            sweeps_total += result.sweeps
            if not result.converged:
                return SweepResult(False, sweeps_total, "eta", result.change)
        return SweepResult(True, sweeps_total)

    # ------------------------------------------------------------------ direct assembly
    def _species_rows(
        self, state: SpeciesState, dt: float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        r"""Diagonal, face entries and right-hand side of a species' backward-Euler rows.

        .. math::

           \frac{V_P}{\Delta t} c_P + \sum_f \Bigl[g_f (c_P - c_N)
               + \tfrac{1}{2} s_f (c_P + c_N)\Bigr]
           = \frac{V_P}{\Delta t} c_P^\mathrm{old} + V_P S_P - \sum_f J^\mathrm{e}_f A_f

        with :math:`g_f = D_f A_f/d_f`, :math:`s_f = u_f A_f`, the explicit face flux
        :math:`J^\mathrm{e}` and fixed ends as :meth:`FaceMesh.dirichlet`; what FiPy's
        ``TransientTerm == DiffusionTerm - CentralDifferenceConvectionTerm -
        explicit.divergence + source`` assembles (:mod:`cosinter.solver.assembly`).
        """
        mesh = self.face_mesh
        inner, volumes = mesh.inner, mesh.volumes
        diag = volumes / dt
        rhs = volumes * np.asarray(state.var.old.value) / dt - mesh.outflow(state.face_explicit)
        if state.source is not None:
            rhs += volumes * np.asarray(state.source.value)
        ids, fixed = state.dirichlet
        if len(ids):
            extra, inflow = mesh.dirichlet(ids, state.face_coeff[ids], fixed)
            diag = diag + extra
            rhs += inflow
        entries = face_entries(
            state.face_coeff[inner] * mesh.transmissibility,
            state.face_speed[inner] * mesh.area[inner],
        )
        return diag, entries, rhs

    def _solve_direct(
        self,
        states: list[SpeciesState],
        dt: float,
        inventories: Mapping[int, tuple[FloatArray, FloatArray]],
    ) -> None:
        """One linear solve of ``states`` (:meth:`assemble`), values set in place."""
        matrix, rhs, x, rows = self.assemble(states, dt, inventories)
        x = self.solver.solve_system(matrix, x, rhs, rows, overwrite=True)
        n = self.face_mesh.n_cells
        for k, state in enumerate(states):
            assign(state.var, x[k * n : (k + 1) * n])
        if states[0].coupled:
            assert self.phi is not None
            assign(self.phi, x[len(states) * n :])

    def assemble(
        self,
        states: list[SpeciesState],
        dt: float,
        inventories: Mapping[int, tuple[FloatArray, FloatArray]],
    ) -> tuple[sparse.csr_matrix, FloatArray, FloatArray, list[tuple[int, FloatArray, FloatArray]]]:
        r"""The linear system of ``states`` at the current iterate, assembled directly.

        Returns the matrix, right-hand side, current iterate and the held inventories'
        rows (:func:`conserving_solve`'s arguments).

        The charged species are solved with the potential in one matrix: species
        blocks, then :math:`\phi` with the rows

        .. math::

           \sum_f \varepsilon_f \frac{A_f}{d_f}(\phi_P - \phi_N) + V_P k_P \phi_P
               - F \sum_i z_i V_P c_{i,P} = V_P \rho_{\mathrm{fixed},P}

        (:meth:`_build_poisson`; :math:`k` the pinned-sheet coefficient), and each
        species row gains :math:`\sum_f (-G d)_f \frac{A_f}{d_f}(\phi_P - \phi_N)`.
        """
        mesh = self.face_mesh
        n, inner, volumes = mesh.n_cells, mesh.inner, mesh.volumes
        coupled = states[0].coupled
        values: list[FloatArray] = []
        rhs: list[FloatArray] = []
        current: list[FloatArray] = []
        rows: list[tuple[int, FloatArray, FloatArray]] = []
        for k, state in enumerate(states):
            diag, entries, b = self._species_rows(state, dt)
            values += [diag, entries]
            if coupled:
                values.append(face_entries(state.face_phi[inner] * mesh.transmissibility))
            rhs.append(b)
            current.append(np.asarray(state.var.value, dtype=float))
            entry = inventories.get(id(state.var))
            if entry is not None:
                rows.append((k * n, *entry))
        assembler = self._solo
        if coupled:
            assert self._coupled is not None and self.phi is not None
            diag, entries, b = self._poisson_rows()
            values += [diag, entries]
            values += [-FARADAY * state.data.charge * volumes for state in states]
            rhs.append(b)
            current.append(np.asarray(self.phi.value, dtype=float))
            assembler = self._coupled
        matrix = assembler.matrix(values)
        implicit = self.solver.implicit
        for k, state in enumerate(states):
            # the cross terms' inflow M c (rotated tensors) moves to the left
            inflow_matrix = implicit.get(id(state.var))
            if inflow_matrix is not None:
                matrix = matrix - _embed(inflow_matrix, k * n, matrix.shape)
        return matrix, np.concatenate(rhs), np.concatenate(current), rows

    def _solve_eta_direct(
        self, dt: float, face_coeff: FloatArray, implicit: FloatArray, explicit: FloatArray
    ) -> None:
        """One linear solve of the phase field (:meth:`assemble_interphase`)."""
        assert self.eta is not None
        matrix, rhs = self.assemble_interphase(dt, face_coeff, implicit, explicit)
        x = np.array(self.eta.value, dtype=float)
        x = self.solver.solve_system(matrix, x, rhs, [], overwrite=True)
        assign(self.eta, x)

    def assemble_interphase(
        self, dt: float, face_coeff: FloatArray, implicit: FloatArray, explicit: FloatArray
    ) -> tuple[sparse.csr_matrix, FloatArray]:
        r"""Matrix and right-hand side of the phase field's Newton sweep, assembled directly.

        .. math::

           \Bigl(\frac{V_P}{\Delta t} - V_P k_P\Bigr)\eta_P
               + \sum_f \kappa_f \frac{A_f}{d_f}(\eta_P - \eta_N)
           = \frac{V_P}{\Delta t}\eta_P^\mathrm{old} + V_P e_P

        (FiPy: ``TransientTerm == DiffusionTerm(kappa) + ImplicitSourceTerm(k) + e``).
        """
        assert self.eta is not None
        mesh = self.face_mesh
        volumes = mesh.volumes
        matrix = self._solo.matrix(
            [
                volumes / dt - volumes * implicit,
                face_entries(face_coeff[mesh.inner] * mesh.transmissibility),
            ]
        )
        rhs = volumes * (np.asarray(self.eta.old.value) / dt + explicit)
        return matrix, rhs

    def _release_source(self, name: str, dt: float, T: float) -> None:
        r"""Set the oxygen-release source of vacancy species ``name`` for this step.

        Per cathode layer the release is integrated exactly over the step on the
        layer average (:meth:`~cosinter.models.reactions.LayeredOxideCompensation.release_step`)
        and spread over the release zone in proportion to :math:`1-p(\hat\eta)` (the
        largest :math:`\eta` on the way out, interpolated as transport is).
        """
        state = self.species[name]
        assert state.source is not None
        source = np.zeros(self.geometry.n_cells)
        volumes = self._volumes
        eta = None if self.eta is None else np.asarray(self.eta.old.value)
        for layer in self.chemistry.compensations:
            model = layer.model
            if model.vacancy != name or model.lithium not in self.species:
                continue
            cells = layer.cells
            li = np.asarray(self.species[model.lithium].var.value)[cells]
            cations = {
                k: np.asarray(self.species[k].var.value)[cells]
                for k in model.cation_charges
                if k in self.species
            }
            old = np.asarray(state.var.old.value)[cells]
            u_start = model.uncompensated(li, cations, old, volumes[cells])
            open_zone = layer.uptake * (
                1.0 if eta is None else 1.0 - interpolation(blocked_path(eta, layer.paths))
            )
            open_fraction = float(np.dot(volumes[layer.zone], open_zone)) / float(
                np.sum(volumes[cells])
            )
            formed, u_end = model.release_step(u_start, open_fraction, T, dt)
            if formed > 0.0:
                source[layer.zone] = 0.5 * model.rate_constant(T) * open_zone * u_end
        assign(state.source, source)

    # ------------------------------------------------------------------ interphase
    def _build_interphase(self) -> None:
        """The Allen–Cahn equation of the interphase field (see models.reactions)."""
        setup = self.chemistry.interphase
        assert setup is not None
        mesh, faces = self.mesh, self.faces
        self.eta = fipy.CellVariable(mesh=mesh, name="eta", value=0.0, hasOld=True)
        # no gradient coupling to cells that cannot hold the interphase (no-flux there)
        self._eta_host_faces = faces.interior & setup.host[faces.cell1] & setup.host[faces.cell2]
        if not self.reference_assembly:
            return
        self._eta_faces = fipy.FaceVariable(mesh=mesh, value=0.0)
        self._eta_implicit = fipy.CellVariable(mesh=mesh, value=0.0)
        self._eta_explicit = fipy.CellVariable(mesh=mesh, value=0.0)
        self._eta_equation = fipy.TransientTerm(var=self.eta) == (
            fipy.DiffusionTerm(coeff=self._eta_faces, var=self.eta)
            + _ImplicitSource(coeff=self._eta_implicit, var=self.eta)
            + self._eta_explicit
        )

    def _interphase_drive(self) -> FloatArray:
        """The drive d per cell from the current cation and Li contents."""
        setup = self.chemistry.interphase
        assert setup is not None
        model = setup.model
        n = self.geometry.n_cells
        content = np.zeros(n)
        for k in model.cations:
            if k in self.species:
                content += np.asarray(self.species[k].var.value)
        content = np.where(setup.host, content / setup.reference, 0.0)
        loss = np.zeros(n)
        volumes = self._volumes
        for layer in self.chemistry.compensations:
            if layer.model.lithium in self.species:
                li = np.asarray(self.species[layer.model.lithium].var.value)[layer.cells]
                mean = layer.model.mean_deficit(li, volumes[layer.cells])
                loss[layer.cells] = mean / layer.model.reference
        return np.where(setup.host, model.drive(content, loss), 0.0)

    def _step_interphase(self, dt: float, T: float, max_sweeps: int, tol: float) -> SweepResult:
        """Newton sweeps of the phase field; eta is kept in [eta at the step start, 1]."""
        setup = self.chemistry.interphase
        assert setup is not None and self.eta is not None
        model = setup.model
        rate = model.rate(T)
        face_coeff = np.where(self._eta_host_faces, rate * model.gradient, 0.0)
        if self._eta_faces is not None:  # the reference assembly
            self._eta_faces.setValue(face_coeff)
        drive = self._interphase_drive()
        host = setup.host
        previous = np.array(self.eta.value)
        # the interphase is a reaction product: it does not revert within a step
        floor = np.asarray(self.eta.old.value)
        change = np.inf
        for sweep in range(1, max_sweeps + 1):
            eta0 = np.array(self.eta.value)
            slope = model.force_slope(eta0, drive)
            # Newton, but the unstable part (slope > 0) only up to half of 1/dt, so the
            # diagonal stays positive: beyond it backward Euler has several roots
            implicit = np.where(host, np.minimum(rate * slope, 0.5 / dt), 0.0)
            explicit = np.where(host, rate * model.force(eta0, drive) - implicit * eta0, 0.0)
            if not self.reference_assembly:
                self._solve_eta_direct(dt, face_coeff, implicit, explicit)
            else:
                assert self._eta_equation is not None and self._eta_explicit is not None
                assert self._eta_implicit is not None
                self._eta_implicit.setValue(implicit)
                self._eta_explicit.setValue(explicit)
                self._eta_equation.solve(var=self.eta, dt=dt, solver=self.solver)
            step = np.asarray(self.eta.value) - eta0
            largest = float(np.max(np.abs(step))) if step.size else 0.0
            # Newton overshoots across the double well's barrier: damp large updates
            scale = min(1.0, self.MAX_ETA_UPDATE / largest) if largest > 0 else 1.0
            current = np.clip(eta0 + scale * step, floor, 1.0)
            assign(self.eta, current)
            change = float(np.max(np.abs(current - previous)))
            previous = current
            if not np.isfinite(change):
                return SweepResult(False, sweep, "eta", np.inf)
            if change < tol:
                return SweepResult(True, sweep)
        return SweepResult(False, max_sweeps, "eta", change)

    def _step_coupled(self, dt: float, T: float, max_sweeps: int, tol: float) -> SweepResult:
        """Damped Newton sweeps of the charged species and the potential in one matrix."""
        assert self._coupled is not None and self.phi is not None
        states = {n: s for n, s in self.species.items() if s.coupled}
        vt = thermal_voltage(T)
        previous = {n: np.array(s.var.value) for n, s in states.items()}
        previous_phi = np.array(self.phi.value)
        change: float = np.inf
        converged = False
        worst: str | None = None
        sweep = 0
        inventories = self._inventories(states, dt)
        while sweep < max_sweeps:
            if sweep > 0:
                for state in states.values():
                    self._update_interfaces(state)
            self.solver.inventories = inventories
            try:
                if not self.reference_assembly:
                    self._solve_direct(list(states.values()), dt, inventories)
                else:
                    assert self.coupled_equation is not None
                    self.coupled_equation.solve(dt=dt, solver=self.solver)
            except (RuntimeError, ValueError, FloatingPointError):  # singular: diverged
                return SweepResult(False, sweep + 1, None, np.inf)
            finally:
                self.solver.inventories = {}
            sweep += 1
            damping = self._damping(states, previous, previous_phi, vt)
            if damping < 1.0:
                for name, state in states.items():
                    new = np.asarray(state.var.value)
                    assign(state.var, previous[name] + damping * (new - previous[name]))
                new_phi = np.asarray(self.phi.value)
                assign(self.phi, previous_phi + damping * (new_phi - previous_phi))
            change, worst = 0.0, None
            for name, state in states.items():
                current = np.array(state.var.value)
                delta = float(np.max(np.abs(current - previous[name]))) / state.scale
                if not np.isfinite(delta):
                    return SweepResult(False, sweep, name, np.inf)
                if delta >= change:
                    change, worst = delta, name
                previous[name] = current
            phi = np.array(self.phi.value)
            if not np.all(np.isfinite(phi)):
                return SweepResult(False, sweep, "phi", np.inf)
            # phi does not enter the test: Poisson is linear, so after an undamped
            # sweep phi is the exact potential of the new concentrations, and its
            # change is their change seen through Poisson. Measured on its own it has
            # a round-off floor of ~1e-3 kT/e where a layer hardly screens (NCM at low
            # T: condition number ~1e16), far above the sweep tolerance, while the
            # concentrations it moves change by ~1e-7 of their scale.
            previous_phi = phi
            if damping == 1.0 and change < tol:
                converged = True
                break
        if not converged:
            return SweepResult(False, sweep, worst, change)
        for name in states:
            if np.min(previous[name]) < -1e-9 * states[name].scale:
                return SweepResult(False, sweep, name, change, negative=True)
        return SweepResult(True, sweep)

    #: Sweeps after which the cross terms' limiter choices stop changing within a step.
    FREEZE_LIMITERS_AFTER = 4

    #: Largest change of eta per Newton sweep before the update is damped.
    MAX_ETA_UPDATE = 0.25

    #: Largest potential change per Newton sweep, in kT/e, before the update is damped.
    MAX_POTENTIAL_UPDATE = 8.0

    def _damping(
        self,
        states: Mapping[str, SpeciesState],
        previous: Mapping[str, FloatArray],
        previous_phi: FloatArray,
        vt: float,
    ) -> float:
        """Newton damping factor in (0, 1]: bounded potential change, positive concentrations.

        Far from the solution (a large step into a strong field) the full update can
        overshoot by many kT/e and drive concentrations negative; scaling it keeps
        the iterate physical, and the sweep then counts as not converged.
        """
        assert self.phi is not None
        damping = 1.0
        jump = float(np.max(np.abs(np.asarray(self.phi.value) - previous_phi))) / vt
        if jump > self.MAX_POTENTIAL_UPDATE:
            damping = self.MAX_POTENTIAL_UPDATE / jump
        for name, state in states.items():
            old, new = previous[name], np.asarray(state.var.value)
            falling = (new < 0.0) & (old > 0.0)
            if falling.any():
                damping = min(damping, 0.9 * float(np.min(old[falling] / (old - new)[falling])))
        return max(damping, 1e-3)

    def _inventories(
        self, states: Mapping[str, SpeciesState], dt: float
    ) -> dict[int, tuple[FloatArray, FloatArray]]:
        """What :class:`_ConservingLU` holds: volumes and old values of closed species.

        A species with a fixed end concentration exchanges with the outside, so its
        inventory is not held. A reaction source adds ``dt`` times itself.
        """
        volumes = self._volumes
        return {
            id(state.var): (volumes, self._held(state, dt))
            for state in states.values()
            if state.fixed_left is None and state.fixed_right is None
        }

    @staticmethod
    def _held(state: SpeciesState, dt: float) -> FloatArray:
        """Per cell, what a closed species' step must add up to: old + dt source."""
        held = np.array(state.var.old.value, dtype=float)
        if state.source is not None:
            held += dt * np.asarray(state.source.value)
        return held

    def accept(self, dt: float) -> None:
        """Make the current values the old ones; book the inflow through x = 0.

        Also records the largest relative inventory change of a closed species
        (``max_inventory_drift``: round-off, the solves hold the inventories).

        With only the left end fixed, the inflow is the step's inventory change (the
        discrete balance, exact); with both ends fixed the left face flux is
        reconstructed as D (c_b - c_P) / d (agrees with FiPy's to ~1e-5 relative).
        """
        volumes = self._volumes
        for state in self.species.values():
            if state.fixed_left is None and state.fixed_right is None:
                old = float(np.dot(volumes, self._held(state, dt)))
                new = float(np.dot(volumes, np.asarray(state.var.value)))
                if old > 0:
                    drift = abs(new - old) / old
                    self.max_inventory_drift = max(self.max_inventory_drift, drift)
            if state.fixed_left is not None:
                if state.fixed_right is None:
                    change = np.dot(
                        volumes, np.asarray(state.var.value) - np.asarray(state.var.old.value)
                    )
                    state.boundary_inflow += float(change) / self.geometry.lateral_area
                else:
                    state.boundary_inflow += dt * self._left_flux(state)
            update_old(state.var)
        if self.phi is not None:
            self._phi_old = np.array(self.phi.value)
        if self.eta is not None:
            update_old(self.eta)

    def reject(self) -> None:
        """Return to the values at the start of the step."""
        for state in self.species.values():
            assign(state.var, np.asarray(state.var.old.value))
        if self.phi is not None and self._phi_old is not None:
            assign(self.phi, self._phi_old)
        if self.eta is not None:
            assign(self.eta, np.asarray(self.eta.old.value))

    def _left_flux(self, state: SpeciesState) -> float:
        """Flux into the stack through x = 0 (mol m^-2 s^-1, lateral mean)."""
        faces = self._end_faces["left"]
        cells = self.faces.cell1[faces]
        dnn = state.face_coeff
        c = np.asarray(state.var.value)[cells]
        flux = dnn[faces] * (float(state.fixed_left or 0.0) - c) / self.faces.d1[faces]
        return float(np.mean(flux))
