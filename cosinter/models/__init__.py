"""Physics and materials: what is solved (plain NumPy, no FiPy)."""
