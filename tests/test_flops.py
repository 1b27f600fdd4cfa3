"""MFU you can trust: the model FLOPs the trainer logs are exactly the matmuls its jitted step
performs (counted from the traced program), for every family and switch that changes them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bertlab.train import flops, metrics as metric_lib, trainer as trainer_lib
from conftest import load_config


def _batch(config) -> dict:
  b, t, p = config.train.batch_size, config.data.seq_len, config.data.max_predictions
  positions = np.tile(np.arange(1, p + 1), (b, 1))
  return dict(input_ids=np.full((b, t), 5, np.int32), attention_mask=np.ones((b, t), np.int32),
              token_type_ids=np.zeros((b, t), np.int32), sentence_label=np.zeros(b, np.int32),
              masked_positions=positions.astype(np.int32),
              masked_ids=np.full((b, p), 7, np.int32), masked_weights=np.ones((b, p), np.float32),
              span_bounds=np.stack([positions - 1, positions + 1], -1).astype(np.int32),
              span_slots=np.zeros((b, p), np.int32), span_weights=np.ones((b, p), np.float32))


CASES = {
    "bert": ("bert.py:tiny", {}),
    "albert, all layers shared, E < H": ("albert.py:tiny", {}),
    "spanbert (SBO)": ("spanbert.py:tiny", {}),
    "electra (generator + discriminator)": ("electra.py:tiny", {}),
    "electra, MLM + RTD discriminator": ("electra.py:tiny", {"electra.disc_mlm_weight": 1.0,
                                                          "model.heads": ("rtd", "mlm")}),
    "modernbert (GeGLU, local layers)": ("modernbert.py:tiny", {}),
    "bert, seq 64, 2 accumulation steps": ("bert.py:tiny", {"data.seq_len": 64,
                                                            "train.grad_accum_steps": 2}),
}


@pytest.mark.parametrize("case", CASES)
def test_the_model_count_is_every_matmul_of_the_train_step(case):
  name, overrides = CASES[case]
  config = load_config(name)
  config.train.batch_size = 4
  for key, value in overrides.items():
    section, field = key.split(".")
    config[section][field] = value
  trainer = trainer_lib.Trainer(config)
  state = trainer.init_state()
  with trainer.context():
    counted = flops.dot_flops(trainer._step, state, trainer._global(_batch(config)))
  assert counted == pytest.approx(flops.step_flops(config), rel=1e-9)


def test_sharing_layers_does_not_change_the_count():
  shared = load_config("albert.py:tiny")
  unshared = load_config("albert.py:tiny")
  unshared.model.num_hidden_groups = unshared.model.num_layers
  assert flops.step_flops(shared) == flops.step_flops(unshared)


def test_the_logged_mfu_is_the_model_count_over_the_peak(tmp_path, monkeypatch):
  monkeypatch.setattr(flops, "peak_flops", lambda: 1e10)
  config = load_config("bert.py:tiny")
  config.train.update(steps=4, log_every=2, checkpoint_every=4, batch_size=8)
  trainer_lib.train_and_evaluate(config, str(tmp_path))
  rows = [r for r in metric_lib.read_metrics(str(tmp_path)) if not r.get("eval")]
  assert len(rows) == 2
  for row in rows:
    expected = row["steps_per_sec"] * flops.step_flops(config) / (1e10 * jax.device_count())
    assert row["mfu"] == pytest.approx(expected, rel=1e-6)


def test_a_cpu_peak_is_its_measured_matmul_roof():
  assert jax.devices()[0].platform == "cpu"
  roof = flops.cpu_matmul_roof()
  assert 1e8 < roof < 1e14  # FLOP/s of a 2-core laptop to a large server
  assert flops.peak_flops() == roof / jax.local_device_count()


def test_a_while_loop_is_refused_rather_than_counted_once():
  loop = lambda x: jax.lax.while_loop(lambda c: c[1] < 3, lambda c: (c[0] @ c[0], c[1] + 1),
                                      (x, 0))[0]
  with pytest.raises(ValueError, match="while loop"):
    flops.dot_flops(loop, jnp.ones((4, 4)))
  scan = lambda x: jax.lax.scan(lambda c, _: (c @ c, None), x, None, length=3)[0]
  assert flops.dot_flops(scan, jnp.ones((4, 4))) == 3 * 2 * 4 ** 3
