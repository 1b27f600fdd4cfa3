"""How fast a run answers SIGTERM: from the signal to the saved checkpoint, and to the exit.

  python benchmarks/preemption.py [--config=configs/bert.py:tiny] [--after=30] [--repeats=3]
      [--set=--config.data.vocab=...]

Starts `python -m bertlab.main` (a fresh workdir each time), waits until `--after` steps are
logged, sends SIGTERM and times the "SIGTERM: saved step" line and the process's exit. A
preempted cloud TPU VM has about 30 s between the signal and its end. Also prints how many
steps ran past the one logged when the signal went (the loop keeps at most
`trainer.MAX_STEPS_IN_FLIGHT` steps ahead of the device).
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_run(config: str, after: int, extra: list[str]) -> dict:
  workdir = tempfile.mkdtemp(prefix="bertlab-preempt-")
  command = [sys.executable, "-u", "-m", "bertlab.main", f"--config={config}",
             f"--workdir={workdir}", "--config.train.steps=1000000",
             "--config.train.log_every=1", "--config.train.checkpoint_every=1000000", *extra]
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
  signalled_at, signalled_step, saved_at, saved_step = None, None, None, None
  for line in proc.stdout:
    if line.startswith("step ") and signalled_at is None:
      step = int(line.split()[1].split("/")[0])
      if step >= after:
        signalled_at, signalled_step = time.perf_counter(), step
        proc.send_signal(signal.SIGTERM)
    if line.startswith("SIGTERM: saved step"):
      saved_at, saved_step = time.perf_counter(), int(line.split()[3])
  proc.wait()
  exited_at = time.perf_counter()
  if saved_at is None:
    raise RuntimeError(f"{config}: no 'SIGTERM: saved step' line (exit {proc.returncode}).")
  return dict(to_save=saved_at - signalled_at, to_exit=exited_at - signalled_at,
              steps_past=saved_step - signalled_step, exit_code=proc.returncode)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="configs/bert.py:tiny")
  parser.add_argument("--after", type=int, default=30, help="signal after this logged step")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--set", action="append", default=[], help="extra main.py flags")
  args = parser.parse_args(argv)
  runs = [one_run(args.config, args.after, args.set) for _ in range(args.repeats)]
  for index, run in enumerate(runs, 1):
    print(f"run {index}: signal -> saved {run['to_save']:.1f} s, -> exit {run['to_exit']:.1f} s, "
          f"{run['steps_past']} steps past the logged one, exit status {run['exit_code']}")
  print(f"worst: signal -> saved {max(r['to_save'] for r in runs):.1f} s, -> exit "
        f"{max(r['to_exit'] for r in runs):.1f} s")


if __name__ == "__main__":
  main()
