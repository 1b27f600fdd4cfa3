"""The device mesh, logical axis rules and the shardings of the train state and batches.

Mesh axes are ("data", "fsdp", "tensor"), sized by `mesh.data/fsdp/tensor` (-1 takes the
devices left). The model names every parameter and activation axis logically (vocab, embed,
mlp, heads, kv, batch, length, layers); `mesh.rules` maps those names to mesh axes. A mesh axis
serves one array dimension at most, so a later rule for the same name is a fallback: the batch
takes data and fsdp, and an activation's embed dimension then stays whole.
"""

import math

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# BERT-sized models: batch over data x fsdp, parameters' embed dimension over fsdp (ZeRO-3
# style), the vocabulary, MLP and heads over tensor (Megatron style).
DEFAULT_RULES = (
    ("batch", BATCH_AXES),
    ("vocab", "tensor"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("embed", "fsdp"),
    ("kv", None),
    ("length", None),
    ("layers", None),
)


def mesh_shape(mesh_config, num_devices: int) -> tuple[int, int, int]:
  sizes = [int(mesh_config[a]) for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"At most one of mesh.data/fsdp/tensor may be -1; got {sizes}.")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % known:
      raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} does not divide {num_devices} "
                       "devices.")
    sizes[sizes.index(-1)] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices; "
                     f"there are {num_devices}. Set one axis to -1 to take the rest.")
  return tuple(sizes)


def build_mesh(mesh_config, devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  shape = mesh_shape(mesh_config, len(devices))
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


def rules_from_config(mesh_config) -> tuple:
  rules = mesh_config.get("rules")
  if not rules:
    return DEFAULT_RULES
  return tuple((name, tuple(axes) if isinstance(axes, (list, tuple)) else axes)
               for name, axes in rules)


def shardings_of(abstract_boxed, mesh: Mesh, rules):
  """NamedShardings for a tree whose leaves carry logical names (nn.Partitioned)."""
  specs = nn.get_partition_spec(abstract_boxed)
  return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def batch_shards(mesh: Mesh) -> int:
  """How many ways a global batch's rows split: the batch axes (data x fsdp) of the mesh."""
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def check_batch_splits(batch_size: int, mesh: Mesh, key: str = "train.batch_size"):
  """A global batch must split evenly over the batch axes (data x fsdp) of the mesh."""
  shards = batch_shards(mesh)
  if batch_size % shards:
    lower, upper = batch_size // shards * shards, (batch_size // shards + 1) * shards
    raise ValueError(
        f"{key}={batch_size} does not split over the {shards} batch shards of the mesh "
        f"(mesh.data x mesh.fsdp = {mesh.shape['data']} x {mesh.shape['fsdp']}); use a "
        f"multiple of {shards}, e.g. {lower or upper} or {upper}.")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def process_rows(batch: dict) -> dict:
  """This process's rows of a global batch that every host holds whole (fine-tuning encodes
  its small datasets on each host): the contiguous share `global_batch` expects from it."""
  count = jax.process_count()
  if count == 1:
    return batch
  rows = len(next(iter(batch.values())))
  if rows % count:
    raise ValueError(f"A batch of {rows} rows does not split over {count} processes; use a "
                     f"batch size that is a multiple of {count}.")
  share = rows // count
  first = jax.process_index() * share
  return {k: v[first:first + share] for k, v in batch.items()}


def to_host(tree):
  """A tree of (possibly multi-host) arrays as numpy, whole on every host."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return multihost_utils.process_allgather(tree, tiled=True)


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This host's rows -> global arrays sharded over the batch axes (the one place this
  happens)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}
