"""The encoder of every family: embeddings, (E -> H projection), scanned layers, pooler.

Layers are one `nn.scan` over `TransformerBlock`, so compile time does not grow with depth.
Cross-layer sharing (ALBERT, Section 3.1 and Table 4) is a view of the stored parameters:
each sub-layer (attention, ffn) is stored once per distinct copy, with a leading `layers`
axis of `num_hidden_groups` when shared within a group and of `num_layers` when not, and
`nn.map_variables` gathers the copies into the per-layer stack the scan consumes. Gradients
of a shared copy are summed over the layers that use it by the gather's transpose.
A pre-norm stack's `attention_norm` follows its attention's sharing, less the copy that only a
skipped first-layer norm would use (ModernBERT). What differs between layers (sliding-window or
global attention, a skipped norm) enters the scan as per-layer flags, so the stack stays one
scanned body however the layers alternate.
"""

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bertlab.models.block import TransformerBlock, dense
from bertlab.models.config import ModelConfig
from bertlab.models.embeddings import Embeddings, norm, position_ids
from bertlab.models.rotary import rotary_tables
from bertlab.models import splash

SUBLAYERS = ("attention", "ffn", "attention_norm")

REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_attention_out": jax.checkpoint_policies.save_only_these_names("attention_out"),
    "save_projections": jax.checkpoint_policies.save_only_these_names(
        "query_proj", "key_proj", "value_proj", "attention_out"),
}


@flax.struct.dataclass
class EncoderOutput:
  last_hidden_state: jax.Array
  pooled_output: jax.Array | None = None
  # The embedding output (after any E -> H projection), then every layer's output.
  hidden_states: tuple[jax.Array, ...] | None = None


def gather_positions(x, positions):
  """[B, T, H] at [B, P] positions -> [B, P, H] (the masked tokens for the MLM head, each
  packed input's [CLS] for the pooler)."""
  return jnp.take_along_axis(x, positions[..., None], axis=1)


def copy_of_layer(config: ModelConfig, sublayer: str) -> np.ndarray:
  """For each layer, the index of the stored copy of `sublayer` it uses."""
  layers = np.arange(config.num_layers)
  if sublayer == "attention_norm":
    copies = copy_of_layer(config, "attention")
    if config.first_attention_norm or config.num_layers == 1:
      return copies
    # Only copies some layer really normalises with are stored; the skipped first layer
    # borrows copy 0 and ignores it (its flag in `layer_flags`).
    used = np.unique(copies[1:])
    return np.where(layers == 0, 0, np.searchsorted(used, copies))
  shared = config.sharing in ("all", sublayer)
  return layers // (config.num_layers // config.groups) if shared else layers


def layer_flags(config: ModelConfig) -> dict[str, jax.Array]:
  """What differs between layers, scanned over with them: `local` (sliding-window attention)
  and `attention_norm` (False on a pre-norm first layer that skips it)."""
  layers = np.arange(config.num_layers)
  return {"local": jnp.asarray(config.local_layers),
          "attention_norm": jnp.asarray(config.first_attention_norm | (layers > 0))}


def _map_sublayers(variables, fn):
  return {
      collection: {name: fn(name, tree) if name in SUBLAYERS else tree
                   for name, tree in trees.items()}
      for collection, trees in variables.items()
  }


def _gather_rows(tree, rows: np.ndarray):
  return jax.tree.map(lambda p: jnp.take(p, rows, axis=0), tree)


def stored_copies_to_layers(config: ModelConfig):
  """trans_in_fn of map_variables: stored copies -> one row per layer."""

  def expand(name, tree):
    index = copy_of_layer(config, name)
    if np.array_equal(index, np.arange(config.num_layers)):
      return tree
    return _gather_rows(tree, index)

  return lambda variables: _map_sublayers(variables, expand)


def layers_to_stored_copies(config: ModelConfig):
  """trans_out_fn of map_variables: keep the first layer's row of each stored copy."""

  def compress(name, tree):
    _, first_use = np.unique(copy_of_layer(config, name), return_index=True)
    if len(first_use) == config.num_layers:
      return tree
    return _gather_rows(tree, first_use)

  return lambda variables: _map_sublayers(variables, compress)


def attention_bias(attention_mask, sequence_ids=None, dtype=jnp.float32, window: int = 0):
  """[B, T] 1/0 mask -> additive [B, 1, 1, T] bias: the one place padding enters attention.

  With `sequence_ids` (a packed row) the bias is [B, 1, T, T]: a token sees only the tokens of
  its own sequence. With `window` > 0 (sliding-window attention) it is [B, 1, T, T] and a
  token sees only those within window // 2 positions of it (ModernBERT's local layers).
  """
  allowed = attention_mask[:, None, None, :] > 0
  if sequence_ids is not None:
    allowed = allowed & (sequence_ids[:, None, :, None] == sequence_ids[:, None, None, :])
  if window:
    index = jnp.arange(attention_mask.shape[1])
    allowed = allowed & (jnp.abs(index[:, None] - index[None, :]) <= window // 2)
  return jnp.where(allowed, 0.0, jnp.finfo(dtype).min).astype(dtype)


class LayerStack(nn.Module):
  """`num_layers` applications of the block, grouped and shared as the config says."""

  config: ModelConfig

  @nn.compact
  def __call__(self, x, bias, rotary=None, deterministic: bool = True,
               return_hidden: bool = True):
    """`bias` and `rotary`: (global, local) pairs, see TransformerBlock."""
    config = self.config
    block = TransformerBlock
    if config.remat_policy is not None:
      if config.remat_policy not in REMAT_POLICIES:
        raise ValueError(f"model.remat_policy={config.remat_policy!r} is not one of "
                         f"{sorted(REMAT_POLICIES)} (or None).")
      block = nn.remat(block, policy=REMAT_POLICIES[config.remat_policy], prevent_cse=False)
    # scan_layers=False unrolls the same loop in the compiled program (for comparisons);
    # parameters and results are the same either way.
    scanned = nn.scan(
        block, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
        in_axes=(nn.broadcast, nn.broadcast, 0), length=config.num_layers,
        unroll=1 if config.scan_layers else config.num_layers,
        metadata_params={nn.PARTITION_NAME: "layers"})
    shared = nn.map_variables(
        scanned, "params", trans_in_fn=stored_copies_to_layers(config),
        trans_out_fn=layers_to_stored_copies(config), init=self.is_initializing())
    return shared(config, deterministic, return_hidden, name="block")(
        x, bias, rotary, layer_flags(config))


class Encoder(nn.Module):
  """Embeddings -> [E -> H projection] -> layers -> [pooler]; BERT, ALBERT, RoBERTa, ...

  `shared_embeddings` may be passed in to share one embedding module between two encoders
  (ELECTRA's generator and discriminator, Section 3.2).
  """

  config: ModelConfig
  shared_embeddings: Any = None

  def setup(self):
    config = self.config
    if self.shared_embeddings is None:
      self.embeddings = Embeddings(config)
    if config.embed_size != config.hidden_size:
      self.embedding_projection = dense(config, config.hidden_size, (None, "embed"),
                                        "embedding_projection")
    self.layers = LayerStack(config)
    if config.norm_position == "pre":
      self.final_norm = norm(config, "final_norm")
    if config.use_pooler:
      self.pooler = dense(config, config.hidden_size, ("embed", None), "pooler")

  def word_embeddings(self) -> Embeddings:
    return self.embeddings if self.shared_embeddings is None else self.shared_embeddings

  def attend(self, x):
    """Logits of E-wide vectors against the word embeddings (the tied MLM decoder)."""
    return self.word_embeddings().attend(x)

  def __call__(self, input_ids, attention_mask=None, token_type_ids=None,
               deterministic: bool = True, output_hidden_states: bool = True,
               sequence_ids=None, pool_positions=None) -> EncoderOutput:
    """`sequence_ids` [B, T] marks a packed row: several sequences side by side, each with its
    own [CLS] ... [SEP], numbered 1, 2, ... (0 on padding). Each then attends only within
    itself and counts its positions from 0, so its outputs are those it has alone in a row.
    `pool_positions` [B, K]: pool each packed input's [CLS] (pooled_output [B, K, H]), not
    only the row's first token."""
    config = self.config
    if attention_mask is None:
      attention_mask = jnp.ones_like(input_ids)
    x = self.word_embeddings()(input_ids, token_type_ids, deterministic, sequence_ids)
    if config.embed_size != config.hidden_size:
      x = self.embedding_projection(x)
    any_local = bool(config.local_layers.any())
    rotary = None
    if config.position_embedding == "rotary":
      positions = position_ids(config, input_ids, sequence_ids)
      tables = lambda theta: rotary_tables(positions, config.head_dim, theta,
                                           config.compute_dtype)
      local_theta = config.local_rope_theta
      rotary = (tables(config.rope_theta),
                tables(local_theta) if any_local and local_theta not in (None, config.rope_theta)
                else None)
    if config.attention == "splash":  # the kernel takes segment ids and masks the window itself
      bias = (splash.segment_ids(attention_mask, sequence_ids), None)
    else:
      bias = (attention_bias(attention_mask, sequence_ids),
              attention_bias(attention_mask, sequence_ids, window=config.local_attention_window)
              if any_local else None)
    last, per_layer = self.layers(x, bias, rotary, deterministic, output_hidden_states)
    if config.norm_position == "pre":
      last = self.final_norm(last)
    hidden_states = None
    if output_hidden_states:
      # The last is the encoder's output (after a pre-norm stack's final norm), as in
      # transformers, so hidden_states[-1] is last_hidden_state for every family.
      hidden_states = (x,) + tuple(per_layer[i] for i in range(config.num_layers - 1)) + (last,)
    first = last[:, 0] if pool_positions is None else gather_positions(last, pool_positions)
    pooled = jnp.tanh(self.pooler(first)) if config.use_pooler else None
    return EncoderOutput(last, pooled, hidden_states)
