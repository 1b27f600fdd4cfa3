"""--mode=summary (contract 2): the table, then encoder_params and total_params."""

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("spec", ["bert.py:tiny", "albert.py:tiny", "electra.py:tiny"])
def test_summary_ends_with_the_two_counts(spec):
  result = subprocess.run(
      [sys.executable, "-m", "bertlab.main", f"--config=configs/{spec}", "--mode=summary"],
      cwd=ROOT, capture_output=True, text=True, check=True)
  lines = result.stdout.strip().splitlines()
  encoder = int(lines[-2].removeprefix("encoder_params: "))
  total = int(lines[-1].removeprefix("total_params: "))
  table = [line.split() for line in lines[1:-2]]
  assert sum(int(row[-1].replace(",", "")) for row in table) == total
  assert 0 < encoder < total
  assert any(row[0].startswith("encoder/layers/block/attention/query/kernel") or
             "discriminator/encoder/layers" in row[0] for row in table)


def test_summary_takes_overrides():
  run = lambda *extra: subprocess.run(
      [sys.executable, "-m", "bertlab.main", "--config=configs/albert.py:base", "--mode=summary",
       *extra],
      cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()[-2]
  assert run() == "encoder_params: 11683584"
  assert run("--config.model.sharing=none") == "encoder_params: 89650176"
