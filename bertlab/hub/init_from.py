"""`finetune.init_from`: the pretrained model, its vocabulary and architecture that a
fine-tuning run starts from (a bertlab workdir, a Hugging Face directory or a TF checkpoint),
and its encoder put into the fresh fine-tuning model."""

import os

import flax
import jax.numpy as jnp
import numpy as np

from bertlab.data import tokenizers
from bertlab.data.vocab import tokenizer_from_config
from bertlab.hub import load_pretrained, workdir as hub_workdir
from bertlab.models.build import model_config
from bertlab.models.config import ModelConfig
from bertlab.train import checkpoints


def load_with_tokenizer(path: str, vocab: str = "default", lower_case: bool | None = None):
  """(model, params, tokenizer) of a checkpoint: a bertlab workdir, a Hugging Face directory
  or a TF checkpoint, with its own vocabulary unless `vocab` names one."""
  model, params = load_pretrained(path)
  if vocab != "default":
    tokenizer = tokenizers.load_tokenizer(vocab, None, lower_case)
  elif hub_workdir.is_workdir(path):
    tokenizer = hub_workdir.tokenizer(path)
  else:
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    try:
      tokenizer = tokenizers.load_tokenizer(folder, None, lower_case)
    except (FileNotFoundError, ValueError) as error:
      raise FileNotFoundError(f"{path} has no vocabulary bertlab can read ({error}). Set "
                              "data.vocab to the directory of the checkpoint's vocab.txt, "
                              "spiece.model or vocab.json + merges.txt.") from None
  if tokenizer.vocab_size > model.config.vocab_size:
    raise ValueError(f"The tokenizer has {tokenizer.vocab_size} pieces but the checkpoint's "
                     f"vocab_size is {model.config.vocab_size}: they do not belong together.")
  return model, params, tokenizer


# ModelConfig fields a fine-tuning run sets over its checkpoint's: how, not what, to compute.
# (The checkpoint's remat_policy stays: a model pretrained with it may need it to fit.)
RUN_SETTINGS = ("dtype", "dropout_rate", "attention_dropout_rate", "scan_layers")


def resolve_init(config) -> tuple[ModelConfig, dict | None, object]:
  """(model config, pretrained encoder params or None, tokenizer) per `finetune.init_from`.

  A checkpoint brings its own architecture and vocabulary; `data.vocab` overrides the
  vocabulary (for a checkpoint directory that holds none). The run's `model` section still
  says how to compute it (dtype, dropout, scanned or unrolled layers), none of which changes
  a parameter. From scratch, `model` and `data` of the config say both."""
  init_from = config.finetune.init_from
  if not init_from:
    cfg = model_config(config)
    return cfg, None, tokenizer_from_config(config.data, cfg.vocab_size)
  model, params, tokenizer = load_with_tokenizer(init_from, config.data.vocab,
                                                 config.data.get("lower_case"))
  cfg = model.config.replace(
      **{name: config.model[name] for name in RUN_SETTINGS if name in config.model})
  return cfg, params["encoder"], tokenizer


def fit_encoder(fresh: dict, pretrained: dict) -> dict:
  """The pretrained encoder's parameters in place of the fresh ones, or an error naming every
  mismatched shape."""
  fresh_flat = flax.traverse_util.flatten_dict(fresh, sep="/")
  pretrained_flat = flax.traverse_util.flatten_dict(pretrained, sep="/")
  problems = checkpoints.shape_problems({k: v.shape for k, v in fresh_flat.items()},
                                        {k: np.shape(v) for k, v in pretrained_flat.items()})
  if problems:
    raise ValueError("The pretrained encoder does not fit the fine-tuning model:\n"
                     + checkpoints.listing(problems))
  return flax.traverse_util.unflatten_dict(
      {k: jnp.asarray(pretrained_flat[k], v.dtype) for k, v in fresh_flat.items()}, sep="/")
