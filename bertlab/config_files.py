"""Config files by path, and dotted overrides: what `--config` and `--config.<key>=` do, for
code that launches runs itself (the sweep runner, notebooks).

A path such as `configs/albert.py:tiny` is read from the current directory, else from the
bertlab checkout this package was installed from (`pip install -e .`), so notebooks and
experiment files name configs the same way the command line does.
"""

import ast
import copy
import importlib.util
import os
from typing import Any

import ml_collections

from bertlab.models.config import unknown_key_error

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve(path: str) -> str:
  """`path` from the current directory, else from the bertlab checkout."""
  for candidate in (path, os.path.join(PROJECT_ROOT, path)):
    if os.path.exists(candidate):
      return candidate
  raise FileNotFoundError(
      f"{path!r} is neither in the current directory nor in the bertlab checkout at "
      f"{PROJECT_ROOT}. configs/ and experiments/ ship with the repository: clone it and "
      "install it with `pip install -e .`, or pass the file's full path.")


def load_module(path: str, prefix: str):
  """Imports a Python file (a config or an experiment) by path."""
  path = resolve(path)
  name = f"{prefix}_{os.path.splitext(os.path.basename(path))[0]}"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load(spec: str) -> ml_collections.ConfigDict:
  """`"configs/albert.py:tiny"` -> that file's `get_config("tiny")`, locked as on the command
  line (an unknown key fails instead of adding itself)."""
  path, _, arg = spec.partition(":")
  config = load_module(path, "config").get_config(arg or None)
  config.lock()
  return config


def _leaf(config: ml_collections.ConfigDict, key: str) -> tuple[ml_collections.ConfigDict, str]:
  """The section holding dotted `key` and the key's last part, naming valid keys if absent."""
  *sections, last = key.split(".")
  node, where = config, ""
  for part in sections:
    if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
      valid = tuple(k for k, v in node.items() if isinstance(v, ml_collections.ConfigDict))
      raise unknown_key_error(part, valid, f"config section {where}")
    node, where = node[part], f"{where}{part}."
  if last not in node:
    raise unknown_key_error(last, tuple(node.keys()), where)
  return node, last


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with `{"model.embedding_size": 64, ...}` set; types as the command line
  checks them (an int where a float is expected is taken, a string for an int is not)."""
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    node, last = _leaf(config, key)
    current = node[last]
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
      value = tuple(value)
    try:
      node[last] = value
    except TypeError as error:
      raise TypeError(f"{key}={value!r}: {error}") from None
  return config


def parse_set(items: list[str]) -> dict:
  """`["train.steps=20", "data.masking=span"]` -> overrides, values read as Python literals."""
  overrides = {}
  for item in items:
    key, sep, text = item.partition("=")
    if not sep:
      raise SystemExit(f"--set {item!r}: expected key=value, e.g. --set train.steps=20.")
    try:
      overrides[key] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      overrides[key] = text
  return overrides


def override_flags(overrides: dict[str, Any]) -> list[str]:
  """The `--config.<key>=<value>` flags that set `overrides` on the command line."""
  flags = []
  for key, value in overrides.items():
    if isinstance(value, (tuple, list)):
      text = "(" + ",".join(repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    else:
      text = str(value)
    flags.append(f"--config.{key}={text}")
  return flags


ABSENT = "(absent)"


def flat_items(tree: dict, prefix: str = "") -> dict[str, Any]:
  """A nested dict (a config's JSON) as dotted keys: `{"train.steps": 20, ...}`."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(flat_items(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def differences(stored: dict, new: dict) -> dict[str, tuple[Any, Any]]:
  """`dotted key -> (stored, new)` for each leaf the two nested dicts disagree on; a key only
  one side has shows `ABSENT` on the other. What an error about a changed config names."""
  stored, new = flat_items(stored), flat_items(new)
  return {key: (stored.get(key, ABSENT), new.get(key, ABSENT))
          for key in sorted(stored.keys() | new.keys())
          if stored.get(key, ABSENT) != new.get(key, ABSENT)}


JOB_KINDS = ("finetune", "electra", "pretraining")


def job_kind(config) -> str:
  """What a config runs, from the sections it has: "finetune" (a `finetune` section),
  "electra" (generator + discriminator pretraining) or "pretraining" (one model). The one
  place that decides it."""
  if "finetune" in config:
    return "finetune"
  return "electra" if "electra" in config else "pretraining"
