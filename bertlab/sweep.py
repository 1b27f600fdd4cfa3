"""python -m bertlab.sweep experiments/<name>.py --workdir=DIR [--scale=tiny|cpu|paper] [--dry-run]

Runs every point of an ablation (skipping finished ones), then writes results.csv, results.md
(the paper-style table) and a PNG per metric in DIR. `--dry-run` prints each point's full
config and runs nothing; `--launch=local|tpu` prints one launch per point for a cluster or a
TPU VM pod instead of running here; `--points=REGEX` keeps the points whose name matches.
"""

import argparse
import dataclasses
import re
import shlex
import sys

from bertlab import config_files, console
from bertlab.sweeps import launch, report, runner, spec


def dry_run_lines(sweep: spec.Sweep, extra: dict) -> list[str]:
  """Each point's overrides and full config; building each model checks its keys."""
  from bertlab.jobs import build_model  # the models load jax: not for --launch alone
  lines = [f"# {sweep.title}: {len(sweep.points)} points, base {sweep.config}"]
  for index, point in enumerate(sweep.points, 1):
    config = sweep.point_config(point, extra)
    build_model(config)
    for name in sweep.evals:
      sweep.eval_config(config, name)
    lines += [f"## point {index}/{len(sweep.points)}: {point.name}"
              + (f" (base {point.config})" if point.config else ""),
              "overrides: " + " ".join(
                  config_files.override_flags(sweep.point_overrides(point, extra))),
              str(config)]
    for name, task in sweep.downstream.items():
      task.run_config("DIR", task.seeds[0])  # its keys checked as the point's are
      lines.append(f"downstream {name}: {task.config} seeds {list(task.seeds)} "
                   + " ".join(config_files.override_flags(task.overrides)))
  return lines


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m bertlab.sweep", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("experiment", help="experiments/<name>.py")
  parser.add_argument("--workdir", help="one subdirectory per point, and the tables")
  parser.add_argument("--scale", default="tiny", choices=spec.SCALES)
  console.add_verbosity_argument(parser)
  parser.add_argument("--dry-run", action="store_true", help="print each point's config")
  parser.add_argument("--launch", choices=launch.TARGETS,
                      help="print one launch per point (local shell, or every TPU pod host)")
  parser.add_argument("--tpu", default="", help="--launch=tpu: the TPU VM name")
  parser.add_argument("--zone", default="", help="--launch=tpu: its zone")
  parser.add_argument("--repo_dir", default="~/bertlab", help="--launch=tpu: checkout on hosts")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="an override for every point, e.g. --set train.steps=20")
  parser.add_argument("--no-progress", action="store_true", help="no progress bars")
  parser.add_argument("--points", default="", metavar="REGEX",
                      help="only the points whose name matches, e.g. 'objective=nsp,masking=token'")
  return parser


def select_points(sweep: spec.Sweep, pattern: str) -> spec.Sweep:
  """The sweep restricted to the points whose name matches `pattern` (all when empty)."""
  if not pattern:
    return sweep
  chosen = tuple(p for p in sweep.points if re.search(pattern, p.name))
  if not chosen:
    raise SystemExit(f"--points={pattern!r} matches none of {sweep.name}'s points: "
                     + ", ".join(p.name for p in sweep.points))
  return dataclasses.replace(sweep, points=chosen)


def main(argv: list[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  sweep = select_points(spec.load_sweep(args.experiment, args.scale), args.points)
  extra = config_files.parse_set(args.set)
  if args.dry_run:
    print("\n".join(dry_run_lines(sweep, extra)))
    return 0
  if not args.workdir:
    raise SystemExit("--workdir is required (the points' runs and the tables go there).")
  if args.launch:
    print("\n".join(launch.launch_lines(sweep, args.workdir, args.launch, extra, args.tpu,
                                        args.zone, args.repo_dir)))
    return 0
  console.setup(args.verbosity)
  # after console.setup: TensorFlow's start-up notices are filtered for later imports only
  from bertlab.train.trainer import Preempted
  try:
    rows = runner.run_sweep(sweep, args.workdir, extra, progress=not args.no_progress)
  except Preempted as stop:  # the point is saved, not finished; the next points wait
    print(f"{stop} The sweep stopped; rerun it to go on.", flush=True)
    from bertlab.main import exit_now  # it defines main's absl flags: only on this way out
    exit_now(stop.exit_code)
  command = shlex.join(["python", "-m", "bertlab.sweep", args.experiment,
                        f"--workdir={args.workdir}", f"--scale={args.scale}"]
                       + [f"--set={item}" for item in args.set]
                       + ([f"--points={args.points}"] if args.points else []))
  written = report.write_report(sweep, rows, args.workdir, command)
  print(written["table"])
  print(f"Wrote {args.workdir}/results.csv, results.md and {len(written['plots'])} plots.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
