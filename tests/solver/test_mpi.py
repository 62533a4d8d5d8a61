"""The PETSc back end (``cosinter run --solver petsc``): MUMPS on one and on two ranks.

Rank 0 runs the case; the other ranks take part in every LU (factors split between
them, :mod:`cosinter.solver.distributed`). The two-rank runs go to ``mpirun``
subprocesses and are compared with a serial run of the default solver. The tests
that need petsc4py/mpi4py skip where they are missing (``make install-mpi`` brings
them; ``make test`` runs this file in ``.venv-mpi`` when it exists).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sparse

from cosinter.case import validate_case
from cosinter.cli import main
from cosinter.errors import InputError
from cosinter.solver.equations import make_solver
from cosinter.solver.simulation import Simulation

HAVE_PETSC = all(importlib.util.find_spec(m) is not None for m in ("petsc4py", "mpi4py"))
MPIRUN = shutil.which("mpirun")
needs_petsc = pytest.mark.skipif(not HAVE_PETSC, reason="petsc4py/mpi4py absent (make install-mpi)")
needs_mpirun = pytest.mark.skipif(not HAVE_PETSC or MPIRUN is None, reason="no petsc4py/mpirun")

# Two LUs differ in round-off, and where it tips an accept/reject decision the two
# runs take different steps (small_2d: 282 and 278): they then agree to the step
# control's tolerance, not to round-off. The cases run at RTOL (tighter than the
# default 1e-3) and the tests ask for agreement to RTOL of the largest value
# (measured: 2.5e-5 for small_2d; charged_2d takes the same steps, 1e-12).
RTOL = 1e-4

# NCM111 (003) | LLTO, 40 x 10 cells of 1 nm, one fast channel, Li only
SMALL_2D = """\
[case]
name = "mpi_small"

[mesh]
dimension = 2
cell_size = "1 nm"
width = "10 nm"
lateral = "no_flux"
channels = { layer = 0, spacing = "10 nm", width = "2 nm", D_factor = 100 }

[[layers]]
material = "NCM111"
thickness = "20 nm"
orientation = { plane = [0, 0, 3] }

[[layers]]
material = "LLTO"
thickness = "20 nm"

[species.Li]
charge = 1

[temperature]
initial = "400 degC"
steps = [{ hold = "30 min" }]

[solver]
rtol = {rtol}
"""

# periodic sides, NCM111 tilted 30 deg (rotated tensors: the cross terms' implicit
# matrix), charged Li with the potential in one matrix (bordered rows) and Ti
CHARGED_2D = """\
[case]
name = "mpi_charged"

[mesh]
dimension = 2
cell_size = "1 nm"
width = "8 nm"
lateral = "periodic"

[[layers]]
material = "NCM111"
thickness = "12 nm"
orientation = { tilt = "30 deg" }

[[layers]]
material = "LLTO"
thickness = "12 nm"

[species.Li]
charge = 1
[species.Ti]

[electrostatics]
enabled = true

[temperature]
initial = "300 degC"
steps = [{ to = "500 degC", ramp = "50 K/min" }, { hold = "5 min" }]

[solver]
rtol = {rtol}
"""

CASES = {
    "small_2d": SMALL_2D.replace("{rtol}", str(RTOL)),
    "charged_2d": CHARGED_2D.replace("{rtol}", str(RTOL)),
}


def mpi_env() -> dict[str, str]:
    """One BLAS thread per rank; Open MPI may run as root and oversubscribe."""
    env = dict(os.environ, OMPI_MCA_rmaps_base_oversubscribe="1")
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("FIPY_SOLVERS", None)  # the launcher decides (cosinter.solver)
    env.pop("PETSC_OPTIONS", None)  # a test that wants options sets them
    return env


def write_case(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(CASES[name])
    return path


def run_serial(path: Path, out: Path, solver: str = "scipy") -> None:
    raw = tomllib.loads(path.read_text())
    Simulation(validate_case(raw), raw).run(out, progress=False, solver=solver)


def mpirun(
    args: list[str], ranks: int = 2, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert MPIRUN is not None
    command = [MPIRUN, "-n", str(ranks), sys.executable, "-m", "cosinter", *args]
    return subprocess.run(
        command,
        env={**mpi_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def final(directory: Path, name: str) -> np.ndarray:
    with np.load(directory / "checkpoint.npz") as data:
        return np.array(data[f"c/{name}"])


def record(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "run.json").read_text()))


def files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def frame_times(directory: Path) -> list[str]:
    text = (directory / "fields.pvd").read_text()
    return [part.split('"')[1] for part in text.split("timestep=")[1:]]


# ------------------------------------------------------------------ without petsc4py


@pytest.mark.skipif(HAVE_PETSC, reason="petsc4py is installed here")
def test_petsc_without_petsc4py_says_how_to_get_it() -> None:
    with pytest.raises(InputError, match="make install-mpi"):
        make_solver("petsc")


@pytest.mark.skipif(HAVE_PETSC, reason="petsc4py is installed here")
def test_cli_petsc_without_petsc4py_is_an_input_error(tmp_path: Path) -> None:
    path = write_case(tmp_path, "small_2d")
    args = ["run", str(path), "-o", str(tmp_path / "out"), "--quiet", "--solver", "petsc"]
    assert main(args) == 2
    assert not (tmp_path / "out" / "run.json").exists()


def test_unknown_solver_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown solver"):
        make_solver("umfpack")


# ------------------------------------------------------------------ one process


@needs_petsc
def test_petsc_lu_solves_vectors_and_columns() -> None:
    from cosinter.solver.distributed import PetscLU

    rng = np.random.default_rng(5)
    n = 60
    matrix = sparse.random(n, n, density=0.1, random_state=rng) + 4 * sparse.identity(n)
    rhs = rng.normal(size=(n, 3))
    lu = PetscLU(sparse.csc_matrix(matrix))
    try:
        expected = np.linalg.solve(matrix.toarray(), rhs)
        assert lu.solve(rhs) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert lu.solve(rhs[:, 1]) == pytest.approx(expected[:, 1], rel=1e-12, abs=1e-12)
    finally:
        lu.close()
    with pytest.raises(RuntimeError, match="freed"):
        lu.solve(rhs)


@needs_petsc
def test_petsc_lu_of_a_singular_matrix_raises_like_superlu() -> None:
    from cosinter.solver.distributed import PetscLU

    matrix = sparse.csc_matrix(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(RuntimeError):
        lu = PetscLU(matrix)
        try:
            lu.solve(np.ones(2))
        finally:
            lu.close()


@needs_petsc
@pytest.mark.parametrize("name", sorted(CASES))
def test_petsc_one_process_matches_scipy(tmp_path: Path, name: str) -> None:
    path = write_case(tmp_path, name)
    run_serial(path, tmp_path / "scipy")
    run_serial(path, tmp_path / "petsc", solver="petsc")
    serial, petsc = final(tmp_path / "scipy", "Li"), final(tmp_path / "petsc", "Li")
    # another LU (MUMPS): agreement to the step control's tolerance, not bitwise
    assert np.max(np.abs(petsc - serial)) < RTOL * np.max(serial)
    # the bordered rows hold the closed inventories with MUMPS too
    assert record(tmp_path / "petsc")["solver_statistics"]["max_inventory_drift"] < 1e-12


@needs_petsc
def test_petsc_lu_out_of_core_keeps_its_factors_on_disk_until_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MUMPS out of core (``-mat_mumps_icntl_22 1``, docs/large_meshes.rst): the
    factors go to ``MUMPS_OOC_TMPDIR`` and are removed when freed."""
    from petsc4py import PETSc

    from cosinter.solver.distributed import PetscLU

    monkeypatch.setenv("MUMPS_OOC_TMPDIR", str(tmp_path))
    side = np.diag(np.full(30, 2.5)) - np.eye(30, k=1) - np.eye(30, k=-1)
    matrix = sparse.csr_matrix(sparse.kronsum(side, side))  # a 2D grid's 900 rows
    options = PETSc.Options()
    options["mat_mumps_icntl_22"] = 1
    try:
        lu = PetscLU(matrix)
    finally:
        options.delValue("mat_mumps_icntl_22")
    try:
        assert any(tmp_path.iterdir())  # the factors' files
        rhs = np.arange(900.0)
        assert matrix @ lu.solve(rhs) == pytest.approx(rhs, rel=1e-12, abs=1e-10)
    finally:
        lu.close()
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ two ranks


@needs_mpirun
@pytest.mark.parametrize("name", sorted(CASES))
def test_two_ranks_match_the_serial_run(tmp_path: Path, name: str) -> None:
    """The CI's two-rank check: ``mpirun -n 2 cosinter run --solver petsc``."""
    path = write_case(tmp_path, name)
    run_serial(path, tmp_path / "serial")
    done = mpirun(["run", str(path), "-o", str(tmp_path / "mpi"), "--quiet", "--solver", "petsc"])
    assert done.returncode == 0, done.stderr[-3000:]
    serial, mpi = tmp_path / "serial", tmp_path / "mpi"
    # the same outputs (rank 0 wrote them all), the same frames
    assert files(mpi) == files(serial)
    assert frame_times(mpi) == frame_times(serial)
    for species in tomllib.loads(CASES[name])["species"]:
        a, b = final(serial, species), final(mpi, species)
        assert np.max(np.abs(b - a)) < RTOL * np.max(a), species
    assert record(mpi)["solver_statistics"]["max_inventory_drift"] < 1e-12
    assert record(mpi)["linear_solver"] == {
        "backend": "petsc",
        "mpi_ranks": 2,
        "petsc_options": "",
    }
    assert record(serial)["linear_solver"] == {"backend": "scipy", "mpi_ranks": 1}


@needs_mpirun
def test_two_ranks_out_of_core_match_the_serial_run(tmp_path: Path) -> None:
    """What docs/large_meshes.rst gives for memory: MUMPS' factors on disk."""
    path = write_case(tmp_path, "charged_2d")
    run_serial(path, tmp_path / "serial")
    scratch = tmp_path / "ooc"
    scratch.mkdir()
    options = "-mat_mumps_icntl_22 1"
    env = {"PETSC_OPTIONS": options, "MUMPS_OOC_TMPDIR": str(scratch)}
    args = ["run", str(path), "-o", str(tmp_path / "mpi"), "--quiet", "--solver", "petsc"]
    done = mpirun(args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for species in ("Li", "Ti"):
        a, b = final(tmp_path / "serial", species), final(tmp_path / "mpi", species)
        assert np.max(np.abs(b - a)) < RTOL * np.max(a), species
    assert record(tmp_path / "mpi")["linear_solver"]["petsc_options"] == options
    assert not any(scratch.iterdir())  # every factorization's files removed


@needs_mpirun
def test_two_ranks_bad_input_exits_2_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(CASES["small_2d"].replace('cell_size = "1 nm"', 'cell_size = "1 kg"'))
    done = mpirun(["run", str(path), "-o", str(tmp_path / "out"), "--solver", "petsc"], timeout=120)
    assert done.returncode == 2
    assert "cell_size" in done.stderr
    assert done.stderr.count("cosinter:") == 1  # rank 0 reports; the other rank was released


@needs_mpirun
def test_two_ranks_refuse_the_serial_solver(tmp_path: Path) -> None:
    path = write_case(tmp_path, "small_2d")
    done = mpirun(["run", str(path), "-o", str(tmp_path / "out"), "--quiet"], timeout=120)
    assert done.returncode == 2
    assert "under mpirun use --solver petsc" in done.stderr


def test_sweep_under_mpirun_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rank would run every point into the same folders."""
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    sweep = Path(__file__).parents[2] / "cases" / "sweep_coating.toml"
    assert main(["sweep", str(sweep), "-o", str(tmp_path / "sweep"), "--quiet"]) == 2
    assert not (tmp_path / "sweep").exists()


@needs_mpirun
def test_python_api_on_two_ranks(tmp_path: Path) -> None:
    """``root_session`` in a user's script: rank 0 runs, rank 1 serves, both return."""
    path = write_case(tmp_path, "small_2d")
    script = tmp_path / "script.py"
    script.write_text(
        f"""
import tomllib
from cosinter.case import validate_case
from cosinter.solver.distributed import SERVED, root_session, world
from cosinter.solver.simulation import Simulation

raw = tomllib.loads(open({str(path)!r}).read())
with root_session() as root:
    if root:
        Simulation(validate_case(raw), raw).run({str(tmp_path / "out")!r}, progress=False,
                                               solver="petsc")
print("rank", world()[0], "done, served", SERVED[0], flush=True)
"""
    )
    assert MPIRUN is not None
    done = subprocess.run(
        [MPIRUN, "-n", "2", sys.executable, str(script)],
        env=mpi_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # mpirun forwards the ranks' output in pieces that may run together: no line order
    assert "rank 0 done, served 0" in done.stdout
    # rank 1 took part in every factorization (factor, solves, free per linear solve)
    served = re.search(r"rank 1 done, served (\d+)", done.stdout)
    assert served is not None, done.stdout
    assert int(served.group(1)) > 100
    assert (tmp_path / "out" / "run.json").exists()
