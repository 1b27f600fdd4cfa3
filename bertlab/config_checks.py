"""Range checks of a run config's numbers, before any data is read or any step is taken.

A negative learning rate would train by gradient ascent and `checkpoint_every=0` end in a
ZeroDivisionError an hour in; each is refused here with the key, the value and what it takes.
Choices (optimizer, masking kind, ...) are checked where they are read; this is the numbers.
"""

import math
import numbers

from bertlab.models.embeddings import check_sequence_length  # noqa: F401 (re-exported)

# (section, key) -> (test, what it must be). Keys a config does not have are skipped, so the
# one table serves pretraining and fine-tuning configs.
_INT, _NUM = "an integer", "a number"
RULES = {
    ("train", "batch_size"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "eval_batch_size"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "steps"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "epochs"): (_NUM, lambda v: v > 0, "> 0"),
    ("train", "learning_rate"): (_NUM, lambda v: v >= 0, ">= 0 (a negative rate ascends)"),
    ("train", "b2"): (_NUM, lambda v: 0 < v < 1, "in (0, 1)"),
    ("train", "warmup_steps"): (_INT, lambda v: v >= 0, ">= 0"),
    ("train", "decay_fraction"): (_NUM, lambda v: 0 < v <= 1, "in (0, 1]"),
    ("train", "warmup_proportion"): (_NUM, lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("train", "weight_decay"): (_NUM, lambda v: v >= 0, ">= 0"),
    ("train", "grad_clip"): (_NUM, lambda v: v >= 0, ">= 0 (0 is no clipping)"),
    ("train", "grad_accum_steps"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "checkpoint_every"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "keep_checkpoints"): (
        _INT, lambda v: v >= 1, ">= 1 (orbax would delete every checkpoint at 0)"),
    ("train", "log_every"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "eval_batches"): (_INT, lambda v: v >= 1, ">= 1"),
    ("train", "eval_every"): (_INT, lambda v: v >= 0, ">= 0 (0 is no evaluation while training)"),
    ("data", "seq_len"): (_INT, lambda v: v >= 8, ">= 8"),
    ("data", "short_seq_prob"): (_NUM, lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("data", "mask_rate"): (_NUM, lambda v: 0 < v < 1, "in (0, 1)"),
    ("data", "max_predictions"): (_INT, lambda v: v >= 1, ">= 1"),
    ("data", "max_ngram"): (_INT, lambda v: v >= 1, ">= 1"),
    ("data", "span_p"): (_NUM, lambda v: 0 < v <= 1, "in (0, 1]"),
    ("data", "max_span_words"): (_INT, lambda v: v >= 1, ">= 1"),
    ("data", "dupe_factor"): (_INT, lambda v: v >= 1, ">= 1"),
    ("data", "max_train_examples"): (_INT, lambda v: v >= 0, ">= 0 (0 is all)"),
    ("data", "max_eval_examples"): (_INT, lambda v: v >= 0, ">= 0 (0 is all)"),
    ("mesh", "data"): (_INT, lambda v: v == -1 or v >= 1, ">= 1, or -1 for the devices left"),
    ("mesh", "fsdp"): (_INT, lambda v: v == -1 or v >= 1, ">= 1, or -1 for the devices left"),
    ("mesh", "tensor"): (_INT, lambda v: v == -1 or v >= 1, ">= 1, or -1 for the devices left"),
}


def _is(kind: str, value) -> bool:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    return False
  if kind == _INT:
    return float(value).is_integer()
  return math.isfinite(value)


def check_numbers(config) -> None:
  """Every numeric key of train, data and mesh in its range; all problems in one error."""
  problems = []
  for (section, key), (kind, test, wanted) in RULES.items():
    if section not in config or key not in config[section]:
      continue
    value = config[section][key]
    if not _is(kind, value) or not test(value):
      problems.append(f"{section}.{key}={value!r} must be {kind} {wanted}")
  if problems:
    raise ValueError("Invalid config values:\n  " + "\n  ".join(problems))
