"""The fused threefry on the CPU draws exactly JAX's own bits, in one kernel."""

import io
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from bertlab.train import cpu_random

# Draws a step of training makes: dropout masks (Bernoulli), raw bits, uniform and Gumbel
# noise (ELECTRA's sampler), split and folded keys, typed and raw keys.
DRAWS = """
import jax, jax.numpy as jnp, numpy as np
key = jax.random.fold_in(jax.random.key(7), 3)
a, b = jax.random.split(key)
draws = jax.jit(lambda a, b: (jax.random.bernoulli(a, 0.9, (13, 2, 64, 63)),
                              jax.random.bits(b, (1001,), jnp.uint32),
                              jax.random.uniform(a, (5, 7)),
                              jax.random.gumbel(b, (3, 4096)),
                              jax.random.randint(jax.random.PRNGKey(1), (9,), 0, 100)))(a, b)
"""


def test_the_fused_lowering_draws_the_bits_jax_draws_by_default():
  reference = subprocess.run(
      [sys.executable, "-c", DRAWS + "np.savez(__import__('sys').stdout.buffer, *draws)"],
      capture_output=True, check=True).stdout
  expected = np.load(io.BytesIO(reference))
  assert cpu_random.use_unrolled_threefry()
  scope = {}
  exec(DRAWS, scope)
  for i, got in enumerate(scope["draws"]):
    np.testing.assert_array_equal(np.asarray(got), expected[f"arr_{i}"])


def test_after_it_a_draw_compiles_without_a_loop():
  assert cpu_random.use_unrolled_threefry()
  hlo = jax.jit(lambda k: jax.random.bits(k, (4096,), jnp.uint32)).lower(
      jax.random.key(0)).compile().as_text()
  assert " while(" not in hlo, "threefry still lowers as a rolled loop on the CPU"
