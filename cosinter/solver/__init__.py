"""HOW it is solved: the only package that imports FiPy."""
