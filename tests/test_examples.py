"""Example builders: NSP, SOP, packing and truncation, as the papers describe them."""

import numpy as np
import pytest

from bertlab.data.examples import BuilderConfig, build_examples, truncate_seq_pair

CLS, SEP, PAD = 2, 3, 0
DOC_STRIDE = 100_000  # document d holds ids in [d * DOC_STRIDE, (d + 1) * DOC_STRIDE)


def _docs(num_docs=300, seed=0):
  """Documents whose ids count up from d * DOC_STRIDE: each token knows its document and place."""
  rng = np.random.default_rng(seed)
  docs = []
  for d in range(num_docs):
    next_id, doc = d * DOC_STRIDE + 10, []
    for _ in range(int(rng.integers(2, 30))):
      n = int(rng.integers(3, 25))
      doc.append((np.arange(next_id, next_id + n, dtype=np.int32), np.ones(n, bool)))
      next_id += n
    docs.append(doc)
  return docs


def _build(input_format, objective="none", seq_len=64, docs=None, seed=0, pack=None):
  config = BuilderConfig(input_format, objective, seq_len, CLS, SEP, PAD, pack_sequences=pack)
  return build_examples(docs or _docs(), config, np.random.default_rng(seed))


def _segments(row_ids, row_types):
  real = row_ids != PAD
  body = (row_ids != CLS) & (row_ids != SEP) & real
  return [row_ids[body & (row_types == t)] for t in (0, 1)]


def test_nsp_labels_half_and_notnext_from_another_document():
  out = _build("segment_pair", "nsp", seq_len=128, docs=_docs(1500))
  labels = out["sentence_label"]
  assert len(labels) > 3000
  assert labels.mean() == pytest.approx(0.5, abs=0.02)
  for ids, types, label in zip(out["input_ids"], out["token_type_ids"], labels):
    a, b = _segments(ids, types)
    same_doc = a[0] // DOC_STRIDE == b[0] // DOC_STRIDE
    assert same_doc == (label == 0)  # 1 = NotNext, drawn from another document
    if label == 0:  # IsNext: B continues A
      assert b[0] > a[-1]


def test_sop_swaps_half_and_a_swapped_pair_is_the_same_segments_reversed():
  out = _build("segment_pair", "sop", seq_len=128, docs=_docs(1500))
  labels = out["sentence_label"]
  assert labels.mean() == pytest.approx(0.5, abs=0.02)
  for ids, types, label in zip(out["input_ids"], out["token_type_ids"], labels):
    a, b = _segments(ids, types)
    assert a[0] // DOC_STRIDE == b[0] // DOC_STRIDE  # always one document
    first, second = (b, a) if label else (a, b)
    # Consecutive segments (before truncation trims their outer ends): first then second.
    assert np.all(np.diff(first) == 1) and np.all(np.diff(second) == 1)
    assert second[0] == first[-1] + 1 or (second[0] > first[-1])


@pytest.mark.parametrize("objective", ["nsp", "sop"])
def test_one_sentence_chunks_take_a_random_next_as_the_released_tools_or_split(objective):
  # Sentences longer than the sequence: every chunk is one sentence.
  docs = [[(np.arange(d * DOC_STRIDE + 10 * k, d * DOC_STRIDE + 10 * k + 200, dtype=np.int32),
            np.ones(200, bool)) for k in range(3)] for d in range(200)]
  for mode in ("random_next", "split"):
    config = BuilderConfig("segment_pair", objective, 64, CLS, SEP, PAD, 0.1, mode)
    out = build_examples(docs, config, np.random.default_rng(0))
    assert len(out["sentence_label"]) == 600
    cross = [len(set(np.concatenate(_segments(ids, types)) // DOC_STRIDE)) == 2
             for ids, types in zip(out["input_ids"], out["token_type_ids"])]
    if mode == "random_next":  # B from another document, labelled NotNext / swapped
      assert all(cross) and out["sentence_label"].all()
    else:  # the usual coin: NotNext from another document, or the sentence cut in two
      np.testing.assert_array_equal(cross, (out["sentence_label"] == 1) & (objective == "nsp"))
      assert out["sentence_label"].mean() == pytest.approx(0.5, abs=0.07)


def test_unknown_one_sentence_chunk_lists_the_valid_ones():
  with pytest.raises(ValueError, match="valid: random_next, split"):
    BuilderConfig("segment_pair", "sop", 64, CLS, SEP, PAD, 0.1, "merge")


def test_segment_pair_fills_the_sequence_and_sometimes_targets_shorter():
  out = _build("segment_pair", "nsp", seq_len=128, docs=_docs(1500))
  lengths = (out["input_ids"] != PAD).sum(1)
  assert lengths.max() == 128
  assert (out["input_ids"][:, 0] == CLS).all()
  assert np.mean(lengths < 64) > 0.05  # short_seq_prob = 0.1 makes some short targets


def test_full_sentences_pads_only_the_last_sequence_and_separates_documents():
  docs = _docs(200)
  out = _build("full_sentences", seq_len=64, docs=docs)
  padded = (out["input_ids"] == PAD).any(1)
  assert not padded[:-1].any()
  lengths = (out["input_ids"] != PAD).sum(1)
  body = np.concatenate([ids[1:n - 1] for ids, n in zip(out["input_ids"], lengths)])
  # The stream: every token once, in order, a [SEP] at each of the 199 document boundaries.
  assert (body == SEP).sum() == len(docs) - 1
  expected = np.concatenate([np.concatenate([s[0] for s in doc]) for doc in docs])
  np.testing.assert_array_equal(body[body != SEP], expected)


def _inputs(out) -> list[np.ndarray]:
  """Every [CLS] ... [SEP] input of every row (several per row when rows are packed)."""
  numbers = out.get("sequence_ids", (out["input_ids"] != PAD).astype(np.int32))
  return [ids[row == k] for ids, row in zip(out["input_ids"], numbers)
          for k in range(1, row.max() + 1)]


@pytest.mark.parametrize("input_format, pack", [("doc_sentences", None), ("doc_sentences", False),
                                                ("single", None), ("single", True)])
def test_within_document_formats_never_cross_a_document(input_format, pack):
  out = _build(input_format, seq_len=64, pack=pack)
  # Unset, only doc_sentences packs (as RoBERTa's data); SpanBERT's single when asked.
  assert ("sequence_ids" in out) == (pack or (pack is None and input_format == "doc_sentences"))
  for part in _inputs(out):
    assert part[0] == CLS and part[-1] == SEP
    assert CLS not in part[1:] and SEP not in part[:-1]
    assert len(set(part[1:-1] // DOC_STRIDE)) == 1
  assert (out["token_type_ids"] == 0).all()


def test_packed_doc_sentences_keep_tokens_per_batch_near_full_sentences():
  """RoBERTa grows DOC-SENTENCES batches to FULL-SENTENCES' token count; packing the same
  inputs into full rows does that with fixed shapes. (A row can only be as full as whole
  inputs allow: 89% at seq_len 64 with these sentences of up to 25 tokens, 98% at 256.)"""
  docs, seq_len, rows = _docs(400), 256, 32
  one_per_row = _build("doc_sentences", docs=docs, seq_len=seq_len, pack=False)
  packed = _build("doc_sentences", docs=docs, seq_len=seq_len)
  key = lambda parts: sorted(map(tuple, parts))
  assert key(_inputs(packed)) == key(_inputs(one_per_row))  # the same inputs, each once
  assert packed["sequence_ids"].max(1).mean() > 1.5
  tokens_per_batch = lambda out: (out["input_ids"] != PAD)[:len(out["input_ids"]) // rows * rows] \
      .reshape(-1, rows * seq_len).sum(1)
  full = tokens_per_batch(_build("full_sentences", docs=docs, seq_len=seq_len)).min()
  assert full == rows * seq_len
  ours, unpacked = tokens_per_batch(packed), tokens_per_batch(one_per_row)
  assert ours.min() >= 0.95 * full and ours.mean() >= 0.97 * full
  assert unpacked.mean() < 0.7 * full


def test_packed_single_segments_cut_documents_into_full_inputs():
  """SpanBERT's single segments, packed: each document's tokens in order, cut every
  seq_len - 2 tokens (inside sentences too; shorter for short_seq_prob's documents), so that
  only a document's last piece is short and the rows pad less than 5% (whole-sentence runs
  alone pad a third of these rows)."""
  docs, seq_len = _docs(400), 128
  alone, packed = (_build("single", seq_len=seq_len, docs=docs, pack=p, seed=1)
                   for p in (False, True))
  body = lambda out: [part[1:-1] for part in _inputs(out)]
  pieces = sorted(body(packed), key=lambda p: p[0])
  assert np.array_equal(np.concatenate(pieces), np.sort(np.concatenate(body(alone))))
  by_doc = {}
  for piece in pieces:
    by_doc.setdefault(piece[0] // DOC_STRIDE, []).append(piece)
  for doc_pieces in by_doc.values():
    assert len({len(p) for p in doc_pieces[:-1]}) <= 1  # one cut length per document
    assert all(len(p) >= len(doc_pieces[-1]) for p in doc_pieces)
  assert (packed["input_ids"] == PAD).mean() < 0.05 < 0.3 < (alone["input_ids"] == PAD).mean()
  starts = np.flatnonzero(np.diff(packed["sequence_ids"], axis=1, prepend=0).reshape(-1) > 0)
  assert (packed["token_kind"].reshape(-1)[starts + 1] == 1).all()  # a piece begins a word


@pytest.mark.parametrize("input_format, objective", [("segment_pair", "nsp"),
                                                     ("sentence_pair", "sop")])
def test_packed_pairs_keep_every_pair_with_its_own_label(input_format, objective):
  docs = _docs(400)
  alone = _build(input_format, objective, seq_len=128, docs=docs, pack=False)
  packed = _build(input_format, objective, seq_len=128, docs=docs, pack=True)
  labelled = lambda ids, types, label: (tuple(ids), tuple(types), int(label))
  expected = sorted(labelled(i[i != PAD], t[i != PAD], l) for i, t, l in
                    zip(alone["input_ids"], alone["token_type_ids"], alone["sentence_label"]))
  found = []
  for r, numbers in enumerate(packed["sequence_ids"]):
    for k in range(1, numbers.max() + 1):
      where = np.flatnonzero(numbers == k)
      assert packed["sentence_positions"][r, k - 1] == where[0]  # its [CLS]
      assert packed["sentence_weights"][r, k - 1] == 1
      found.append(labelled(packed["input_ids"][r, where], packed["token_type_ids"][r, where],
                            packed["sentence_label"][r, k - 1]))
    assert (packed["sentence_weights"][r, numbers.max():] == 0).all()
  assert sorted(found) == expected  # the same pairs, labels and segments, each once
  padding = lambda out: (out["input_ids"] == PAD).mean()
  # Rows are only as full as whole pairs allow: sentence pairs pad 3/4 of these rows alone.
  assert padding(packed) < 0.05 < 0.5 < padding(alone) if input_format == "sentence_pair" \
      else padding(packed) < min(0.05, padding(alone))


def test_a_packed_row_holds_at_most_max_inputs_per_row():
  config = BuilderConfig("sentence_pair", "none", 64, CLS, SEP, PAD, pack_sequences=True)
  tiny = [[(np.array([d * DOC_STRIDE + k], np.int32), np.ones(1, bool)) for k in range(40)]
          for d in range(10)]  # two-token pairs: 5 to a row of 64 would fit 12
  out = build_examples(tiny, config, np.random.default_rng(0))
  assert config.max_inputs_per_row == 8
  assert out["sequence_ids"].max() == 8 and out["sentence_label"].shape[1] == 8


def test_truncate_seq_pair_trims_the_longer_segment_until_the_pair_fits():
  rng = np.random.default_rng(0)
  a = (np.arange(50), np.ones(50, bool))
  b = (np.arange(10), np.ones(10, bool))
  ta, tb = truncate_seq_pair(a, b, 30, rng)
  assert len(ta[0]) + len(tb[0]) == 30 and len(tb[0]) == 10
  assert np.all(np.diff(ta[0]) == 1)  # a contiguous run: cut from the front and the back


def test_seq_len_too_short_for_two_segments_says_what_to_change():
  with pytest.raises(ValueError, match="set data.seq_len to at least 8"):
    BuilderConfig("segment_pair", "nsp", 5, CLS, SEP, PAD)


def test_sentence_objective_without_pairs_is_refused():
  with pytest.raises(ValueError, match="needs two segments.*sentence_objective=none"):
    BuilderConfig("full_sentences", "nsp", 128, CLS, SEP, PAD)


def test_nsp_on_a_single_document_says_what_to_change():
  with pytest.raises(ValueError, match="one document"):
    _build("segment_pair", "nsp", docs=_docs(1))
