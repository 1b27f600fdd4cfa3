"""The README.md model card of an exported model: what it is, what it learnt from, how well,
and the bertlab command that made it."""

from bertlab.config_files import job_kind
from bertlab.summary import count_params

OBJECTIVES = {"mlm": "masked language modelling", "nsp": "next-sentence prediction",
              "sop": "sentence-order prediction", "sbo": "span boundary objective",
              "rtd": "replaced-token detection"}


def _objectives(config) -> list[str]:
  names = []
  for head in config.model.get("heads", ()):
    if head == "sentence":
      head = config.data.get("sentence_objective", "nsp")
    names.append(OBJECTIVES.get(head, head))
  if job_kind(config) == "electra":
    names = ["masked language modelling (generator)", "replaced-token detection "
             f"(discriminator, weight {config.electra.disc_weight:g})"]
  return names


def _metrics_table(row: dict) -> list[str]:
  """Losses and rates of `row`; a fine-tuning record's metrics (every float) as they are."""
  keys = [k for k in row if k.endswith(("_accuracy", "_auc", "_loss")) or k == "loss"] or list(row)
  return ["| metric | value |", "|---|---|"] + [f"| {k} | {row[k]:.4f} |" for k in keys]


def _command_block(commands: list[str]) -> list[str]:
  return ["", "## How it was made", "", "```bash"] + (commands or [
      "# (the command was not recorded; the full config is bertlab's config.json)"]) + [
      "```", ""]


def card(config, model, part: str, step: int, held_out: dict | None, commands: list[str],
         architecture: str, dropped_heads: tuple[str, ...]) -> str:
  """Markdown for README.md; `held_out` is the last held-out evaluation (None: never ran)."""
  m, data, train = config.model, config.data, config.train
  _, total = count_params(model)
  family = m.family + (f" ({part})" if job_kind(config) == "electra" else "")
  source = "bertlab's embedded corpus" if data.source == "default" else f"`{data.source}`"
  lines = [
      "---", "library_name: transformers", "tags:", "- bertlab", f"- {m.family}",
      "- fill-mask" if "mlm" in model.config.heads else "- feature-extraction", "---", "",
      f"# {m.family} pretrained with bertlab", "",
      f"A {family} model pretrained with bertlab (JAX/Flax), exported as transformers' "
      f"`{architecture}`.", "",
      "## Architecture", "",
      f"- hidden size {model.config.hidden_size}, {model.config.num_layers} layers, "
      f"{model.config.num_heads} heads, feed-forward {model.config.intermediate_size}, "
      f"embedding size {model.config.embed_size}",
      f"- vocabulary {model.config.vocab_size:,} ({data.tokenizer}), "
      f"{model.config.max_position_embeddings} positions ({model.config.position_embedding})",
      f"- parameters: {total:,} in this export",
  ]
  if m.get("num_hidden_groups") and m.num_hidden_groups != m.num_layers:
    lines.append(f"- cross-layer sharing: {m.get('sharing', 'all')} in "
                 f"{m.num_hidden_groups} group(s)")
  if dropped_heads:
    lines.append(f"- not exported (transformers has no place for them): the "
                 f"{', '.join(dropped_heads)} head(s)")
  lines += [
      "", "## Pretraining", "",
      f"- data: {source}, {data.input_format} of {data.seq_len} tokens, {data.masking} masking "
      f"at {data.mask_rate:g} ({'dynamic' if data.dynamic_masking else 'static'})",
      f"- objectives: {', '.join(_objectives(config)) or 'none'}",
      f"- {step:,} steps of batch {train.batch_size} ({step * train.batch_size * data.seq_len:,}"
      f" tokens), {train.optimizer} at {train.learning_rate:g}, {train.schedule} schedule "
      f"with {train.warmup_steps:,} warmup steps",
      "", "## Held-out evaluation", ""]
  if held_out:
    lines += [f"At step {held_out['step']:,}, on documents held out of training:", ""]
    lines += _metrics_table({k: v for k, v in held_out.items() if k != "step"})
  else:
    lines.append("None was run (`train.eval_every` was 0 and `--mode=eval` was not used).")
  return "\n".join(lines + _command_block(commands))


def finetuned_card(config, model_config, head: str, architecture: str, best: dict,
                   commands: list[str]) -> str:
  """The card of a fine-tuned model: task, starting checkpoint, best epoch and its metrics."""
  finetune, train = config.finetune, config.train
  metrics = {k: v for k, v in best.get("metrics", {}).items() if isinstance(v, float)}
  lines = [
      "---", "library_name: transformers", "tags:", "- bertlab", f"- {model_config.family}",
      f"- {finetune.task}", "---", "",
      f"# {model_config.family} fine-tuned on {finetune.task} {finetune.name} with bertlab", "",
      f"Exported as transformers' `{architecture}` ({head} head).", "",
      "## Model", "",
      f"- from {finetune.init_from or 'scratch (no pretrained encoder)'}",
      f"- hidden size {model_config.hidden_size}, {model_config.num_layers} layers, vocabulary "
      f"{model_config.vocab_size:,}",
      "", "## Fine-tuning", "",
      f"- {train.epochs} epochs of batch {train.batch_size}, {train.optimizer} at "
      f"{train.learning_rate:g}, sequences of {config.data.seq_len} tokens",
      f"- the best epoch, {best.get('epoch')} (step {best.get('step')}), on the dev split:", ""]
  return "\n".join(lines + _metrics_table(metrics) + _command_block(commands))
