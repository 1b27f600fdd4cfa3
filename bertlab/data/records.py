"""Pretraining examples as TFRecords: what `bertlab.data.create_pretraining_data` writes
(one tf.train.Example per row, shapes and dtypes in a `.json` beside each shard) and what
`data.source=records:PATTERN` reads back, each host its share of the shards. Local paths and
gs:// alike (tf.io.gfile)."""

import json

import numpy as np
import tensorflow as tf

from bertlab import files


def _feature(array: np.ndarray) -> tf.train.Feature:
  flat = array.reshape(-1)
  if flat.dtype.kind == "f":
    return tf.train.Feature(float_list=tf.train.FloatList(value=flat))
  return tf.train.Feature(int64_list=tf.train.Int64List(value=flat.astype(np.int64)))


def write_records(path: str, arrays: dict[str, np.ndarray]) -> int:
  """One tf.train.Example per row; the shapes and dtypes go to `path`.json."""
  n = len(arrays["input_ids"])
  with tf.io.TFRecordWriter(path) as writer:
    for row in range(n):
      features = {k: _feature(v[row]) for k, v in arrays.items()}
      writer.write(tf.train.Example(features=tf.train.Features(feature=features))
                   .SerializeToString())
  spec = {k: dict(shape=list(v.shape[1:]), dtype=str(v.dtype)) for k, v in arrays.items()}
  with files.open_file(path + ".json", "w") as f:
    json.dump(dict(num_examples=n, features=spec), f)
  return n


def read_records(pattern: str, process_index: int = 0,
                 process_count: int = 1) -> tuple[dict[str, np.ndarray], bool]:
  """This host's records of `pattern` -> (arrays, whether they carry masks)."""
  shards = sorted(f for f in tf.io.gfile.glob(pattern) if not f.endswith(".json"))
  if not shards:
    raise FileNotFoundError(f"data.source=records:{pattern} matches no TFRecord file; write "
                            "some with `python -m bertlab.data.create_pretraining_data`.")
  if len(shards) < process_count:
    raise ValueError(f"{len(shards)} record files for {process_count} hosts: write at least one "
                     "shard per host (create_pretraining_data --num_output_shards).")
  shards = shards[process_index::process_count]
  spec = files.read_json(shards[0] + ".json")["features"]
  features = {k: tf.io.FixedLenFeature(v["shape"], tf.float32 if "float" in v["dtype"]
                                       else tf.int64) for k, v in spec.items()}
  dataset = tf.data.TFRecordDataset(shards).batch(4096).map(
      lambda x: tf.io.parse_example(x, features))
  parts = list(dataset.as_numpy_iterator())
  arrays = {k: np.concatenate([p[k] for p in parts]).astype(spec[k]["dtype"]) for k in spec}
  return arrays, "masked_positions" in arrays
