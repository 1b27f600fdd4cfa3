"""A bertlab pretraining workdir as a Hugging Face directory, whole:

  python -m bertlab.export --workdir=/tmp/bertlab-tiny --out=/tmp/bertlab-tiny-hf

writes config.json and model.safetensors of the latest checkpoint, the tokenizer files the run
trained with (transformers' AutoTokenizer reads them) and a README.md model card (family,
sizes, data, steps, objectives, the last held-out metrics, the command that made it).
ELECTRA: `--part=discriminator` (the default, ElectraForPreTraining) or `generator`
(ElectraForMaskedLM). Heads transformers has no place for (SpanBERT's SBO) are left out and
the card says so. A fine-tuning workdir exports its best epoch as the task class
(`...ForSequenceClassification` for GLUE, `...ForQuestionAnswering` for SQuAD,
`...ForTokenClassification` for NER; BERT, ALBERT, RoBERTa, ELECTRA). Refused: rotary
positions in the BERT family (transformers' BERT classes have learned ones) and fine-tuned
ModernBERT (its task classes have a head bertlab's has not).
"""

import os

from absl import app, flags

from bertlab import console, files
from bertlab.config_files import job_kind
from bertlab.models.build import generator_config, model_config
from bertlab.hub import (layouts, model_card, save_finetuned, save_pretrained,
                         workdir as hub_workdir)
from bertlab.models.pretraining import PretrainingModel
from bertlab.train import best_checkpoint
from bertlab.train.metrics import read_metrics

PARTS = ("discriminator", "generator")
EXPORTED_HEADS = ("mlm", "sentence", "rtd")

_WORKDIR = flags.DEFINE_string("workdir", None, "A bertlab pretraining workdir.")
_OUT = flags.DEFINE_string("out", None, "The Hugging Face directory to write.")
_PART = flags.DEFINE_enum("part", "discriminator", PARTS, "ELECTRA: which model to export.")


def _model_and_params(config, params: dict, part: str):
  """The exported model's config and parameter tree (one model, even for ELECTRA)."""
  if job_kind(config) != "electra":
    if part != "discriminator":
      raise ValueError(f"--part={part} is for ELECTRA workdirs; this one is "
                       f"{config.model.family}'s, a single model.")
    return model_config(config), params
  if part == "discriminator":
    return model_config(config), hub_workdir.electra_discriminator_params(params)
  generator = (model_config(config).replace(heads=("mlm",), use_pooler=False)
               if config.electra.get("tie_embeddings") == "all" else generator_config(config))
  return generator, hub_workdir.electra_generator_params(params)


def exported_model(workdir: str, part: str = "discriminator"):
  """(model, params, step, dropped heads): the model the export holds, as a bertlab model
  (what its transformers twin must compute)."""
  config = hub_workdir.read_config(workdir)
  params, step = hub_workdir.latest_params(workdir)
  model_cfg, params = _model_and_params(config, params, part)
  dropped = tuple(h for h in model_cfg.heads if h not in EXPORTED_HEADS)
  model_cfg = model_cfg.replace(heads=tuple(h for h in model_cfg.heads if h in EXPORTED_HEADS))
  params = {k: v for k, v in params.items() if k not in dropped}
  return PretrainingModel(model_cfg), params, step, dropped


def export(workdir: str, out: str, part: str = "discriminator") -> dict:
  """Writes `out`; returns what was written (architecture, step, dropped heads, files)."""
  if not hub_workdir.is_workdir(workdir):
    raise FileNotFoundError(f"{workdir} is not a bertlab workdir (no config.json and "
                            "checkpoints/): pretrain into it first.")
  config = hub_workdir.read_config(workdir)
  if os.path.abspath(out) == os.path.abspath(workdir):
    raise ValueError("--out must be a directory of its own, not the workdir.")
  if job_kind(config) == "finetune":
    return _export_finetuned(config, workdir, out, part)
  model, params, step, dropped = exported_model(workdir, part)
  save_pretrained(model, params, out, tokenizer=hub_workdir.tokenizer(workdir))
  architecture = layouts.config_to_hf(model.config)["architectures"][0]
  evaluations = [row for row in read_metrics(workdir) if row.get("eval")]
  with files.open_file(os.path.join(out, "README.md"), "w") as f:
    f.write(model_card.card(config, model, part, step, evaluations[-1] if evaluations else None,
                            hub_workdir.commands(workdir), architecture, dropped))
  return dict(architecture=architecture, step=step, dropped_heads=dropped,
              files=sorted(os.listdir(out)))


def _export_finetuned(config, workdir: str, out: str, part: str) -> dict:
  """The best epoch's model as transformers' task class, with the tokenizer it was tuned with."""
  if part != "discriminator":
    raise ValueError(f"--part={part} is for ELECTRA pretraining workdirs; a fine-tuned ELECTRA "
                     "is its discriminator with the task head.")
  if not best_checkpoint.exists(workdir):
    raise FileNotFoundError(f"{workdir} has no best checkpoint yet: let fine-tuning finish an "
                            "epoch first.")
  model_cfg, head, num_labels, labels = hub_workdir.read_finetuned_model(workdir)
  params, best = best_checkpoint.read(workdir)
  save_finetuned(model_cfg, head, num_labels, labels, params, out,
                 tokenizer=hub_workdir.tokenizer(workdir))
  architecture = layouts.finetuned_config_to_hf(model_cfg, head, num_labels,
                                                labels)["architectures"][0]
  with files.open_file(os.path.join(out, "README.md"), "w") as f:
    f.write(model_card.finetuned_card(config, model_cfg, head, architecture, best,
                                      hub_workdir.commands(workdir)))
  return dict(architecture=architecture, step=best["step"], dropped_heads=(),
              files=sorted(os.listdir(out)))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value or not _OUT.value:
    raise app.UsageError("--workdir and --out are both needed.")
  console.setup_from_flags()
  written = export(_WORKDIR.value, _OUT.value, _PART.value)
  print(f"Wrote {_OUT.value}: {written['architecture']} at step {written['step']:,} "
        f"({', '.join(written['files'])}).")
  if written["dropped_heads"]:
    print(f"Left out (no place in transformers): {', '.join(written['dropped_heads'])}.")
  print(f"Load it with transformers.AutoModel.from_pretrained({_OUT.value!r}) and "
        f"AutoTokenizer.from_pretrained({_OUT.value!r}).")


if __name__ == "__main__":
  app.run(main)
