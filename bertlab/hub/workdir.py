"""bertlab's own pretraining workdirs as checkpoints: the saved config and the latest params.

A workdir holds `config.json` (written when pretraining starts) and `checkpoints/` (orbax).
ELECTRA's workdir gives its discriminator, with the shared embeddings put back in its
encoder: the model ELECTRA fine-tunes.
"""

import dataclasses
import json
import os
import shlex

import jax
import ml_collections
import orbax.checkpoint as ocp

from bertlab import config_files, console, files
from bertlab.config_files import job_kind
from bertlab.hub import tokenizer_files
from bertlab.models.config import ModelConfig
from bertlab.models.build import model_config
from bertlab.models.embeddings import longest_sequence
from bertlab.models.pretraining import PretrainingModel
from bertlab.train import checkpoints

CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
# A fine-tuning workdir's model as it was built (its architecture came from init_from), its
# head kind, label count and names.
FINETUNED_MODEL_FILE = "model.json"
# Every command line that trained in the workdir, one per line (the model card quotes them).
COMMANDS_FILE = "commands.txt"


def is_workdir(path: str) -> bool:
  return (files.isdir(os.path.join(path, "checkpoints"))
          and files.exists(os.path.join(path, CONFIG_FILE)))


def read_config(path: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(files.read_json(os.path.join(path, CONFIG_FILE)))


def write_config(config, path: str):
  """config.json, written beside the old one and swapped in, so a kill leaves one whole."""
  if jax.process_index() == 0:
    files.makedirs(path)
    files.write_whole(os.path.join(path, CONFIG_FILE), config.to_json(indent=2))


# Keys a resumed run may change: how long it goes on, how it logs, saves and is laid out on
# the devices, none of which changes what the steps compute.
RESUMABLE_CHANGES = ("train.steps", "train.epochs", "train.log_every", "train.checkpoint_every",
                     "train.keep_checkpoints", "train.eval_every", "train.eval_batches",
                     "train.eval_batch_size", "train.allow_config_change",
                     "model.remat_policy", "model.scan_layers", "mesh.")


def changed_keys(config, path: str) -> list[str]:
  """`key: stored -> new` for each key of the workdir's config.json that `config` changes and
  a resume may not (keys added to bertlab since the workdir was written are not compared)."""
  stored = json.loads(json.dumps(read_config(path).to_dict()))
  changes = config_files.differences(stored, json.loads(config.to_json()))
  return [f"{key}: {before!r} -> {after!r}" for key, (before, after) in changes.items()
          if before is not config_files.ABSENT and after is not config_files.ABSENT
          and not any(key == k or (k.endswith(".") and key.startswith(k))
                      for k in RESUMABLE_CHANGES)]


def check_resume_config(config, path: str) -> None:
  """Resuming with a config that trains something else would mix two runs in one workdir."""
  if not files.exists(os.path.join(path, CONFIG_FILE)):
    return
  changes = changed_keys(config, path)
  if changes and not config.train.get("allow_config_change", False):
    raise ValueError(
        f"{path} was trained with another config; resuming would continue those weights "
        "under the new one:\n  " + "\n  ".join(changes) + "\nUse a new --workdir, the "
        "config that wrote this one, or --config.train.allow_config_change=True to resume "
        "with the change on purpose.")


def latest_params(path: str) -> tuple[dict, int]:
  directory = os.path.join(files.absolute(path), "checkpoints")
  with console.expected_warnings_off():
    mngr = ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(read_only=True),
        # the data position is named too (and left unread), so orbax does not warn about it
        item_handlers=dict(state=ocp.StandardCheckpointHandler(),
                           data=ocp.JsonCheckpointHandler()))
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"{directory} holds no checkpoint: pretrain first.")
  target = checkpoints.on_this_host(mngr.item_metadata(step)["state"])
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  state = restored["state"]
  params = state["params"] if isinstance(state, dict) else state.params
  return params, step


def electra_discriminator_params(params: dict) -> dict:
  """The discriminator's own tree, with whatever it shares with the generator put back."""
  discriminator = dict(params["discriminator"])
  if "encoder" in params:  # tie_embeddings=all
    discriminator["encoder"] = params["encoder"]
  elif "discriminator_embeddings" in params:  # tie_embeddings=gdes: shared + residual tables
    own = params["discriminator_embeddings"]
    embeddings = {name: ({"embedding": params["embeddings"][name]["embedding"] + tree["embedding"]}
                         if "embedding" in tree else tree) for name, tree in own.items()}
    discriminator["encoder"] = dict(discriminator["encoder"], embeddings=embeddings)
  elif "embeddings" in params:  # tie_embeddings=embeddings
    discriminator["encoder"] = dict(discriminator["encoder"], embeddings=params["embeddings"])
  return discriminator


def electra_generator_params(params: dict) -> dict:
  """The generator's own tree, with whatever it shares with the discriminator put back (with
  gdes the shared tables are the generator's own: the residual is the discriminator's)."""
  generator = dict(params["generator"])
  if "encoder" in params:  # tie_embeddings=all
    generator["encoder"] = params["encoder"]
  elif "embeddings" in params:  # tie_embeddings=embeddings or gdes
    generator["encoder"] = dict(generator["encoder"], embeddings=params["embeddings"])
  return generator


def load(path: str, dtype: str = "float32"):
  """(model, params) of a workdir's latest checkpoint."""
  config = read_config(path)
  params, _ = latest_params(path)
  if job_kind(config) == "electra":
    params = electra_discriminator_params(params)
  model_cfg = model_config(config).replace(dtype=dtype)
  return PretrainingModel(model_cfg), params


def write_finetuned_model(path: str, model_config, head: str, num_labels: int,
                          labels: list[str] | None):
  if jax.process_index() == 0:
    record = dict(model=dataclasses.asdict(model_config), head=head, num_labels=num_labels,
                  labels=labels)
    files.write_whole(os.path.join(path, FINETUNED_MODEL_FILE), json.dumps(record, indent=2))


def read_finetuned_model(path: str) -> tuple:
  """(ModelConfig, head, num_labels, label names or None) of a fine-tuning workdir."""
  target = os.path.join(path, FINETUNED_MODEL_FILE)
  if not files.exists(target):
    raise FileNotFoundError(f"{target} is missing: the workdir was fine-tuned before bertlab "
                            "recorded its model; fine-tune it again to export it.")
  record = files.read_json(target)
  fields = {k: tuple(v) if isinstance(v, list) else v for k, v in record["model"].items()}
  return ModelConfig(**fields), record["head"], record["num_labels"], record["labels"]


def record_command(path: str, argv: list[str]):
  if jax.process_index() == 0:
    files.makedirs(path)
    files.append_text(os.path.join(path, COMMANDS_FILE),
                      "python -m bertlab.main " + shlex.join(argv) + "\n")


def commands(path: str) -> list[str]:
  target = os.path.join(path, COMMANDS_FILE)
  if not files.exists(target):
    return []
  with files.open_file(target) as f:
    return [line.rstrip("\n") for line in f if line.strip()]


def save_tokenizer(tokenizer, path: str, model_config):
  """The run's vocabulary in the workdir (`tokenizer/`, transformers' files), written once: a
  vocabulary trained on first use (data.vocab=default|corpus) is not the same twice, so the
  workdir keeps the one its model learnt."""
  target = os.path.join(path, TOKENIZER_DIR)
  if jax.process_index() == 0 and not files.exists(os.path.join(target, "tokenizer_config.json")):
    tokenizer_files.save_tokenizer(tokenizer, target + ".tmp",
                                   longest_sequence(model_config))
    if files.exists(target):
      files.rmtree(target)
    files.replace(target + ".tmp", target)


def _saved_tokenizer(path: str, data_config):
  from bertlab.data.tokenizers import load_tokenizer  # TensorFlow: see tokenizer() below
  saved = os.path.join(path, TOKENIZER_DIR)
  if not files.exists(os.path.join(saved, "tokenizer_config.json")):
    return None
  return load_tokenizer(saved, None, data_config.get("lower_case"),
                        data_config.get("word_boundary", "marker"))


def run_tokenizer(config, path: str):
  """The vocabulary a pretraining run in `path` goes on with, or None for the config's: where
  data.vocab is trained on first use (default, corpus), the one the workdir's model learnt,
  since training again gives other pieces (the HF trainers break count ties in hash-map
  order, huggingface/tokenizers#1794) and another machine's cache does not hold the first."""
  if config.data.vocab not in ("default", "corpus"):
    return None
  return _saved_tokenizer(path, config.data)


def tokenizer(path: str):
  """The tokenizer the workdir pretrained with: its `tokenizer/` files, or for a workdir
  written before bertlab kept them, the config's vocabulary."""
  # TensorFlow loads with these: `import bertlab` (which imports this module) stays free of
  # it, so a command's console.setup still comes first (bertlab/console.py).
  from bertlab.data.vocab import tokenizer_from_config
  config = read_config(path)
  saved = _saved_tokenizer(path, config.data)
  return saved or tokenizer_from_config(config.data, config.model.vocab_size)
