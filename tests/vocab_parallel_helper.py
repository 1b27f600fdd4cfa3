"""Run by tests/test_vocab_parallel.py on 8 simulated devices: the vocab-parallel loss beside
the plain one, as JSON on stdout."""

import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from bertlab.tasks import pretraining, vocab_parallel


def main():
  mesh = Mesh(np.asarray(jax.devices()).reshape(2, 2, 2), ("data", "fsdp", "tensor"))
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(8, 6, 64)).astype(np.float32)
  targets = rng.integers(0, 64, (8, 6)).astype(np.int32)
  rows, cols = np.nonzero(rng.random((8, 6)) < 0.5)
  logits[rows, cols, targets[rows, cols]] += 5.0  # about half the targets are the argmax
  logits[0, 0, 10] = logits[0, 0, 50] = 99.0  # a tie across shards: the first index wins
  targets[0, 0] = 10
  weights = (rng.random((8, 6)) < 0.8).astype(np.float32)

  def sharded(l):
    used = vocab_parallel.applies(l.shape[-1])
    loss, accuracy = pretraining.weighted_cross_entropy(l, targets, weights, vocabulary=True)
    return loss, (accuracy, used)

  plain = lambda l: pretraining.weighted_cross_entropy(l, targets, weights)
  with jax.sharding.set_mesh(mesh):
    placed = jax.device_put(logits, NamedSharding(mesh, P(("data", "fsdp"), None, "tensor")))
    (loss, (accuracy, used)), grad = jax.jit(jax.value_and_grad(sharded, has_aux=True))(placed)
  (ref_loss, ref_accuracy), ref_grad = jax.value_and_grad(plain, has_aux=True)(
      jnp.asarray(logits))
  print(json.dumps(dict(loss=float(loss), ref_loss=float(ref_loss), accuracy=float(accuracy),
                        ref_accuracy=float(ref_accuracy), used=bool(used),
                        grad_diff=float(np.abs(np.asarray(grad) - np.asarray(ref_grad)).max()))))


if __name__ == "__main__":
  main()
