"""CoNLL-2003 NER fine-tuning (BERT, Section 5.3): a label per word, on its first piece.

  python -m bertlab.main --config=configs/finetune/ner.py --workdir=/tmp/ner \
      --config.finetune.init_from=/path/to/checkpoint --config.data.data_dir=/path/to/conll2003

`data.data_dir` holds train.txt, valid.txt (or dev.txt) and test.txt in the four-column CoNLL
format; empty: TFDS `conll2003`. Scores are entity-level precision / recall / F1.
"""

from bertlab.configs import finetune_config
from bertlab.tasks.ner import CONLL2003_LABELS


def get_config(arg=None):
  del arg
  config = finetune_config("ner", "conll2003", seq_len=128, train=dict(
      learning_rate=5e-5, epochs=3))
  config.finetune.labels = CONLL2003_LABELS
  return config
