"""The MLM loss over a vocabulary sharded on `tensor` (shard_map, per device) equals the plain
loss, its accuracy and its gradient, on 8 simulated devices."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def test_vocab_parallel_cross_entropy_equals_the_plain_one():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, os.path.join(HERE, "vocab_parallel_helper.py")],
                       env=env, capture_output=True, text=True, check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["used"]  # the mesh's tensor axis took the per-device path
  assert result["loss"] == pytest.approx(result["ref_loss"], rel=1e-6)
  assert result["accuracy"] == pytest.approx(result["ref_accuracy"])
  assert 0.3 < result["ref_accuracy"] < 0.8
  assert result["grad_diff"] < 1e-7
