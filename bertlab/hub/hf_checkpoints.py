"""Hugging Face directories both ways: transformers' tensors into bertlab's parameters (per
the one table in layouts.py) and back, with the tokenizer files and config.json.

Every weight of the checkpoint must land in the model and every parameter of the model must
come from the checkpoint: unknown, missing or mis-shaped weights raise `CheckpointMismatch`
naming them, so nothing is silently left at its initial value.
"""

import json
import os
import pickle

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from bertlab import files
from bertlab.hub import layouts, tokenizer_files
from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import longest_sequence
from bertlab.models.pretraining import PretrainingModel
from bertlab.models.build import abstract_params


class CheckpointMismatch(ValueError):
  """The checkpoint's weights do not fit the model: the message lists each difference."""


def _read_tensors(path: str) -> dict[str, np.ndarray]:
  """All tensors of a Hugging Face directory: safetensors (sharded or not) or a .bin."""
  def from_safetensors(file):
    from safetensors import SafetensorError, safe_open
    try:
      with safe_open(file, framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
      raise ValueError(f"{file} is not a readable safetensors file ({error}): truncated or "
                       "not safetensors. Download or save it again.") from None

  single = os.path.join(path, "model.safetensors")
  index = os.path.join(path, "model.safetensors.index.json")
  binary = os.path.join(path, "pytorch_model.bin")
  if os.path.exists(single):
    return from_safetensors(single)
  if os.path.exists(index):
    shards = sorted(set(files.read_json(index)["weight_map"].values()))
    tensors = {}
    for file in shards:
      tensors.update(from_safetensors(os.path.join(path, file)))
    return tensors
  if os.path.exists(binary):
    try:
      import torch
    except ImportError as e:
      raise ImportError(f"Reading {binary} needs torch (pip install torch==2.13.0), or "
                        "convert it to model.safetensors.") from e
    # weights_only: a pickle could run arbitrary code; this reads tensors and nothing else.
    try:
      state = torch.load(binary, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
      raise ValueError(
          f"{binary} holds pickled code besides tensors, and bertlab will not run it (torch's "
          "advice to retry with weights_only=False would execute it). If you trust its source, "
          "convert it once in a separate process: transformers' "
          "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True) writes "
          "model.safetensors, which bertlab reads.") from None
    except (RuntimeError, EOFError, OSError) as error:
      raise ValueError(f"{binary} is not a readable PyTorch checkpoint ({error}): truncated "
                       "or not a torch file.") from None
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in state.items()}
  raise FileNotFoundError(f"{path} has no model.safetensors, model.safetensors.index.json "
                          "or pytorch_model.bin.")


def _normalise_keys(tensors: dict, base: str) -> dict:
  """Old TF-ported names (LayerNorm.gamma/beta) and checkpoints of a bare base model."""
  renamed = {}
  for key, value in tensors.items():
    key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
        "LayerNorm.beta", "LayerNorm.bias")
    renamed[key] = value
  if not any(k.startswith(base + ".") for k in renamed):
    renamed = {f"{base}.{k}" if k.split(".")[0] in ("embeddings", "encoder", "pooler",
                                                   "embeddings_project", "layers",
                                                   "final_norm") else k: v
               for k, v in renamed.items()}
  return renamed


def _heads_in(tensors: dict, model_type: str) -> tuple[tuple[str, ...], bool]:
  heads = tuple(
      head for head in ("mlm", "sentence", "rtd")
      if any(hf + suffix in tensors
             for hf in layouts.HEADS[head].get(model_type, {}).values()
             for suffix in ("", ".weight")))
  base = layouts.BASE_PREFIX[model_type]
  use_pooler = any(k.startswith(f"{base}.pooler.") for k in tensors)
  return heads, use_pooler


def params_from_tensors(config: ModelConfig, tensors: dict[str, np.ndarray]) -> dict:
  """Fills every parameter of `config`'s model from `tensors` (HF keys), or raises."""
  entries = layouts.layout(config)
  shapes = nn.unbox(abstract_params(PretrainingModel(config)))
  model_type = layouts.hf_model_type(config)
  problems, used, rows = [], set(), {}
  for entry in entries:
    target = shapes[entry.path]
    shape = target.shape[1:] if entry.copy is not None else target.shape
    if entry.hf_key not in tensors:
      problems.append(f"missing: {entry.hf_key} (for {entry.path}, shape {shape})")
      continue
    tensor = np.asarray(tensors[entry.hf_key])
    used.add(entry.hf_key)
    expected = layouts.hf_shape(entry, shape)
    expected = (expected[0] * entry.parts,) + expected[1:]  # a fused tensor holds all parts
    if tensor.shape != expected:
      problems.append(f"shape: {entry.hf_key} is {tuple(tensor.shape)} in the checkpoint; "
                      f"{entry.path} needs {expected}")
      continue
    tensor = np.split(tensor, entry.parts)[entry.part]
    value = layouts.to_bertlab(entry, tensor, shape).astype(target.dtype)
    rows.setdefault(entry.path, {})[entry.copy] = value
  for alias, source in layouts.TIED_ALIASES.get(model_type, {}).items():
    if alias in tensors:
      used.add(alias)
      if source in tensors and not np.array_equal(tensors[alias], tensors[source]):
        problems.append(f"untied: {alias} differs from {source}, but bertlab ties them")
  unexpected = [k for k in tensors if k not in used and not k.endswith(layouts.IGNORED_SUFFIXES)]
  problems += [f"unexpected: {k} {tuple(np.shape(tensors[k]))}" for k in sorted(unexpected)]
  if problems:
    raise CheckpointMismatch(
        f"The checkpoint does not fit a {model_type} model with hidden_size="
        f"{config.hidden_size}, num_layers={config.num_layers}, vocab_size={config.vocab_size}:"
        "\n  " + "\n  ".join(problems))
  flat = {path: np.stack([r[j] for j in sorted(r)]) if None not in r else r[None]
          for path, r in rows.items()}
  return traverse_util.unflatten_dict(flat, sep="/")


def load(path: str, dtype: str = "float32"):
  """(model, params) of a Hugging Face directory (config.json + safetensors or a .bin)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: no such directory, and no TF checkpoint with "
                            f"that prefix ({path}.index).")
  config_file = os.path.join(path, "config.json")
  if not os.path.exists(config_file):
    raise FileNotFoundError(f"{path} holds no config.json: pass a Hugging Face directory, "
                            "a TF checkpoint (with bert_config.json / albert_config.json) or "
                            "a bertlab workdir.")
  hf = files.read_json(config_file)
  model_type = hf.get("model_type")
  if model_type not in layouts.HF_MODEL_TYPES:
    raise ValueError(f"{config_file}: model_type {model_type!r} is not supported; bertlab "
                     f"loads {', '.join(layouts.HF_MODEL_TYPES)}.")
  tensors = _normalise_keys(_read_tensors(path), layouts.BASE_PREFIX[model_type])
  return from_hf_tensors(hf, tensors, dtype)


def from_hf_tensors(hf: dict, tensors: dict, dtype: str = "float32"):
  heads, use_pooler = _heads_in(tensors, hf["model_type"])
  config = layouts.config_from_hf(hf, heads, use_pooler).replace(dtype=dtype)
  params = jax.tree.map(jnp.asarray, params_from_tensors(config, tensors))
  return PretrainingModel(config), params


def tensors_from_params(config: ModelConfig, params, entries=None) -> dict[str, np.ndarray]:
  """HF tensors of `params` per `entries` (default: the pretraining model's layout)."""
  flat = traverse_util.flatten_dict(nn.unbox(params), sep="/")
  entries = layouts.layout(config) if entries is None else entries
  missing = sorted(set(flat) - {e.path for e in entries})
  if missing:
    raise CheckpointMismatch("These parameters have no place in a Hugging Face "
                             f"{layouts.hf_model_type(config)} checkpoint: {missing}")
  pieces = {}
  for entry in entries:
    value = np.asarray(jax.device_get(flat[entry.path]), np.float32)
    if entry.copy is not None:
      value = value[entry.copy]
    pieces.setdefault(entry.hf_key, {})[entry.part] = layouts.to_hf(entry, value)
  return {key: parts[0] if len(parts) == 1 else np.concatenate([parts[i] for i in sorted(parts)])
          for key, parts in pieces.items()}


def save_pretrained(model, params, path: str, tokenizer=None) -> None:
  """Writes config.json + model.safetensors that transformers' from_pretrained loads, and
  with `tokenizer` (a bertlab Tokenizer) the files AutoTokenizer reads for it."""
  config = model.config
  _write_hf_directory(path, config, layouts.config_to_hf(config),
                      tensors_from_params(config, params.get("params", params)), tokenizer)


def save_finetuned(config: ModelConfig, head: str, num_labels: int, labels, params, path: str,
                   tokenizer=None) -> None:
  """A fine-tuned model (bertlab/models/finetuning.py) as transformers' task class:
  ...ForSequenceClassification, ...ForQuestionAnswering or ...ForTokenClassification."""
  entries = layouts.finetuning_layout(config, head)
  _write_hf_directory(path, config, layouts.finetuned_config_to_hf(config, head, num_labels,
                                                                   labels),
                      tensors_from_params(config, params.get("params", params), entries),
                      tokenizer)


def _write_hf_directory(path: str, config: ModelConfig, hf: dict, tensors: dict, tokenizer):
  from safetensors.numpy import save_file
  if tokenizer is not None:
    if tokenizer.vocab_size > config.vocab_size:
      raise ValueError(f"The tokenizer has {tokenizer.vocab_size} pieces, more than the "
                       f"model's vocab_size {config.vocab_size}: not this model's tokenizer.")
    if config.positions_from_padding and tokenizer.pad_id != config.pad_token_id:
      raise ValueError(f"The tokenizer pads with id {tokenizer.pad_id}, but the model's "
                       f"positions count from pad_token_id={config.pad_token_id}: not this "
                       "model's tokenizer.")
    # The special ids transformers reads from config.json: the vocabulary's, not a default's.
    hf.update(pad_token_id=tokenizer.pad_id, cls_token_id=tokenizer.cls_id,
              sep_token_id=tokenizer.sep_id)
    if tokenizer.kind == "bpe":
      hf.update(bos_token_id=tokenizer.cls_id, eos_token_id=tokenizer.sep_id)
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(hf, f, indent=2, sort_keys=True)
  save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
  if tokenizer is not None:
    tokenizer_files.save_tokenizer(tokenizer, path, longest_sequence(config))
