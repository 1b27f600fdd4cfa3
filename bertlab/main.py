"""Entry point: python -m bertlab.main --config=configs/<family>.py:<size> --workdir=DIR.

A config with a `finetune` section (configs/finetune/) fine-tunes; the others pretrain.
The console shows bertlab's own lines and every warning and error; `--verbosity=0` adds the
libraries' INFO records (orbax, absl, jax) and TensorFlow's start-up notices.
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from bertlab import console
from bertlab.config_files import job_kind

MODES = ("train", "eval", "summary", "inspect_data")

_CONFIG = config_flags.DEFINE_config_file("config", None, "A config file and its argument.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go.")
_MODE = flags.DEFINE_enum("mode", "train", MODES, "train (resumes from --workdir), eval (the "
                          "latest checkpoint), summary, or inspect_data.")
_BATCHES = flags.DEFINE_integer("batches", 10, "inspect_data: how many batches to read.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "Multi-host: host:port of process 0 (jax.distributed).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-host: how many processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Multi-host where JAX finds its peers "
                               "itself (every host of a TPU pod, Slurm, Open MPI).")
flags.mark_flags_as_required(["config"])


def exit_now(code: int):
  """Exits without the interpreter's teardown, once everything is saved and closed: on the
  cpu config that teardown (a garbage collection over TF's and JAX's objects) takes 18 s,
  which a preempted VM (about 30 s of notice) cannot spare."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  console.setup_from_flags()
  # bertlab imports below console.setup: TensorFlow's start-up notices are filtered only
  # for imports after it (bertlab/console.py)
  if _MODE.value in ("train", "eval"):
    from bertlab.train import distributed
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           auto=_MULTIHOST.value)
    if not _WORKDIR.value:
      raise app.UsageError(f"--mode={_MODE.value} needs --workdir.")
    import json
    from bertlab.train import checkpoints
    from bertlab.train.trainer import Preempted
    if job_kind(_CONFIG.value) == "finetune":
      from bertlab.train import finetuner as trainer
      run, evaluate = trainer.finetune, trainer.evaluate
    else:
      from bertlab.train import trainer
      run, evaluate = trainer.train_and_evaluate, trainer.evaluate
    if _MODE.value == "train":
      from bertlab.hub import workdir as hub_workdir
      hub_workdir.record_command(_WORKDIR.value, sys.argv[1:])
      try:
        run(_CONFIG.value, _WORKDIR.value)
      except Preempted as stop:  # saved: a non-zero status, so schedulers requeue
        print(stop, flush=True)
        exit_now(stop.exit_code)
      except checkpoints.SaveFailed as error:
        # The last word, not buried: a normal exit would let orbax's abandoned writes print
        # hundreds of lines while the interpreter shuts down.
        print(f"\n{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        exit_now(1)
    else:
      print(json.dumps(evaluate(_CONFIG.value, _WORKDIR.value)))
  elif _MODE.value == "summary":
    from bertlab import summary
    print("\n".join(summary.summary_lines(_CONFIG.value)))
  elif _MODE.value == "inspect_data":
    from bertlab.data import inspect
    print("\n".join(inspect.inspect_lines(_CONFIG.value, _BATCHES.value)))


if __name__ == "__main__":
  app.run(main)
