"""Packed fine-tuning batches for sequence-level tasks (GLUE's classification and regression):
several inputs to a row, each with its own [CLS] ... [SEP], attending only within itself,
counting its positions from 0 and classified at its own [CLS], as ModernBERT's unpadding does.

A batch keeps the `batch_size` examples the unpadded run draws, in its order (the same
tf.data shuffle of the same seed); only the rows they fill change. SST-2's sentences take
under a third of a 64-token row, so most of an unpacked step is padding. The row count is one number
for a whole run, the most any of its batches needs (so one compiled step serves them all),
rounded up to a multiple of the mesh's batch shards. Span (SQuAD) and token (NER) heads score
every position of their row and stay one input per row.
"""

import numpy as np

from bertlab.data import finetune as finetune_data
from bertlab.data.examples import inputs_per_row, pack_rows

PACKABLE_HEADS = ("classification", "regression")
INPUT_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


def check_head(head: str):
  if head not in PACKABLE_HEADS:
    raise ValueError(f"data.pack_sequences=True packs the inputs of {' and '.join(PACKABLE_HEADS)} "
                     f"heads; the {head} head scores every position of its row, one input "
                     "each. Set data.pack_sequences=False for this task.")


# Inputs a row may hold: pretraining's rule for its packed pairs.
slots_per_row = inputs_per_row


def batch_indices(count: int, batch_size: int, seed: int | None, drop_remainder: bool
                  ) -> list[np.ndarray]:
  """The example indices of each batch the unpacked pass draws (its padding rows left out)."""
  out = []
  for batch in finetune_data.batches({"index": np.arange(count)}, batch_size, seed,
                                     drop_remainder):
    out.append(batch["index"].numpy()[batch["example_weight"].numpy() > 0])
  return out


def plan(lengths: np.ndarray, batches: list[np.ndarray], seq_len: int) -> list[list[np.ndarray]]:
  """Per batch, the example indices of each row (best-fit decreasing, batch order kept)."""
  slots = slots_per_row(seq_len)
  return [[batch[group] for group in pack_rows(lengths[batch].tolist(), seq_len, slots)]
          for batch in batches]


def rows_for(plans: list[list[np.ndarray]], multiple: int) -> int:
  most = max((len(rows) for rows in plans), default=1)
  return -(-most // multiple) * multiple


def pack_batch(arrays: dict[str, np.ndarray], groups: list[np.ndarray], rows: int,
               pad_id: int) -> dict[str, np.ndarray]:
  """`groups` (one row's example indices each) side by side in `rows` rows of the arrays'
  length. Per slot: `cls_positions`, `labels` (when the arrays have them), `example_weight`
  (1 for an example, 0 for an empty slot) and `example_index`."""
  if len(groups) > rows:
    raise ValueError(f"A batch needs {len(groups)} packed rows, more than the run's {rows}.")
  seq_len, slots = arrays["input_ids"].shape[1], slots_per_row(arrays["input_ids"].shape[1])
  out = dict(input_ids=np.full((rows, seq_len), pad_id, np.int32),
             attention_mask=np.zeros((rows, seq_len), np.int32),
             token_type_ids=np.zeros((rows, seq_len), np.int32),
             sequence_ids=np.zeros((rows, seq_len), np.int32),
             cls_positions=np.zeros((rows, slots), np.int32),
             example_weight=np.zeros((rows, slots), np.float32),
             example_index=np.zeros((rows, slots), np.int32))
  if "labels" in arrays:
    out["labels"] = np.zeros((rows, slots), arrays["labels"].dtype)
  for row, group in enumerate(groups):
    start = 0
    for slot, example in enumerate(group):
      n = int(arrays["attention_mask"][example].sum())  # this example's, not the split's
      span = slice(start, start + n)
      for field in INPUT_FIELDS:
        out[field][row, span] = arrays[field][example, :n]
      out["sequence_ids"][row, span] = slot + 1
      out["cls_positions"][row, slot], out["example_weight"][row, slot] = start, 1.0
      out["example_index"][row, slot] = example
      if "labels" in arrays:
        out["labels"][row, slot] = arrays["labels"][example]
      start += n
  return out


def unpack_outputs(outputs: np.ndarray, batch: dict[str, np.ndarray], into: np.ndarray):
  """Writes each slot's output ([rows, slots, ...]) to its example's place in `into`."""
  real = batch["example_weight"] > 0
  into[batch["example_index"][real]] = outputs[real]
