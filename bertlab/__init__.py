"""bertlab: pretrain and fine-tune the BERT family in JAX/Flax from config files."""

from bertlab.hub import CheckpointMismatch, load_pretrained, save_pretrained
from bertlab.models.config import ModelConfig
from bertlab.models.pretraining import ElectraModel, PretrainingModel

__all__ = ["CheckpointMismatch", "ElectraModel", "ModelConfig", "PretrainingModel",
           "load_pretrained", "save_pretrained"]
