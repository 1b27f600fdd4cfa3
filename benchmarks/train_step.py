"""Train-step throughput of bertlab beside Hugging Face's BertForPreTraining, same CPU and batch.

  python benchmarks/train_step.py [--steps=5]

For BERT-mini (H256, L4) and BERT-base (seq 128): tokens/s of one MLM + NSP step with AdamW
(bertlab: the jitted Trainer step in f32; transformers: BertForPreTraining with torch.optim.AdamW
and the same 20 masked positions per sequence), compile time (bertlab) and peak resident memory,
each measured in its own process, in this one run. torch gets as many threads as there are
cores, as XLA uses.

On a CPU both are bound by matrix multiplication, so the table also gives each one's encoder
GFLOP/s (6 x matmul parameters + attention, per token; HF's full-vocabulary MLM decoder is on
top of that) beside the roof: the GFLOP/s of one f32 matmul of the FFN's shape
[batch x seq, hidden] x [hidden, intermediate], measured in JAX and in torch.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SIZES = {"mini": dict(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024),
         "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072)}


def _batch(batch: int, seq_len: int, predictions: int = 20):
  import numpy as np
  rng = np.random.default_rng(0)
  ids = rng.integers(1000, 30000, (batch, seq_len)).astype(np.int32)
  positions = np.sort(rng.choice(np.arange(1, seq_len - 1), (batch, predictions)), axis=1)
  return dict(input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids),
              masked_positions=positions.astype(np.int32),
              masked_ids=np.take_along_axis(ids, positions, 1).astype(np.int32),
              masked_weights=np.ones((batch, predictions), np.float32),
              sentence_label=rng.integers(0, 2, batch).astype(np.int32),
              span_bounds=np.zeros((batch, predictions, 2), np.int32),
              span_slots=np.zeros((batch, predictions), np.int32),
              span_weights=np.zeros((batch, predictions), np.float32))


def _best_seconds(call, repeats: int) -> float:
  """The fastest of `repeats` timed calls."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return min(times)


def bert_trainer(size: str, batch: int, seq_len: int, **model):
  """The bertlab Trainer of a BERT of `size` (MLM + NSP, f32) for batches of `batch` x `seq_len`."""
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
  from conftest import load_config
  from bertlab.train.trainer import Trainer
  config = load_config("bert.py:base")
  config.model.update(SIZES[size], **model)
  config.data.update(seq_len=seq_len, max_predictions=20)
  config.train.batch_size = batch
  return Trainer(config)


def run_bertlab(size: str, batch: int, seq_len: int, steps: int) -> dict:
  import jax
  trainer = bert_trainer(size, batch, seq_len)
  state = trainer.init_state()
  data = _batch(batch, seq_len)

  def step():
    nonlocal state
    state, metrics = trainer.step(state, data)
    jax.block_until_ready(metrics["loss"])

  compile_s = _best_seconds(step, 1)  # the first call compiles
  return dict(tokens_per_sec=batch * seq_len / _best_seconds(step, steps), compile_s=compile_s)


def run_hf(size: str, batch: int, seq_len: int, steps: int) -> dict:
  import torch
  from transformers import BertConfig, BertForPreTraining
  torch.set_num_threads(os.cpu_count())
  s = SIZES[size]
  model = BertForPreTraining(BertConfig(
      vocab_size=30522, hidden_size=s["hidden_size"], num_hidden_layers=s["num_layers"],
      num_attention_heads=s["num_heads"], intermediate_size=s["intermediate_size"]))
  model.train()
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
  data = _batch(batch, seq_len)
  ids = torch.tensor(data["input_ids"], dtype=torch.long)
  labels = torch.full_like(ids, -100)
  labels.scatter_(1, torch.tensor(data["masked_positions"], dtype=torch.long),
                  torch.tensor(data["masked_ids"], dtype=torch.long))
  nsp = torch.tensor(data["sentence_label"], dtype=torch.long)

  def step():
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels,
                next_sentence_label=nsp)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()

  step()
  return dict(tokens_per_sec=batch * seq_len / _best_seconds(step, steps))


def run_roof(size: str, batch: int, seq_len: int, steps: int) -> dict:
  """GFLOP/s of the FFN's f32 matmul, the best a step of these sizes could sustain."""
  import jax
  import jax.numpy as jnp
  import torch
  torch.set_num_threads(os.cpu_count())
  m, k, n = batch * seq_len, SIZES[size]["hidden_size"], SIZES[size]["intermediate_size"]
  a, b = jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  ta, tb = torch.ones((m, k)), torch.ones((k, n))
  best = {}
  for name, call in (("jax", lambda: matmul(a, b).block_until_ready()), ("torch", lambda: ta @ tb)):
    call()
    best[name] = 2 * m * k * n / _best_seconds(call, max(steps, 5)) / 1e9
  return dict(jax_gflops=best["jax"], torch_gflops=best["torch"])


def encoder_gflops(size: str, seq_len: int, tokens_per_sec: float) -> float:
  from bertlab.models.config import ModelConfig
  from bertlab.train.flops import encoder_flops
  s = SIZES[size]
  config = ModelConfig(hidden_size=s["hidden_size"], num_layers=s["num_layers"],
                       num_heads=s["num_heads"], intermediate_size=s["intermediate_size"])
  # The encoder's training FLOPs (forward and backward) per token.
  return 3 * encoder_flops(config, seq_len) / seq_len * tokens_per_sec / 1e9


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--impl")
  parser.add_argument("--size")
  parser.add_argument("--batch", type=int)
  parser.add_argument("--seq_len", type=int, default=128)
  args = parser.parse_args()
  if args.impl:  # one measurement, in its own process
    run = {"bertlab": run_bertlab, "hf": run_hf, "roof": run_roof}[args.impl]
    result = run(args.size, args.batch, args.seq_len, args.steps)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    return
  print(f"{os.cpu_count()} cores, seq_len {args.seq_len}, f32")
  print(f"{'model':>6} {'batch':>5} {'bertlab tok/s':>14} {'HF tok/s':>9} {'ratio':>6} "
        f"{'compile s':>9} {'bertlab MB':>10} {'HF MB':>6} {'encoder GFLOP/s ours/HF':>24} "
        f"{'matmul roof jax/torch':>22}")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  for size, batch in (("mini", 32), ("base", 8)):
    results = {}
    for impl in ("bertlab", "hf", "roof"):
      out = subprocess.run([sys.executable, __file__, f"--impl={impl}", f"--size={size}",
                            f"--batch={batch}", f"--seq_len={args.seq_len}",
                            f"--steps={args.steps}"], capture_output=True, text=True, env=env,
                           check=True)
      results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, theirs, roof = results["bertlab"], results["hf"], results["roof"]
    gflops = "/".join(f"{encoder_gflops(size, args.seq_len, r['tokens_per_sec']):.0f}"
                      for r in (ours, theirs))
    print(f"{size:>6} {batch:>5} {ours['tokens_per_sec']:>14.0f} {theirs['tokens_per_sec']:>9.0f} "
          f"{ours['tokens_per_sec'] / theirs['tokens_per_sec']:>6.2f} {ours['compile_s']:>9.1f} "
          f"{ours['peak_rss_mb']:>10.0f} {theirs['peak_rss_mb']:>6.0f} {gflops:>24} "
          f"{roof['jax_gflops']:>10.0f}/{roof['torch_gflops']:<11.0f}")


if __name__ == "__main__":
  main()
