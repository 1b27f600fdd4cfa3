"""Where a train step's time goes on this machine: XLA ops by kind, and page faults.

  python benchmarks/step_profile.py [--size=base] [--batch=8] [--remat_policy=dots]

Times the forward pass, the gradient and the whole jitted Trainer step of a BERT (MLM + NSP,
f32, seq 128 by default), then traces one step with jax.profiler and sums the duration of
every XLA op by kind: matrix multiplications (with what the CPU backend fused into them),
zero-filled buffers (`broadcast`: scan's stacked residuals and gradient accumulators),
dynamic (update) slices (scan reading a layer's weights and writing its results), layout
copies and transposes, and the rest. Also the minor page faults and system time per step.
On a 2-core CPU this shows that a BERT-base step is bound by matmuls near the machine's
matmul roof (benchmarks/train_step.py prints it), with about a fifth spent moving data.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import resource
import sys
import tempfile

import jax

sys.path.insert(0, os.path.dirname(__file__))
import train_step  # noqa: E402  (the benchmark's model sizes, trainer and batch)

KINDS = ("matmul", "zero fill", "dynamic slice", "copy/transpose", "other")


def op_kind(name: str, op_name: str) -> str:
  if name.startswith(("ynn_fusion", "dot", "onednn", "custom-call")):
    return "matmul"
  if "broadcast" in name:
    return "zero fill"
  if "dynamic" in name or "dynamic_slice" in op_name or "dynamic_update" in op_name:
    return "dynamic slice"
  if "copy" in name or "transpose" in name:
    return "copy/transpose"
  return "other"


def _op_names(hlo_text: str) -> dict[str, str]:
  """HLO instruction -> the JAX op it came from (its metadata's op_name)."""
  return {m.group(1): m.group(2) for m in
          re.finditer(r"%(\S+) = [^\n]*?metadata=\{op_name=\"([^\"]+)\"", hlo_text)}


def traced_op_seconds(run, hlo_text: str) -> dict[str, float]:
  """Seconds per op kind over one call of `run`, from a jax.profiler trace."""
  names = _op_names(hlo_text)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    run()
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as f:
      trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  seconds = collections.Counter()
  for event in events:
    name = event.get("name", "")
    if event.get("ph") != "X" or name.startswith(("ThunkExecutor", "$", "Slinky", "Pjit")):
      continue
    seconds[op_kind(name, names.get(name, ""))] += event.get("dur", 0) / 1e6
  return seconds


def _timed(call, repeats: int) -> tuple[float, float, float]:
  """Best wall seconds, and minor page faults and system seconds per call."""
  before = resource.getrusage(resource.RUSAGE_SELF)
  best = train_step._best_seconds(call, repeats)
  after = resource.getrusage(resource.RUSAGE_SELF)
  return best, (after.ru_minflt - before.ru_minflt) / repeats, (
      after.ru_stime - before.ru_stime) / repeats


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--size", default="base", choices=sorted(train_step.SIZES))
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--seq_len", type=int, default=128)
  parser.add_argument("--remat_policy", default=None)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  trainer = train_step.bert_trainer(args.size, args.batch, args.seq_len,
                                    remat_policy=args.remat_policy)
  config = trainer.config
  state = trainer.init_state()
  batch = trainer._global(train_step._batch(args.batch, args.seq_len))
  rng = jax.random.key(0)

  def loss(params):
    return trainer.loss_fn(trainer.model, params, batch, rng, config, train=True)[0]

  forward, gradient = jax.jit(loss), jax.jit(jax.grad(loss))
  tokens = args.batch * args.seq_len
  print(f"BERT-{args.size}, batch {args.batch} x seq {args.seq_len}, remat "
        f"{args.remat_policy}, {os.cpu_count()} cores")
  with trainer.context():
    for name, fn in (("forward", forward), ("gradient", gradient)):
      jax.block_until_ready(fn(state.params))
      seconds, faults, system = _timed(lambda: jax.block_until_ready(fn(state.params)),
                                       args.repeats)
      print(f"{name:9s} {seconds:7.3f} s  {tokens / seconds:8.0f} tokens/s  "
            f"{faults:9.0f} minor faults  {system:5.2f} s system")

    def step():
      nonlocal state
      state, metrics = trainer.step(state, batch)
      jax.block_until_ready(metrics["loss"])

    step()
    seconds, faults, system = _timed(step, args.repeats)
    print(f"{'step':9s} {seconds:7.3f} s  {tokens / seconds:8.0f} tokens/s  "
          f"{faults:9.0f} minor faults  {system:5.2f} s system")
    hlo = trainer._step.lower(state, batch).compile().as_text()
    by_kind = traced_op_seconds(step, hlo)
  total = sum(by_kind.values())
  print("\none traced step, XLA ops by kind:")
  for kind in KINDS:
    print(f"  {kind:15s} {by_kind[kind]:7.3f} s  {100 * by_kind[kind] / total:5.1f}%")
  print(f"  {'total':15s} {total:7.3f} s")


if __name__ == "__main__":
  main()
