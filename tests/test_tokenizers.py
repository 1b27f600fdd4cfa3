"""Token ids equal transformers' tokenizers' on the same vocabulary files."""

import json
import shutil

import pytest
import tensorflow as tf

from bertlab.data import corpus
from bertlab.data.tokenizers import load_tokenizer
from bertlab.data.train_tokenizer import train_vocab
from data_helpers import VARIED, sentences_from_text, shared_file, write_corpus


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
  """Real prose (the embedded corpus) plus the varied sentences, to train vocabularies on."""
  path = tmp_path_factory.mktemp("corpus") / "train.txt"
  # About 450 KB: enough text that the varied sentences meet few unknown characters.
  docs = [doc for doc, _ in zip(corpus.read_documents("default"), range(1300))]
  return write_corpus(str(path), docs + [VARIED])


def _ours(path, sentences, **kwargs):
  return load_tokenizer(path, **kwargs).tokenize_numpy(sentences)


def _assert_same(ours, theirs, sentences):
  bad = [(s, a.tolist(), b) for s, a, b in zip(sentences, ours, theirs) if a.tolist() != b]
  assert not bad, f"{len(bad)} of {len(sentences)} differ, first: {bad[0]}"


def _hf(cls_name, directory, sentences):
  import transformers
  tokenizer = getattr(transformers, cls_name).from_pretrained(directory)
  return [tokenizer(s, add_special_tokens=False)["input_ids"] for s in sentences]


def test_wordpiece_matches_bert_tokenizer_on_bert_base_uncased_vocab(tmp_path):
  shutil.copy(shared_file("vocab", "bert-base-uncased", "vocab.txt"), tmp_path / "vocab.txt")
  sentences = sentences_from_text()
  _assert_same(_ours(str(tmp_path), sentences), _hf("BertTokenizer", str(tmp_path), sentences),
               sentences)


@pytest.mark.parametrize("cased", [False, True])
def test_wordpiece_trained_vocab_matches_bert_tokenizer(text_file, tmp_path, cased):
  train_vocab("wordpiece", [text_file], 2000, str(tmp_path))
  sentences = sentences_from_text()
  with open(tmp_path / "tokenizer_config.json", "w") as f:
    json.dump({"do_lower_case": not cased}, f)
  ours = _ours(str(tmp_path), sentences)
  _assert_same(ours, _hf("BertTokenizer", str(tmp_path), sentences), sentences)


def test_sentencepiece_matches_albert_tokenizer(text_file, tmp_path):
  """Equal to the sentencepiece library after ALBERT's preprocessing (the original tokenizer)
  and to transformers' AlbertTokenizer, up to ties: segmentations of equal score ("000" as
  00+0 or 0+00) are broken differently by tf_text's bundled sentencepiece, the pip one and
  `tokenizers` (transformers v5), so every difference must be such a tie."""
  import sentencepiece
  train_vocab("sentencepiece", [text_file], 1500, str(tmp_path))
  sentences = sentences_from_text()
  tokenizer = load_tokenizer(str(tmp_path))
  assert [tokenizer.pieces[i] for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
  ours = tokenizer.tokenize_numpy(sentences)
  processor = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "spiece.model"))
  preprocessed = [tokenizer.normalize(tf.constant(s)).numpy().decode() for s in sentences]
  library = [processor.encode(s.replace("\0", "\uE000")) for s in preprocessed]
  for theirs in (library, _hf("AlbertTokenizer", str(tmp_path), sentences)):
    differ = [(a.tolist(), b) for a, b in zip(ours, theirs) if a.tolist() != b]
    assert len(differ) <= 0.05 * len(sentences)
    for a, b in differ:
      pieces = lambda ids: "".join(map(processor.id_to_piece, ids))
      score = lambda ids: sum(map(processor.get_score, ids))
      assert pieces(a) == pieces(b) and score(a) == pytest.approx(score(b), abs=1e-3), (a, b)


def _gpt2_reference_bpe(vocab: dict, merges: list, text: str) -> list[int]:
  """GPT-2's encoder written from its paper's description, independent of `tokenizers`."""
  import regex
  bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
      range(ord("®"), ord("ÿ") + 1))
  cs, n = bs[:], 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  byte_char = dict(zip(bs, map(chr, cs)))
  ranks = {tuple(m): i for i, m in enumerate(merges)}
  pattern = regex.compile(
      r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
  ids = []
  for word in pattern.findall(text):
    parts = [byte_char[b] for b in word.encode("utf-8")]
    while len(parts) > 1:
      pairs = [(ranks.get((a, b), 1 << 30), k) for k, (a, b) in enumerate(zip(parts, parts[1:]))]
      rank, k = min(pairs)
      if rank == 1 << 30:
        break
      parts = parts[:k] + [parts[k] + parts[k + 1]] + parts[k + 2:]
    ids += [vocab[p] for p in parts]
  return ids


def test_byte_bpe_matches_roberta_tokenizer_and_a_reference_bpe_on_gpt2_vocab(tmp_path):
  for name in ("vocab.json", "merges.txt"):
    shutil.copy(shared_file("vocab", "gpt2-bpe", name), tmp_path / name)
  sentences = sentences_from_text(200)
  ours = _ours(str(tmp_path), sentences)
  _assert_same(ours, _hf("RobertaTokenizer", str(tmp_path), sentences), sentences)
  with open(tmp_path / "vocab.json", encoding="utf-8") as f:
    vocab = json.load(f)
  with open(tmp_path / "merges.txt", encoding="utf-8") as f:
    merges = [l.split() for l in f.read().splitlines()[1:] if l]
  _assert_same(ours, [_gpt2_reference_bpe(vocab, merges, s) for s in sentences], sentences)
  # GPT-2's vocabulary lacks RoBERTa's specials: they follow the last id, as in transformers.
  tokenizer = load_tokenizer(str(tmp_path))
  assert tokenizer.mask_id >= len(vocab) and tokenizer.cls_id >= len(vocab)


def test_byte_bpe_trained_vocab_matches_roberta_tokenizer(text_file, tmp_path):
  train_vocab("bpe", [text_file], 1500, str(tmp_path))
  sentences = sentences_from_text()
  tokenizer = load_tokenizer(str(tmp_path))
  assert (tokenizer.cls_id, tokenizer.pad_id, tokenizer.sep_id) == (0, 1, 2)  # RoBERTa's ids
  _assert_same(tokenizer.tokenize_numpy(sentences),
               _hf("RobertaTokenizer", str(tmp_path), sentences), sentences)


def test_word_starts_follow_each_vocabulary_convention(text_file, tmp_path):
  sentence = ["unbelievably tokenization works"]
  for kind in ("wordpiece", "sentencepiece", "bpe"):
    directory = str(tmp_path / kind)
    train_vocab(kind, [text_file], 800, directory)
    tokenizer = load_tokenizer(directory)
    ids, starts = tokenizer.tokenize(tf.constant(sentence))
    pieces, starts = tokenizer.decode(ids.to_list()[0]), starts.to_list()[0]
    words = []
    for piece, start in zip(pieces, starts):
      if start:
        words.append("")
      words[-1] += piece.lstrip("#▁Ġ")
    assert words == ["unbelievably", "tokenization", "works"], (kind, pieces, starts)


def test_pretokenizer_word_boundaries_for_unmarked_pieces(text_file, tmp_path):
  """A vocabulary that marks no word start (every piece bare): words come from white space."""
  train_vocab("sentencepiece", [text_file], 800, str(tmp_path))
  import tensorflow as tf
  tokenizer = load_tokenizer(str(tmp_path), word_boundary="pretokenizer")
  ids, starts = tokenizer.tokenize(tf.constant(["unbelievably tokenization 北京是"]))
  marker = load_tokenizer(str(tmp_path)).tokenize(tf.constant(["unbelievably tokenization 北京是"]))
  assert ids.to_list() == marker[0].to_list()
  assert sum(starts.to_list()[0]) == 3


def test_vocab_without_special_tokens_says_what_to_add(tmp_path):
  (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\nworld\n")
  with pytest.raises(ValueError, match=r"lacks the special tokens \['\[CLS\]', '\[SEP\]', "
                     r"'\[MASK\]'\].*train_tokenizer"):
    load_tokenizer(str(tmp_path))


def test_missing_vocab_names_the_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="vocab.txt.*spiece.model.*vocab.json"):
    load_tokenizer(str(tmp_path))


def test_tokenizer_json_alone_matches_transformers_fast_tokenizer(text_file, tmp_path):
  """ModernBERT ships its byte-level BPE as tokenizer.json only, with BERT's special names."""
  import tokenizers
  import transformers
  specials = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"]
  bpe = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="[UNK]"))
  bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
  bpe.decoder = tokenizers.decoders.ByteLevel()
  bpe.train([text_file], tokenizers.trainers.BpeTrainer(
      vocab_size=1200, special_tokens=specials,
      initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
  bpe.post_processor = tokenizers.processors.TemplateProcessing(
      single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 0), ("[SEP]", 1)])
  bpe.save(str(tmp_path / "tokenizer.json"))
  with open(tmp_path / "special_tokens_map.json", "w") as f:
    json.dump({"cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]",
               "pad_token": "[PAD]", "unk_token": "[UNK]"}, f)
  tokenizer = load_tokenizer(str(tmp_path))
  assert tokenizer.kind == "bpe"
  assert (tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 1, 2)
  sentences = sentences_from_text()
  theirs = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
  _assert_same(tokenizer.tokenize_numpy(sentences),
               [theirs(s, add_special_tokens=False)["input_ids"] for s in sentences], sentences)
