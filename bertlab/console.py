"""What a run prints for people: a header, progress lines with the time left, a closing summary;
the libraries' start-up notices and INFO records only when asked for (`--verbosity=0`).

Warnings and errors always show: only INFO records (orbax's checkpoint traces, absl's, jax's
backend probing) and TensorFlow's native start-up notices are held back.
"""

import contextlib
import logging as std_logging
import os
import re
import sys
import tempfile

import jax
from absl import flags, logging

# TensorFlow's native notices on import: oneDNN, the CUDA probe of a machine without a GPU, the
# CPU instruction hint, absl's pre-init line. They tell a researcher nothing about the run.
_NATIVE_NOTICE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    r"|E\d{4} [\d:.]+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    r"|To enable the following instructions: .*rebuild TensorFlow)")


def native_notice(line: str) -> bool:
  return bool(_NATIVE_NOTICE.match(line))


@contextlib.contextmanager
def _native_stderr_filtered():
  """Holds back file descriptor 2 (where C++ logs go), then re-prints all but the notices."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      text = captured.read().decode(errors="replace")
      sys.stderr.write("".join(line for line in text.splitlines(keepends=True)
                               if not native_notice(line)))
      sys.stderr.flush()


@contextlib.contextmanager
def expected_warnings_off():
  """For a call whose library warnings bertlab expects (orbax opening a checkpoint read-only
  says so three times): they would only teach users to skip warnings."""
  logger = logging.get_absl_logger()
  level = logger.level
  logger.setLevel(std_logging.ERROR)  # Python's level (absl's ERROR constant is -2)
  try:
    yield
  finally:
    logger.setLevel(level)


def setup(verbosity: int | None = None):
  """Before a run touches TensorFlow: `verbosity` None (the default) keeps Python logging at
  WARNING and TensorFlow's import notices out; 0 (absl's INFO) or more shows everything.

  TensorFlow never gets the accelerator either way: bertlab uses it for input pipelines only,
  and JAX owns the device memory."""
  quiet = verbosity is None or verbosity < 0
  if quiet:
    logging.set_verbosity(logging.WARNING)
  else:
    logging.set_verbosity(verbosity)
  if "tensorflow" in sys.modules:
    return
  with _native_stderr_filtered() if quiet else contextlib.nullcontext():
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")


def setup_from_flags():
  """`setup` with absl's --verbosity, when the command line gave one."""
  given = flags.FLAGS["verbosity"].present
  setup(flags.FLAGS.verbosity if given else None)


def add_verbosity_argument(parser):
  """The same switch for argparse commands."""
  parser.add_argument("--verbosity", type=int, default=None,
                      help="0: also the libraries' INFO records and TensorFlow's notices")


def duration(seconds: float) -> str:
  """12 s, 3 min 05 s, 2 h 04 min."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return f"{seconds} s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes} min {seconds:02d} s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours} h {minutes:02d} min"


class Clock:
  """Time spent and left: training at the latest logged rate, plus each evaluation still to
  come at the duration of the last one."""

  def __init__(self, start_step: int, total: int, eval_every: int, now: float):
    self.start_step, self.total, self.eval_every = start_step, total, eval_every
    self.started = now
    self.eval_seconds = 0.0

  def evaluations_left(self, step: int) -> int:
    if not self.eval_every:
      return 0
    after = self.total // self.eval_every - step // self.eval_every
    return after + (1 if self.total % self.eval_every else 0)

  def text(self, step: int, steps_per_sec: float, now: float) -> str:
    left = (self.total - step) / max(steps_per_sec, 1e-9)
    left += self.evaluations_left(step) * self.eval_seconds
    return f"{duration(now - self.started)} elapsed, {duration(left)} left"


def header_lines(config, workdir: str, start: int, params: int, mesh) -> list[str]:
  """Who is training what, where, from which step: printed before the data is prepared."""
  model, train = config.model, config.train
  devices = jax.devices()
  objectives = " + ".join(config.data.get("sentence_objective", "sentence") if head == "sentence"
                          else head for head in model.get("heads", ())) or "none"
  mesh_text = " x ".join(f"{name} {size}" for name, size in mesh.shape.items())
  return [
      f"bertlab: {model.family} (hidden {model.hidden_size}, {model.num_layers} layers, vocab "
      f"{model.vocab_size:,}), {params:,} parameters; objectives: {objectives}",
      f"devices: {len(devices)} x {devices[0].device_kind} on {jax.process_count()} host(s); "
      f"mesh {mesh_text}",
      f"train: {train.steps:,} steps of batch {train.batch_size}, {train.optimizer} "
      f"{train.learning_rate:g}; workdir {workdir}",
      f"Resumed from step {start} in {workdir}." if start else "starting at step 0",
  ]


def data_line(config, examples: int, seconds: float, held_out: int | None = None) -> str:
  data = config.data
  source = "the embedded corpus" if data.source == "default" else data.source
  evaluation = f", {held_out:,} held out" if held_out is not None else ""
  return (f"data: {source}: {examples:,} sequences of {data.seq_len} tokens on this host"
          f"{evaluation} ({data.input_format}, {data.masking} masking), ready in "
          f"{duration(seconds)}")


def closing_lines(workdir: str, last: dict, held_out: dict | None, step: int) -> list[str]:
  """The run's last numbers and where everything it wrote is."""
  def numbers(metrics):
    keys = [k for k in metrics if k == "loss" or k.endswith(("_accuracy", "_auc"))]
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys)
  lines = [f"done at step {step:,}: {numbers(last)}" if last else f"done at step {step:,}"]
  if held_out:
    lines.append(f"held-out: {numbers(held_out)}")
  lines.append(f"checkpoints: {workdir}/checkpoints  metrics: {workdir}/metrics.jsonl  "
               f"tensorboard --logdir {workdir}/tensorboard")
  return lines


def finetune_header_lines(config, workdir: str, start_epoch: int, train_examples: int,
                          steps_per_epoch: int, eval_examples: dict) -> list[str]:
  finetune, train = config.finetune, config.train
  evals = ", ".join(f"{split} {n:,}" for split, n in eval_examples.items())
  return [
      f"bertlab: fine-tuning {finetune.task} {finetune.name} from "
      f"{finetune.init_from or 'a fresh ' + config.model.family}",
      f"data: {train_examples:,} training examples ({evals}), sequences of "
      f"{config.data.seq_len} tokens",
      f"train: {train.epochs} epochs of {steps_per_epoch:,} steps of batch {train.batch_size}, "
      f"{train.optimizer} {train.learning_rate:g}; workdir {workdir}",
      (f"Resumed after epoch {start_epoch} in {workdir}." if start_epoch
       else "starting at epoch 1"),
  ]
