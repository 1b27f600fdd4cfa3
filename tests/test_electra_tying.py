"""ELECTRA's weight tying (Section 3.2): none, embeddings, all; and the discriminator that a
workdir of each gives back."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from bertlab import config_files
from bertlab.jobs import build_model
from bertlab.models.build import model_config
from bertlab.hub.workdir import electra_discriminator_params
from bertlab.models.pretraining import PretrainingModel
from bertlab.summary import count_params


def electra(tie: str, fraction: float):
  config = config_files.apply_overrides(config_files.load("configs/electra.py:tiny"), {
      "electra.tie_embeddings": tie, "electra.generator_hidden_size": fraction})
  return config, build_model(config)


def init(model):
  ids = jnp.array([[2, 17, 40, 3, 0, 0], [2, 9, 11, 12, 13, 3]])
  params = model.init(jax.random.key(0), ids, (ids > 0).astype(jnp.int32))["params"]
  return ids, nn.unbox(params)


def paths(params) -> set[str]:
  return set(traverse_util.flatten_dict(params, sep="/"))


def test_tying_decides_which_weights_exist():
  _, none = init(electra("none", 0.5)[1])
  _, embeddings = init(electra("embeddings", 0.5)[1])
  _, tied = init(electra("all", 1.0)[1])
  assert any(p.startswith("generator/encoder/embeddings/") for p in paths(none))
  assert any(p.startswith("discriminator/encoder/embeddings/") for p in paths(none))
  assert not any("encoder/embeddings" in p for p in paths(embeddings))
  assert set(embeddings) == {"embeddings", "generator", "discriminator"}
  assert set(tied) == {"encoder", "generator", "discriminator"}
  assert set(tied["generator"]) == {"mlm"} and set(tied["discriminator"]) == {"rtd"}
  # Untying adds exactly the generator's own embedding module.
  own = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(none["generator"]["encoder"]["embeddings"]))
  assert count_params(electra("none", 0.5)[1])[1] - count_params(
      electra("embeddings", 0.5)[1])[1] == own


def test_tie_all_runs_both_halves_on_one_encoder():
  config, model = electra("all", 1.0)
  ids, params = init(model)
  mask = (ids > 0).astype(jnp.int32)
  gen = model.apply({"params": params}, ids, mask, method="generate")
  disc = model.apply({"params": params}, ids, mask, method="discriminate")
  np.testing.assert_allclose(gen.last_hidden_state, disc.last_hidden_state, rtol=1e-6)


def test_tie_all_needs_equal_sizes():
  with pytest.raises(ValueError, match="generator_hidden_size=1.0"):
    init(electra("all", 0.5)[1])


@pytest.mark.parametrize("tie, fraction", [("none", 0.5), ("embeddings", 0.5), ("all", 1.0),
                                           ("gdes", 0.5)])
def test_workdir_gives_the_discriminator(tie, fraction):
  config, model = electra(tie, fraction)
  ids, params = init(model)
  mask = (ids > 0).astype(jnp.int32)
  if tie == "gdes":  # residual tables away from their zero init
    params = jax.tree.map(lambda x: x, params)
    params["discriminator_embeddings"] = jax.tree.map(
        lambda x: x + 0.1 * jax.random.normal(jax.random.key(1), x.shape),
        params["discriminator_embeddings"])
  expected = model.apply({"params": params}, ids, mask, method="discriminate").rtd_logits
  alone = PretrainingModel(model_config(config))
  got = alone.apply({"params": electra_discriminator_params(params)}, ids, mask).rtd_logits
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_gdes_keeps_the_discriminator_loss_off_the_generator_tables():
  """DeBERTa-v3's GDES: the discriminator sees stop_gradient(generator tables) + its own
  residual (zero at init, so it starts from the generator's embeddings); the replaced-token
  loss reaches the residual only, the generator's MLM loss the shared tables."""
  _, model = electra("gdes", 0.5)
  ids, params = init(model)
  mask = (ids > 0).astype(jnp.int32)
  assert set(params) == {"embeddings", "discriminator_embeddings", "generator", "discriminator"}
  residual = params["discriminator_embeddings"]
  assert not any(np.any(np.asarray(residual[name]["embedding"]))
                 for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"))
  _, embeddings_tied = electra("embeddings", 0.5)
  same = {k: v for k, v in params.items() if k != "discriminator_embeddings"}
  same["discriminator"] = dict(params["discriminator"])
  same["discriminator"]["encoder"] = dict(same["discriminator"]["encoder"])
  # At init (residual 0, both LayerNorms at 1 and 0) the discriminator is the tied one.
  np.testing.assert_allclose(
      model.apply({"params": params}, ids, mask, method="discriminate").rtd_logits,
      embeddings_tied.apply({"params": same}, ids, mask, method="discriminate").rtd_logits,
      rtol=1e-6)

  def disc_loss(p):
    return jnp.sum(model.apply({"params": p}, ids, mask, method="discriminate").rtd_logits ** 2)

  def gen_loss(p):
    return jnp.sum(model.apply({"params": p}, ids, mask, method="generate").mlm_logits ** 2)

  disc_grads, gen_grads = jax.grad(disc_loss)(params), jax.grad(gen_loss)(params)
  shared = lambda g: g["embeddings"]["word_embeddings"]["embedding"]
  own = lambda g: g["discriminator_embeddings"]["word_embeddings"]["embedding"]
  assert not np.any(np.asarray(shared(disc_grads)))
  assert np.abs(np.asarray(own(disc_grads))).max() > 0
  assert np.abs(np.asarray(shared(gen_grads))).max() > 0
  assert not np.any(np.asarray(own(gen_grads)))


def test_mlm_plus_rtd_discriminator_trains_both_losses_on_one_model(tmp_path):
  from bertlab.train.metrics import read_metrics
  from bertlab.train.trainer import train_and_evaluate
  config = config_files.apply_overrides(config_files.load("configs/electra.py:tiny"), {
      "electra.disc_mlm_weight": 1.0, "model.heads": ("rtd", "mlm"), "train.steps": 4,
      "train.log_every": 2, "train.checkpoint_every": 4})
  train_and_evaluate(config, str(tmp_path))
  rows = [r for r in read_metrics(str(tmp_path)) if not r.get("eval")]
  assert {"disc_mlm_accuracy", "disc_mlm_loss", "rtd_loss", "mlm_loss"} <= set(rows[-1])
  assert np.isfinite(rows[-1]["loss"])
  # The loss is the sum: generator MLM + 50 x RTD + 1 x the discriminator's MLM.
  assert rows[-1]["loss"] == pytest.approx(
      rows[-1]["mlm_loss"] + 50 * rows[-1]["rtd_loss"] + rows[-1]["disc_mlm_loss"], rel=1e-4)
  without_head = config_files.apply_overrides(config_files.load("configs/electra.py:tiny"),
                                              {"electra.disc_mlm_weight": 1.0})
  with pytest.raises(ValueError, match="add it with --config.model.heads"):
    build_model(without_head)
