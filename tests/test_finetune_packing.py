"""Packed fine-tuning (data.pack_sequences=True): several GLUE inputs to a row, each scored as
it is alone in a row, the same examples in every step, a fraction of the rows."""

import json
import os

import jax
import numpy as np
import pytest

import finetune_helpers
from bertlab_test_helpers import load_config
from bertlab.data import finetune_packing
from bertlab.train import finetuner


def _config(task, data_dir, pack, **model):
  config = load_config(f"finetune/glue.py:{task}")
  config.data.update(data_dir=data_dir, seq_len=64, pack_sequences=pack)
  config.train.update(batch_size=8, eval_batch_size=16, epochs=1, learning_rate=2e-3,
                      log_every=1)
  config.model.update(dropout_rate=0.0, attention_dropout_rate=0.0, **model)
  return config


def _tuner(config):
  model_cfg, encoder, job, tokenizer = finetuner._prepare(config)
  tuner = finetuner.Finetuner(config, model_cfg, job.head, job.num_labels, 8, tokenizer.pad_id)
  return tuner, tuner.init_state(encoder), job


@pytest.mark.parametrize("task, model", [("sst2", {}), ("stsb", {}),
                                         ("sst2", {"use_pooler": False})])
def test_packed_inputs_score_and_train_as_they_do_one_to_a_row(tmp_path, task, model):
  """Predictions, the loss of a step and its update equal the unpacked run's (no dropout):
  single sentences and pairs, with the pooler and, as RoBERTa and ELECTRA, without."""
  finetune_helpers.write_data(task, str(tmp_path))
  (plain, plain_state, job), (packed, packed_state, _) = (
      _tuner(_config(task, str(tmp_path), pack, **model)) for pack in (False, True))
  dev = job.arrays(job.eval_splits[0])
  expected = plain.predict(plain_state.params, dev, 16)
  found = packed.predict(packed_state.params, dev, 16)
  assert found.shape == expected.shape
  np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-5)
  train = job.arrays("train")
  plain_batch = next(plain.train_batches(train, 0))
  packed_batch = next(packed.train_batches(train, 0))
  assert packed.train_rows < 8 and packed_batch["input_ids"].shape[0] == packed.train_rows
  assert packed_batch["example_weight"].sum() == 8  # the same eight examples, fewer rows
  plain_state, plain_values = plain.step(plain_state, plain_batch)
  packed_state, packed_values = packed.step(packed_state, packed_batch)
  np.testing.assert_allclose(float(packed_values["loss"]), float(plain_values["loss"]),
                             rtol=1e-5)
  drift = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                       plain_state.params, packed_state.params)
  assert max(jax.tree.leaves(drift)) < 1e-5


def test_a_packed_batch_holds_the_examples_of_the_unpacked_one():
  seq_len, count = 32, 50
  rng = np.random.default_rng(0)
  lengths = rng.integers(3, seq_len + 1, count)
  mask = (np.arange(seq_len) < lengths[:, None]).astype(np.int32)
  ids = np.where(mask, np.arange(count)[:, None] * 100 + np.arange(seq_len) + 1, 0)
  arrays = dict(input_ids=ids, attention_mask=mask, token_type_ids=np.zeros_like(ids),
                labels=np.arange(count))
  batches = finetune_packing.batch_indices(count, 16, 3, drop_remainder=False)
  assert sorted(np.concatenate(batches).tolist()) == list(range(count))  # the last one kept
  plans = finetune_packing.plan(lengths, batches, seq_len)
  rows = finetune_packing.rows_for(plans, 4)
  assert rows % 4 == 0
  for batch, groups in zip(batches, plans):
    packed = finetune_packing.pack_batch(arrays, groups, rows, pad_id=0)
    real = packed["example_weight"] > 0
    assert sorted(packed["example_index"][real].tolist()) == sorted(batch.tolist())
    assert np.array_equal(packed["labels"][real], packed["example_index"][real])
    for r, s in zip(*np.nonzero(real)):
      example = packed["example_index"][r, s]
      where = packed["sequence_ids"][r] == s + 1
      assert np.flatnonzero(where)[0] == packed["cls_positions"][r, s]
      assert np.array_equal(packed["input_ids"][r, where], ids[example, :lengths[example]])
    assert (packed["attention_mask"] == (packed["sequence_ids"] > 0)).all()
    assert (real.sum(1) <= finetune_packing.slots_per_row(seq_len)).all()


@pytest.mark.parametrize("task", ["squad", "ner"])
def test_packing_a_span_or_token_task_says_what_to_change(tmp_path, task):
  finetune_helpers.write_data(task, str(tmp_path))
  config = finetune_helpers.config_for(task, str(tmp_path))
  config.data.pack_sequences = True
  with pytest.raises(ValueError, match="data.pack_sequences=False"):
    finetuner.finetune(config, str(tmp_path / "run"))


def test_a_packed_run_follows_the_unpacked_run_epoch_by_epoch(tmp_path):
  """Without dropout the two runs are one computation in another layout: the same dev
  accuracy and loss after every epoch, and the same final parameters."""
  data = tmp_path / "SST-2"
  data.mkdir()
  for name, count, seed in (("train.tsv", 96, 0), ("dev.tsv", 40, 1)):
    rows = finetune_helpers.sst2_rows(np.random.default_rng(seed), count)
    (data / name).write_text("\n".join(rows) + "\n")
  runs = {}
  for pack in (False, True):
    config = _config("sst2", str(tmp_path), pack)
    config.train.epochs = 3
    workdir = str(tmp_path / f"run-{pack}")
    runs[pack] = finetuner.finetune(config, workdir), workdir
  assert runs[True][0]["metrics"]["accuracy"] == runs[False][0]["metrics"]["accuracy"] >= 0.9
  evals = {pack: [r for r in _rows(workdir) if r.get("eval")] for pack, (_, workdir) in runs.items()}
  assert [r["accuracy"] for r in evals[True]] == [r["accuracy"] for r in evals[False]]
  train = {pack: [r["loss"] for r in _rows(workdir) if "loss" in r and not r.get("eval")]
           for pack, (_, workdir) in runs.items()}
  np.testing.assert_allclose(train[True], train[False], rtol=1e-4)


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]
