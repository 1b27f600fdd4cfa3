"""MLM accuracy split by masked piece kind (bertlab/mlm_by_piece.py): which positions count as
word starts, and a split that adds back up to the run's own held-out numbers."""

import json

import numpy as np
import pytest

from bertlab import mlm_by_piece
from bertlab.train import trainer
from conftest import load_config

#            0        1        2        3        4        5      6      7       8
PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "##ing"]


def test_word_starts_follow_the_marker_and_the_piece_after_cls_or_sep():
  word_starts = np.array([not p.startswith("##") for p in PIECES])
  # [CLS] ##s(masked) the cat(masked) ##s(masked) [SEP] ##ing(masked)
  batch = dict(input_ids=np.array([[2, 4, 5, 4, 4, 3, 4]]),
               masked_positions=np.array([[1, 3, 4, 6]]),
               masked_ids=np.array([[7, 6, 7, 8]]),
               masked_weights=np.array([[1.0, 1.0, 1.0, 0.0]]))
  starts = mlm_by_piece.target_word_starts(batch, word_starts, np.array([2, 3]))
  # "##s" right after [CLS] and "##ing" after [SEP] begin their segment's text
  np.testing.assert_array_equal(starts, [[True, True, False, True]])
  weights = mlm_by_piece.kind_weights(batch, word_starts, np.array([2, 3]))
  np.testing.assert_array_equal(weights["word_start"], [[1, 1, 0, 0]])
  np.testing.assert_array_equal(weights["continuation"], [[0, 0, 1, 0]])
  np.testing.assert_array_equal(weights["all"], batch["masked_weights"])


def test_the_split_adds_up_to_the_runs_own_held_out_numbers(tmp_path, capsys):
  config = load_config("bert.py:tiny")
  config.train.update({"steps": 4, "checkpoint_every": 4, "log_every": 2, "eval_batches": 1})
  workdir = str(tmp_path)
  trainer.train_and_evaluate(config, workdir)
  capsys.readouterr()  # training's own lines
  assert mlm_by_piece.main([f"--workdir={workdir}", "--batches=1"]) == 0
  split = json.loads(capsys.readouterr().out)
  assert split["step"] == 4
  kinds = split["word_start"], split["continuation"]
  assert all(k["positions"] > 0 for k in kinds)
  assert sum(k["positions"] for k in kinds) == split["all"]["positions"]
  assert sum(k["share"] for k in kinds) == pytest.approx(1.0)
  for metric in ("mlm_accuracy", "mlm_loss"):
    assert sum(k["share"] * k[metric] for k in kinds) == pytest.approx(split["all"][metric],
                                                                          rel=1e-5)
  # one batch: the position-weighted mean is the evaluation's own
  held_out = trainer.evaluate(config, workdir)
  assert split["all"]["mlm_loss"] == pytest.approx(held_out["mlm_loss"], rel=1e-5)
  assert split["all"]["mlm_accuracy"] == pytest.approx(held_out["mlm_accuracy"], abs=1e-6)


def test_a_directory_that_is_not_a_workdir_is_named(tmp_path):
  with pytest.raises(SystemExit, match="not a pretraining workdir"):
    mlm_by_piece.main([f"--workdir={tmp_path}"])
