"""The launch commands of a sweep's points, for a cluster or every host of a TPU VM pod.

Each point is the same `python -m bertlab.main` command a user types, with the point's
overrides as `--config.<key>=` flags; then one `--mode=eval` per evaluation of the sweep, and
one fine-tuning run per downstream task and seed, from the point's workdir. On a
TPU pod the command runs on every worker (`--worker=all`) with `--multihost`, so that
jax.distributed finds its peers from the TPU metadata. Running the sweep again without `--launch`,
on the same workdir, evaluates the finished points and writes the tables.
"""

import shlex
from typing import Any

from bertlab import config_files
from bertlab.sweeps.spec import Point, Sweep, downstream_dir

TARGETS = ("local", "tpu")


def point_commands(sweep: Sweep, point: Point, workdir: str,
                   extra: dict[str, Any] | None = None) -> list[list[str]]:
  """[train, eval per sweep evaluation, fine-tuning per downstream task and seed] for one
  point, as argument lists."""
  point_dir = f"{workdir}/{point.name}"
  base = ["python", "-m", "bertlab.main", f"--config={sweep.base_config(point)}",
          f"--workdir={point_dir}"]
  flags = config_files.override_flags(sweep.point_overrides(point, extra))
  commands = [base + flags]
  for name, overrides in sweep.evals.items():
    commands.append(base + ["--mode=eval"] + flags + config_files.override_flags(overrides))
  for name, task in sweep.downstream.items():
    for seed in task.seeds:
      commands.append(
          ["python", "-m", "bertlab.main", f"--config={task.config}",
           f"--workdir={downstream_dir(point_dir, name, seed)}"]
          + config_files.override_flags(task.run_overrides(point_dir, seed)))
  return commands


def tpu_command(command: list[str], tpu: str, zone: str, repo_dir: str) -> str:
  """`command` on every worker of the TPU VM `tpu`, from the checkout at `repo_dir`."""
  remote = f"cd {repo_dir} && " + shlex.join(command + ["--multihost"])
  return shlex.join(["gcloud", "compute", "tpus", "tpu-vm", "ssh", tpu, f"--zone={zone}",
                     "--worker=all", f"--command={remote}"])


def launch_lines(sweep: Sweep, workdir: str, target: str = "local",
                 extra: dict[str, Any] | None = None, tpu: str = "", zone: str = "",
                 repo_dir: str = "~/bertlab") -> list[str]:
  """Shell lines that run the whole sweep, point after point."""
  if target not in TARGETS:
    raise ValueError(f"Unknown launch target {target!r}; valid: {', '.join(TARGETS)}.")
  if target == "tpu" and not (tpu and zone):
    raise ValueError("--launch=tpu needs --tpu=<TPU VM name> and --zone=<its zone>.")
  lines = []
  for point in sweep.points:
    lines.append(f"# {point.name}")
    for command in point_commands(sweep, point, workdir, extra):
      lines.append(tpu_command(command, tpu, zone, repo_dir) if target == "tpu"
                   else shlex.join(command))
  return lines
