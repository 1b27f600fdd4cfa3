"""Throughput of the dynamic pretraining pipeline beside Hugging Face's, and what BERT-base eats.

  python benchmarks/data_pipeline.py [--copies=4] [--batch=32]

On the same text (the embedded corpus, `--copies` times) and the same 2 cores, for seq_len 128
and 512:
  * bertlab: tokenization (tf_text, in a tf.data graph), FULL-SENTENCES packing, then epochs
    of dynamically masked fixed-shape batches;
  * transformers: BertTokenizerFast on every line, run_mlm's `group_texts` blocks, and
    DataCollatorForLanguageModeling (15%, 80/10/10) over batches, as run_mlm trains.
Both on the same WordPiece vocabulary. "first epoch" includes tokenization and packing; "next
epochs" is the masking and batching a run pays every epoch after. The first pass of each
pipeline in a process also pays its libraries' one-time start-up (tf.data and tf_text graphs
traced, the Rust tokenizer loaded): it is timed once at 128 ("cold first epoch") and then
every pass is timed warm, which is what a corpus of real size sees per sequence. Then the
sequences per second one BERT-base train step (forward, backward, AdamW) consumes at seq_len
128 on this machine, the bar the pipeline must clear 10x.
"""

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def bertlab_pipeline(config, docs, epochs: int = 3):
  from bertlab.data import examples, pipeline
  from bertlab.data.vocab import tokenizer_from_config
  start = time.perf_counter()
  tokenizer = tokenizer_from_config(config.data, config.model.vocab_size)
  tokenized = pipeline.tokenize_documents(docs, tokenizer)
  arrays = examples.build_examples(tokenized, pipeline.builder_config(config.data, tokenizer),
                                   np.random.default_rng(0))
  data = pipeline.PretrainingData(arrays, tokenizer, pipeline.masking_config(config.data,
                                                                             tokenizer),
                                  config.train.batch_size)
  iterator = data.batches(0)  # one stream over epochs, as training reads it
  times = []
  for epoch in range(epochs):
    for _ in range(data.batches_per_epoch):
      next(iterator)
    times.append(time.perf_counter() - start)
    start = time.perf_counter()
  n = data.batches_per_epoch * data.host_batch_size
  return dict(sequences=n, first_epoch=n / times[0], next_epochs=n / min(times[1:]))


def hf_pipeline(vocab_dir, docs, seq_len: int, batch: int, epochs: int = 3):
  import torch
  from transformers import BertTokenizerFast, DataCollatorForLanguageModeling
  torch.set_num_threads(2)
  start = time.perf_counter()
  tokenizer = BertTokenizerFast.from_pretrained(vocab_dir)
  lines = [s for doc in docs for s in doc]
  ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
  # run_mlm's group_texts: concatenate, then blocks of seq_len (with [CLS] ... [SEP]).
  flat = [t for line in ids for t in line]
  block = seq_len - 2
  blocks = [[tokenizer.cls_token_id] + flat[i:i + block] + [tokenizer.sep_token_id]
            for i in range(0, len(flat) - block + 1, block)]
  features = [{"input_ids": b} for b in blocks]
  collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
  prepared = time.perf_counter() - start
  times = []
  for epoch in range(epochs):
    order = np.random.default_rng(epoch).permutation(len(features))
    t = time.perf_counter()
    for lo in range(0, len(order) - batch + 1, batch):
      collator([features[i] for i in order[lo:lo + batch]])
    times.append(time.perf_counter() - t)
  n = (len(features) // batch) * batch
  return dict(sequences=n, first_epoch=n / (prepared + times[0]), next_epochs=n / min(times[1:]))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--copies", type=int, default=4)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--skip_train_step", action="store_true")
  args = parser.parse_args()
  import importlib.util
  from bertlab.data import corpus
  spec = importlib.util.spec_from_file_location(
      "bert_config", os.path.join(os.path.dirname(__file__), "..", "configs", "bert.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  docs = list(corpus.read_documents("default")) * args.copies
  print(f"text: embedded corpus x{args.copies}, {sum(map(len, docs))} sentences; batch "
        f"{args.batch}; 2 cores")
  rows = []
  # The first pass pays each library's start-up once; it is reported on its own row.
  for seq_len, cold in ((128, True), (128, False), (512, False)):
    config = module.get_config("base")
    # FULL-SENTENCES packing is run_mlm's group_texts: the same sequences on both sides.
    config.data.update(seq_len=seq_len, dynamic_masking=True, input_format="full_sentences",
                       sentence_objective="none",
                       max_predictions=int(round(seq_len * 0.15 * 1.05)))
    config.train.batch_size = args.batch
    ours = bertlab_pipeline(config, docs)
    from bertlab.data.vocab import default_vocab
    theirs = hf_pipeline(default_vocab("wordpiece", config.model.vocab_size), docs, seq_len,
                         args.batch)
    if cold:
      rows.append((seq_len, "cold_first_epoch", ours["first_epoch"], theirs["first_epoch"]))
      continue
    for phase in ("first_epoch", "next_epochs"):
      rows.append((seq_len, phase, ours[phase], theirs[phase]))
  print(f"{'seq_len':>7} {'phase':>16} {'bertlab seq/s':>14} {'HF seq/s':>10} {'ratio':>6}")
  for seq_len, phase, a, b in rows:
    print(f"{seq_len:>7} {phase:>16} {a:>14.0f} {b:>10.0f} {a / b:>6.2f}")
  if not args.skip_train_step:
    from train_step import run_bertlab  # the same Trainer step the train benchmark times
    consumed = run_bertlab("base", 8, 128, steps=3)["tokens_per_sec"] / 128
    ours_128 = min(r[2] for r in rows if r[0] == 128)
    print(f"BERT-base train step (batch 8, seq 128, AdamW): {consumed:.2f} seq/s; the pipeline's "
          f"slowest phase at 128 (cold included) is {ours_128 / consumed:.0f}x that")


if __name__ == "__main__":
  main()
