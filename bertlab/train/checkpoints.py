"""Checkpoints with orbax's CheckpointManager: the train state and the data position.

Items: `state` (step, params, optimizer state; restored straight into their shardings) and
`data` (JSON: the step the pipeline resumes from, and the data seed). The RNG needs no item:
every step's key is fold_in(seed, step).
"""

import os

import jax
import orbax.checkpoint as ocp

from bertlab import files


def manager(workdir: str, train) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=train.keep_checkpoints, enable_async_checkpointing=True, create=True)
  return ocp.CheckpointManager(
      os.path.join(files.absolute(workdir), "checkpoints"), options=options,
      item_handlers=dict(state=ocp.StandardCheckpointHandler(), data=ocp.JsonCheckpointHandler()))


def save(mngr: ocp.CheckpointManager, step: int, state, data_position: dict):
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          data=ocp.args.JsonSave(data_position)), force=True)


def _path_name(path) -> str:
  """One spelling for a leaf's path, whether its containers are dataclasses, dicts or lists."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return "/".join(parts)


def check_shapes(mngr: ocp.CheckpointManager, step: int, abstract_state):
  """A checkpoint of another architecture: name every mismatched shape, keep the files."""
  stored = mngr.item_metadata(step)["state"]
  stored_tree = getattr(stored, "tree", stored)
  ours = {_path_name(k): v for k, v in jax.tree_util.tree_leaves_with_path(abstract_state)}
  by_name = {_path_name(k): v for k, v in jax.tree_util.tree_leaves_with_path(stored_tree)}
  problems = []
  for name, leaf in ours.items():
    other = by_name.pop(name, None)
    if other is None:
      problems.append(f"{name}: missing from the checkpoint")
    elif tuple(getattr(other, "shape", ())) != tuple(leaf.shape):
      problems.append(f"{name}: checkpoint {tuple(other.shape)} vs model {tuple(leaf.shape)}")
  problems += [f"{name}: in the checkpoint only" for name in by_name]
  if problems:
    shown = "\n  ".join(problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    raise ValueError(
        f"The checkpoint at step {step} in {mngr.directory} was written by another "
        f"architecture or optimizer:\n  {shown}{more}\nUse a new --workdir, or the config that "
        "wrote this one. The checkpoint is left untouched.")


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state, shardings):
  """The state at `step`, placed in `shardings`, after checking it fits `abstract_state`."""
  check_shapes(mngr, step, abstract_state)
  target = jax.tree_util.tree_map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings)
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
  return restored["state"], restored["data"]

