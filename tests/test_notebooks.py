"""The Colab notebooks run top to bottom (at fewer steps than their defaults) and their plots
render, from a directory that is not the checkout (they use no local paths)."""

import os

import pytest

from bertlab_test_helpers import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

SETTINGS = {"BERTLAB_NOTEBOOK_STEPS": "40", "BERTLAB_NOTEBOOK_EPOCHS": "1",
            "BERTLAB_NOTEBOOK_POINTS": "2", "BERTLAB_NOTEBOOK_EVAL_BATCHES": "2"}


def run_notebook(name: str, cwd: str):
  notebook = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": cwd}})
  client.execute()
  return notebook


def images(notebook) -> int:
  return sum("image/png" in output.get("data", {})
             for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.get("outputs", []))


@pytest.mark.parametrize("name, plots", [
    ("quickstart.ipynb", 3),
    pytest.param("ablations.ipynb", 3, marks=pytest.mark.slow)])  # its sweeps: 2 minutes
def test_notebook_runs_and_plots(name, plots, tmp_path, monkeypatch):
  for key, value in SETTINGS.items():
    monkeypatch.setenv(key, value)
  notebook = run_notebook(name, str(tmp_path))
  errors = [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]
  assert not errors
  assert images(notebook) >= plots
