"""Named entities on CoNLL-2003 (Tjong Kim Sang and De Meulder, 2003): the four-column files,
the label set, and entity-level precision / recall / F1 with conlleval's chunk rules (as seqeval
computes them in its default mode; tests hold them equal).
"""

import dataclasses
import os

import numpy as np

from bertlab import files

CONLL2003_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC",
                    "I-MISC")
SPLIT_FILES = {"train": ("train.txt",), "dev": ("valid.txt", "dev.txt", "testa.txt"),
               "test": ("test.txt", "testb.txt")}
TFDS_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclasses.dataclass
class Sentence:
  words: list[str]
  tags: list[str]


def read_conll(path: str, labels=CONLL2003_LABELS, tag_column: int = -1) -> list[Sentence]:
  """Sentences of a CoNLL file: a token per line (word first, NER tag last), blank lines
  between sentences, `-DOCSTART-` lines skipped. A tag outside `labels` names its line."""
  allowed = set(labels)
  sentences, words, tags = [], [], []
  with files.open_file(path) as f:
    lines = f.read().splitlines()
  for line_number, line in enumerate(lines, 1):
    fields = line.split()
    if not fields or fields[0] == "-DOCSTART-":
      if words:
        sentences.append(Sentence(words, tags))
        words, tags = [], []
      continue
    if len(fields) < 2:
      raise ValueError(f"{path}, line {line_number}: {len(fields)} column, expected a word "
                       "and its tag (CoNLL-2003: word, POS, chunk, NER tag).")
    tag = fields[tag_column]
    if tag not in allowed:
      raise ValueError(f"{path}, line {line_number}: tag {tag!r} is not in the label set "
                       f"{list(labels)}; set the task's labels to include it.")
    words.append(fields[0])
    tags.append(tag)
  if words:
    sentences.append(Sentence(words, tags))
  return sentences


def local_file(data_dir: str, split: str) -> str | None:
  for name in SPLIT_FILES[split]:
    path = os.path.join(data_dir, name)
    if files.exists(path):
      return path
  return None


def tfds_sentences(split: str, limit: int | None = None) -> list[Sentence]:
  import tensorflow_datasets as tfds
  builder = tfds.builder("conll2003")
  names = builder.info.features["ner"].feature.names
  data = tfds.load("conll2003", split=TFDS_SPLITS[split], shuffle_files=False)
  if limit:
    data = data.take(limit)
  sentences = []
  for index, record in enumerate(tfds.as_numpy(data)):
    if len(record["tokens"]) != len(record["ner"]):
      raise ValueError(f"conll2003 {split} record {index}: {len(record['tokens'])} tokens but "
                       f"{len(record['ner'])} NER tags.")
    sentences.append(Sentence([w.decode("utf-8") for w in record["tokens"]],
                              [names[t] for t in record["ner"]]))
  return sentences


def _split_tag(tag: str) -> tuple[str, str]:
  if tag == "O" or "-" not in tag:
    return tag[:1] or "O", ""
  prefix, kind = tag.split("-", 1)
  return prefix, kind


def entities(tags: list[str]) -> set[tuple[str, int, int]]:
  """(type, first, last) chunks under conlleval's rules, for IOB1, IOB2 and IOBES tags."""
  chunks, start, kind = set(), None, ""
  previous_prefix, previous_kind = "O", ""
  for i, tag in enumerate(list(tags) + ["O"]):
    prefix, this_kind = _split_tag(tag)
    ends = start is not None and (
        prefix in ("B", "S", "O") or this_kind != previous_kind or previous_prefix in ("E", "S"))
    if ends:
      chunks.add((kind, start, i - 1))
      start = None
    begins = prefix in ("B", "S") or (prefix in ("I", "E") and (
        previous_prefix in ("O", "E", "S") or this_kind != previous_kind))
    if prefix != "O" and (begins or start is None):
      start, kind = i, this_kind
    previous_prefix, previous_kind = prefix, this_kind
  return chunks


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
  """Micro precision, recall and F1 over entities (seqeval's classification report totals)."""
  true_total = predicted_total = correct = 0
  for index, (g, p) in enumerate(zip(gold, predicted)):
    if len(g) != len(p):
      raise ValueError(f"Sentence {index}: {len(g)} gold tags but {len(p)} predicted.")
    g_chunks, p_chunks = entities(g), entities(p)
    true_total += len(g_chunks)
    predicted_total += len(p_chunks)
    correct += len(g_chunks & p_chunks)
  precision = correct / predicted_total if predicted_total else 0.0
  recall = correct / true_total if true_total else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {"precision": precision, "recall": recall, "f1": f1}


def write_conll(path: str, sentences: list[Sentence], predicted: list[list[str]]):
  """conlleval's input: `word gold predicted` per token, a blank line between sentences."""
  with files.open_file(path, "w") as f:
    for sentence, tags in zip(sentences, predicted):
      for word, gold, guess in zip(sentence.words, sentence.tags, tags):
        f.write(f"{word} {gold} {guess}\n")
      f.write("\n")


class NerJob:
  """CoNLL-2003 NER as a fine-tuning job: the label of a word sits on its first piece (the
  other pieces carry weight 0), as in BERT's Section 5.3; words cut off by `seq_len` are
  predicted `O`."""

  head = "token"
  main_metric = "f1"
  eval_splits = ("dev",)

  def __init__(self, data_config, tokenizer, labels=CONLL2003_LABELS):
    self.labels = tuple(labels)
    self.num_labels = len(self.labels)
    self.tokenizer, self.seq_len = tokenizer, data_config.seq_len
    self._sentences = {}
    limits = {"train": data_config.get("max_train_examples") or None,
              "dev": data_config.get("max_eval_examples") or None,
              "test": data_config.get("max_eval_examples") or None}
    for split in ("train", "dev", "test"):
      if data_config.get("data_dir"):
        path = local_file(data_config.data_dir, split)
        if path is None:
          if split == "dev":
            raise FileNotFoundError(f"No CoNLL dev file ({' or '.join(SPLIT_FILES['dev'])}) "
                                    f"in {data_config.data_dir}.")
          continue
        sentences = read_conll(path, self.labels)
      else:
        sentences = tfds_sentences(split, limits[split])
      self._sentences[split] = sentences[:limits[split]]
    self._first_pieces = {}

  def arrays(self, split: str):
    # TensorFlow: configs/finetune/*.py import this module's tables while the command line
    # is parsed, before console.setup; the encoder loads only when a job is built.
    from bertlab.data import finetune as encode
    sentences = self._sentences[split]
    pieces = encode.tokenize_words(self.tokenizer, [w for s in sentences for w in s.words])
    rows, labels, weights, firsts = [], [], [], []
    for sentence in sentences:
      ids, tags, weight, first = [self.tokenizer.cls_id], [0], [0.0], []
      for word, tag in zip(sentence.words, sentence.tags):
        word_ids = list(pieces[word]) or [self.tokenizer.unk_id]
        if len(ids) + len(word_ids) > self.seq_len - 1:
          break
        first.append(len(ids))
        ids += word_ids
        tags += [self.labels.index(tag)] + [0] * (len(word_ids) - 1)
        weight += [1.0] + [0.0] * (len(word_ids) - 1)
      rows.append(ids + [self.tokenizer.sep_id])
      labels.append(tags + [0])
      weights.append(weight + [0.0])
      firsts.append(first)
    self._first_pieces[split] = firsts
    mask = [[1] * len(r) for r in rows]
    weights_array = np.zeros((len(rows), self.seq_len), np.float32)
    for i, w in enumerate(weights):
      weights_array[i, :len(w)] = w
    return dict(input_ids=encode.pad_rows(rows, self.seq_len, self.tokenizer.pad_id),
                attention_mask=encode.pad_rows(mask, self.seq_len),
                token_type_ids=np.zeros((len(rows), self.seq_len), np.int32),
                label_ids=encode.pad_rows(labels, self.seq_len), label_weights=weights_array)

  def predicted_tags(self, split: str, logits) -> list[list[str]]:
    if split not in self._first_pieces:
      self.arrays(split)
    best = np.asarray(logits).argmax(-1)
    tags = []
    for row, sentence, first in zip(best, self._sentences[split], self._first_pieces[split]):
      guessed = [self.labels[int(row[p])] for p in first]
      tags.append(guessed + ["O"] * (len(sentence.words) - len(guessed)))
    return tags

  def score(self, split: str, outputs):
    predicted = self.predicted_tags(split, outputs)
    gold = [s.tags for s in self._sentences[split]]
    return entity_scores(gold, predicted), predicted

  def write_predictions(self, split: str, predictions, directory: str) -> str:
    path = os.path.join(directory, f"{split}_predictions.conll")
    write_conll(path, self._sentences[split], predictions)
    return path
