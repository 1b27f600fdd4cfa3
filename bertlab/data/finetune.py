"""Fine-tuning inputs: sentences, pairs and pre-split words to fixed-shape id arrays, and
batches of them through tf.data.

The layouts are the families' own: `[CLS] A [SEP] B [SEP]` with segment ids 0 / 1 (BERT,
ALBERT, ELECTRA), `<s> A </s></s> B </s>` with segment ids all 0 (RoBERTa). Words (SQuAD
contexts, CoNLL sentences) are tokenized one at a time, as google-research/bert's run_squad
does, so each piece knows its word; byte-level BPE gets the space that starts a word
(transformers' `add_prefix_space=True`).
"""

import unicodedata

import numpy as np
import tensorflow as tf

from bertlab.data.tokenizers import Tokenizer

_TOKENIZE_BATCH = 4096


def tokenize_texts(tokenizer: Tokenizer, texts: list[str]) -> list[np.ndarray]:
  """Ids of each text, in batches through the tokenizer's tf graph."""
  out = []
  for i in range(0, len(texts), _TOKENIZE_BATCH):
    chunk = list(texts[i:i + _TOKENIZE_BATCH])
    out += tokenizer.tokenize_numpy(chunk) if chunk else []
  return out


def tokenize_words(tokenizer: Tokenizer, words: list[str]) -> dict[str, np.ndarray]:
  """{word: its pieces' ids}, each distinct word tokenized once."""
  unique = sorted(set(words))
  prefix = " " if tokenizer.kind == "bpe" else ""
  return dict(zip(unique, tokenize_texts(tokenizer, [prefix + w for w in unique])))


def uses_double_separator(tokenizer: Tokenizer) -> bool:
  return tokenizer.kind == "bpe"  # RoBERTa's pair layout


def specials_in_pair(tokenizer: Tokenizer) -> int:
  return 4 if uses_double_separator(tokenizer) else 3


def join_segments(tokenizer: Tokenizer, a: np.ndarray, b: np.ndarray | None,
                  type_vocab_size: int) -> tuple[list[int], list[int]]:
  """Ids and segment ids of one sequence in the family's layout."""
  cls, sep = tokenizer.cls_id, tokenizer.sep_id
  ids, types = [cls, *a, sep], [0] * (len(a) + 2)
  if b is not None:
    middle = [sep] if uses_double_separator(tokenizer) else []
    ids += middle + [*b, sep]
    types += [1 if type_vocab_size > 1 else 0] * (len(middle) + len(b) + 1)
  return ids, types


def truncate_longest_first(a: list, b: list | None, max_tokens: int) -> tuple[list, list | None]:
  """run_classifier's truncation: drop the last token of the longer segment until both fit."""
  a = list(a)
  b = list(b) if b is not None else None
  while len(a) + (len(b) if b is not None else 0) > max_tokens:
    if b is not None and len(b) > len(a):
      b.pop()
    else:
      a.pop()
  return a, b


def pad_rows(rows: list[list[int]], seq_len: int, value: int = 0) -> np.ndarray:
  out = np.full((len(rows), seq_len), value, np.int32)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def encode_texts(tokenizer: Tokenizer, texts: list[tuple[str, ...]], seq_len: int,
                 type_vocab_size: int = 2) -> dict[str, np.ndarray]:
  """Single sentences or pairs -> input_ids, attention_mask, token_type_ids [N, seq_len]."""
  pairs = len(texts[0]) == 2 if texts else False
  first = tokenize_texts(tokenizer, [t[0] for t in texts])
  second = tokenize_texts(tokenizer, [t[1] for t in texts]) if pairs else [None] * len(texts)
  budget = seq_len - (specials_in_pair(tokenizer) if pairs else 2)
  ids, types = [], []
  for a, b in zip(first, second):
    a, b = truncate_longest_first(a, b, budget)
    row, row_types = join_segments(tokenizer, a, b, type_vocab_size)
    ids.append(row)
    types.append(row_types)
  input_ids = pad_rows(ids, seq_len, tokenizer.pad_id)
  mask = pad_rows([[1] * len(r) for r in ids], seq_len)
  return dict(input_ids=input_ids, attention_mask=mask, token_type_ids=pad_rows(types, seq_len))


def _surface(tokenizer: Tokenizer, piece: str) -> str | None:
  """The characters a piece covers, in the tokenizer's normalised text (None: unknown)."""
  if tokenizer.kind == "wordpiece":
    return piece[2:] if piece.startswith("##") else piece
  if tokenizer.kind == "sentencepiece":
    return piece.lstrip("▁")
  from tokenizers.decoders import ByteLevel
  try:
    return ByteLevel().decode([piece]).lstrip(" ")
  except Exception:  # a piece that is part of one UTF-8 character
    return None


def _normalise_char(tokenizer: Tokenizer, char: str) -> str:
  if not tokenizer.lower_case:
    return char
  form = "NFD" if tokenizer.kind == "wordpiece" else "NFKD"
  text = unicodedata.normalize(form, char.lower())
  return "".join(c for c in text if unicodedata.category(c) != "Mn")


def piece_spans(tokenizer: Tokenizer, word: str, ids) -> list[tuple[int, int]]:
  """Character span [start, end) of each piece inside `word`; the whole word for every piece
  where the pieces cannot be aligned (unknown pieces, bytes of one character)."""
  normalised, origin = [], []
  for index, char in enumerate(word):
    for c in _normalise_char(tokenizer, char):
      normalised.append(c)
      origin.append(index)
  text = "".join(normalised)
  spans, cursor = [], 0
  unknown = {tokenizer.unk_id}
  for i in ids:
    surface = None if int(i) in unknown else _surface(tokenizer, tokenizer.pieces[int(i)])
    if not surface or text[cursor:cursor + len(surface)] != surface:
      return [(0, len(word))] * len(ids)
    spans.append((origin[cursor], origin[cursor + len(surface) - 1] + 1))
    cursor += len(surface)
  return spans


def batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int | None,
            drop_remainder: bool) -> tf.data.Dataset:
  """A tf.data pass over the rows: shuffled by `seed` (None keeps the order), batched. The last
  partial batch is padded with rows of weight 0 when kept, so every batch has one shape."""
  count = len(next(iter(arrays.values())))
  arrays = dict(arrays, example_weight=np.ones(count, np.float32))
  if not drop_remainder and count % batch_size:
    extra = batch_size - count % batch_size
    arrays = {k: np.concatenate([v, np.zeros((extra,) + v.shape[1:], v.dtype)])
              for k, v in arrays.items()}
  data = tf.data.Dataset.from_tensor_slices(arrays)
  if seed is not None:
    data = data.shuffle(len(arrays["example_weight"]), seed=seed,
                        reshuffle_each_iteration=False)
  return data.batch(batch_size, drop_remainder=True).prefetch(2)
