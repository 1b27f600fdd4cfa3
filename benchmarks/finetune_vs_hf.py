"""Fine-tuning parity with Hugging Face: the same checkpoint, data, order and hyperparameters in
bertlab and in transformers, dev accuracy and wall time of each, in one run.

  python benchmarks/finetune_vs_hf.py [--task=sst2] [--max_train=20000] [--epochs=3]

The checkpoint is a Hugging Face directory (--checkpoint); by default a tiny BERT is pretrained
here on the embedded corpus (--pretrain_steps) and written with `bertlab.save_pretrained`, with
its vocabulary. bertlab loads it through `finetune.init_from`; transformers through
`BertForSequenceClassification.from_pretrained`. Both see the ids bertlab's tokenizer makes,
in the batches bertlab's pipeline draws (seed + epoch), with AdamW (no decay on LayerNorm and
biases), warmup over 10% of the steps then linear decay, clipping at 1.0 and dropout 0.1.
torch gets as many threads as there are cores, as XLA uses. Data: GLUE files under
--data_dir (default ../shared/data/glue). With 2,000 SST-2 examples the tiny checkpoint stays at
chance (51%) on both sides, which proves nothing; 20,000 (the default) lift both to ~74%.
bertlab runs three ways (--arms): one input per row, as transformers; packed
(`data.pack_sequences=True`: the same batches of examples in a fraction of the rows); and
packed with the layers unrolled (`model.scan_layers=False`: the same parameters and numbers,
a straight-line program instead of a loop over layers, which a 2-layer model on a CPU runs
faster and compiles as fast).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))


def make_checkpoint(directory: str, steps: int) -> str:
  """A tiny BERT pretrained on the embedded corpus, saved as a Hugging Face directory."""
  import bertlab
  from bertlab.hub import workdir as hub_workdir
  from bertlab.train import trainer
  from conftest import load_config
  hf_dir = os.path.join(directory, "hf")
  if os.path.exists(os.path.join(hf_dir, "config.json")):
    return hf_dir
  config = load_config("bert.py:tiny")
  config.train.update(steps=steps, checkpoint_every=steps)
  pretrain_dir = os.path.join(directory, "pretrain")
  trainer.train_and_evaluate(config, pretrain_dir)
  model, params = bertlab.load_pretrained(pretrain_dir)
  bertlab.save_pretrained(model, params, hf_dir)
  tokenizer = hub_workdir.tokenizer(pretrain_dir)
  with open(os.path.join(hf_dir, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(tokenizer.pieces) + "\n")
  return hf_dir


def batch_orders(count: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
  """Row indices of every batch bertlab's pipeline draws, epoch by epoch."""
  from bertlab.data import finetune as finetune_data
  orders = []
  for epoch in range(epochs):
    data = finetune_data.batches({"index": np.arange(count)}, batch_size, seed + epoch, True)
    orders += [b["index"].numpy() for b in data]
  return orders


def run_hf(hf_dir, train, dev, orders, config, threads: int, epochs: int) -> dict:
  """transformers on the same batches; its wall time covers what bertlab's does: loading the
  checkpoint, the epochs, and a dev evaluation after each (bertlab also checkpoints each
  epoch and writes the prediction files: it does more, not less)."""
  import torch
  import transformers
  wall = time.perf_counter()
  torch.set_num_threads(threads)
  torch.manual_seed(config.train.seed)
  model = transformers.BertForSequenceClassification.from_pretrained(hf_dir, num_labels=2)
  no_decay = [p for n, p in model.named_parameters() if "LayerNorm" in n or n.endswith("bias")]
  decay = [p for n, p in model.named_parameters() if not ("LayerNorm" in n or n.endswith("bias"))]
  optimizer = torch.optim.AdamW([dict(params=decay, weight_decay=config.train.weight_decay),
                                 dict(params=no_decay, weight_decay=0.0)],
                                lr=config.train.learning_rate, eps=1e-6)
  total = len(orders)
  schedule = transformers.get_linear_schedule_with_warmup(
      optimizer, int(config.train.warmup_proportion * total), total)
  tensors = {k: torch.tensor(v, dtype=torch.long) for k, v in train.items()}
  dev_tensors = {k: torch.tensor(dev[k], dtype=torch.long)
                 for k in ("input_ids", "attention_mask", "token_type_ids")}

  def evaluate():
    model.eval()
    with torch.no_grad():
      logits = torch.cat([model(**{k: v[i:i + config.train.eval_batch_size]
                                   for k, v in dev_tensors.items()}).logits
                          for i in range(0, len(dev["labels"]), config.train.eval_batch_size)])
    model.train()
    return float((logits.argmax(-1).numpy() == dev["labels"]).mean())

  train_seconds, per_epoch = 0.0, len(orders) // epochs
  model.train()
  for epoch in range(epochs):
    start = time.perf_counter()
    for rows in orders[epoch * per_epoch:(epoch + 1) * per_epoch]:
      index = torch.tensor(rows)
      out = model(input_ids=tensors["input_ids"][index],
                  attention_mask=tensors["attention_mask"][index],
                  token_type_ids=tensors["token_type_ids"][index], labels=tensors["labels"][index])
      out.loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
      optimizer.step()
      schedule.step()
      optimizer.zero_grad()
    train_seconds += time.perf_counter() - start
    accuracy = evaluate()
  return dict(accuracy=accuracy, train_seconds=train_seconds,
              wall_seconds=time.perf_counter() - wall)


ARMS = {"unpacked": dict(pack=False, scan=True), "packed": dict(pack=True, scan=True),
        "packed_unrolled": dict(pack=True, scan=False)}


def run_bertlab(config, run_dir: str, pack: bool, scan: bool) -> dict:
  """One bertlab fine-tuning run (packed: several inputs to a row, the same batches), its
  dev accuracy and where its wall time went: the first step (its compilation), the other
  steps, the dev evaluations, the checkpoints, and the rest (tokenizing, loading, files)."""
  from bertlab.train import finetuner
  config = config.copy_and_resolve_references()
  config.data.pack_sequences = pack
  config.model.scan_layers = scan
  if os.path.exists(run_dir):
    import shutil
    shutil.rmtree(run_dir)
  start = time.perf_counter()
  best = finetuner.finetune(config, run_dir)
  wall = time.perf_counter() - start
  rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
  last_eval = [r for r in rows if r.get("eval")][-1]
  epochs = [r for r in rows if "train_seconds" in r]
  spent = {name: sum(r.get(f"{name}_seconds", 0.0) for r in epochs)
           for name in ("first_step", "train", "eval", "save")}
  spent["train"] -= spent["first_step"]
  spent["other"] = wall - sum(spent.values())
  return dict(accuracy=last_eval["accuracy"], best_accuracy=best["metrics"]["accuracy"],
              wall_seconds=wall, seconds={k: round(v, 2) for k, v in spent.items()})


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", default="sst2")
  parser.add_argument("--checkpoint", default="")
  parser.add_argument("--workdir", default="/tmp/bertlab-finetune-benchmark")
  parser.add_argument("--pretrain_steps", type=int, default=300)
  parser.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "glue"))
  parser.add_argument("--max_train", type=int, default=20000)
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--learning_rate", type=float, default=1e-4)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--seq_len", type=int, default=64)
  parser.add_argument("--arms", default=",".join(ARMS),
                      help=f"bertlab's runs, some of {', '.join(ARMS)}")
  args = parser.parse_args()
  unknown = set(args.arms.split(",")) - set(ARMS)
  if unknown:
    raise SystemExit(f"Unknown --arms {sorted(unknown)}; valid: {', '.join(ARMS)}.")
  from conftest import load_config
  from bertlab.train import finetuner
  hf_dir = args.checkpoint or make_checkpoint(args.workdir, args.pretrain_steps)
  config = load_config(f"finetune/glue.py:{args.task}")
  config.finetune.init_from = hf_dir
  config.data.update(data_dir=args.data_dir, max_train_examples=args.max_train,
                     seq_len=args.seq_len)
  config.train.update(epochs=args.epochs, learning_rate=args.learning_rate,
                      batch_size=args.batch_size, log_every=1000)
  model_cfg, _, job, _ = finetuner._prepare(config)
  if job.head != "classification":
    raise SystemExit(f"{args.task} is not a classification task.")
  train, dev = job.arrays("train"), job.arrays(job.eval_splits[0])
  orders = batch_orders(len(train["labels"]), args.batch_size, args.epochs, config.train.seed)
  arms = {name: run_bertlab(config, os.path.join(args.workdir, f"bertlab-{args.task}-{name}"),
                            **ARMS[name])
          for name in args.arms.split(",")}
  hf = run_hf(hf_dir, train, dev, orders, config, os.cpu_count(), args.epochs)
  result = dict(task=args.task, checkpoint=hf_dir, train_examples=len(train["labels"]),
                dev_examples=len(dev["labels"]), epochs=args.epochs, steps=len(orders),
                hidden_size=model_cfg.hidden_size, num_layers=model_cfg.num_layers,
                padding_share=float(1 - train["attention_mask"].mean()),
                transformers_accuracy=hf["accuracy"],
                transformers_wall_seconds=hf["wall_seconds"],
                transformers_train_seconds=hf["train_seconds"])
  for name, arm in arms.items():
    result[f"bertlab_{name}"] = dict(
        arm, accuracy_difference_points=100 * (arm["accuracy"] - hf["accuracy"]),
        wall_ratio=arm["wall_seconds"] / hf["wall_seconds"],
        train_step_ratio=arm["seconds"]["train"] / hf["train_seconds"])
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
