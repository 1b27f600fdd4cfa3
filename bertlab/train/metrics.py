"""Where metrics go: `metrics.jsonl` (one JSON object per logged step), TensorBoard events and a
console line, written by the first host only."""

import json
import os

import jax

from bertlab import files

def read_metrics(workdir: str) -> list[dict]:
  """The rows of a workdir's metrics.jsonl, oldest first ([] before the first log)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not files.exists(path):
    return []
  with files.open_file(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
  def __init__(self, workdir: str):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      files.makedirs(workdir)
      self._jsonl = files.open_file(os.path.join(workdir, "metrics.jsonl"), "a")
      import tensorflow as tf
      self._tf = tf
      self._events = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict):
    """Numbers as floats; strings (an evaluation row's `split`) stay labels, and prefix the
    TensorBoard tags of that row."""
    if not self.enabled:
      return
    row = {"step": int(step), **{k: v if isinstance(v, (str, bool)) else float(v)
                                 for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    prefix = "".join(f"{v}/" for v in row.values() if isinstance(v, str))
    with self._events.as_default(step=int(step)):
      for key, value in row.items():
        if key != "step" and not isinstance(value, (str, bool)):
          self._tf.summary.scalar(prefix + key, value)
    self._events.flush()

  def close(self):
    if self.enabled:
      self._jsonl.close()
      self._events.close()


def progress_line(step: int, total: int, metrics: dict, label: str = "") -> str:
  """One console line; `label` names a held-out evaluation (no throughput then)."""
  keys = [k for k in metrics if k.endswith(("_loss", "_accuracy", "_auc")) or k == "loss"]
  parts = [f"step {step}/{total}" + (f" {label}" if label else "")]
  parts += [f"{k} {metrics[k]:.4f}" for k in keys]
  if "steps_per_sec" in metrics:
    parts += [f"{metrics['steps_per_sec']:.2f} steps/s",
              f"{metrics['tokens_per_sec']:.0f} tokens/s"]
  if "mfu" in metrics:
    parts.append(f"MFU {100 * metrics['mfu']:.1f}%")
  return " | ".join(parts)
