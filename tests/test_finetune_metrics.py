"""The fine-tuning metrics equal their trusted references on fixed predictions: scikit-learn and
scipy for GLUE, seqeval for NER, and the official SQuAD scripts' rules worked by hand."""

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as sk

from bertlab.tasks import glue, ner, squad_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_glue_classification_metrics_equal_scikit_learn(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, 300)
  predictions = np.where(rng.random(300) < 0.7, labels, 1 - labels)
  assert glue.accuracy(predictions, labels) == pytest.approx(sk.accuracy_score(labels, predictions))
  assert glue.f1(predictions, labels) == pytest.approx(sk.f1_score(labels, predictions))
  assert glue.matthews_corrcoef(predictions, labels) == pytest.approx(
      sk.matthews_corrcoef(labels, predictions))
  three = rng.integers(0, 3, 300)
  guess = np.where(rng.random(300) < 0.5, three, rng.integers(0, 3, 300))
  assert glue.matthews_corrcoef(guess, three) == pytest.approx(sk.matthews_corrcoef(three, guess))


def test_degenerate_predictions_score_zero_as_scikit_learn_does():
  labels = np.array([0, 1, 1, 0])
  constant = np.zeros(4, int)
  assert glue.matthews_corrcoef(constant, labels) == sk.matthews_corrcoef(labels, constant) == 0
  assert glue.f1(constant, labels) == sk.f1_score(labels, constant, zero_division=0) == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_glue_correlations_equal_scipy_with_ties(seed):
  rng = np.random.default_rng(seed)
  gold = np.round(rng.uniform(0, 5, 400) * 5) / 5  # STS-B scores repeat: ties
  predicted = np.round(gold + rng.normal(0, 1, 400), 1)
  assert glue.pearson(predicted, gold) == pytest.approx(scipy.stats.pearsonr(predicted, gold)[0])
  assert glue.spearman(predicted, gold) == pytest.approx(
      scipy.stats.spearmanr(predicted, gold)[0])


def test_each_task_reports_its_official_metrics():
  names = {name: glue.compute_metrics(glue.TASKS[name], np.array([1, 0]), np.array([1, 1]))
           for name in ("cola", "mrpc", "sst2")}
  assert set(names["cola"]) == {"mcc"}
  assert set(names["mrpc"]) == {"f1", "accuracy"}
  assert names["sst2"] == {"accuracy": 0.5}
  assert set(glue.compute_metrics(glue.TASKS["stsb"], [1.0, 2.0, 3.0], [1.0, 2.5, 2.9])) == {
      "pearson", "spearman"}


def _random_tags(rng, length, scheme):
  kinds = ["PER", "ORG", "LOC", "MISC"]
  tags = []
  for _ in range(length):
    r = rng.random()
    if r < 0.5:
      tags.append("O")
    else:
      prefix = rng.choice(["B", "I"] if scheme == "iob" else ["B", "I", "E", "S"])
      tags.append(f"{prefix}-{rng.choice(kinds)}")
  return tags


@pytest.mark.parametrize("scheme", ["iob", "iobes"])
def test_ner_entity_scores_equal_seqeval(scheme):
  from seqeval import metrics as seqeval
  rng = np.random.default_rng(0)
  gold = [_random_tags(rng, int(rng.integers(1, 20)), scheme) for _ in range(300)]
  predicted = [[t if rng.random() < 0.8 else rng.choice(["O", "B-PER", "I-PER", "I-LOC"])
                for t in sentence] for sentence in gold]
  ours = ner.entity_scores(gold, predicted)
  assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, predicted))
  assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, predicted))
  assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, predicted))


def test_ner_chunks_follow_conlleval():
  # IOB1: an I- after O starts an entity; a B- only separates two of the same type.
  assert ner.entities(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == {
      ("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)}
  assert ner.entities(["B-ORG", "I-LOC"]) == {("ORG", 0, 0), ("LOC", 1, 1)}


def test_squad_normalisation_is_the_official_one():
  assert squad_metrics.normalize_answer("The  Quick, brown-fox!") == "quick brownfox"
  assert squad_metrics.normalize_answer("an apple a day") == "apple day"
  assert squad_metrics.normalize_answer("Theory") == "theory"  # "the" only as a word


def _dataset(questions):
  return [{"paragraphs": [{"context": "c", "qas": questions}]}]


def test_squad_v1_exact_match_and_f1_by_hand():
  data = _dataset([
      {"id": "a", "answers": [{"text": "Denver Broncos"}, {"text": "the Broncos"}]},
      {"id": "b", "answers": [{"text": "in 1990"}]},
      {"id": "c", "answers": [{"text": "Paris"}]}])
  scores = squad_metrics.evaluate(data, {"a": "Broncos", "b": "1990 in the spring"}, "v1")
  # a: EM 1 against "the Broncos"; b: "1990 in spring" vs "in 1990": EM 0, precision 2/3,
  # recall 1, F1 0.8; c: missing, scored 0 in v1.1.
  assert scores["exact_match"] == pytest.approx(100 / 3)
  assert scores["f1"] == pytest.approx(100 * (1 + 0.8) / 3)
  assert scores["total"] == 3 and scores["missing"] == 1


def test_squad_v2_no_answer_and_best_threshold_by_hand():
  data = _dataset([
      {"id": "a", "answers": [{"text": "Normandy"}]},
      {"id": "b", "answers": [], "is_impossible": True},
      {"id": "c", "answers": [], "is_impossible": True}])
  predictions = {"a": "Normandy", "b": "", "c": "France"}
  scores = squad_metrics.evaluate(data, predictions, "v2", {"a": 0.1, "b": 0.9, "c": 0.5})
  assert scores["exact_match"] == pytest.approx(200 / 3)
  assert scores["HasAns_exact"] == 100 and scores["NoAns_exact"] == 50
  # Answering "" above null odds 0.1 would fix c and keep a: 3/3 at threshold 0.1.
  assert scores["best_exact"] == pytest.approx(100.0)
  assert scores["best_exact_thresh"] == pytest.approx(0.1)
  # v2.0 F1: an empty prediction matches only an empty gold.
  assert squad_metrics.f1("", "Normandy") == 0 and squad_metrics.f1("", "") == 1
