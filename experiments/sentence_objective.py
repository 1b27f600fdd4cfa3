"""ALBERT Table 5: no sentence objective vs next-sentence vs sentence-order prediction, each
model evaluated on MLM, NSP and SOP held-out data (the paper scores every model on every task).

  python -m bertlab.sweep experiments/sentence_objective.py --workdir=/tmp/sweeps/sentence

NSP's negatives come from another document, so a topic detector solves it; SOP's are the same
two segments swapped, which needs discourse coherence. The paper's finding: an NSP-trained
model scores near chance on SOP, an SOP-trained one solves NSP well above chance. Without a
sentence objective the head is kept but never trained: the chance baseline.

tiny: ALBERT tiny with AdamW 1e-3 for 600 steps (LAMB at batch 32 needs more steps to leave
the unigram plateau), evaluated on every held-out sequence. paper: ALBERT-base, Section 4.1.
On the embedded corpus (docstrings of about four sentences) a segment pair is nearly always
one docstring cut in two, and NSP's random B is longer than the true one: the SOP model reads
order from segment lengths and does not transfer to NSP (experiments/RESULTS.md). cpu: ALBERT
cpu on Wikipedia articles, long documents where coherence can be learnt, 1,200 steps, then
fine-tuned on 2,000 SST-2 sentences (`cpu_downstream`; the paper averages five tasks).
"""

from bertlab.sweeps import Plot, Point, Sweep, cpu_downstream, cpu_overrides

OBJECTIVES = ("none", "nsp", "sop")


def get_sweep(scale):
  if scale == "tiny":
    config, overrides = "configs/albert.py:tiny", {
        "train.optimizer": "adamw", "train.learning_rate": 1e-3, "train.steps": 600,
        "train.checkpoint_every": 300, "train.eval_batches": 1000}
  elif scale == "cpu":
    config, overrides = "configs/albert.py:cpu", cpu_overrides(1200)
  else:
    config, overrides = "configs/albert.py:base", {}
  return Sweep(
      name="sentence_objective",
      title="ALBERT Table 5: sentence objective, intrinsic accuracies",
      config=config, overrides=overrides,
      points=tuple(Point({"objective": o}, {"data.sentence_objective": o}) for o in OBJECTIVES),
      # The same held-out documents for every model; MLM on contiguous segment pairs.
      evals={"mlm": {"data.sentence_objective": "none"},
             "nsp": {"data.sentence_objective": "nsp"},
             "sop": {"data.sentence_objective": "sop"}},
      downstream=cpu_downstream() if scale == "cpu" else {},
      columns=(("Parameters", "total_params"), ("MLM", "mlm/mlm_accuracy"),
               ("NSP", "nsp/nsp_accuracy"), ("SOP", "sop/sop_accuracy")),
      plot=Plot(x="objective"))
