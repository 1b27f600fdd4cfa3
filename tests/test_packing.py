"""Packed rows (RoBERTa's near-constant tokens per batch with fixed shapes; every format with
data.pack_sequences=True): a packed batch scores as its inputs would, one to a row (MLM, NSP and
SOP per input, SBO), and a run trains on it."""

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


def _packed_config(family):
  """The family's own input format (BERT and ALBERT pairs, SpanBERT's single segments),
  packed."""
  config = load_config(f"{family}.py:tiny")
  config.data.update(pack_sequences=True, max_predictions=24)
  config.train.update(batch_size=8, steps=4, log_every=2, checkpoint_every=4, eval_batches=1)
  return config


# Per masked token: (key, whether it holds positions, moved with its input).
PER_PREDICTION = (("masked_positions", True), ("masked_ids", False), ("masked_weights", False),
                  ("span_bounds", True), ("span_slots", False), ("span_weights", False))


def _unpack(batch: dict, pad_id: int) -> dict:
  """Each input of each packed row in a row of its own, with its masked positions, span
  bounds and sentence label moved along."""
  seq_len, predictions = batch["input_ids"].shape[1], batch["masked_positions"].shape[1]
  per_prediction = [(k, moves) for k, moves in PER_PREDICTION if k in batch]
  rows = {k: [] for k in PER_ROW + tuple(k for k, _ in per_prediction) + ("sentence_label",)}
  for r, numbers in enumerate(batch["sequence_ids"]):
    for k in range(1, numbers.max() + 1):
      where = np.flatnonzero(numbers == k)
      for key in PER_ROW:
        row = np.full(seq_len, pad_id if key == "input_ids" else 0, np.int32)
        row[:len(where)] = batch[key][r, where]
        rows[key].append(row)
      picked = [i for i in range(predictions) if batch["masked_weights"][r, i] > 0
                and numbers[batch["masked_positions"][r, i]] == k]
      for key, moves in per_prediction:
        values = np.zeros((predictions, *batch[key].shape[2:]), batch[key].dtype)
        values[:len(picked)] = batch[key][r, picked] - (where[0] if moves else 0)
        rows[key].append(values)
      label = batch["sentence_label"][r]
      rows["sentence_label"].append(label[k - 1] if np.ndim(label) else label)
  return {k: jnp.asarray(np.stack(v)) for k, v in rows.items()}


def _scores_alike(config, batch, pad_id):
  model = build_model(config)
  params = nn.unbox(model.init(jax.random.key(0), jnp.asarray(batch["input_ids"][:2]))["params"])
  loss = lambda b: pretraining.pretraining_loss(model, params, b, jax.random.key(0), config,
                                                train=False)
  one_to_a_row = _unpack(batch, pad_id)
  assert len(one_to_a_row["input_ids"]) > len(batch["input_ids"])
  packed_loss, packed = loss({k: jnp.asarray(v) for k, v in batch.items()})
  alone_loss, alone = loss(one_to_a_row)
  np.testing.assert_allclose(packed_loss, alone_loss, rtol=1e-5)
  assert packed.keys() == alone.keys()
  for key in packed:
    np.testing.assert_allclose(packed[key], alone[key], rtol=1e-5, err_msg=key)
  return packed


@pytest.mark.parametrize("family", ["bert", "albert", "spanbert"])
def test_packed_pairs_and_single_segments_score_as_their_inputs_one_to_a_row(family):
  config = _packed_config(family)
  data = PretrainingData.from_config(config)
  batch = next(data.batches(0))
  assert batch["sequence_ids"].max(1).mean() > 1.5
  metrics = _scores_alike(config, batch, data.tokenizer.pad_id)
  expected = {"bert": "nsp_accuracy", "albert": "sop_accuracy", "spanbert": "sbo_accuracy"}
  assert expected[family] in metrics


def test_a_packed_batch_has_the_loss_of_its_inputs_one_to_a_row():
  config = _doc_sentences_config()
  data = PretrainingData.from_config(config)
  batch = next(data.batches(0))
  assert batch["sequence_ids"].max(1).mean() > 1.5  # docstrings are short: several per row
  _scores_alike(config, batch, data.tokenizer.pad_id)


@pytest.mark.parametrize("family", ["roberta", "electra", "bert"])
def test_a_run_trains_on_packed_rows(family, tmp_path):
  config = _packed_config(family) if family == "bert" else _doc_sentences_config(family)
  trainer.train_and_evaluate(config, str(tmp_path))
  logged = [r for r in metric_lib.read_metrics(str(tmp_path)) if not r.get("eval")]
  assert [r["step"] for r in logged] == [2, 4]
  assert all(np.isfinite(r["loss"]) and np.isfinite(r["mlm_loss"]) for r in logged)
  if family == "bert":  # NSP on each packed pair
    assert all(np.isfinite(r["nsp_loss"]) for r in logged)
