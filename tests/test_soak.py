"""Soak (slow): a tiny pretraining run killed with SIGKILL and SIGTERM at 20 random moments,
some of them while a checkpoint is being written, ends bit-identical to an uninterrupted one.

  python -m pytest -m slow tests/test_soak.py -s   # prints how the kills fell
"""

import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bertlab.train.trainer import PREEMPTED_EXIT_CODE
from conftest import ROOT

STEPS, KILLS = 600, 20


def _command(workdir):
  return [sys.executable, "-m", "bertlab.main", "--config=configs/bert.py:tiny",
          f"--workdir={workdir}", f"--config.train.steps={STEPS}",
          "--config.train.checkpoint_every=10", "--config.train.log_every=10",
          "--config.train.keep_checkpoints=2"]


def _env():
  return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
              TF_CPP_MIN_LOG_LEVEL="3")


def _final_params(workdir):
  import jax
  import orbax.checkpoint as ocp
  with ocp.CheckpointManager(os.path.join(workdir, "checkpoints")) as mngr:
    step = mngr.latest_step()
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return step, {jax.tree_util.keystr(k): np.asarray(v)
                for k, v in jax.tree_util.tree_leaves_with_path(restored["state"])}


def _saving(workdir) -> bool:
  return bool(glob.glob(os.path.join(workdir, "checkpoints", "*.orbax-checkpoint-tmp*")))


@pytest.mark.slow
def test_twenty_kills_end_bit_identical_to_an_uninterrupted_run(tmp_path):
  rng = random.Random(0)
  whole, broken = str(tmp_path / "whole"), str(tmp_path / "broken")
  subprocess.run(_command(whole), cwd=ROOT, env=_env(), check=True, capture_output=True,
                 timeout=900)
  log = []
  for attempt in range(KILLS):
    proc = subprocess.Popen(_command(broken), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    kind = rng.choice([signal.SIGKILL, signal.SIGTERM])
    during_save = rng.random() < 0.5
    deadline = time.time() + rng.uniform(6.0, 14.0)  # start-up takes ~6 s
    while proc.poll() is None and time.time() < deadline + (60 if during_save else 0):
      if (during_save and _saving(broken)) or (not during_save and time.time() >= deadline):
        break
      time.sleep(0.005)
    if proc.poll() is not None:  # finished before the kill: the run is complete
      assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
      log.append("finished")
      break
    saving = _saving(broken)
    proc.send_signal(kind)
    _, err = proc.communicate(timeout=300)
    # SIGTERM before the loop is up (start-up) ends the process by default: nothing to save.
    expected = {signal.SIGKILL: (-signal.SIGKILL,),
                signal.SIGTERM: (PREEMPTED_EXIT_CODE, 0, -signal.SIGTERM)}
    assert proc.returncode in expected[kind], err.decode()[-3000:]
    log.append(f"{kind.name}{' in a save' if saving else ''}")
  if log[-1] != "finished":
    subprocess.run(_command(broken), cwd=ROOT, env=_env(), check=True, capture_output=True,
                   timeout=900)
  print(f"\n{len([k for k in log if k != 'finished'])} kills: {', '.join(log)}")
  step_a, a = _final_params(whole)
  step_b, b = _final_params(broken)
  assert step_a == step_b == STEPS
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
