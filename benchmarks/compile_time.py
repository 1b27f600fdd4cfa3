"""Compile time and step time of scanned vs unrolled encoders at 6, 12 and 24 layers.

  python benchmarks/compile_time.py [--hidden=256] [--batch=8] [--seq_len=128]
  python benchmarks/compile_time.py --backbone=modernbert  # alternating local/global layers

The step is a forward and backward pass (grad of an MLM-style loss), the shape of a train
step. With scan, compile time should stay nearly flat in depth (24 layers <= 1.3x of 12).
"""

import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from bertlab.models.config import ModelConfig
from bertlab.models.pretraining import PretrainingModel


BACKBONES = {
    "bert": {},
    # ModernBERT's switches: a global layer every third, the others within a 32-token window.
    "modernbert": dict(position_embedding="rotary", rope_theta=160_000.0,
                       local_rope_theta=10_000.0, local_attention_window=32,
                       global_attention_every=3, norm_position="pre", norm_bias=False,
                       dense_bias=False, first_attention_norm=False, feed_forward="glu",
                       type_vocab_size=0, use_pooler=False),
}


def measure(config: ModelConfig, batch: int, seq_len: int, repeats: int = 5):
  model = PretrainingModel(config)
  ids = jax.random.randint(jax.random.key(0), (batch, seq_len), 0, config.vocab_size)
  params = nn.unbox(jax.jit(model.init)(jax.random.key(1), ids)["params"])
  # MLM on 15% of positions, as in pretraining, so the encoder and not the vocabulary
  # projection dominates the step.
  positions = jnp.tile(jnp.arange(0, seq_len, 7)[None], (batch, 1))
  targets = jnp.take_along_axis(ids, positions, 1)

  def loss(p):
    out = model.apply({"params": p}, ids, masked_positions=positions, output_hidden_states=False)
    logp = jax.nn.log_softmax(out.mlm_logits.astype(jnp.float32))
    return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], -1))

  step = jax.jit(jax.value_and_grad(loss))
  start = time.perf_counter()
  compiled = step.lower(params).compile()
  compile_s = time.perf_counter() - start
  jax.block_until_ready(compiled(params))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(params))
    times.append(time.perf_counter() - start)
  return compile_s, statistics.median(times)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq_len", type=int, default=128)
  parser.add_argument("--layers", default="6,12,24")
  parser.add_argument("--backbone", default="bert", choices=("bert", "modernbert"))
  args = parser.parse_args()
  print(f"device: {jax.devices()[0].device_kind}, {args.backbone}, hidden {args.hidden}, "
        f"batch {args.batch}, seq_len {args.seq_len}")
  print(f"{'layers':>6} {'mode':>9} {'compile_s':>10} {'step_ms':>9}")
  compile_times = {}
  for layers in map(int, args.layers.split(",")):
    for scan in (True, False):
      config = ModelConfig(hidden_size=args.hidden, num_layers=layers,
                           num_heads=max(1, args.hidden // 64), intermediate_size=4 * args.hidden,
                           heads=("mlm",), scan_layers=scan, **BACKBONES[args.backbone])
      compile_s, step_s = measure(config, args.batch, args.seq_len)
      mode = "scan" if scan else "unrolled"
      compile_times[(layers, mode)] = compile_s
      print(f"{layers:>6} {mode:>9} {compile_s:>10.2f} {1000 * step_s:>9.1f}", flush=True)
  for mode in ("scan", "unrolled"):
    if (12, mode) in compile_times and (24, mode) in compile_times:
      ratio = compile_times[(24, mode)] / compile_times[(12, mode)]
      print(f"compile 24 / 12 layers ({mode}): {ratio:.2f}x")


if __name__ == "__main__":
  main()
