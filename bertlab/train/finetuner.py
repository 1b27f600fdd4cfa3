"""The fine-tuning loop: a pretrained (or fresh) encoder with a task head, epochs of AdamW with
warmup over `train.warmup_proportion` of the steps then linear decay, evaluation after each
epoch, the best checkpoint kept and the official prediction files written from it.

Resume is per epoch: `checkpoints/` holds the last finished epoch, `best/` the best one by the
task's main metric. Epoch e shuffles the training rows with seed `train.seed + e`, so a resumed
run sees the order an uninterrupted one would have.
"""

import copy
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bertlab import config_checks, console, files
from bertlab.data import finetune as finetune_data, finetune_packing
from bertlab.hub import init_from, workdir as hub_workdir
from bertlab.models.config import ModelConfig
from bertlab.models.finetuning import FinetuningModel
from bertlab.tasks import finetuning as jobs
from bertlab.train import (best_checkpoint, checkpoints, cpu_random, metrics as metric_lib,
                           partitioning, workdir_lock)
from bertlab.train.optimizers import (build_optimizer, learning_rate_schedule, scale_updates,
                                      update_scales)
from bertlab.train.step import (TrainState, abstract_state, check_finite, new_state,
                                train_step)


class Finetuner:
  """Model, optimizer, mesh and the jitted train and predict steps of one fine-tuning run."""

  def __init__(self, config, model_config: ModelConfig, head: str, num_labels: int,
               total_steps: int, pad_id: int = 0):
    self.config, self.head, self.pad_id = config, head, pad_id
    cpu_random.use_unrolled_threefry()  # dropout: the same bits, fused
    # Several inputs to a row (bertlab/data/finetune_packing.py), sequence-level heads only.
    self.packed = bool(config.data.get("pack_sequences", False))
    if self.packed:
      finetune_packing.check_head(head)
    self._train_plans, self.train_rows = None, None
    self.model = FinetuningModel(model_config, head, num_labels,
                                 bool(config.finetune.freeze_encoder))
    train = copy.deepcopy(config.train)
    with train.unlocked():
      train.steps = max(total_steps, 1)
      train.warmup_steps = int(config.train.warmup_proportion * total_steps)
    self.mesh = partitioning.build_mesh(config.mesh)
    partitioning.check_batch_splits(config.train.batch_size, self.mesh)
    partitioning.check_batch_splits(config.train.eval_batch_size, self.mesh,
                                    "train.eval_batch_size")
    self.rules = partitioning.rules_from_config(config.mesh)
    seq_len = config.data.seq_len
    self._example = jnp.zeros((2, seq_len), jnp.int32)
    with nn.logical_axis_rules(self.rules):
      boxed = jax.eval_shape(self._init_params, jax.random.key(0))
    params_shape = nn.unbox(boxed)
    decay = config.finetune.layerwise_lr_decay
    scales = update_scales(params_shape, model_config, decay,
                           bool(config.finetune.freeze_encoder))
    self.train = train
    self.optimizer = build_optimizer(train, extra=scale_updates(scales))
    self.schedule = learning_rate_schedule(train)
    self.abstract_state, self.state_shardings = abstract_state(
        lambda: new_state(boxed, self.optimizer),
        self.mesh, self.rules)
    batch = partitioning.batch_sharding(self.mesh)
    self._step = jax.jit(self._train_step, in_shardings=(self.state_shardings, batch),
                         out_shardings=(self.state_shardings, partitioning.replicated(self.mesh)),
                         donate_argnums=0)
    self._predict = jax.jit(self._predict_step,
                            in_shardings=(self.state_shardings.params, batch))

  def _init_params(self, rng):
    ids = self._example
    return self.model.init({"params": rng, "dropout": rng}, ids, jnp.ones_like(ids),
                           jnp.zeros_like(ids))["params"]

  def init_state(self, pretrained_encoder=None) -> TrainState:
    with nn.logical_axis_rules(self.rules):
      params = nn.unbox(jax.jit(self._init_params)(jax.random.key(self.config.train.seed)))
    if pretrained_encoder is not None:
      params = dict(params, encoder=init_from.fit_encoder(params["encoder"], pretrained_encoder))
    make = jax.jit(lambda p: new_state(p, self.optimizer),
                   out_shardings=self.state_shardings)
    return make(params)

  def _train_step(self, state: TrainState, batch):
    def loss_fn(params, batch, rng):
      outputs = self.model.apply({"params": params}, batch["input_ids"],
                                 batch["attention_mask"], batch["token_type_ids"],
                                 deterministic=False, sequence_ids=batch.get("sequence_ids"),
                                 pool_positions=batch.get("cls_positions"),
                                 rngs={"dropout": rng})
      return jobs.task_loss(self.head, outputs, batch)  # packed: [rows, slots] weights

    return train_step(state, batch, loss_fn=loss_fn, optimizer=self.optimizer,
                      schedule=self.schedule, seed=self.train.seed,
                      grad_accum_steps=self.train.grad_accum_steps)

  def _predict_step(self, params, batch):
    return self.model.apply({"params": params}, batch["input_ids"], batch["attention_mask"],
                            batch["token_type_ids"], sequence_ids=batch.get("sequence_ids"),
                            pool_positions=batch.get("cls_positions"))

  def train_batches(self, arrays: dict, epoch: int):
    """Epoch `epoch`'s global batches as numpy (shuffled by `train.seed + epoch`); packed
    ones hold the same examples in `self.train_rows` rows, planned for every epoch at once
    so that one compiled step (and one dropout shape, for an exact resume) serves the run."""
    batch_size, seed = self.config.train.batch_size, self.config.train.seed
    if not self.packed:
      for batch in finetune_data.batches(arrays, batch_size, seed + epoch, drop_remainder=True):
        yield {k: v.numpy() for k, v in batch.items()}
      return
    if self._train_plans is None:
      lengths, count = arrays["attention_mask"].sum(1), len(arrays["input_ids"])
      self._train_plans = [finetune_packing.plan(lengths, finetune_packing.batch_indices(
          count, batch_size, seed + e, True), arrays["input_ids"].shape[1])
          for e in range(self.config.train.epochs)]
      self.train_rows = finetune_packing.rows_for(
          [rows for plans in self._train_plans for rows in plans],
          partitioning.batch_shards(self.mesh))
    for groups in self._train_plans[epoch]:
      batch = finetune_packing.pack_batch(arrays, groups, self.train_rows, self.pad_id)
      del batch["example_index"]
      yield batch

  def step(self, state, batch):
    """One train step on a global `batch` that every host holds whole; each feeds its rows."""
    with jax.sharding.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      return self._step(state, partitioning.global_batch(partitioning.process_rows(batch),
                                                         self.mesh))

  def predict(self, params, arrays: dict, batch_size: int):
    """The head's outputs for every row of `arrays`, in order, as numpy on every host (each
    computes its rows of each batch; the outputs are gathered across hosts)."""
    inputs = {k: arrays[k] for k in finetune_packing.INPUT_FIELDS}
    if self.packed:
      return self._predict_packed(params, inputs, batch_size)
    count, outputs = len(inputs["input_ids"]), []
    with jax.sharding.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      for batch in finetune_data.batches(inputs, batch_size, None, drop_remainder=False):
        batch = {k: v.numpy() for k, v in batch.items() if k != "example_weight"}
        local = partitioning.process_rows(batch)
        outputs.append(partitioning.to_host(self._predict(
            params, partitioning.global_batch(local, self.mesh))))
    if isinstance(outputs[0], tuple):
      return tuple(np.concatenate([o[i] for o in outputs])[:count] for i in range(2))
    return np.concatenate(outputs)[:count]

  def _predict_packed(self, params, inputs: dict, batch_size: int) -> np.ndarray:
    """`predict` on packed rows: batches of `batch_size` examples in order, each output put
    back at its example's place."""
    count = len(inputs["input_ids"])
    plans = finetune_packing.plan(
        inputs["attention_mask"].sum(1),
        finetune_packing.batch_indices(count, batch_size, None, drop_remainder=False),
        inputs["input_ids"].shape[1])
    rows, result = finetune_packing.rows_for(plans, partitioning.batch_shards(self.mesh)), None
    with jax.sharding.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      for groups in plans:
        batch = finetune_packing.pack_batch(inputs, groups, rows, self.pad_id)
        fed = {k: v for k, v in batch.items() if k != "example_index"}
        out = np.asarray(partitioning.to_host(self._predict(
            params, partitioning.global_batch(partitioning.process_rows(fed), self.mesh))))
        if result is None:
          result = np.zeros((count,) + out.shape[2:], out.dtype)
        finetune_packing.unpack_outputs(out, batch, result)
    return result


def _evaluate_splits(finetuner, job, params, config, eval_arrays: dict
                     ) -> dict[str, tuple[dict, object]]:
  """(metrics, predictions) per dev split; `eval_arrays` are built once per run."""
  results = {}
  for split in job.eval_splits:
    outputs = finetuner.predict(params, eval_arrays[split], config.train.eval_batch_size)
    results[split] = job.score(split, outputs)
  return results


def _prepare(config):
  if config.finetune.task not in jobs.TASKS:
    raise ValueError(f"Unknown finetune.task {config.finetune.task!r}; valid: "
                     f"{', '.join(jobs.TASKS)}.")
  config_checks.check_numbers(config)
  model_cfg, encoder_params, tokenizer = init_from.resolve_init(config)
  config_checks.check_sequence_length(model_cfg, config.data.seq_len)
  job = jobs.build_job(config, tokenizer, model_cfg)
  return model_cfg, encoder_params, job, tokenizer


def _label_names(job) -> list[str] | None:
  """The class names in label-id order (GLUE's task labels, NER's tags); None otherwise."""
  labels = getattr(job, "labels", None) or getattr(getattr(job, "task", None), "labels", None)
  return list(labels) if labels else None


def _split_arrays(job, split: str, config) -> dict:
  """One split's arrays, or an error naming the split and where it was looked for: before
  any training, so an empty dev file does not surface after an epoch."""
  where = (f"data.data_dir={config.data.data_dir!r}" if config.data.get("data_dir")
           else "TFDS")
  try:
    arrays = job.arrays(split)
  except KeyError:
    raise FileNotFoundError(f"finetune {config.finetune.task} {config.finetune.name}: no "
                            f"{split} data in {where}. Add its file there, or point "
                            "data.data_dir at the folder that has it.") from None
  if len(arrays["input_ids"]) == 0:
    raise ValueError(f"finetune {config.finetune.task} {config.finetune.name}: the {split} "
                     f"data in {where} holds no examples (a file with only its header?).")
  return arrays


def finetune(config, workdir: str) -> dict:
  """Fine-tunes per `config` in `workdir` (resuming per epoch) and returns the best epoch's
  metrics; prediction files go to `workdir/predictions/`. One run per workdir, as in
  pretraining (bertlab/train/workdir_lock.py)."""
  with workdir_lock.WorkdirLock(workdir):
    return _finetune(config, workdir)


def _finetune(config, workdir: str) -> dict:
  model_cfg, encoder_params, job, tokenizer = _prepare(config)
  train_arrays = _split_arrays(job, "train", config)
  eval_arrays = {split: _split_arrays(job, split, config) for split in job.eval_splits}
  batch_size, epochs = config.train.batch_size, config.train.epochs
  steps_per_epoch = len(train_arrays["input_ids"]) // batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"{len(train_arrays['input_ids'])} training examples make no batch of "
                     f"{batch_size}; lower train.batch_size.")
  finetuner = Finetuner(config, model_cfg, job.head, job.num_labels, epochs * steps_per_epoch,
                        tokenizer.pad_id)
  # checkpoints/: the last finished epoch's state, and the epoch and best record as its data.
  mngr = checkpoints.manager(workdir, config.train)
  if mngr.latest_step() is not None:
    hub_workdir.check_resume_config(config, workdir)
  hub_workdir.write_config(config, workdir)
  # What the model is, whatever init_from was: bertlab.export rebuilds it from these alone.
  hub_workdir.write_finetuned_model(workdir, model_cfg, job.head, job.num_labels,
                                    _label_names(job))
  hub_workdir.save_tokenizer(tokenizer, workdir, model_cfg)
  start_epoch, best = 0, None
  if mngr.latest_step() is not None:
    state, progress = checkpoints.restore(mngr, mngr.latest_step(), finetuner.abstract_state,
                                          finetuner.state_shardings)
    start_epoch, best = progress["epoch"], progress["best"]
  else:
    state = finetuner.init_state(encoder_params)
  if jax.process_index() == 0:
    print("\n".join(console.finetune_header_lines(
        config, workdir, start_epoch, len(train_arrays["input_ids"]), steps_per_epoch,
        {split: len(arrays["input_ids"]) for split, arrays in eval_arrays.items()})), flush=True)
  started = time.perf_counter()
  writer = metric_lib.MetricWriter(workdir)
  main_split = job.eval_splits[0]
  first_step = None  # the run's first step holds its compilation
  try:
    for epoch in range(start_epoch, epochs):
      timer = time.perf_counter()
      last, count = {}, 0
      for batch in finetuner.train_batches(train_arrays, epoch):
        state, values = finetuner.step(state, batch)
        count += 1
        if first_step is None:
          jax.block_until_ready(values)
          first_step = time.perf_counter() - timer
        if count % config.train.log_every == 0 or count == steps_per_epoch:
          last = {k: float(v) for k, v in jax.device_get(values).items()}
          # checkpoints/ holds every finished epoch: the last good one is the one before
          check_finite(last["loss"], f"epoch {epoch + 1}, step {count}",
                       f"epoch {epoch}" if epoch else "none")
          # loss, the task's train metrics, norms and learning rate, as pretraining logs them
          writer.write(epoch * steps_per_epoch + count, last)
      seconds = time.perf_counter() - timer
      step = int(jax.device_get(state.step))
      timings = dict(train_seconds=seconds, examples_per_sec=count * batch_size / seconds)
      if epoch == start_epoch:
        timings["first_step_seconds"] = first_step
      eval_start = time.perf_counter()
      results = _evaluate_splits(finetuner, job, state.params, config, eval_arrays)
      for split, (metrics, _) in results.items():
        writer.write(step, dict(metrics, eval=True, split=split, epoch=epoch + 1))
      timings["eval_seconds"] = time.perf_counter() - eval_start
      metrics = results[main_split][0]
      line = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
      elapsed = time.perf_counter() - started
      left = elapsed / (epoch + 1 - start_epoch) * (epochs - epoch - 1)
      if jax.process_index() == 0:
        print(f"epoch {epoch + 1}/{epochs} | loss {last.get('loss', float('nan')):.4f} | "
              f"{main_split}: {line} | {console.duration(elapsed)} elapsed, "
              f"{console.duration(left)} left", flush=True)
      save_start = time.perf_counter()
      if best is None or metrics[job.main_metric] > best["metrics"][job.main_metric]:
        best = dict(epoch=epoch + 1, step=step, metrics=metrics)
        best_checkpoint.save(workdir, state.params, best)
      checkpoints.save(mngr, epoch + 1, state, dict(epoch=epoch + 1, best=best))
      mngr.wait_until_finished()
      # Where the epoch's time went (benchmarks/finetune_vs_hf.py sums these).
      writer.write(step, dict(epoch=epoch + 1, save_seconds=time.perf_counter() - save_start,
                              **timings))
  finally:
    writer.close()
  write_predictions(finetuner, job, config, workdir, eval_arrays)
  if jax.process_index() == 0:
    line = ", ".join(f"{k} {v:.4f}" for k, v in best["metrics"].items() if isinstance(v, float))
    print(f"best: epoch {best['epoch']}, {main_split}: {line}\n"
          f"best checkpoint: {workdir}/best  predictions: {workdir}/predictions  "
          f"tensorboard --logdir {workdir}/tensorboard", flush=True)
  return best


def write_predictions(finetuner, job, config, workdir: str, eval_arrays=None) -> dict:
  """The best checkpoint's official prediction files (and its dev metrics)."""
  if eval_arrays is None:
    eval_arrays = {split: _split_arrays(job, split, config) for split in job.eval_splits}
  params, best = best_checkpoint.restore(workdir, finetuner.abstract_state.params,
                                         finetuner.state_shardings.params)
  directory = os.path.join(workdir, "predictions")
  files.makedirs(directory)
  results = _evaluate_splits(finetuner, job, params, config, eval_arrays)
  writes = jax.process_index() == 0  # every host predicts (the steps span all); one writes
  for split, (_, predictions) in results.items():
    if writes:
      job.write_predictions(split, predictions, directory)
  for split in getattr(job, "test_splits", lambda: ())():
    outputs = finetuner.predict(params, job.test_arrays(split), config.train.eval_batch_size)
    if writes:
      job.write_test_predictions(split, outputs, directory)
  return {split: metrics for split, (metrics, _) in results.items()} | {"best": best}


def evaluate(config, workdir: str) -> dict:
  """`--mode=eval` of a fine-tuning config: the best checkpoint's metrics on each dev split.

  The model and vocabulary are the workdir's own (its model.json and tokenizer/), not
  `finetune.init_from` again: that checkpoint may be gone, moved or since retrained; the data
  and task come from `config`, so the same model can be scored on other dev files."""
  if not best_checkpoint.exists(workdir):
    raise FileNotFoundError(f"No best checkpoint in {workdir}/best: fine-tune first.")
  model_cfg, head, num_labels, _ = hub_workdir.read_finetuned_model(workdir)
  model_cfg = model_cfg.replace(dtype=config.model.dtype)
  config_checks.check_sequence_length(model_cfg, config.data.seq_len)
  tokenizer = hub_workdir.tokenizer(workdir)
  job = jobs.build_job(config, tokenizer, model_cfg)
  if (job.head, job.num_labels) != (head, num_labels):
    raise ValueError(f"{workdir} was fine-tuned with a {head} head of {num_labels} labels; "
                     f"finetune {config.finetune.task} {config.finetune.name} needs "
                     f"{job.head} with {job.num_labels}. Evaluate it with the config that "
                     "fine-tuned it.")
  finetuner = Finetuner(config, model_cfg, job.head, job.num_labels, 1, tokenizer.pad_id)
  return write_predictions(finetuner, job, config, workdir)

