"""Every attention path (`model.attention`: XLA's, TPU splash attention interpreted, cuDNN's)
against the einsum reference: padded rows, packed rows (which must never attend across their
sequences) and sliding windows, outputs and gradients, in f32 and bf16. The cuDNN kernel needs an NVIDIA GPU; on other machines its case
is skipped with that reason (benchmarks/train_step.py measures it where one is present)."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.models import splash
from bertlab.models.config import ModelConfig
from bertlab.models.pretraining import PretrainingModel

BERT = ModelConfig(vocab_size=50, hidden_size=32, num_layers=2, num_heads=4,
                   intermediate_size=48, max_position_embeddings=64, dropout_rate=0.0,
                   attention_dropout_rate=0.0, initializer_range=0.2)
MODERN = dataclasses.replace(BERT, position_embedding="rotary", local_attention_window=4,
                             global_attention_every=2, norm_position="pre", feed_forward="glu",
                             type_vocab_size=0, use_pooler=False, heads=("mlm",))
RNG = np.random.default_rng(0)
IDS = jnp.asarray(RNG.integers(3, 50, (3, 16)))
PADDED = dict(attention_mask=jnp.asarray(np.arange(16)[None] < np.array([[16], [11], [5]]),
                                         jnp.int32))
# Three rows of packed sequences (1, 2, ...; 0 is padding).
SEQUENCES = jnp.array([[1] * 5 + [2] * 7 + [3] * 4, [1] * 9 + [2] * 5 + [0] * 2,
                       [1] * 16])
PACKED = dict(attention_mask=(SEQUENCES > 0).astype(jnp.int32), sequence_ids=SEQUENCES)
# Splash attention tiles rows in blocks of 128 tokens: the same rows, every run 8x as long.
LONG = 8
ROWS = {("padded", 1): (IDS, PADDED), ("packed", 1): (IDS, PACKED),
        ("padded", LONG): (jnp.repeat(IDS, LONG, 1), {k: jnp.repeat(v, LONG, 1)
                                                      for k, v in PADDED.items()}),
        ("packed", LONG): (jnp.repeat(IDS, LONG, 1), {k: jnp.repeat(v, LONG, 1)
                                                      for k, v in PACKED.items()})}
LONG_CONFIG = dict(max_position_embeddings=16 * LONG, local_attention_window=4 * LONG)


def _paths():
  on_gpu = any(d.platform == "gpu" for d in jax.devices())
  # splash is TPU's Pallas kernel, interpreted here (what a TPU compiles is the same kernel).
  return ["xla", "splash", pytest.param("cudnn", marks=pytest.mark.skipif(
      not on_gpu, reason="cuDNN's fused attention runs on NVIDIA GPUs only"))]


@functools.cache
def _outputs_and_grads(config, rows_name: str, length: int = 1):
  """(last hidden states, gradients) of a fixed loss; cached: each reference runs once."""
  ids, rows = ROWS[rows_name, length]
  model = PretrainingModel(config)
  params = nn.unbox(model.init(jax.random.key(0), ids)["params"])

  def run(p):
    out = model.apply({"params": p}, ids, **rows)
    hidden = out.last_hidden_state.astype(jnp.float32)
    weights = rows["attention_mask"][..., None].astype(jnp.float32)
    return jnp.sum(jnp.sin(hidden) * weights), hidden

  (_, hidden), grads = jax.jit(jax.value_and_grad(run, has_aux=True))(params)
  return np.asarray(hidden), jax.tree.map(lambda g: np.asarray(g, np.float32), grads)


def _errors(ours, theirs) -> dict:
  """Relative L2 error per tensor: the outputs on real tokens, then each parameter's gradient.
  A gradient that is zero in exact arithmetic (the key bias: softmax ignores a constant per
  query) is noise on every path, measured against a hundredth of the largest gradient."""
  error = lambda a, b, floor=0.0: np.linalg.norm(a - b) / max(np.linalg.norm(b), floor)
  errors = {"outputs": error(ours[0], theirs[0])}
  largest = max(np.linalg.norm(g) for g in jax.tree.leaves(theirs[1]))
  for (name, a), b in zip(jax.tree_util.tree_leaves_with_path(ours[1]),
                          jax.tree.leaves(theirs[1])):
    errors[jax.tree_util.keystr(name)] = error(a, b, 1e-2 * largest)
  return errors


def _cases():
  """Every path x backbone x rows x dtype; bf16 and interpreted splash (slow) beyond packed
  ModernBERT rows (windows, segments and padding at once) only with -m slow."""
  for path in _paths():
    name = getattr(path, "values", (path,))[0]
    marks = list(getattr(path, "marks", ()))
    for base, base_id in ((BERT, "bert"), (MODERN, "modernbert")):
      for rows in ("padded", "packed"):
        for dtype in ("float32", "bfloat16"):
          slow = dtype == "bfloat16" or (name == "splash" and (base_id, rows) != (
              "modernbert", "packed"))
          yield pytest.param(name, base, rows, dtype, id=f"{dtype}-{rows}-{base_id}-{name}",
                             marks=marks + ([pytest.mark.slow] if slow else []))


@pytest.mark.parametrize("path, base, rows, dtype", _cases())
def test_attention_path_equals_the_einsum_reference(path, base, rows, dtype):
  """f32: within 1e-5 of the einsum path. bf16: as close to the f32 reference as the einsum
  path in bf16 is (bf16 rounding alone moves this small network's gradients by 2-3%), and
  within 2e-2 on the outputs."""
  if path == "cudnn" and dtype == "float32":
    pytest.skip("cuDNN's fused attention takes bf16/fp16 only")
  length = LONG if path == "splash" else 1
  if length > 1:
    base = dataclasses.replace(base, **LONG_CONFIG)
  real = np.asarray(ROWS[rows, length][1]["attention_mask"], bool)
  run = lambda config: (lambda out: (out[0][real], out[1]))(
      _outputs_and_grads(config, rows, length))
  reference = run(base)
  fused = _errors(run(dataclasses.replace(base, dtype=dtype, attention=path)), reference)
  if dtype == "float32":
    assert max(fused.values()) <= 1e-5, fused
    return
  einsum = _errors(run(dataclasses.replace(base, dtype=dtype)), reference)
  assert fused["outputs"] <= 2e-2, fused["outputs"]
  for name, value in fused.items():
    assert value <= max(2e-2, 1.5 * einsum[name]), (name, value, einsum[name])


@pytest.mark.parametrize("path", ["xla", "splash"])
def test_a_packed_row_attends_only_within_its_sequences_on_the_fused_path(path):
  """Each packed sequence's outputs are those it has alone in a row (MaxText's cuDNN path was
  found attending across packed boundaries: this is the check that catches it)."""
  length = LONG if path == "splash" else 1
  config = dataclasses.replace(MODERN, attention=path,
                               **(LONG_CONFIG if length > 1 else {}))
  ids, rows = ROWS["packed", length]
  model = PretrainingModel(config)
  params = nn.unbox(model.init(jax.random.key(0), ids)["params"])
  packed = model.apply({"params": params}, ids, **rows).last_hidden_state
  row, starts = 0, tuple(length * s for s in (0, 5, 12, 16))
  for first, end in zip(starts, starts[1:]):
    # Alone in a padded row of the same length (splash tiles whole blocks).
    alone_ids = jnp.zeros((1, ids.shape[1]), ids.dtype).at[0, :end - first].set(
        ids[row, first:end])
    mask = (jnp.arange(ids.shape[1]) < end - first)[None].astype(jnp.int32)
    alone = model.apply({"params": params}, alone_ids, mask)
    alone = alone.replace(last_hidden_state=alone.last_hidden_state[:, :end - first])
    np.testing.assert_allclose(np.asarray(packed[row, first:end]),
                               np.asarray(alone.last_hidden_state[0]), atol=1e-5, rtol=1e-5)


def test_a_fused_path_refuses_attention_dropout_it_cannot_apply():
  with pytest.raises(ValueError, match="attention_dropout_rate=0.1.*set it to 0"):
    dataclasses.replace(BERT, attention="xla", attention_dropout_rate=0.1)


@pytest.mark.slow  # the interpreted kernel on 8 simulated devices: 2 minutes
def test_splash_attention_under_a_mesh_trains_as_the_einsum_path():
  """8 simulated devices (data 2 x fsdp 2 x tensor 2), packed BERT pairs: the kernel per
  device on its rows and heads gives the einsum path's losses and gradient norms."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             TF_CPP_MIN_LOG_LEVEL="3")
  helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splash_mesh_helper.py")
  out = subprocess.run([sys.executable, helper], env=env, capture_output=True, text=True,
                       check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["devices"] == 8
  einsum, splash = result["einsum"], result["splash"]
  assert einsum["after"] < einsum["before"]  # the steps moved the model
  for key in ("before", "after", "nsp"):
    assert splash[key] == pytest.approx(einsum[key], rel=1e-5), key
  np.testing.assert_allclose(splash["grad_norms"], einsum["grad_norms"], rtol=1e-4)


def test_splash_names_the_sequence_lengths_its_tiles_fit():
  assert [splash.block_size(n) for n in (128, 384, 512, 1024)] == [128, 128, 512, 512]
  with pytest.raises(ValueError, match="data.seq_len=100.*multiple of 128"):
    splash.block_size(100)
