"""Ablations as experiment files (experiments/), run by `python -m bertlab.sweep`."""

from bertlab.sweeps.spec import Plot, Point, Sweep, cpu_overrides, load_sweep

__all__ = ["Plot", "Point", "Sweep", "cpu_overrides", "load_sweep"]
