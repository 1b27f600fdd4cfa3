"""Behaviour of the one encoder: scan = unrolled, remat, sharing, positions, dtypes, heads."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.jobs import build_model
from bertlab.models.build import generator_config, model_config
from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import position_ids
from bertlab.models.heads import SequenceHead, SpanHead, TokenHead
from bertlab.models.pretraining import PretrainingModel
from conftest import load_config

SMALL = ModelConfig(vocab_size=50, hidden_size=16, num_layers=4, num_heads=2,
                    intermediate_size=24, max_position_embeddings=20, dropout_rate=0.0,
                    attention_dropout_rate=0.0)
IDS = jnp.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 0, 0, 0]])
MASK = (IDS != 0).astype(jnp.int32)


def init(config, seed=0):
  model = PretrainingModel(config)
  return model, nn.unbox(model.init(jax.random.key(seed), IDS)["params"])


@pytest.mark.parametrize("groups, sharing", [(None, "all"), (1, "all"), (2, "ffn"),
                                            (1, "attention"), (2, "none")])
def test_unrolled_and_remat_match_scan(groups, sharing):
  config = SMALL.replace(num_hidden_groups=groups, sharing=sharing)
  model, params = init(config)
  ref = model.apply({"params": params}, IDS, MASK)
  for variant in (config.replace(scan_layers=False), config.replace(remat_policy="full"),
                  config.replace(remat_policy="dots")):
    out = PretrainingModel(variant).apply({"params": params}, IDS, MASK)
    np.testing.assert_allclose(out.last_hidden_state, ref.last_hidden_state, atol=1e-6)
    assert len(out.hidden_states) == config.num_layers + 1


def test_sharing_stores_one_copy_per_group_and_sums_its_gradients():
  """ALBERT groups: 4 layers in 2 groups share a group's attention; ffn is per layer."""
  config = SMALL.replace(num_hidden_groups=2, sharing="attention")
  model, params = init(config)
  block = params["encoder"]["layers"]["block"]
  assert nn.unbox(block["attention"]["query"]["kernel"]).shape == (2, 16, 2, 8)
  assert nn.unbox(block["ffn"]["intermediate"]["kernel"]).shape == (4, 16, 24)

  # The same network written out layer by layer with the stored copies repeated: layer l
  # uses attention copy l // 2. Its gradients, summed per copy, are the shared gradients.
  unshared = SMALL.replace(num_hidden_groups=None, sharing="none")
  expand = lambda t: jax.tree.map(lambda p: jnp.repeat(p, 2, axis=0), t)
  wide = jax.tree.map(lambda x: x, params)
  wide["encoder"]["layers"]["block"]["attention"] = expand(block["attention"])
  loss = lambda m, p: jnp.sum(m.apply({"params": p}, IDS, MASK).last_hidden_state ** 2)
  np.testing.assert_allclose(loss(model, params), loss(PretrainingModel(unshared), wide),
                             rtol=1e-6)
  grads = jax.grad(lambda p: loss(model, p))(params)
  wide_grads = jax.grad(lambda p: loss(PretrainingModel(unshared), p))(wide)
  g = grads["encoder"]["layers"]["block"]["attention"]["query"]["kernel"]
  wg = wide_grads["encoder"]["layers"]["block"]["attention"]["query"]["kernel"]
  np.testing.assert_allclose(g, wg.reshape(2, 2, *wg.shape[1:]).sum(1), rtol=1e-5, atol=1e-6)


def test_roberta_positions_start_after_padding():
  config = SMALL.replace(positions_from_padding=True, pad_token_id=1)
  ids = jnp.array([[0, 5, 6, 2, 1, 1]])
  np.testing.assert_array_equal(position_ids(config, ids), [[2, 3, 4, 5, 1, 1]])


@pytest.mark.parametrize("variant", ["bert", "roberta", "sinusoidal", "rotary"])
def test_a_packed_row_gives_each_sequence_the_outputs_it_has_alone(variant):
  """doc_sentences packing: two inputs side by side in one row, each with its own positions
  and attention, give the hidden states and MLM logits each gives in a row of its own."""
  config = {"bert": SMALL, "sinusoidal": SMALL.replace(position_embedding="sinusoidal"),
            "rotary": SMALL.replace(position_embedding="rotary"),
            "roberta": SMALL.replace(positions_from_padding=True, pad_token_id=1)}[variant]
  pad = config.pad_token_id
  model, params = init(config)
  a, b = [2, 5, 6, 7, 3], [2, 8, 9, 10, 11, 12, 3]
  packed = jnp.array([a + b + [pad] * 3])
  sequence_ids = jnp.array([[1] * 5 + [2] * 7 + [0] * 3])
  types = jnp.array([[0] * 5 + [1] * 7 + [0] * 3])  # a token type per input survives packing
  out = model.apply({"params": params}, packed, (sequence_ids > 0).astype(jnp.int32), types,
                    sequence_ids=sequence_ids)
  for ids, kind, where in ((a, 0, slice(0, 5)), (b, 1, slice(5, 12))):
    alone = jnp.array([ids + [pad] * (15 - len(ids))])
    ref = model.apply({"params": params}, alone, (alone != pad).astype(jnp.int32),
                      jnp.full_like(alone, kind))
    for name in ("last_hidden_state", "mlm_logits"):
      np.testing.assert_allclose(getattr(out, name)[0, where],
                                 getattr(ref, name)[0, :len(ids)], atol=2e-5, err_msg=name)


def test_sinusoidal_positions_have_no_parameters_and_run():
  config = SMALL.replace(position_embedding="sinusoidal")
  model, params = init(config)
  assert "position_embeddings" not in params["encoder"]["embeddings"]
  assert model.apply({"params": params}, IDS, MASK).last_hidden_state.shape == (2, 6, 16)


def test_bf16_compute_keeps_f32_parameters():
  config = SMALL.replace(dtype="bfloat16")
  model, params = init(config)
  assert {p.dtype for p in jax.tree.leaves(nn.unbox(params))} == {jnp.dtype("float32")}
  out = model.apply({"params": params}, IDS, MASK)
  assert out.last_hidden_state.dtype == jnp.bfloat16
  ref = PretrainingModel(SMALL).apply({"params": params}, IDS, MASK)
  np.testing.assert_allclose(out.last_hidden_state.astype(jnp.float32), ref.last_hidden_state,
                             atol=0.1)


def test_every_parameter_has_logical_axes():
  for spec in ("bert.py:tiny", "albert.py:tiny", "electra.py:tiny", "spanbert.py:tiny"):
    model = build_model(load_config(spec))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), IDS))["params"]
    leaves = jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, nn.Partitioned))
    for leaf in leaves:
      assert isinstance(leaf, nn.Partitioned), (spec, leaf)
      assert len(leaf.names) == len(leaf.value.shape)


def test_dropout_is_off_by_default_and_on_when_asked():
  config = SMALL.replace(dropout_rate=0.5)
  model, params = init(config)
  a = model.apply({"params": params}, IDS, MASK).last_hidden_state
  b = model.apply({"params": params}, IDS, MASK).last_hidden_state
  np.testing.assert_array_equal(a, b)
  c = model.apply({"params": params}, IDS, MASK, deterministic=False,
                  rngs={"dropout": jax.random.key(1)}).last_hidden_state
  assert not np.allclose(a, c)


def test_mlm_on_masked_positions_equals_all_positions_gathered():
  model, params = init(SMALL)
  positions = jnp.array([[1, 4], [0, 2]])
  full = model.apply({"params": params}, IDS, MASK).mlm_logits
  picked = model.apply({"params": params}, IDS, MASK, masked_positions=positions).mlm_logits
  np.testing.assert_allclose(picked, jnp.take_along_axis(full, positions[..., None], 1),
                             atol=1e-6)


def test_electra_generator_and_discriminator_share_embeddings():
  config = load_config("electra.py:tiny")
  model = build_model(config)
  params = model.init(jax.random.key(0), IDS)["params"]
  assert set(params) == {"embeddings", "generator", "discriminator"}
  assert "embeddings" not in params["generator"]["encoder"]
  assert "embeddings" not in params["discriminator"]["encoder"]
  gen, disc = model.apply({"params": params}, IDS, MASK)
  assert gen.mlm_logits.shape == (2, 6, config.model.vocab_size)
  assert disc.rtd_logits.shape == (2, 6)
  assert generator_config(config).hidden_size == model_config(config).hidden_size // 2


@pytest.mark.parametrize("hidden,fraction,position,width,heads", [
    (256, 0.25, "learned", 64, 1), (768, 1 / 3, "learned", 256, 4), (1024, 0.25, "learned", 256, 4),
    (768, 0.3, "learned", 231, 3),  # 230.4: the nearest width 3 heads divide
    (128, 1 / 3, "learned", 43, 1), (128, 1 / 3, "rotary", 42, 1),  # rotary heads rotate pairs
    (768, 0.3, "rotary", 228, 3)])
def test_a_generator_fraction_gives_a_width_its_heads_divide(hidden, fraction, position, width,
                                                            heads):
  config = load_config("electra.py:tiny")
  config.model.update(hidden_size=hidden, num_heads=max(1, hidden // 64),
                      position_embedding=position)
  config.electra.generator_hidden_size = fraction
  generator = generator_config(config)
  assert (generator.hidden_size, generator.num_heads) == (width, heads)
  assert generator.hidden_size % (generator.num_heads * (1 + (position == "rotary"))) == 0


def test_span_boundary_head_predicts_every_slot_of_a_span():
  config = model_config(load_config("spanbert.py:tiny")).replace(vocab_size=50)
  model, params = init(config)
  bounds = jnp.array([[[0, 4]], [[1, 3]]])
  out = model.apply({"params": params}, IDS, MASK, span_bounds=bounds)
  assert out.sbo_logits.shape == (2, 1, config.max_span_length, 50)
  # Different boundary tokens give different predictions.
  other = model.apply({"params": params}, IDS, MASK, span_bounds=bounds.at[0, 0, 1].set(5))
  assert not np.allclose(out.sbo_logits[0], other.sbo_logits[0])


def test_finetuning_heads_shapes():
  model, params = init(SMALL)
  out = model.apply({"params": params}, IDS, MASK)
  for head, args, shape in [
      (SequenceHead(SMALL, 3), (out.last_hidden_state, out.pooled_output), (2, 3)),
      (SequenceHead(SMALL, 1), (out.last_hidden_state,), (2, 1)),
      (TokenHead(SMALL, 9), (out.last_hidden_state,), (2, 6, 9)),
  ]:
    variables = head.init(jax.random.key(0), *args)
    assert head.apply(variables, *args).shape == shape
  span = SpanHead(SMALL)
  start, end = span.apply(span.init(jax.random.key(0), out.last_hidden_state),
                          out.last_hidden_state)
  assert start.shape == end.shape == (2, 6)


def test_span_boundary_head_per_masked_token_equals_its_slot_of_the_span_form():
  config = model_config(load_config("spanbert.py:tiny")).replace(vocab_size=50)
  model = PretrainingModel(config)
  bounds = jnp.array([[[0, 5], [2, 7]]] * 2)
  params = model.init(jax.random.key(0), IDS, MASK, span_bounds=bounds)["params"]
  slots_form = model.apply({"params": params}, IDS, MASK, span_bounds=bounds).sbo_logits
  slots = jnp.array([[3, 1]] * 2)
  per_token = model.apply({"params": params}, IDS, MASK, span_bounds=bounds,
                          span_slots=slots).sbo_logits
  assert per_token.shape == (2, 2, 50)
  np.testing.assert_allclose(per_token[:, 0], slots_form[:, 0, 3], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(per_token[:, 1], slots_form[:, 1, 1], rtol=1e-5, atol=1e-5)
