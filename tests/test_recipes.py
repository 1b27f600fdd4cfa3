"""The recipes that followed BERT, as config: warmup-stable-decay (its values at the phase
boundaries, the stable phase's checkpoint kept) and a masking rate on a schedule (mmBERT)."""

import os

import ml_collections
import numpy as np
import pytest

from bertlab.data import corpus
from bertlab.data.masking import parse_rate_schedule
from bertlab.data.pipeline import PretrainingData
from bertlab.train.optimizers import learning_rate_schedule, stable_end_step
from conftest import load_config
from data_helpers import write_corpus


def _train(**values):
  return ml_collections.ConfigDict(dict(dict(
      learning_rate=1e-3, warmup_steps=10, steps=100, schedule="wsd", decay_fraction=0.2,
      decay_shape="linear"), **values))


@pytest.mark.parametrize("shape, quarter_into_decay", [("linear", 0.75e-3), ("1-sqrt", 0.5e-3)])
def test_warmup_stable_decay_values_at_its_boundaries(shape, quarter_into_decay):
  train = _train(decay_shape=shape)
  schedule = learning_rate_schedule(train)
  assert stable_end_step(train) == 80
  values = {step: float(schedule(step)) for step in (0, 5, 10, 50, 80, 85, 100)}
  assert values[0] == 0 and values[5] == pytest.approx(0.5e-3)
  assert values[10] == values[50] == values[80] == pytest.approx(1e-3)
  assert values[85] == pytest.approx(quarter_into_decay, rel=1e-5)
  assert values[100] == pytest.approx(0.0, abs=1e-9)
  linear = learning_rate_schedule(_train(schedule="linear"))
  assert stable_end_step(_train(schedule="linear")) is None
  assert float(linear(55)) == pytest.approx(0.5e-3)  # BERT's decay from step 10 to 100


def test_wsd_refuses_a_decay_that_starts_inside_the_warmup_and_names_unknown_choices():
  with pytest.raises(ValueError, match="starts at step 40, before the warmup ends at 50"):
    stable_end_step(_train(warmup_steps=50, decay_fraction=0.6))
  with pytest.raises(ValueError, match="Unknown train.schedule 'cosine'; valid: linear, wsd"):
    stable_end_step(_train(schedule="cosine"))
  with pytest.raises(ValueError, match="Unknown train.decay_shape 'cos'; valid: linear, 1-sqrt"):
    stable_end_step(_train(decay_shape="cos"))


def test_wsd_run_keeps_the_stable_phase_checkpoint_beside_the_newest(tmp_path):
  from bertlab.train.trainer import train_and_evaluate
  config = load_config("bert.py:tiny")
  config.train.update(steps=12, warmup_steps=2, checkpoint_every=4, keep_checkpoints=1,
                      log_every=4, schedule="wsd", decay_fraction=0.25)
  train_and_evaluate(config, str(tmp_path))
  # Stable until step 9; saves at 4, 8, 9, 12: the newest and the stable end stay.
  assert sorted(os.listdir(tmp_path / "checkpoints"), key=int) == ["9", "12"]


def test_mask_rate_schedule_is_followed_by_step_and_resumes_exactly(tmp_path):
  docs = [doc for doc, _ in zip(corpus.read_documents("default"), range(80))]
  config = load_config("roberta.py:tiny")
  config.train.update(batch_size=8, steps=20)
  config.data.update(source=write_corpus(str(tmp_path / "docs.txt"), docs),
                     mask_rate_schedule="0:0.3,0.5:0.1", max_predictions=60)
  data = PretrainingData.from_config(config)
  assert data.rate_schedule == ((0, 10), (0.3, 0.1))
  iterator = data.batches(0)
  uninterrupted = [next(iterator) for _ in range(20)]
  shares = []
  for batch in uninterrupted:
    real = (batch["attention_mask"] > 0).sum() - 2 * len(batch["input_ids"])  # less CLS/SEP
    shares.append(batch["masked_weights"].sum() / real)
  assert np.mean(shares[:10]) == pytest.approx(0.3, abs=0.02)
  assert np.mean(shares[10:]) == pytest.approx(0.1, abs=0.02)
  # A run resumed at step 9 reads the batches (and rates) an uninterrupted run reads.
  resumed = PretrainingData.from_config(config).batches(9)
  for step in range(9, 12):
    again = next(resumed)
    for key in ("input_ids", "masked_weights"):
      np.testing.assert_array_equal(again[key], uninterrupted[step][key])
  # The held-out split masks at data.mask_rate throughout.
  config.train.batch_size = 2
  assert PretrainingData.from_config(config, split="eval").rate_schedule is None


def test_bad_mask_rate_schedules_say_how_to_write_one():
  with pytest.raises(ValueError, match="fraction:rate pairs"):
    parse_rate_schedule("0.3,0.15", 100)
  with pytest.raises(ValueError, match="start at 0 and rise"):
    parse_rate_schedule("0.2:0.3,0.1:0.15", 100)
  with pytest.raises(ValueError, match=r"in \(0, 1\)"):
    parse_rate_schedule("0:1.5", 100)
