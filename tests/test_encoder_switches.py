"""The modern encoder's switches (pre-norm, RMSNorm, GLU, sliding windows, a first layer
without its attention norm) against their formulas, and the ground floor's promises kept on
them: scan = unrolled = remat, ALBERT's sharing as a gather, packed rows."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.models.block import FeedForward
from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import norm
from bertlab.models.encoder import attention_bias
from bertlab.models.pretraining import PretrainingModel
from bertlab.train.optimizers import decays

MODERN = ModelConfig(
    vocab_size=50, hidden_size=16, num_layers=6, num_heads=2, intermediate_size=24,
    max_position_embeddings=64, dropout_rate=0.0, attention_dropout_rate=0.0,
    position_embedding="rotary", rope_theta=1000.0, local_rope_theta=20.0,
    local_attention_window=4, global_attention_every=3, norm_position="pre", norm_bias=False,
    dense_bias=False, first_attention_norm=False, feed_forward="glu", type_vocab_size=0,
    use_pooler=False, heads=("mlm",), initializer_range=0.2)
RNG = np.random.default_rng(0)
IDS = jnp.asarray(RNG.integers(3, 50, (2, 14)))
MASK = jnp.asarray(np.arange(14)[None] < np.array([[14], [9]]), jnp.int32)


def init(config):
  model = PretrainingModel(config)
  return model, nn.unbox(model.init(jax.random.key(0), IDS)["params"])


def test_sliding_window_bias_equals_a_dense_mask_written_out():
  sequence_ids = jnp.array([[1] * 6 + [2] * 6 + [0] * 2])
  mask = (sequence_ids > 0).astype(jnp.int32)
  bias = np.asarray(attention_bias(mask, sequence_ids, window=6))[0, 0]
  ids, m = np.asarray(sequence_ids[0]), np.asarray(mask[0])
  for i in range(14):
    for j in range(14):
      allowed = m[j] and ids[i] == ids[j] and abs(i - j) <= 3
      assert (bias[i, j] == 0) == allowed, (i, j)


def test_local_layers_do_not_see_past_their_window():
  """Only layer 0 is global: a token's layer-0 input reaches tokens far away, but changing a
  token changes nothing beyond reach of the local layers when layer 0 sees nothing either."""
  config = MODERN.replace(num_layers=2, global_attention_every=2, local_attention_window=4)
  model, params = init(config)
  # Layer 0 global, layer 1 local (2 on either side). Give layer 0 nothing to carry: with
  # its attention's output zeroed, position 0 depends on tokens within 2 of it only.
  params["encoder"]["layers"]["block"]["attention"]["output"]["kernel"] = (
      params["encoder"]["layers"]["block"]["attention"]["output"]["kernel"].at[0].set(0.0))
  base = model.apply({"params": params}, IDS).last_hidden_state
  near = model.apply({"params": params}, IDS.at[:, 2].set(7)).last_hidden_state
  far = model.apply({"params": params}, IDS.at[:, 9].set(7)).last_hidden_state
  assert np.abs(np.asarray(near - base)[:, 0]).max() > 1e-4
  np.testing.assert_allclose(far[:, 0], base[:, 0], atol=1e-6)
  # Global everywhere, the far token is seen.
  dense = PretrainingModel(config.replace(local_attention_window=0))
  assert np.abs(np.asarray(dense.apply({"params": params}, IDS.at[:, 9].set(7))
                           .last_hidden_state - dense.apply({"params": params}, IDS)
                           .last_hidden_state)[:, 0]).max() > 1e-4


def test_rms_norm_and_layer_norm_without_bias_against_their_formulas():
  x = jnp.asarray(RNG.normal(size=(3, 16)) * 3 + 1, jnp.float32)
  scale = jnp.asarray(RNG.normal(size=16), jnp.float32)
  for kind, bias in (("rms_norm", False), ("layer_norm", False)):
    config = MODERN.replace(norm_kind=kind, norm_bias=bias, layer_norm_eps=1e-5)
    module = norm(config, "n")
    params = nn.unbox(module.init(jax.random.key(0), x))["params"]
    assert set(params) == {"scale"}
    got = module.apply({"params": {"scale": scale}}, x)
    centred = x if kind == "rms_norm" else x - x.mean(-1, keepdims=True)
    want = centred / jnp.sqrt(jnp.mean(centred ** 2, -1, keepdims=True) + 1e-5) * scale
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="rms_norm.*norm_bias=False"):
    MODERN.replace(norm_kind="rms_norm", norm_bias=True)


@pytest.mark.parametrize("act", ["gelu", "silu"])
def test_glu_feed_forward_against_its_formula(act):
  """GeGLU / SwiGLU, pre-norm: x + W_o(act(n(x) W) * (n(x) V))."""
  config = MODERN.replace(hidden_act=act, dense_bias=True)
  x = jnp.asarray(RNG.normal(size=(2, 5, 16)), jnp.float32)
  module = FeedForward(config)
  params = jax.tree.map(lambda p: p + jnp.asarray(RNG.normal(size=p.shape) * 0.1, p.dtype),
                        nn.unbox(module.init(jax.random.key(0), x))["params"])
  n = params["LayerNorm"]
  h = (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + config.layer_norm_eps)
  h = h * n["scale"]
  w, b = params["intermediate"]["kernel"], params["intermediate"]["bias"]  # [16, 2, 24], [2, 24]
  f = {"gelu": lambda v: jax.nn.gelu(v, approximate=False), "silu": jax.nn.silu}[act]
  inner = f(h @ w[:, 0] + b[0]) * (h @ w[:, 1] + b[1])
  want = x + inner @ params["output"]["kernel"] + params["output"]["bias"]
  np.testing.assert_allclose(module.apply({"params": params}, x), want, rtol=1e-5, atol=1e-5)


def test_first_layer_without_attention_norm_stores_no_copy_for_it():
  _, params = init(MODERN)
  block = params["encoder"]["layers"]["block"]
  assert block["attention_norm"]["scale"].shape == (MODERN.num_layers - 1, 16)
  assert block["ffn"]["LayerNorm"]["scale"].shape == (MODERN.num_layers, 16)
  assert "final_norm" in params["encoder"] and "bias" not in block["ffn"]["output"]
  _, with_norm = init(MODERN.replace(first_attention_norm=True))
  assert with_norm["encoder"]["layers"]["block"]["attention_norm"]["scale"].shape[0] == 6


@pytest.mark.parametrize("groups, sharing", [(None, "all"), (1, "all"), (2, "ffn"),
                                            (3, "attention")])
def test_unrolled_and_remat_match_scan_on_the_modern_backbone(groups, sharing):
  config = MODERN.replace(num_hidden_groups=groups, sharing=sharing)
  model, params = init(config)
  ref = model.apply({"params": params}, IDS, MASK)
  for variant in (config.replace(scan_layers=False), config.replace(remat_policy="full")):
    out = PretrainingModel(variant).apply({"params": params}, IDS, MASK)
    np.testing.assert_allclose(out.last_hidden_state, ref.last_hidden_state, atol=1e-5)


def test_all_shared_modern_layers_equal_unshared_layers_holding_one_copy():
  """ALBERT's sharing on alternating local/global layers: one stored copy, gathered for each
  layer, is the unshared stack with that copy repeated (the attention norm: 5 copies)."""
  shared_config = MODERN.replace(num_hidden_groups=1)
  shared, params = init(shared_config)
  block = params["encoder"]["layers"]["block"]
  assert block["attention"]["query"]["kernel"].shape[0] == 1
  assert block["attention_norm"]["scale"].shape[0] == 1
  unshared = PretrainingModel(MODERN)
  wide = jax.tree.map(lambda x: x, params)
  repeat = lambda tree, n: jax.tree.map(lambda p: jnp.repeat(p, n, axis=0), tree)
  wide_block = wide["encoder"]["layers"]["block"]
  for name in ("attention", "ffn"):
    wide_block[name] = repeat(block[name], 6)
  wide_block["attention_norm"] = repeat(block["attention_norm"], 5)
  np.testing.assert_allclose(shared.apply({"params": params}, IDS, MASK).mlm_logits,
                             unshared.apply({"params": wide}, IDS, MASK).mlm_logits,
                             rtol=1e-5, atol=1e-5)


def test_packed_rows_keep_their_outputs_with_sliding_windows():
  model, params = init(MODERN)
  a, b = [2, 5, 6, 7, 8, 9, 10, 3], [2, 11, 12, 13, 14, 15, 16, 17, 3]
  packed = jnp.array([a + b + [0] * 3])
  sequence_ids = jnp.array([[1] * 8 + [2] * 9 + [0] * 3])
  out = model.apply({"params": params}, packed, (sequence_ids > 0).astype(jnp.int32),
                    sequence_ids=sequence_ids).last_hidden_state
  for ids, where in ((a, slice(0, 8)), (b, slice(8, 17))):
    alone = jnp.array([ids + [0] * (20 - len(ids))])
    ref = model.apply({"params": params}, alone, (alone != 0).astype(jnp.int32))
    np.testing.assert_allclose(out[0, where], ref.last_hidden_state[0, :len(ids)], atol=2e-5)


def test_no_norm_parameter_is_decayed():
  _, params = init(MODERN.replace(norm_kind="rms_norm"))
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  decayed = {"/".join(k.key for k in path) for path, _ in flat if decays(path)}
  assert decayed and not any("norm" in name.lower() for name in decayed)
  assert "encoder/layers/block/attention/query/kernel" in decayed
