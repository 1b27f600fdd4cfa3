"""The example cache: a second start reads the built examples (and static masks) back instead
of tokenizing the corpus again, with identical batches; a changed corpus or setting rebuilds."""

import os
import shutil

import numpy as np
import pytest

from bertlab.data import corpus, example_cache, pipeline
from bertlab.data.pipeline import PretrainingData
from conftest import load_config
from data_helpers import write_corpus


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv("BERTLAB_CACHE", str(tmp_path / "cache"))
  # The vocabulary stays where the session's tests keep it: only the examples are new here.
  return tmp_path / "cache" / "examples"


def _config(source, **data):
  config = load_config("bert.py:tiny")
  config.train.batch_size = 8
  config.data.update(source=source, **data)
  return config


def _docs(n, offset=0):
  return [doc for doc, _ in zip(list(corpus.read_documents("default"))[offset:], range(n))]


def _no_tokenizing(*args, **kwargs):
  raise AssertionError("tokenized again: the cache was not used")


def _same_batches(a: PretrainingData, b: PretrainingData, start=3, count=2):
  for x, y in zip(*(list(map(lambda _: next(it), range(count)))
                    for it in (a.batches(start), b.batches(start)))):
    assert sorted(x) == sorted(y)
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.mark.parametrize("dynamic", [True, False])
def test_second_start_reads_the_cache_and_gives_the_same_batches(tmp_path, cache, monkeypatch,
                                                                 dynamic):
  source = write_corpus(str(tmp_path / "docs.txt"), _docs(60))
  config = _config(source, dynamic_masking=dynamic, dupe_factor=3)
  first = PretrainingData.from_config(config, 0, 1)
  kinds = sorted(p.name.split("-")[0] for p in cache.iterdir())
  assert kinds == (["examples"] if dynamic else ["examples", "static"])
  monkeypatch.setattr(pipeline, "tokenize_documents", _no_tokenizing)
  monkeypatch.setattr(pipeline, "static_masked_copies", _no_tokenizing)
  second = PretrainingData.from_config(config, 0, 1)
  assert second.num_sequences == first.num_sequences
  _same_batches(first, second)


def test_a_changed_corpus_or_setting_is_a_new_entry(tmp_path, cache):
  source = write_corpus(str(tmp_path / "docs.txt"), _docs(40))
  before = PretrainingData.from_config(_config(source), 0, 1).num_sequences
  PretrainingData.from_config(_config(source, seq_len=64), 0, 1)
  held_out = _config(source)
  held_out.train.batch_size = 2  # two held-out documents in 40
  PretrainingData.from_config(held_out, 0, 1, split="eval")
  entries = lambda: sorted(p.name for p in cache.iterdir() if p.name.startswith("examples-"))
  assert len(entries()) == 3
  write_corpus(source, _docs(80))  # the same file, rewritten with more documents
  after = PretrainingData.from_config(_config(source), 0, 1).num_sequences
  assert after > before
  assert len(entries()) == 4


def test_a_corpus_copied_anew_reads_the_cache(tmp_path, cache, monkeypatch):
  """A fresh machine's copy of the data (another folder, new modification times) is the same
  corpus: its examples come from the cache, not from tokenizing again."""
  source = write_corpus(str(tmp_path / "docs.txt"), _docs(40))
  first = PretrainingData.from_config(_config(source), 0, 1)
  (tmp_path / "copy").mkdir()
  copied = shutil.copy(source, tmp_path / "copy" / "docs.txt")
  os.utime(copied, ns=(1_000_000_000, 1_000_000_000))
  monkeypatch.setattr(pipeline, "tokenize_documents", _no_tokenizing)
  second = PretrainingData.from_config(_config(str(copied)), 0, 1)
  _same_batches(first, second)


def test_an_unfinished_entry_is_never_read(tmp_path, cache):
  """A writer killed before key.json leaves a directory that load ignores: it is rebuilt."""
  source = write_corpus(str(tmp_path / "docs.txt"), _docs(40))
  config = _config(source, dynamic_masking=True)
  first = PretrainingData.from_config(config, 0, 1)
  (entry,) = cache.iterdir()
  (entry / "key.json").unlink()
  (entry / "input_ids.npy").unlink()  # a new file: `first` still maps the old one
  (entry / "input_ids.npy").write_bytes(b"truncated")
  assert example_cache.load(str(entry)) is None
  with pytest.raises(OSError):  # the half entry is in the way of the rename: say so, ...
    example_cache.save(str(entry), {}, {"x": np.zeros(1)})
  shutil.rmtree(entry)
  second = PretrainingData.from_config(config, 0, 1)  # ... and a clean rebuild matches
  _same_batches(first, second)
