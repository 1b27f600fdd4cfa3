"""Train-step throughput of bertlab beside Hugging Face's BertForPreTraining, same CPU and batch.

  python benchmarks/train_step.py [--steps=5]

For BERT-mini (H256, L4) and BERT-base (seq 128): tokens/s of one MLM + NSP step with AdamW
(bertlab: the jitted Trainer step in f32; transformers: BertForPreTraining with torch.optim.AdamW
and the same 20 masked positions per sequence), compile time (bertlab) and peak resident memory,
each measured in its own process, in this one run. torch gets as many threads as there are
cores, as XLA uses.
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


def run_bertlab(size: str, batch: int, seq_len: int, steps: int) -> dict:
  import jax
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
  from conftest import load_config
  from bertlab.train.trainer import Trainer
  config = load_config("bert.py:base")
  config.model.update(SIZES[size])
  config.data.update(seq_len=seq_len, max_predictions=20)
  config.train.batch_size = batch
  trainer = Trainer(config)
  state = trainer.init_state()
  data = _batch(batch, seq_len)
  start = time.perf_counter()
  state, metrics = trainer.step(state, data)
  jax.block_until_ready(metrics["loss"])
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = trainer.step(state, data)
    jax.block_until_ready(metrics["loss"])
    times.append(time.perf_counter() - start)
  return dict(tokens_per_sec=batch * seq_len / min(times), compile_s=compile_s)


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
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return dict(tokens_per_sec=batch * seq_len / min(times))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--impl")
  parser.add_argument("--size")
  parser.add_argument("--batch", type=int)
  parser.add_argument("--seq_len", type=int, default=128)
  args = parser.parse_args()
  if args.impl:  # one measurement, in its own process
    run = run_bertlab if args.impl == "bertlab" else run_hf
    result = run(args.size, args.batch, args.seq_len, args.steps)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    return
  print(f"{os.cpu_count()} cores, seq_len {args.seq_len}, f32")
  print(f"{'model':>6} {'batch':>5} {'bertlab tok/s':>14} {'HF tok/s':>9} {'ratio':>6} "
        f"{'compile s':>9} {'bertlab MB':>10} {'HF MB':>6}")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  for size, batch in (("mini", 32), ("base", 8)):
    results = {}
    for impl in ("bertlab", "hf"):
      out = subprocess.run([sys.executable, __file__, f"--impl={impl}", f"--size={size}",
                            f"--batch={batch}", f"--seq_len={args.seq_len}",
                            f"--steps={args.steps}"], capture_output=True, text=True, env=env,
                           check=True)
      results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, theirs = results["bertlab"], results["hf"]
    print(f"{size:>6} {batch:>5} {ours['tokens_per_sec']:>14.0f} {theirs['tokens_per_sec']:>9.0f} "
          f"{ours['tokens_per_sec'] / theirs['tokens_per_sec']:>6.2f} {ours['compile_s']:>9.1f} "
          f"{ours['peak_rss_mb']:>10.0f} {theirs['peak_rss_mb']:>6.0f}")


if __name__ == "__main__":
  main()
