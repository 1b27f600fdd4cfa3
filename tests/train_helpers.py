"""Run by the training tests in subprocesses: one train step on a mesh, for comparisons.

  python tests/train_helpers.py OUT.npz MESH(data,fsdp,tensor) [coordinator num_processes id]

Writes the loss and the updated parameters of two train steps on the same global batches (each
process feeds its own rows of them), so runs on different meshes and process counts compare.
"""

import os
import sys


def main():
  out, mesh = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
  if len(sys.argv) > 3:
    from bertlab.train import distributed
    distributed.initialize(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
  import jax
  import numpy as np
  sys.path.insert(0, os.path.dirname(__file__))
  from conftest import load_config
  from bertlab.data.pipeline import PretrainingData
  from bertlab.train.trainer import Trainer
  config = load_config("bert.py:tiny")
  config.data.dynamic_masking = True
  config.mesh.update(data=mesh[0], fsdp=mesh[1], tensor=mesh[2])
  trainer = Trainer(config)
  state = trainer.init_state()
  data = PretrainingData.from_config(config, process_index=0, process_count=1)
  batches = data.batches(0)
  rows = config.train.batch_size // jax.process_count()
  lo = jax.process_index() * rows
  losses = []
  for _ in range(2):
    batch = {k: v[lo:lo + rows] for k, v in next(batches).items()}
    state, metrics = trainer.step(state, batch)
    losses.append(float(metrics["loss"]))
  from jax.experimental import multihost_utils
  params = multihost_utils.process_allgather(state.params, tiled=True)
  flat = {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(params)}
  specs = {jax.tree_util.keystr(k): str(v.sharding.spec)
           for k, v in jax.tree_util.tree_leaves_with_path(state.params)}
  if jax.process_index() == 0:
    np.savez(out, losses=np.array(losses), specs=np.array(repr(specs)), **flat)


if __name__ == "__main__":
  main()
