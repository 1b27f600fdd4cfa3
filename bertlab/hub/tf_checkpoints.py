"""Original TF checkpoints of google-research bert, albert and electra.

Variables are read with `tf.train.load_checkpoint`, renamed to the Hugging Face keys of
`layouts` (TF kernels are [in, out], so they are transposed to torch's [out, in]) and then
loaded by the same code as a Hugging Face directory, with the same errors for mismatches.
"""

import glob
import os
import re

import numpy as np

from bertlab import files
from bertlab.hub.hf_checkpoints import from_hf_tensors

# Optimizer slots and counters in pretraining checkpoints: not model weights.
OPTIMIZER_VARIABLE = re.compile(r"(adam_[mv]|AdamWeightDecayOptimizer|LAMB|global_step)")

# (TF pattern, HF replacement) applied in order; the first that matches wins.
ALBERT_RULES = [
    (r"^bert/embeddings/(\w+_embeddings)$", r"albert.embeddings.\1.weight"),
    (r"^bert/embeddings/LayerNorm/", r"albert.embeddings.LayerNorm."),
    (r"^bert/encoder/embedding_hidden_mapping_in/", r"albert.encoder.embedding_hidden_mapping_in."),
    (r"^bert/encoder/transformer/group_(\d+)/inner_group_(\d+)/",
     r"albert.encoder.albert_layer_groups.\1.albert_layers.\2."),
    (r"^bert/pooler/dense/", r"albert.pooler."),
    (r"^cls/predictions/transform/dense/", r"predictions.dense."),
    (r"^cls/predictions/transform/LayerNorm/", r"predictions.LayerNorm."),
    (r"^cls/predictions/output_bias$", r"predictions.bias"),
    (r"^cls/seq_relationship/output_", r"sop_classifier.classifier.output_"),
]
ALBERT_LAYER_RULES = [
    (r"attention_1/self/(query|key|value)/", r"attention.\1."),
    (r"attention_1/output/dense/", r"attention.dense."),
    (r"ffn_1/intermediate/output/dense/", r"ffn_output."),
    (r"ffn_1/intermediate/dense/", r"ffn."),
    (r"LayerNorm_1/", r"full_layer_layer_norm."),
    (r"LayerNorm/", r"attention.LayerNorm."),
]
BERT_RULES = [
    (r"^(bert|electra)/embeddings/(\w+_embeddings)$", r"\1.embeddings.\2.weight"),
    (r"^(bert|electra)/encoder/layer_(\d+)/", r"\1.encoder.layer.\2."),
    (r"^cls/predictions/output_bias$", r"cls.predictions.bias"),
    (r"^cls/seq_relationship/output_", r"cls.seq_relationship.output_"),
    (r"^discriminator_predictions/dense_1/", r"discriminator_predictions.dense_prediction."),
]
LEAF_NAMES = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias",
              "output_weights": "weight", "output_bias": "bias"}


def is_tf_checkpoint(path: str) -> bool:
  return os.path.exists(path + ".index") or (
      os.path.isdir(path) and (bool(glob.glob(os.path.join(path, "*.index")))))


def _checkpoint_prefix(path: str) -> str:
  if os.path.exists(path + ".index"):
    return path
  import tensorflow as tf
  latest = tf.train.latest_checkpoint(path)
  if latest:
    return latest
  return sorted(glob.glob(os.path.join(path, "*.index")))[-1][: -len(".index")]


def _apply(rules, name):
  for pattern, replacement in rules:
    if re.search(pattern, name):
      return re.sub(pattern, replacement, name)
  return name


def hf_key(tf_name: str, model_type: str) -> tuple[str, bool]:
  """The Hugging Face key of a TF variable, and whether its value must be transposed."""
  if model_type == "albert":
    name = _apply(ALBERT_RULES, tf_name)
    if ".albert_layers." in name:
      head, tail = name.rsplit(".albert_layers.", 1)
      index, rest = tail.split(".", 1)
      name = f"{head}.albert_layers.{index}." + _apply(ALBERT_LAYER_RULES, rest)
  else:
    name = _apply(BERT_RULES, tf_name)
  name = name.replace("/", ".")
  stem, _, leaf = name.rpartition(".")
  if leaf in LEAF_NAMES and stem:
    return f"{stem}.{LEAF_NAMES[leaf]}", leaf == "kernel"
  return name, False


def _model_type(names) -> str:
  if any(n.startswith("electra/") for n in names):
    return "electra"
  if any("/transformer/group_" in n for n in names):
    return "albert"
  return "bert"


def _read_json_config(directory: str) -> dict | None:
  for file in ("config.json", "bert_config.json", "albert_config.json"):
    candidate = os.path.join(directory, file)
    if os.path.exists(candidate):
      return files.read_json(candidate)
  return None


def _infer_electra_config(tensors: dict) -> dict:
  """ELECTRA ships no config file; its sizes are read off the weights (64-wide heads)."""
  vocab, embed = tensors["electra.embeddings.word_embeddings.weight"].shape
  hidden, _ = tensors["electra.encoder.layer.0.attention.self.query.weight"].shape
  inter = tensors["electra.encoder.layer.0.intermediate.dense.weight"].shape[0]
  layers = len({k.split(".")[3] for k in tensors if k.startswith("electra.encoder.layer.")})
  return dict(vocab_size=vocab, embedding_size=embed, hidden_size=hidden,
              num_hidden_layers=layers, num_attention_heads=hidden // 64,
              intermediate_size=inter,
              max_position_embeddings=tensors[
                  "electra.embeddings.position_embeddings.weight"].shape[0],
              type_vocab_size=tensors["electra.embeddings.token_type_embeddings.weight"].shape[0])


def load(path: str, dtype: str = "float32"):
  """(model, params) from a TF checkpoint prefix or a directory holding one.

  The sizes come from bert_config.json / albert_config.json / config.json beside it; ELECTRA's
  are read off its weights. For an ELECTRA pretraining checkpoint this loads the
  discriminator (the generator's variables are left out).
  """
  import tensorflow as tf

  prefix = _checkpoint_prefix(path)
  try:
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n in reader.get_variable_to_shape_map() if not OPTIMIZER_VARIABLE.search(n)]
    model_type = _model_type(names)
    if model_type == "electra":
      names = [n for n in names if not n.startswith(("generator/", "generator_predictions/"))]
    tensors = {}
    for name in names:
      key, transpose = hf_key(name, model_type)
      value = np.asarray(reader.get_tensor(name))
      tensors[key] = value.T if transpose else value
  except (tf.errors.OpError, IndexError) as error:  # TF says IndexError for short data
    shards = sorted(glob.glob(prefix + ".*"))
    detail = (str(error).strip().splitlines() or [""])[0][:300]
    raise ValueError(
        f"The TF checkpoint {prefix} does not read ({type(error).__name__}: {detail}); its files {', '.join(map(os.path.basename, shards))} "
        "may be truncated or from different saves. Download them again.") from None
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  hf = _read_json_config(directory)
  if hf is None:
    if model_type != "electra":
      raise FileNotFoundError(
          f"No bert_config.json, albert_config.json or config.json beside {prefix}: "
          "put the config that came with the checkpoint in the same directory.")
    hf = _infer_electra_config(tensors)
  hf = dict(hf, model_type=hf.get("model_type", model_type))
  if hf.get("hidden_act", "gelu") == "gelu":
    # The gelu of google-research bert/albert/electra modeling.py is the tanh approximation.
    hf["hidden_act"] = "gelu_new"
  return from_hf_tensors(hf, tensors, dtype)
