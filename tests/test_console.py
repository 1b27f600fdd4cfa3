"""The console is for people: a header, progress with the time left, a closing summary, and
no library INFO records or TensorFlow start-up notices unless --verbosity asks for them."""

import subprocess
import sys

from bertlab import console
from conftest import ROOT


def _main(*args):
  return subprocess.run([sys.executable, "-m", "bertlab.main", "--config=configs/bert.py:tiny",
                         *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_run_prints_a_header_progress_with_time_left_and_a_summary(tmp_path):
  done = _main(f"--workdir={tmp_path / 'run'}", "--config.train.steps=20",
               "--config.train.log_every=10")
  assert done.returncode == 0, done.stderr
  lines = (done.stdout + done.stderr).splitlines()
  assert len(lines) <= 12, "\n".join(lines)
  text = "\n".join(lines)
  for expected in ("1,024,514 parameters", "objectives: mlm + nsp", "devices: 1 x cpu",
                   "data: the embedded corpus", "starting at step 0", "step 10/20",
                   "elapsed", "left", "done at step 20", "tensorboard --logdir"):
    assert expected in text, (expected, text)
  for noise in ("orbax", "cuInit", "oneDNN", "checkpoint_manager", "absl::InitializeLog"):
    assert noise not in text, (noise, text)

  again = _main(f"--workdir={tmp_path / 'run'}", "--config.train.steps=25",
                "--config.train.log_every=5", "--verbosity=0")
  assert again.returncode == 0, again.stderr
  assert "Resumed from step 20" in again.stdout
  assert "checkpoint_manager.py" in again.stderr  # the libraries' INFO records, as asked


def test_a_failing_run_still_shows_its_error(tmp_path):
  failed = _main(f"--workdir={tmp_path / 'bad'}", "--config.train.keep_checkpoints=0")
  assert failed.returncode != 0
  assert "keep_checkpoints" in failed.stderr and "Traceback" in failed.stderr


def test_only_the_known_notices_are_held_back():
  assert console.native_notice("I0000 00:00:1796194538.928017    2506 port.cc:153] oneDNN "
                               "custom operations are on.")
  assert console.native_notice("E0000 00:00:1796194539.871282    2506 cuda_platform.cc:52] "
                               "failed call to cuInit: INTERNAL: CUDA error")
  assert console.native_notice("WARNING: All log messages before absl::InitializeLog() is "
                               "called are written to STDERR")
  assert not console.native_notice("E0000 00:00:1796194539.871282    2506 op_kernel.cc:1830] "
                                   "OP_REQUIRES failed: out of memory")
  assert not console.native_notice("W0000 00:00:1796194539.871282    2506 loader.cc:12] a real "
                                   "warning")
  assert not console.native_notice("Traceback (most recent call last):")


def test_time_left_counts_the_evaluations_still_to_come():
  clock = console.Clock(start_step=0, total=3000, eval_every=500, now=0.0)
  assert [clock.evaluations_left(s) for s in (0, 499, 500, 2999, 3000)] == [6, 6, 5, 1, 0]
  clock.eval_seconds = 30.0
  # At step 1,000: 2,000 steps at 2 steps/s, then 4 evaluations of 30 s.
  assert clock.text(1000, 2.0, now=100.0) == "1 min 40 s elapsed, 18 min 40 s left"
  assert console.Clock(0, 1050, 500, 0.0).evaluations_left(1000) == 1  # the final one
  assert [console.duration(s) for s in (5, 185, 7440)] == ["5 s", "3 min 05 s", "2 h 04 min"]
