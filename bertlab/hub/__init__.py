"""load_pretrained / save_pretrained: Hugging Face directories, original TF checkpoints and
bertlab workdirs, behind one face. Each format has its own module: hf_checkpoints.py (and
layouts.py, its table), tf_checkpoints.py, workdir.py.

Every weight of the checkpoint must land in the model and every parameter of the model must
come from the checkpoint: unknown, missing or mis-shaped weights raise `CheckpointMismatch`
naming them, so nothing is silently left at its initial value.
"""

from bertlab.hub import hf_checkpoints, tf_checkpoints, workdir
from bertlab.hub.hf_checkpoints import (CheckpointMismatch, from_hf_tensors,
                                        params_from_tensors, save_finetuned, save_pretrained,
                                        tensors_from_params)

__all__ = ["CheckpointMismatch", "from_hf_tensors", "load_pretrained", "params_from_tensors",
           "save_finetuned", "save_pretrained", "tensors_from_params"]


def load_pretrained(path: str, dtype: str = "float32"):
  """(model, params) from a Hugging Face directory, an original TF checkpoint or a bertlab
  pretraining workdir (its latest checkpoint).

  The heads come from the checkpoint: a BertForPreTraining file gives mlm + NSP, an
  ElectraForPreTraining file the RTD head, an ElectraForMaskedLM file the generator's mlm.
  """
  if workdir.is_workdir(path):
    return workdir.load(path, dtype)
  if tf_checkpoints.is_tf_checkpoint(path):
    return tf_checkpoints.load(path, dtype)
  return hf_checkpoints.load(path, dtype)
