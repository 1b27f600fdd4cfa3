"""SQuAD v1.1 and v2.0 (Rajpurkar et al., 2016, 2018) as a fine-tuning job.

Contexts are cut into windows of `seq_len` (`doc_stride` 128 apart, questions cut at 64
tokens), as google-research/bert's run_squad does. A window's answer is the run of pieces
covering the answer's characters; a window without the whole answer (and an unanswerable
question) points at the first token. Predictions take the 20 best start and end logits per
window, answers of at most 30 tokens starting in a token's most-centred window, and map back to
the exact characters of the context. For v2.0 the null answer scores the first token's logits,
and is chosen when it beats the best span by more than `null_threshold`.
"""

import collections
import dataclasses
import json
import os

import numpy as np

from bertlab import files
from bertlab.data import finetune as encode
from bertlab.tasks import squad_metrics


@dataclasses.dataclass
class Question:
  qid: str
  question: str
  context: str
  answers: list[dict]  # {"text", "answer_start"}
  is_impossible: bool = False


def read_squad(path: str) -> tuple[list[dict], list[Question]]:
  """The raw `data` list (for the official scorer) and the questions of a SQuAD JSON file."""
  with files.open_file(path) as f:
    data = json.load(f)["data"]
  questions = []
  for article in data:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        questions.append(Question(qa["id"], qa["question"], paragraph["context"],
                                  qa.get("answers", []), qa.get("is_impossible", False)))
  return data, questions


def _words_with_offsets(text: str) -> list[tuple[str, int]]:
  """Whitespace-separated words and their first character."""
  words, start = [], None
  for i, char in enumerate(text + " "):
    if char.isspace():
      if start is not None:
        words.append((text[start:i], start))
        start = None
    elif start is None:
      start = i
  return words


@dataclasses.dataclass
class Window:
  question_index: int
  ids: list[int]
  types: list[int]
  # Per position: the context character span of the piece there, or None outside the context.
  spans: list[tuple[int, int] | None]
  max_context: list[bool]
  start: int = 0
  end: int = 0


def _context_at(question: Question) -> str:
  answer = question.answers[0]
  return question.context[answer["answer_start"]:answer["answer_start"] + len(answer["text"])]


def answer_is_at_its_offset(question: Question) -> bool:
  """The words under [answer_start, + len(text)) hold the answer, whitespace aside (the test
  of google-research/bert's run_squad); questions without an answer pass."""
  if question.is_impossible or not question.answers:
    return True
  answer = question.answers[0]
  first, last = answer["answer_start"], answer["answer_start"] + len(answer["text"])
  if first < 0 or last > len(question.context):
    return False
  covered = " ".join(w for w, start in _words_with_offsets(question.context)
                     if start < last and start + len(w) > first)
  return " ".join(answer["text"].split()) in covered


class SquadJob:
  """SQuAD as a fine-tuning job (`finetune.name` v1 or v2)."""

  head = "span"
  num_labels = 2

  def __init__(self, version: str, data_config, tokenizer, type_vocab_size: int,
               squad_config=None):
    if version not in ("v1", "v2"):
      raise ValueError(f"Unknown SQuAD version {version!r}; valid: v1, v2.")
    # max_misaligned_share: training answers whose answer_start does not point at their text
    # are skipped with a count (as google-research/bert's run_squad skips them); past this
    # share of the training questions the file is taken as broken and refused.
    options = dict(doc_stride=128, max_query_length=64, n_best_size=20, max_answer_length=30,
                   null_threshold=0.0, max_misaligned_share=0.01)
    options.update(dict(squad_config or {}))
    self.__dict__.update(options)
    self.version, self.tokenizer = version, tokenizer
    self.seq_len, self.type_vocab_size = data_config.seq_len, type_vocab_size
    self.main_metric = "f1"
    self.eval_splits = ("dev",)
    self._data, self._questions = {}, {}
    names = {"v1": ("train-v1.1.json", "dev-v1.1.json"),
             "v2": ("train-v2.0.json", "dev-v2.0.json")}[version]
    limits = {"train": data_config.get("max_train_examples") or None,
              "dev": data_config.get("max_eval_examples") or None}
    for split, name in zip(("train", "dev"), names):
      if data_config.get("data_dir"):
        path = data_config.get(f"{split}_file") or os.path.join(data_config.data_dir, name)
        if not files.exists(path):
          if split == "train":
            continue
          raise FileNotFoundError(f"SQuAD {version}: no {path}. Point data.data_dir at the "
                                  f"folder of {name}, or set data.{split}_file.")
        data, questions = read_squad(path)
      else:
        data, questions = _tfds_squad(version, split, limits[split])
      questions = questions[:limits[split]]
      self._data[split], self._questions[split] = _only(data, questions), questions
    self._windows = {}

  def windows(self, split: str) -> list[Window]:
    if split not in self._windows:
      questions = self._questions[split]
      if split == "train":
        questions = self._aligned(questions)
      self._windows[split] = self._make_windows(questions, split == "train")
    return self._windows[split]

  def _aligned(self, questions: list[Question]) -> list[Question]:
    """The training questions whose answer is where answer_start says, or an error when too
    many are not (a shifted or regenerated file would train on the wrong spans)."""
    kept = [q for q in questions if answer_is_at_its_offset(q)]
    skipped = len(questions) - len(kept)
    if skipped:
      bad = [q for q in questions if not answer_is_at_its_offset(q)][:3]
      shown = "; ".join(f"{q.qid}: {q.answers[0]['text']!r} at {q.answers[0]['answer_start']} "
                        f"reads {_context_at(q)!r}" for q in bad)
      message = (f"SQuAD train: {skipped} of {len(questions)} answers are not at their "
                 f"answer_start ({shown})")
      if skipped > self.max_misaligned_share * len(questions):
        raise ValueError(f"{message}. More than squad.max_misaligned_share="
                         f"{self.max_misaligned_share} of the file: are the offsets from "
                         "another version of the contexts?")
      print(f"{message}; skipped them, as google-research/bert's run_squad does.", flush=True)
    return kept

  def _make_windows(self, questions: list[Question], train: bool) -> list[Window]:
    tok = self.tokenizer
    query_ids = encode.tokenize_texts(tok, [q.question for q in questions])
    contexts = sorted({q.context for q in questions})
    words = {c: _words_with_offsets(c) for c in contexts}
    pieces = encode.tokenize_words(tok, [w for c in contexts for w, _ in words[c]])
    context_pieces = {}
    for c in contexts:
      ids, spans = [], []
      for word, offset in words[c]:
        word_ids = pieces[word]
        ids.extend(int(i) for i in word_ids)
        spans.extend((offset + a, offset + b) for a, b in encode.piece_spans(tok, word, word_ids))
      context_pieces[c] = (ids, spans)
    windows = []
    for index, question in enumerate(questions):
      query = list(query_ids[index][:self.max_query_length])
      budget = self.seq_len - len(query) - encode.specials_in_pair(tok)
      if budget < 1:
        raise ValueError(f"Question {question.qid}: {len(query)} tokens leave no room for the "
                         f"context in data.seq_len={self.seq_len}; raise data.seq_len or lower "
                         "squad.max_query_length.")
      ids, spans = context_pieces[question.context]
      starts = list(range(0, max(len(ids) - budget, 0) + self.doc_stride, self.doc_stride))
      starts = [s for s in starts if s < max(len(ids), 1)]
      answer = self._answer_chars(question) if train else None
      for start in starts:
        chunk = range(start, min(start + budget, len(ids)))
        seq, types = encode.join_segments(tok, query, [ids[i] for i in chunk],
                                          self.type_vocab_size)
        offset = 1 + len(query) + (2 if encode.uses_double_separator(tok) else 1)
        window_spans = [None] * len(seq)
        max_context = [False] * len(seq)
        for k, i in enumerate(chunk):
          window_spans[offset + k] = spans[i]
          max_context[offset + k] = _is_max_context(starts, budget, len(ids), start, i)
        window = Window(index, seq, types, window_spans, max_context)
        if answer is not None:
          first, last = answer
          inside = [offset + k for k, i in enumerate(chunk)
                    if spans[i][1] > first and spans[i][0] < last]
          if inside and spans[chunk[0]][0] <= first and spans[chunk[-1]][1] >= last:
            window.start, window.end = inside[0], inside[-1]
        windows.append(window)
    return windows

  def _answer_chars(self, question: Question):
    if question.is_impossible or not question.answers:
      return None
    answer = question.answers[0]
    first = answer["answer_start"]
    return first, first + len(answer["text"])

  def arrays(self, split: str) -> dict[str, np.ndarray]:
    windows = self.windows(split)
    ids = encode.pad_rows([w.ids for w in windows], self.seq_len, self.tokenizer.pad_id)
    return dict(input_ids=ids,
                attention_mask=encode.pad_rows([[1] * len(w.ids) for w in windows], self.seq_len),
                token_type_ids=encode.pad_rows([w.types for w in windows], self.seq_len),
                start_positions=np.array([w.start for w in windows], np.int32),
                end_positions=np.array([w.end for w in windows], np.int32))

  def predict(self, split: str, start_logits, end_logits):
    """({qid: answer}, {qid: n-best list}, {qid: null odds}) from each window's logits."""
    questions = self._questions[split]
    by_question = collections.defaultdict(list)
    for w, window in enumerate(self.windows(split)):
      by_question[window.question_index].append(w)
    answers, nbest, null_odds = {}, {}, {}
    for index, question in enumerate(questions):
      candidates, null_score = {}, None
      for w in by_question[index]:
        window, s, e = self.windows(split)[w], start_logits[w], end_logits[w]
        length = len(window.ids)
        if self.version == "v2":
          score = float(s[0] + e[0])
          null_score = score if null_score is None else min(null_score, score)
        top_s = np.argsort(-s[:length])[:self.n_best_size]
        top_e = np.argsort(-e[:length])[:self.n_best_size]
        for i in top_s:
          if window.spans[i] is None or not window.max_context[i]:
            continue
          for j in top_e:
            if window.spans[j] is None or j < i or j - i + 1 > self.max_answer_length:
              continue
            text = question.context[window.spans[i][0]:window.spans[j][1]]
            score = float(s[i] + e[j])
            if text not in candidates or candidates[text] < score:
              candidates[text] = score
      ranked = sorted(candidates.items(), key=lambda kv: -kv[1])[:self.n_best_size]
      if null_score is not None:
        ranked = sorted(ranked + [("", null_score)], key=lambda kv: -kv[1])[:self.n_best_size]
      if not ranked:
        ranked = [("", 0.0)]
      scores = np.array([v for _, v in ranked])
      probs = np.exp(scores - scores.max())
      probs /= probs.sum()
      nbest[question.qid] = [dict(text=t, logit=v, probability=float(p))
                             for (t, v), p in zip(ranked, probs)]
      best_span = next(((t, v) for t, v in ranked if t), None)
      if self.version == "v1":
        answers[question.qid] = best_span[0] if best_span else ""
      else:
        odds = null_score - (best_span[1] if best_span else -1e9)
        null_odds[question.qid] = float(odds)
        answers[question.qid] = "" if best_span is None or odds > self.null_threshold \
            else best_span[0]
    return answers, nbest, null_odds

  def score(self, split: str, outputs) -> tuple[dict, tuple]:
    start, end = (np.asarray(o) for o in outputs)
    predictions = self.predict(split, start, end)
    answers, _, null_odds = predictions
    metrics = squad_metrics.evaluate(self._data[split], answers, self.version,
                                     null_odds if self.version == "v2" else None)
    return {k: float(v) for k, v in metrics.items()}, predictions

  def write_predictions(self, split: str, predictions, directory: str) -> str:
    answers, nbest, null_odds = predictions
    outputs = {"predictions.json": answers, "nbest_predictions.json": nbest}
    if self.version == "v2":
      outputs["null_odds.json"] = null_odds
    for name, value in outputs.items():
      with files.open_file(os.path.join(directory, name), "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
    return os.path.join(directory, "predictions.json")


def _only(data: list[dict], questions: list[Question]) -> list[dict]:
  """The articles with only the kept questions, so a subset is scored on itself."""
  kept = {q.qid for q in questions}
  articles = []
  for article in data:
    paragraphs = [dict(p, qas=[qa for qa in p["qas"] if qa["id"] in kept])
                  for p in article["paragraphs"]]
    paragraphs = [p for p in paragraphs if p["qas"]]
    if paragraphs:
      articles.append(dict(article, paragraphs=paragraphs))
  return articles


def _is_max_context(starts, budget, total, start, position) -> bool:
  """Whether this window gives `position` its most context (run_squad's rule: the larger of
  the lesser side, plus a little for longer windows)."""
  best, best_start = None, None
  for s in starts:
    end = min(s + budget, total) - 1
    if not s <= position <= end:
      continue
    score = min(position - s, end - position) + 0.01 * (end - s + 1)
    if best is None or score > best:
      best, best_start = score, s
  return best_start == start


def _tfds_squad(version: str, split: str, limit: int | None):
  import tensorflow_datasets as tfds
  name = "squad/v1.1" if version == "v1" else "squad/v2.0"
  data = tfds.load(name, split="train" if split == "train" else "validation",
                   shuffle_files=False)
  if limit:
    data = data.take(limit)
  questions, articles = [], {}
  for r in tfds.as_numpy(data):
    texts = [t.decode("utf-8") for t in r["answers"]["text"]]
    starts = [int(s) for s in r["answers"]["answer_start"]]
    answers = [dict(text=t, answer_start=s) for t, s in zip(texts, starts)]
    q = Question(r["id"].decode("utf-8"), r["question"].decode("utf-8"),
                 r["context"].decode("utf-8"), answers, not answers)
    questions.append(q)
    title = r["title"].decode("utf-8")
    qa = dict(id=q.qid, question=q.question, answers=answers, is_impossible=not answers)
    articles.setdefault(title, {}).setdefault(q.context, []).append(qa)
  data = [dict(title=t, paragraphs=[dict(context=c, qas=qas) for c, qas in ps.items()])
          for t, ps in articles.items()]
  return data, questions
