"""Fine-tuning end to end on tiny data: local files and TFDS (mocked), from scratch and from
checkpoints (bertlab workdirs, Hugging Face directories, original TF checkpoints), full and
feature-based, with the official prediction files; and layer-wise features."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import finetune_helpers
from bertlab_test_helpers import ROOT, load_config
from finetune_helpers import WORDS
from bertlab.hub import workdir as hub_workdir
from bertlab.tasks import finetuning
from bertlab.train import finetuner, optimizers

SHARED = os.path.join(ROOT, "..", "shared", "data")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED),
                                  reason="../shared/data (CI's real data samples) is absent")

def _sst2_dir(tmp_path, train: int, dev: int):
  """`tmp_path/SST-2` with `train` and `dev` sentences (point data.data_dir at tmp_path)."""
  data = tmp_path / "SST-2"
  data.mkdir()
  for name, count, seed in (("train.tsv", train, 0), ("dev.tsv", dev, 1)):
    rows = finetune_helpers.sst2_rows(np.random.default_rng(seed), count)
    (data / name).write_text("\n".join(rows) + "\n")


def _tiny(config_spec, **overrides):
  config = load_config(config_spec)
  config.data.seq_len = 16
  config.train.update(batch_size=8, eval_batch_size=16, epochs=2, learning_rate=2e-3,
                      log_every=1)
  for key, value in overrides.items():
    section, name = key.split("__")
    config[section][name] = value
  return config


def _rows(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_glue_from_local_files_learns_and_writes_the_submission(tmp_path):
  _sst2_dir(tmp_path, 96, 40)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=3)
  workdir = str(tmp_path / "run")
  best = finetuner.finetune(config, workdir)
  evals = [r for r in _rows(workdir) if r.get("eval")]
  assert [r["epoch"] for r in evals] == [1, 2, 3] and all("accuracy" in r for r in evals)
  assert best["metrics"]["accuracy"] == max(r["accuracy"] for r in evals)
  assert best["metrics"]["accuracy"] >= 0.9  # "good" / "bad" decides the label
  # Every logged step as pretraining logs it (96 // 8 = 12 steps an epoch, log_every=1), and
  # per epoch where the time went.
  steps = [r for r in _rows(workdir) if "grad_norm" in r]
  assert [r["step"] for r in steps] == list(range(1, 37))
  assert steps[0]["learning_rate"] == 0 and steps[0]["update_norm"] == 0  # warmup from 0
  assert all(r["update_norm"] > 0 and r["grad_norm"] > 0 and "train_accuracy" in r
             for r in steps[1:])
  assert steps[2]["learning_rate"] > steps[-1]["learning_rate"]  # warmup, then linear decay
  epochs = [r for r in _rows(workdir) if "train_seconds" in r]
  assert [r["epoch"] for r in epochs] == [1, 2, 3] and "first_step_seconds" in epochs[0]
  assert all(r["eval_seconds"] > 0 and r["save_seconds"] > 0 for r in epochs)
  with open(os.path.join(workdir, "predictions", "SST-2.dev.tsv")) as f:
    lines = f.read().splitlines()
  assert lines[0] == "index\tprediction" and len(lines) == 41
  assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}
  # --mode=eval reads the best checkpoint back and scores it the same.
  again = finetuner.evaluate(config, workdir)
  assert again["dev"]["accuracy"] == pytest.approx(best["metrics"]["accuracy"])


def _conll_records(builder, split, **kwargs):
  """Mock CoNLL records whose tags line up with their tokens (random mocks do not)."""
  import tensorflow as tf
  del builder, split, kwargs
  rng = np.random.default_rng(0)
  records = []
  for i in range(24):
    n = int(rng.integers(2, 9))
    records.append(dict(id=str(i), tokens=[str(w) for w in rng.choice(WORDS, n)],
                        ner=rng.integers(0, 9, n).tolist(), pos=[0] * n, chunks=[0] * n))
  return tf.data.Dataset.from_generator(lambda: iter(records), output_signature=dict(
      id=tf.TensorSpec((), tf.string), tokens=tf.TensorSpec((None,), tf.string),
      ner=tf.TensorSpec((None,), tf.int64), pos=tf.TensorSpec((None,), tf.int64),
      chunks=tf.TensorSpec((None,), tf.int64)))


def _squad_records(builder, split, **kwargs):
  """Mock SQuAD records whose answers are where answer_start says (random mocks are not, and
  bertlab refuses a file where more than 1% of them are off)."""
  import tensorflow as tf
  del builder, split, kwargs
  rng = np.random.default_rng(0)
  records = []
  for i in range(24):
    words = [str(w) for w in rng.choice(WORDS, int(rng.integers(8, 20)))]
    context = " ".join(words)
    answer = words[int(rng.integers(0, len(words)))]
    answers = ([] if i % 4 == 3 else [answer])  # some unanswerable (v2)
    records.append(dict(id=str(i), title=f"t{i % 3}", context=context,
                        question=f"which {answer}?", answers=dict(
                            text=answers, answer_start=[context.index(a) for a in answers])))
  return tf.data.Dataset.from_generator(lambda: iter(records), output_signature=dict(
      id=tf.TensorSpec((), tf.string), title=tf.TensorSpec((), tf.string),
      context=tf.TensorSpec((), tf.string), question=tf.TensorSpec((), tf.string),
      answers=dict(text=tf.TensorSpec((None,), tf.string),
                   answer_start=tf.TensorSpec((None,), tf.int32))))


def _finetune_from_tfds(spec, metric, tmp_path):
  config = _tiny(spec, train__epochs=1)
  if "squad" in spec:
    config.data.seq_len = 64
  workdir = str(tmp_path / spec.replace("/", "_"))
  best = finetuner.finetune(config, workdir)
  assert metric in best["metrics"], spec
  assert os.listdir(os.path.join(workdir, "predictions")), spec


def test_tfds_paths_for_glue_squad_and_conll(tmp_path):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=24):
    _finetune_from_tfds("finetune/glue.py:stsb", "pearson", tmp_path)
  with tfds.testing.mock_data(as_dataset_fn=_squad_records):
    _finetune_from_tfds("finetune/squad.py:v2", "f1", tmp_path)
  with tfds.testing.mock_data(as_dataset_fn=_conll_records):
    _finetune_from_tfds("finetune/ner.py", "f1", tmp_path)


def _squad_json(path, version):
  context = ("The Normans were the people who in the 10th and 11th centuries gave their name to "
             "Normandy, a region in France. They were descended from Norse raiders.")
  qas = [dict(id="a", question="Who gave their name to Normandy?",
              answers=[dict(text="The Normans", answer_start=0)], is_impossible=False),
         dict(id="b", question="In what country is Normandy?",
              answers=[dict(text="France", answer_start=context.index("France"))],
              is_impossible=False),
         dict(id="c", question="Who raided Paris in 1066?", answers=[], is_impossible=True)]
  if version == "v1":
    qas = qas[:2]
  path.write_text(json.dumps(dict(data=[dict(title="Normans", paragraphs=[dict(
      context=context, qas=qas)])])))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_squad_writes_official_prediction_files(tmp_path, version):
  name = "train-v1.1.json" if version == "v1" else "train-v2.0.json"
  _squad_json(tmp_path / name, version)
  _squad_json(tmp_path / name.replace("train", "dev"), version)
  config = _tiny(f"finetune/squad.py:{version}", data__data_dir=str(tmp_path),
                 train__epochs=1)
  config.data.seq_len = 40
  config.squad.doc_stride = 16
  config.train.batch_size = 2
  workdir = str(tmp_path / "run")
  best = finetuner.finetune(config, workdir)
  assert {"exact_match", "f1"} <= set(best["metrics"])
  with open(os.path.join(workdir, "predictions", "predictions.json")) as f:
    predictions = json.load(f)
  with open(os.path.join(workdir, "predictions", "nbest_predictions.json")) as f:
    nbest = json.load(f)
  ids = {"a", "b"} | ({"c"} if version == "v2" else set())
  assert set(predictions) == ids and set(nbest) == ids
  context_words = "The Normans were the people who in the 10th and 11th centuries"
  assert all(p == "" or p in _context() for p in predictions.values()), context_words
  assert os.path.exists(os.path.join(workdir, "predictions", "null_odds.json")) == (
      version == "v2")


def _context():
  return ("The Normans were the people who in the 10th and 11th centuries gave their name to "
          "Normandy, a region in France. They were descended from Norse raiders.")


@needs_shared
def test_ner_on_conll_files_writes_conll_output(tmp_path):
  config = _tiny("finetune/ner.py", data__data_dir=os.path.join(SHARED, "conll2003"),
                 data__max_train_examples=48, data__max_eval_examples=24, train__epochs=1)
  config.data.seq_len = 32
  workdir = str(tmp_path / "run")
  best = finetuner.finetune(config, workdir)
  assert {"precision", "recall", "f1"} <= set(best["metrics"])
  with open(os.path.join(workdir, "predictions", "dev_predictions.conll")) as f:
    first = f.readline().split()
  assert len(first) == 3  # word, gold, predicted


def _pretrain_tiny(workdir):
  config = load_config("bert.py:tiny")
  config.train.update(steps=2, checkpoint_every=2, log_every=1)
  config.data.seq_len = 32
  from bertlab.train import trainer
  trainer.train_and_evaluate(config, workdir)
  return config


def test_init_from_a_bertlab_workdir_and_feature_based_mode(tmp_path):
  import bertlab
  pretrained = str(tmp_path / "pretrained")
  _pretrain_tiny(pretrained)
  model, params = bertlab.load_pretrained(pretrained)
  assert model.config.hidden_size == 128 and "mlm" in params
  _sst2_dir(tmp_path, 32, 16)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1,
                 finetune__init_from=pretrained, finetune__freeze_encoder=True)
  model_cfg, encoder, job, _ = finetuner._prepare(config)
  tuner = finetuner.Finetuner(config, model_cfg, job.head, job.num_labels, 4)
  state = tuner.init_state(encoder)
  same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), state.params["encoder"], encoder)
  assert all(jax.tree.leaves(same))  # the pretrained encoder, exactly
  arrays = job.arrays("train")
  batch = {k: v[:8] for k, v in arrays.items()}
  batch["example_weight"] = np.ones(8, np.float32)
  before = jax.device_get(state.params)
  state, _ = tuner.step(state, batch)
  after = jax.device_get(state.params)
  frozen = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), before["encoder"],
                        after["encoder"])
  assert all(jax.tree.leaves(frozen))  # feature-based: only the head learns
  assert not np.array_equal(before["classifier"]["classifier"]["kernel"],
                            after["classifier"]["classifier"]["kernel"])
  # The run, not the checkpoint, says how to compute: unrolled layers, the same step.
  unrolled = config.copy_and_resolve_references()
  unrolled.model.scan_layers = False
  unrolled_cfg, encoder, _, _ = finetuner._prepare(unrolled)
  assert not unrolled_cfg.scan_layers and unrolled_cfg.hidden_size == 128
  tuner = finetuner.Finetuner(unrolled, unrolled_cfg, job.head, job.num_labels, 4)
  state, _ = tuner.step(tuner.init_state(encoder), batch)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               jax.device_get(state.params), after)


def test_init_from_an_electra_workdir_fine_tunes_its_discriminator(tmp_path):
  """ELECTRA's downstream model is the discriminator, with the tables it shares with the
  generator put back (gdes: the generator's plus its own residual), on the modern backbone."""
  from bertlab.train import trainer  # as _pretrain_tiny
  pretrained = str(tmp_path / "electra")
  config = load_config("electra.py:tiny")
  config.train.update(steps=2, checkpoint_every=2, log_every=1)
  config.data.seq_len = 32
  config.electra.tie_embeddings = "gdes"
  config.model.update(norm_position="pre", feed_forward="glu", position_embedding="rotary",
                      local_attention_window=8, global_attention_every=2)
  trainer.train_and_evaluate(config, pretrained)
  params, _ = hub_workdir.latest_params(pretrained)
  _sst2_dir(tmp_path, 32, 16)
  tune = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1,
               finetune__init_from=pretrained)
  model_cfg, encoder, _, _ = finetuner._prepare(tune)
  assert model_cfg.norm_position == "pre" and model_cfg.local_attention_window == 8
  expected = hub_workdir.electra_discriminator_params(params)["encoder"]
  word = encoder["embeddings"]["word_embeddings"]["embedding"]
  shared = params["embeddings"]["word_embeddings"]["embedding"]
  residual = params["discriminator_embeddings"]["word_embeddings"]["embedding"]
  assert np.abs(residual).max() > 0  # the discriminator's own part has trained
  np.testing.assert_array_equal(word, shared + residual)
  jax.tree.map(np.testing.assert_array_equal, encoder, expected)
  assert "accuracy" in finetuner.finetune(tune, str(tmp_path / "run"))["metrics"]


def test_eval_mode_scores_the_workdirs_own_model_without_init_from(tmp_path):
  """`--mode=eval` reads the fine-tuned workdir's model and vocabulary: the pretrained
  checkpoint it started from may be gone."""
  import shutil
  pretrained = str(tmp_path / "pretrained")
  _pretrain_tiny(pretrained)
  _sst2_dir(tmp_path, 32, 16)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1,
                 finetune__init_from=pretrained)
  workdir = str(tmp_path / "run")
  best = finetuner.finetune(config, workdir)
  shutil.rmtree(pretrained)
  scored = finetuner.evaluate(config, workdir)
  assert scored["dev"] == pytest.approx(best["metrics"])
  finetune_helpers.write_data("stsb", str(tmp_path))
  other = _tiny("finetune/glue.py:stsb", data__data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="classification head of 2 labels.*regression with 1"):
    finetuner.evaluate(other, workdir)


@needs_shared
def test_init_from_a_hugging_face_directory_with_its_vocabulary(tmp_path):
  import shutil
  import transformers
  import bertlab
  hf_dir = str(tmp_path / "hf")
  hf_config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64)
  transformers.BertForPreTraining(hf_config).save_pretrained(hf_dir)
  shutil.copy(os.path.join(SHARED, "vocab", "bert-base-uncased", "vocab.txt"), hf_dir)
  _sst2_dir(tmp_path, 16, 8)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1,
                 finetune__init_from=hf_dir)
  model_cfg, encoder, job, _ = finetuner._prepare(config)
  assert model_cfg.hidden_size == 32 and job._encode  # the checkpoint's architecture
  _, params = bertlab.load_pretrained(hf_dir)
  word = params["encoder"]["embeddings"]["word_embeddings"]["embedding"]
  assert np.array_equal(encoder["embeddings"]["word_embeddings"]["embedding"], word)
  assert job.arrays("dev")["input_ids"][0][0] == 101  # bert-base-uncased's [CLS]
  best = finetuner.finetune(config, str(tmp_path / "run"))
  assert "accuracy" in best["metrics"]


def test_init_from_an_original_tf_checkpoint_with_the_vocabulary_beside_it(tmp_path):
  """google-research bert's layout: model.ckpt.* with bert_config.json and vocab.txt."""
  import torch
  import transformers
  import bertlab
  from test_tf_checkpoints import SIZES, tf_variables, write_tf_checkpoint
  pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", ".", "good", "bad"] + WORDS
  (tmp_path / "vocab.txt").write_text("\n".join(pieces) + "\n")
  sizes = {**SIZES, "vocab_size": len(pieces)}
  torch.manual_seed(0)
  hf_model = transformers.BertForPreTraining(transformers.BertConfig(**sizes))
  write_tf_checkpoint(tf_variables(hf_model, "bert"), str(tmp_path / "model.ckpt"))
  (tmp_path / "bert_config.json").write_text(json.dumps({**sizes, "hidden_act": "gelu"}))
  _sst2_dir(tmp_path, 16, 8)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1,
                 finetune__init_from=str(tmp_path / "model.ckpt"))
  model_cfg, encoder, job, _ = finetuner._prepare(config)
  assert model_cfg.hidden_size == SIZES["hidden_size"] and model_cfg.hidden_act == "gelu_tanh"
  _, params = bertlab.load_pretrained(str(tmp_path / "model.ckpt"))
  word = params["encoder"]["embeddings"]["word_embeddings"]["embedding"]
  assert np.array_equal(encoder["embeddings"]["word_embeddings"]["embedding"], word)
  first = job.arrays("dev")["input_ids"][0]
  assert first[0] == pieces.index("[CLS]")  # the checkpoint's own vocabulary
  assert {pieces.index("good"), pieces.index("bad")} & set(first.tolist())
  best = finetuner.finetune(config, str(tmp_path / "run"))
  assert "accuracy" in best["metrics"]


def test_layerwise_decay_scales_each_layer():
  from bertlab.models.config import ModelConfig
  config = ModelConfig(vocab_size=64, hidden_size=16, num_layers=2, num_heads=2,
                       intermediate_size=32)
  params = {"encoder": {"embeddings": {"w": np.zeros(3)},
                        "layers": {"block": {"attention": {"w": np.zeros((2, 4))}}},
                        "pooler": {"w": np.zeros(2)}},
            "classifier": {"w": np.zeros(2)}}
  scales = optimizers.update_scales(params, config, 0.5, freeze_encoder=False)
  assert float(scales["encoder"]["embeddings"]["w"]) == 0.5 ** 3
  assert np.asarray(scales["encoder"]["layers"]["block"]["attention"]["w"]).ravel().tolist() == [
      0.25, 0.5]
  assert float(scales["encoder"]["pooler"]["w"]) == 1.0
  assert float(scales["classifier"]["w"]) == 1.0
  frozen = optimizers.update_scales(params, config, 1.0, freeze_encoder=True)
  assert float(frozen["encoder"]["embeddings"]["w"]) == 0 and float(frozen["classifier"]["w"]) == 1


def test_features_command_writes_each_layer(tmp_path):
  pretrained = str(tmp_path / "pretrained")
  _pretrain_tiny(pretrained)
  texts = tmp_path / "texts.txt"
  texts.write_text("Return the list of files.\nOpen a socket and listen.\nClose it.\n")
  out = tmp_path / "features"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  subprocess.run([sys.executable, "-m", "bertlab.features", f"--init_from={pretrained}",
                  f"--input={texts}", f"--output={out}", "--layers=embeddings,first,last",
                  "--pool=mean"], check=True, cwd=ROOT, env=env, capture_output=True)
  with open(out / "features.json") as f:
    info = json.load(f)
  assert info["layers"] == [0, 1, 2] and info["texts"] == 3
  last = np.load(out / "layer_2.npy")
  assert last.shape == (3, 128) and np.isfinite(last).all()
  # The last layer's mean equals the model's own last hidden state, averaged.
  import bertlab
  from bertlab.data import finetune as encode
  from bertlab.hub import workdir
  model, params = bertlab.load_pretrained(pretrained)
  arrays = encode.encode_texts(workdir.tokenizer(pretrained), [("Close it.",)], 128)
  out_ = model.apply({"params": params}, arrays["input_ids"], arrays["attention_mask"],
                     arrays["token_type_ids"])
  n = int(arrays["attention_mask"].sum())
  np.testing.assert_allclose(last[2], np.asarray(out_.last_hidden_state[0, :n]).mean(0),
                             rtol=1e-4, atol=1e-5)


def test_summary_of_a_finetuning_config_counts_its_head():
  from bertlab import summary
  lines = summary.summary_lines(load_config("finetune/glue.py:mnli"))
  encoder = int(lines[-2].split(": ")[1])
  assert lines[-1] == f"total_params: {encoder + 128 * 3 + 3}"  # the 3-way classifier


def test_a_run_resumed_after_an_epoch_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
  _sst2_dir(tmp_path, 32, 8)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path))

  def final_params(workdir):
    params, _ = hub_workdir.latest_params(workdir)
    return jax.tree.leaves(params)

  finetuner.finetune(config, str(tmp_path / "straight"))
  calls = []
  real = finetuner._evaluate_splits

  def crash_on_second_epoch(*args):
    calls.append(1)
    if len(calls) == 2:
      raise KeyboardInterrupt("killed in epoch 2")
    return real(*args)

  monkeypatch.setattr(finetuner, "_evaluate_splits", crash_on_second_epoch)
  with pytest.raises(KeyboardInterrupt):
    finetuner.finetune(config, str(tmp_path / "resumed"))
  monkeypatch.setattr(finetuner, "_evaluate_splits", real)
  finetuner.finetune(config, str(tmp_path / "resumed"))
  for a, b in zip(final_params(str(tmp_path / "straight")),
                  final_params(str(tmp_path / "resumed"))):
    np.testing.assert_array_equal(a, b)


FINETUNE_HELPER = os.path.join(ROOT, "tests", "finetune_helpers.py")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _finetune_in_processes(task, data_dir, workdir, devices_per_process, processes=1):
  """Fine-tunes `task` on a (2, 2, 2) mesh (or one device) in `processes` processes."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
  mesh = "1,1,1" if devices_per_process * processes == 1 else "2,2,2"
  command = [sys.executable, FINETUNE_HELPER, task, str(data_dir), str(workdir), mesh]
  if processes > 1:
    address = f"127.0.0.1:{_free_port()}"
    commands = [command + [address, str(processes), str(i)] for i in range(processes)]
  else:
    commands = [command]
  procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for c in commands]
  for p in procs:
    _, err = p.communicate(timeout=900)
    assert p.returncode == 0, err.decode()[-3000:]


def _run_record(workdir):
  """What a run leaves that a researcher reads: final params, per-epoch eval metrics, the
  prediction files."""
  params, _ = hub_workdir.latest_params(str(workdir))
  flat = {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_leaves_with_path(params)}
  evals = [{k: v for k, v in row.items() if not k.endswith(("seconds", "_per_sec"))}
           for row in _rows(str(workdir)) if row.get("eval")]
  folder = os.path.join(str(workdir), "predictions")
  predictions = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name)) as f:
      predictions[name] = f.read()
  return flat, evals, predictions


def _assert_same_run(a, b, what, same_mesh=True):
  (params_a, evals_a, predictions_a), (params_b, evals_b, predictions_b) = a, b
  assert params_a.keys() == params_b.keys()
  # atol: a gradient that is zero but for rounding (SQuAD's qa bias: softmax minus one-hot
  # sums to 0 over positions) becomes an Adam step of noise, which another mesh, or gloo's
  # order of summation across processes, rounds differently.
  for key in params_a:
    np.testing.assert_allclose(params_b[key], params_a[key], rtol=1e-5, atol=2e-5,
                               err_msg=f"{what}: {key}")
  assert len(evals_a) == len(evals_b) == 2, (evals_a, evals_b)  # one per epoch
  for row_a, row_b in zip(evals_a, evals_b):
    assert row_a.keys() == row_b.keys(), what
    for key, value in row_a.items():
      if isinstance(value, float):
        # atol: an untrained model's correlations sit near 0, where rounding shows most
        np.testing.assert_allclose(row_b[key], value, rtol=1e-4, atol=2e-4,
                                   err_msg=f"{what}: {key}")
      else:
        assert row_b[key] == value, (what, key)
  assert predictions_a.keys() == predictions_b.keys() and predictions_a, what
  for name in predictions_a if same_mesh else ():
    if name.endswith(".json") and "nbest" in name:
      continue  # n-best probabilities: floats, compared through the metrics above
    assert predictions_a[name] == predictions_b[name], f"{what}: {name}"


@pytest.mark.parametrize("task", ["sst2", pytest.param("stsb", marks=pytest.mark.slow),
                                  pytest.param("squad", marks=pytest.mark.slow),
                                  pytest.param("ner", marks=pytest.mark.slow)])
def test_finetuning_in_two_processes_equals_one_process_and_one_device(tmp_path, task):
  """The host contract: each of 2 processes (4 devices each) feeds its half of every global
  batch and the predictions are gathered from both, so the run is the 8-device one, which is
  the 1-device one: classification (in the default run), regression, span QA and token
  tagging (slow: three runs each)."""
  finetune_helpers.write_data(task, tmp_path / "data")
  runs = {}
  for name, devices, processes in (("one", 1, 1), ("eight", 8, 1), ("two", 4, 2)):
    _finetune_in_processes(task, tmp_path / "data", tmp_path / name, devices, processes)
    runs[name] = _run_record(tmp_path / name)
  # Other meshes round differently (a score's last printed digit may move): files from the
  # same mesh on one or two processes must be identical.
  _assert_same_run(runs["one"], runs["eight"], f"{task}: 8 devices vs 1", same_mesh=False)
  _assert_same_run(runs["eight"], runs["two"], f"{task}: 2 processes vs 1")



def test_a_nan_loss_stops_fine_tuning_as_it_stops_pretraining(tmp_path, monkeypatch):
  """One NaN behaviour for both loops: NonFiniteLoss naming where, nothing saved."""
  import jax.numpy as jnp
  from bertlab.train.step import NonFiniteLoss
  _sst2_dir(tmp_path, 16, 8)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1)
  real = finetuning.task_loss
  monkeypatch.setattr(finetuning, "task_loss", lambda head, outputs, batch: (
      real(head, outputs, batch)[0] * jnp.nan, real(head, outputs, batch)[1]))
  workdir = str(tmp_path / "run")
  with pytest.raises(NonFiniteLoss, match="(?s)loss is nan at epoch 1, step 1.*checkpoint is none"):
    finetuner.finetune(config, workdir)
  assert not os.path.exists(os.path.join(workdir, "best"))


def test_fine_tuning_reaches_its_workdir_only_through_files_py(tmp_path, monkeypatch):
  """A gs:// workdir works only if every file bertlab writes or reads there goes through
  bertlab/files.py (tf.io.gfile) or orbax: a run, its resume and --mode=eval, with Python's
  local-file calls watched, must make none of them from bertlab's own code on the workdir.
  (TensorFlow's ram:// would exercise gfile alone, but orbax's tensorstore cannot write it.)"""
  import builtins
  import shutil
  workdir = str(tmp_path / "run")
  package = os.path.join(ROOT, "bertlab") + os.sep
  # Local by design: files.py itself, and the workdir lock (flock; none is taken on gs://).
  allowed = tuple(os.path.join("bertlab", *p) for p in (("files.py",),
                                                        ("train", "workdir_lock.py")))
  local_calls = []

  def watched(name, real):
    def call(path, *args, **kwargs):
      caller = sys._getframe(1).f_code.co_filename
      if (str(path).startswith(workdir) and caller.startswith(package)
          and not caller.endswith(allowed)):
        local_calls.append(f"{name}({path}) in {os.path.relpath(caller, ROOT)}")
      return real(path, *args, **kwargs)
    return call

  for module, name in ((builtins, "open"), (os, "makedirs"), (os, "replace"), (os, "rename"),
                       (os, "remove"), (os, "listdir"), (os.path, "exists"),
                       (os.path, "isdir"), (shutil, "rmtree"), (shutil, "copytree")):
    monkeypatch.setattr(module, name, watched(name, getattr(module, name)))
  _sst2_dir(tmp_path, 16, 8)
  config = _tiny("finetune/glue.py:sst2", data__data_dir=str(tmp_path), train__epochs=1)
  finetuner.finetune(config, workdir)
  config.train.epochs = 2  # resume from epoch 1
  finetuner.finetune(config, workdir)
  finetuner.evaluate(config, workdir)
  monkeypatch.undo()
  assert not local_calls, "\n".join(local_calls)
  assert os.listdir(os.path.join(workdir, "predictions")) == ["SST-2.dev.tsv"]
  assert [r["epoch"] for r in _rows(workdir) if "train_seconds" in r] == [1, 2]  # resumed
