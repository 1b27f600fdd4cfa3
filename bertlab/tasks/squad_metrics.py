"""SQuAD's official scoring (v1.1 and v2.0 evaluation scripts), as percentages.

An answer is normalised by lowercasing, removing punctuation, the articles a / an / the and
extra white space. EM and F1 take the best over a question's gold answers. v2.0 counts an empty
prediction as "no answer", scores unanswerable questions by it, and with the model's null odds
finds the threshold that would have maximised EM and F1 (`best_exact`, `best_f1`).
"""

import collections
import re
import string

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
  text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
  return " ".join(_ARTICLES.sub(" ", text).split())


def exact(prediction: str, gold: str) -> float:
  return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str, version: str = "v2") -> float:
  predicted, golden = normalize_answer(prediction).split(), normalize_answer(gold).split()
  if version == "v2" and (not predicted or not golden):
    return float(predicted == golden)  # v2.0: "no answer" matches only "no answer"
  common = collections.Counter(predicted) & collections.Counter(golden)
  same = sum(common.values())
  if same == 0:
    return 0.0
  precision, recall = same / len(predicted), same / len(golden)
  return 2 * precision * recall / (precision + recall)


def gold_answers(question: dict, version: str) -> list[str]:
  answers = [a["text"] for a in question.get("answers", [])]
  if version == "v2":
    answers = [a for a in answers if normalize_answer(a)] or [""]
  return answers


def _best_threshold(scores: dict, na_probs: dict, has_answer: dict, predictions: dict):
  """The null-odds threshold that maximises the mean score (v2.0's find_best_thresh)."""
  total = sum(1 for q in has_answer if not has_answer[q])
  best = current = float(total)
  threshold = 0.0
  for qid in sorted(na_probs, key=lambda q: na_probs[q]):
    if qid not in scores:
      continue
    if has_answer[qid]:
      delta = scores[qid]
    else:
      delta = -1.0 if predictions[qid] else 0.0
    current += delta
    if current > best:
      best, threshold = current, na_probs[qid]
  return 100.0 * best / len(scores), threshold


def evaluate(dataset: list[dict], predictions: dict[str, str], version: str = "v1",
             na_probs: dict[str, float] | None = None) -> dict[str, float]:
  """Official EM/F1 of `predictions` ({question id: text}) on SQuAD's `data` list."""
  exact_scores, f1_scores, has_answer = {}, {}, {}
  missing = 0
  for article in dataset:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        qid = qa["id"]
        if qid not in predictions:
          missing += 1
          if version == "v1":
            exact_scores[qid], f1_scores[qid] = 0.0, 0.0
          continue
        golds = gold_answers(qa, version)
        has_answer[qid] = bool(qa.get("answers")) or version == "v1"
        exact_scores[qid] = max(exact(predictions[qid], g) for g in golds)
        f1_scores[qid] = max(f1(predictions[qid], g, version) for g in golds)
  count = max(len(exact_scores), 1)
  results = {"exact_match": 100.0 * sum(exact_scores.values()) / count,
             "f1": 100.0 * sum(f1_scores.values()) / count, "total": len(exact_scores),
             "missing": missing}
  if version == "v2":
    for name, keep in (("HasAns", True), ("NoAns", False)):
      ids = [q for q in exact_scores if has_answer[q] == keep]
      if ids:
        results[f"{name}_exact"] = 100.0 * np.mean([exact_scores[q] for q in ids])
        results[f"{name}_f1"] = 100.0 * np.mean([f1_scores[q] for q in ids])
        results[f"{name}_total"] = len(ids)
    if na_probs is not None:
      results["best_exact"], results["best_exact_thresh"] = _best_threshold(
          exact_scores, na_probs, has_answer, predictions)
      results["best_f1"], results["best_f1_thresh"] = _best_threshold(
          f1_scores, na_probs, has_answer, predictions)
  return results
