"""HOW it is solved: the only package that imports FiPy.

FiPy picks its solver suite once, at import: where petsc4py is installed it would
take PETSc even for a serial run. cosinter's default path is the scipy suite (the
bordered LU of :mod:`cosinter.solver.equations`), so it is asked for here unless
``FIPY_SOLVERS`` says otherwise (``cosinter run --solver petsc`` sets it to petsc).
"""

import os

os.environ.setdefault("FIPY_SOLVERS", "scipy")
