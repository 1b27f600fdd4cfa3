"""Tokenizers that run inside tf.data graphs, reading the vocab files of Hugging Face checkpoints.

  * `wordpiece` (BERT, ELECTRA, SpanBERT): `vocab.txt`; `tensorflow_text.FastBertTokenizer`
    after BERT's own text cleaning, lowercasing and accent stripping (NFD then drop marks, as
    BERT's BasicTokenizer does; tf_text's built-in lowercasing uses NFKD, which differs on
    characters such as "½" or "™").
  * `sentencepiece` (ALBERT): `spiece.model`; `tensorflow_text.SentencepieceTokenizer` after
    ALBERT's preprocessing (``/'' to ", NFKD, drop marks, lowercase).
  * `bpe` (RoBERTa): GPT-2's byte-level BPE, `vocab.json` + `merges.txt`, or a `tokenizers`
    `tokenizer.json` alone (ModernBERT's; its specials read from the checkpoint's
    special_tokens_map.json, else RoBERTa's or BERT's names, whichever the vocabulary holds).
    tf_text has no BPE op, so this one step calls the Rust `tokenizers` library (the engine of
    transformers' own tokenizer) through `tf.numpy_function`, a batch of sentences per call.

`tokenize(strings)` maps a batch of sentences to ragged token ids and ragged word-start flags.
Word starts follow the vocabulary's marker (`##` continues a word, `▁` and `Ġ` start one), or,
with `word_boundary="pretokenizer"`, the words of the pre-tokenizer (for vocabularies whose
pieces carry no marker, as in Chinese, or mark the end of a word instead).
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from bertlab import files

KINDS = ("wordpiece", "sentencepiece", "bpe")
WORD_BOUNDARIES = ("marker", "pretokenizer")
# Special tokens by kind: the names bertlab needs, as each vocabulary spells them.
SPECIALS = {
    "wordpiece": dict(pad="[PAD]", unk="[UNK]", cls="[CLS]", sep="[SEP]", mask="[MASK]"),
    "sentencepiece": dict(pad="<pad>", unk="<unk>", cls="[CLS]", sep="[SEP]", mask="[MASK]"),
    "bpe": dict(pad="<pad>", unk="<unk>", cls="<s>", sep="</s>", mask="<mask>"),
}
VOCAB_FILES = {"wordpiece": ("vocab.txt",), "sentencepiece": ("spiece.model",),
               "bpe": ("vocab.json", "merges.txt")}
# A byte-level BPE in one file (transformers' fast tokenizers; ModernBERT ships only this).
TOKENIZER_FILE = "tokenizer.json"
# Characters BERT's BasicTokenizer deletes: NUL, U+FFFD and control/format characters (not tabs
# and newlines, which are white space).
_BERT_DELETED = r"[\x{0}\x{fffd}]|[^\P{C}\t\n\r]"


@dataclasses.dataclass
class Tokenizer:
  """A vocabulary and the tf graph that applies it; `ids` of the specials are attributes."""
  kind: str
  pieces: list[str]
  lower_case: bool
  word_boundary: str = "marker"
  model_proto: bytes | None = None  # sentencepiece
  merges_path: str | None = None  # bpe
  tokenizer_file: str | None = None  # bpe from a tokenizer.json
  # The special tokens' spellings (pad, unk, cls, sep, mask); None: SPECIALS[kind].
  specials: dict | None = None

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"Unknown tokenizer {self.kind!r}; valid: {', '.join(KINDS)}.")
    if self.word_boundary not in WORD_BOUNDARIES:
      raise ValueError(f"Unknown data.word_boundary {self.word_boundary!r}; valid: "
                       f"{', '.join(WORD_BOUNDARIES)}.")
    index = {p: i for i, p in enumerate(self.pieces)}
    names = self.special_names
    missing = [tok for tok in names.values() if tok not in index]
    if missing:
      raise ValueError(
          f"The {self.kind} vocabulary ({len(self.pieces)} pieces) lacks the special tokens "
          f"{missing}. bertlab needs {list(names.values())}: add them to the vocabulary, or "
          "train one with `python -m bertlab.data.train_tokenizer`.")
    for name, tok in names.items():
      setattr(self, f"{name}_id", index[tok])
    self._word_start = tf.constant(self.marker_word_starts())
    self._build()

  @property
  def vocab_size(self) -> int:
    return len(self.pieces)

  @property
  def special_names(self) -> dict[str, str]:
    """pad, unk, cls, sep, mask -> how this vocabulary spells them."""
    return self.specials or SPECIALS[self.kind]

  def marker_word_starts(self) -> np.ndarray:
    """[vocab] bool: the pieces whose marker says they start a word."""
    if self.kind == "wordpiece":
      return np.array([not p.startswith("##") for p in self.pieces])
    marker = "▁" if self.kind == "sentencepiece" else "Ġ"
    return np.array([p.startswith(marker) for p in self.pieces])

  def _build(self):
    if self.kind == "wordpiece":
      self._wordpiece = tf_text.FastBertTokenizer(
          self.pieces, token_out_type=tf.int32, unknown_token="[UNK]",
          lower_case_nfd_strip_accents=False, support_detokenization=False)
      if self.word_boundary == "pretokenizer":
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            self.pieces, tf.range(len(self.pieces), dtype=tf.int64)), default_value=self.unk_id)
        self._by_word = tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=False)
    elif self.kind == "sentencepiece":
      self._sentencepiece = tf_text.SentencepieceTokenizer(model=self.model_proto,
                                                           out_type=tf.int32)
    elif self.tokenizer_file:
      import tokenizers
      with files.open_file(self.tokenizer_file) as f:
        self._bpe = tokenizers.Tokenizer.from_str(f.read())
      self._bpe.no_truncation()
      self._bpe.no_padding()
    else:
      from tokenizers import ByteLevelBPETokenizer
      vocab = {p: i for i, p in enumerate(self.pieces)}
      merges = _read_merges(self.merges_path)
      self._bpe = ByteLevelBPETokenizer(vocab, merges, add_prefix_space=False)

  def bpe_json(self) -> str:
    """The `tokenizers` serialisation of the byte-level BPE this tokenizer runs."""
    if self.kind != "bpe":
      raise ValueError(f"A {self.kind} tokenizer has no BPE model.")
    return self._bpe.to_str()

  def normalize(self, text: tf.Tensor) -> tf.Tensor:
    """The reference tokenizer's text normalisation, as tf string ops."""
    return normalize_text(self.kind, self.lower_case, text)

  def tokenize(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """[batch] strings -> (ids, word_starts), both ragged [batch, (pieces)]."""
    text = self.normalize(text)
    if self.kind == "bpe":
      return self._bpe_tokenize(text)
    if self.word_boundary == "pretokenizer":
      if self.kind == "wordpiece":
        by_word = tf.cast(self._by_word.tokenize(text), tf.int32)
      else:
        words = tf.strings.split(text)
        by_word = tf.RaggedTensor.from_row_splits(
            self._sentencepiece.tokenize(words.flat_values), words.row_splits)
      return by_word.merge_dims(-2, -1), _first_of_each_word(by_word)
    tokenizer = self._wordpiece if self.kind == "wordpiece" else self._sentencepiece
    ids = tokenizer.tokenize(text)
    return ids, tf.ragged.map_flat_values(lambda x: tf.gather(self._word_start, x), ids)

  def _bpe_tokenize(self, text):
    def encode(batch):
      encodings = self._bpe.encode_batch([t.decode("utf-8") for t in batch],
                                         add_special_tokens=False)
      ids = np.fromiter((i for e in encodings for i in e.ids), np.int32)
      lengths = np.array([len(e.ids) for e in encodings], np.int64)
      if self.word_boundary == "marker":
        starts = self.marker_word_starts()[ids]
        offsets = np.cumsum(lengths) - lengths
        starts[offsets[lengths > 0]] = True  # no space before a line's first word
      else:
        starts = np.fromiter((w is not None and (k == 0 or w != e.word_ids[k - 1])
                              for e in encodings for k, w in enumerate(e.word_ids)), bool)
      return ids, starts, lengths
    ids, starts, lengths = tf.numpy_function(encode, [text], [tf.int32, tf.bool, tf.int64],
                                             stateful=False)
    ids.set_shape([None]), starts.set_shape([None]), lengths.set_shape([None])
    return (tf.RaggedTensor.from_row_lengths(ids, lengths),
            tf.RaggedTensor.from_row_lengths(starts, lengths))

  def tokenize_numpy(self, sentences: list[str]) -> list[np.ndarray]:
    """Ids of each sentence; a convenience for tests and notebooks."""
    ids, _ = self.tokenize(tf.constant(sentences, tf.string))
    return [np.array(x, np.int32) for x in ids.to_list()]

  def decode(self, ids) -> list[str]:
    return [self.pieces[i] for i in ids]


def normalize_text(kind: str, lower_case: bool, text: tf.Tensor) -> tf.Tensor:
  """What the reference tokenizer of `kind` does to text before splitting it, as tf string ops
  (also what a vocabulary of that kind is trained on)."""
  if kind == "wordpiece":
    text = tf.strings.regex_replace(text, _BERT_DELETED, "")
    if lower_case:
      text = tf_text.normalize_utf8(tf.strings.lower(text, encoding="utf-8"), "NFD")
      text = tf.strings.regex_replace(text, r"\p{Mn}", "")
  elif kind == "sentencepiece":
    # The op reads C strings: a NUL would end the text. Any character outside the vocabulary
    # (a private-use one here) becomes <unk>, as NUL does in the reference.
    text = tf.strings.regex_replace(text, r"\x{0}", "\uE000")
    text = tf.strings.regex_replace(text, "``|''", '"')
    if lower_case:
      text = tf_text.normalize_utf8(text, "NFKD")
      text = tf.strings.regex_replace(text, r"\p{Mn}", "")
      text = tf.strings.lower(text, encoding="utf-8")
  return text


def _first_of_each_word(by_word: tf.RaggedTensor) -> tf.RaggedTensor:
  """[batch, words, pieces] -> [batch, pieces]: True on each word's first piece."""
  positions = tf.ragged.range(by_word.values.row_lengths())  # [all words, (pieces)]
  return by_word.with_flat_values(tf.equal(positions.flat_values, 0)).merge_dims(-2, -1)


def _read_merges(path: str) -> list[tuple[str, str]]:
  with files.open_file(path) as f:
    lines = [l.rstrip("\n") for l in f]
  return [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]


def _wordpiece_uncased(pieces: list[str], directory: str) -> bool:
  """do_lower_case from tokenizer_config.json when present, else: no pieces in upper case."""
  config_path = os.path.join(directory, "tokenizer_config.json")
  if files.exists(config_path):
    with files.open_file(config_path) as f:
      config = json.load(f)
    if "do_lower_case" in config:
      return bool(config["do_lower_case"])
  # A cased vocabulary has hundreds of capitalised pieces; an uncased one may still hold a few
  # symbols such as "ℝ".
  return sum(p[:1].isascii() and p[:1].isupper() for p in pieces) < 10


def detect_kind(path: str) -> str:
  directory = path if files.isdir(path) else os.path.dirname(path)
  for kind, names in VOCAB_FILES.items():
    if all(files.exists(os.path.join(directory, f)) for f in names):
      if files.isdir(path) or os.path.basename(path) in names:
        return kind
  if files.exists(os.path.join(directory, TOKENIZER_FILE)):
    with files.open_file(os.path.join(directory, TOKENIZER_FILE)) as f:
      model = json.load(f).get("model", {}).get("type")
    if model == "BPE":
      return "bpe"
    raise ValueError(f"{os.path.join(directory, TOKENIZER_FILE)} holds a {model} model; bertlab "
                     "reads a tokenizer.json of byte-level BPE only (WordPiece: vocab.txt, "
                     "SentencePiece: spiece.model).")
  raise FileNotFoundError(
      f"No vocabulary at {path!r}. A vocabulary is a directory (or file) with "
      + "; ".join(f"{k}: {' + '.join(v)}" for k, v in VOCAB_FILES.items())
      + ". Train one with `python -m bertlab.data.train_tokenizer`, or use data.vocab=default.")


def load_tokenizer(path: str, kind: str | None = None, lower_case: bool | None = None,
                   word_boundary: str = "marker") -> Tokenizer:
  """The tokenizer of a vocabulary directory, e.g. a Hugging Face checkpoint's."""
  found = detect_kind(path)
  if kind and kind != found:
    raise ValueError(f"data.tokenizer={kind!r} but {path!r} holds a {found} vocabulary "
                     f"({' + '.join(VOCAB_FILES[found])}); set data.tokenizer={found!r}.")
  directory = path if files.isdir(path) else os.path.dirname(path)
  file = lambda name: os.path.join(directory, name)
  if found == "wordpiece":
    with files.open_file(file("vocab.txt")) as f:
      pieces = [line.rstrip("\n") for line in f]
    uncased = _wordpiece_uncased(pieces, directory) if lower_case is None else lower_case
    return Tokenizer("wordpiece", pieces, uncased, word_boundary)
  if found == "sentencepiece":
    import sentencepiece
    with files.open_file(file("spiece.model"), "rb") as f:
      proto = f.read()
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    return Tokenizer("sentencepiece", pieces, True if lower_case is None else lower_case,
                     word_boundary, model_proto=proto)
  if not files.exists(file("vocab.json")):
    return _tokenizer_json(file(TOKENIZER_FILE), directory, word_boundary)
  with files.open_file(file("vocab.json")) as f:
    vocab = json.load(f)
  pieces = [None] * (max(vocab.values()) + 1)
  for piece, i in vocab.items():
    pieces[i] = piece
  pieces = [p if p is not None else f"<unused{i}>" for i, p in enumerate(pieces)]
  # GPT-2's own vocabulary has none of RoBERTa's specials; like transformers' RobertaTokenizer
  # given GPT-2's files, append the missing ones after the last id.
  pieces += [t for t in SPECIALS["bpe"].values() if t not in vocab]
  return Tokenizer("bpe", pieces, False, word_boundary, merges_path=file("merges.txt"))


def _tokenizer_json(path: str, directory: str, word_boundary: str) -> Tokenizer:
  """A byte-level BPE `tokenizer.json` (ModernBERT's): its vocabulary with the added tokens, and
  the specials its checkpoint names (special_tokens_map.json), else RoBERTa's or BERT's."""
  import tokenizers
  with files.open_file(path) as f:
    vocab = tokenizers.Tokenizer.from_str(f.read()).get_vocab(with_added_tokens=True)
  pieces = [None] * (max(vocab.values()) + 1)
  for piece, i in vocab.items():
    pieces[i] = piece
  pieces = [p if p is not None else f"<unused{i}>" for i, p in enumerate(pieces)]
  specials = None
  special_map = os.path.join(directory, "special_tokens_map.json")
  if files.exists(special_map):
    with files.open_file(special_map) as f:
      named = json.load(f)
    spell = lambda v: v["content"] if isinstance(v, dict) else v
    specials = {name: spell(named[f"{name}_token"]) for name in SPECIALS["bpe"]
                if f"{name}_token" in named}
    if len(specials) < len(SPECIALS["bpe"]):
      specials = None
  if specials is None:
    specials = next((names for names in (SPECIALS["bpe"], SPECIALS["wordpiece"])
                     if all(t in vocab for t in names.values())), SPECIALS["bpe"])
  return Tokenizer("bpe", pieces, False, word_boundary, tokenizer_file=path, specials=specials)
