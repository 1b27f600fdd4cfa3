"""Pretraining batches: text -> tokens -> examples -> masked, fixed-shape numpy batches per host.

  data = PretrainingData.from_config(config)          # this host's share of the corpus
  for batch in data.batches(start_step=0): ...       # numpy dicts, host_batch_size rows each

The pipeline is a pure function of (config, seed, process_index, step): a run restored at step
N calls `batches(start_step=N)` and gets exactly the batches an uninterrupted run would have
read next. Epoch e visits this host's examples in a permutation drawn from (seed, host, e);
dynamic masking draws each batch's mask from (seed, host, e, batch) inside the tf.data graph,
so a sequence is masked afresh in every epoch; static masking draws `dupe_factor` masks per
sequence once (as create_pretraining_data writes them) and never again.
"""

import dataclasses
from typing import Iterator

import numpy as np
import tensorflow as tf

from bertlab.data import corpus, example_cache, examples, masking, records
from bertlab.data.tokenizers import Tokenizer
from bertlab.data.vocab import tokenizer_from_config

_MASK_CHUNK_ROWS = 256
# Without data.eval_source, one document in EVAL_EVERY is held out of training for --mode=eval.
EVAL_EVERY = 20


def tokenize_documents(docs: list[list[str]], tokenizer: Tokenizer,
                       batch_size: int = 2048) -> list[examples.TokenizedDoc]:
  """Tokenizes every sentence of `docs` in a parallel tf.data graph."""
  sentences = [s for doc in docs for s in doc]
  if not sentences:
    return []
  dataset = tf.data.Dataset.from_tensor_slices(tf.constant(sentences, tf.string))
  dataset = dataset.batch(batch_size).map(tokenizer.tokenize, num_parallel_calls=tf.data.AUTOTUNE,
                                          deterministic=True).prefetch(2)
  flat = []
  for ids, starts in dataset:
    splits, values = ids.row_splits.numpy(), ids.flat_values.numpy().astype(np.int32)
    flags = starts.flat_values.numpy().astype(bool)
    flat += [(values[lo:hi], flags[lo:hi]) for lo, hi in zip(splits[:-1], splits[1:])]
  out, k = [], 0
  for doc in docs:
    out.append([s for s in flat[k:k + len(doc)] if len(s[0])])
    k += len(doc)
  return out


def builder_config(data_config, tokenizer: Tokenizer) -> examples.BuilderConfig:
  return examples.BuilderConfig(
      input_format=data_config.input_format, sentence_objective=data_config.sentence_objective,
      seq_len=data_config.seq_len, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id,
      pad_id=tokenizer.pad_id, short_seq_prob=data_config.short_seq_prob,
      one_sentence_chunk=data_config.one_sentence_chunk,
      pack_sequences=data_config.pack_sequences)


def segmentations(data_config) -> int:
  """How many times the documents are cut into examples: once, or (`data.segment_per_dupe`
  with static masking) once per dupe, each cut masked once, as google-research bert's and
  albert's create_pretraining_data make every dupe afresh (new A/B cuts, NotNext partners and
  short targets). Otherwise static masking masks one segmentation `dupe_factor` times."""
  if not data_config.segment_per_dupe:
    return 1
  if data_config.dynamic_masking:
    raise ValueError("data.segment_per_dupe=True re-segments each of the data.dupe_factor "
                     "static copies, but data.dynamic_masking=True makes no copies: set "
                     "data.dynamic_masking=False, or data.segment_per_dupe=False.")
  return data_config.dupe_factor


def build_segmentations(docs: list[examples.TokenizedDoc], builder: examples.BuilderConfig,
                        rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
  """`count` segmentations of `docs` one after another, drawn from one random stream."""
  parts = [examples.build_examples(docs, builder, rng) for _ in range(count)]
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def masking_config(data_config, tokenizer: Tokenizer,
                   max_span_tokens: int = 10) -> masking.MaskingConfig:
  return masking.MaskingConfig(
      masking=data_config.masking, mask_rate=data_config.mask_rate,
      max_predictions=data_config.max_predictions, mask_id=tokenizer.mask_id,
      vocab_size=tokenizer.vocab_size, max_span_tokens=max_span_tokens,
      max_ngram=data_config.max_ngram, span_p=data_config.span_p,
      max_span_words=data_config.max_span_words,
      mask_prob=data_config.mask_token_share,
      random_prob=data_config.random_token_share,
      span_sampler=data_config.span_sampler)


def _seed(*parts: int) -> tf.Tensor:
  """A stateless-RNG seed [2] from integers (seed, host, epoch, batch, ...)."""
  mixed = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32)
  return tf.constant(mixed.astype(np.int64))


@dataclasses.dataclass
class PretrainingData:
  """This host's examples and the tf.data graph that batches and masks them."""
  examples: dict[str, np.ndarray]
  tokenizer: Tokenizer
  masking: masking.MaskingConfig
  host_batch_size: int
  dynamic_masking: bool = True
  dupe_factor: int = 1
  seed: int = 0
  process_index: int = 0
  premasked: bool = False  # examples already carry their masks (static records)
  # What made `examples` (bertlab/data/example_cache.py): static masks are then cached too.
  cache_key: dict | None = None
  # (first steps, rates): the masking rate by global step (data.mask_rate_schedule).
  rate_schedule: tuple | None = None

  def __post_init__(self):
    n = len(self.examples["input_ids"])
    if n < self.host_batch_size:
      raise ValueError(
          f"This host has {n} sequences, fewer than its batch of {self.host_batch_size}. Use a "
          "larger corpus (data.source), a smaller train.batch_size, or a shorter data.seq_len.")
    if not self.dynamic_masking and not self.premasked:
      self.examples = self._static_copies()
      self.premasked = True

  @classmethod
  def from_config(cls, config, process_index: int | None = None,
                  process_count: int | None = None, split: str = "train",
                  tokenizer: Tokenizer | None = None) -> "PretrainingData":
    """This host's data. `split="eval"` reads `data.eval_source`, or when that is empty the
    documents held out of training: every `EVAL_EVERY`-th document of `data.source`.
    `tokenizer` replaces the config's vocabulary: a resumed run's own
    (`hub/workdir.run_tokenizer`)."""
    import jax
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    data = config.data
    tokenizer = tokenizer or tokenizer_from_config(data, config.model.vocab_size)
    if tokenizer.vocab_size > config.model.vocab_size:
      raise ValueError(
          f"The vocabulary at data.vocab={data.vocab!r} has {tokenizer.vocab_size} pieces but "
          f"model.vocab_size is {config.model.vocab_size}; set --config.model.vocab_size="
          f"{tokenizer.vocab_size} (or more).")
    if config.train.batch_size % process_count:
      raise ValueError(f"train.batch_size={config.train.batch_size} must divide among "
                       f"{process_count} hosts.")
    mask_config = masking_config(data, tokenizer, config.model.max_span_length)
    cuts = segmentations(data)
    # Training follows the schedule; held-out evaluation masks at data.mask_rate throughout,
    # so its numbers compare across the run.
    schedule = data.mask_rate_schedule if split == "train" else ""
    if schedule and not data.dynamic_masking:
      raise ValueError("data.mask_rate_schedule needs data.dynamic_masking=True: static masks "
                       "are drawn before training, at one rate.")
    kwargs = dict(tokenizer=tokenizer, masking=mask_config,
                  host_batch_size=config.train.batch_size // process_count,
                  dynamic_masking=data.dynamic_masking,
                  dupe_factor=data.dupe_factor // cuts,  # each segmentation masked once
                  seed=data.seed, process_index=process_index,
                  rate_schedule=masking.parse_rate_schedule(schedule, config.train.steps)
                  if schedule else None)
    source = data.eval_source if split == "eval" else ""
    chosen = source or data.source
    if chosen.startswith("records:"):
      if split == "eval" and not source:
        raise ValueError("Records hold no held-out documents: set data.eval_source (records or "
                         "text) to evaluate a run trained on data.source=records:...")
      arrays, premasked = records.read_records(chosen[len("records:"):], process_index, process_count)
      return cls(arrays, premasked=premasked, **kwargs)
    builder = builder_config(data, tokenizer)
    key = example_cache.key_of(
        source=example_cache.source_fingerprint(chosen), split="" if source else split,
        eval_every=EVAL_EVERY, tokenizer=example_cache.tokenizer_fingerprint(tokenizer),
        builder=builder, seed=data.seed, host=[process_index, process_count],
        segmentations=cuts)

    def build():
      docs = list(corpus.read_documents(chosen, process_index, process_count))
      if not source:
        held_out = split == "eval"
        docs = [d for k, d in enumerate(docs) if (k % EVAL_EVERY == EVAL_EVERY - 1) == held_out]
      if not docs:
        raise ValueError(f"data.source={chosen!r} has no {split} documents for host "
                         f"{process_index} of {process_count}: is the corpus empty?")
      tokenized = tokenize_documents(docs, tokenizer)
      return build_segmentations(tokenized, builder,
                                 np.random.default_rng([data.seed, process_index]), cuts)

    arrays, _ = example_cache.cached("examples", key, build)
    return cls(arrays, cache_key=key, **kwargs)

  @property
  def num_sequences(self) -> int:
    return len(self.examples["input_ids"])

  @property
  def batches_per_epoch(self) -> int:
    return self.num_sequences // self.host_batch_size

  def _static_copies(self) -> dict[str, np.ndarray]:
    make = lambda: static_masked_copies(self.examples, self.masking, self.tokenizer,
                                        self.dupe_factor, (self.seed, self.process_index))
    if self.cache_key is None:
      return make()
    key = {**self.cache_key, "masking": dataclasses.asdict(self.masking),
           "dupe_factor": self.dupe_factor}
    return example_cache.cached("static", key, make)[0]

  @property
  def batches_per_chunk(self) -> int:
    """Batches masked together in one graph call (~256 rows: per-call overhead dominates small
    batches). Depends only on the host batch size, so the masks do too."""
    return max(1, _MASK_CHUNK_ROWS // self.host_batch_size)

  def _gather(self, rows: tf.Tensor) -> dict[str, tf.Tensor]:
    """Rows of the examples, read from the numpy arrays (memory-mapped from the cache): as
    graph constants, a large corpus would first be copied whole into the graph, for minutes."""
    keys = sorted(self.examples)
    outputs = tf.numpy_function(lambda r: [np.asarray(self.examples[k][r]) for k in keys], [rows],
                                [tf.as_dtype(self.examples[k].dtype) for k in keys],
                                stateful=False)
    for k, output in zip(keys, outputs):
      output.set_shape([None, *self.examples[k].shape[1:]])
    return dict(zip(keys, outputs))

  def dataset(self, start_step: int = 0) -> tf.data.Dataset:
    """Every batch from global step `start_step` on, epoch after epoch, as one tf.data graph.

    Epoch e shuffles this host's sequences with a stateless permutation keyed by (seed, host, e);
    chunks of `batches_per_chunk` batches are gathered and masked together, keyed by (e, chunk).
    A restored run skips whole chunks before any work is done, then the batches of a part.
    """
    batch, per_chunk = self.host_batch_size, self.batches_per_chunk
    chunk_rows, rows_per_epoch = per_chunk * batch, self.batches_per_epoch * batch
    num_chunks = -(-self.batches_per_epoch // per_chunk)
    host_seed = _seed(self.seed, self.process_index)

    def epoch_chunks(epoch):
      order = tf.random.experimental.stateless_shuffle(
          tf.range(self.num_sequences), tf.stack([host_seed[0], epoch]))[:rows_per_epoch]
      order = tf.pad(order, [[0, num_chunks * chunk_rows - rows_per_epoch]], constant_values=-1)
      return tf.data.Dataset.from_tensor_slices((
          tf.fill([num_chunks], epoch), tf.range(num_chunks, dtype=tf.int64),
          tf.reshape(order, [num_chunks, chunk_rows])))

    def chunk(epoch, index, rows):
      rows = tf.boolean_mask(rows, rows >= 0)
      out = _with_attention(self._gather(rows), self.tokenizer)
      if not self.premasked:
        seed = tf.stack([host_seed[1] + epoch, index])
        rate = None
        if self.rate_schedule is not None:  # each row at the rate of its batch's step
          first = epoch * self.batches_per_epoch + index * per_chunk
          rate = masking.rate_at(self.rate_schedule,
                                 first + tf.range(tf.shape(rows, tf.int64)[0]) // batch)
        out = masking.mask_batch(out, self.masking, seed, rate)
      return {k: tf.reshape(v, tf.concat([[-1, batch], tf.shape(v)[1:]], 0))
              for k, v in out.items()}

    epoch, skip = divmod(start_step, self.batches_per_epoch)
    return (tf.data.Dataset.range(epoch, 2**62).flat_map(epoch_chunks)
            .skip(skip // per_chunk)
            .map(chunk, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .unbatch().skip(skip % per_chunk))

  def batches(self, start_step: int = 0, prefetch: int = 4) -> Iterator[dict[str, np.ndarray]]:
    """Numpy batches from global step `start_step` on, forever."""
    return self.dataset(start_step).prefetch(prefetch).as_numpy_iterator()



def static_masked_copies(arrays: dict[str, np.ndarray], config: masking.MaskingConfig,
                         tokenizer: Tokenizer, dupe_factor: int, seed_parts: tuple,
                         chunk: int = 4096) -> dict[str, np.ndarray]:
  """`dupe_factor` copies of every sequence, each copy with its own fixed mask (BERT's static
  masking), in copy order, written into arrays allocated once (no second copy in memory)."""
  arrays = _with_attention(arrays, tokenizer)
  mask = masking.batch_masker(config)
  n = len(arrays["input_ids"])
  out = {k: np.concatenate([np.asarray(v)] * dupe_factor) for k, v in arrays.items()}
  for copy in range(dupe_factor):
    for lo in range(0, n, chunk):
      masked = mask(np.asarray(arrays["input_ids"][lo:lo + chunk]),
                    np.asarray(arrays["token_kind"][lo:lo + chunk]),
                    _seed(*seed_parts, 1, copy, lo))
      rows = slice(copy * n + lo, copy * n + min(lo + chunk, n))
      for k, v in masked.items():
        v = v.numpy()
        if k not in out:
          out[k] = np.empty((dupe_factor * n, *v.shape[1:]), v.dtype)
        out[k][rows] = v
  return out


def _with_attention(batch: dict, tokenizer: Tokenizer) -> dict:
  """The attention mask comes from the unmasked ids: a random replacement may be the pad id."""
  if "attention_mask" in batch:
    return batch
  ids = batch["input_ids"]
  if isinstance(ids, np.ndarray):
    return {**batch, "attention_mask": (ids != tokenizer.pad_id).astype(np.int32)}
  return {**batch, "attention_mask": tf.cast(tf.not_equal(ids, tokenizer.pad_id), tf.int32)}
