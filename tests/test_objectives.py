"""The pretraining objectives' numbers, worked by hand: ELECTRA's replaced-token detection and
its bars (always-"original"), and the masked positions put back."""

import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.tasks import pretraining


def test_replaced_token_detection_by_hand():
  logits = jnp.array([[2.0, -1.0, 0.5, -3.0], [-2.0, 1.0, 0.0, 4.0]])
  replaced = jnp.array([[True, False, False, False], [False, False, False, True]])
  mask = jnp.array([[1, 1, 1, 1], [1, 1, 1, 0]])  # the last token is padding
  loss, metrics = pretraining.replaced_token_detection(logits, replaced, mask)
  x, y = np.asarray(logits)[np.asarray(mask) > 0], np.asarray(replaced)[np.asarray(mask) > 0]
  expected = np.mean(np.log1p(np.exp(-x)) * y + np.log1p(np.exp(x)) * (1 - y))
  assert float(loss) == pytest.approx(expected, rel=1e-6)
  # Predicted replaced (logit > 0): positions 0, 2 (row 0) and 1 (row 1); truly: only (0, 0).
  assert float(metrics["rtd_accuracy"]) == pytest.approx(5 / 7)  # wrong at (0, 2), (1, 1)
  assert float(metrics["rtd_original_share"]) == pytest.approx(6 / 7)
  assert float(metrics["rtd_precision"]) == pytest.approx(1 / 3)
  assert float(metrics["rtd_recall"]) == pytest.approx(1.0)
  # The one replaced token (logit 2.0) outranks all six original ones; the padded 4.0 is out.
  assert float(metrics["rtd_auc"]) == pytest.approx(1.0)
  share = 1 / 7
  assert float(metrics["rtd_constant_loss"]) == pytest.approx(
      -(share * np.log(share) + (1 - share) * np.log(1 - share)), rel=1e-5)


def test_ranking_auc_matches_scikit_learn():
  from sklearn.metrics import roc_auc_score
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(4, 50)).astype(np.float32)
  positive = rng.random((4, 50)) < 0.2 + 0.1 * (scores > 0.5)
  valid = rng.random((4, 50)) < 0.8
  expected = roc_auc_score(positive[valid], scores[valid])
  auc = pretraining.ranking_auc(jnp.asarray(scores), jnp.asarray(positive), jnp.asarray(valid))
  assert float(auc) == pytest.approx(expected, rel=1e-6)


def test_unmasked_ids_put_the_targets_back_and_skip_padding_rows():
  batch = dict(input_ids=jnp.array([[1, 103, 5, 103], [7, 8, 103, 9]]),
               masked_positions=jnp.array([[1, 3], [2, 0]]),
               masked_ids=jnp.array([[4, 6], [11, 0]]),
               masked_weights=jnp.array([[1.0, 1.0], [1.0, 0.0]]))
  np.testing.assert_array_equal(pretraining.unmasked_ids(batch), [[1, 4, 5, 6], [7, 8, 11, 9]])
