"""Built pretraining examples cached on disk, so a run on a large corpus starts, and resumes,
in seconds instead of re-tokenizing it.

An entry is a directory of `.npy` files (one per example array), opened memory-mapped, and a
`key.json` saying what made it. The key holds everything the arrays depend on: the corpus
files (name, size, a digest of their bytes; a TFDS spec by name), the tokenizer (kind, a hash of its
pieces and model files, its normalisation), the builder settings, the seeds, the host's share
and the split; static masks add the masking settings and the dupe factor. A changed file or
setting is a new key, never a stale hit. Entries are written beside their final name and
renamed into place, so a killed writer or two concurrent first runs never leave half an entry.
Entries live under `$BERTLAB_CACHE/examples/` (`~/.cache/bertlab` by default); delete that
folder to reclaim the space.
"""

import dataclasses
import hashlib
import json
import os
import shutil
from typing import Callable

import numpy as np

from bertlab.data import corpus

# Part of every key: bump it when the builders or the masking change what they make.
# 2: data.pack_sequences=True packs the pair formats and `single` too.
# 3: packed `single` inputs are cut every seq_len - 2 tokens, not at whole sentences.
CACHE_VERSION = 3


def source_fingerprint(source: str) -> list:
  """What identifies a corpus: each file's name, size and digest (`corpus.file_stats`)."""
  if source.startswith(("tfds:", "records:")):
    return [source]
  return corpus.file_stats([corpus.default_corpus_path()] if source == "default"
                           else corpus._text_files(source))


def tokenizer_fingerprint(tokenizer) -> str:
  digest = hashlib.sha256()
  digest.update(json.dumps([tokenizer.kind, tokenizer.lower_case, tokenizer.word_boundary,
                            tokenizer.pieces]).encode())
  digest.update(tokenizer.model_proto or b"")
  for path in (tokenizer.merges_path, tokenizer.tokenizer_file):
    if path:
      with open(path, "rb") as f:
        digest.update(f.read())
  if tokenizer.specials:
    digest.update(json.dumps(tokenizer.specials, sort_keys=True).encode())
  return digest.hexdigest()


def key_of(**parts) -> dict:
  """A JSON-able key; dataclasses (builder and masking configs) by their fields."""
  plain = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
           for k, v in parts.items()}
  return {"version": CACHE_VERSION, **plain}


def entry_dir(kind: str, key: dict) -> str:
  text = json.dumps(key, sort_keys=True)
  name = f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"
  return os.path.join(corpus.cache_dir(), "examples", name)


def load(path: str) -> dict[str, np.ndarray] | None:
  """The arrays of a complete entry (memory-mapped, read-only), or None."""
  if not os.path.exists(os.path.join(path, "key.json")):
    return None
  return {os.path.splitext(f)[0]: np.load(os.path.join(path, f), mmap_mode="r")
          for f in sorted(os.listdir(path)) if f.endswith(".npy")}


def save(path: str, key: dict, arrays: dict[str, np.ndarray]) -> None:
  tmp = f"{path}.{os.getpid()}.tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for name, array in arrays.items():
    np.save(os.path.join(tmp, f"{name}.npy"), np.ascontiguousarray(array))
  with open(os.path.join(tmp, "key.json"), "w") as f:  # last: it marks the entry complete
    json.dump(key, f, indent=1)
  try:
    os.replace(tmp, path)
  except OSError:  # another process wrote it first: the same arrays
    shutil.rmtree(tmp, ignore_errors=True)
    if load(path) is None:
      raise


def cached(kind: str, key: dict, build: Callable[[], dict[str, np.ndarray]]
           ) -> tuple[dict[str, np.ndarray], bool]:
  """(arrays, whether they came from the cache): the entry of `key`, built and saved if absent."""
  path = entry_dir(kind, key)
  arrays = load(path)
  if arrays is not None:
    return arrays, True
  arrays = build()
  try:
    save(path, key, arrays)
  except OSError as error:  # a full or read-only cache costs speed, not the run
    print(f"Warning: could not cache examples in {path}: {error}", flush=True)
    return arrays, False
  return load(path), False
