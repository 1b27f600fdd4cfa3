"""Peak memory of create_pretraining_data on the embedded corpus and on a corpus 10x larger.

  python benchmarks/create_pretraining_data_memory.py [--factor=10] [--workers=2]

Streaming means the peak stays flat as the corpus grows: the tool holds at most two chunks of
`--docs_per_shard` documents per worker. Static masking with dupe_factor 10 (BERT's setting),
BERT's segment pairs with NSP, seq_len 128.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(corpus_path: str, output_dir: str, workers: int, docs_per_shard: int) -> dict:
  command = [sys.executable, "-m", "bertlab.data.create_pretraining_data",
             "--config=configs/bert.py:tiny", f"--config.data.source={corpus_path}",
             "--config.data.dynamic_masking=False", "--config.data.dupe_factor=10",
             f"--output_dir={output_dir}", f"--num_workers={workers}",
             f"--docs_per_shard={docs_per_shard}"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=True)
  line = out.stdout.strip().splitlines()[-1]
  return {k: float(v) for k, v in re.findall(r"(\w+): ([\d.]+)", line)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--factor", type=int, default=10)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--docs_per_shard", type=int, default=200)
  args = parser.parse_args()
  from bertlab.data import corpus
  base = corpus.default_corpus_path()
  with tempfile.TemporaryDirectory() as tmp:
    big = os.path.join(tmp, "corpus_x.txt")
    with open(base, encoding="utf-8") as f:
      text = f.read()
    with open(big, "w", encoding="utf-8") as f:
      for _ in range(args.factor):
        f.write(text)
    rows = []
    for name, path in (("1x", base), (f"{args.factor}x", big)):
      stats = run(path, os.path.join(tmp, name), args.workers, args.docs_per_shard)
      rows.append((name, os.path.getsize(path) / 1e6, stats))
  print(f"{'corpus':>7} {'MB text':>8} {'examples':>9} {'shards':>6} {'seconds':>8} "
        f"{'peak MB':>8}")
  for name, size, s in rows:
    print(f"{name:>7} {size:>8.1f} {s['examples']:>9.0f} {s['shards']:>6.0f} "
          f"{s['seconds']:>8.1f} {s['peak_memory_mb']:>8.0f}")
  print(f"peak memory ratio {rows[1][0]}/{rows[0][0]}: "
        f"{rows[1][2]['peak_memory_mb'] / rows[0][2]['peak_memory_mb']:.2f}")


if __name__ == "__main__":
  main()
