"""ELECTRA's replaced-token detection learns what it can see.

At tiny scale the generator's samples are near its unigram distribution and a discriminator
of a few hundred steps cannot tell them from the text (experiments/RESULTS.md). Replacing the
generator's samples with uniformly drawn tokens, which a unigram model already spots, checks
the rest of the objective end to end: the corrupted input, the labels, the head and the
gradient that reaches it.
"""

import jax
import pytest

from bertlab import config_files
from bertlab.train import metrics, trainer


@pytest.fixture
def uniform_replacements(monkeypatch):
  """The generator's softmax sample becomes a uniform draw over the vocabulary."""
  def uniform(key, logits, *args, **kwargs):
    return jax.random.randint(key, logits.shape[:-1], 5, logits.shape[-1])
  monkeypatch.setattr(jax.random, "categorical", uniform)


@pytest.mark.slow  # 150 steps of training: 2-4 minutes of the default run
def test_discriminator_beats_always_original_when_replacements_are_detectable(
    tmp_path, uniform_replacements):
  config = config_files.apply_overrides(config_files.load("configs/electra.py:tiny"), {
      "train.steps": 150, "train.log_every": 25, "train.checkpoint_every": 150})
  trainer.train_and_evaluate(config, str(tmp_path))
  last = [m for m in metrics.read_metrics(str(tmp_path)) if "rtd_accuracy" in m][-2:]
  for m in last:
    assert m["rtd_accuracy"] > m["rtd_original_share"] + 0.01, m
    assert m["rtd_auc"] > 0.75, m
    assert m["rtd_loss"] < m["rtd_constant_loss"] - 0.05, m
