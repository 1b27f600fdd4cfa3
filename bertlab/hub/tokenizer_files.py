"""A bertlab tokenizer as the files transformers' AutoTokenizer reads, giving the same ids.

WordPiece: `vocab.txt` for BertTokenizer (do_lower_case as bertlab's, accents stripped with
it, Chinese characters split: BERT's BasicTokenizer). SentencePiece: `spiece.model` for
AlbertTokenizer (lowercase, accents dropped, as ALBERT's preprocessing). Byte-level BPE:
`vocab.json` + `merges.txt` for RobertaTokenizer (no prefix space), or the `tokenizer.json`
bertlab read it from. Each with `tokenizer_config.json` and `special_tokens_map.json`.
"""

import json
import os

import tokenizers

from bertlab import files

TOKENIZER_CLASSES = {"wordpiece": "BertTokenizer", "sentencepiece": "AlbertTokenizer",
                     "bpe": "RobertaTokenizer"}


def special_tokens(tokenizer) -> dict[str, str]:
  """transformers' names for the specials: pad/unk/cls/sep/mask, and BPE's bos/eos."""
  names = tokenizer.special_names
  tokens = {f"{name}_token": token for name, token in names.items()}
  if tokenizer.kind == "bpe":
    tokens.update(bos_token=names["cls"], eos_token=names["sep"])
  return tokens


def _write(path: str, content: str | bytes):
  with files.open_file(path, "wb" if isinstance(content, bytes) else "w") as f:
    f.write(content)


def _write_json(value: dict, path: str):
  _write(path, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def _copy(source: str, target: str):
  with files.open_file(source, "rb") as f:
    _write(target, f.read())


def _byte_bpe_json(tokenizer) -> str:
  """The fast tokenizer's one-file form of vocab.json + merges.txt (transformers loads some
  model types, ModernBERT's among them, only from it): the BPE bertlab runs, with RoBERTa's
  <s> A </s></s> B </s> and the specials as special tokens."""
  names = tokenizer.special_names
  index = {piece: i for i, piece in enumerate(tokenizer.pieces)}
  fast = tokenizers.Tokenizer.from_str(tokenizer.bpe_json())
  fast.post_processor = tokenizers.processors.RobertaProcessing(
      (names["sep"], index[names["sep"]]), (names["cls"], index[names["cls"]]),
      trim_offsets=True, add_prefix_space=False)
  fast.add_special_tokens([tokenizers.AddedToken(token, special=True, lstrip=name == "mask")
                           for name, token in names.items()])
  return fast.to_str()


def save_tokenizer(tokenizer, directory: str, model_max_length: int) -> list[str]:
  """Writes the files of `tokenizer` (bertlab.data.tokenizers.Tokenizer) into `directory`;
  returns their names."""
  files.makedirs(directory)
  path = lambda name: os.path.join(directory, name)
  config = dict(model_max_length=model_max_length, **special_tokens(tokenizer))
  if tokenizer.kind == "wordpiece":
    _write(path("vocab.txt"), "".join(piece + "\n" for piece in tokenizer.pieces))
    config.update(tokenizer_class=TOKENIZER_CLASSES["wordpiece"],
                  do_lower_case=tokenizer.lower_case, tokenize_chinese_chars=True,
                  strip_accents=None)
    written = ["vocab.txt"]
  elif tokenizer.kind == "sentencepiece":
    _write(path("spiece.model"), tokenizer.model_proto)
    config.update(tokenizer_class=TOKENIZER_CLASSES["sentencepiece"],
                  do_lower_case=tokenizer.lower_case, keep_accents=not tokenizer.lower_case,
                  remove_space=True)
    written = ["spiece.model"]
  elif tokenizer.tokenizer_file:
    _copy(tokenizer.tokenizer_file, path("tokenizer.json"))
    config.update(tokenizer_class="PreTrainedTokenizerFast")
    written = ["tokenizer.json"]
  else:
    _write_json({piece: i for i, piece in enumerate(tokenizer.pieces)}, path("vocab.json"))
    _copy(tokenizer.merges_path, path("merges.txt"))
    _write(path("tokenizer.json"), _byte_bpe_json(tokenizer))
    config.update(tokenizer_class=TOKENIZER_CLASSES["bpe"], add_prefix_space=False,
                  trim_offsets=True)
    written = ["vocab.json", "merges.txt", "tokenizer.json"]
  _write_json(config, path("tokenizer_config.json"))
  _write_json(special_tokens(tokenizer), path("special_tokens_map.json"))
  return written + ["tokenizer_config.json", "special_tokens_map.json"]
