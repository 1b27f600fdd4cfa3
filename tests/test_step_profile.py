"""benchmarks/step_profile.py reads the profiler's trace of this jax version."""

import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from step_profile import op_kind, traced_op_seconds  # noqa: E402


def test_a_traced_call_is_split_into_matmul_and_zero_fill():
  fn = jax.jit(lambda a, b: (jnp.tanh(a @ b), jnp.zeros((16, 1024, 1024))))
  a = b = jnp.ones((512, 512))
  hlo = fn.lower(a, b).compile().as_text()
  jax.block_until_ready(fn(a, b))
  seconds = traced_op_seconds(lambda: jax.block_until_ready(fn(a, b)), hlo)
  assert seconds["matmul"] > 0 and seconds["zero fill"] > 0


def test_op_kinds_by_name():
  assert op_kind("ynn_fusion.3", "") == "matmul"
  assert op_kind("wrapped_broadcast.9", "") == "zero fill"
  assert op_kind("fusion.2", "jit(f)/while/body/dynamic_update_slice") == "dynamic slice"
  assert op_kind("transpose_copy_fusion.8", "") == "copy/transpose"
