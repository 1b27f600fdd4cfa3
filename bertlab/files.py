"""Files of a workdir that may be local or in a bucket (`gs://...`, as on a TPU pod), through
tf.io.gfile, which reads and writes both."""

import json
import os


def _gfile():
  import tensorflow as tf
  return tf.io.gfile


def absolute(path: str) -> str:
  """An absolute local path (orbax wants one); a URL as it is."""
  return path if "://" in path else os.path.abspath(path)


def exists(path: str) -> bool:
  return _gfile().exists(path)


def isdir(path: str) -> bool:
  return _gfile().isdir(path)


def makedirs(path: str) -> None:
  _gfile().makedirs(path)


def open_file(path: str, mode: str = "r"):
  return _gfile().GFile(path, mode)


def replace(source: str, target: str) -> None:
  """Renames `source` over `target` (atomic on a local disk)."""
  _gfile().rename(source, target, overwrite=True)


def write_whole(target: str, text: str) -> None:
  """Written beside the old file and swapped in, so a kill leaves one whole."""
  with open_file(target + ".tmp", "w") as f:
    f.write(text)
  replace(target + ".tmp", target)


def rmtree(path: str) -> None:
  _gfile().rmtree(path)


def listdir(path: str) -> list[str]:
  return _gfile().listdir(path)


def append_text(path: str, text: str) -> None:
  """Appends to a file; any failure (read-only, full, gone) as an OSError naming the path."""
  import tensorflow as tf
  try:
    with open_file(path, "a") as f:
      f.write(text)
  except tf.errors.OpError as error:
    raise OSError(f"Cannot append to {path}: {error.message}") from None


def read_json(path: str) -> dict:
  """A JSON file of a checkpoint; an invalid one is named (not a bare JSONDecodeError)."""
  with open_file(path) as f:
    text = f.read()
  try:
    return json.loads(text)
  except json.JSONDecodeError as error:
    raise ValueError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column "
                     f"{error.colno}): truncated or hand-edited?") from None
