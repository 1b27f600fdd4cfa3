"""Threefry on the CPU as one fused kernel, as JAX already lowers it on GPU and TPU.

JAX lowers its threefry hash on the CPU as a rolled loop of five rounds (smaller programs,
quicker compiles), so every dropout mask and sampled token costs a `while` whose carries are
written back to memory each round: about 4.6 ms for a million Bernoulli draws on 2 cores
against 0.8 ms unrolled. The fine-tuning step of BERT tiny (benchmarks/finetune_vs_hf.py)
goes from 40.6 to 37.1 ms, and with its layers unrolled to 24.2 ms (40.1 with the rolled
threefry: unrolling gains only once the random bits are fused). The unrolled lowering is the
one JAX uses on accelerators and computes the same bits, so random streams, resumed runs and
results do not change (a test checks the bits). It is reached through JAX's private modules
(pinned in pyproject.toml); where they move, JAX's own lowering stays and a warning says so.
"""

import logging


def use_unrolled_threefry() -> bool:
  """Registers the unrolled threefry lowering for the CPU (registering again replaces it with
  itself); True when it is in place. Programs compiled afterwards use it."""
  try:
    from jax._src.interpreters import mlir  # private: no public switch exists
    from jax._src.random import threefry2x32
    mlir.register_lowering(threefry2x32.threefry2x32_p,
                           threefry2x32._threefry2x32_lowering_rule, platform="cpu")
  except (ImportError, AttributeError) as e:
    logging.warning("Keeping JAX's rolled threefry on the CPU (dropout about 5x slower "
                    "there): its private lowering moved in this JAX version (%s).", e)
    return False
  return True
