"""Masked-LM selection on whole batches, in tf ops with stateless random numbers.

The unit of masking is chosen by `data.masking`:
  * `token`: each word piece (BERT's original masking);
  * `whole_word`: every piece of a word together (BERT's whole-word masking);
  * `ngram`: runs of n whole words, p(n) proportional to 1/n for n <= `max_ngram` (ALBERT,
    Section 4.1, after Joshi et al.);
  * `span`: runs of whole words whose length in words is Geometric(p=`span_p`) clipped at
    `max_span_words` (SpanBERT, Section 3.1: p=0.2, at most 10, mean 3.8 words).
For n-grams and spans the words of each sequence are cut into consecutive runs of sampled
lengths, so runs never overlap and never cross a [SEP]. Units are visited in random order and
taken while they fit the budget of round(`mask_rate` x maskable tokens) pieces (at most
`max_predictions`), skipping a unit that would overshoot, as BERT's create_pretraining_data does
(here in three vectorised passes). N-grams and spans are instead taken as a prefix of the random
order plus, by a coin weighted with the budget left, the unit that would overshoot: refilling
the budget with short units would skew the lengths (measured: n-gram shares 0.58/0.26/0.16
against 1/n's 0.55/0.27/0.18 at 128 tokens; spans 3.66 words against 3.8 at 512). Each
selected unit gets one decision: 80% [MASK], 10% a random token, 10% kept.

Stateless random numbers keyed by a seed make a batch's masks a pure function of (seed, batch):
dynamic masking passes a new seed for each epoch and batch; static masking fixes the seeds.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from bertlab.data import spanbert_sampler

MASKINGS = ("token", "whole_word", "ngram", "span")
# How `span` masking picks its spans: bertlab's runs of whole words (the default), or the
# released SpanBERT code's anchors (bertlab/data/spanbert_sampler.py).
SPAN_SAMPLERS = ("bertlab", "spanbert")
_GREEDY_PASSES = 3


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
  masking: str
  mask_rate: float
  max_predictions: int
  mask_id: int
  vocab_size: int
  max_span_tokens: int = 10  # SBO target slots per span (the model's max_span_length)
  max_ngram: int = 3
  span_p: float = 0.2
  max_span_words: int = 10
  mask_prob: float = 0.8
  random_prob: float = 0.1
  span_sampler: str = "bertlab"

  def __post_init__(self):
    if self.masking not in MASKINGS:
      raise ValueError(f"Unknown data.masking {self.masking!r}; valid: {', '.join(MASKINGS)}.")
    if self.span_sampler not in SPAN_SAMPLERS:
      raise ValueError(f"Unknown data.span_sampler {self.span_sampler!r}; valid: "
                       f"{', '.join(SPAN_SAMPLERS)}.")
    if not 0 < self.mask_rate < 1:
      raise ValueError(f"data.mask_rate={self.mask_rate} must be in (0, 1); BERT uses 0.15.")
    if min(self.mask_prob, self.random_prob) < 0 or self.mask_prob + self.random_prob > 1:
      raise ValueError(
          f"data.mask_token_share={self.mask_prob} and data.random_token_share="
          f"{self.random_prob} must be shares of the selected tokens (each >= 0, summing to at "
          "most 1; the rest is kept): BERT uses 0.8 and 0.1, ELECTRA's release 0.85 and 0.")

  def length_probs(self) -> np.ndarray | None:
    """p(run length in words = 1, 2, ...) for ngram and span masking."""
    if self.masking == "ngram":
      p = 1.0 / np.arange(1, self.max_ngram + 1)
    elif self.masking == "span":
      lengths = np.arange(1, self.max_span_words + 1)
      p = self.span_p * (1 - self.span_p) ** (lengths - 1)
    else:
      return None
    return p / p.sum()


def _exclusive_cumsum(x):
  return tf.cumsum(x, axis=1, exclusive=True)


def _unit_ids(token_kind, config: MaskingConfig, seed):
  """Per token, the index of its masking unit within the row (S for tokens never masked)."""
  batch, seq_len = tf.shape(token_kind)[0], tf.shape(token_kind)[1]
  maskable = token_kind > 0
  after_special = tf.pad(~maskable[:, :-1], [[0, 0], [1, 0]], constant_values=True)
  # A unit never continues across a special token, whatever the piece's marker says.
  word_start = tf.equal(token_kind, 1) | (maskable & after_special)
  if config.masking == "token":
    unit_start = maskable
  elif config.masking == "whole_word":
    unit_start = word_start
  else:
    probs = config.length_probs()
    logits = tf.tile(tf.math.log(tf.constant(probs, tf.float32))[None], [batch, 1])
    lengths = tf.cast(tf.random.stateless_categorical(logits, seq_len, seed), tf.int32) + 1
    run_starts = _exclusive_cumsum(lengths)  # word index where each run begins
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(run_starts))
    keep = run_starts < seq_len
    indices = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(run_starts, keep)], -1)
    word_begins_run = tf.scatter_nd(indices, tf.ones(tf.shape(indices)[:1], tf.bool),
                                    [batch, seq_len])
    word_index = tf.maximum(tf.cumsum(tf.cast(word_start, tf.int32), axis=1) - 1, 0)
    unit_start = word_start & (tf.gather(word_begins_run, word_index, batch_dims=1)
                               | after_special)
  unit_start &= maskable
  unit = tf.cumsum(tf.cast(unit_start, tf.int32), axis=1) - 1
  return tf.where(maskable, unit, seq_len), maskable, word_start


def _released_spans(token_kind, config: MaskingConfig, seed, rate):
  """SpanBERT's released sampler as units: each merged span is one selected unit (numbered
  first, in position order), every other maskable token a unit of its own, never selected."""
  seq_len = tf.shape(token_kind)[1]
  runs = tf.numpy_function(
      lambda kind, s, r: spanbert_sampler.sample_runs(
          kind, s, r, config.max_predictions, config.span_p,
          config.max_span_words).astype(np.int32),
      [token_kind, seed, rate], tf.int32, stateful=False)
  runs = tf.reshape(runs, tf.shape(token_kind))
  maskable = token_kind > 0
  after_special = tf.pad(~maskable[:, :-1], [[0, 0], [1, 0]], constant_values=True)
  word_start = tf.equal(token_kind, 1) | (maskable & after_special)
  num_runs = tf.reduce_max(runs, axis=1, keepdims=True) + 1
  unmasked = maskable & (runs < 0)
  others = num_runs + tf.cumsum(tf.cast(unmasked, tf.int32), axis=1) - 1
  unit = tf.where(runs >= 0, runs, tf.where(unmasked, others, seq_len))
  selected = tf.range(seq_len + 1)[None] < num_runs
  return unit, selected, maskable, word_start


def _segment_sum(values, unit, num_units):
  """[B, S] values summed per unit -> [B, num_units]."""
  batch = tf.shape(unit)[0]
  flat = unit + tf.range(batch)[:, None] * num_units
  sums = tf.math.unsorted_segment_sum(tf.reshape(values, [-1]), tf.reshape(flat, [-1]),
                                      batch * num_units)
  return tf.reshape(sums, [batch, num_units])


def _greedy_select(sizes, valid, budget, limit, priority, coin, passes):
  """Units in priority order, each taken if it still fits the budget.

  With `passes=0` (span masking) the units are a prefix of the order, and the first unit that
  would overshoot is taken with probability (budget left) / (its size): the expected number of
  masked tokens is then the budget, and long spans are not crowded out by short ones at the end.
  """
  order = tf.argsort(priority, axis=1, stable=True)
  sorted_sizes = tf.gather(sizes, order, batch_dims=1)
  sorted_valid = tf.gather(valid, order, batch_dims=1)
  taken = tf.zeros_like(sorted_valid)
  remaining = budget
  for _ in range(max(passes, 1)):
    candidate = sorted_valid & ~taken & (sorted_sizes <= remaining[:, None])
    if not passes:
      candidate = sorted_valid
    running = tf.cumsum(tf.where(candidate, sorted_sizes, 0), axis=1)
    take = candidate & (running <= remaining[:, None])
    if not passes:
      take = tf.cumsum(tf.cast(~take & sorted_valid, tf.int32), axis=1) == 0
      take &= sorted_valid
    taken |= take
    remaining -= tf.reduce_sum(tf.where(take, sorted_sizes, 0), axis=1)
  if not passes:
    next_unit = sorted_valid & ~taken & (
        tf.cumsum(tf.cast(sorted_valid & ~taken, tf.int32), axis=1) == 1)
    size = tf.reduce_sum(tf.where(next_unit, sorted_sizes, 0), axis=1)
    used = budget - remaining
    accept = (coin * tf.cast(size, tf.float32) < tf.cast(remaining, tf.float32)) & (
        used + size <= limit)
    taken |= next_unit & accept[:, None]
  return tf.gather(taken, tf.argsort(order, axis=1), batch_dims=1)


def _first_k(flags, k):
  """Indices of the True entries of each row in ascending order, the first k, and their mask."""
  width = tf.shape(flags)[1]
  key = tf.where(flags, tf.range(width)[None], width + tf.range(width)[None])
  index = tf.argsort(key, axis=1, stable=True)[:, :k]
  present = tf.gather(flags, index, batch_dims=1)
  return tf.where(present, index, 0), present


def parse_rate_schedule(text: str, steps: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
  """`data.mask_rate_schedule` ("0:0.3,0.5:0.15,0.9:0.05": from each fraction of train.steps
  on, that masking rate; mmBERT's 30 -> 15 -> 5%) -> (first steps, rates)."""
  try:
    pairs = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
    starts, rates = zip(*pairs)
  except ValueError:
    raise ValueError(f"data.mask_rate_schedule={text!r}: write fraction:rate pairs, e.g. "
                     "'0:0.3,0.5:0.15,0.9:0.05' (from each fraction of train.steps on, "
                     "that rate).") from None
  if starts[0] != 0 or list(starts) != sorted(set(starts)) or starts[-1] >= 1:
    raise ValueError(f"data.mask_rate_schedule={text!r}: the fractions must start at 0 and "
                     "rise, each below 1.")
  if not all(0 < r < 1 for r in rates):
    raise ValueError(f"data.mask_rate_schedule={text!r}: every rate must be in (0, 1).")
  return tuple(int(round(f * steps)) for f in starts), rates


def rate_at(schedule: tuple[tuple[int, ...], tuple[float, ...]], step):
  """The scheduled masking rate at each global step of `step` (a tensor)."""
  starts, rates = schedule
  index = tf.searchsorted(tf.constant(starts, tf.int64), tf.cast(step, tf.int64),
                          side="right") - 1
  return tf.gather(tf.constant(rates, tf.float64), index)


def mask_batch(batch: dict, config: MaskingConfig, seed, rate=None) -> dict:
  """Adds masked `input_ids` and the MLM and SBO targets to a batch of examples.

  `rate` [B], if given, is each row's masking rate in place of `config.mask_rate` (a
  scheduled rate: `rate_at`).

  Returns the batch with `input_ids` masked and: `masked_positions`, `masked_ids`,
  `masked_weights` [B, P]; for SBO, per masked token, `span_bounds` [B, P, 2] (the positions just
  outside its unit), `span_slots` [B, P] (its place in the unit) and `span_weights` [B, P]
  (slots beyond `max_span_tokens` get no SBO target); and `span_words` [B, P], the length in
  words of each selected unit in position order.
  """
  ids, token_kind = batch["input_ids"], tf.cast(batch["token_kind"], tf.int32)
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 5)
  batch_size, seq_len = tf.shape(ids)[0], tf.shape(ids)[1]
  num_units = seq_len + 1  # the last slot collects the tokens that are never masked
  # float64 for the released SpanBERT sampler's ceil (ceil(20 x float32(0.15)) would be 4);
  # float32, as always, for bertlab's rounded budget.
  rate = (tf.fill([batch_size], tf.constant(config.mask_rate, tf.float64)) if rate is None
          else tf.cast(rate, tf.float64))
  if config.masking == "span" and config.span_sampler == "spanbert":
    unit, unit_selected, maskable, word_start = _released_spans(token_kind, config, seeds[0],
                                                                rate)
  else:
    unit, maskable, word_start = _unit_ids(token_kind, config, seeds[0])
  sizes = _segment_sum(tf.cast(maskable, tf.int32), unit, num_units)
  words = _segment_sum(tf.cast(word_start & maskable, tf.int32), unit, num_units)
  if not (config.masking == "span" and config.span_sampler == "spanbert"):
    valid = (sizes > 0) & (tf.range(num_units)[None] < seq_len)
    num_maskable = tf.reduce_sum(tf.cast(maskable, tf.int32), axis=1)
    budget = tf.cast(tf.round(tf.cast(num_maskable, tf.float32) * tf.cast(rate, tf.float32)),
                     tf.int32)
    budget = tf.minimum(tf.maximum(budget, tf.minimum(num_maskable, 1)), config.max_predictions)
    priority = tf.random.stateless_uniform([batch_size, num_units], seeds[1])
    coin = tf.random.stateless_uniform([batch_size], seeds[4])
    unit_selected = _greedy_select(sizes, valid, budget, config.max_predictions, priority, coin,
                                   0 if config.masking in ("ngram", "span") else _GREEDY_PASSES)

  decision = tf.random.stateless_uniform([batch_size, num_units], seeds[2])
  token_selected = tf.gather(unit_selected, unit, batch_dims=1)
  token_decision = tf.gather(decision, unit, batch_dims=1)
  random_ids = tf.random.stateless_uniform(tf.shape(ids), seeds[3], 0, config.vocab_size,
                                           dtype=tf.int32)
  to_mask = token_selected & (token_decision < config.mask_prob)
  to_random = token_selected & ~to_mask & (
      token_decision < config.mask_prob + config.random_prob)
  masked = tf.where(to_mask, config.mask_id, tf.where(to_random, random_ids, ids))

  p = config.max_predictions
  positions, present = _first_k(token_selected, p)
  out = dict(batch)
  out.update(
      input_ids=masked, masked_positions=positions,
      masked_ids=tf.where(present, tf.gather(ids, positions, batch_dims=1), 0),
      masked_weights=tf.cast(present, tf.float32))
  out.update(_spans(ids, unit, unit_selected, words, num_units, config, positions, present))
  return out


def _spans(ids, unit, unit_selected, words, num_units, config: MaskingConfig, positions,
           present) -> dict:
  """SBO inputs per masked token: its unit's outer boundary positions and its slot in the unit;
  and the length in words of each selected unit (position order), for statistics."""
  seq_len, batch = tf.shape(ids)[1], tf.shape(ids)[0]
  position = tf.broadcast_to(tf.range(seq_len)[None], tf.shape(ids))
  flat = tf.reshape(unit + tf.range(batch)[:, None] * num_units, [-1])
  first = tf.reshape(tf.math.unsorted_segment_min(tf.reshape(position, [-1]), flat,
                                                  batch * num_units), [batch, num_units])
  last = tf.reshape(tf.math.unsorted_segment_max(tf.reshape(position, [-1]), flat,
                                                 batch * num_units), [batch, num_units])
  token_unit = tf.gather(unit, positions, batch_dims=1)
  token_first = tf.gather(first, token_unit, batch_dims=1)
  token_last = tf.gather(last, token_unit, batch_dims=1)
  bounds = tf.where(present[..., None], tf.stack([token_first - 1, token_last + 1], -1), 0)
  slots = tf.where(present, positions - token_first, 0)
  span_units, span_present = _first_k(unit_selected, config.max_predictions)
  return dict(span_bounds=bounds, span_slots=slots,
              span_weights=tf.cast(present & (slots < config.max_span_tokens), tf.float32),
              span_words=tf.where(span_present, tf.gather(words, span_units, batch_dims=1), 0))


@functools.lru_cache(maxsize=None)
def batch_masker(config: MaskingConfig):
  """`mask_batch` traced once for any batch size: (input_ids, token_kind, seed) -> dict.

  One graph per config, so that masking chunk after chunk (create_pretraining_data, static
  copies) neither retraces nor grows memory.
  """
  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                tf.TensorSpec([None, None], tf.int8),
                                tf.TensorSpec([2], tf.int64)])
  def mask(input_ids, token_kind, seed):
    return mask_batch(dict(input_ids=input_ids, token_kind=token_kind), config, seed)
  return mask
