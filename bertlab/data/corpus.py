"""Text sources for pretraining: documents as lists of sentences.

Three kinds of `data.source`:
  * `default`: the embedded corpus, English prose already on every machine where bertlab runs
    (the docstrings of the Python standard library and its pydoc topics), built on first use
    and cached, so the README's command works offline;
  * a path or glob of text files in BERT's `create_pretraining_data` format: one sentence per
    line, a blank line between documents (`.txt` or `.txt.gz`);
  * `tfds:<name>[/<config>]:<split>[:<text_field>]`, e.g. `tfds:wikipedia/20230601.en:train`;
    each record is a document, split into sentences here.
Every reader takes `process_index` / `process_count` and yields only this host's documents.
"""

import ast
import functools
import glob
import gzip
import hashlib
import os
import re
import sys
import sysconfig
import zlib
from typing import Iterator

Document = list[str]

# Sentence ends: ., ! or ? (optionally closed by quotes or brackets) before a capital or digit.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
# Skipped stdlib folders: tests (code, not prose) and tools that are not the library.
_SKIPPED_DIRS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "turtledemo",
                 "__pycache__", "ensurepip", "pydoc_data"}


# Part of the cache name: bump it when the corpus's construction changes.
CORPUS_VERSION = 2


def cache_dir() -> str:
  """`$BERTLAB_CACHE`, else `~/.cache/bertlab`: the built default corpus and vocabularies."""
  path = os.environ.get("BERTLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                         "bertlab")
  os.makedirs(path, exist_ok=True)
  return path


def split_sentences(paragraph: str) -> list[str]:
  text = " ".join(paragraph.split())
  return [s for s in _SENTENCE_END.split(text) if s]


def _prose_paragraphs(text: str) -> Iterator[str]:
  """Paragraphs of a docstring or topic, without its code: doctest lines and indented blocks."""
  for block in re.split(r"\n\s*\n", text):
    lines = [l for l in block.splitlines()
             if l.strip() and not l.startswith((" ", "\t", ">>>", "..."))]
    if lines and sum(c.isalpha() or c == " " for c in "".join(lines)) > 0.8 * len("".join(lines)):
      yield " ".join(lines)


def _document(texts: list[str]) -> Document:
  return [s for text in texts for p in _prose_paragraphs(text) for s in split_sentences(p)]


def _stdlib_documents() -> Iterator[Document]:
  """One document per docstring (module, class or function) and per pydoc topic.

  A docstring is one coherent text: its summary line first, then the details. A module's
  docstrings concatenated are not (one function's text runs into the next), and on such
  documents sentence-order prediction has nothing to learn.
  """
  root = sysconfig.get_paths()["stdlib"]
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
    for name in sorted(f for f in files if f.endswith(".py")):
      try:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
          tree = ast.parse(f.read())
      except (SyntaxError, UnicodeDecodeError, ValueError):
        continue
      for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
          docstring = ast.get_docstring(node)
          if docstring:
            yield _document([docstring])
  from pydoc_data.topics import topics
  for key in sorted(topics):
    yield _document([topics[key]])


def default_corpus_path() -> str:
  """Builds (once per Python version) and returns the embedded corpus as a BERT-format file."""
  tag = hashlib.sha1(sys.version.encode()).hexdigest()[:8]
  path = os.path.join(cache_dir(), f"default_corpus{CORPUS_VERSION}-py{sys.version_info[0]}"
                      f"{sys.version_info[1]}-{tag}.txt")
  if not os.path.exists(path):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      for doc in _stdlib_documents():
        if len(doc) >= 2:  # a pair objective needs two sentences
          f.write("\n".join(doc) + "\n\n")
    os.replace(tmp, path)  # atomic: concurrent first uses never read half a file
  return path


def _text_files(pattern: str) -> list[str]:
  files = sorted(f for p in pattern.split(",") for f in glob.glob(os.path.expanduser(p)))
  if not files:
    raise FileNotFoundError(
        f"data.source {pattern!r} matches no file. Give a path or glob of text files (one "
        "sentence per line, a blank line between documents), `default` for the embedded corpus, "
        "or `tfds:<name>:<split>`.")
  return files


def file_stats(files: list[str]) -> list:
  """What identifies text files (the keys of cached vocabularies and examples): each one's
  name, size and a digest of its bytes, so a corpus copied anew (new modification times, as a
  fresh machine's data has) or moved finds what was built from it, and an edited one does not."""
  stats = [(p, os.stat(p)) for p in files]
  return [[os.path.basename(p), s.st_size,
           _file_digest(os.path.abspath(p), s.st_ino, s.st_size, s.st_mtime_ns)]
          for p, s in stats]


@functools.lru_cache(maxsize=None)
def _file_digest(path: str, inode: int, size: int, mtime_ns: int) -> str:
  """sha256 of a file, read once per process while its inode, size and modification time
  stand (a large corpus is keyed several times a run)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      digest.update(block)
  return digest.hexdigest()


_BINARY_PROBE = 8000


def _read_text_file(path: str) -> Iterator[Document]:
  """The documents of one text file; a file that is not UTF-8 text, or a cut-off .gz, is named
  with the line where reading stopped (a glob of many files must say which one)."""
  opener = gzip.open if path.endswith(".gz") else open
  doc: Document = []
  line_number, read = 0, 0
  try:
    with opener(path, "rt", encoding="utf-8") as f:
      for line_number, line in enumerate(f, 1):
        # A NUL near the start marks a binary file (git's test: the first 8,000 bytes); a
        # stray one later in real text is deleted by the tokenizer's cleaning, as BERT does.
        if read < _BINARY_PROBE and "\x00" in line[:_BINARY_PROBE - read]:
          raise ValueError(f"data.source file {path}, line {line_number}: a NUL byte; this is "
                           "a binary file, not text (one sentence per line).")
        read += len(line)
        line = line.strip()
        if line:
          doc.append(line)
        elif doc:
          yield doc
          doc = []
  except UnicodeDecodeError as error:
    raise ValueError(f"data.source file {path}: not UTF-8 text ({error.reason}: "
                     f"{error.object[max(error.start - 20, 0):error.end + 20]!r}). Convert it "
                     "to UTF-8, or leave it out of the glob.") from None
  except (EOFError, gzip.BadGzipFile, zlib.error) as error:
    raise ValueError(f"data.source file {path}: the gzip stream is cut off or corrupt after "
                     f"line {line_number} ({error}). Copy the file again.") from None
  if doc:
    yield doc


def _tfds_documents(spec: str, process_index: int, process_count: int) -> Iterator[Document]:
  import tensorflow_datasets as tfds
  parts = spec.split(":")
  if len(parts) not in (2, 3):
    raise ValueError(f"data.source {spec!r}: expected tfds:<name>[/<config>]:<split>[:<field>].")
  name, split, field = parts[0], parts[1], parts[2] if len(parts) == 3 else "text"
  host_split = tfds.even_splits(split, n=process_count)[process_index]
  for record in tfds.as_numpy(tfds.load(name, split=host_split, shuffle_files=False)):
    if field not in record:
      raise KeyError(f"{name} has no text field {field!r}; its fields: {sorted(record)}. Name it "
                     f"as tfds:{name}:{split}:<field>.")
    text = record[field].decode("utf-8")
    doc = [s for p in text.split("\n") for s in split_sentences(p)]
    if doc:
      yield doc


def read_documents(source: str, process_index: int = 0,
                   process_count: int = 1) -> Iterator[Document]:
  """This host's documents of `source`, in a fixed order.

  Files are dealt to hosts when there are at least as many as hosts, else documents are.
  """
  if source.startswith("tfds:"):
    yield from _tfds_documents(source[len("tfds:"):], process_index, process_count)
    return
  files = [default_corpus_path()] if source == "default" else _text_files(source)
  by_file = len(files) >= process_count
  index = 0
  for file_number, path in enumerate(files):
    if by_file and file_number % process_count != process_index:
      continue
    for doc in _read_text_file(path):
      if by_file or index % process_count == process_index:
        yield doc
      index += 1
