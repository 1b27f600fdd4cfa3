"""The sweep runner: every experiment file's points as full configs (--dry-run), a run that
writes the paper-style outputs and skips what is finished, launch commands that the command
line accepts, and (slow) every experiment end to end at its tiny scale."""

import csv
import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import finetune_helpers
from bertlab import config_files
from bertlab import sweep as sweep_cli
from bertlab.jobs import build_model
from bertlab.summary import count_params
from bertlab.sweeps import (Downstream, Plot, Point, Sweep, launch, load_sweep, report, runner,
                            spec)
from bertlab.train.flops import step_flops

from bertlab_test_helpers import ROOT

EXPERIMENTS = sorted(os.path.basename(p)[:-3]
                     for p in glob.glob(os.path.join(ROOT, "experiments", "*.py")))


def experiment_path(name: str) -> str:
  return os.path.join(ROOT, "experiments", f"{name}.py")


def test_points_filter_keeps_the_matching_points_and_names_all_when_none_match(capsys):
  path = experiment_path("modern_backbone")
  assert sweep_cli.main([path, "--dry-run", "--scale=tiny",
                         "--points=study=sentence,objective=nsp"]) == 0
  out = capsys.readouterr().out
  assert "2 points" in out and "backbone=modern,study=sentence,objective=nsp" in out
  assert "objective=sop" not in out
  with pytest.raises(SystemExit, match="matches none of modern_backbone's points: backbone="):
    sweep_cli.main([path, "--dry-run", "--points=nothing-like-this"])


def test_every_ablation_of_the_issue_has_a_file():
  assert {"albert_embedding_size", "albert_sharing", "sentence_objective",
          "roberta_input_format", "masking", "electra_generator", "spanbert"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("scale", spec.SCALES)
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_dry_run_prints_every_point_config(name, scale, capsys):
  assert sweep_cli.main([experiment_path(name), "--dry-run", f"--scale={scale}"]) == 0
  out = capsys.readouterr().out
  sweep = load_sweep(experiment_path(name), scale)
  count = len(sweep.points)
  assert f"## point {count}/{count}: {sweep.points[-1].name}" in out
  assert out.count("\nmodel:\n") == count and out.count("\ntrain:\n") == count
  for point in sweep.points:
    config = sweep.point_config(point)
    for key, value in {**sweep.overrides, **point.overrides}.items():
      section, _, leaf = key.rpartition(".")
      assert config[section][leaf] == (tuple(value) if isinstance(value, list) else value), key


def micro_sweep(**changes) -> Sweep:
  fields = dict(
      name="micro", title="micro sweep", config="configs/bert.py:tiny",
      overrides={"train.steps": 3, "train.log_every": 1, "train.checkpoint_every": 3,
                 "train.warmup_steps": 1, "train.eval_batches": 1, "train.batch_size": 8},
      points=(Point({"masking": "token"}, {}),
              Point({"masking": "whole_word"}, {"data.masking": "whole_word"})),
      evals={"eval": {}, "sop": {"data.sentence_objective": "sop"}},
      columns=(("Parameters", "total_params"), ("MLM", "eval/mlm_accuracy"),
               ("SOP", "sop/sop_accuracy"), ("missing", "eval/not_a_metric")),
      plot=Plot(x="masking"))
  fields.update(changes)
  return Sweep(**fields)


def test_sweep_runs_reports_and_skips_finished_points(tmp_path, monkeypatch):
  sweep, workdir = micro_sweep(), str(tmp_path)
  rows = runner.run_sweep(sweep, workdir, progress=False)
  assert [r["masking"] for r in rows] == ["token", "whole_word"]
  for row, point in zip(rows, sweep.points):
    assert row["total_params"] == count_params(build_model(sweep.point_config(Point({}, {}))))[1]
    assert row["train_flops"] == step_flops(sweep.point_config(point)) * 3
    assert 0 <= row["eval/mlm_accuracy"] <= 1 and 0 <= row["sop/sop_accuracy"] <= 1
    assert "eval/nsp_accuracy" in row and "train/loss" in row
  written = report.write_report(sweep, rows, workdir, "python -m bertlab.sweep micro")
  with open(tmp_path / "results.csv") as f:
    table = list(csv.DictReader(f))
  assert [r["masking"] for r in table] == ["token", "whole_word"]
  assert float(table[1]["eval/mlm_accuracy"]) == pytest.approx(rows[1]["eval/mlm_accuracy"])
  markdown = (tmp_path / "results.md").read_text()
  assert "| masking | Parameters | MLM | SOP | missing |" in markdown
  assert f"| whole_word | {rows[1]['total_params'] / 1e6:.2f}M |" in markdown
  assert "—" in markdown and "python -m bertlab.sweep micro" in markdown
  assert len(written["plots"]) == 4
  for path in written["plots"]:
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"

  # Finished points are read back, not trained again.
  def no_training(*args, **kwargs):
    raise AssertionError("a finished point was trained again")
  from bertlab.train import trainer
  monkeypatch.setattr(trainer, "train_and_evaluate", no_training)
  assert runner.run_sweep(sweep, workdir, progress=False) == rows
  # A changed experiment does not silently reuse the old result.
  # It names what changed, saved value first.
  learning_rate = sweep.point_config(sweep.points[0]).train.learning_rate
  with pytest.raises(ValueError, match="different config") as raised:
    runner.run_sweep(sweep, workdir, {"train.learning_rate": 5e-4}, progress=False)
  assert f"train.learning_rate: {learning_rate!r} -> 0.0005" in str(raised.value)
  assert str(raised.value).count("\n  ") == 1  # that key alone


def test_downstream_columns_fine_tune_each_point_and_average_over_seeds(tmp_path, capsys):
  """Fine-tuned from the point's checkpoint once per seed: the mean and spread of the best
  epochs' dev metrics; added to a point finished before the task was; checked on reuse."""
  glue = str(tmp_path / "glue")
  finetune_helpers.write_data("sst2", glue)
  sst2 = Downstream("configs/finetune/glue.py:sst2", "SST-2", "accuracy",
                    {"data.data_dir": glue, "data.seq_len": 16, "train.epochs": 2,
                     "train.batch_size": 8, "train.learning_rate": 1e-3,
                     "data.pack_sequences": True}, seeds=(0, 1))
  sweep = micro_sweep(points=(Point({"masking": "token"}, {}),))
  workdir = str(tmp_path / "sweep")
  row, = runner.run_sweep(sweep, workdir, progress=False)
  assert not any(k.startswith("sst2/") for k in row)

  # The task added later: the finished point is fine-tuned from its checkpoint, not retrained.
  with_task = micro_sweep(points=sweep.points, downstream={"sst2": sst2})
  row, = runner.run_sweep(with_task, workdir, progress=False)
  point_dir = os.path.join(workdir, "masking=token")
  seeds = []
  for seed in (0, 1):
    with open(os.path.join(point_dir, "downstream", f"sst2-seed{seed}", "best",
                           "best.json")) as f:
      seeds.append(json.load(f)["metrics"]["accuracy"])
  assert row["sst2/accuracy"] == pytest.approx(np.mean(seeds))
  assert row["sst2/accuracy_std"] == pytest.approx(np.std(seeds, ddof=1))
  with open(os.path.join(point_dir, "downstream", "sst2-seed1", "config.json")) as f:
    assert json.load(f)["finetune"]["init_from"] == point_dir
  assert runner.run_sweep(with_task, workdir, progress=False) == [row]  # read back
  table = report.markdown_table(with_task, [row])
  assert "| SST-2 |" in table.splitlines()[0]
  assert f"{100 * np.mean(seeds):.1f} ± {100 * np.std(seeds, ddof=1):.1f}" in table
  line, = [l for l in launch.launch_lines(with_task, workdir) if "sst2-seed1" in l]
  assert "--config.finetune.init_from=" + point_dir in line and "--config.train.seed=1" in line

  # A changed fine-tuning recipe is not a silent reuse of the old columns.
  changed = micro_sweep(points=sweep.points, downstream={"sst2": dataclasses.replace(
      sst2, overrides={**sst2.overrides, "train.epochs": 3})})
  with pytest.raises(ValueError, match=r"downstream sst2\) was made with a different config"
                     ) as raised:
    runner.run_sweep(changed, workdir, progress=False)
  assert "train.epochs: 2 -> 3" in str(raised.value)

  # A result copied without its checkpoint keeps its row; the missing columns stay empty.
  copy = tmp_path / "copy" / "masking=token"
  copy.mkdir(parents=True)
  with open(os.path.join(point_dir, "result.json")) as f:
    result = json.load(f)
  del result["downstream"]
  result["row"] = {k: v for k, v in result["row"].items() if not k.startswith("sst2/")}
  (copy / "result.json").write_text(json.dumps(result))
  capsys.readouterr()
  assert runner.run_sweep(with_task, str(tmp_path / "copy"), progress=False) == [result["row"]]
  assert "no final checkpoint to fine-tune for sst2" in capsys.readouterr().out


def test_config_differences_name_each_changed_leaf():
  saved = {"data": {"pack_sequences": True, "seed": 0}, "train": {"steps": 20}}
  now = {"data": {"pack_sequences": None, "seed": 0}, "train": {"steps": 20, "eval_every": 5}}
  assert config_files.differences(saved, now) == {
      "data.pack_sequences": (True, None), "train.eval_every": (config_files.ABSENT, 5)}
  assert config_files.differences(saved, saved) == {}


def test_override_errors_name_the_valid_keys():
  sweep = micro_sweep(points=(Point({"x": 1}, {"model.embeding_size": 64}),))
  with pytest.raises(KeyError, match="Did you mean embedding_size"):
    sweep.point_config(sweep.points[0])
  with pytest.raises(SystemExit, match="key=value"):
    config_files.parse_set(["train.steps"])
  assert config_files.parse_set(["train.steps=20", "data.masking=span"]) == {
      "train.steps": 20, "data.masking": "span"}
  with pytest.raises(ValueError, match="same labels"):
    micro_sweep(points=(Point({"a": 1}, {}), Point({"a": 1}, {"train.seed": 2})))


def test_launch_commands_run_on_the_command_line(tmp_path):
  sweep = load_sweep(experiment_path("masking"), "tiny")
  point = sweep.points[0]
  train, evaluation = launch.point_commands(sweep, point, str(tmp_path))
  assert "--mode=eval" in evaluation and "--config.data.masking=token" in evaluation
  # The printed flags set the same config: its summary counts the point's parameters.
  summary = train[3:4] + [a for a in train[5:]] + ["--mode=summary"]
  out = subprocess.run([sys.executable, "-m", "bertlab.main"] + summary, cwd=ROOT,
                       capture_output=True, text=True, check=True).stdout
  expected = count_params(build_model(sweep.point_config(point)))[1]
  assert out.strip().splitlines()[-1] == f"total_params: {expected}"
  lines = launch.launch_lines(sweep, "gs://bucket/masking", "tpu", tpu="pod", zone="zone-a")
  assert lines[0] == f"# {point.name}"
  assert lines[1].startswith("gcloud compute tpus tpu-vm ssh pod --zone=zone-a --worker=all")
  assert len(lines) == len(sweep.points) * (2 + len(sweep.evals))
  with pytest.raises(ValueError, match="--zone"):
    launch.launch_lines(sweep, "dir", "tpu", tpu="pod")


def test_a_point_may_start_from_another_familys_config(tmp_path):
  """MLM against ELECTRA in one sweep: the point's own base config, the sweep's overrides."""
  sweep = micro_sweep(points=(Point({"objective": "mlm"}, {}),
                              Point({"objective": "electra"}, {"electra.disc_weight": 10.0},
                                    config="configs/electra.py:tiny")))
  mlm, electra = (sweep.point_config(point) for point in sweep.points)
  assert mlm.model.family == "bert" and electra.model.family == "electra"
  assert electra.train.steps == 3 and electra.electra.disc_weight == 10.0
  train = launch.point_commands(sweep, sweep.points[1], str(tmp_path))[0]
  assert "--config=configs/electra.py:tiny" in train
  assert "--config=configs/bert.py:tiny" in launch.point_commands(sweep, sweep.points[0], "d")[0]


def test_format_value_prints_like_the_papers():
  assert report.format_value("eval/mlm_accuracy", 0.4567) == "45.7"
  assert report.format_value("total_params", 12_345_678) == "12.35M"
  assert report.format_value("train_flops", 1.2345e15) == "1.23e+15"
  assert report.format_value("eval/mlm_loss", 2.34567) == "2.346"
  assert report.format_value("eval/x", None) == "—"
  assert report.format_value("E", 128) == "128"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_end_to_end_at_tiny_scale(name, tmp_path):
  sweep = load_sweep(experiment_path(name), "tiny")
  rows = runner.run_sweep(sweep, str(tmp_path), progress=False)
  report.write_report(sweep, rows, str(tmp_path), name)
  for header, column in sweep.columns:
    assert any(row.get(column) is not None for row in rows), header
  for row in rows:
    # MLM (ELECTRA: the generator's) has left its starting loss, ln(4096) = 8.3.
    assert row["train/mlm_loss"] < 7.5
  if name == "sentence_objective":
    by = {row["objective"]: row for row in rows}
    # ALBERT Table 5's pattern, the parts that hold at tiny scale (experiments/RESULTS.md):
    # NSP is learnt but does not teach SOP; SOP is learnt. (That SOP teaches NSP does not
    # hold on the embedded corpus's short documents.)
    assert by["nsp"]["nsp/nsp_accuracy"] >= 0.56
    assert abs(by["nsp"]["sop/sop_accuracy"] - 0.5) <= 0.05
    assert by["sop"]["sop/sop_accuracy"] >= 0.65


def test_sigterm_stops_the_sweep_without_recording_the_point(tmp_path):
  """A preempted point is saved, not finished: no result.json, no next point, status 75."""
  import signal
  import time
  from bertlab.train.trainer import PREEMPTED_EXIT_CODE
  proc = subprocess.Popen(
      [sys.executable, "-m", "bertlab.sweep", experiment_path("masking"),
       f"--workdir={tmp_path}", "--scale=tiny", "--no-progress", "--set=train.steps=5000",
       "--set=train.checkpoint_every=10"], cwd=ROOT, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE)
  start = time.time()
  while not glob.glob(str(tmp_path / "*" / "checkpoints" / "10")) and time.time() - start < 300:
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == PREEMPTED_EXIT_CODE, err.decode()[-3000:]
  assert b"The sweep stopped" in out
  points = [p for p in os.listdir(tmp_path) if os.path.isdir(tmp_path / p)]
  assert len(points) == 1, points
  assert not os.path.exists(tmp_path / points[0] / runner.RESULT_FILE)
