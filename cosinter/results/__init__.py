"""What comes out of a run: writers, metrics, plots."""
