"""The vocabulary a config names (`data.tokenizer`, `data.vocab`): a directory of one, or one
trained on the embedded corpus or on `data.source` the first time it is needed and cached."""

import hashlib
import json
import os
import shutil

from bertlab.data import corpus, train_tokenizer
from bertlab.data.tokenizers import KINDS, Tokenizer, load_tokenizer


def default_vocab(kind: str, vocab_size: int, source: str = "default") -> str:
  """A vocabulary of `kind` trained on `source` (the embedded corpus by default, or text
  files in BERT's format), built once and cached; the name of a corpus's vocabulary holds a
  hash of its files' names, sizes and contents (`corpus.file_stats`)."""
  if source == "default":
    files = [corpus.default_corpus_path()]
    stem = os.path.splitext(os.path.basename(files[0]))[0]
  else:
    if source.startswith(("tfds:", "records:")):
      raise ValueError(f"data.vocab=corpus trains the vocabulary on data.source's text files, "
                       f"but data.source={source!r} is not text files; give data.vocab a "
                       "vocabulary directory (train one with `python -m "
                       "bertlab.data.train_tokenizer`).")
    files = corpus._text_files(source)
    stats = json.dumps(corpus.file_stats(files))
    stem = "corpus-" + hashlib.sha256(stats.encode()).hexdigest()[:16]
  directory = os.path.join(corpus.cache_dir(), f"vocab-{kind}-{vocab_size}-{stem}")
  if not os.path.exists(directory):
    tmp = f"{directory}.{os.getpid()}.tmp"
    train_tokenizer.train_vocab(kind, files, vocab_size, tmp)
    try:
      os.replace(tmp, directory)
    except OSError:  # another process built it first: theirs is the same vocabulary
      if not os.path.isdir(directory):
        raise
      shutil.rmtree(tmp, ignore_errors=True)
  return directory


def tokenizer_from_config(data_config, vocab_size: int | None = None) -> Tokenizer:
  """`data.tokenizer` / `data.vocab`: a directory; `default`, trained on the embedded corpus
  with the model's vocab_size; or `corpus`, trained on `data.source` with the model's
  vocab_size (the CPU-scale configs: a small vocabulary of the corpus keeps the MLM head cheap)."""
  kind = data_config.tokenizer
  if data_config.vocab in ("default", "corpus"):
    if kind not in KINDS:
      raise ValueError(f"Unknown data.tokenizer {kind!r}; valid: {', '.join(KINDS)}.")
    source = data_config.source if data_config.vocab == "corpus" else "default"
    path = default_vocab(kind, vocab_size, source)
  else:
    path = data_config.vocab
  return load_tokenizer(path, kind, data_config.get("lower_case"),
                        data_config.get("word_boundary", "marker"))
