"""Start-up on a real corpus: how long before the first batch, on a cold cache and a warm one,
and how long a resumed run takes to train again.

  python benchmarks/corpus_startup.py [--config=configs/bert.py:cpu] [--source=FILE]

Each measurement is a fresh process, as a launch or a resume is:
  * vocabulary: training the config's `data.vocab=corpus` vocabulary (once per corpus);
  * cold: tokenizing and building the training and held-out examples (and BERT's static masks)
    with an empty example cache, then the first batch;
  * warm: the same with the cache filled (bertlab/data/example_cache.py);
  * resume: `python -m bertlab.main` on a workdir with a checkpoint, one more step to train:
    the whole command, JAX start-up, restore and compilation included.
The cache is a temporary directory (`$BERTLAB_CACHE`), removed at the end.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DATA = """
import sys, time
from bertlab import config_files
from bertlab.data.pipeline import PretrainingData
from bertlab.data.vocab import tokenizer_from_config
config = config_files.apply_overrides(config_files.load(sys.argv[1]), {"data.source": sys.argv[2]})
start = time.perf_counter()
if sys.argv[3] == "vocab":
  tokenizer_from_config(config.data, config.model.vocab_size)
else:
  train = PretrainingData.from_config(config, 0, 1)
  next(train.batches(0))
  held_out = PretrainingData.from_config(config, 0, 1, split="eval")
  next(held_out.batches(0))
  print("sequences", train.num_sequences, held_out.num_sequences)
print("seconds", time.perf_counter() - start)
"""


def _run(args, env) -> tuple[float, str]:
  start = time.perf_counter()
  out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return time.perf_counter() - start, out.stdout


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="configs/bert.py:cpu")
  parser.add_argument("--source", default=None, help="default: the config's data.source")
  args = parser.parse_args()
  sys.path.insert(0, ROOT)
  from bertlab import config_files
  source = args.source or config_files.load(args.config).data.source
  cache = tempfile.mkdtemp(prefix="bertlab-startup-")
  env = dict(os.environ, BERTLAB_CACHE=cache, TF_CPP_MIN_LOG_LEVEL="3")
  size = os.path.getsize(source) / 1e6
  print(f"{args.config} on {source} ({size:.0f} MB on disk)")
  try:
    for phase in ("vocab", "cold", "warm"):
      wall, out = _run([sys.executable, "-c", _DATA, args.config, source, phase], env)
      inner = float(out.split("seconds")[-1])
      extra = next((l for l in out.splitlines() if l.startswith("sequences")), "")
      print(f"{phase:>6}: {inner:7.1f} s in the pipeline, {wall:7.1f} s for the process  {extra}",
            flush=True)
    workdir = os.path.join(cache, "run")
    launch = [sys.executable, "-m", "bertlab.main", f"--config={args.config}",
              f"--workdir={workdir}", f"--config.data.source={source}",
              "--config.train.eval_every=0", "--config.train.log_every=1"]
    wall, _ = _run(launch + ["--config.train.steps=2", "--config.train.checkpoint_every=2"], env)
    print(f"first launch, 2 steps: {wall:.1f} s")
    wall, _ = _run(launch + ["--config.train.steps=3", "--config.train.checkpoint_every=3"], env)
    print(f"resume, 1 more step:   {wall:.1f} s (whole command)")
  finally:
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
  main()
