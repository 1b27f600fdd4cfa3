"""FLOPs for MFU: the model's, counted from its config, and the device's peak.

`step_flops(config)` is the matmul FLOPs of one training step of the model as configured (2
per multiply-add; backward twice the forward, PaLM's appendix B): the E -> H projection, every
layer's projections, attention at the data's sequence length and feed-forward (three matrices
for a gated unit), and the heads as they run: the MLM head on the `max_predictions` slots only,
SBO on the same slots, the pooler and NSP/SOP classifier once per row, RTD on every token, and
ELECTRA's generator beside its discriminator. Sharing layers (ALBERT) does not change it: each
layer is applied all the same. A sliding window (ModernBERT's local layers) saves nothing on
the dense attention paths, so local layers count the full length too. Lookups, norms,
activations and softmax are left out, as MFU conventionally leaves them.

`dot_flops(fn, *args)` counts the same thing from the traced program instead (every
dot_general of its jaxpr, scans times their length): the independent count that
benchmarks/accelerator.py prints and tests/test_flops.py holds the model's count to.
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from bertlab.config_files import job_kind
from bertlab.models.build import generator_config, model_config
from bertlab.models.config import ModelConfig

# Peak dense bf16 FLOP/s per device, by jax's device_kind. CPUs: the measured f32 matmul roof.
PEAK_FLOPS = {
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12,
    "TPU v6 lite": 918e12, "NVIDIA A100-SXM4-80GB": 312e12, "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100": 989e12, "NVIDIA H200": 989e12,
}


def encoder_flops(model: ModelConfig, seq_len: int) -> float:
  """Forward matmul FLOPs of one sequence through the encoder (no heads)."""
  h, t, width = model.hidden_size, seq_len, model.num_heads * model.head_dim
  macs = t * model.embed_size * h if model.embed_size != h else 0
  projections = 4 * h * width  # query, key, value and output
  attention = 2 * t * width  # scores and the weighted sum, per token
  feed_forward = (3 if model.feed_forward == "glu" else 2) * h * model.intermediate_size
  macs += model.num_layers * t * (projections + attention + feed_forward)
  return 2.0 * macs


def heads_flops(model: ModelConfig, seq_len: int, predictions: int) -> float:
  """Forward matmul FLOPs of one sequence's pretraining heads."""
  h, e, v = model.hidden_size, model.embed_size, model.vocab_size
  macs = 0
  if "mlm" in model.heads:
    macs += predictions * (h * e + e * v)  # transform into E, then the tied decoder
  if "sbo" in model.heads:
    macs += predictions * (3 * h * h + h * e + e * v)  # [left, right, slot] -> H -> E -> V
  if "sentence" in model.heads and model.use_pooler:
    macs += h * h + h * 2
  if "rtd" in model.heads:
    macs += seq_len * (h * h + h)
  return 2.0 * macs


def forward_flops(config) -> float:
  """Forward matmul FLOPs of one sequence for the job `config` describes."""
  seq_len, predictions = config.data.seq_len, config.data.max_predictions
  parts = [model_config(config)]  # an MLM + RTD discriminator has both in model.heads
  if job_kind(config) == "electra":
    parts.insert(0, generator_config(config))
  return sum(encoder_flops(m, seq_len) + heads_flops(m, seq_len, predictions) for m in parts)


def step_flops(config) -> float:
  """Training FLOPs of one step of the global batch: forward and backward (3x forward)."""
  return 3.0 * forward_flops(config) * config.train.batch_size


def dot_flops(fn, *args) -> float:
  """The dot_general FLOPs of `fn(*args)` as traced (2 per multiply-add), through jit, remat,
  custom derivatives, scans (times their length) and conds (the costliest branch)."""
  return _jaxpr_dot_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _jaxpr_dot_flops(jaxpr) -> float:
  total = 0.0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs, out = eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape
      total += 2.0 * np.prod(out, dtype=np.float64) * np.prod(
          [lhs[d] for d in contract], dtype=np.float64)
      continue
    inner = [_jaxpr_dot_flops(j) for j in _sub_jaxprs(eqn.params)]
    if not inner:
      continue
    if eqn.primitive.name == "cond":
      total += max(inner)
    elif eqn.primitive.name == "while":
      raise ValueError("dot_flops cannot count a while loop: its trip count is unknown.")
    else:
      total += sum(inner) * eqn.params.get("length", 1)
  return total


def _sub_jaxprs(params):
  for value in params.values():
    for item in value if isinstance(value, (tuple, list)) else (value,):
      if isinstance(item, jax.extend.core.ClosedJaxpr):
        yield item.jaxpr
      elif isinstance(item, jax.extend.core.Jaxpr):
        yield item


def peak_flops() -> float | None:
  """One device's peak FLOP/s: the table's for accelerators, the measured matmul roof shared
  among the host's devices on a CPU; None for an accelerator the table does not list."""
  device = jax.devices()[0]
  if device.platform == "cpu":
    return cpu_matmul_roof() / jax.local_device_count()
  return next((v for k, v in PEAK_FLOPS.items() if device.device_kind.startswith(k)), None)


@functools.lru_cache(maxsize=None)
def cpu_matmul_roof(size: int = 1024, repeats: int = 5) -> float:
  """The best f32 FLOP/s of a size x size matmul on this host (measured once per process)."""
  a = jnp.ones((size, size), jnp.float32)
  matmul = jax.jit(lambda x: x @ x, device=jax.devices("cpu")[0])
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2.0 * size ** 3 / best
