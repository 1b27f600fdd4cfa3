"""Batches: resumable, per host, deterministic; dynamic and static masking; the data tools."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bertlab.data import corpus
from bertlab.data.create_pretraining_data import create
from bertlab.data.pipeline import PretrainingData
from bertlab.data.records import read_records
from conftest import ROOT, load_config
from data_helpers import write_corpus


def _tiny(spec="electra.py:tiny", batch_size=8, **data):
  config = load_config(spec)
  config.train.batch_size = batch_size
  config.data.update(data)
  return config


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
  """80 documents of the embedded corpus: a few hundred sequences."""
  docs = [doc for doc, _ in zip(corpus.read_documents("default"), range(80))]
  return write_corpus(str(tmp_path_factory.mktemp("text") / "docs.txt"), docs)


def _original(batch):
  """The unmasked ids: masked positions hold their targets again."""
  ids = batch["input_ids"].copy()
  for row in range(len(ids)):
    keep = batch["masked_weights"][row] > 0
    ids[row, batch["masked_positions"][row][keep]] = batch["masked_ids"][row][keep]
  return ids


def test_restored_pipeline_continues_with_the_same_batches(small_corpus):
  data = PretrainingData.from_config(_tiny(source=small_corpus))
  per_epoch = data.batches_per_epoch
  assert per_epoch >= 5
  steps = 2 * per_epoch + 3
  iterator = data.batches(0)
  uninterrupted = [next(iterator) for _ in range(steps)]
  for start in (3, per_epoch - 1, per_epoch + 2):  # inside, at and across epoch boundaries
    restored = PretrainingData.from_config(_tiny(source=small_corpus)).batches(start)
    for step in range(start, steps):
      batch = next(restored)
      for key, value in uninterrupted[step].items():
        np.testing.assert_array_equal(batch[key], value, err_msg=f"{key} at step {step}")


def test_dynamic_masking_remasks_each_epoch_and_static_does_not(small_corpus):
  for dynamic in (True, False):
    data = PretrainingData.from_config(_tiny(source=small_corpus, dynamic_masking=dynamic,
                                             dupe_factor=1))
    per_epoch, iterator = data.batches_per_epoch, data.batches(0)
    epochs = [[next(iterator) for _ in range(per_epoch)] for _ in range(2)]
    masks = []
    for batches in epochs:
      seen = {}
      for batch in batches:
        for ids, positions in zip(_original(batch), batch["masked_positions"]):
          seen[ids.tobytes()] = positions.tobytes()
      masks.append(seen)
    common = set(masks[0]) & set(masks[1])
    assert len(common) > 0.8 * len(masks[0])
    changed = np.mean([masks[0][k] != masks[1][k] for k in common])
    assert changed > 0.95 if dynamic else changed == 0


def test_segment_per_dupe_cuts_every_static_copy_afresh(small_corpus):
  """data.segment_per_dupe: each dupe is its own segmentation (the released tools' way), not
  the same pairs masked again; about dupe_factor times the sequences either way."""
  rows = {}
  for fresh in (False, True):
    config = _tiny("bert.py:tiny", source=small_corpus, dynamic_masking=False, dupe_factor=3,
                   segment_per_dupe=fresh)
    data = PretrainingData.from_config(config, 0, 1)
    batches = data.batches(0)
    seen = [_original(next(batches)) for _ in range(data.batches_per_epoch)]
    rows[fresh] = [r.tobytes() for batch in seen for r in batch]
  distinct = {k: len(set(v)) / len(v) for k, v in rows.items()}
  assert distinct[False] < 0.4  # every pair three times
  assert distinct[True] > 0.6  # new A/B cuts, NotNext partners and short targets per dupe
  assert abs(len(rows[True]) / len(rows[False]) - 1) < 0.15
  with pytest.raises(ValueError, match="segment_per_dupe.*dynamic_masking=False"):
    PretrainingData.from_config(_tiny("bert.py:tiny", source=small_corpus, dynamic_masking=True,
                                      segment_per_dupe=True), 0, 1)


def test_static_records_hold_exactly_dupe_factor_masks_per_sequence(small_corpus, tmp_path):
  config = _tiny("bert.py:tiny", source=small_corpus, dynamic_masking=False, dupe_factor=4)
  stats = create(config, str(tmp_path), num_workers=1, docs_per_shard=30)
  assert stats["shards"] == 3
  arrays, premasked = read_records(str(tmp_path / "*.tfrecord"))
  assert premasked and len(arrays["input_ids"]) == stats["examples"]
  masks = {}
  for ids, positions in zip(_original(arrays), arrays["masked_positions"]):
    masks.setdefault(ids.tobytes(), []).append(positions.tobytes())
  counts = np.array([len(m) for m in masks.values()])
  distinct = np.array([len(set(m)) for m in masks.values()])
  assert (counts == 4).all()
  assert (distinct == 4).mean() > 0.95  # short sequences may draw the same mask twice
  # Training reads them back without masking again.
  config.data.source = f"records:{tmp_path}/*.tfrecord"
  batch = next(PretrainingData.from_config(config).batches(0))
  key = _original(batch)[0].tobytes()
  assert batch["masked_positions"][0].tobytes() in masks[key]


def test_each_host_reads_its_own_documents(small_corpus):
  docs = [list(corpus.read_documents(small_corpus, i, 2)) for i in range(2)]
  everything = list(corpus.read_documents(small_corpus))
  assert len(docs[0]) + len(docs[1]) == len(everything)
  assert not {tuple(d) for d in docs[0]} & {tuple(d) for d in docs[1]}
  hosts = [PretrainingData.from_config(_tiny(source=small_corpus, batch_size=8), i, 2)
           for i in range(2)]
  assert [h.host_batch_size for h in hosts] == [4, 4]
  first = [next(h.batches(0))["input_ids"] for h in hosts]
  assert not np.array_equal(first[0], first[1])


def test_batches_are_deterministic_from_the_seed(small_corpus):
  a, b, c = (next(PretrainingData.from_config(_tiny(source=small_corpus, seed=s)).batches(0))
             for s in (1, 1, 2))
  np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
  assert not np.array_equal(a["input_ids"], c["input_ids"])


def test_batches_have_fixed_shapes_for_every_family():
  for spec in ("bert.py:tiny", "albert.py:tiny", "roberta.py:tiny", "electra.py:tiny",
               "spanbert.py:tiny"):
    config = load_config(spec)
    batch = next(PretrainingData.from_config(config).batches(0))
    b, s, p = config.train.batch_size, config.data.seq_len, config.data.max_predictions
    assert batch["input_ids"].shape == (b, s) and batch["attention_mask"].shape == (b, s)
    assert batch["masked_positions"].shape == (b, p) and batch["span_bounds"].shape == (b, p, 2)
    assert batch["span_slots"].shape == (b, p) and batch["span_weights"].shape == (b, p)
    assert batch["input_ids"].max() < config.model.vocab_size


def test_empty_or_missing_corpus_says_what_to_change(tmp_path):
  with pytest.raises(FileNotFoundError, match="matches no file.*one sentence per line"):
    PretrainingData.from_config(_tiny(source=str(tmp_path / "nothing*.txt")))
  (tmp_path / "empty.txt").write_text("\n\n")
  with pytest.raises(ValueError, match="no train documents.*is the corpus empty"):
    PretrainingData.from_config(_tiny(source=str(tmp_path / "empty.txt")))


def test_vocabulary_larger_than_the_model_names_the_fix(small_corpus):
  config = _tiny(source=small_corpus)
  config.model.vocab_size = 100
  with pytest.raises(ValueError, match="model.vocab_size is 100; set --config.model.vocab_size"):
    PretrainingData.from_config(config)


def test_inspect_data_prints_examples_then_statistics(small_corpus):
  result = subprocess.run(
      [sys.executable, "-m", "bertlab.main", "--config=configs/spanbert.py:tiny",
       "--mode=inspect_data", "--batches=4", f"--config.data.source={small_corpus}",
       "--config.train.batch_size=16"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
  lines = result.stdout.strip().splitlines()
  stats = json.loads(lines[-1])
  for key in ("selected_rate", "mask_token_share", "random_token_share", "kept_share",
              "mean_span_length", "sentence_label_share", "padding_share", "sequences_per_sec"):
    assert key in stats
  assert stats["sequences"] == 64 and stats["mean_span_length"] > 2
  assert any("[MASK]/" in line for line in lines[:-1])


def test_tfds_source_reads_documents_by_name_and_split():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=40):
    docs = list(corpus.read_documents("tfds:wikipedia/20230601.en:train"))
    assert len(docs) == 40 and all(isinstance(s, str) for d in docs for s in d)
    batch = next(PretrainingData.from_config(
        _tiny(source="tfds:wikipedia/20230601.en:train", batch_size=4)).batches(0))
    assert batch["input_ids"].shape == (4, 128)
  with pytest.raises(ValueError, match="expected tfds:<name>"):
    list(corpus.read_documents("tfds:wikipedia"))


def test_gzipped_text_files_and_globs(tmp_path):
  import gzip
  with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
    f.write("First sentence.\nSecond one.\n\nAnother document.\nIts end.\n")
  (tmp_path / "b.txt").write_text("Plain text document.\nWith two lines.\n")
  docs = list(corpus.read_documents(str(tmp_path / "*.txt*")))
  assert docs == [["First sentence.", "Second one."], ["Another document.", "Its end."],
                  ["Plain text document.", "With two lines."]]


def test_embedded_corpus_is_prose_in_documents():
  docs = list(corpus.read_documents("default"))
  sentences = [s for d in docs for s in d]
  assert len(docs) > 300 and len(sentences) > 10_000
  assert os.path.getsize(corpus.default_corpus_path()) > 1_000_000
  assert not any(s.startswith(">>>") for s in sentences)
