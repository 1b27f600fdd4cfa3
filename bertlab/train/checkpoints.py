"""Checkpoints with orbax's CheckpointManager: the train state and the data position.

Items: `state` (step, params, optimizer state; restored straight into their shardings) and
`data` (JSON: the step the pipeline resumes from, and the data seed). The RNG needs no item:
every step's key is fold_in(seed, step).
"""

import glob
import os
import shutil

import jax
import orbax.checkpoint as ocp

from bertlab import files


def manager(workdir: str, train, keep_steps: tuple[int, ...] = ()) -> ocp.CheckpointManager:
  """The newest `train.keep_checkpoints` steps are kept, and every step in `keep_steps` (a
  warmup-stable-decay run's end of the stable phase) for good."""
  keep = dict(max_to_keep=train.keep_checkpoints)
  if keep_steps:
    policies = ocp.checkpoint_managers
    keep = dict(preservation_policy=policies.AnyPreservationPolicy([
        policies.LatestN(train.keep_checkpoints), policies.CustomSteps(list(keep_steps))]))
  options = ocp.CheckpointManagerOptions(enable_async_checkpointing=True, create=True, **keep)
  return ocp.CheckpointManager(
      os.path.join(files.absolute(workdir), "checkpoints"), options=options,
      item_handlers=dict(state=ocp.StandardCheckpointHandler(), data=ocp.JsonCheckpointHandler()))


def save(mngr: ocp.CheckpointManager, step: int, state, data_position: dict):
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          data=ocp.args.JsonSave(data_position)), force=True)


class ArchitectureMismatch(ValueError):
  """The checkpoint is whole but holds another model or optimizer."""


# Checkpoints that would not restore are moved here (never deleted), newest first.
UNRESTORABLE_DIR = "checkpoints_unrestorable"


class SaveFailed(OSError):
  """An (asynchronous) checkpoint save failed: the run stops at the next step, saying why."""


def _save_failed(mngr: ocp.CheckpointManager, error: BaseException) -> SaveFailed:
  directory = str(mngr.directory)
  for leftover in glob.glob(os.path.join(directory, "*.orbax-checkpoint-tmp*")):
    shutil.rmtree(leftover, ignore_errors=True)  # a half-written step, never restorable
  mngr.reload()
  kept = mngr.latest_step()
  space = ""
  if "://" not in directory and os.path.isdir(directory):
    usage = shutil.disk_usage(directory)
    space = f" Free space there: {usage.free / 2**20:.1f} MiB of {usage.total / 2**20:.1f} MiB."
  text = str(error).strip() or repr(error)
  known = [cause for cause in ("No space left on device", "Permission denied",
                               "Read-only file system", "Disk quota exceeded") if cause in text]
  detail = text.splitlines()[0][:300]
  reason = f"{known[0]} ({detail})" if known else detail
  return SaveFailed(
      f"Saving a checkpoint to {directory} failed: {reason}.{space} The last saved step "
      f"is {kept if kept is not None else 'none'}; the half-written one was removed. Free "
      "space (or lower train.keep_checkpoints, or use another --workdir) and rerun to resume.")


class Saver:
  """Asynchronous saves whose failure stops the run at the next step, not a save later.

  orbax reports a failed background save only when the next one starts (a checkpoint
  interval on) or at exit; the saver asks after every step whether the save in flight has
  ended, and if so whether it landed."""

  def __init__(self, mngr: ocp.CheckpointManager):
    self.mngr, self.pending = mngr, None

  def save(self, step: int, state, data_position: dict):
    try:
      save(self.mngr, step, state, data_position)
    except Exception as error:  # noqa: BLE001 (orbax raises what the storage raised)
      raise _save_failed(self.mngr, error) from None
    self.pending = step

  def check(self):
    if self.pending is not None and not self.mngr.is_saving_in_progress():
      self.finish()

  def finish(self):
    """Waits for the save in flight; a failed one raises SaveFailed."""
    try:
      self.mngr.wait_until_finished()
    except Exception as error:  # noqa: BLE001
      raise _save_failed(self.mngr, error) from None
    self.pending = None


def _path_name(path) -> str:
  """One spelling for a leaf's path, whether its containers are dataclasses, dicts or lists."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return "/".join(parts)


def stored_tree(metadata):
  """The tree of array metadata inside what orbax's `metadata` / `item_metadata` return."""
  tree = getattr(metadata, "item_metadata", metadata)
  return getattr(tree, "tree", tree)


def on_this_host(metadata) -> object:
  """A restore target with the stored shapes and dtypes, whole on this host's first device:
  reads a checkpoint written on any mesh and any number of hosts (orbax refuses to place
  arrays by the writer's topology when it is not this one)."""
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                      stored_tree(metadata),
                      is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"))


def shape_problems(expected: dict, found: dict, only_found: str | None = None) -> list[str]:
  """One line per parameter (name -> shape) that `found` lacks or holds in another shape,
  and, with `only_found`, per name only `found` has ("in the checkpoint only")."""
  problems = []
  for name, shape in expected.items():
    if name not in found:
      problems.append(f"{name}: missing from the checkpoint")
    elif tuple(found[name]) != tuple(shape):
      problems.append(f"{name}: checkpoint {tuple(found[name])} vs model {tuple(shape)}")
  if only_found:
    problems += [f"{name}: {only_found}" for name in found if name not in expected]
  return problems


def listing(problems: list[str], limit: int = 20) -> str:
  """The problems one per indented line, the first `limit` of them and a count of the rest."""
  more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
  return "  " + "\n  ".join(problems[:limit]) + more


def check_shapes(mngr: ocp.CheckpointManager, step: int, abstract_state):
  """A checkpoint of another architecture: name every mismatched shape, keep the files."""
  stored = stored_tree(mngr.item_metadata(step)["state"])
  shapes = lambda tree: {_path_name(k): tuple(getattr(v, "shape", ()))
                         for k, v in jax.tree_util.tree_leaves_with_path(tree)}
  problems = shape_problems(shapes(abstract_state), shapes(stored), "in the checkpoint only")
  if problems:
    raise ArchitectureMismatch(
        f"The checkpoint at step {step} in {mngr.directory} was written by another "
        f"architecture or optimizer:\n{listing(problems)}\nUse a new --workdir, or the "
        "config that wrote this one. The checkpoint is left untouched.")


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state, shardings):
  """The state at `step`, placed in `shardings`, after checking it fits `abstract_state`."""
  check_shapes(mngr, step, abstract_state)
  target = jax.tree_util.tree_map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, shardings)
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
  return restored["state"], restored["data"]



def restore_newest(mngr: ocp.CheckpointManager, abstract_state, shardings):
  """(step, state, data) of the newest checkpoint that restores, or None when there is none.

  A step that fails to restore (a truncated or corrupt file: a kill mid-copy, a bad disk) is
  moved to `checkpoints_unrestorable/` beside `checkpoints/`, saying why, and the next older
  one is tried; a checkpoint of another architecture stops with its shapes instead."""
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state, data = restore(mngr, step, abstract_state, shardings)
      return step, state, data
    except ArchitectureMismatch:
      raise
    except Exception as error:  # noqa: BLE001 (orbax and tensorstore raise many kinds)
      reason = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
      moved = _move_aside(mngr, step)
      print(f"Checkpoint step {step} in {mngr.directory} does not restore ({reason}); moved "
            f"it to {moved} and trying the previous one.", flush=True)
  return None


def _move_aside(mngr: ocp.CheckpointManager, step: int) -> str:
  source = os.path.join(str(mngr.directory), str(step))
  target_dir = os.path.join(os.path.dirname(str(mngr.directory).rstrip("/")), UNRESTORABLE_DIR)
  target = os.path.join(target_dir, str(step))
  if jax.process_index() == 0:
    files.makedirs(target_dir)
    if files.exists(target):
      files.rmtree(target)  # an older copy of the same unrestorable step
    files.replace(source, target)
  mngr.reload()
  return target
