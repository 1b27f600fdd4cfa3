"""Run by tests/test_attention_paths.py on 8 simulated devices: a BERT step with splash
attention (per device under shard_map, batch on data x fsdp, heads on tensor) beside the
einsum path's, as JSON on stdout."""

import json
import os
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import load_config  # noqa: E402  (the tests' config loader)
from bertlab.data.pipeline import PretrainingData  # noqa: E402
from bertlab.train.trainer import Trainer  # noqa: E402


def run(attention: str, batch: dict) -> dict:
  config = load_config("bert.py:tiny")
  config.model.update(attention=attention, attention_dropout_rate=0.0)
  config.data.update(pack_sequences=True)
  config.train.batch_size = 8
  config.mesh.update(data=2, fsdp=2, tensor=2)
  trainer = Trainer(config)
  state = trainer.init_state()
  before = trainer.evaluate_batch(state, batch, 0)
  norms = []
  for _ in range(3):  # the first step's learning rate is 0 (warmup)
    state, metrics = trainer.step(state, batch)
    norms.append(float(metrics["grad_norm"]))
  after = trainer.evaluate_batch(state, batch, 0)
  return {"before": float(before["loss"]), "after": float(after["loss"]),
          "nsp": float(before["nsp_loss"]), "grad_norms": norms}


def main():
  config = load_config("bert.py:tiny")
  config.data.update(pack_sequences=True)
  config.train.batch_size = 8
  batch = next(PretrainingData.from_config(config).batches(0))
  assert np.max(batch["sequence_ids"]) > 1
  out = {path: run(path, batch) for path in ("einsum", "splash")}
  out["devices"] = jax.device_count()
  print(json.dumps(out))


if __name__ == "__main__":
  main()
