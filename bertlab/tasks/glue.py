"""GLUE (Wang et al., 2019): the nine tasks, their files as the GLUE download writes them, and
the official metrics.

Local files are read as `run_classifier.py` of google-research/bert reads them: tab-separated,
no quoting, a header row except in CoLA; MNLI has `dev_matched.tsv` and `dev_mismatched.tsv`.
TFDS (`glue/<task>`) is the other source. Metrics are written out in numpy so they carry no
dependency; tests hold them equal to scikit-learn and scipy.
"""

import csv
import dataclasses
import io
import os

import numpy as np

from bertlab import files


@dataclasses.dataclass(frozen=True)
class GlueTask:
  name: str  # the GLUE folder name
  labels: tuple[str, ...] | None  # None: regression (STS-B)
  text_columns: tuple[int, ...]  # train and dev files
  label_column: int  # -1: the last column
  test_text_columns: tuple[int, ...]
  metrics: tuple[str, ...]  # the first is the one the best checkpoint is chosen by
  dev_splits: tuple[str, ...] = ("dev",)
  header: bool = True
  tfds_fields: tuple[str, ...] = ("sentence1", "sentence2")
  submission_names: tuple[str, ...] = ()  # GLUE's file name per dev split's test set
  has_index: bool = True  # train/dev rows start with an id (not CoLA, SST-2, MRPC)


_NLI2 = ("entailment", "not_entailment")
TASKS = {
    "cola": GlueTask("CoLA", ("0", "1"), (3,), 1, (1,), ("mcc",), header=False,
                     tfds_fields=("sentence",), submission_names=("CoLA",), has_index=False),
    "sst2": GlueTask("SST-2", ("0", "1"), (0,), 1, (1,), ("accuracy",),
                     tfds_fields=("sentence",), submission_names=("SST-2",), has_index=False),
    "mrpc": GlueTask("MRPC", ("0", "1"), (3, 4), 0, (3, 4), ("f1", "accuracy"),
                     submission_names=("MRPC",), has_index=False),
    "qqp": GlueTask("QQP", ("0", "1"), (3, 4), 5, (1, 2), ("f1", "accuracy"),
                    tfds_fields=("question1", "question2"), submission_names=("QQP",)),
    "stsb": GlueTask("STS-B", None, (7, 8), 9, (7, 8), ("pearson", "spearman"),
                     submission_names=("STS-B",)),
    "mnli": GlueTask("MNLI", ("contradiction", "entailment", "neutral"), (8, 9), -1, (8, 9),
                     ("accuracy",), dev_splits=("dev_matched", "dev_mismatched"),
                     tfds_fields=("premise", "hypothesis"),
                     submission_names=("MNLI-m", "MNLI-mm")),
    "qnli": GlueTask("QNLI", _NLI2, (1, 2), 3, (1, 2), ("accuracy",),
                     tfds_fields=("question", "sentence"), submission_names=("QNLI",)),
    "rte": GlueTask("RTE", _NLI2, (1, 2), 3, (1, 2), ("accuracy",), submission_names=("RTE",)),
    "wnli": GlueTask("WNLI", ("0", "1"), (1, 2), 3, (1, 2), ("accuracy",),
                     submission_names=("WNLI",)),
}
# TFDS orders MNLI's labels entailment, neutral, contradiction; GLUE files name them.
TFDS_LABELS = {"mnli": ("entailment", "neutral", "contradiction"),
               "qnli": _NLI2, "rte": _NLI2}
TFDS_SPLITS = {"train": "train", "dev": "validation", "dev_matched": "validation_matched",
               "dev_mismatched": "validation_mismatched", "test": "test",
               "test_matched": "test_matched", "test_mismatched": "test_mismatched"}


@dataclasses.dataclass
class Example:
  guid: str
  texts: tuple[str, ...]
  label: str | float | None  # None in test files


def get_task(name: str) -> GlueTask:
  if name not in TASKS:
    raise KeyError(f"Unknown GLUE task {name!r}; valid: {', '.join(TASKS)}.")
  return TASKS[name]


def read_tsv(path: str) -> list[list[str]]:
  # Unquoted, as the GLUE files are written; MRPC's byte-order mark dropped.
  with files.open_file(path) as f:
    text = f.read().removeprefix("\ufeff")
  return list(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar=None))


def _check_label(task: GlueTask, label: str, where: str):
  if task.labels is None:
    try:
      return float(label)
    except ValueError:
      raise ValueError(f"{where}: STS-B score {label!r} is not a number.") from None
  if label not in task.labels:
    raise ValueError(f"{where}: label {label!r} is not one of {task.name}'s labels "
                     f"{list(task.labels)}.")
  return label


def read_examples(task: GlueTask, path: str, test: bool = False) -> list[Example]:
  """Examples of one GLUE file; a row with the wrong column count or label names its line."""
  rows = read_tsv(path)
  if not rows:
    raise ValueError(f"{path} is empty.")
  start = 1 if task.header or test else 0
  columns = task.test_text_columns if test else task.text_columns
  needed = max(columns + (() if test else (task.label_column,))) + 1
  width = len(rows[0]) if start else needed  # CoLA has no header: exactly its four columns
  examples = []
  for line, row in enumerate(rows[start:], start + 1):
    where = f"{path}, line {line}"
    if len(row) != width or len(row) < needed:
      raise ValueError(f"{where}: {len(row)} tab-separated columns, expected {width} "
                       f"({task.name} layout). Is a tab or a newline inside a field?")
    guid = row[0] if (task.has_index or test) else str(len(examples))
    label = None if test else _check_label(task, row[task.label_column], where)
    examples.append(Example(guid, tuple(row[c] for c in columns), label))
  return examples


def local_files(task: GlueTask, data_dir: str) -> dict[str, str]:
  """{split: path} of the files present under `data_dir` (or `data_dir/<GLUE name>`)."""
  folder = os.path.join(data_dir, task.name)
  folder = folder if files.isdir(folder) else data_dir
  names = {"train": "train.tsv", **{s: f"{s}.tsv" for s in task.dev_splits}}
  tests = ("test_matched", "test_mismatched") if task.name == "MNLI" else ("test",)
  names.update({t: f"{t}.tsv" for t in tests})
  found = {split: os.path.join(folder, name) for split, name in names.items()
           if files.exists(os.path.join(folder, name))}
  if "train" not in found and not any(s in found for s in task.dev_splits):
    raise FileNotFoundError(f"No {task.name} train.tsv or dev files in {folder}. Point "
                            "data.data_dir at the GLUE folder, or leave it empty for TFDS.")
  return found


def tfds_examples(name: str, split: str, limit: int | None = None) -> list[Example]:
  import tensorflow_datasets as tfds
  task = get_task(name)
  labels = TFDS_LABELS.get(name, task.labels)
  data = tfds.load(f"glue/{name}", split=TFDS_SPLITS[split], shuffle_files=False)
  if limit:
    data = data.take(limit)
  examples = []
  for record in tfds.as_numpy(data):
    texts = tuple(record[f].decode("utf-8") for f in task.tfds_fields)
    raw = record["label"]
    if raw < 0:
      label = None  # test splits carry -1
    elif task.labels is None:
      label = float(raw)
    else:
      label = labels[int(raw)]
    examples.append(Example(str(record["idx"]), texts, label))
  return examples


# The official metrics, in numpy.

def accuracy(predictions, labels) -> float:
  return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def f1(predictions, labels, positive=1) -> float:
  """F1 of the positive class (MRPC, QQP)."""
  p, y = np.asarray(predictions) == positive, np.asarray(labels) == positive
  tp = float(np.sum(p & y))
  denominator = 2 * tp + np.sum(p & ~y) + np.sum(~p & y)
  return 2 * tp / denominator if denominator else 0.0


def matthews_corrcoef(predictions, labels) -> float:
  """Matthews correlation (CoLA), the multi-class form scikit-learn computes."""
  p, y = np.asarray(predictions), np.asarray(labels)
  classes = np.union1d(p, y)
  confusion = np.array([[np.sum((y == a) & (p == b)) for b in classes] for a in classes],
                       np.float64)
  t, q = confusion.sum(1), confusion.sum(0)
  c, s = np.trace(confusion), confusion.sum()
  denominator = np.sqrt((s * s - q @ q) * (s * s - t @ t))
  return float((c * s - t @ q) / denominator) if denominator else 0.0


def pearson(x, y) -> float:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  x, y = x - x.mean(), y - y.mean()
  denominator = np.sqrt((x @ x) * (y @ y))
  return float(x @ y / denominator) if denominator else 0.0


def _ranks(x) -> np.ndarray:
  """Ranks from 1, ties sharing their mean rank (as scipy.stats.rankdata)."""
  x = np.asarray(x)
  order = np.argsort(x, kind="mergesort")
  sorted_x = x[order]
  starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
  group = np.cumsum(starts) - 1
  first = np.flatnonzero(starts)
  last = np.r_[first[1:], len(x)] - 1
  ranks = np.empty(len(x), np.float64)
  ranks[order] = (first[group] + last[group]) / 2 + 1
  return ranks


def spearman(x, y) -> float:
  return pearson(_ranks(x), _ranks(y))


def compute_metrics(task: GlueTask, predictions, labels) -> dict[str, float]:
  """The task's GLUE metrics; `predictions` and `labels` are label indices or scores."""
  functions = {"accuracy": accuracy, "f1": f1, "mcc": matthews_corrcoef, "pearson": pearson,
               "spearman": spearman}
  return {name: functions[name](predictions, labels) for name in task.metrics}


def write_submission(task: GlueTask, guids, predictions, path: str):
  """GLUE's submission file: `index<TAB>prediction`, labels by name, STS-B scores in [0, 5]."""
  with files.open_file(path, "w") as f:
    f.write("index\tprediction\n")
    for guid, value in zip(guids, predictions):
      if task.labels is None:
        text = f"{min(max(float(value), 0.0), 5.0):.3f}"
      else:
        text = task.labels[int(value)]
      f.write(f"{guid}\t{text}\n")


class GlueJob:
  """One GLUE task as a fine-tuning job: arrays in, official metrics and submissions out."""

  def __init__(self, name: str, data_config, tokenizer, type_vocab_size: int):
    # TensorFlow: configs/finetune/*.py import this module's tables while the command line
    # is parsed, before console.setup; the encoder loads only when a job is built.
    from bertlab.data import finetune as encode
    self.task = get_task(name)
    self.name = name
    self.head = "regression" if self.task.labels is None else "classification"
    self.num_labels = 1 if self.task.labels is None else len(self.task.labels)
    self.main_metric = self.task.metrics[0]
    self.eval_splits = self.task.dev_splits
    self._encode = lambda examples: encode.encode_texts(
        tokenizer, [e.texts for e in examples], data_config.seq_len, type_vocab_size)
    self._examples = {}
    limits = {"train": data_config.get("max_train_examples") or None}
    if data_config.get("data_dir"):
      for split, path in local_files(self.task, data_config.data_dir).items():
        self._examples[split] = read_examples(self.task, path, test=split.startswith("test"))
    else:
      for split in ("train",) + self.eval_splits:
        self._examples[split] = tfds_examples(name, split, limits.get(split))
    for split, limit in limits.items():
      if limit and split in self._examples:
        self._examples[split] = self._examples[split][:limit]
    limit = data_config.get("max_eval_examples") or None
    for split in self.eval_splits:
      if split not in self._examples:
        raise FileNotFoundError(f"{self.task.name}: no {split} data.")
      self._examples[split] = self._examples[split][:limit]

  def _label_values(self, examples):
    if self.task.labels is None:
      return np.array([e.label for e in examples], np.float32)
    return np.array([self.task.labels.index(e.label) for e in examples], np.int32)

  def arrays(self, split: str) -> dict[str, np.ndarray]:
    examples = self._examples[split]
    return dict(self._encode(examples), labels=self._label_values(examples))

  def _predictions(self, outputs) -> np.ndarray:
    """Scores (STS-B) or label indices from the head's outputs."""
    outputs = np.asarray(outputs)
    return outputs if self.task.labels is None else outputs.argmax(-1)

  def _write(self, split: str, predictions, path: str) -> str:
    write_submission(self.task, [e.guid for e in self._examples[split]], predictions, path)
    return path

  def score(self, split: str, outputs) -> tuple[dict, np.ndarray]:
    predictions = self._predictions(outputs)
    labels = self._label_values(self._examples[split])
    return compute_metrics(self.task, predictions, labels), predictions

  def write_predictions(self, split: str, predictions, directory: str):
    name = self.task.submission_names[self.eval_splits.index(split)]
    return self._write(split, predictions, os.path.join(directory, f"{name}.dev.tsv"))

  def test_splits(self) -> tuple[str, ...]:
    return tuple(s for s in self._examples if s.startswith("test"))

  def write_test_predictions(self, split: str, outputs, directory: str):
    """GLUE's submission file for a test split (labels unknown)."""
    name = self.task.submission_names[1 if split == "test_mismatched" else 0]
    return self._write(split, self._predictions(outputs), os.path.join(directory, f"{name}.tsv"))

  def test_arrays(self, split: str) -> dict[str, np.ndarray]:
    return self._encode(self._examples[split])
