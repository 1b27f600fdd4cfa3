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
  with pytest.raises(ValueError, match="valid: adamw, lamb, bert_adamw, albert_lamb"):
    build_optimizer(train)


def _train(name, **kw):
  train = load_config("albert.py:base").train
  train.update(optimizer=name, learning_rate=0.01, warmup_steps=0, steps=100, weight_decay=0.1,
               grad_clip=0.0, **kw)
  return train


def _run(optimizer, params, grads_per_step):
  state = optimizer.init(params)
  for grads in grads_per_step:
    updates, state = optimizer.update(grads, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  return params


def _stacked_tree(rng, layers=3):
  return {"encoder": {"layers": {"block": {"ffn": {"intermediate": {
              "kernel": jnp.asarray(rng.normal(size=(layers, 4, 5)) * 10.0 ** np.arange(layers)[:, None, None], jnp.float32),
              "bias": jnp.asarray(rng.normal(size=(layers, 5)), jnp.float32)}}}}},
          "mlm": {"transform": {"kernel": jnp.asarray(rng.normal(size=(4, 4)), jnp.float32)}}}


def _unstack(tree, layers=3):
  """The same parameters with each layer's copy as its own tensor (the per-layer reference)."""
  inner = tree["encoder"]["layers"]["block"]["ffn"]["intermediate"]
  out = {f"layer_{i}": {"kernel": inner["kernel"][i], "bias": inner["bias"][i]}
         for i in range(layers)}
  return {**out, "mlm": tree["mlm"]}


@pytest.mark.parametrize("name", ["lamb", "albert_lamb"])
def test_lamb_trust_ratio_is_per_layer(name):
  """Layers whose weights differ in scale by 100x: each stored copy gets its own trust ratio,
  as LAMB's per-layer definition (You et al., 2020, Algorithm 2) with separate tensors."""
  rng = np.random.default_rng(0)
  params = _stacked_tree(rng)
  grads = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
           for _ in range(3)]
  ours = _run(build_optimizer(_train(name)), params, grads)
  reference = _run(build_optimizer(_train(name)), _unstack(params), [_unstack(g) for g in grads])
  for key, value in _unstack(ours).items():
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), value,
                 reference[key])
  # Not what a ratio over the stacked tensor gives: optax.lamb's whole-tensor norms.
  import optax
  whole = _run(optax.lamb(0.01, eps=1e-6, weight_decay=0.1), params, grads)
  kernel = lambda t: t["encoder"]["layers"]["block"]["ffn"]["intermediate"]["kernel"]
  assert not np.allclose(kernel(whole), kernel(ours), rtol=1e-3)


def _released_reference(params, grads, lr, wd, adapt, b1=0.9, b2=0.999, eps=1e-6):
  """google-research bert's AdamWeightDecayOptimizer (adapt=False) and albert's
  LAMBOptimizer (adapt=True), step by step in numpy: raw moments, no bias correction; the
  learning rate decays linearly from `lr` to 0 at step 100 (no warmup)."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  for step, g in enumerate(grads):
    rate = lr * (1 - step / 100)
    for k in p:
      gk = np.asarray(g[k], np.float64)
      m[k] = b1 * m[k] + (1 - b1) * gk
      v[k] = b2 * v[k] + (1 - b2) * gk ** 2
      update = m[k] / (np.sqrt(v[k]) + eps)
      excluded = k.endswith("bias") or "LayerNorm" in k
      if not excluded:
        update = update + wd * p[k]
      ratio = 1.0
      if adapt and not excluded:
        w_norm, u_norm = np.linalg.norm(p[k]), np.linalg.norm(update)
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
      p[k] = p[k] - ratio * rate * update
  return p


@pytest.mark.parametrize("name,adapt", [("bert_adamw", False), ("albert_lamb", True)])
def test_released_optimizers_match_the_released_update_rule(name, adapt):
  rng = np.random.default_rng(1)
  flat = {"dense/kernel": rng.normal(size=(4, 3)), "dense/bias": rng.normal(size=(3,)),
          "LayerNorm/scale": 1 + 0.1 * rng.normal(size=(3,))}
  tree = lambda d: {"dense": {"kernel": jnp.asarray(d["dense/kernel"], jnp.float32),
                              "bias": jnp.asarray(d["dense/bias"], jnp.float32)},
                    "LayerNorm": {"scale": jnp.asarray(d["LayerNorm/scale"], jnp.float32)}}
  grads = [{k: rng.normal(size=v.shape) for k, v in flat.items()} for _ in range(4)]
  ours = _run(build_optimizer(_train(name)), tree(flat), [tree(g) for g in grads])
  expected = tree(_released_reference(flat, grads, lr=0.01, wd=0.1, adapt=adapt))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), ours,
               expected)
