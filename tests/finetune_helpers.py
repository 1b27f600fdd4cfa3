"""Run by tests/test_finetune_run.py in a subprocess: one fine-tuning epoch on a given mesh,
the final params to an .npz, for comparing meshes.

  python tests/finetune_helpers.py DATA_DIR WORKDIR OUT.npz data,fsdp,tensor
"""

import os
import sys


def main():
  data_dir, workdir, out = sys.argv[1:4]
  mesh = [int(x) for x in sys.argv[4].split(",")]
  import jax
  import numpy as np
  sys.path.insert(0, os.path.dirname(__file__))
  from conftest import load_config
  from bertlab.hub import workdir as hub_workdir
  from bertlab.train import finetuner
  config = load_config("finetune/glue.py:sst2")
  config.data.update(data_dir=data_dir, seq_len=16)
  config.train.update(batch_size=8, eval_batch_size=16, epochs=1, learning_rate=2e-3)
  config.mesh.update(data=mesh[0], fsdp=mesh[1], tensor=mesh[2])
  finetuner.finetune(config, workdir)
  params, _ = hub_workdir.latest_params(workdir)
  flat = {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(params)}
  np.savez(out, **flat)


if __name__ == "__main__":
  main()
