"""HOW it is solved: the only package that imports FiPy.

FiPy picks its solver suite once, at import: where petsc4py is installed it would
take PETSc even for a serial run. cosinter assembles its own matrices and factors
them itself (SuperLU, or MUMPS through petsc4py: :mod:`cosinter.solver.distributed`),
so FiPy's suite only decides which matrices FiPy's reference terms build: scipy
unless ``FIPY_SOLVERS`` says otherwise. Under ``mpirun`` FiPy refuses the scipy suite,
so there the default is petsc (cosinter's meshes stay serial either way).
"""

import os

from cosinter.solver.distributed import launched_ranks

os.environ.setdefault("FIPY_SOLVERS", "petsc" if launched_ranks() > 1 else "scipy")
