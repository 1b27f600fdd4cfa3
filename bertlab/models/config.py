"""The frozen description of one encoder of the BERT family.

Modules take this dataclass, never a ConfigDict: a config file is read once into a
`ModelConfig` (`from_config_dict`), and unknown keys fail there with the close valid names.
"""

import dataclasses
import difflib
from typing import Any

import jax.numpy as jnp
import numpy as np

SHARING_CHOICES = ("all", "attention", "ffn", "none")
# How attention is computed: einsum + softmax written out (the reference, with attention
# dropout), jax.nn.dot_product_attention, by XLA or cuDNN's fused kernel (GPU, bf16/fp16), or
# TPU splash attention (bertlab/models/splash.py; interpreted off a TPU); the fused paths have
# no attention dropout.
ATTENTION_CHOICES = ("einsum", "xla", "cudnn", "splash")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")
NORM_POSITIONS = ("post", "pre")
NORM_KINDS = ("layer_norm", "rms_norm")
FEED_FORWARDS = ("mlp", "glu")
POSITION_EMBEDDINGS = ("learned", "sinusoidal", "rotary")
HEAD_CHOICES = ("mlm", "sentence", "rtd", "sbo")
FAMILIES = ("bert", "albert", "roberta", "electra", "spanbert", "modernbert")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Sizes and switches of one post-LN Transformer encoder and its pretraining heads."""

  # Names the checkpoint layout (Hugging Face model_type) for load/save; the model code is one.
  family: str = "bert"
  vocab_size: int = 30522
  hidden_size: int = 768
  num_layers: int = 12
  num_heads: int = 12
  intermediate_size: int = 3072
  # E of ALBERT's factorized embedding; None means E = H (no projection).
  embedding_size: int | None = None
  # ALBERT's groups: group g is applied num_layers / num_hidden_groups times in order.
  num_hidden_groups: int | None = None
  # Which sub-layers a group shares across its layers (ALBERT, Table 4).
  sharing: str = "all"
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  # learned (BERT), sinusoidal (fixed, added to the embeddings) or rotary (RoFormer; rotates
  # queries and keys in every layer, no position parameters).
  position_embedding: str = "learned"
  # The base of the rotary angles (10,000 in RoFormer; ModernBERT's global layers use 160,000).
  rope_theta: float = 10000.0
  # RoBERTa: positions count from pad_token_id + 1 and padding takes position pad_token_id.
  positions_from_padding: bool = False
  pad_token_id: int = 0
  hidden_act: str = "gelu"
  # mlp: dense, activation, dense. glu: activation(x W) * (x V), then dense (GeGLU with gelu,
  # SwiGLU with silu; ModernBERT); W and V are the two halves of one 2 x intermediate_size dense.
  feed_forward: str = "mlp"
  # The MLM head's activation; None: hidden_act (ModernBERT's classifier_activation).
  head_act: str | None = None
  layer_norm_eps: float = 1e-12
  # post: norm(x + f(x)) (BERT). pre: x + f(norm(x)), and a final norm after the last layer
  # (ModernBERT and most encoders since).
  norm_position: str = "post"
  # layer_norm or rms_norm (no mean subtraction, no bias); ModernBERT: LayerNorm without bias.
  norm_kind: str = "layer_norm"
  norm_bias: bool = True
  # Biases on the encoder's dense layers and on the MLM head's transform (ModernBERT: none).
  dense_bias: bool = True
  # Pre-norm only: False leaves the first layer's attention input as the embeddings give it
  # (ModernBERT: the embedding norm has already normalised it; no parameters stored for it).
  first_attention_norm: bool = True
  # Sliding-window attention (ModernBERT, Longformer): 0 keeps every layer global; else the
  # local layers see the tokens within local_attention_window // 2 on either side, and layers
  # 0, N, 2N, ... (N = global_attention_every) stay global.
  local_attention_window: int = 0
  global_attention_every: int = 1
  # The rotary base of the local layers; None: rope_theta (ModernBERT: 10,000 local, 160,000
  # global).
  local_rope_theta: float | None = None
  dropout_rate: float = 0.1
  attention_dropout_rate: float = 0.1
  attention: str = "einsum"
  initializer_range: float = 0.02
  use_pooler: bool = True
  # Pretraining heads on top of the encoder: subset of HEAD_CHOICES.
  heads: tuple[str, ...] = ("mlm", "sentence")
  # SpanBERT's span boundary objective: relative positions inside a span.
  max_span_length: int = 10
  dtype: str = "float32"
  param_dtype: str = "float32"
  scan_layers: bool = True
  # None, or a name in bertlab.models.encoder.REMAT_POLICIES.
  remat_policy: str | None = None

  def __post_init__(self):
    def check_choice(name, value, choices):
      if value not in choices:
        raise ValueError(f"model.{name}={value!r} is not one of {choices}.")

    check_choice("family", self.family, FAMILIES)
    check_choice("sharing", self.sharing, SHARING_CHOICES)
    check_choice("attention", self.attention, ATTENTION_CHOICES)
    if self.attention != "einsum" and self.attention_dropout_rate:
      raise ValueError(
          f"model.attention={self.attention!r} (a fused kernel) has no attention "
          f"dropout, but model.attention_dropout_rate={self.attention_dropout_rate}: set it to "
          "0 (ModernBERT trains without) or keep model.attention='einsum'.")
    check_choice("hidden_act", self.hidden_act, ACTIVATIONS)
    if self.head_act is not None:
      check_choice("head_act", self.head_act, ACTIVATIONS)
    check_choice("position_embedding", self.position_embedding, POSITION_EMBEDDINGS)
    check_choice("norm_position", self.norm_position, NORM_POSITIONS)
    check_choice("norm_kind", self.norm_kind, NORM_KINDS)
    check_choice("feed_forward", self.feed_forward, FEED_FORWARDS)
    if self.norm_kind == "rms_norm" and self.norm_bias:
      raise ValueError("model.norm_kind='rms_norm' has no bias; set model.norm_bias=False.")
    if not self.first_attention_norm and self.norm_position != "pre":
      raise ValueError("model.first_attention_norm=False needs model.norm_position='pre' "
                       "(a post-norm layer's norm is on its output, not its input).")
    if self.local_attention_window < 0 or self.global_attention_every < 1:
      raise ValueError(
          f"model.local_attention_window={self.local_attention_window} must be >= 0 (0: all "
          f"global) and model.global_attention_every={self.global_attention_every} >= 1.")
    if self.local_rope_theta is not None and self.position_embedding != "rotary":
      raise ValueError("model.local_rope_theta is a rotary setting; set "
                       "model.position_embedding='rotary' or leave it None.")
    for head in self.heads:
      check_choice("heads", head, HEAD_CHOICES)
    if self.hidden_size % self.num_heads:
      raise ValueError(
          f"model.hidden_size={self.hidden_size} is not divisible by "
          f"model.num_heads={self.num_heads}.")
    if self.num_layers % self.groups:
      raise ValueError(
          f"model.num_layers={self.num_layers} is not divisible by "
          f"model.num_hidden_groups={self.groups}; pick a divisor of num_layers.")

  @property
  def groups(self) -> int:
    return self.num_layers if self.num_hidden_groups is None else self.num_hidden_groups

  @property
  def local_layers(self):
    """For each layer, whether it attends within the sliding window (numpy bools)."""
    layers = np.arange(self.num_layers)
    return (self.local_attention_window > 0) & (layers % self.global_attention_every != 0)

  @property
  def embed_size(self) -> int:
    return self.hidden_size if self.embedding_size is None else self.embedding_size

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads

  @property
  def compute_dtype(self):
    return jnp.dtype(self.dtype)

  @property
  def weights_dtype(self):
    return jnp.dtype(self.param_dtype)

  def replace(self, **changes) -> "ModelConfig":
    return dataclasses.replace(self, **changes)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(ModelConfig))


def unknown_key_error(key: str, valid: tuple[str, ...], where: str) -> KeyError:
  """A KeyError naming the closest valid keys, so a typo in a config says its fix."""
  close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
  hint = f" Did you mean {', '.join(close)}?" if close else ""
  return KeyError(
      f"Unknown key {where}{key!r}.{hint} Valid keys: {', '.join(sorted(valid))}.")


def from_config_dict(cfg: Any) -> ModelConfig:
  """Reads `config.model` (a ConfigDict or a dict) into a ModelConfig."""
  values = dict(cfg.items()) if hasattr(cfg, "items") else dict(cfg)
  for key in values:
    if key not in FIELD_NAMES:
      raise unknown_key_error(key, FIELD_NAMES, "model.")
  if "heads" in values:
    values["heads"] = tuple(values["heads"])
  return ModelConfig(**values)
