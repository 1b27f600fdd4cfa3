"""Masking statistics over thousands of sequences, as the papers specify them."""

import numpy as np
import pytest
import tensorflow as tf

from bertlab.data.masking import MaskingConfig, mask_batch

MASK_ID, VOCAB = 4, 5000


def _synthetic_batch(rows: int, seq_len: int, seed: int = 0):
  """[CLS] A [SEP] B [SEP] pad...: words of 1-4 pieces, a random length per row."""
  rng = np.random.default_rng(seed)
  ids = np.zeros((rows, seq_len), np.int32)
  kind = np.zeros((rows, seq_len), np.int8)
  for r in range(rows):
    length = int(rng.integers(seq_len // 2, seq_len + 1))
    pieces = []
    while len(pieces) < length - 3:
      n = int(rng.choice([1, 2, 3, 4], p=[0.6, 0.25, 0.1, 0.05]))
      pieces += [1] + [2] * (n - 1)
    pieces = pieces[:length - 3]
    sep = int(rng.integers(1, len(pieces)))
    kind[r, 1:1 + sep] = pieces[:sep]
    kind[r, 2 + sep:2 + len(pieces)] = pieces[sep:]
    kind[r, 2 + sep] = 1
    ids[r, :length] = rng.integers(10, VOCAB, length)
    ids[r, 0], ids[r, 1 + sep], ids[r, length - 1] = 2, 3, 3
  return dict(input_ids=ids, token_kind=kind)


def _mask(masking, rows=4000, seq_len=128, max_predictions=20, seed=1, **kwargs):
  batch = _synthetic_batch(rows, seq_len)
  config = MaskingConfig(masking, 0.15, max_predictions, MASK_ID, VOCAB, **kwargs)
  out = mask_batch(batch, config, tf.constant([seed, 7], tf.int64))
  return batch, {k: np.asarray(v) for k, v in out.items()}


def _selected(out, seq_len):
  sel = np.zeros(out["input_ids"].shape, bool)
  rows = np.repeat(np.arange(len(sel)), out["masked_positions"].shape[1])
  w = out["masked_weights"].reshape(-1) > 0
  sel[rows[w], out["masked_positions"].reshape(-1)[w]] = True
  return sel


def _words(kind_row):
  """Lists of positions, one per word (special tokens end words)."""
  words = []
  for p, k in enumerate(kind_row):
    if k == 1 or (k == 2 and (p == 0 or kind_row[p - 1] == 0)):
      words.append([p])
    elif k == 2:
      words[-1].append(p)
  return words


@pytest.mark.parametrize("masking", ["token", "whole_word", "ngram", "span"])
def test_selected_share_and_80_10_10(masking):
  batch, out = _mask(masking, max_predictions=32 if masking == "span" else 20)
  sel = _selected(out, 128)
  maskable = batch["token_kind"] > 0
  assert not (sel & ~maskable).any()  # [CLS], [SEP] and padding are never selected
  assert sel.sum() / maskable.sum() == pytest.approx(0.15, abs=0.005)
  shown, orig = out["input_ids"][sel], batch["input_ids"][sel]
  assert (shown == MASK_ID).mean() == pytest.approx(0.8, abs=0.015)
  assert ((shown == orig) & (shown != MASK_ID)).mean() == pytest.approx(0.1, abs=0.015)
  assert ((shown != orig) & (shown != MASK_ID)).mean() == pytest.approx(0.1, abs=0.015)
  # Targets are the original ids; unselected tokens are untouched.
  assert (np.take_along_axis(batch["input_ids"], out["masked_positions"], 1)
          [out["masked_weights"] > 0] == out["masked_ids"][out["masked_weights"] > 0]).all()
  assert (out["input_ids"][~sel] == batch["input_ids"][~sel]).all()


@pytest.mark.parametrize("masking", ["whole_word", "ngram", "span"])
def test_units_never_split_a_word_and_share_one_decision(masking):
  batch, out = _mask(masking, rows=500, max_predictions=32)
  sel = _selected(out, 128)
  for r in range(len(sel)):
    for word in _words(batch["token_kind"][r]):
      assert sel[r, word].all() or not sel[r, word].any()
  # One decision per unit: inside a unit, either every piece is [MASK] or none is.
  for r in range(len(sel)):
    for (left, right), weight in zip(out["span_bounds"][r], out["masked_weights"][r]):
      if weight:
        masked = out["input_ids"][r, left + 1:right] == MASK_ID
        assert masked.all() or not masked.any()


def test_span_lengths_follow_the_clipped_geometric_of_spanbert():
  """Paper settings: 512 tokens, p=0.2, at most 10 words: mean 3.8 words."""
  _, out = _mask("span", rows=1500, seq_len=512, max_predictions=100, span_p=0.2,
                 max_span_words=10)
  words = out["span_words"][out["span_words"] > 0]
  assert words.max() <= 10
  assert words.mean() == pytest.approx(3.8, abs=0.3)
  # SBO inputs: each masked token lies strictly inside its span's boundaries, at its slot.
  weights = out["masked_weights"] > 0
  positions, bounds = out["masked_positions"][weights], out["span_bounds"][weights]
  assert ((bounds[:, 0] < positions) & (positions < bounds[:, 1])).all()
  np.testing.assert_array_equal(out["span_slots"][weights], positions - bounds[:, 0] - 1)
  assert (out["span_weights"][weights] == (out["span_slots"][weights] < 10)).all()


def test_ngram_lengths_follow_one_over_n():
  """Shares of 1-, 2- and 3-grams near 6/11, 3/11, 2/11. About 5 n-grams fit the budget of a
  128-token sequence, and runs cut short at a [SEP] are shorter, so 1-grams run about 3 points
  over (ALBERT's own shrink-to-fit rule biases further)."""
  _, out = _mask("ngram", rows=3000, max_ngram=3)
  words = out["span_words"][out["span_words"] > 0]
  share = np.bincount(words, minlength=4)[1:] / len(words)
  expected = (1 / np.arange(1, 4)) / (1 / np.arange(1, 4)).sum()
  np.testing.assert_allclose(share, expected, atol=0.04)
  assert share[0] > share[1] > share[2]


def test_masks_are_a_function_of_the_seed():
  _, a = _mask("whole_word", rows=64, seed=3)
  _, b = _mask("whole_word", rows=64, seed=3)
  _, c = _mask("whole_word", rows=64, seed=4)
  np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
  assert (a["masked_positions"] != c["masked_positions"]).any()


def test_bad_masking_names_the_valid_ones():
  with pytest.raises(ValueError, match="valid: token, whole_word, ngram, span"):
    MaskingConfig("words", 0.15, 20, MASK_ID, VOCAB)


def test_electra_released_shares_mask_85_percent_and_keep_the_rest():
  """data.mask_token_share=0.85, data.random_token_share=0: ELECTRA's released masking."""
  batch, out = _mask("token", mask_prob=0.85, random_prob=0.0)
  sel = _selected(out, 128)
  shown, orig = out["input_ids"][sel], batch["input_ids"][sel]
  assert (shown == MASK_ID).mean() == pytest.approx(0.85, abs=0.015)
  assert ((shown == orig) | (shown == MASK_ID)).all()  # no random replacements


def test_replacement_shares_beyond_one_name_both_keys():
  with pytest.raises(ValueError, match="mask_token_share.*random_token_share"):
    MaskingConfig("token", 0.15, 20, MASK_ID, VOCAB, mask_prob=0.9, random_prob=0.2)


def test_released_spanbert_sampler_spends_the_budget_exactly_and_cuts_spans_short():
  """`span_sampler=spanbert`: ceil(15% x maskable) pieces in every row, spans that start at a
  word's first piece and never cross a [SEP], one decision per span, and, where bertlab only
  selects whole runs of words, the budget cutting the last span short, even inside a word."""
  def spans(kind, selected_row):
    positions = np.flatnonzero(selected_row)
    starts = positions[np.diff(np.concatenate([[-2], positions])) > 1]
    ends = positions[np.diff(np.concatenate([positions, [10**6]])) > 1]
    return zip(starts, ends)

  kwargs = dict(rows=3000, seq_len=128, max_predictions=20, span_p=0.2, max_span_words=10)
  batch, out = _mask("span", span_sampler="spanbert", **kwargs)
  _, default = _mask("span", **kwargs)
  kind = batch["token_kind"]
  maskable = (kind > 0).sum(1)
  selected = _selected(out, 128)
  np.testing.assert_array_equal(selected.sum(1), np.minimum(np.ceil(maskable * 0.15), 20))
  cut_in_a_word = {"spanbert": 0, "bertlab": 0}
  for name, result in (("spanbert", out), ("bertlab", default)):
    chosen = _selected(result, 128)
    for row in range(len(kind)):
      for start, end in spans(kind[row], chosen[row]):
        assert kind[row, start] == 1 or kind[row, start - 1] == 0  # a word's first piece
        assert (kind[row, start:end + 1] > 0).all()  # no [SEP] inside
        cut_in_a_word[name] += int(kind[row, end + 1] == 2)
        if name == "spanbert" and row < 300:
          # One decision per span: all [MASK], all kept, or all replaced.
          values = result["input_ids"][row, start:end + 1]
          is_mask = values == MASK_ID
          is_kept = values == batch["input_ids"][row, start:end + 1]
          assert is_mask.all() or is_kept.all() or not (is_mask | is_kept).any()
  assert cut_in_a_word["bertlab"] == 0
  assert cut_in_a_word["spanbert"] > 0.1 * len(kind)
  words = out["span_words"][out["span_words"] > 0]
  reference = default["span_words"][default["span_words"] > 0]
  assert words.mean() < reference.mean() - 0.1  # 2.97 against 3.15 words
  # A pure function of the seed.
  _, again = _mask("span", span_sampler="spanbert", **kwargs)
  np.testing.assert_array_equal(again["input_ids"], out["input_ids"])
