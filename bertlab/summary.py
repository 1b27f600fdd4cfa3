"""--mode=summary: the parameter table of a config's model and its two counts (contract 2)."""

import flax.linen as nn
import numpy as np

from bertlab.jobs import build_model
from bertlab.models.build import abstract_params
from bertlab.models.pretraining import ElectraModel

# Parameters counted as the encoder: embeddings + encoder + pooler (what transformers'
# BertModel / AlbertModel / ElectraModel hold). ELECTRA's embeddings are shared at the top.
ENCODER_PREFIXES = ("encoder/", "embeddings/", "discriminator/encoder/")


def count_params(model) -> tuple[int, int]:
  """(encoder_params, total_params); shared weights are stored, so counted, once."""
  flat = abstract_params(model)
  sizes = {path: int(np.prod(nn.unbox(p).shape)) for path, p in flat.items()}
  prefixes = ENCODER_PREFIXES if isinstance(model, ElectraModel) else ("encoder/",)
  encoder = sum(n for path, n in sizes.items() if path.startswith(prefixes))
  return encoder, sum(sizes.values())


def summary_lines(config) -> list[str]:
  model = build_model(config)
  flat = abstract_params(model)
  width = max(len(path) for path in flat)
  lines = [f"{'parameter':<{width}}  {'shape':<22} {'logical axes':<34} {'count':>12}"]
  for path, p in flat.items():
    shape = nn.unbox(p).shape
    axes = getattr(p, "names", None)
    lines.append(f"{path:<{width}}  {str(tuple(shape)):<22} {str(axes or ''):<34} "
                 f"{int(np.prod(shape)):>12,}")
  encoder, total = count_params(model)
  return lines + [f"encoder_params: {encoder}", f"total_params: {total}"]
