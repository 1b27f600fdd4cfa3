"""GLUE fine-tuning: `glue.py:<task>` for cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli.

  python -m bertlab.main --config=configs/finetune/glue.py:mrpc --workdir=/tmp/mrpc \
      --config.finetune.init_from=/path/to/checkpoint --config.data.data_dir=/path/to/glue_data

`finetune.init_from`: a bertlab pretraining workdir, a Hugging Face directory or a TF
checkpoint (empty: the `model` section, from scratch). `data.data_dir`: the GLUE folder as the
GLUE download writes it (empty: TFDS `glue/<task>`). BERT's recipe (Appendix A.3): batch 32,
learning rate 2e-5 (of 5e-5, 3e-5, 2e-5), 3 epochs, warmup over 10% of the steps.
"""

from bertlab.configs import finetune_config
from bertlab.tasks.glue import TASKS


def get_config(arg=None):
  task = arg or "mrpc"
  if task not in TASKS:
    raise ValueError(f"Unknown GLUE task {task!r}; valid: {', '.join(TASKS)}.")
  return finetune_config("glue", task, seq_len=128)
