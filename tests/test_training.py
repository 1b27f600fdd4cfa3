"""Pretraining runs: sharded steps equal one device, multi-process equals one process, a killed
run resumes bit-identically, SIGTERM saves, bad checkpoints and NaN losses stop clearly."""

import ast
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from bertlab.train.trainer import PREEMPTED_EXIT_CODE
from conftest import ROOT, load_config

HELPER = os.path.join(ROOT, "tests", "train_helpers.py")


def _env(devices: int) -> dict:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
  return env


def _helper_run(out, mesh: str, devices: int):
  subprocess.run([sys.executable, HELPER, str(out), mesh], cwd=ROOT, env=_env(devices),
                 check=True, capture_output=True, timeout=600)
  return dict(np.load(out))


def _assert_same_training(a: dict, b: dict):
  np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
  for key in a:
    if key not in ("losses", "specs"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_step_on_data_fsdp_tensor_mesh_equals_one_device(tmp_path):
  one = _helper_run(tmp_path / "one.npz", "1,1,1", 1)
  mesh = _helper_run(tmp_path / "mesh.npz", "2,2,2", 8)
  _assert_same_training(one, mesh)
  specs = ast.literal_eval(str(mesh["specs"]))
  word = next(v for k, v in specs.items() if "word_embeddings" in k)
  ffn = next(v for k, v in specs.items() if "ffn" in k and "intermediate" in k and "kernel" in k)
  assert word == "P('tensor', 'fsdp')", word  # vocab x embed
  assert "fsdp" in ffn and "tensor" in ffn, ffn  # [layers, embed, mlp]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_of_four_devices_train_as_one_process_of_eight(tmp_path):
  one = _helper_run(tmp_path / "one.npz", "2,2,2", 8)
  address = f"127.0.0.1:{_free_port()}"
  procs = [subprocess.Popen([sys.executable, HELPER, str(tmp_path / "two.npz"), "2,2,2",
                             address, "2", str(i)], cwd=ROOT, env=_env(4),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
           for i in range(2)]
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-3000:]
  _assert_same_training(one, dict(np.load(tmp_path / "two.npz")))


def _train_command(workdir, *overrides):
  return [sys.executable, "-m", "bertlab.main", "--config=configs/bert.py:tiny",
          f"--workdir={workdir}", "--config.train.steps=40", "--config.train.checkpoint_every=10",
          "--config.train.log_every=10", "--config.data.dynamic_masking=True", *overrides]


def _final_params(workdir):
  import orbax.checkpoint as ocp
  with ocp.CheckpointManager(os.path.join(workdir, "checkpoints")) as mngr:
    step = mngr.latest_step()
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  import jax
  return step, {jax.tree_util.keystr(k): np.asarray(v)
                for k, v in jax.tree_util.tree_leaves_with_path(restored["state"]["params"])}


def _wait_for_checkpoint(workdir, proc, timeout=300):
  target = os.path.join(workdir, "checkpoints", "10")
  start = time.time()
  while not os.path.isdir(target) and time.time() - start < timeout:
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    time.sleep(0.05)
  assert os.path.isdir(target)


def _cache_with_another_vocab(tmp_path) -> str:
  """A cache whose embedded-corpus vocabulary has two pieces swapped."""
  import shutil
  from bertlab.data import corpus, vocab
  trained = vocab.default_vocab("wordpiece", load_config("bert.py:tiny").model.vocab_size)
  cache = tmp_path / "other-cache"
  cache.mkdir()
  shutil.copy(corpus.default_corpus_path(), cache)
  other = cache / os.path.basename(trained)
  shutil.copytree(trained, other)
  pieces = (other / "vocab.txt").read_text().splitlines()
  pieces[1000], pieces[1001] = pieces[1001], pieces[1000]
  (other / "vocab.txt").write_text("\n".join(pieces) + "\n")
  return str(cache)


def test_killed_run_resumes_bit_identical_to_an_uninterrupted_one(tmp_path):
  whole, broken = tmp_path / "whole", tmp_path / "broken"
  subprocess.run(_train_command(whole), cwd=ROOT, env=_env(1), check=True, capture_output=True,
                 timeout=600)
  proc = subprocess.Popen(_train_command(broken), cwd=ROOT, env=_env(1),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  _wait_for_checkpoint(broken, proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  interrupted_at, _ = _final_params(broken)
  assert interrupted_at < 40  # killed before the end
  # The resume finds its vocabulary trained again with other pieces (a new machine, or corpus
  # files copied anew): it goes on with the one its model learnt, kept in the workdir.
  out = subprocess.run(_train_command(broken), cwd=ROOT, check=True, capture_output=True,
                       env=dict(_env(1), BERTLAB_CACHE=_cache_with_another_vocab(tmp_path)),
                       text=True, timeout=600)
  assert f"Resumed from step {interrupted_at}" in out.stdout
  step_a, a = _final_params(whole)
  step_b, b = _final_params(broken)
  assert step_a == step_b == 40
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  # metrics.jsonl: one row per logged step, with the contract's keys.
  import json
  rows = [json.loads(l) for l in open(whole / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [10, 20, 30, 40]
  for key in ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy", "tokens_per_sec"):
    assert key in rows[-1]
  assert any(f.startswith("events") for f in os.listdir(whole / "tensorboard"))


def test_sigterm_saves_a_checkpoint_and_exits(tmp_path):
  proc = subprocess.Popen(_train_command(tmp_path, "--config.train.steps=100000",
                                         "--config.train.checkpoint_every=10"),
                          cwd=ROOT, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  _wait_for_checkpoint(tmp_path, proc)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=300)
  # Not 0: a scheduler that requeues failed jobs must not take a preempted run as finished.
  assert proc.returncode == PREEMPTED_EXIT_CODE == 75, err.decode()[-3000:]
  assert b"SIGTERM: saved step" in out
  saved = int(out.decode().split("SIGTERM: saved step ")[1].split(" ")[0])
  assert os.path.isdir(tmp_path / "checkpoints" / str(saved))


def test_checkpoint_of_another_architecture_names_the_shapes(tmp_path):
  from bertlab.train import checkpoints
  from bertlab.train.trainer import Trainer, restore_or_init
  config = load_config("bert.py:tiny")
  trainer = Trainer(config)
  mngr = checkpoints.manager(str(tmp_path), config.train)
  checkpoints.save(mngr, 1, trainer.init_state(), {"step": 1})
  mngr.wait_until_finished()
  config.model.intermediate_size = 256
  with pytest.raises(ValueError, match=r"(?s)another architecture.*checkpoint \(2, 128, 512\) vs "
                     r"model \(2, 128, 256\).*new --workdir"):
    restore_or_init(Trainer(config), checkpoints.manager(str(tmp_path), config.train))
  assert os.path.isdir(tmp_path / "checkpoints" / "1")


def test_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
  from bertlab.train.trainer import NonFiniteLoss, train_and_evaluate
  config = load_config("bert.py:tiny")
  # Warmup makes step 1's rate 0; step 2's 1e38 blows the weights up, step 3's loss is NaN.
  config.train.update(steps=5, checkpoint_every=1, log_every=1, learning_rate=1e38)
  with pytest.raises(NonFiniteLoss, match="(?s)loss is nan at step 3.*last good checkpoint is step 2"):
    train_and_evaluate(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]


def test_held_out_evaluation_during_training_reaches_metrics_and_tensorboard(tmp_path):
  """`train.eval_every`: held-out rows in metrics.jsonl and eval/ tags in TensorBoard; the last
  one equals --mode=eval on the final checkpoint (the same held-out batches and masks)."""
  from bertlab.sweeps.curves import curve_rows
  from bertlab.train import trainer
  from bertlab.train.metrics import read_metrics
  config = load_config("bert.py:tiny")
  config.train.update(steps=6, eval_every=3, log_every=3, eval_batches=2, checkpoint_every=6)
  trainer.train_and_evaluate(config, str(tmp_path))
  held_out = [r for r in read_metrics(str(tmp_path)) if r.get("split") == "eval"]
  assert [r["step"] for r in held_out] == [3, 6]
  assert held_out[0]["mlm_loss"] != held_out[1]["mlm_loss"]
  final = trainer.evaluate(config, str(tmp_path))
  for key in ("mlm_accuracy", "mlm_loss", "nsp_accuracy"):
    assert final[key] == pytest.approx(held_out[-1][key], rel=1e-6), key
  rows = curve_rows(str(tmp_path), with_eval=True)
  assert [r["step"] for r in rows] == [3, 6] and "eval_mlm_accuracy" in rows[-1]
  import tensorflow as tf
  tags = {value.tag for path in (tmp_path / "tensorboard").iterdir()
          for event in tf.compat.v1.train.summary_iterator(str(path))
          for value in event.summary.value}
  assert {"eval/mlm_accuracy", "eval/mlm_loss", "mlm_accuracy"} <= tags
  mode_eval = [r for r in read_metrics(str(tmp_path)) if r.get("split") == "eval"][-1]
  assert mode_eval["step"] == 6 and mode_eval["mlm_loss"] == pytest.approx(final["mlm_loss"])
  steps = [event.step for path in (tmp_path / "tensorboard").iterdir()
           for event in tf.compat.v1.train.summary_iterator(str(path))
           for value in event.summary.value if value.tag == "eval/mlm_loss"]
  assert sorted(steps) == [3, 6, 6]  # --mode=eval's row reaches TensorBoard too
