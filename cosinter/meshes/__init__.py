"""WHERE it is solved: geometry, no physics, no FiPy."""
