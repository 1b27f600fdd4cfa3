"""The pretraining loop: state on the mesh, a pure jitted step, checkpoints, metrics, resume.

Resume order: the workdir's own latest checkpoint, else a fresh start. The step key is
fold_in(train.seed, step) and the data pipeline is a function of the step, so a resumed run
reads the same batches and draws the same dropout as an uninterrupted one.
"""

import collections
import contextlib
import signal
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bertlab import config_checks, console
from bertlab.models.build import model_config, pretraining_model
from bertlab.data.pipeline import PretrainingData
from bertlab.hub import workdir as hub_workdir
from bertlab.tasks import pretraining
from bertlab.train import (checkpoints, cpu_random, flops, metrics as metric_lib, partitioning,
                           workdir_lock)
from bertlab.train.optimizers import build_optimizer, learning_rate_schedule, stable_end_step
from bertlab.train.step import (NonFiniteLoss, TrainState, abstract_state,  # noqa: F401
                                check_finite, new_state, train_step)  # (re-exports NonFiniteLoss)

# What the train step reads from a batch of bertlab/data/pipeline.py.
MODEL_FIELDS = ("input_ids", "attention_mask", "token_type_ids", "sentence_label",
                "masked_positions", "masked_ids", "masked_weights", "span_bounds", "span_slots",
                "span_weights")
# Present only when rows are packed (data.pack_sequences); the sentence fields for pairs.
PACKED_FIELDS = ("sequence_ids", "sentence_positions", "sentence_weights")


# The exit status of a run stopped by SIGTERM after saving (EX_TEMPFAIL: try again), so a
# scheduler that requeues on failure requeues it; 0 means the run reached train.steps.
PREEMPTED_EXIT_CODE = 75

# Steps dispatched ahead of the device at most: SIGTERM is then acted on within this many
# steps (a preempted TPU VM has about 30 s), at no cost to throughput.
MAX_STEPS_IN_FLIGHT = 2


class Preempted(Exception):
  """SIGTERM stopped the run; its state at `step` is saved and a rerun resumes from there."""

  exit_code = PREEMPTED_EXIT_CODE

  def __init__(self, step: int, workdir: str):
    super().__init__(f"SIGTERM: saved step {step} in {workdir}; rerun the same command to "
                     f"resume (exit status {PREEMPTED_EXIT_CODE}).")
    self.step = step


def _example_inputs(config):
  seq_len, predictions = config.data.seq_len, config.data.max_predictions
  ids = jnp.zeros((2, seq_len), jnp.int32)
  kwargs = dict(masked_positions=jnp.zeros((2, predictions), jnp.int32))
  if "sbo" in config.model.heads:
    kwargs["span_bounds"] = jnp.zeros((2, predictions, 2), jnp.int32)
    kwargs["span_slots"] = jnp.zeros((2, predictions), jnp.int32)
  return (ids, jnp.ones_like(ids), jnp.zeros_like(ids)), kwargs


class Trainer:
  """The model, optimizer, mesh and shardings of one config, and the jitted step."""

  def __init__(self, config, devices=None):
    config_checks.check_numbers(config)
    config_checks.check_sequence_length(model_config(config), config.data.seq_len)
    self.config = config
    cpu_random.use_unrolled_threefry()  # dropout and sampling: the same bits, fused
    self.model = pretraining_model(config)
    self.optimizer = build_optimizer(config.train)
    self.schedule = learning_rate_schedule(config.train)
    self.loss_fn = pretraining.loss_fn(config)
    self.mesh = partitioning.build_mesh(config.mesh, devices)
    partitioning.check_batch_splits(config.train.batch_size, self.mesh)
    self.rules = partitioning.rules_from_config(config.mesh)
    self.abstract_state, self.state_shardings = abstract_state(
        lambda: self._init(jax.random.key(config.train.seed)), self.mesh, self.rules)
    self.batch_sharding = partitioning.batch_sharding(self.mesh)
    self._step = jax.jit(self._train_step, in_shardings=(self.state_shardings,
                                                         self.batch_sharding),
                         out_shardings=(self.state_shardings,
                                        partitioning.replicated(self.mesh)),
                         donate_argnums=0)
    self._eval = jax.jit(self._eval_step, in_shardings=(self.state_shardings,
                                                        self.batch_sharding, None),
                         out_shardings=partitioning.replicated(self.mesh))

  def context(self, with_mesh: bool = True):
    """The mesh and the logical axis rules, for tracing the model.

    Initialisation runs without the mesh: flax's DenseGeneral reshapes a flat kernel through
    its logical box, whose constraint has the unflattened rank. `out_shardings` places it.
    """
    stack = contextlib.ExitStack()
    if with_mesh:
      stack.enter_context(jax.sharding.set_mesh(self.mesh))
    stack.enter_context(nn.logical_axis_rules(self.rules))
    return stack

  def _init(self, rng):
    args, kwargs = _example_inputs(self.config)
    params = self.model.init({"params": rng, "dropout": rng}, *args, **kwargs)["params"]
    return new_state(params, self.optimizer)

  def init_state(self) -> TrainState:
    with self.context(with_mesh=False):
      init = jax.jit(lambda rng: nn.unbox(self._init(rng)), out_shardings=self.state_shardings)
      return init(jax.random.key(self.config.train.seed))

  def _train_step(self, state: TrainState, batch: dict):
    train = self.config.train
    loss_fn = lambda params, batch, rng: self.loss_fn(self.model, params, batch, rng,
                                                      self.config)
    return train_step(state, batch, loss_fn=loss_fn, optimizer=self.optimizer,
                      schedule=self.schedule, seed=train.seed,
                      grad_accum_steps=train.grad_accum_steps)

  def _eval_step(self, state: TrainState, batch: dict, rng):
    loss, metrics = self.loss_fn(self.model, state.params, batch, rng, self.config, train=False)
    return dict(metrics, loss=loss)

  def _global(self, host_batch: dict) -> dict:
    fields = MODEL_FIELDS + tuple(k for k in PACKED_FIELDS if k in host_batch)
    return partitioning.global_batch({k: host_batch[k] for k in fields}, self.mesh)

  def step(self, state: TrainState, host_batch: dict):
    with self.context():
      return self._step(state, self._global(host_batch))

  def evaluate_batch(self, state: TrainState, host_batch: dict, index: int) -> dict:
    with self.context():
      return self._eval(state, self._global(host_batch), jax.random.key(index))


class _Preemption:
  """SIGTERM (a preempted TPU VM) asks the loop to checkpoint and stop."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def any_host(self) -> bool:
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.array(self.requested))))

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def _check_finite(step: int, value: float, mngr):
  kept = mngr.latest_step()
  check_finite(value, f"step {step}", f"step {kept}" if kept is not None else "none")


def restore_or_init(trainer: Trainer, mngr) -> tuple[TrainState, int]:
  """The newest checkpoint that restores (older ones past a corrupt one), else a fresh state."""
  found = checkpoints.restore_newest(mngr, trainer.abstract_state, trainer.state_shardings)
  if found is None:
    return trainer.init_state(), 0
  step, state, data_position = found
  seed = data_position.get("seed", trainer.config.data.seed)
  if seed != trainer.config.data.seed and not trainer.config.train.allow_config_change:
    raise ValueError(
        f"The checkpoint at step {step} was trained on data.seed={seed}, the config says "
        f"data.seed={trainer.config.data.seed}: the resumed run would read other batches. "
        "Use the seed that wrote it, or --config.train.allow_config_change=True.")
  return state, int(data_position["step"])


def train_and_evaluate(config, workdir: str, on_step=None) -> dict:
  """Pretrains per `config` in `workdir`, resuming from its latest checkpoint.

  `on_step(step, metrics or None)` after every step (metrics on logged steps) replaces the
  console progress line: the sweep runner draws a progress bar with it."""
  trainer = Trainer(config)
  with workdir_lock.WorkdirLock(workdir):
    return _train(trainer, config, workdir, on_step)


def _train(trainer: Trainer, config, workdir: str, on_step) -> dict:
  stable_end = stable_end_step(config.train)
  mngr = checkpoints.manager(workdir, config.train, () if stable_end is None else (stable_end,))
  if mngr.latest_step() is not None:
    hub_workdir.check_resume_config(config, workdir)
  state, start = restore_or_init(trainer, mngr)
  hub_workdir.write_config(config, workdir)  # what load_pretrained(workdir) rebuilds from
  talk = jax.process_index() == 0 and on_step is None  # the sweep runner draws its own bar
  if talk:
    params = sum(x.size for x in jax.tree.leaves(trainer.abstract_state.params))
    print("\n".join(console.header_lines(config, workdir, start, params, trainer.mesh)),
          flush=True)
  preparing = time.perf_counter()
  own_vocab = hub_workdir.run_tokenizer(config, workdir)  # a resume's: the one it learnt
  data = PretrainingData.from_config(config, tokenizer=own_vocab)
  hub_workdir.save_tokenizer(data.tokenizer, workdir, model_config(config))
  batches = data.batches(start)
  writer = metric_lib.MetricWriter(workdir)
  peak = flops.peak_flops()
  tokens_per_step = config.train.batch_size * config.data.seq_len
  flops_per_step = flops.step_flops(config)
  eval_every = config.train.eval_every
  eval_data = PretrainingData.from_config(config, split="eval", tokenizer=data.tokenizer) \
      if eval_every else None
  preemption = _Preemption()
  total, last = config.train.steps, {}
  timer, timed_steps = time.perf_counter(), 0
  in_flight = collections.deque()
  saver = checkpoints.Saver(mngr)
  if talk:
    print(console.data_line(
        config, len(data.examples["input_ids"]), time.perf_counter() - preparing,
        None if eval_data is None else len(eval_data.examples["input_ids"])), flush=True)
  clock = console.Clock(start, total, eval_every, time.perf_counter())
  held_out = None
  try:
    for step in range(start, total):
      state, step_metrics = trainer.step(state, next(batches))
      saver.check()
      in_flight.append(step_metrics)
      if len(in_flight) > MAX_STEPS_IN_FLIGHT:
        jax.block_until_ready(in_flight.popleft())
      done, timed_steps = step + 1, timed_steps + 1
      log = done % config.train.log_every == 0 or done == total
      save = done % config.train.checkpoint_every == 0 or done in (total, stable_end)
      stop = preemption.any_host()
      if log or save or stop:
        values = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
        _check_finite(done, values["loss"], mngr)
      if log:
        elapsed = time.perf_counter() - timer
        values["steps_per_sec"] = timed_steps / elapsed
        values["tokens_per_sec"] = values["steps_per_sec"] * tokens_per_step
        if peak:
          values["mfu"] = values["steps_per_sec"] * flops_per_step / (peak * jax.device_count())
        writer.write(done, values)
        if talk:
          print(metric_lib.progress_line(done, total, values) + " | " + clock.text(
              done, values["steps_per_sec"], time.perf_counter()), flush=True)
        timer, timed_steps, last = time.perf_counter(), 0, values
      if eval_every and (done % eval_every == 0 or done == total):
        eval_start = time.perf_counter()
        held_out = held_out_metrics(trainer, state, eval_data, config.train.eval_batches)
        writer.write(done, {"eval": True, "split": "eval", **held_out})
        clock.eval_seconds = time.perf_counter() - eval_start
        if talk:
          print(metric_lib.progress_line(done, total, held_out, "held-out")
                + f" | {console.duration(clock.eval_seconds)}", flush=True)
        timer, timed_steps = time.perf_counter(), 0  # evaluation is not training throughput
      if on_step is not None:
        on_step(done, values if log else None)
      if save or stop:
        saver.save(done, state, {"step": done, "seed": config.data.seed})
      if stop:
        saver.finish()
        raise Preempted(done, workdir)
    saver.finish()
    if talk:
      print("\n".join(console.closing_lines(workdir, last, held_out, total)), flush=True)
  finally:
    try:
      mngr.wait_until_finished()  # after an error: let the saves in flight end, quietly
    except Exception:  # noqa: BLE001 (already reported by finish_saves or check_saves)
      pass
    writer.close()
    preemption.restore()
  return last


def latest_step(config, workdir: str) -> int | None:
  """The step of the newest checkpoint in `workdir` (None before the first save)."""
  return checkpoints.manager(workdir, config.train).latest_step()


def held_out_metrics(trainer: Trainer, state: TrainState, data: PretrainingData,
                     max_batches: int) -> dict:
  """Mean metrics over the first `max_batches` held-out batches: the same batches and masks
  at every call, so evaluations during training and `--mode=eval` are comparable."""
  batches = data.batches(0)
  count = min(max_batches, data.batches_per_epoch)
  sums = {}
  for index in range(count):
    for key, value in jax.device_get(trainer.evaluate_batch(state, next(batches), index)).items():
      sums[key] = sums.get(key, 0.0) + float(value)
  return {**{k: v / count for k, v in sums.items()}, "eval_batches": count}


def latest_checkpoint(config, workdir: str) -> tuple[Trainer, TrainState, int, PretrainingData]:
  """The trainer, the state of the newest checkpoint in `workdir` and its step, and the
  held-out data in the vocabulary that run learnt."""
  trainer = Trainer(config)
  mngr = checkpoints.manager(workdir, config.train)
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints: train first, with the "
                            "same --config and --workdir.")
  state, _ = checkpoints.restore(mngr, step, trainer.abstract_state, trainer.state_shardings)
  data = PretrainingData.from_config(config, split="eval",
                                     tokenizer=hub_workdir.run_tokenizer(config, workdir))
  return trainer, state, step, data


def evaluate(config, workdir: str) -> dict:
  """Metrics of the latest checkpoint on held-out data (`--mode=eval`)."""
  trainer, state, step, data = latest_checkpoint(config, workdir)
  results = {"step": step, **held_out_metrics(trainer, state, data, config.train.eval_batches)}
  if jax.process_index() == 0:
    # The row training's held-out evaluations write (split "eval"), so it reaches TensorBoard
    # and the curves too. A refused write loses nothing: the numbers are still returned.
    try:
      writer = metric_lib.MetricWriter(workdir)
      try:
        writer.write(step, dict({k: v for k, v in results.items() if k != "step"}, eval=True,
                                split="eval"))
      finally:
        writer.close()
    except Exception as error:  # noqa: BLE001 (gfile raises tf.errors.OpError, not OSError)
      print(f"Not recorded in the workdir (is it read-only?): {error}", file=sys.stderr,
            flush=True)
  return results
