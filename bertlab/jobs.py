"""The model of any config, whatever its job: pretraining configs through
bertlab/models/build.py, fine-tuning ones with their task's head through
bertlab/tasks/finetuning.py. For the code that takes every kind of config (`--mode=summary`,
sweeps, tests); each training loop builds its own kind directly."""

import ml_collections

from bertlab.config_files import job_kind
from bertlab.models.build import pretraining_model
from bertlab.tasks.finetuning import finetuning_model


def build_model(config: ml_collections.ConfigDict):
  """The module a config describes: a pretraining model, or a fine-tuning one (from scratch;
  with `finetune.init_from`, the checkpoint's architecture replaces `model`)."""
  if job_kind(config) == "finetune":
    return finetuning_model(config)
  return pretraining_model(config)
