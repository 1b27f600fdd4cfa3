"""Train a vocabulary of any kind from a corpus, in the files Hugging Face checkpoints use.

  python -m bertlab.data.train_tokenizer --kind=wordpiece --corpus='wiki/*.txt' \
      --vocab_size=30522 --out=vocab/

`wordpiece` writes vocab.txt (the `tokenizers` WordPiece trainer, BERT's uncased cleaning),
`sentencepiece` writes spiece.model (a unigram model with ALBERT's ids: <pad>=0, <unk>=1,
[CLS]=2, [SEP]=3, [MASK]=4, trained on ALBERT-preprocessed text), `bpe` writes vocab.json +
merges.txt (byte-level BPE with RoBERTa's specials). `--corpus=default` is the embedded corpus.
"""

import os
from typing import Iterator

import tensorflow as tf
from absl import app, flags

from bertlab.data import corpus
from bertlab.data.tokenizers import KINDS, SPECIALS, normalize_text


def _sentences(files: list[str]) -> Iterator[str]:
  for path in files:
    for doc in corpus._read_text_file(path):
      yield from doc


def _normalized(files: list[str], kind: str, batch: int = 4096) -> Iterator[str]:
  """The sentences as the tokenizer of `kind` sees them at run time, normalised in batches in
  a tf.data graph (one op call per sentence costs minutes on a 100 MB corpus)."""
  dataset = tf.data.Dataset.from_generator(lambda: _sentences(files),
                                           output_signature=tf.TensorSpec([], tf.string))
  dataset = dataset.batch(batch).map(lambda text: normalize_text(kind, True, text),
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  for normalized in dataset.prefetch(2).as_numpy_iterator():
    yield from (s.decode("utf-8") for s in normalized)


def train_vocab(kind: str, files: list[str], vocab_size: int, out: str) -> str:
  """Writes the vocabulary files of `kind` into `out` and returns `out`."""
  if kind not in KINDS:
    raise ValueError(f"Unknown tokenizer kind {kind!r}; valid: {', '.join(KINDS)}.")
  os.makedirs(out, exist_ok=True)
  if kind == "wordpiece":
    from tokenizers import BertWordPieceTokenizer
    tokenizer = BertWordPieceTokenizer(lowercase=True, strip_accents=True)
    tokenizer.train_from_iterator(_sentences(files), vocab_size=vocab_size, show_progress=False,
                                  special_tokens=list(SPECIALS["wordpiece"].values()))
    tokenizer.save_model(out)
  elif kind == "bpe":
    from tokenizers import ByteLevelBPETokenizer
    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False)
    specials = SPECIALS["bpe"]
    tokenizer.train_from_iterator(
        _sentences(files), vocab_size=vocab_size, show_progress=False,
        special_tokens=[specials[k] for k in ("cls", "pad", "sep", "unk", "mask")])
    tokenizer.save_model(out)
  else:
    import sentencepiece
    # The same preprocessing the tokenizer applies at run time (lowercasing, accents).
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=_normalized(files, "sentencepiece"),
        model_prefix=os.path.join(out, "spiece"), vocab_size=vocab_size, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=0.9995, input_sentence_size=2_000_000, shuffle_input_sentence=True,
        minloglevel=2, hard_vocab_limit=False)
    os.remove(os.path.join(out, "spiece.vocab"))
  return out


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  files = [corpus.default_corpus_path()] if FLAGS.corpus == "default" else (
      corpus._text_files(FLAGS.corpus))
  print(train_vocab(FLAGS.kind, files, FLAGS.vocab_size, FLAGS.out))


if __name__ == "__main__":
  # Flags only when run as a command: the library imports this module for `train_vocab`.
  flags.DEFINE_enum("kind", "wordpiece", ["wordpiece", "sentencepiece", "bpe"],
                    "Which vocabulary to train.")
  flags.DEFINE_string("corpus", "default", "Text files (glob; one sentence per line) or `default`.")
  flags.DEFINE_integer("vocab_size", 30000, "Number of pieces.")
  flags.DEFINE_string("out", None, "Output directory.", required=True)
  app.run(main)
