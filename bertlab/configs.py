"""Helpers shared by the config files in configs/ and the code that reads them."""

import ml_collections

from bertlab.models.config import ModelConfig, from_config_dict, unknown_key_error
from bertlab.models.pretraining import ElectraModel, PretrainingModel


def parse_arg(arg: str | None, sizes: dict, default: str) -> tuple[str, dict]:
  """`"base"` or `"size=base"` -> ("base", sizes["base"]), naming the valid sizes if not."""
  size = default
  for part in filter(None, (arg or "").split(",")):
    key, _, value = part.rpartition("=")
    if key not in ("", "size"):
      raise unknown_key_error(key, ("size",), "config argument ")
    size = value
  if size not in sizes:
    raise ValueError(f"Unknown size {size!r}; valid sizes: {', '.join(sizes)}.")
  return size, dict(sizes[size])


def base_config(model: dict) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict(model)
  # Layer sharing and heads are read with types that ml_collections cannot infer from None.
  for key in ("embedding_size", "num_hidden_groups", "remat_policy"):
    if key not in config.model:
      config.model[key] = ml_collections.config_dict.placeholder(
          str if key == "remat_policy" else int)
  return config


def model_config(config: ml_collections.ConfigDict) -> ModelConfig:
  return from_config_dict(config.model)


def generator_config(config: ml_collections.ConfigDict) -> ModelConfig:
  """ELECTRA's generator: the discriminator's depth and E, a smaller width (Section 3.2).

  `electra.generator_hidden_size` <= 1 is a fraction of the discriminator's hidden size, as
  in the paper's generator-size study; > 1 is the width itself. Heads are 64 wide.
  """
  disc = model_config(config)
  size = config.electra.generator_hidden_size
  hidden = int(round(size * disc.hidden_size)) if size <= 1 else int(size)
  return disc.replace(
      hidden_size=hidden, num_heads=max(1, hidden // 64), intermediate_size=4 * hidden,
      embedding_size=disc.embed_size, heads=("mlm",), use_pooler=False)


def build_model(config: ml_collections.ConfigDict):
  """The pretraining module a config describes."""
  if "electra" in config:
    return ElectraModel(generator_config(config), model_config(config))
  return PretrainingModel(model_config(config))
