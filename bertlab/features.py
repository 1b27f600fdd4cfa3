"""Layer-wise features for probing (BERT, Section 5.3): hidden states of chosen layers, pooled
per text, written to .npy.

  python -m bertlab.features --init_from=CHECKPOINT --input=texts.txt --output=DIR \
      --layers=first,last,6 --pool=mean

`--input` holds one text per line (a tab separates the two segments of a pair). `--layers`
names indices into the hidden states: 0 (or `embeddings`) is the embedding output, 1 (or
`first`) the first layer, L (or `last`) the last, `all` every one. `--pool` is `first` (the
first token, [CLS] / <s>) or `mean` (over the non-padding tokens). DIR receives
`layer_<i>.npy` of shape [texts, hidden] per layer and `features.json` saying what is where.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from bertlab import console

POOLS = ("first", "mean")


def parse_layers(spec: str, num_layers: int) -> list[int]:
  names = {"embeddings": 0, "first": 1, "last": num_layers}
  layers = []
  for part in filter(None, (p.strip() for p in spec.split(","))):
    if part == "all":
      layers += list(range(num_layers + 1))
    elif part in names:
      layers.append(names[part])
    elif part.lstrip("-").isdigit():
      index = int(part)
      index = index + num_layers + 1 if index < 0 else index
      if not 0 <= index <= num_layers:
        raise ValueError(f"Layer {part} is outside 0..{num_layers} (0 is the embeddings).")
      layers.append(index)
    else:
      raise ValueError(f"Unknown layer {part!r}; use embeddings, first, last, all or an index "
                       f"0..{num_layers}.")
  return sorted(set(layers))


def pool(hidden, attention_mask, how: str):
  if how == "first":
    return hidden[:, 0]
  if how == "mean":
    mask = attention_mask[..., None].astype(hidden.dtype)
    return (hidden * mask).sum(1) / jnp.maximum(mask.sum(1), 1)
  raise ValueError(f"Unknown pooling {how!r}; valid: {', '.join(POOLS)}.")


def extract(model, params, tokenizer, texts: list[tuple[str, ...]], layers: list[int],
            how: str = "first", seq_len: int = 128, batch_size: int = 64) -> dict[int, np.ndarray]:
  """{layer: [texts, hidden]} of the pooled hidden states."""
  # Imported here, not at the top: the command runs console.setup before TensorFlow loads.
  from bertlab.data import finetune as encode
  arrays = encode.encode_texts(tokenizer, texts, seq_len, model.config.type_vocab_size)
  encoder_params = params["encoder"]
  from bertlab.models.encoder import Encoder
  encoder = Encoder(model.config)

  @jax.jit
  def run(batch):
    out = encoder.apply({"params": encoder_params}, batch["input_ids"], batch["attention_mask"],
                        batch["token_type_ids"], True, True)
    return {i: pool(out.hidden_states[i], batch["attention_mask"], how) for i in layers}

  outputs = {i: [] for i in layers}
  for batch in encode.batches(arrays, batch_size, None, drop_remainder=False):
    values = jax.device_get(run({k: v.numpy() for k, v in batch.items()
                                 if k != "example_weight"}))
    for i in layers:
      outputs[i].append(np.asarray(values[i], np.float32))
  return {i: np.concatenate(v)[:len(texts)] for i, v in outputs.items()}


def main(argv):
  del argv
  console.setup_from_flags()
  from absl import flags
  # bertlab's models and TensorFlow load after console.setup, which filters their notices.
  from bertlab.hub.init_from import load_with_tokenizer
  FLAGS = flags.FLAGS
  model, params, tokenizer = load_with_tokenizer(FLAGS.init_from, FLAGS.vocab)
  with open(FLAGS.input, encoding="utf-8") as f:
    texts = [tuple(line.rstrip("\n").split("\t")[:2]) for line in f if line.strip()]
  if len({len(t) for t in texts}) > 1:
    raise ValueError(f"{FLAGS.input} mixes single texts and tab-separated pairs; use one kind.")
  layers = parse_layers(FLAGS.layers, model.config.num_layers)
  features = extract(model, params, tokenizer, texts, layers, FLAGS.pool, FLAGS.seq_len,
                     FLAGS.batch_size)
  os.makedirs(FLAGS.output, exist_ok=True)
  for i, value in features.items():
    np.save(os.path.join(FLAGS.output, f"layer_{i}.npy"), value)
  with open(os.path.join(FLAGS.output, "features.json"), "w") as f:
    json.dump(dict(init_from=FLAGS.init_from, input=FLAGS.input, texts=len(texts),
                   layers=layers, pool=FLAGS.pool, seq_len=FLAGS.seq_len,
                   hidden_size=model.config.hidden_size,
                   files={i: f"layer_{i}.npy" for i in layers}), f, indent=2)
  print(f"Wrote {len(layers)} layers x {len(texts)} texts to {FLAGS.output}.")


if __name__ == "__main__":
  from absl import app, flags
  flags.DEFINE_string("init_from", None, "A bertlab workdir, Hugging Face directory or TF "
                      "checkpoint.")
  flags.DEFINE_string("input", None, "Texts, one per line (a tab separates a pair).")
  flags.DEFINE_string("output", None, "Where the .npy files go.")
  flags.DEFINE_string("layers", "last", "embeddings, first, last, all, or indices 0..L.")
  flags.DEFINE_enum("pool", "first", POOLS, "first token or mean over tokens.")
  flags.DEFINE_string("vocab", "default", "The vocabulary, if the checkpoint holds none.")
  flags.DEFINE_integer("seq_len", 128, "Tokens per text (longer ones are cut).")
  flags.DEFINE_integer("batch_size", 64, "Texts per forward pass.")
  flags.mark_flags_as_required(["init_from", "input", "output"])
  app.run(main)
