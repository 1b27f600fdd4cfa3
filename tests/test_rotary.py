"""Rotary positions: the same rotation as transformers' ModernBERT, and attention that sees
only offsets."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.models.config import ModelConfig
from bertlab.models.pretraining import PretrainingModel
from bertlab.models.rotary import rotary_tables, rotate

ROTARY = ModelConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                     intermediate_size=24, max_position_embeddings=20, dropout_rate=0.0,
                     attention_dropout_rate=0.0, position_embedding="rotary")


def test_rotation_matches_transformers_modernbert():
  torch = pytest.importorskip("torch")
  modernbert = pytest.importorskip("transformers.models.modernbert.modeling_modernbert")
  from transformers import ModernBertConfig
  hf_config = ModernBertConfig(hidden_size=32, num_attention_heads=2, global_rope_theta=500.0)
  rope = modernbert.ModernBertRotaryEmbedding(hf_config)
  layer = "full_attention"
  rng = np.random.default_rng(0)
  q, k = (rng.normal(size=(2, 7, 2, 16)).astype(np.float32) for _ in range(2))
  positions = np.array([np.arange(7), [0, 1, 2, 0, 1, 2, 3]])
  x = torch.tensor(q).transpose(1, 2)  # HF: [B, heads, T, D]
  cos, sin = rope(x, torch.tensor(positions), layer)
  hq, hk = modernbert.apply_rotary_pos_emb(x, torch.tensor(k).transpose(1, 2), cos, sin)
  ours = rotary_tables(jnp.asarray(positions), 16, rope_theta(hf_config, layer))
  np.testing.assert_allclose(rotate(q, *ours), hq.transpose(1, 2).numpy(), atol=1e-5)
  np.testing.assert_allclose(rotate(k, *ours), hk.transpose(1, 2).numpy(), atol=1e-5)


def rope_theta(hf_config, layer):
  params = hf_config.rope_parameters
  return (params[layer] if layer in params else params)["rope_theta"]


def test_rotated_scores_depend_only_on_the_offset():
  rng = np.random.default_rng(1)
  q, k = (jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32) for _ in range(2))

  def score(i, j):
    cq, sq = rotary_tables(jnp.array([[i]]), 8, 10000.0)
    ck, sk = rotary_tables(jnp.array([[j]]), 8, 10000.0)
    return float(jnp.sum(rotate(q, cq, sq) * rotate(k, ck, sk)))

  np.testing.assert_allclose([score(3, 1), score(12, 10), score(40, 38)], score(2, 0), rtol=1e-4)
  assert abs(score(5, 0) - score(2, 0)) > 1e-3


def test_rotary_encoder_has_no_position_parameters_and_sees_order():
  model = PretrainingModel(ROTARY.replace(initializer_range=0.5))  # sharp attention
  ids = jnp.array([[2, 5, 6, 7, 8, 3]])
  params = nn.unbox(model.init(jax.random.key(0), ids)["params"])
  assert "position_embeddings" not in params["encoder"]["embeddings"]
  out = model.apply({"params": params}, ids).last_hidden_state
  swapped = model.apply({"params": params}, ids[:, [0, 2, 1, 3, 4, 5]]).last_hidden_state
  # Without positions a swap would only permute the outputs; with them the outputs change.
  assert np.abs(out[0, 1] - swapped[0, 2]).max() > 1e-2
