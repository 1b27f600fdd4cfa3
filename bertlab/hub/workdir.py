"""bertlab's own pretraining workdirs as checkpoints: the saved config and the latest params.

A workdir holds `config.json` (written when pretraining starts) and `checkpoints/` (orbax).
ELECTRA's workdir gives its discriminator, with the shared embeddings put back in its
encoder: the model ELECTRA fine-tunes.
"""

import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp

from bertlab import files

CONFIG_FILE = "config.json"


def is_workdir(path: str) -> bool:
  return (files.isdir(os.path.join(path, "checkpoints"))
          and files.exists(os.path.join(path, CONFIG_FILE)))


def read_config(path: str) -> ml_collections.ConfigDict:
  with files.open_file(os.path.join(path, CONFIG_FILE)) as f:
    return ml_collections.ConfigDict(json.load(f))


def write_config(config, path: str):
  if jax.process_index() == 0:
    files.makedirs(path)
    with files.open_file(os.path.join(path, CONFIG_FILE), "w") as f:
      f.write(config.to_json(indent=2))


def latest_params(path: str) -> tuple[dict, int]:
  directory = os.path.join(files.absolute(path), "checkpoints")
  mngr = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(read_only=True),
      item_handlers=dict(state=ocp.StandardCheckpointHandler()))
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"{directory} holds no checkpoint: pretrain first.")
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  state = restored["state"]
  params = state["params"] if isinstance(state, dict) else state.params
  return params, step


def electra_discriminator_params(params: dict) -> dict:
  """The discriminator's own tree, with whatever it shares with the generator put back."""
  discriminator = dict(params["discriminator"])
  if "encoder" in params:  # tie_embeddings=all
    discriminator["encoder"] = params["encoder"]
  elif "embeddings" in params:  # tie_embeddings=embeddings
    discriminator["encoder"] = dict(discriminator["encoder"], embeddings=params["embeddings"])
  return discriminator


def load(path: str, dtype: str = "float32"):
  """(model, params) of a workdir's latest checkpoint."""
  from bertlab.configs import model_config
  from bertlab.models.pretraining import PretrainingModel
  config = read_config(path)
  params, _ = latest_params(path)
  if "electra" in config:
    params = electra_discriminator_params(params)
  model_cfg = model_config(config).replace(dtype=dtype)
  return PretrainingModel(model_cfg), params


def tokenizer(path: str):
  """The tokenizer the workdir pretrained with."""
  from bertlab.data.tokenizers import tokenizer_from_config
  config = read_config(path)
  return tokenizer_from_config(config.data, config.model.vocab_size)
