"""Where each bertlab parameter lives in a Hugging Face checkpoint, per model_type.

One table per family, as `Entry(path, hf_key, kind)` rows; loading and saving both read it,
so the two directions cannot drift apart.
"""

import dataclasses

import numpy as np

from bertlab.models.config import ModelConfig
from bertlab.models.encoder import copy_of_layer

HF_MODEL_TYPES = ("bert", "albert", "roberta", "electra", "modernbert")
BASE_PREFIX = {"bert": "bert", "spanbert": "bert", "albert": "albert", "roberta": "roberta",
               "electra": "electra", "modernbert": "model"}

# Per-layer sub-layer names: bertlab path under block/ -> HF key under the layer prefix.
BERT_LAYER = {
    "attention/query": "attention.self.query", "attention/key": "attention.self.key",
    "attention/value": "attention.self.value", "attention/output": "attention.output.dense",
    "attention/LayerNorm": "attention.output.LayerNorm", "ffn/intermediate": "intermediate.dense",
    "ffn/output": "output.dense", "ffn/LayerNorm": "output.LayerNorm",
}
ALBERT_LAYER = {
    "attention/query": "attention.query", "attention/key": "attention.key",
    "attention/value": "attention.value", "attention/output": "attention.dense",
    "attention/LayerNorm": "attention.LayerNorm", "ffn/intermediate": "ffn",
    "ffn/output": "ffn_output", "ffn/LayerNorm": "full_layer_layer_norm",
}
# ModernBERT: pre-norm layers, one fused Wqkv (query, key, value stacked on its output axis)
# and Wi (GLU: activated half, then gate); layer 0 has no attn_norm.
MODERNBERT_LAYER = {
    "attention_norm": "attn_norm", "attention/query": "attn.Wqkv", "attention/key": "attn.Wqkv",
    "attention/value": "attn.Wqkv", "attention/output": "attn.Wo", "ffn/LayerNorm": "mlp_norm",
    "ffn/intermediate": "mlp.Wi", "ffn/output": "mlp.Wo",
}
FUSED_PART = {"attention/query": 0, "attention/key": 1, "attention/value": 2}
# Input axes of each kernel in bertlab's layout (the attention output reads heads x kv).
KERNEL_INPUT_AXES = {"attention/output": 2}

# Head parameters: bertlab module -> HF module, per family.
HEADS = {
    "mlm": {
        "bert": {"mlm/transform": "cls.predictions.transform.dense",
                 "mlm/LayerNorm": "cls.predictions.transform.LayerNorm",
                 "mlm/bias": "cls.predictions.bias"},
        "albert": {"mlm/transform": "predictions.dense", "mlm/LayerNorm": "predictions.LayerNorm",
                   "mlm/bias": "predictions.bias"},
        "roberta": {"mlm/transform": "lm_head.dense", "mlm/LayerNorm": "lm_head.layer_norm",
                    "mlm/bias": "lm_head.bias"},
        "electra": {"mlm/transform": "generator_predictions.dense",
                    "mlm/LayerNorm": "generator_predictions.LayerNorm",
                    "mlm/bias": "generator_lm_head.bias"},
        "modernbert": {"mlm/transform": "head.dense", "mlm/LayerNorm": "head.norm",
                       "mlm/bias": "decoder.bias"},
    },
    "sentence": {
        "bert": {"sentence/classifier": "cls.seq_relationship"},
        "albert": {"sentence/classifier": "sop_classifier.classifier"},
    },
    "rtd": {
        "electra": {"rtd/dense": "discriminator_predictions.dense",
                    "rtd/prediction": "discriminator_predictions.dense_prediction"},
    },
}
# Copies of tied weights that some checkpoints store (alias -> the weight it copies): the
# decoder is the word embeddings and its bias is the head's bias.
TIED_ALIASES = {
    "bert": {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
             "cls.predictions.decoder.bias": "cls.predictions.bias"},
    "albert": {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
               "predictions.decoder.bias": "predictions.bias"},
    "roberta": {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
                "lm_head.decoder.bias": "lm_head.bias"},
    "electra": {"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"},
    "modernbert": {"decoder.weight": "model.embeddings.tok_embeddings.weight"},
}
# Buffers, not weights.
IGNORED_SUFFIXES = ("position_ids", "token_type_ids")

HF_ARCHITECTURES = {
    ("bert", ("mlm", "sentence")): "BertForPreTraining", ("bert", ("mlm",)): "BertForMaskedLM",
    ("bert", ()): "BertModel",
    ("albert", ("mlm", "sentence")): "AlbertForPreTraining",
    ("albert", ("mlm",)): "AlbertForMaskedLM", ("albert", ()): "AlbertModel",
    ("roberta", ("mlm",)): "RobertaForMaskedLM", ("roberta", ()): "RobertaModel",
    ("electra", ("rtd",)): "ElectraForPreTraining", ("electra", ("mlm",)): "ElectraForMaskedLM",
    ("electra", ()): "ElectraModel",
    ("modernbert", ("mlm",)): "ModernBertForMaskedLM", ("modernbert", ()): "ModernBertModel",
}


@dataclasses.dataclass(frozen=True)
class Entry:
  path: str  # bertlab parameter path, "/"-joined
  hf_key: str  # Hugging Face state-dict key
  kind: str  # embedding | kernel | bias | scale
  copy: int | None = None  # row of a stacked (scanned) parameter
  input_axes: int = 1
  # A slice of a fused HF tensor: part `part` of `parts` equal pieces along its first axis.
  part: int = 0
  parts: int = 1


def hf_model_type(config: ModelConfig) -> str:
  return "bert" if config.family == "spanbert" else config.family


def _dense(path, hf, bias=True, **kw):
  return [Entry(f"{path}/kernel", f"{hf}.weight", "kernel", **kw)] + (
      [Entry(f"{path}/bias", f"{hf}.bias", "bias", **kw)] if bias else [])


def _norm(path, hf, bias=True, **kw):
  return [Entry(f"{path}/scale", f"{hf}.weight", "scale", **kw)] + (
      [Entry(f"{path}/bias", f"{hf}.bias", "bias", **kw)] if bias else [])


def _module(path, hf, dense_bias=True, norm_bias=True, **kw):
  if path.endswith(("LayerNorm", "_norm")):
    return _norm(path, hf, norm_bias, **kw)
  if path.endswith("/bias"):
    return [Entry(path, hf, "bias", **kw)]
  return _dense(path, hf, dense_bias, **kw)


def _modernbert_layout(config: ModelConfig) -> list[Entry]:
  """ModernBertModel / ModernBertForMaskedLM: one set of weights per layer."""
  needed = dict(norm_position="pre", first_attention_norm=False, feed_forward="glu",
                norm_kind="layer_norm", position_embedding="rotary", type_vocab_size=0,
                use_pooler=False, embed_size=config.hidden_size)
  if config.groups != config.num_layers:
    raise ValueError("A modernbert checkpoint has one set of weights per layer; "
                     f"num_hidden_groups={config.groups} has no such layout.")
  wrong = [f"model.{k}={getattr(config, k)!r} (needs {v!r})" for k, v in needed.items()
           if getattr(config, k) != v]
  if wrong:
    raise ValueError("A modernbert checkpoint holds ModernBERT's architecture; this config "
                     "differs: " + "; ".join(wrong) + ". Start from configs/modernbert.py.")
  biases = dict(dense_bias=config.dense_bias, norm_bias=config.norm_bias)
  entries = [Entry("encoder/embeddings/word_embeddings/embedding",
                   "model.embeddings.tok_embeddings.weight", "embedding")]
  entries += _norm("encoder/embeddings/LayerNorm", "model.embeddings.norm", config.norm_bias)
  for path, hf in MODERNBERT_LAYER.items():
    copies = copy_of_layer(config, path.split("/")[0])
    for j in range(len(np.unique(copies))):
      # The checkpoint's layer: the first that really uses copy j (attn_norm: from layer 1).
      layer = int(np.flatnonzero(copies == j)[-1 if path == "attention_norm" else 0])
      fused = dict(part=FUSED_PART[path], parts=3) if path in FUSED_PART else {}
      entries += _module(f"encoder/layers/block/{path}", f"model.layers.{layer}.{hf}", copy=j,
                         input_axes=KERNEL_INPUT_AXES.get(path, 1), **fused, **biases)
  entries += _norm("encoder/final_norm", "model.final_norm", config.norm_bias)
  for head in config.heads:
    table = HEADS.get(head, {}).get("modernbert")
    if table is None:
      raise ValueError(f"A Hugging Face modernbert checkpoint has no place for the {head!r} "
                       "head; drop it from model.heads to export the rest.")
    for path, hf in table.items():
      entries += _module(path, hf, **biases)
  return entries


def layout(config: ModelConfig) -> list[Entry]:
  """Every parameter of a PretrainingModel with `config`, and its Hugging Face key."""
  model_type = hf_model_type(config)
  if model_type == "modernbert":
    return _modernbert_layout(config)
  base = BASE_PREFIX[config.family]
  entries = [Entry("encoder/embeddings/word_embeddings/embedding",
                   f"{base}.embeddings.word_embeddings.weight", "embedding")]
  if config.position_embedding == "learned":
    entries.append(Entry("encoder/embeddings/position_embeddings/embedding",
                         f"{base}.embeddings.position_embeddings.weight", "embedding"))
  if config.type_vocab_size:
    entries.append(Entry("encoder/embeddings/token_type_embeddings/embedding",
                         f"{base}.embeddings.token_type_embeddings.weight", "embedding"))
  entries += _norm("encoder/embeddings/LayerNorm", f"{base}.embeddings.LayerNorm")
  if config.embed_size != config.hidden_size:
    projection = {"albert": f"{base}.encoder.embedding_hidden_mapping_in",
                  "electra": f"{base}.embeddings_project"}.get(model_type)
    if projection is None:
      raise ValueError(f"A {model_type} checkpoint has no E -> H projection, but "
                       f"embedding_size={config.embed_size} != hidden_size={config.hidden_size}.")
    entries += _dense("encoder/embedding_projection", projection)
  if model_type == "albert":
    if config.sharing != "all":
      raise ValueError(f"Hugging Face ALBERT shares whole layers within a group; "
                       f"model.sharing={config.sharing!r} has no such checkpoint layout.")
    layer_names, prefix = ALBERT_LAYER, f"{base}.encoder.albert_layer_groups.{{}}.albert_layers.0."
  else:
    if config.groups != config.num_layers:
      raise ValueError(f"A {model_type} checkpoint has one set of weights per layer; "
                       f"num_hidden_groups={config.groups} needs model_type albert.")
    layer_names, prefix = BERT_LAYER, f"{base}.encoder.layer.{{}}."
  for path, hf in layer_names.items():
    copies = len(np.unique(copy_of_layer(config, path.split("/")[0])))
    for j in range(copies):
      entries += _module(f"encoder/layers/block/{path}", prefix.format(j) + hf, copy=j,
                         input_axes=KERNEL_INPUT_AXES.get(path, 1))
  if config.use_pooler:
    entries += _dense("encoder/pooler",
                      f"{base}.pooler" if model_type == "albert" else f"{base}.pooler.dense")
  for head in config.heads:
    table = HEADS.get(head, {}).get(model_type)
    if table is None:
      raise ValueError(f"A Hugging Face {model_type} checkpoint has no place for the "
                       f"{head!r} head; drop it from model.heads to export the rest.")
    for path, hf in table.items():
      entries += _module(path, hf)
  return entries


# Fine-tuning heads (bertlab/models/finetuning.py) in transformers' task classes: the pooled
# output's classifier (BERT, ALBERT), or a dense + activation + out_proj head on the first token
# (RoBERTa: tanh, ELECTRA: GELU, as bertlab's SequenceHead without a pooler).
TASK_HEADS = {
    "classification": {
        "pooled": {"classifier/classifier": "classifier"},
        "first_token": {"classifier/dense": "classifier.dense",
                        "classifier/classifier": "classifier.out_proj"}},
    "span": {"qa/qa_outputs": "qa_outputs"},
    "token": {"tagger/classifier": "classifier"},
}
TASK_ARCHITECTURES = {"classification": "ForSequenceClassification",
                      "regression": "ForSequenceClassification",
                      "span": "ForQuestionAnswering", "token": "ForTokenClassification"}
CLASS_PREFIX = {"bert": "Bert", "albert": "Albert", "roberta": "Roberta", "electra": "Electra"}


def finetuning_layout(config: ModelConfig, head: str) -> list[Entry]:
  """Every parameter of a FinetuningModel with `config` and `head`, and its HF key."""
  model_type = hf_model_type(config)
  if model_type not in CLASS_PREFIX:
    raise ValueError(f"transformers' {model_type} task classes put a head of their own "
                     "(dense + norm) before the classifier, which bertlab's fine-tuning heads "
                     f"do not have: a fine-tuned {model_type} cannot be exported.")
  table = TASK_HEADS["classification" if head == "regression" else head]
  if head in ("classification", "regression"):
    pooled = model_type in ("bert", "albert")
    if pooled != config.use_pooler:
      raise ValueError(f"transformers' {model_type} sequence classifier reads "
                       f"{'the pooler' if pooled else 'the first token through its own dense'}"
                       f", but this model has use_pooler={config.use_pooler}.")
    table = table["pooled" if pooled else "first_token"]
  entries = layout(config.replace(heads=()))
  for path, hf in table.items():
    entries += _dense(path, hf)
  return entries


def finetuned_config_to_hf(config: ModelConfig, head: str, num_labels: int,
                           labels: list[str] | None) -> dict:
  hf = config_to_hf(config.replace(heads=()))
  hf["architectures"] = [CLASS_PREFIX[hf["model_type"]] + TASK_ARCHITECTURES[head]]
  names = labels or [f"LABEL_{i}" for i in range(num_labels)]
  hf.update(num_labels=num_labels, id2label={str(i): n for i, n in enumerate(names)},
            label2id={n: i for i, n in enumerate(names)})
  if head in ("classification", "regression"):
    hf["problem_type"] = ("regression" if head == "regression"
                          else "single_label_classification")
  return hf


def to_bertlab(entry: Entry, tensor: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """A Hugging Face tensor into bertlab's layout of `shape` (without the stacked axis)."""
  if entry.kind == "kernel":
    tensor = tensor.T  # torch Linear stores [out, in]
  return tensor.reshape(shape)


def hf_shape(entry: Entry, shape: tuple[int, ...]) -> tuple[int, ...]:
  """The Hugging Face shape of a parameter of bertlab `shape` (without the stacked axis)."""
  if entry.kind == "kernel":
    inputs = int(np.prod(shape[:entry.input_axes]))
    return (int(np.prod(shape)) // inputs, inputs)
  if entry.kind == "embedding":
    return tuple(shape)
  return (int(np.prod(shape)),)


def to_hf(entry: Entry, value: np.ndarray) -> np.ndarray:
  shape = hf_shape(entry, value.shape)
  if entry.kind == "kernel":
    return np.ascontiguousarray(value.reshape(shape[::-1]).T)
  return value.reshape(shape)


HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                  "gelu_fast": "gelu_tanh", "relu": "relu", "silu": "silu", "swish": "silu"}
TO_HF_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "silu"}


def _modernbert_rope(hf: dict) -> tuple[float, float]:
  """(global, local) rotary bases: transformers 5's rope_parameters, or the published
  checkpoints' global_rope_theta / local_rope_theta."""
  params = hf.get("rope_parameters") or {}
  if "full_attention" in params:
    return (params["full_attention"]["rope_theta"],
            params.get("sliding_attention", params["full_attention"])["rope_theta"])
  return hf.get("global_rope_theta", 160000.0), hf.get("local_rope_theta", 10000.0)


def _modernbert_config_from_hf(hf: dict, heads: tuple[str, ...]) -> ModelConfig:
  layers = hf["num_hidden_layers"]
  every = hf.get("global_attn_every_n_layers", 3)
  types = hf.get("layer_types")
  if types is not None:
    pattern = ["full_attention" if i % every == 0 else "sliding_attention"
               for i in range(layers)]
    if list(types) != pattern:
      raise ValueError(f"layer_types={types} is not a global layer every {every} layers; "
                       "bertlab's sliding-window layers follow global_attn_every_n_layers.")
  biases = {k: hf.get(k, False) for k in ("attention_bias", "mlp_bias", "classifier_bias")}
  if len(set(biases.values())) != 1:
    raise ValueError(f"{biases}: bertlab has one switch (model.dense_bias) for these; a "
                     "checkpoint with some and not others cannot be loaded.")
  if not hf.get("decoder_bias", True):
    raise ValueError("decoder_bias=False: bertlab's MLM head always has a decoder bias.")
  act = hf.get("hidden_activation", "gelu")
  if act not in HF_ACTIVATIONS:
    raise ValueError(f"hidden_activation={act!r} is not one of {sorted(HF_ACTIVATIONS)}.")
  head_act = hf.get("classifier_activation", act)
  if head_act not in HF_ACTIVATIONS:
    raise ValueError(f"classifier_activation={head_act!r} is not one of "
                     f"{sorted(HF_ACTIVATIONS)}.")
  global_theta, local_theta = _modernbert_rope(hf)
  return ModelConfig(
      family="modernbert", vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
      num_layers=layers, num_heads=hf["num_attention_heads"],
      intermediate_size=hf["intermediate_size"], type_vocab_size=0,
      max_position_embeddings=hf.get("max_position_embeddings", 8192),
      position_embedding="rotary", rope_theta=global_theta, local_rope_theta=local_theta,
      local_attention_window=hf.get("local_attention", 128), global_attention_every=every,
      pad_token_id=hf.get("pad_token_id") or 0, hidden_act=HF_ACTIVATIONS[act],
      head_act=HF_ACTIVATIONS[head_act], feed_forward="glu", layer_norm_eps=hf.get("norm_eps", 1e-5), norm_position="pre",
      norm_bias=hf.get("norm_bias", False), dense_bias=biases["attention_bias"],
      first_attention_norm=False, dropout_rate=hf.get("mlp_dropout", 0.0),
      attention_dropout_rate=hf.get("attention_dropout", 0.0),
      initializer_range=hf.get("initializer_range", 0.02), use_pooler=False, heads=heads)


def _modernbert_config_to_hf(config: ModelConfig, architecture: str) -> dict:
  _modernbert_layout(config)  # refuses what the checkpoint cannot hold
  every = config.global_attention_every if config.local_attention_window else 1
  return dict(
      model_type="modernbert", architectures=[architecture], vocab_size=config.vocab_size,
      hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
      num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
      hidden_activation=TO_HF_ACTIVATION[config.hidden_act],
      classifier_activation=TO_HF_ACTIVATION[config.head_act or config.hidden_act],
      max_position_embeddings=config.max_position_embeddings, norm_eps=config.layer_norm_eps,
      norm_bias=config.norm_bias, attention_bias=config.dense_bias, mlp_bias=config.dense_bias,
      classifier_bias=config.dense_bias, decoder_bias=True,
      global_rope_theta=config.rope_theta,
      local_rope_theta=config.local_rope_theta or config.rope_theta,
      # transformers' masks need a positive window even when every layer is global.
      local_attention=config.local_attention_window or 2 * config.max_position_embeddings,
      global_attn_every_n_layers=every, embedding_dropout=config.dropout_rate,
      mlp_dropout=config.dropout_rate, attention_dropout=config.attention_dropout_rate,
      initializer_range=config.initializer_range, pad_token_id=config.pad_token_id,
      tie_word_embeddings=True)


def config_from_hf(hf: dict, heads: tuple[str, ...], use_pooler: bool) -> ModelConfig:
  """A Hugging Face config.json (as a dict) -> ModelConfig."""
  model_type = hf.get("model_type")
  if model_type not in HF_MODEL_TYPES:
    raise ValueError(f"model_type {model_type!r} is not supported; bertlab loads "
                     f"{', '.join(HF_MODEL_TYPES)}.")
  if model_type == "modernbert":
    return _modernbert_config_from_hf(hf, heads)
  if hf.get("position_embedding_type", "absolute") != "absolute":
    raise ValueError(f"position_embedding_type={hf['position_embedding_type']!r}: only "
                     "absolute position embeddings are supported.")
  if hf.get("inner_group_num", 1) != 1:
    raise ValueError(f"inner_group_num={hf['inner_group_num']}: only ALBERT's published "
                     "inner_group_num=1 is supported.")
  act = hf.get("hidden_act", "gelu")
  if act not in HF_ACTIVATIONS:
    raise ValueError(f"hidden_act={act!r} is not one of {sorted(HF_ACTIVATIONS)}.")
  hidden = hf["hidden_size"]
  return ModelConfig(
      family=model_type, vocab_size=hf["vocab_size"], hidden_size=hidden,
      num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
      intermediate_size=hf["intermediate_size"],
      embedding_size=None if hf.get("embedding_size", hidden) == hidden else hf["embedding_size"],
      num_hidden_groups=hf.get("num_hidden_groups") if model_type == "albert" else None,
      sharing="all", max_position_embeddings=hf["max_position_embeddings"],
      type_vocab_size=hf.get("type_vocab_size", 2),
      positions_from_padding=model_type == "roberta", pad_token_id=hf.get("pad_token_id") or 0,
      hidden_act=HF_ACTIVATIONS[act], layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
      dropout_rate=hf.get("hidden_dropout_prob", 0.1),
      attention_dropout_rate=hf.get("attention_probs_dropout_prob", 0.1),
      initializer_range=hf.get("initializer_range", 0.02), use_pooler=use_pooler, heads=heads)


def config_to_hf(config: ModelConfig) -> dict:
  model_type = hf_model_type(config)
  if model_type == "modernbert":
    architecture = HF_ARCHITECTURES.get((model_type, tuple(config.heads)))
    if architecture is None:
      raise ValueError(f"No Hugging Face modernbert architecture has the heads {config.heads}.")
    return _modernbert_config_to_hf(config, architecture)
  if config.position_embedding != "learned":
    raise ValueError("BERT-family Hugging Face checkpoints hold learned position embeddings; "
                     f"position_embedding={config.position_embedding!r} cannot be exported.")
  heads = tuple(h for h in ("mlm", "sentence", "rtd") if h in config.heads)
  architecture = HF_ARCHITECTURES.get((model_type, heads))
  if architecture is None:
    raise ValueError(f"No Hugging Face {model_type} architecture has the heads {heads}.")
  act = TO_HF_ACTIVATION[config.hidden_act]
  hf = dict(
      model_type=model_type, architectures=[architecture], vocab_size=config.vocab_size,
      hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
      num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
      max_position_embeddings=config.max_position_embeddings,
      type_vocab_size=config.type_vocab_size, hidden_act=act,
      layer_norm_eps=config.layer_norm_eps, hidden_dropout_prob=config.dropout_rate,
      attention_probs_dropout_prob=config.attention_dropout_rate,
      initializer_range=config.initializer_range, pad_token_id=config.pad_token_id,
      position_embedding_type="absolute", tie_word_embeddings=True)
  if model_type in ("albert", "electra"):
    hf["embedding_size"] = config.embed_size
  if model_type == "albert":
    hf.update(num_hidden_groups=config.groups, inner_group_num=1,
              classifier_dropout_prob=config.dropout_rate)
  return hf
