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
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sparse
from numpy.typing import NDArray

from cosinter.errors import InputError

FloatArray = NDArray[np.float64]

_FACTOR, _SOLVE, _FREE, _STOP = "factor", "solve", "free", "stop"

#: Environment variables that MPI launchers (Open MPI, MPICH/Hydra, Slurm's srun
#: through PMI/PMIx) set to the number of ranks: read without importing mpi4py (which
#: would start MPI). Not SLURM_NTASKS: a batch job has it for serial commands too.
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")


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


def prepare_csr(matrix: sparse.csr_matrix | None) -> tuple[Any, Any, FloatArray]:
    """The CSR arrays in PETSc's index type (empty for a rank without rows)."""
    petsc, _ = _petsc()
    int_type = petsc.IntType
    if matrix is None:
        return np.zeros(1, int_type), np.zeros(0, int_type), np.zeros(0)
    return (
        matrix.indptr.astype(int_type, copy=False),
        matrix.indices.astype(int_type, copy=False),
        np.ascontiguousarray(matrix.data, dtype=float),
    )


class _Factors:
    """One matrix factored by MUMPS; the same calls on every rank (collective).

    Rank 0 passes the matrix (all rows); the other ranks pass ``None`` and hold no
    rows, only their part of the factors.
    """

    def __init__(self, n: int, csr: tuple[Any, Any, FloatArray] | None) -> None:
        petsc, _ = _petsc()
        comm = petsc.Comm(_comm())
        local = 0 if csr is None else n
        self.mat: Any = None
        self.ksp: Any = None
        # on one rank PETSc uses the arrays as they are, no copy (0.2 GiB at 10^6
        # cells), and they must live as long as the matrix (petsc4py 3.18 keeps a
        # reference too; kept here as well, not to depend on it); across ranks it
        # copies them
        self._arrays: tuple[Any, Any, FloatArray] | None = prepare_csr(None) if csr is None else csr
        try:
            self.mat = petsc.Mat().createAIJWithArrays(
                size=((local, n), (local, n)), csr=self._arrays, comm=comm
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
        except Exception:
            # PETSc's set-up errors come on every rank: free what was made, on every
            # rank alike (a half-built object left to the garbage collector would be
            # freed at different times on different ranks: MUMPS' clean-up is collective)
            self.destroy()
            raise

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
        if reason < 0:
            # MUMPS' own error code says why (INFOG(1), INFOG(2)); on every rank alike,
            # the reference dropped at once (see __init__)
            factor = self.ksp.getPC().getFactorMatrix()
            self.mumps_error = (int(factor.getMumpsInfog(1)), int(factor.getMumpsInfog(2)))
            del factor
        return solution, reason

    mumps_error: tuple[int, int] = (0, 0)

    def destroy(self) -> None:
        if self.ksp is not None:
            self.ksp.destroy()
        if self.mat is not None:
            self.mat.destroy()
        self.ksp = self.mat = None
        self._arrays = None


_STRANDED: list[bool] = [False]

#: Commands the last :func:`serve` on this rank answered (a serving rank's record).
SERVED: list[int] = [0]


@contextmanager
def _collective() -> Iterator[None]:
    """Rank 0 between a broadcast command and the end of its PETSc calls.

    PETSc's own errors there come on every rank (the serving ranks drop them and go
    on). Any other exception (an interrupt, an allocation failing on rank 0 alone)
    leaves the serving ranks inside a collective call that only aborting the job
    ends: it is marked for :func:`root_session`.
    """
    try:
        yield
    except RuntimeError:  # PETSc.Error is one (petsc4py's init is not repeated here)
        raise
    except BaseException:
        _STRANDED[0] = True
        raise


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
    (29.1 s against 33.4 s) but raised rank 0's peak memory from 7.5 to 9.2 GiB, as
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
        csr = sparse.csr_matrix(matrix)  # no copy of a CSR matrix
        csr.sort_indices()  # PETSc's AIJ wants sorted columns; in place
        arrays = prepare_csr(csr)  # before the broadcast: nothing but PETSc after it
        self._factors: _Factors | None = None
        with _collective():
            _broadcast((_FACTOR, csr.shape[0]))
            self._factors = _Factors(csr.shape[0], arrays)

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
            column = np.ascontiguousarray(columns[:, k])
            with _collective():
                _broadcast((_SOLVE, 0))
                solution, reason = factors.solve(column)
            if reason < 0 or solution is None:
                code, detail = factors.mumps_error
                raise RuntimeError(
                    f"MUMPS LU failed (PETSc KSP reason {reason}, MUMPS INFOG(1) = {code},"
                    f" INFOG(2) = {detail}; -8, -9, -11..-14, -17, -20 mean too little"
                    " working space: PETSC_OPTIONS='-mat_mumps_icntl_14 50')"
                )
            # a non-finite solution is returned, as SuperLU's: the sweeps reject the step
            out[:, k] = solution
        return out.reshape(rhs.shape)

    def close(self) -> None:
        """Free the factors on every rank (collective; idempotent)."""
        if self._factors is not None:
            with _collective():
                _broadcast((_FREE, 0))
                self._factors.destroy()
            self._factors = None


def serve() -> int:
    """Ranks 1..N-1: take part in rank 0's factorizations and solves until it stops.

    Every command is answered with the collective calls rank 0 makes in
    :class:`PetscLU` (with no rows of its own); returns on rank 0's stop
    (:func:`release_workers`), with the number of commands served. PETSc's errors
    (a failed set-up) come on every rank: rank 0 raises them, here they are dropped
    and the loop goes on, as rank 0 may carry on (a rejected step).
    """
    comm = _comm()
    factors: _Factors | None = None
    served = 0
    while True:
        command, n = comm.bcast(None, root=0)
        served += 1
        SERVED[0] = served
        try:
            if command == _FACTOR:
                factors = None
                factors = _Factors(n, None)
            elif command == _SOLVE:
                assert factors is not None
                factors.solve(None)
            elif command == _FREE:
                assert factors is not None
                factors.destroy()
                factors = None
            elif command == _STOP:
                return served
        except Exception:  # rank 0 raises the same error and reports it
            continue


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
    rank, size = world()
    # FiPy's import makes collective PETSc/MPI calls (rank 0 needs FiPy): every rank
    # makes them, so that they match
    import fipy  # noqa: F401

    if rank != 0:
        serve()
        yield False
        return
    try:
        yield True
    except BaseException as exc:
        if size > 1 and _STRANDED[0]:
            # the other ranks wait in a collective call rank 0 left: only an abort ends them
            print(
                f"cosinter: {type(exc).__name__}: {exc} (rank 0 stopped inside a collective"
                " call: aborting the MPI job)",
                file=sys.stderr,
                flush=True,
            )
            _comm().Abort(1)
        raise
    finally:
        release_workers()
