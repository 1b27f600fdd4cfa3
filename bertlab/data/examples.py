"""Example builders: tokenized documents -> fixed-length sequences with segment and sentence labels.

`data.input_format`:
  * `segment_pair`: BERT's `create_instances_from_document` (Devlin et al., 2019, App. A): A and B
    are runs of whole sentences filling `seq_len`, shorter targets with `short_seq_prob`;
  * `sentence_pair`: each segment one natural sentence (Liu et al., 2019, Section 4.2);
  * `full_sentences`: one token stream over all documents, a separator at each document boundary,
    cut into full sequences (only the last of the stream is padded);
  * `doc_sentences`: whole sentences packed up to `seq_len` without crossing a document;
  * `single`: one contiguous segment of a document (SpanBERT, Joshi et al., 2020, Section 3.3).
Packing (`pack_sequences`): several inputs share a row (see `pack_rows`), each with its own
[CLS] ... [SEP], so that batches hold few padding tokens. None (the default) packs doc_sentences
only, so that every batch holds about as many tokens as FULL-SENTENCES' (Liu et al., 2019,
Section 4.2, grow the batch instead; with fixed shapes the row is filled); True packs every
format that pads (the pair formats and `single` too, as ModernBERT's unpadding does; packed
`single` inputs are cut every `seq_len - 2` tokens of a document, inside sentences too, rather
than at whole sentences as SpanBERT's released BlockDataset cuts them); False none.
`data.sentence_objective` (pair formats): `nsp` (B from another document half the time),
`sop` (two consecutive segments, swapped half the time; Lan et al., 2020, Section 3.1) or `none`.
Label 1 marks NotNext (NSP) or swapped (SOP), as in the original TF code and transformers' heads.

A tokenized sentence is `(ids, word_starts)`; examples are numpy arrays:
`input_ids` [N, S], `token_type_ids` [N, S], `token_kind` [N, S] (0: special or padding, never
masked; 1: first piece of a word; 2: a later piece) and `sentence_label` [N]; packed rows add
`sequence_ids` [N, S] (1, 2, ... per input in the row, 0 on padding), and packed pairs carry a
label per input: `sentence_label`, `sentence_positions` (where its [CLS] is) and
`sentence_weights` (1 for an input, 0 for an empty slot), each [N, `max_inputs_per_row`].
"""

import bisect
import dataclasses

import numpy as np

INPUT_FORMATS = ("segment_pair", "sentence_pair", "full_sentences", "doc_sentences", "single")
SENTENCE_OBJECTIVES = ("nsp", "sop", "none")
PAIR_FORMATS = ("segment_pair", "sentence_pair")
# What segment_pair does with a chunk of one sentence under NSP or SOP: `random_next` takes B
# from another document, labelled NotNext / swapped (google-research bert and albert, whose
# SOP data so holds a few NSP negatives, and on short documents tips the labels towards 1);
# `split` (the default) cuts the sentence in two, labelled as usual.
ONE_SENTENCE_CHUNKS = ("random_next", "split")

Sentence = tuple[np.ndarray, np.ndarray]  # ids, word_starts
TokenizedDoc = list[Sentence]


@dataclasses.dataclass(frozen=True)
class BuilderConfig:
  input_format: str
  sentence_objective: str
  seq_len: int
  cls_id: int
  sep_id: int
  pad_id: int
  short_seq_prob: float = 0.1
  one_sentence_chunk: str = "split"
  pack_sequences: bool | None = None  # None: doc_sentences only (see the module docstring)

  def __post_init__(self):
    if self.one_sentence_chunk not in ONE_SENTENCE_CHUNKS:
      raise ValueError(f"Unknown data.one_sentence_chunk {self.one_sentence_chunk!r}; valid: "
                       f"{', '.join(ONE_SENTENCE_CHUNKS)}.")
    if self.input_format not in INPUT_FORMATS:
      raise ValueError(f"Unknown data.input_format {self.input_format!r}; valid: "
                       f"{', '.join(INPUT_FORMATS)}.")
    if self.sentence_objective not in SENTENCE_OBJECTIVES:
      raise ValueError(f"Unknown data.sentence_objective {self.sentence_objective!r}; valid: "
                       f"{', '.join(SENTENCE_OBJECTIVES)}.")
    if self.sentence_objective != "none" and self.input_format not in PAIR_FORMATS:
      raise ValueError(
          f"data.sentence_objective={self.sentence_objective!r} needs two segments, but "
          f"data.input_format={self.input_format!r} makes one; use segment_pair or sentence_pair, "
          "or set data.sentence_objective=none.")
    minimum = 8 if self.input_format in PAIR_FORMATS else 4
    if self.seq_len < minimum:
      raise ValueError(
          f"data.seq_len={self.seq_len} is too short for {self.input_format}: it needs "
          f"{'[CLS] A [SEP] B [SEP] with a few tokens in each segment' if minimum == 8 else '[CLS] x [SEP]'}"
          f"; set data.seq_len to at least {minimum} (BERT uses 128 and 512).")

  @property
  def packs(self) -> bool:
    """Whether inputs share rows. FULL-SENTENCES rows are already full."""
    if self.input_format == "full_sentences":
      return False
    return (self.input_format == "doc_sentences" if self.pack_sequences is None
            else self.pack_sequences)

  @property
  def max_inputs_per_row(self) -> int:
    return inputs_per_row(self.seq_len)


class _Examples:
  """Accumulates examples as padded rows."""

  def __init__(self, config: BuilderConfig):
    self.config, self.rows = config, []

  def add(self, segments: list[Sentence], label: int = 0):
    c = self.config
    ids, types, kinds = [np.array([c.cls_id], np.int32)], [np.zeros(1, np.int32)], [
        np.zeros(1, np.int8)]
    for segment_index, (seg_ids, seg_starts) in enumerate(segments):
      kind = np.where(seg_starts, 1, 2).astype(np.int8)
      if len(kind):
        kind[0] = 1  # a truncated segment may begin inside a word: make that piece a start
      ids += [np.asarray(seg_ids, np.int32), np.array([c.sep_id], np.int32)]
      types.append(np.full(len(seg_ids) + 1, segment_index, np.int32))
      kinds += [kind, np.zeros(1, np.int8)]
    self.rows.append((np.concatenate(ids), np.concatenate(types), np.concatenate(kinds), label))

  def add_packed(self, ids, kinds):
    """A doc_sentences / single block: ids and kinds without [CLS] and [SEP]."""
    c = self.config
    self.rows.append((np.concatenate([[c.cls_id], ids, [c.sep_id]]).astype(np.int32),
                      np.zeros(len(ids) + 2, np.int32),
                      np.concatenate([[0], kinds, [0]]).astype(np.int8), 0))

  def arrays(self, packed: bool = False) -> dict[str, np.ndarray]:
    """One row per example; or, `packed`, the examples of each `pack_rows` group side by side
    (pairs with a sentence label per input)."""
    c = self.config
    slots = c.max_inputs_per_row
    groups = (pack_rows([len(r[0]) for r in self.rows], c.seq_len, slots) if packed
              else [[i] for i in range(len(self.rows))])
    n, per_input = len(groups), packed and c.input_format in PAIR_FORMATS
    out = dict(input_ids=np.full((n, c.seq_len), c.pad_id, np.int32),
               token_type_ids=np.zeros((n, c.seq_len), np.int32),
               token_kind=np.zeros((n, c.seq_len), np.int8),
               sentence_label=np.zeros((n, slots) if per_input else (n,), np.int32))
    if packed:
      out["sequence_ids"] = np.zeros((n, c.seq_len), np.int32)
    if per_input:
      out["sentence_positions"] = np.zeros((n, slots), np.int32)
      out["sentence_weights"] = np.zeros((n, slots), np.float32)
    for row, group in enumerate(groups):
      start = 0
      for number, (ids, types, kinds, label) in enumerate(self.rows[i] for i in group):
        span = slice(start, start + len(ids))
        out["input_ids"][row, span], out["token_type_ids"][row, span] = ids, types
        out["token_kind"][row, span] = kinds
        if packed:
          out["sequence_ids"][row, span] = number + 1
        if per_input:
          out["sentence_label"][row, number] = label
          out["sentence_positions"][row, number], out["sentence_weights"][row, number] = start, 1
        else:
          out["sentence_label"][row] = label
        start += len(ids)
    return out


def inputs_per_row(seq_len: int) -> int:
  """The slots of a packed row's per-input labels: one input per 8 tokens, more than the
  shortest pairs of real text need ([CLS] A [SEP] B [SEP] of a few words each)."""
  return max(1, seq_len // 8)


def pack_rows(lengths: list[int], capacity: int, max_group: int | None = None) -> list[list[int]]:
  """Groups of at most `max_group` example indices whose lengths sum to at most `capacity`:
  best-fit decreasing, which leaves all but the last few rows nearly full. Each group keeps
  corpus order."""
  open_rows, groups = [], []  # open_rows: sorted (room left, group index)
  for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
    k = bisect.bisect_left(open_rows, (lengths[i], -1))
    if k == len(open_rows):
      groups.append([i])
      room, group = capacity - lengths[i], len(groups) - 1
    else:
      room, group = open_rows.pop(k)
      groups[group].append(i)
      room -= lengths[i]
    # room >= 3: the shortest example, [CLS] x [SEP]
    if room >= 3 and (max_group is None or len(groups[group]) < max_group):
      bisect.insort(open_rows, (room, group))
  return sorted(sorted(group) for group in groups)


def _concat(sentences: list[Sentence]) -> Sentence:
  if not sentences:
    return np.zeros((0,), np.int32), np.zeros((0,), bool)
  return (np.concatenate([s[0] for s in sentences]), np.concatenate([s[1] for s in sentences]))


def truncate_seq_pair(a: Sentence, b: Sentence, max_tokens: int, rng) -> tuple[Sentence, Sentence]:
  """BERT's truncation: drop one token at a time from the longer segment, from its front or
  back at random, until the pair fits."""
  a_lo, a_hi, b_lo, b_hi = 0, len(a[0]), 0, len(b[0])
  while (a_hi - a_lo) + (b_hi - b_lo) > max_tokens:
    if a_hi - a_lo > b_hi - b_lo:
      if rng.random() < 0.5:
        a_lo += 1
      else:
        a_hi -= 1
    elif rng.random() < 0.5:
      b_lo += 1
    else:
      b_hi -= 1
  return (a[0][a_lo:a_hi], a[1][a_lo:a_hi]), (b[0][b_lo:b_hi], b[1][b_lo:b_hi])


def _random_other_document(docs, current: int, rng) -> int:
  if len(docs) < 2:
    raise ValueError("NSP draws NotNext segments from another document, but the corpus has "
                     "one document. Use a corpus with several documents (blank lines between "
                     "them), or set data.sentence_objective to sop or none.")
  other = int(rng.integers(len(docs) - 1))
  return other + (other >= current)


def _segment_pair(docs, d: int, c: BuilderConfig, rng, out: _Examples):
  """BERT's create_instances_from_document, with SOP as ALBERT's variant of it."""
  doc, max_tokens = docs[d], c.seq_len - 3
  target = max_tokens
  if rng.random() < c.short_seq_prob:
    target = int(rng.integers(2, max_tokens + 1))
  chunk, length, i = [], 0, 0
  while i < len(doc):
    chunk.append(doc[i])
    length += len(doc[i][0])
    if i == len(doc) - 1 or length >= target:
      a_end = 1 if len(chunk) < 2 else int(rng.integers(1, len(chunk)))
      a, label = _concat(chunk[:a_end]), 0
      forced_random = (len(chunk) == 1 and c.sentence_objective != "none"
                       and c.one_sentence_chunk == "random_next")
      if forced_random or (c.sentence_objective == "nsp" and rng.random() < 0.5):
        label, other = 1, docs[_random_other_document(docs, d, rng)]
        start, b_parts, b_len = int(rng.integers(len(other))), [], 0
        for sentence in other[start:]:  # at least one sentence, as the released tools
          b_parts.append(sentence)
          b_len += len(sentence[0])
          if b_len >= target - len(a[0]):
            break
        b = _concat(b_parts)
        i -= len(chunk) - a_end  # the unused sentences start the next example
      else:
        b = _concat(chunk[a_end:])
        if len(b[0]) == 0 and len(a[0]) >= 2:  # one sentence: split it inside
          cut = int(rng.integers(1, len(a[0])))
          a, b = (a[0][:cut], a[1][:cut]), (a[0][cut:], a[1][cut:])
        if c.sentence_objective == "sop" and rng.random() < 0.5:
          a, b, label = b, a, 1
      a, b = truncate_seq_pair(a, b, max_tokens, rng)
      if len(a[0]) and len(b[0]):
        out.add([a, b], label)
      chunk, length = [], 0
    i += 1


def _sentence_pair(docs, d: int, c: BuilderConfig, rng, out: _Examples):
  doc = docs[d]
  for i in range(0, len(doc) - 1, 2):
    a, b, label = doc[i], doc[i + 1], 0
    if c.sentence_objective == "nsp" and rng.random() < 0.5:
      other = docs[_random_other_document(docs, d, rng)]
      b, label = other[int(rng.integers(len(other)))], 1
    elif c.sentence_objective == "sop" and rng.random() < 0.5:
      a, b, label = b, a, 1
    a, b = truncate_seq_pair(a, b, c.seq_len - 3, rng)
    if len(a[0]) and len(b[0]):
      out.add([a, b], label)


def _sentence_runs(doc: TokenizedDoc, max_tokens: int, target: int):
  """Whole sentences packed greedily up to `target`; a sentence longer than `max_tokens` is cut."""
  run_ids, run_starts = [], []
  for ids, starts in doc:
    for lo in range(0, max(len(ids), 1), max_tokens):
      piece_ids, piece_starts = ids[lo:lo + max_tokens], starts[lo:lo + max_tokens]
      if run_ids and sum(map(len, run_ids)) + len(piece_ids) > target:
        yield _concat(list(zip(run_ids, run_starts)))
        run_ids, run_starts = [], []
      run_ids.append(piece_ids)
      run_starts.append(piece_starts)
  if run_ids:
    yield _concat(list(zip(run_ids, run_starts)))


def _within_document(docs, d: int, c: BuilderConfig, rng, out: _Examples):
  max_tokens = c.seq_len - 2
  target = max_tokens
  if c.input_format == "single" and rng.random() < c.short_seq_prob:
    target = int(rng.integers(2, max_tokens + 1))
  runs = (_contiguous_pieces(docs[d], target) if c.input_format == "single" and c.packs
          else _sentence_runs(docs[d], max_tokens, target))
  for ids, starts in runs:
    if len(ids):
      kinds = np.where(starts, 1, 2)
      kinds[0] = 1  # a piece cut inside a word begins with a start
      out.add_packed(ids, kinds)


def _contiguous_pieces(doc: TokenizedDoc, target: int):
  """Packed `single`: the document cut every `target` tokens wherever that falls (inside a
  sentence too), so every input but the document's last fills its row and only the last
  pieces share rows. Whole-sentence runs of up to 126 tokens leave ~9% of a 128-token row
  empty on Wikipedia, which no packing of whole runs can fill: few runs are that short."""
  ids, starts = _concat(doc)
  for lo in range(0, len(ids), target):
    yield ids[lo:lo + target], starts[lo:lo + target]


def _full_sentences(docs, c: BuilderConfig) -> dict[str, np.ndarray]:
  """One stream over every document, [SEP] between documents, cut every seq_len - 2 tokens."""
  parts_ids, parts_kinds = [], []
  for doc in docs:
    if parts_ids:
      parts_ids.append(np.array([c.sep_id], np.int32))
      parts_kinds.append(np.zeros((1,), np.int8))
    doc_ids, doc_starts = _concat(doc)
    parts_ids.append(doc_ids.astype(np.int32))
    parts_kinds.append(np.where(doc_starts, 1, 2).astype(np.int8))
  ids, kinds = np.concatenate(parts_ids), np.concatenate(parts_kinds)
  block = c.seq_len - 2
  rows = -(-len(ids) // block)
  body_ids = np.full((rows, block), c.pad_id, np.int32)
  body_kinds = np.zeros((rows, block), np.int8)
  body_ids.reshape(-1)[:len(ids)], body_kinds.reshape(-1)[:len(ids)] = ids, kinds
  body_kinds[:, 0] = np.where(body_kinds[:, 0] == 2, 1, body_kinds[:, 0])  # may begin mid-word
  out = dict(input_ids=np.full((rows, c.seq_len), c.pad_id, np.int32),
             token_type_ids=np.zeros((rows, c.seq_len), np.int32),
             token_kind=np.zeros((rows, c.seq_len), np.int8),
             sentence_label=np.zeros((rows,), np.int32))
  out["input_ids"][:, 0] = c.cls_id
  out["input_ids"][:, 1:-1], out["token_kind"][:, 1:-1] = body_ids, body_kinds
  out["input_ids"][:, -1] = c.sep_id
  last = len(ids) - (rows - 1) * block  # the last block closes right after its tokens
  if last < block:
    out["input_ids"][-1, last + 1:] = c.pad_id
    out["input_ids"][-1, last + 1] = c.sep_id
  return out


def build_examples(docs: list[TokenizedDoc], config: BuilderConfig,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Every example of `docs`, in document order."""
  docs = [doc for doc in docs if doc]
  out = _Examples(config)
  if config.input_format == "full_sentences":
    return _full_sentences(docs, config) if docs else out.arrays()
  builder = {"segment_pair": _segment_pair, "sentence_pair": _sentence_pair}.get(
      config.input_format, _within_document)
  for d in range(len(docs)):
    builder(docs, d, config, rng, out)
  return out.arrays(packed=config.packs)
