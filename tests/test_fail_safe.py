"""Runs that fail safe: bad numbers refused up front, one run per workdir, a changed config or
a corrupt checkpoint never resumed silently, results kept when the workdir cannot take them."""

import json
import os
import signal
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import pytest

from bertlab.models.config import ModelConfig
from bertlab.models.pretraining import PretrainingModel
from bertlab.train import partitioning, trainer, workdir_lock
from conftest import ROOT, load_config


def tiny(steps=4, **train):
  config = load_config("bert.py:tiny")
  config.train.update({"steps": steps, "checkpoint_every": 2, "log_every": 2, **train})
  return config


def test_out_of_range_numbers_are_named_together_before_any_work():
  config = tiny(learning_rate=-1e-3, keep_checkpoints=0, checkpoint_every=0, batch_size=0)
  config.data.mask_rate = 1.5
  with pytest.raises(ValueError) as error:
    trainer.Trainer(config)
  message = str(error.value)
  for text in ("train.learning_rate=-0.001 must be a number >= 0",
               "train.keep_checkpoints=0 must be an integer >= 1",
               "train.checkpoint_every=0", "train.batch_size=0", "data.mask_rate=1.5"):
    assert text in message


def test_a_batch_the_mesh_cannot_split_names_train_batch_size():
  mesh = types.SimpleNamespace(shape={"data": 4, "fsdp": 2, "tensor": 1})
  with pytest.raises(ValueError, match=r"train.batch_size=12 does not split over the 8 batch "
                     r"shards.*e.g. 8 or 16"):
    partitioning.check_batch_splits(12, mesh)


def test_sequences_longer_than_the_position_table_are_refused():
  config = tiny()
  config.data.seq_len = 600
  with pytest.raises(ValueError, match=r"data.seq_len=600 needs position 599, but "
                     r"model.max_position_embeddings is 512.*at most 512"):
    trainer.Trainer(config)
  roberta = load_config("roberta.py:tiny")
  roberta.data.seq_len = 513  # positions start after the padding index 1: 2..514
  with pytest.raises(ValueError, match="needs position 514.*at most 512"):
    trainer.Trainer(roberta)
  model_config = ModelConfig(vocab_size=30, hidden_size=16, num_layers=1, num_heads=2,
                             intermediate_size=32, max_position_embeddings=64)
  model = PretrainingModel(model_config)
  params = model.init(jax.random.key(0), jnp.ones((1, 64), jnp.int32))
  with pytest.raises(ValueError, match="the input length=65 needs position 64"):
    model.apply(params, jnp.ones((1, 65), jnp.int32))


def test_a_second_run_on_a_workdir_is_refused_and_a_dead_one_holds_nothing(tmp_path):
  with workdir_lock.WorkdirLock(str(tmp_path)):
    with pytest.raises(workdir_lock.WorkdirInUse, match=f'"pid": {os.getpid()}'):
      trainer.train_and_evaluate(tiny(), str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from bertlab.train.workdir_lock import "
       "WorkdirLock; WorkdirLock(sys.argv[1]).__enter__(); print('held', flush=True); "
       "time.sleep(600)", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
  assert holder.stdout.readline() == b"held\n"
  with pytest.raises(workdir_lock.WorkdirInUse, match=f'"pid": {holder.pid}'):
    workdir_lock.WorkdirLock(str(tmp_path)).__enter__()
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  with workdir_lock.WorkdirLock(str(tmp_path)):
    pass


def test_resuming_with_a_config_that_trains_something_else_is_refused(tmp_path):
  trainer.train_and_evaluate(tiny(steps=2), str(tmp_path))
  saved = (tmp_path / "config.json").read_text()
  changed = tiny(steps=4)
  changed.model.hidden_act = "relu"
  changed.data.seed = 3
  with pytest.raises(ValueError, match=r"(?s)data.seed: 0 -> 3.*model.hidden_act: 'gelu' -> "
                     r"'relu'.*allow_config_change=True"):
    trainer.train_and_evaluate(changed, str(tmp_path))
  assert (tmp_path / "config.json").read_text() == saved
  # Going on for longer, or logging differently, is a resume.
  trainer.train_and_evaluate(tiny(steps=4, log_every=1), str(tmp_path))
  assert trainer.latest_step(tiny(), str(tmp_path)) == 4


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
  trainer.train_and_evaluate(tiny(steps=4), str(tmp_path))
  step_dir = tmp_path / "checkpoints" / "4" / "state"
  biggest = max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  biggest.write_bytes(biggest.read_bytes()[:10])  # a copy cut short
  trainer.train_and_evaluate(tiny(steps=6), str(tmp_path))
  out = capsys.readouterr().out
  assert "Checkpoint step 4" in out and "does not restore" in out
  assert "Resumed from step 2" in out
  assert (tmp_path / "checkpoints_unrestorable" / "4").is_dir()
  assert trainer.latest_step(tiny(), str(tmp_path)) == 6


def test_eval_keeps_its_numbers_when_the_workdir_refuses_the_write(tmp_path, monkeypatch,
                                                                   capsys):
  config = tiny(steps=2, eval_batches=1)
  trainer.train_and_evaluate(config, str(tmp_path))
  import tensorflow as tf
  from bertlab import files
  real_open = files.open_file

  def read_only(path, mode="r"):
    if "a" in mode or "w" in mode:
      raise tf.errors.PermissionDeniedError(None, None, f"{path}; Read-only file system")
    return real_open(path, mode)

  monkeypatch.setattr(files, "open_file", read_only)
  results = trainer.evaluate(config, str(tmp_path))
  assert results["step"] == 2 and 0 <= results["mlm_accuracy"] <= 1
  assert "Read-only file system" in capsys.readouterr().err


def test_a_new_best_model_replaces_the_old_only_once_it_is_whole(tmp_path, monkeypatch):
  from bertlab import files
  from bertlab.train import best_checkpoint
  abstract = {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}
  sharding = {"w": jax.sharding.SingleDeviceSharding(jax.devices()[0])}
  best_checkpoint.save(str(tmp_path), {"w": jnp.ones(3)}, {"epoch": 1, "step": 10})

  def killed(source, target):
    raise KeyboardInterrupt("killed before the record was swapped in")

  monkeypatch.setattr(files, "replace", killed)
  with pytest.raises(KeyboardInterrupt):
    best_checkpoint.save(str(tmp_path), {"w": jnp.full(3, 2.0)}, {"epoch": 2, "step": 20})
  params, record = best_checkpoint.restore(str(tmp_path), abstract, sharding)
  assert record == {"epoch": 1, "step": 10} and float(params["w"][0]) == 1.0
  monkeypatch.undo()
  best_checkpoint.save(str(tmp_path), {"w": jnp.full(3, 3.0)}, {"epoch": 3, "step": 30})
  params, record = best_checkpoint.restore(str(tmp_path), abstract, sharding)
  assert record["epoch"] == 3 and float(params["w"][0]) == 3.0
  assert sorted(os.listdir(tmp_path / "best")) == ["best.json", "params-30"]


def _glue_dir(path, dev_rows=True, train=True):
  path.mkdir()
  rows = "".join(f"the {w} is {'good' if i % 2 else 'bad'} .\t{i % 2}\n"
                 for i, w in enumerate(["plot", "film", "actor", "song"] * 4))
  if train:
    (path / "train.tsv").write_text("sentence\tlabel\n" + rows)
  (path / "dev.tsv").write_text("sentence\tlabel\n" + (rows if dev_rows else ""))
  return str(path)


@pytest.mark.parametrize("case", ["header_only_dev", "no_train_file"])
def test_fine_tuning_data_is_checked_before_training(tmp_path, case):
  from bertlab.train import finetuner
  config = load_config("finetune/glue.py:sst2")
  config.data.data_dir = _glue_dir(tmp_path / "glue", dev_rows=case != "header_only_dev",
                                   train=case != "no_train_file")
  config.data.seq_len = 16
  config.train.update(batch_size=4, eval_batch_size=4, epochs=1)
  expected = {"header_only_dev": r"the dev data in data.data_dir=.* holds no examples",
              "no_train_file": r"no train data in data.data_dir="}[case]
  with pytest.raises((ValueError, FileNotFoundError), match=expected):
    finetuner.finetune(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints")  # nothing was trained


def _squad_file(path, questions: int, shifted: int, shift: int = 7):
  context = "In 2015 the Denver Broncos defeated the Carolina Panthers to win Super Bowl 50 ."
  qas = [dict(id=str(i), question="Who won Super Bowl 50 ?",
              answers=[dict(text="Denver Broncos",
                            answer_start=context.index("Denver") + (shift if i < shifted else 0))])
         for i in range(questions)]
  path.write_text(json.dumps(dict(data=[dict(title="t", paragraphs=[dict(context=context,
                                                                         qas=qas)])])))


def test_squad_answers_off_their_offsets_are_skipped_or_refused(tmp_path, capsys):
  from bertlab.data.vocab import tokenizer_from_config
  from bertlab.tasks.squad import SquadJob
  config = load_config("finetune/squad.py:v1")
  config.data.update(data_dir=str(tmp_path), seq_len=48)
  tokenizer = tokenizer_from_config(config.data, config.model.vocab_size)
  _squad_file(tmp_path / "dev-v1.1.json", 2, 0)
  _squad_file(tmp_path / "train-v1.1.json", 200, 1)  # one bad answer in 200: skipped, said
  job = SquadJob("v1", config.data, tokenizer, 2, config.squad)
  assert len({w.question_index for w in job.windows("train")}) == 199
  assert "1 of 200 answers are not at their answer_start" in capsys.readouterr().out
  for shift in (7, 1000):  # every answer shifted, or past the context: refused
    _squad_file(tmp_path / "train-v1.1.json", 200, 200, shift)
    job = SquadJob("v1", config.data, tokenizer, 2, config.squad)
    with pytest.raises(ValueError, match="200 of 200 answers are not at their answer_start"):
      job.windows("train")


@pytest.fixture
def small_disk(tmp_path):
  """A 20 MB tmpfs: room for one tiny-BERT checkpoint (11 MB), not two."""
  mount = tmp_path / "disk"
  mount.mkdir()
  made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
                        capture_output=True)
  if made.returncode:
    pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.decode()[:200]}")
  yield mount
  subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_stops_the_run_at_once_and_says_so_last(small_disk):
  workdir = small_disk / "run"
  result = subprocess.run(
      [sys.executable, "-m", "bertlab.main", "--config=configs/bert.py:tiny",
       f"--workdir={workdir}", "--config.train.steps=12", "--config.train.checkpoint_every=2",
       "--config.train.log_every=1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 1
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("SaveFailed: Saving a checkpoint to ") and "No space left" in last
  assert "Free space there:" in last and "The last saved step is 2" in last
  steps = [int(l.split()[1].split("/")[0]) for l in result.stdout.splitlines()
           if l.startswith("step ")]
  assert max(steps) <= 6  # the save of step 4 failed; at most the next save interval ran
  assert os.listdir(workdir / "checkpoints") == ["2"]  # no half-written step left behind
