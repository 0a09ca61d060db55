"""Trials: what a trial holds, and the one implementation that cuts it (grid, scanpath)."""
