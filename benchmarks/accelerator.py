"""Pretraining throughput and MFU on whatever accelerator JAX sees: BERT-base and BERT-large,
MLM + NSP, seq 128 and 512, bf16 compute with f32 parameters, one line per attention path.

  python benchmarks/accelerator.py [--sizes=base,large] [--seq_lens=128,512] [--steps=20]
      [--paths=einsum,xla,cudnn,splash] [--json=out.json]

Each line: tokens/s, sequences/s, step time, compile time and MFU, the model FLOPs of the
step (bertlab.train.flops.step_flops, the count the trainer logs) over the device's peak
bf16 FLOP/s (bertlab.train.flops.PEAK_FLOPS; a CPU's measured f32 matmul roof; "-" for a
device kind the table does not list), and the benchmark's own count of the step: every
matmul of the jitted train step as traced (bertlab.train.flops.dot_flops), whose ratio to
the model count is 1.000 when the trainer's MFU counts what the step computes. Attention dropout is 0 on every path so that they compute the same model
(the fused paths have none). The records to compare with: NVIDIA's BERT-Large at 580 seq/s
per A100 (seq 128, about 45% MFU); ModernBERT 26-33% MFU on H100s. cuDNN's path is skipped
off NVIDIA GPUs, splash attention off TPUs. `--sizes=tiny --seq_lens=64 --steps=2` runs in a minute on a CPU.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

BATCH = {128: 256, 512: 64}  # global batch by sequence length (per step, all devices)


def measure(size: str, seq_len: int, path: str, steps: int, batch: int) -> dict:
  import jax
  from conftest import load_config
  from bertlab.train import flops as flop_lib
  from bertlab.train.trainer import Trainer
  from train_step import _batch
  config = load_config(f"bert.py:{size}")
  config.model.update(dtype="bfloat16", attention=path, attention_dropout_rate=0.0)
  config.data.update(seq_len=seq_len, max_predictions=max(20, seq_len * 15 // 100))
  config.train.batch_size = batch
  trainer = Trainer(config)
  state = trainer.init_state()
  data = _batch(batch, seq_len, config.data.max_predictions)
  data["input_ids"] %= config.model.vocab_size
  data["masked_ids"] %= config.model.vocab_size

  def step():
    nonlocal state
    state, values = trainer.step(state, data)
    jax.block_until_ready(values["loss"])

  start = time.perf_counter()
  step()
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(steps):
    step()
  step_s = (time.perf_counter() - start) / steps
  flops = flop_lib.step_flops(config)
  counted = counted_step_flops(trainer, state, data)
  peak = flop_lib.peak_flops()
  return dict(size=size, seq_len=seq_len, attention=path, batch=batch,
              device=jax.devices()[0].device_kind, devices=jax.device_count(),
              tokens_per_sec=batch * seq_len / step_s, sequences_per_sec=batch / step_s,
              step_ms=1000 * step_s, compile_s=compile_s, model_flops=flops,
              counted_flops=counted,
              mfu=flops / step_s / (peak * jax.device_count()) if peak else None)


def counted_step_flops(trainer, state, host_batch) -> float:
  """The matmul FLOPs of the trainer's jitted step on this batch, as traced."""
  from bertlab.train import flops as flop_lib
  with trainer.context():
    return flop_lib.dot_flops(trainer._step, state, trainer._global(host_batch))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sizes", default="base,large")
  parser.add_argument("--seq_lens", default="128,512")
  parser.add_argument("--paths", default="einsum,xla,cudnn,splash")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--batch", type=int, default=0, help="0: 256 at seq 128, 64 at 512")
  parser.add_argument("--json", default="")
  args = parser.parse_args()
  import jax
  on_gpu, on_tpu = (jax.devices()[0].platform == p for p in ("gpu", "tpu"))
  print(f"{jax.device_count()} x {jax.devices()[0].device_kind}, bf16 compute")
  print(f"{'size':>6} {'seq':>4} {'attention':>9} {'batch':>5} {'tokens/s':>10} {'seq/s':>8} "
        f"{'step ms':>8} {'compile s':>9} {'MFU':>6} {'counted/model':>13}")
  rows = []
  for size in args.sizes.split(","):
    for seq_len in map(int, args.seq_lens.split(",")):
      for path in args.paths.split(","):
        if path == "cudnn" and not on_gpu:
          print(f"{size:>6} {seq_len:>4} {path:>9}  skipped: cuDNN needs an NVIDIA GPU")
          continue
        if path == "splash" and not on_tpu:
          print(f"{size:>6} {seq_len:>4} {path:>9}  skipped: off a TPU splash is interpreted")
          continue
        try:
          row = measure(size, seq_len, path, args.steps,
                        args.batch or BATCH.get(seq_len, 32))
        except Exception as error:  # noqa: BLE001 (out of memory, a kernel refused: say so)
          print(f"{size:>6} {seq_len:>4} {path:>9}  failed: {type(error).__name__}: "
                f"{str(error).splitlines()[0][:120]}", flush=True)
          continue
        rows.append(row)
        mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] else "-"
        print(f"{size:>6} {seq_len:>4} {path:>9} {row['batch']:>5} {row['tokens_per_sec']:>10.0f} "
              f"{row['sequences_per_sec']:>8.1f} {row['step_ms']:>8.1f} {row['compile_s']:>9.1f} "
              f"{mfu:>6} {row['counted_flops'] / row['model_flops']:>13.3f}", flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
