"""`--mode=inspect_data` (DESIGN.md contract 3): decoded examples, then masking statistics."""

import json
import time

import numpy as np

from bertlab.data.pipeline import PretrainingData


def decode_example(batch: dict, row: int, data: PretrainingData) -> str:
  """One sequence with its masks visible: [MASK]/orig, ~random/orig, =kept=."""
  tokenizer = data.tokenizer
  ids = batch["input_ids"][row]
  targets = {int(p): int(t) for p, t, w in zip(batch["masked_positions"][row],
                                               batch["masked_ids"][row],
                                               batch["masked_weights"][row]) if w > 0}
  words = []
  for position, token in enumerate(ids[batch["attention_mask"][row] > 0]):
    piece = tokenizer.pieces[token]
    if position in targets:
      original = tokenizer.pieces[targets[position]]
      piece = (f"={original}=" if token == targets[position] else
               f"{piece}/{original}" if token == tokenizer.mask_id else f"~{piece}/{original}")
    words.append(piece)
  labels = np.atleast_1d(batch["sentence_label"][row])
  if "sentence_weights" in batch:  # packed pairs: one label per input
    labels = labels[batch["sentence_weights"][row] > 0]
  return f"sentence_label={','.join(str(int(v)) for v in labels)} " + " ".join(words)


def batch_statistics(batches: list[dict], mask_id: int) -> dict:
  cat = lambda key: np.concatenate([b[key] for b in batches])
  weights = cat("masked_weights") > 0
  shown = np.take_along_axis(cat("input_ids"), cat("masked_positions"), axis=1)[weights]
  original = cat("masked_ids")[weights]
  selected = max(int(weights.sum()), 1)
  is_mask = shown == mask_id
  is_kept = (shown == original) & ~is_mask
  span_words = cat("span_words")
  packed = {}
  labels = cat("sentence_label")
  if "sentence_weights" in batches[0]:
    labels = labels[cat("sentence_weights") > 0]
  if "sequence_ids" in batches[0]:  # packed rows (data.pack_sequences)
    inputs = cat("sequence_ids").max(axis=1)
    tokens = (cat("attention_mask") > 0).sum()
    packed["inputs_per_row"] = float(inputs.mean())
    # The same inputs one to a row, as without packing.
    packed["unpacked_padding_share"] = float(
        1 - tokens / max(inputs.sum() * cat("input_ids").shape[1], 1))
  return dict(
      selected_rate=float(weights.sum() / max((cat("token_kind") > 0).sum(), 1)),
      mask_token_share=float(is_mask.sum() / selected),
      random_token_share=float((~is_mask & ~is_kept).sum() / selected),
      kept_share=float(is_kept.sum() / selected),
      mean_span_length=float(span_words[span_words > 0].mean()) if (span_words > 0).any()
      else 0.0,
      sentence_label_share=float(labels.mean()),
      padding_share=float(1 - cat("attention_mask").mean()),
      sequences=int(len(weights)), **packed)


def inspect_lines(config, num_batches: int = 10, num_examples: int = 3) -> list[str]:
  data = PretrainingData.from_config(config)
  iterator = data.batches(0)
  start = time.perf_counter()
  batches = [next(iterator) for _ in range(num_batches)]
  seconds = time.perf_counter() - start
  lines = [f"{data.num_sequences} sequences on this host, {data.batches_per_epoch} batches of "
           f"{data.host_batch_size} per epoch, vocabulary {data.tokenizer.vocab_size} "
           f"({data.tokenizer.kind})"]
  for row in range(min(num_examples, data.host_batch_size)):
    lines += ["", decode_example(batches[0], row, data)]
  stats = batch_statistics(batches, data.tokenizer.mask_id)
  stats["sequences_per_sec"] = round(stats["sequences"] / seconds, 1)
  lines += ["", json.dumps(stats)]
  return lines
