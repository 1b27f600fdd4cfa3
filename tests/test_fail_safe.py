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
import numpy as np
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
