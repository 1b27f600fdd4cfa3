"""The models a pretraining config describes, and their parameter shapes without allocating:
the one place a config's `model` (and ELECTRA's `electra`) section becomes a module."""

import jax
import jax.numpy as jnp
import ml_collections
from flax import traverse_util

from bertlab.config_files import job_kind
from bertlab.models.config import ModelConfig, from_config_dict
from bertlab.models.pretraining import ElectraModel, PretrainingModel


def model_config(config: ml_collections.ConfigDict) -> ModelConfig:
  return from_config_dict(config.model)


def generator_config(config: ml_collections.ConfigDict) -> ModelConfig:
  """ELECTRA's generator: the discriminator's depth and E, a smaller width (Section 3.2).

  `electra.generator_hidden_size` <= 1 is a fraction of the discriminator's hidden size, as
  in the paper's generator-size study; > 1 is the width itself. Heads are 64 wide (at least
  one). A fraction's width is rounded to the nearest that its heads divide, in pairs under
  rotary positions, which rotate pairs of a head's features: 1/3 of H=128 is 42, not an odd
  43; the paper's sizes (1/4 to 1 of 256, 768, 1024) divide already and do not move.
  """
  disc = model_config(config)
  size = config.electra.generator_hidden_size
  width = size * disc.hidden_size if size <= 1 else size
  heads = max(1, int(round(width)) // 64)
  hidden = int(round(width))
  if size <= 1:
    multiple = heads * (2 if disc.position_embedding == "rotary" else 1)
    hidden = max(multiple, int(round(width / multiple)) * multiple)
  return disc.replace(
      hidden_size=hidden, num_heads=heads, intermediate_size=4 * hidden,
      embedding_size=disc.embed_size, heads=("mlm",), use_pooler=False)


def pretraining_model(config: ml_collections.ConfigDict):
  """The module of a pretraining config: ELECTRA's generator + discriminator, or one
  encoder with the family's heads."""
  if job_kind(config) == "electra":
    discriminator = model_config(config)
    if config.electra.disc_mlm_weight and "mlm" not in discriminator.heads:
      raise ValueError(
          f"electra.disc_mlm_weight={config.electra.disc_mlm_weight} trains an MLM head on the "
          f"discriminator, whose model.heads are {discriminator.heads}: add it with "
          "--config.model.heads=\"('rtd', 'mlm')\", or set electra.disc_mlm_weight=0.")
    return ElectraModel(generator_config(config), discriminator,
                        config.electra.tie_embeddings)
  return PretrainingModel(model_config(config))


def abstract_params(model) -> dict:
  """Parameter shapes and logical axes, "/"-joined paths, without allocating anything."""
  ids = jnp.zeros((1, 2), jnp.int32)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), ids))
  return traverse_util.flatten_dict(variables["params"], sep="/")
