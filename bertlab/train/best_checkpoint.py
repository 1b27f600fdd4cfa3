"""Fine-tuning's best model, `workdir/best/`: replaced so that a kill never leaves none.

Each best is written whole into its own directory (`params-<step>`) before `best.json`, which
names it, is swapped in by an atomic rename; only then is the previous one removed. A kill at
any moment leaves `best.json` naming a complete set of parameters (the old or the new). Paths
go through bertlab/files.py, so `gs://` workdirs work as local ones do.
"""

import json
import os

import jax
import orbax.checkpoint as ocp

from bertlab import files
from bertlab.train import checkpoints

BEST_DIR, RECORD = "best", "best.json"


def directory(workdir: str) -> str:
  return os.path.join(files.absolute(workdir), BEST_DIR)


def exists(workdir: str) -> bool:
  return files.exists(os.path.join(directory(workdir), RECORD))


def save(workdir: str, params, record: dict) -> None:
  """Writes `params` as the new best with `record` (epoch, step, metrics)."""
  folder = directory(workdir)
  name = f"params-{record['step']}"
  checkpointer = ocp.StandardCheckpointer()
  target = os.path.join(folder, name)
  if files.exists(target):  # left by a kill before its record was swapped in
    files.rmtree(target)
  checkpointer.save(target, params)
  checkpointer.wait_until_finished()
  if jax.process_index() != 0:
    return
  record_path = os.path.join(folder, RECORD)
  files.write_whole(record_path, json.dumps(dict(record, params=name), indent=2))
  for entry in files.listdir(folder):
    entry = entry.rstrip("/")
    if entry.startswith("params") and entry != name:
      files.rmtree(os.path.join(folder, entry))


def _record(workdir: str) -> tuple[str, dict]:
  """(the best parameters' directory, the record without its name)."""
  folder = directory(workdir)
  with files.open_file(os.path.join(folder, RECORD)) as f:
    record = json.load(f)
  return os.path.join(folder, record.pop("params", "params")), record


def restore(workdir: str, abstract_params, shardings):
  """(params placed in `shardings`, record) of the best so far."""
  path, record = _record(workdir)
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        abstract_params, shardings)
  return ocp.StandardCheckpointer().restore(path, target), record


def read(workdir: str) -> tuple[dict, dict]:
  """(params, record): the best model read back whole on this host (for export), whatever
  mesh wrote it."""
  path, record = _record(workdir)
  checkpointer = ocp.StandardCheckpointer()
  return checkpointer.restore(path, checkpoints.on_this_host(checkpointer.metadata(path))), record
