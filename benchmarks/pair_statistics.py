"""Segment-pair statistics of bertlab's static pretraining data beside google-research/bert's
create_pretraining_data.py, on the same text, vocabulary and settings, over several seeds.

  python benchmarks/pair_statistics.py [--google_bert=DIR] [--seeds=10] [--articles=120]

Text: the first `--articles` documents of ../shared/data/pretraining/squad-train-wiki.txt.gz;
BERT's uncased vocabulary; seq 128, 20 predictions, dupe factor 2, short_seq_prob 0.1, NSP.
Rows: bertlab's default (`one_sentence_chunk=split`), `random_next`, and `random_next` with
`segment_per_dupe=True` (the released tools' behaviour); with `--google_bert` (a checkout of
github.com/google-research/bert, not part of bertlab) its tool is imported from there and run
on the same file, seed by seed. A short target is drawn once per document and dupe, so with a
hundred documents the shares of full-length and short pairs move by several points from seed
to seed: compare means over seeds, not one draw.
"""

import argparse
import gzip
import os
import random
import sys
import tempfile
import types

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
SEQ, PREDICTIONS, DUPE, SHORT = 128, 20, 2, 0.1
SETTINGS = {
    "bertlab, default (one_sentence_chunk=split)": {},
    "bertlab, one_sentence_chunk=random_next": {"one_sentence_chunk": "random_next"},
    "bertlab, random_next + segment_per_dupe": {"one_sentence_chunk": "random_next",
                                                "segment_per_dupe": True},
}


def statistics(rows) -> dict:
  """rows: (tokens in A, tokens in B, NotNext, masked, of them [MASK], random, kept)."""
  r = np.array(rows, float)
  length = r[:, 0] + r[:, 1] + 3
  selected = r[:, 3].sum()
  return {"pairs / dupe": len(r) / DUPE, "mean length": length.mean(),
          "full length %": 100 * (length == SEQ).mean(), "< 100 tokens %": 100 * (length < 100).mean(),
          "tokens A": r[:, 0].mean(), "tokens B": r[:, 1].mean(), "NotNext %": 100 * r[:, 2].mean(),
          "masks / pair": r[:, 3].mean(), "[MASK] %": 100 * r[:, 4].sum() / selected,
          "random %": 100 * r[:, 5].sum() / selected, "kept %": 100 * r[:, 6].sum() / selected}


def bertlab_rows(text: str, vocab: str, seed: int, data: dict) -> list:
  from bertlab import config_files
  from bertlab.data import corpus, pipeline
  from bertlab.data.vocab import tokenizer_from_config
  config = config_files.apply_overrides(config_files.load("configs/bert.py:base"), {
      "data.source": text, "data.vocab": vocab, "data.seq_len": SEQ,
      "data.max_predictions": PREDICTIONS, "data.dupe_factor": DUPE, "data.short_seq_prob": SHORT,
      "data.dynamic_masking": False, **{f"data.{k}": v for k, v in data.items()}})
  tokenizer = tokenizer_from_config(config.data, config.model.vocab_size)
  docs = pipeline.tokenize_documents(list(corpus.read_documents(text)), tokenizer)
  cuts = pipeline.segmentations(config.data)
  arrays = pipeline.build_segmentations(docs, pipeline.builder_config(config.data, tokenizer),
                                        np.random.default_rng(seed), cuts)
  masked = pipeline.static_masked_copies(arrays, pipeline.masking_config(config.data, tokenizer),
                                         tokenizer, DUPE // cuts, (seed, 0))
  original = np.concatenate([arrays["input_ids"]] * (DUPE // cuts))
  rows = []
  for ids, shown_row, types_row, label, positions, weights in zip(
      original, masked["input_ids"], masked["token_type_ids"], masked["sentence_label"],
      masked["masked_positions"], masked["masked_weights"]):
    n = int((ids != tokenizer.pad_id).sum())
    b = int(types_row[:n].sum()) - 1
    positions = positions[weights > 0]
    shown, target = shown_row[positions], ids[positions]
    to_mask = int((shown == tokenizer.mask_id).sum())
    kept = int(((shown == target) & (shown != tokenizer.mask_id)).sum())
    rows.append((n - b - 3, b, int(label), len(positions), to_mask,
                 len(positions) - to_mask - kept, kept))
  return rows


def google_rows(checkout: str, text: str, vocab: str, seed: int) -> list:
  """The released tool's instances, imported from its checkout with a stand-in for the TF1
  calls it makes at import time (flags, gfile, logging)."""
  if "create_pretraining_data" not in sys.modules:
    import tensorflow  # the real one, put back after the tool's import
    from absl import flags, logging
    stand_in = types.ModuleType("tensorflow")
    stand_in.flags, stand_in.logging = flags, logging
    text_open = lambda p, mode="r": open(p, mode, encoding=None if "b" in mode else "utf-8")
    stand_in.gfile = types.SimpleNamespace(GFile=text_open,
                                           Glob=lambda p: __import__("glob").glob(p))
    sys.modules["tensorflow"] = stand_in
    sys.path.insert(0, checkout)
    try:
      import create_pretraining_data  # noqa: F401
      import tokenization  # noqa: F401
    finally:
      sys.path.remove(checkout)
      sys.modules["tensorflow"] = tensorflow
    flags.FLAGS(["pair_statistics"])  # the tool reads its flag defaults
  tool, tokenization = sys.modules["create_pretraining_data"], sys.modules["tokenization"]
  tokenizer = tokenization.FullTokenizer(os.path.join(vocab, "vocab.txt"), do_lower_case=True)
  instances = tool.create_training_instances([text], tokenizer, SEQ, DUPE, SHORT, 0.15,
                                             PREDICTIONS, random.Random(seed))
  rows = []
  for x in instances:
    sep = x.tokens.index("[SEP]")
    shown = [x.tokens[p] for p in x.masked_lm_positions]
    to_mask = sum(s == "[MASK]" for s in shown)
    kept = sum(s == t for s, t in zip(shown, x.masked_lm_labels))
    rows.append((sep - 1, len(x.tokens) - sep - 2, int(x.is_random_next), len(shown), to_mask,
                 len(shown) - to_mask - kept, kept))
  return rows


def first_documents(path: str, count: int, out: str) -> str:
  with gzip.open(path, "rt", encoding="utf-8") as f, open(out, "w", encoding="utf-8") as o:
    seen = 0
    for line in f:
      if not line.strip():
        seen += 1
        if seen == count:
          break
      o.write(line)
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--google_bert", default=None, help="a google-research/bert checkout")
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--articles", type=int, default=120)
  args = parser.parse_args()
  sys.path.insert(0, ROOT)
  vocab = os.path.join(SHARED, "vocab", "bert-base-uncased")
  source = os.path.join(SHARED, "pretraining", "squad-train-wiki.txt.gz")
  with tempfile.TemporaryDirectory() as tmp:
    text = first_documents(source, args.articles, os.path.join(tmp, "articles.txt"))
    results = {}
    if args.google_bert:
      results["google-research/bert create_pretraining_data.py"] = [
          statistics(google_rows(args.google_bert, text, vocab, seed))
          for seed in range(1, args.seeds + 1)]
    for name, data in SETTINGS.items():
      results[name] = [statistics(bertlab_rows(text, vocab, seed, data))
                       for seed in range(1, args.seeds + 1)]
  columns = list(next(iter(results.values()))[0])
  print(f"{args.articles} articles, {args.seeds} seeds each: mean ± standard deviation over seeds")
  print("| data | " + " | ".join(columns) + " |")
  print("|---|" + "---|" * len(columns))
  for name, runs in results.items():
    cells = [f"{np.mean([r[c] for r in runs]):.2f} ± {np.std([r[c] for r in runs], ddof=1):.2f}"
             for c in columns]
    print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main()
