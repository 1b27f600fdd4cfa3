"""Every tiny config's parameter layout (path, shape, dtype, logical axes) against a golden
file: a layout changed by accident breaks every checkpoint and converter written before it,
so it must be a deliberate change, made by regenerating the files:

  BERTLAB_UPDATE_GOLDEN=1 python -m pytest tests/test_param_layouts.py
"""

import json
import os

import flax.linen as nn
import pytest

from bertlab.jobs import build_model
from bertlab.models.build import abstract_params
from bertlab_test_helpers import ROOT, load_config

GOLDEN = os.path.join(ROOT, "tests", "golden", "param_layouts")
CONFIGS = ("bert.py:tiny", "albert.py:tiny", "roberta.py:tiny", "electra.py:tiny",
           "spanbert.py:tiny", "modernbert.py:tiny", "finetune/glue.py:sst2",
           "finetune/glue.py:stsb", "finetune/squad.py:v1", "finetune/ner.py")


def layout(spec: str) -> dict:
  flat = abstract_params(build_model(load_config(spec)))
  return {path: {"shape": list(nn.unbox(p).shape), "dtype": str(nn.unbox(p).dtype),
                 "axes": list(p.names) if isinstance(p, nn.Partitioned) else None}
          for path, p in sorted(flat.items())}


def _golden_path(spec: str) -> str:
  return os.path.join(GOLDEN, spec.replace("/", "_").replace(".py:", "-").replace(".py", "")
                      + ".json")


@pytest.mark.parametrize("spec", CONFIGS)
def test_parameter_layout_is_the_golden_one(spec):
  ours, path = layout(spec), _golden_path(spec)
  if os.environ.get("BERTLAB_UPDATE_GOLDEN"):
    with open(path, "w") as f:  # one parameter per line, so a diff reads as the change
      f.write("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in ours.items())
              + "\n}\n")
  with open(path) as f:
    golden = json.load(f)
  changed = [f"{k}: {golden[k]} -> {ours[k]}" for k in golden if k in ours and golden[k] != ours[k]]
  changed += [f"{k}: gone" for k in golden if k not in ours]
  changed += [f"{k}: new" for k in ours if k not in golden]
  assert not changed, (f"{spec}'s parameter layout changed (checkpoints and converters depend "
                       "on it):\n  " + "\n  ".join(changed[:30]) + "\nIf deliberate, "
                       "regenerate: BERTLAB_UPDATE_GOLDEN=1 python -m pytest "
                       "tests/test_param_layouts.py")
