"""Helpers for the config files in configs/: sizes, the sections every pretraining and
fine-tuning config has, and their defaults. Configs become models in bertlab/models/build.py
(pretraining) and bertlab/tasks/finetuning.py (fine-tuning); bertlab/jobs.py picks between
them."""

import dataclasses
import os
import typing

import ml_collections

from bertlab.config_files import PROJECT_ROOT
from bertlab.models.config import ModelConfig, from_config_dict, unknown_key_error


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


# BERT's sizes (Table 1), shared by the families that keep BERT's encoder.
BERT_SIZES = {
    "tiny": dict(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512),
    # The CPU scale (see add_pretraining_sections): tiny's shape, on real text, long enough to
    # learn language.
    "cpu": dict(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512),
    "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096),
}


def base_config(model: dict) -> ml_collections.ConfigDict:
  """A config whose `model` holds every ModelConfig field: the defaults, then `model`.

  Every field is present, so any of them can be overridden from the command line; fields
  that default to None get a typed placeholder.
  """
  from_config_dict(model)  # unknown keys and bad choices fail here, naming the valid ones
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict()
  defaults = ModelConfig()
  for field in dataclasses.fields(ModelConfig):
    value = model.get(field.name, getattr(defaults, field.name))
    if value is None:
      kind = next(t for t in typing.get_args(field.type) if t is not type(None))
      value = ml_collections.config_dict.placeholder(kind)
    config.model[field.name] = value
  return config


# Tiny configs train their vocabulary on the embedded corpus (data.vocab=default).
TINY_VOCAB_SIZE = 4096
# The CPU scale: real English prose in BERT's format (../shared/data/pretraining beside the
# checkout; any such file through --config.data.source), a vocabulary trained on it.
CPU_CORPUS = os.path.normpath(os.path.join(PROJECT_ROOT, "..", "shared", "data", "pretraining",
                                           "enwiki-2015-AA.txt.gz"))
CPU_VOCAB_SIZE = 8192


def add_pretraining_sections(config: ml_collections.ConfigDict, size: str, train: dict | None = None,
                             **data) -> ml_collections.ConfigDict:
  """The `data`, `train` and `mesh` sections every pretraining config has, with a family's
  choices (`data` keyword arguments, `train` overrides of the published recipe).

  `data` keys: see bertlab/data/pipeline.py. `train.batch_size` is the global batch over all
  hosts. `tiny` shrinks the run to minutes on a CPU: 300 steps of batch 32 (ALBERT: 600).
  `cpu` is real text at CPU cost: 100 MB of Wikipedia, a vocabulary of 8,192 pieces trained on
  it, 3,000 steps of batch 64 (26 minutes of BERT cpu at 1.9 steps/s on 2 idle cores, 47 of
  ELECTRA's at 1.06), held-out evaluation every 500 steps, rotary positions (learned ones leave
  the unigram plateau too late for an hour on 2 cores; experiments/RESULTS.md).
  """
  if size == "tiny":
    config.model.vocab_size = TINY_VOCAB_SIZE
  if size == "cpu":
    config.model.vocab_size = CPU_VOCAB_SIZE
    # Rotary positions: with BERT's learned table this shape stays on the unigram plateau
    # for the whole hour (15.4% held-out MLM at 8,000 steps); rotary reaches 25.7% by step
    # 1,000 (experiments/RESULTS.md). The objectives, embeddings and sharing are the papers'.
    config.model.position_embedding = "rotary"
  config.data = ml_collections.ConfigDict(dict(
      source="default", eval_source="", tokenizer="wordpiece", vocab="default",
      lower_case=ml_collections.config_dict.placeholder(bool), word_boundary="marker",
      seq_len=128, input_format="segment_pair", sentence_objective="nsp", short_seq_prob=0.1,
      one_sentence_chunk="split",
      # Several inputs to a row, each attending within itself: unset packs doc_sentences only
      # (as the papers' data), True every format that pads (pairs, single), False none.
      pack_sequences=ml_collections.config_dict.placeholder(bool),
      masking="token", mask_rate=0.15, max_predictions=20, max_ngram=3, span_p=0.2,
      # "" keeps mask_rate; "0:0.3,0.5:0.15,0.9:0.05" is mmBERT's falling rate (from each
      # fraction of train.steps on, that rate; training only, evaluation stays at mask_rate).
      mask_rate_schedule="",
      # What a selected unit becomes: [MASK], a random token, else kept (BERT's 80/10/10;
      # ELECTRA's released pretraining: 0.85 and 0, no random tokens).
      mask_token_share=0.8, random_token_share=0.1,
      max_span_words=10,
      # span masking's sampler: bertlab (runs of whole words) or spanbert (the released code's
      # anchors, spans cut short by the budget; bertlab/data/spanbert_sampler.py).
      span_sampler="bertlab", dynamic_masking=True, dupe_factor=10,
      # Static masking: False masks one segmentation dupe_factor times; True cuts the
      # documents afresh for every dupe, as google-research bert's and albert's tools do.
      segment_per_dupe=False, seed=0))
  config.data.update(data)
  # BERT's recipe (Appendix A.2), then the family's published changes.
  config.train = ml_collections.ConfigDict(dict(
      batch_size=256, steps=1_000_000, optimizer="adamw", learning_rate=1e-4, b2=0.999,
      warmup_steps=10_000, weight_decay=0.01, grad_clip=1.0, grad_accum_steps=1,
      # linear (BERT) or wsd: warmup, the peak held, a decay over the last decay_fraction of
      # the steps (decay_shape linear or 1-sqrt); the stable phase's last checkpoint is kept.
      schedule="linear", decay_fraction=0.1, decay_shape="linear",
      checkpoint_every=10_000, keep_checkpoints=3, log_every=100, eval_batches=20,
      # Held-out evaluation every eval_every steps (0: only with --mode=eval), rows with
      # "eval": true in metrics.jsonl and eval/ tags in TensorBoard.
      eval_every=0, seed=0,
      # Resuming refuses a config that changes what is trained (names the keys); True allows.
      allow_config_change=False))
  config.train.update(train or {})
  if size == "tiny":
    # LAMB scales each layer's step by its weight norm, so it takes a larger rate than AdamW;
    # at batch 32 a larger one (2e-2) leaves ALBERT's MLM at the unigram plateau and SOP at 50%.
    config.train.update(batch_size=32, steps=300, warmup_steps=30, checkpoint_every=100,
                        log_every=25, eval_batches=5,
                        learning_rate=1e-3 if config.train.optimizer == "adamw" else 5e-3)
  if size == "cpu":
    config.data.update(source=CPU_CORPUS, vocab="corpus")
    config.train.update(batch_size=64, steps=3000, warmup_steps=500, checkpoint_every=1000,
                        log_every=100, eval_every=500, eval_batches=50,
                        learning_rate=2e-3 if config.train.optimizer == "adamw" else 5e-3)
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, rules=()))
  return config


def finetune_config(task: str, name: str, seq_len: int, train: dict | None = None,
                    **finetune) -> ml_collections.ConfigDict:
  """A fine-tuning config: `finetune` (task, init_from, freeze_encoder, layerwise_lr_decay),
  `data` (local files or TFDS, subsets, tokenizer for a fresh model), `train` (BERT's
  fine-tuning recipe, Appendix A.3) and `mesh`.

  `model` is the architecture when training from scratch (a tiny BERT by default); a
  checkpoint in `finetune.init_from` brings its own, keeping the run's way of computing it
  (`model.dtype`, the dropout rates and `scan_layers`: hub/init_from.RUN_SETTINGS). A small
  model on a CPU fine-tunes fastest packed and unrolled (`data.pack_sequences=True`,
  `model.scan_layers=False`: 0.61x transformers' wall time in benchmarks/finetune_vs_hf.py).
  """
  config = base_config(dict(family="bert", vocab_size=TINY_VOCAB_SIZE, heads=(),
                            **BERT_SIZES["tiny"]))
  config.finetune = ml_collections.ConfigDict(dict(
      task=task, name=name, init_from="", freeze_encoder=False,
      # ELECTRA's fine-tuning recipe uses 0.8 (base) / 0.9 (large); 1.0 is off.
      layerwise_lr_decay=1.0))
  config.finetune.update(finetune)
  config.data = ml_collections.ConfigDict(dict(
      data_dir="", max_train_examples=0, max_eval_examples=0, seq_len=seq_len,
      tokenizer="wordpiece", vocab="default",
      lower_case=ml_collections.config_dict.placeholder(bool), word_boundary="marker",
      # Several inputs to a row, each classified at its own [CLS] (classification and
      # regression; bertlab/data/finetune_packing.py): the same batches, a fraction of the rows.
      pack_sequences=False))
  config.train = ml_collections.ConfigDict(dict(
      batch_size=32, eval_batch_size=64, epochs=3, optimizer="adamw", learning_rate=2e-5,
      b2=0.999, warmup_proportion=0.1, weight_decay=0.01, grad_clip=1.0, grad_accum_steps=1,
      log_every=50, seed=0, allow_config_change=False,
      # checkpoints/ keeps the last finished epoch for resuming; best/ keeps the best one.
      keep_checkpoints=1))
  config.train.update(train or {})
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1, rules=()))
  return config
