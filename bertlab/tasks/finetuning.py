"""Fine-tuning's jobs: the task registry (GLUE, SQuAD, NER), the head each task needs, its
loss, and the fine-tuning model of a config. bertlab/train/finetuner.py runs them."""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from bertlab.models.build import model_config
from bertlab.models.config import ModelConfig
from bertlab.models.finetuning import FinetuningModel
from bertlab.tasks.glue import GlueJob, get_task
from bertlab.tasks.ner import NerJob
from bertlab.tasks.squad import SquadJob

TASKS = ("glue", "squad", "ner")


def build_job(config, tokenizer, model_config: ModelConfig):
  task, name = config.finetune.task, config.finetune.name
  if task == "glue":
    return GlueJob(name, config.data, tokenizer, model_config.type_vocab_size)
  if task == "squad":
    return SquadJob(name, config.data, tokenizer, model_config.type_vocab_size,
                    config.get("squad"))
  if task == "ner":
    return NerJob(config.data, tokenizer, tuple(config.finetune.labels))
  raise ValueError(f"Unknown finetune.task {task!r}; valid: {', '.join(TASKS)}.")


def finetune_head(config: ml_collections.ConfigDict) -> tuple[str, int]:
  """(head kind, labels) of a fine-tuning config's task, without reading its data."""
  task, name = config.finetune.task, config.finetune.name
  if task == "glue":
    labels = get_task(name).labels
    return ("regression", 1) if labels is None else ("classification", len(labels))
  if task == "squad":
    return "span", 2
  return "token", len(config.finetune.labels)


def finetuning_model(config: ml_collections.ConfigDict) -> FinetuningModel:
  """The model of a fine-tuning config from scratch (with `finetune.init_from` the
  checkpoint's architecture replaces `model`: bertlab/hub/init_from.py)."""
  head, labels = finetune_head(config)
  return FinetuningModel(model_config(config), head, labels,
                         bool(config.finetune.freeze_encoder))


def task_loss(head: str, outputs, batch) -> tuple[jax.Array, dict]:
  """The head's loss, averaged over real rows (padding rows carry example_weight 0)."""
  weight = batch["example_weight"]
  total = jnp.maximum(weight.sum(), 1.0)
  if head == "classification":
    losses = optax.softmax_cross_entropy_with_integer_labels(outputs.astype(jnp.float32),
                                                            batch["labels"])
    correct = (outputs.argmax(-1) == batch["labels"]) * weight
    return (losses * weight).sum() / total, {"train_accuracy": correct.sum() / total}
  if head == "regression":
    losses = (outputs.astype(jnp.float32) - batch["labels"]) ** 2
    return (losses * weight).sum() / total, {}
  if head == "span":
    start, end = (o.astype(jnp.float32) for o in outputs)
    losses = (optax.softmax_cross_entropy_with_integer_labels(start, batch["start_positions"])
              + optax.softmax_cross_entropy_with_integer_labels(end, batch["end_positions"])) / 2
    return (losses * weight).sum() / total, {}
  tokens = batch["label_weights"] * weight[:, None]
  losses = optax.softmax_cross_entropy_with_integer_labels(outputs.astype(jnp.float32),
                                                          batch["label_ids"])
  count = jnp.maximum(tokens.sum(), 1.0)
  correct = (outputs.argmax(-1) == batch["label_ids"]) * tokens
  return (losses * tokens).sum() / count, {"train_accuracy": correct.sum() / count}
