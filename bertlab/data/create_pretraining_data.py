"""Write pretraining examples as sharded TFRecords, streaming, in parallel.

  python -m bertlab.data.create_pretraining_data --config=configs/roberta.py:base \
      --config.data.source='corpus/*.txt' --output_dir=records/ --num_workers=8

The google-research/bert tool, extended to every `data.input_format`, `data.sentence_objective`
and `data.masking` of bertlab. The corpus is read as a stream and cut into chunks of
`--docs_per_shard` documents; each chunk becomes one output shard, made by one of
`--num_workers` processes, with at most two chunks per worker in flight, so memory stays bounded
whatever the corpus size. NotNext segments (NSP) are drawn from the documents of the same chunk.
`--shard_index/--num_shards` split the chunks between machines.

With `data.dynamic_masking=False` every sequence is written `data.dupe_factor` times, each copy
with its own mask (static masking). With dynamic masking the sequences are written once,
unmasked, and the training pipeline masks them afresh each epoch. `data.segment_per_dupe=True`
cuts the documents into examples afresh for every dupe, as the released tool does. Train on the output with
`--config.data.source='records:<output_dir>/*.tfrecord'`.
"""

import itertools
import multiprocessing
import os
import resource
import sys
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "A config file and its argument.",
                                          lock_config=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the .tfrecord shards go.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 1, "Processes making shards in parallel.")
_DOCS_PER_SHARD = flags.DEFINE_integer("docs_per_shard", 2000, "Documents per output shard.")
_SHARD_INDEX = flags.DEFINE_integer("shard_index", 0, "This machine's share of the chunks...")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "...of this many machines.")


class ShardWriter:
  """Turns one chunk of documents into one TFRecord shard; one per worker process."""

  def __init__(self, config):
    # TensorFlow loads with these, in each worker after _init_worker quietened it.
    from bertlab.data import pipeline
    from bertlab.data.vocab import tokenizer_from_config
    self.config = config
    self.tokenizer = tokenizer_from_config(config.data, config.model.vocab_size)
    self.builder = pipeline.builder_config(config.data, self.tokenizer)
    self.masking = pipeline.masking_config(config.data, self.tokenizer,
                                           config.model.max_span_length)

  def write(self, chunk_index: int, docs: list[list[str]], path: str) -> int:
    import numpy as np
    from bertlab.data import pipeline, records  # TensorFlow: see __init__
    data = self.config.data
    tokenized = pipeline.tokenize_documents(docs, self.tokenizer)
    rng = np.random.default_rng([data.seed, chunk_index])
    cuts = pipeline.segmentations(data)
    arrays = pipeline.build_segmentations(tokenized, self.builder, rng, cuts)
    if not len(arrays["input_ids"]):
      return 0
    if not data.dynamic_masking:
      arrays = pipeline.static_masked_copies(arrays, self.masking, self.tokenizer,
                                             data.dupe_factor // cuts, (data.seed, chunk_index))
      order = rng.permutation(len(arrays["input_ids"]))  # BERT shuffles the copies together
      arrays = {k: v[order] for k, v in arrays.items()}
    tmp = f"{path}.tmp"
    count = records.write_records(tmp, arrays)
    os.replace(tmp + ".json", path + ".json")
    os.replace(tmp, path)
    return count


_writer = None


def _init_worker(config):
  global _writer
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  _writer = ShardWriter(config)


def _write_chunk(args):
  return _writer.write(*args)


def _chunks(config, docs_per_shard: int, shard_index: int, num_shards: int):
  from bertlab.data import corpus  # TensorFlow: after main's logging setup
  docs = corpus.read_documents(config.data.source)
  for index in itertools.count():
    chunk = list(itertools.islice(docs, docs_per_shard))
    if not chunk:
      return
    if index % num_shards == shard_index:
      yield index, chunk


def peak_memory_mb() -> float:
  """Peak resident memory of this process and of its largest finished child, in MB."""
  own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
  return max(own, children) / 1024


def create(config, output_dir: str, num_workers: int = 1, docs_per_shard: int = 2000,
           shard_index: int = 0, num_shards: int = 1) -> dict:
  """Writes the shards; returns counts and timings."""
  os.makedirs(output_dir, exist_ok=True)
  start, total, shards = time.time(), 0, 0
  path = lambda i: os.path.join(output_dir, f"pretrain-{i:05d}.tfrecord")
  jobs = ((i, chunk, path(i)) for i, chunk in _chunks(config, docs_per_shard, shard_index,
                                                       num_shards))
  context = multiprocessing.get_context("spawn")  # TF is not fork-safe
  with context.Pool(num_workers, _init_worker, (config,)) as pool:
    pending = []
    for job in itertools.chain(jobs, [None]):
      if job is not None:
        pending.append(pool.apply_async(_write_chunk, (job,)))
      # Bounded memory: at most two chunks per worker are read ahead.
      while pending and (job is None or len(pending) >= 2 * num_workers):
        count = pending.pop(0).get()
        total, shards = total + count, shards + (count > 0)
  if not total:
    raise ValueError(f"data.source={config.data.source!r} gave no examples: is it empty?")
  return dict(examples=total, shards=shards, seconds=round(time.time() - start, 2),
              peak_memory_mb=round(peak_memory_mb(), 1))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _OUTPUT_DIR.value:
    raise app.UsageError("--output_dir is required.")
  stats = create(_CONFIG.value, _OUTPUT_DIR.value, _NUM_WORKERS.value, _DOCS_PER_SHARD.value,
                 _SHARD_INDEX.value, _NUM_SHARDS.value)
  print(" ".join(f"{k}: {v}" for k, v in stats.items()), file=sys.stdout)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
