"""Files of a workdir that may be local or in a bucket (`gs://...`, as on a TPU pod), through
tf.io.gfile, which reads and writes both."""

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
