"""Shared by the data tests: the reference data folder and varied text for tokenizer parity."""

import os

import pytest

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                           "shared", "data")


def shared_file(*parts: str) -> str:
  """A file of ../shared/data, or skip: a user's clone does not have that folder."""
  path = os.path.join(SHARED_DATA, *parts)
  if not os.path.exists(path):
    pytest.skip(f"{os.path.join(*parts)} needs ../shared/data (present in CI, not in a clone)")
  return path


# Accents, punctuation, CJK, numbers, unknown words, control characters, odd white space.
VARIED = [
    "Héllo, wörld! It's 3.14159 and 1,000,000 dollars.", "北京是中国的首都。東京タワー",
    "naïve café résumé ÉCOLE Ångström", "unbelievably xyzzyqwerty tokenization",
    "Ünïcödé\ttabs  and\u00a0nbsp", "a\u200bb zero width", "emoji 😀 here 🚀!",
    "don't stop-believing (ok)? [yes] {no} <maybe>", "Ωmega ½ ™ ﬁ ligature №5",
    "control\x00char and \ufffd replacement", "``quoted'' and \"double\" and 'single'",
    "E=mc^2; x_1 + y_2 >= 3*z / 4 % 5", "https://example.com/a?b=c&d=e#f user@mail.org",
    "  leading and trailing spaces  ", "UPPER lower MiXeD", "1st 2nd 3rd 4th 10,000.50 -7",
    "Straße İstanbul ǅemal ﬀ", "Ｆｕｌｌ ｗｉｄｔｈ　ｔｅｘｔ", "Привет, мир! Γειά σου κόσμε",
    "مرحبا بالعالم", "नमस्ते दुनिया", "ok...what?!", "tab\tnew\nline", "",
]


def sentences_from_text(n: int = 300) -> list[str]:
  """VARIED plus up to n lines of real prose when ../shared/data is present."""
  lines = list(VARIED)
  path = os.path.join(SHARED_DATA, "wikitext-2", "wiki.test.raw")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      lines += [l.strip() for l in f if len(l.strip()) > 20][:n]
  return lines


def write_corpus(path: str, docs: list[list[str]]) -> str:
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n\n".join("\n".join(doc) for doc in docs) + "\n")
  return path
