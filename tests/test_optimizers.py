"""The optimizer a config builds: BERT's schedule and weight-decay mask, LAMB, accumulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.train.optimizers import build_optimizer, decays, learning_rate_schedule
from conftest import load_config


def test_linear_warmup_then_linear_decay():
  train = load_config("bert.py:base").train
  train.update(learning_rate=1e-4, warmup_steps=100, steps=1100)
  schedule = learning_rate_schedule(train)
  assert float(schedule(0)) == 0
  assert float(schedule(50)) == pytest.approx(5e-5)
  assert float(schedule(100)) == pytest.approx(1e-4)
  assert float(schedule(600)) == pytest.approx(5e-5)
  assert float(schedule(1100)) == pytest.approx(0, abs=1e-12)


def test_no_weight_decay_on_layer_norm_and_biases():
  params = {"encoder": {"embeddings": {"LayerNorm": {"scale": 1, "bias": 1},
                                       "word_embeddings": {"embedding": 1}},
                        "layers": {"block": {"ffn": {"intermediate": {"kernel": 1, "bias": 1},
                                                     "LayerNorm": {"scale": 1}}}}}}
  mask = jax.tree_util.tree_map_with_path(lambda p, _: decays(p), params)
  assert mask["encoder"]["embeddings"] == {"LayerNorm": {"scale": False, "bias": False},
                                           "word_embeddings": {"embedding": True}}
  ffn = mask["encoder"]["layers"]["block"]["ffn"]
  assert ffn == {"intermediate": {"kernel": True, "bias": False}, "LayerNorm": {"scale": False}}


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_decay_applies_only_where_the_mask_says(name):
  train = load_config("albert.py:base").train
  train.update(optimizer=name, learning_rate=0.1, warmup_steps=0, steps=10, weight_decay=0.5,
               grad_clip=0.0)
  params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}}
  optimizer = build_optimizer(train)
  zero = jax.tree_util.tree_map(jnp.zeros_like, params)
  updates, _ = optimizer.update(zero, optimizer.init(params), params)
  assert np.all(np.asarray(updates["dense"]["kernel"]) < 0)  # decayed towards zero
  np.testing.assert_array_equal(updates["dense"]["bias"], 0)


def test_gradient_accumulation_applies_every_k_steps():
  train = load_config("bert.py:base").train
  train.update(grad_accum_steps=2, warmup_steps=0, steps=10, learning_rate=0.1)
  params = {"w": {"kernel": jnp.ones((3,))}}
  optimizer = build_optimizer(train)
  state = optimizer.init(params)
  grads = {"w": {"kernel": jnp.ones((3,))}}
  first, state = optimizer.update(grads, state, params)
  second, state = optimizer.update(grads, state, params)
  np.testing.assert_array_equal(first["w"]["kernel"], 0)
  assert np.all(np.asarray(second["w"]["kernel"]) < 0)


def test_unknown_optimizer_names_the_valid_ones():
  train = load_config("bert.py:base").train
  train.optimizer = "sgd"
  with pytest.raises(ValueError, match="valid: adamw, lamb"):
    build_optimizer(train)
