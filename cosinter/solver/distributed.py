"""The PETSc back end: each sparse LU factored by MUMPS across the MPI ranks.

``cosinter run CASE --solver petsc`` (``mpirun -n N`` in front for N ranks). Rank 0
runs the simulation as on one process: the whole mesh, the per-cell arrays, the
assembly (:mod:`cosinter.solver.assembly`), the step control and every output. At
each linear solve it hands the assembled matrix to PETSc, and MUMPS factors it with
the other ranks: the factors, the dominant memory and time of a large 2D/3D step
(``docs/performance.md``), are split between the ranks. Ranks 1..N-1 only serve
rank 0's requests (:func:`serve`); they hold their share of the factors and nothing
of the mesh.

This is a replicated-driver design, not a domain decomposition: rank 0's memory
for the mesh and fields does not shrink with N. FiPy's own parallel path
(partitioned meshes with local numbering) is not used: cosinter's per-cell arrays
and reductions are global, and FiPy's periodic grids do not partition.

Protocol: rank 0 broadcasts a command (factor, solve, free, stop) and then every
rank makes the same collective PETSc calls; rank 0's matrix and vectors hold all
rows, the other ranks' none (MUMPS distributes the factorization itself).
PETSc options (``PETSC_OPTIONS``, e.g. ``-mat_mumps_icntl_14 50`` for more
working space) reach the solver through ``setFromOptions``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from cosinter.errors import InputError

FloatArray = NDArray[np.float64]

_FACTOR, _SOLVE, _FREE, _STOP = "factor", "solve", "free", "stop"

#: Environment variables that MPI launchers (Open MPI, MPICH/Hydra, Slurm) set to
#: the number of ranks: read without importing mpi4py (which would start MPI).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS")


def launched_ranks() -> int:
    """Number of MPI ranks this process was started with (1 without a launcher)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def _petsc() -> tuple[Any, Any]:
    """``(PETSc, MPI)``, or an :class:`InputError` saying how to get them."""
    try:
        import petsc4py

        petsc4py.init()
        from mpi4py import MPI
        from petsc4py import PETSc
    except ImportError as exc:
        raise InputError(
            f"--solver petsc needs petsc4py and mpi4py ({exc}); `make install-mpi` creates"
            " .venv-mpi with them (README, 'Large meshes')"
        ) from None
    return PETSc, MPI


_COMMUNICATOR: list[Any] = []


def _comm() -> Any:
    """cosinter's own duplicate of MPI's world communicator (made once, collectively).

    Rank 0 runs FiPy and PETSc code the serving ranks do not (PETSc duplicates
    ``COMM_WORLD`` on its first object there, a collective); on a communicator of
    its own the serving ranks' broadcasts cannot be matched by those calls.
    """
    if not _COMMUNICATOR:
        _, mpi = _petsc()
        _COMMUNICATOR.append(mpi.COMM_WORLD.Dup())
    return _COMMUNICATOR[0]


def world() -> tuple[int, int]:
    """``(rank, size)`` of MPI's world communicator (imports mpi4py)."""
    comm = _comm()
    return int(comm.Get_rank()), int(comm.Get_size())


class _Factors:
    """One matrix factored by MUMPS; the same calls on every rank (collective).

    Rank 0 passes the matrix (all rows); the other ranks pass ``None`` and hold no
    rows, only their part of the factors.
    """

    def __init__(self, n: int, matrix: sparse.csr_matrix | None) -> None:
        petsc, _ = _petsc()
        comm = petsc.Comm(_comm())
        local = 0 if matrix is None else n
        self.n = n
        self.mat = petsc.Mat().createAIJ(
            size=((local, n), (local, n)), csr=self._csr(matrix), comm=comm
        )
        self.mat.assemble()
        self.ksp = petsc.KSP().create(comm)
        self.ksp.setOperators(self.mat)
        self.ksp.setType("preonly")
        pc = self.ksp.getPC()
        pc.setType("lu")
        # PETSc's own LU does not pivot (our rows mix cell volumes ~1e-27 m^3 with
        # face conductances of the fast in-plane D); MUMPS pivots and runs on N ranks
        pc.setFactorSolverType("mumps")
        self.ksp.setFromOptions()
        self.ksp.setUp()

    @staticmethod
    def _csr(matrix: sparse.csr_matrix | None) -> tuple[Any, Any, FloatArray]:
        petsc, _ = _petsc()
        int_type = petsc.IntType
        if matrix is None:
            return np.zeros(1, int_type), np.zeros(0, int_type), np.zeros(0)
        return (
            matrix.indptr.astype(int_type),
            matrix.indices.astype(int_type),
            np.ascontiguousarray(matrix.data, dtype=float),
        )

    def solve(self, rhs: FloatArray | None) -> tuple[FloatArray | None, int]:
        """One back-substitution; rank 0 gets the solution, every rank the reason."""
        b = self.mat.createVecLeft()
        x = self.mat.createVecRight()
        if rhs is not None:
            b.getArray()[:] = rhs
        self.ksp.solve(b, x)
        reason = int(self.ksp.getConvergedReason())
        solution = np.array(x.getArray(), dtype=float) if rhs is not None else None
        b.destroy()
        x.destroy()
        return solution, reason

    def destroy(self) -> None:
        self.ksp.destroy()
        self.mat.destroy()


def _broadcast(command: tuple[str, int]) -> None:
    comm = _comm()
    if comm.Get_size() > 1:
        comm.bcast(command, root=0)


class PetscLU:
    r"""Rank 0's handle on the MUMPS factors of ``matrix`` (the other ranks serve).

    The :class:`~cosinter.solver.equations.Factorization` of the PETSc back end:
    :meth:`solve` takes one right-hand side or a matrix of them (columns), as
    SuperLU's does; :meth:`close` frees the factors on every rank.

    Each matrix is factored afresh, MUMPS' analysis (ordering) included. Keeping the
    factors and their analysis for the next matrix of the same pattern (PETSc
    refactors numerically only) made a step 13 % faster at 10^6 cells on 2 ranks
    (29.1 s against 33.4 s) but raised rank 0's peak memory from 7.4 to 9.2 GiB, as
    the held factors sat beside the next sweep's arrays (docs/performance.md): not
    done, memory is what limits a large mesh.

    Raises
    ------
    InputError
        Made on a rank other than 0 (a script that runs the simulation on every
        rank: use :func:`root_session`).
    """

    def __init__(self, matrix: sparse.spmatrix) -> None:
        rank, _ = world()
        if rank != 0:
            raise InputError(
                "the PETSc back end runs the simulation on rank 0 only; the other ranks"
                " serve its solves (cosinter.solver.distributed.root_session)"
            )
        csr = sparse.csr_matrix(matrix)
        csr.sort_indices()
        self.shape = csr.shape
        _broadcast((_FACTOR, csr.shape[0]))
        self._factors: _Factors | None = _Factors(csr.shape[0], csr)

    def solve(self, rhs: FloatArray) -> FloatArray:
        """:math:`A^{-1} b` for a vector, or for each column of a 2D array.

        Raises
        ------
        RuntimeError
            MUMPS could not factor or solve (a singular matrix), as SuperLU raises.
        """
        factors = self._factors
        if factors is None:
            raise RuntimeError("the factors were freed")
        columns = rhs.reshape(rhs.shape[0], -1)
        out = np.empty_like(columns, dtype=float)
        for k in range(columns.shape[1]):
            _broadcast((_SOLVE, 0))
            solution, reason = factors.solve(np.ascontiguousarray(columns[:, k]))
            if reason < 0 or solution is None or not np.all(np.isfinite(solution)):
                raise RuntimeError(f"MUMPS LU failed (PETSc KSP reason {reason})")
            out[:, k] = solution
        return out.reshape(rhs.shape)

    def close(self) -> None:
        """Free the factors on every rank (collective; idempotent)."""
        if self._factors is not None:
            _broadcast((_FREE, 0))
            self._factors.destroy()
            self._factors = None


def serve() -> None:
    """Ranks 1..N-1: take part in rank 0's factorizations and solves until it stops.

    Every command is answered with the collective calls rank 0 makes in
    :class:`PetscLU` (with no rows of its own); returns on rank 0's stop
    (:func:`release_workers`).
    """
    comm = _comm()
    factors: _Factors | None = None
    while True:
        command, n = comm.bcast(None, root=0)
        if command == _FACTOR:
            factors = _Factors(n, None)
        elif command == _SOLVE:
            assert factors is not None
            factors.solve(None)
        elif command == _FREE:
            assert factors is not None
            factors.destroy()
            factors = None
        elif command == _STOP:
            return


def release_workers() -> None:
    """Rank 0: tell the serving ranks to return from :func:`serve`."""
    _broadcast((_STOP, 0))


@contextmanager
def root_session() -> Iterator[bool]:
    """``True`` on rank 0 (run the simulation, the workers released at the end);
    ``False`` on the other ranks, after they served rank 0 to its end.

    .. code-block:: python

       with root_session() as root:
           if root:
               Simulation(case, raw).run("out", solver="petsc")
    """
    rank, _ = world()
    # FiPy's import makes collective PETSc/MPI calls (rank 0 needs FiPy): every rank
    # makes them, so that they match
    import fipy  # noqa: F401

    if rank != 0:
        serve()
        yield False
        return
    try:
        yield True
    finally:
        release_workers()
