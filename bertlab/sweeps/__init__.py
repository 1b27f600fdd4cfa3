"""Ablations as experiment files (experiments/), run by `python -m bertlab.sweep`."""

from bertlab.sweeps.spec import (Downstream, Plot, Point, Sweep, cpu_downstream, cpu_overrides,
                                  load_sweep)

__all__ = ["Downstream", "Plot", "Point", "Sweep", "cpu_downstream", "cpu_overrides",
           "load_sweep"]
