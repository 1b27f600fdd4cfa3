"""doc_sentences packed rows (RoBERTa's near-constant tokens per batch, with fixed shapes): a
packed batch scores as its inputs would, one to a row, and a run trains on it."""

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np
import pytest

from bertlab.jobs import build_model
from bertlab.data.pipeline import PretrainingData
from bertlab.tasks import pretraining
from bertlab.train import metrics as metric_lib, trainer
from conftest import load_config

PER_ROW = ("input_ids", "attention_mask", "token_type_ids")


def _doc_sentences_config(family="roberta"):
  config = load_config(f"{family}.py:tiny")
  config.data.update(input_format="doc_sentences", sentence_objective="none",
                     max_predictions=24)
  config.train.update(batch_size=8, steps=4, log_every=2, checkpoint_every=4, eval_batches=1)
  return config


def _unpack(batch: dict, pad_id: int) -> dict:
  """Each input of each packed row in a row of its own, with its masked positions moved."""
  seq_len, predictions = batch["input_ids"].shape[1], batch["masked_positions"].shape[1]
  rows = {k: [] for k in PER_ROW + ("masked_positions", "masked_ids", "masked_weights")}
  for r, numbers in enumerate(batch["sequence_ids"]):
    for k in range(1, numbers.max() + 1):
      where = np.flatnonzero(numbers == k)
      for key in PER_ROW:
        row = np.full(seq_len, pad_id if key == "input_ids" else 0, np.int32)
        row[:len(where)] = batch[key][r, where]
        rows[key].append(row)
      picked = [i for i in range(predictions) if batch["masked_weights"][r, i] > 0
                and numbers[batch["masked_positions"][r, i]] == k]
      for key, shift in (("masked_positions", where[0]), ("masked_ids", 0),
                         ("masked_weights", 0)):
        values = np.zeros(predictions, batch[key].dtype)
        values[:len(picked)] = batch[key][r, picked] - shift
        rows[key].append(values)
  return {k: jnp.asarray(np.stack(v)) for k, v in rows.items()}


def test_a_packed_batch_has_the_loss_of_its_inputs_one_to_a_row():
  config = _doc_sentences_config()
  data = PretrainingData.from_config(config)
  batch = next(data.batches(0))
  assert batch["sequence_ids"].max(1).mean() > 1.5  # docstrings are short: several per row
  model = build_model(config)
  params = nn.unbox(model.init(jax.random.key(0), jnp.asarray(batch["input_ids"][:2]))["params"])
  loss = lambda b: pretraining.pretraining_loss(model, params, b, jax.random.key(0), config,
                                                train=False)
  one_to_a_row = _unpack(batch, data.tokenizer.pad_id)
  assert len(one_to_a_row["input_ids"]) > len(batch["input_ids"])
  packed_loss, packed = loss({k: jnp.asarray(v) for k, v in batch.items()})
  alone_loss, alone = loss(one_to_a_row)
  np.testing.assert_allclose(packed_loss, alone_loss, rtol=1e-5)
  np.testing.assert_allclose(packed["mlm_accuracy"], alone["mlm_accuracy"], rtol=1e-6)


@pytest.mark.parametrize("family", ["roberta", "electra"])
def test_a_doc_sentences_run_trains_on_packed_rows(family, tmp_path):
  trainer.train_and_evaluate(_doc_sentences_config(family), str(tmp_path))
  logged = [r for r in metric_lib.read_metrics(str(tmp_path)) if not r.get("eval")]
  assert [r["step"] for r in logged] == [2, 4]
  assert all(np.isfinite(r["loss"]) and np.isfinite(r["mlm_loss"]) for r in logged)
