"""Run by tests/test_finetune_run.py in subprocesses: fine-tuning on a given mesh and process
count into WORKDIR, whose params, metrics and prediction files the test then compares.

  python tests/finetune_helpers.py TASK DATA_DIR WORKDIR data,fsdp,tensor \
      [coordinator num_processes process_id]

TASK: sst2 (classification), stsb (regression), squad (span) or ner (token tags), over the
tiny files `write_data` makes in DATA_DIR.
"""

import json
import os
import sys

import numpy as np

WORDS = ["movie", "plot", "actor", "scene", "story", "film", "music", "ending"]
CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to "
           "Normandy, a region in France. They were descended from Norse raiders.")


def sst2_rows(rng, count):
  """Sentences whose label is whether they say "good" or "bad": learnable in a few steps."""
  rows = ["sentence\tlabel"]
  for _ in range(count):
    label = int(rng.integers(2))
    words = list(rng.choice(WORDS, 3)) + ["good" if label else "bad"]
    rng.shuffle(words)
    rows.append(f"the {' '.join(words)} .\t{label}")
  return rows


def _stsb_rows(rng, count):
  """Pairs scored by how many words they share (0 to 4, as a float): a learnable score."""
  rows = ["\t".join(["index", "genre", "filename", "year", "old_index", "source1", "source2",
                     "sentence1", "sentence2", "score"])]
  for i in range(count):
    a = list(rng.choice(WORDS, 4, replace=False))
    shared = int(rng.integers(5))
    b = a[:shared] + list(rng.choice([w for w in WORDS if w not in a], 4 - shared,
                                     replace=False))
    rows.append("\t".join([str(i), "g", "f", "y", str(i), "s", "s", " ".join(a), " ".join(b),
                           f"{shared:.3f}"]))
  return rows


def _conll_lines(rng, count):
  lines = ["-DOCSTART- -X- -X- O", ""]
  for _ in range(count):
    for word in rng.choice(WORDS + ["Paris", "London"], 5):
      tag = "B-LOC" if word in ("Paris", "London") else "O"
      lines.append(f"{word} NN O {tag}")
    lines.append("")
  return lines


def _squad(questions):
  qas = [dict(id=f"q{i}", question=q, answers=[dict(text=a, answer_start=CONTEXT.index(a))])
         for i, (q, a) in enumerate(questions)]
  return json.dumps(dict(data=[dict(title="Normans", paragraphs=[dict(context=CONTEXT,
                                                                       qas=qas)])]))


def write_data(task: str, folder: str) -> None:
  rng = np.random.default_rng(0)
  os.makedirs(folder, exist_ok=True)
  if task in ("sst2", "stsb"):
    name, make = {"sst2": ("SST-2", sst2_rows), "stsb": ("STS-B", _stsb_rows)}[task]
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    for split, count in (("train", 32), ("dev", 20)):  # 20: a last eval batch part padding
      with open(os.path.join(folder, name, f"{split}.tsv"), "w") as f:
        f.write("\n".join(make(rng, count)) + "\n")
  elif task == "ner":
    for split, count in (("train", 16), ("valid", 10)):
      with open(os.path.join(folder, f"{split}.txt"), "w") as f:
        f.write("\n".join(_conll_lines(rng, count)) + "\n")
  else:
    questions = [("Who gave their name to Normandy?", "The Normans"),
                 ("In what country is Normandy?", "France"),
                 ("Who were the Normans descended from?", "Norse raiders"),
                 ("When did the Normans give their name?", "10th and 11th centuries")]
    for name in ("train-v1.1.json", "dev-v1.1.json"):
      with open(os.path.join(folder, name), "w") as f:
        f.write(_squad(questions))


def config_for(task: str, data_dir: str):
  sys.path.insert(0, os.path.dirname(__file__))
  from conftest import load_config
  spec = {"sst2": "finetune/glue.py:sst2", "stsb": "finetune/glue.py:stsb",
          "squad": "finetune/squad.py:v1", "ner": "finetune/ner.py"}[task]
  config = load_config(spec)
  config.data.update(data_dir=data_dir, seq_len=16 if task != "squad" else 32)
  config.train.update(batch_size=8, eval_batch_size=8, epochs=2, learning_rate=2e-3)
  if task == "squad":
    config.squad.doc_stride = 16
  return config


def main():
  task, data_dir, workdir = sys.argv[1:4]
  mesh = [int(x) for x in sys.argv[4].split(",")]
  if len(sys.argv) > 5:
    from bertlab.train import distributed
    distributed.initialize(sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
  from bertlab.train import finetuner
  config = config_for(task, data_dir)
  config.mesh.update(data=mesh[0], fsdp=mesh[1], tensor=mesh[2])
  finetuner.finetune(config, workdir)


if __name__ == "__main__":
  main()
