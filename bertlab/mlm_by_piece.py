"""python -m bertlab.mlm_by_piece --workdir=DIR [--set=KEY=VALUE ...] [--batches=N]

Held-out MLM accuracy and loss of a pretraining workdir's newest checkpoint, split by what each
masked position held: a word's first piece, or a piece that continues a word ("##ing").
Whole-word masking (BERT's 2019 release) hides a word's pieces together, so a continuation can
no longer be read off its word's visible start; this split shows where that moves accuracy.

A piece starts a word by its vocabulary's marker (WordPiece's "##" continues one,
SentencePiece's "▁" and byte BPE's "Ġ" start one), and the piece after [CLS] or [SEP] always
does (a line's first BPE word has no "Ġ"). `--set` changes the held-out view, e.g.
`--set=data.masking=token --set=data.dynamic_masking=True`, the view every point of
experiments/masking.py is scored on. Nothing is written to the workdir.
"""

import argparse
import json

import jax
import numpy as np

from bertlab import config_files, console

KINDS = ("all", "word_start", "continuation")


def target_word_starts(batch: dict, word_starts: np.ndarray, boundary_ids) -> np.ndarray:
  """[batch, predictions] bool: the masked position's original piece starts a word."""
  before = np.take_along_axis(batch["input_ids"],
                              np.maximum(batch["masked_positions"] - 1, 0), axis=1)
  return word_starts[batch["masked_ids"]] | np.isin(before, boundary_ids)


def kind_weights(batch: dict, word_starts: np.ndarray, boundary_ids) -> dict[str, np.ndarray]:
  """masked_weights kept to each kind's positions."""
  starts = target_word_starts(batch, word_starts, boundary_ids)
  weights = batch["masked_weights"]
  return dict(all=weights, word_start=weights * starts, continuation=weights * ~starts)


def piece_kind_metrics(trainer, state, data, max_batches: int) -> dict[str, dict]:
  """For each kind: its share of the masked positions, and the MLM accuracy and loss over
  them, weighted by position (a batch with few of a kind counts for few), on the same
  held-out batches and masks as trainer.held_out_metrics."""
  tokenizer = data.tokenizer
  word_starts = tokenizer.marker_word_starts()
  boundary_ids = np.array([tokenizer.cls_id, tokenizer.sep_id])
  sums = {kind: dict(count=0.0, mlm_accuracy=0.0, mlm_loss=0.0) for kind in KINDS}
  batches = data.batches(0)
  count = min(max_batches, data.batches_per_epoch)
  for index in range(count):
    batch = next(batches)
    for kind, weights in kind_weights(batch, word_starts, boundary_ids).items():
      total = float(weights.sum())
      if total == 0:
        continue
      metrics = jax.device_get(
          trainer.evaluate_batch(state, dict(batch, masked_weights=weights), index))
      sums[kind]["count"] += total
      for key in ("mlm_accuracy", "mlm_loss"):
        sums[kind][key] += float(metrics[key]) * total
  masked = sums["all"]["count"]
  if masked == 0:
    raise ValueError(f"The {count} held-out batches mask no position; is the MLM head on "
                     "(model.heads) and data.mask_rate above 0?")
  return {kind: dict(share=s["count"] / masked, positions=int(s["count"]),
                     **{k: s[k] / s["count"] if s["count"] else float("nan")
                        for k in ("mlm_accuracy", "mlm_loss")})
          for kind, s in sums.items()}


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m bertlab.mlm_by_piece", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a pretraining run's directory")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a change to the workdir's config for the held-out view")
  parser.add_argument("--batches", type=int, default=None,
                      help="held-out batches to read (default: the config's train.eval_batches)")
  console.add_verbosity_argument(parser)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  console.setup(args.verbosity)
  # after console.setup: TensorFlow's start-up notices are filtered for later imports only
  from bertlab.hub import workdir as hub_workdir
  from bertlab.train import trainer as trainer_lib
  if not hub_workdir.is_workdir(args.workdir):
    raise SystemExit(f"{args.workdir} is not a pretraining workdir (it needs config.json and "
                     "checkpoints/): pass the --workdir a run trained in.")
  config = config_files.apply_overrides(hub_workdir.read_config(args.workdir),
                                        config_files.parse_set(args.set))
  trainer, state, step, data = trainer_lib.latest_checkpoint(config, args.workdir)
  batches = config.train.eval_batches if args.batches is None else args.batches
  result = piece_kind_metrics(trainer, state, data, batches)
  print(json.dumps({"step": step, **result}, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
