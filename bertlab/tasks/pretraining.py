"""Pretraining objectives as small pure functions, combined per family.

Each objective maps model outputs and a batch (bertlab/data/pipeline.py) to a scalar loss and
its metrics. Means are over the global batch: under `jax.jit` with sharded inputs the sums run
across devices and hosts.
"""

import jax
import jax.numpy as jnp
import optax

from bertlab.config_files import job_kind
from bertlab.tasks import vocab_parallel


def weighted_cross_entropy(logits, targets, weights, vocabulary: bool = False):
  """Mean cross-entropy over weighted targets, and the accuracy of the argmax.

  `vocabulary`: the classes are the vocabulary, which a mesh may shard on `tensor`; the
  loss then runs per device (tasks/vocab_parallel.py)."""
  if vocabulary and vocab_parallel.applies(logits.shape[-1]):
    return vocab_parallel.weighted_cross_entropy(logits, targets, weights)
  logits = logits.astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  total = jnp.maximum(weights.sum(), 1e-6)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return (losses * weights).sum() / total, (correct * weights).sum() / total


def mlm(out, batch) -> tuple[jax.Array, dict]:
  """Masked LM on the selected positions (Devlin et al., Section 3.1)."""
  loss, accuracy = weighted_cross_entropy(out.mlm_logits, batch["masked_ids"],
                                          batch["masked_weights"], vocabulary=True)
  return loss, dict(mlm_loss=loss, mlm_accuracy=accuracy)


def sentence(out, batch, name: str) -> tuple[jax.Array, dict]:
  """NSP or SOP: two-way classification of the pooled [CLS] (of each input of a packed row)."""
  weights = batch.get("sentence_weights")
  if weights is None:
    weights = jnp.ones(batch["sentence_label"].shape, jnp.float32)
  loss, accuracy = weighted_cross_entropy(out.sentence_logits, batch["sentence_label"], weights)
  return loss, {f"{name}_loss": loss, f"{name}_accuracy": accuracy}


def span_boundary(out, batch) -> tuple[jax.Array, dict]:
  """SpanBERT's SBO: each masked token from its span's two boundary tokens and its position."""
  loss, accuracy = weighted_cross_entropy(out.sbo_logits, batch["masked_ids"],
                                          batch["span_weights"], vocabulary=True)
  return loss, dict(sbo_loss=loss, sbo_accuracy=accuracy)


def replaced_token_detection(logits, replaced, attention_mask) -> tuple[jax.Array, dict]:
  """ELECTRA's discriminator loss: sigmoid cross-entropy over every non-padding token."""
  logits = logits.astype(jnp.float32)
  weights = attention_mask.astype(jnp.float32)
  labels = replaced.astype(jnp.float32)
  losses = optax.sigmoid_binary_cross_entropy(logits, labels)
  total = jnp.maximum(weights.sum(), 1e-6)
  loss = (losses * weights).sum() / total
  predicted = logits > 0
  accuracy = ((predicted == replaced) * weights).sum() / total
  # Always answering "original" scores the share of original tokens: the bar to beat. Its
  # best log-loss (a constant probability equal to the replaced share) is the loss to beat.
  original_share = ((~replaced) * weights).sum() / total
  share = jnp.clip(1.0 - original_share, 1e-6, 1 - 1e-6)
  constant_loss = -(share * jnp.log(share) + (1 - share) * jnp.log(1 - share))
  hits = (predicted & replaced) * weights
  precision = hits.sum() / jnp.maximum((predicted * weights).sum(), 1e-6)
  recall = hits.sum() / jnp.maximum((replaced * weights).sum(), 1e-6)
  return loss, dict(rtd_loss=loss, rtd_accuracy=accuracy, rtd_original_share=original_share,
                    rtd_constant_loss=constant_loss, rtd_precision=precision,
                    rtd_recall=recall, rtd_auc=ranking_auc(logits, replaced, weights > 0))


def ranking_auc(scores, positive, valid) -> jax.Array:
  """ROC AUC over the `valid` entries: the share of (positive, negative) pairs the scores put
  in order (Mann-Whitney). Early in training a discriminator ranks replaced tokens above
  original ones long before it is sure enough of any (p > 0.5) to beat always-"original"."""
  scores, positive, valid = jax.lax.sort(
      (scores.reshape(-1), positive.reshape(-1), valid.reshape(-1)), num_keys=1)
  positive, negative = positive & valid, valid & ~positive
  # In ascending order of score, each positive is above every negative counted so far.
  ordered_pairs = jnp.where(positive, jnp.cumsum(negative), 0).sum().astype(jnp.float32)
  return ordered_pairs / jnp.maximum(positive.sum() * negative.sum(), 1).astype(jnp.float32)


def _set_masked(ids, batch, values):
  """`ids` with `values` [B, P] written at the batch's masked positions (padding rows skipped)."""
  rows = jnp.arange(ids.shape[0])[:, None]
  keep = batch["masked_weights"] > 0
  positions = jnp.where(keep, batch["masked_positions"], 0)
  values = jnp.where(keep, values, jnp.take_along_axis(ids, positions, 1))
  return ids.at[rows, positions].set(values)


def unmasked_ids(batch):
  """The original ids: the targets put back at the masked positions."""
  return _set_masked(batch["input_ids"], batch, batch["masked_ids"])


def sentence_objective_name(config) -> str | None:
  """nsp or sop; None without a sentence head or with `sentence_objective=none` (the head is
  then kept untrained: evaluated on NSP/SOP data it is the chance baseline of ALBERT Table 5)."""
  if "sentence" not in config.model.heads:
    return None
  return {"nsp": "nsp", "sop": "sop"}.get(config.data.sentence_objective)


def pretraining_loss(model, params, batch, rng, config,
                     train: bool = True) -> tuple[jax.Array, dict]:
  """MLM, plus NSP/SOP and SBO where the model has those heads (BERT, ALBERT, RoBERTa,
  SpanBERT)."""
  out = model.apply({"params": params}, batch["input_ids"], batch["attention_mask"],
                    batch["token_type_ids"], masked_positions=batch["masked_positions"],
                    span_bounds=batch["span_bounds"] if "sbo" in config.model.heads else None,
                    span_slots=batch["span_slots"] if "sbo" in config.model.heads else None,
                    sequence_ids=batch.get("sequence_ids"),
                    sentence_positions=batch.get("sentence_positions"), deterministic=not train,
                    output_hidden_states=False, rngs={"dropout": rng})
  loss, metrics = mlm(out, batch)
  name = sentence_objective_name(config)
  if name:
    extra, more = sentence(out, batch, name)
    loss, metrics = loss + extra, {**metrics, **more}
  if "sbo" in config.model.heads:
    extra, more = span_boundary(out, batch)
    loss, metrics = loss + extra, {**metrics, **more}
  return loss, metrics


def electra_loss(model, params, batch, rng, config,
                 train: bool = True) -> tuple[jax.Array, dict]:
  """ELECTRA (Clark et al., Section 2): generator MLM + disc_weight x replaced-token detection.

  Replacements are sampled from the generator's softmax at the masked positions (argmax with
  `electra.sample=False`, for comparison), with no gradient through the sampling; a sampled
  token equal to the original counts as original. `electra.disc_mlm_weight` > 0 trains the
  discriminator as MLM + RTD in one model: its own MLM head predicts the original tokens at
  the masked positions of the corrupted input (metrics `disc_mlm_*`).
  """
  dropout_rng, sample_rng = jax.random.split(rng)
  gen_rng, disc_rng = jax.random.split(dropout_rng)
  args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
  sequence_ids = batch.get("sequence_ids")
  gen = model.apply({"params": params}, *args, masked_positions=batch["masked_positions"],
                    sequence_ids=sequence_ids, deterministic=not train,
                    output_hidden_states=False, method="generate", rngs={"dropout": gen_rng})
  gen_loss, metrics = mlm(gen, batch)
  logits = jax.lax.stop_gradient(gen.mlm_logits.astype(jnp.float32))
  if config.electra.sample:
    sampled = jax.random.categorical(sample_rng, logits)
  else:
    sampled = jnp.argmax(logits, -1)
  original = unmasked_ids(batch)
  corrupted = _set_masked(original, batch, sampled)
  replaced = corrupted != original
  disc_mlm_weight = config.electra.disc_mlm_weight
  disc = model.apply({"params": params}, corrupted, batch["attention_mask"],
                     batch["token_type_ids"], sequence_ids=sequence_ids,
                     masked_positions=batch["masked_positions"] if disc_mlm_weight else None,
                     deterministic=not train, output_hidden_states=False,
                     method="discriminate", rngs={"dropout": disc_rng})
  disc_loss, more = replaced_token_detection(disc.rtd_logits, replaced, batch["attention_mask"])
  loss = gen_loss + config.electra.disc_weight * disc_loss
  if disc_mlm_weight:
    extra, disc_metrics = mlm(disc, batch)
    loss = loss + disc_mlm_weight * extra
    more = {**more, **{f"disc_{k}": v for k, v in disc_metrics.items()}}
  return loss, {**metrics, **more}


def loss_fn(config):
  """The family's objective: (model, params, batch, rng, config, train) -> (loss, metrics)."""
  return electra_loss if job_kind(config) == "electra" else pretraining_loss
