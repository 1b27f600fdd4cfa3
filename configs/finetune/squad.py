"""SQuAD fine-tuning: `squad.py:v1` (SQuAD 1.1) or `squad.py:v2` (SQuAD 2.0, with no-answer).

  python -m bertlab.main --config=configs/finetune/squad.py:v1 --workdir=/tmp/squad \
      --config.finetune.init_from=/path/to/checkpoint --config.data.data_dir=/path/to/squad

`data.data_dir` holds train-v1.1.json / dev-v1.1.json (or the v2.0 files); `data.train_file`
and `data.dev_file` name other files; empty: TFDS `squad`. BERT's recipe (Section 4.2):
sequences of 384, doc stride 128, questions cut at 64 tokens, batch 32, learning rate 5e-5
(v1.1; 3e-5 for v2.0), 2 epochs; n-best 20, answers of at most 30 tokens.
"""

import ml_collections

from bertlab.configs import finetune_config


def get_config(arg=None):
  version = arg or "v1"
  if version not in ("v1", "v2"):
    raise ValueError(f"Unknown SQuAD version {version!r}; valid: v1, v2.")
  config = finetune_config("squad", version, seq_len=384, train=dict(
      learning_rate=5e-5 if version == "v1" else 3e-5, epochs=2))
  with config.data.unlocked():
    config.data.train_file = ""
    config.data.dev_file = ""
  config.squad = ml_collections.ConfigDict(dict(
      doc_stride=128, max_query_length=64, n_best_size=20, max_answer_length=30,
      # v2.0: answer "" when the null score beats the best span by more than this.
      null_threshold=0.0))
  return config
