"""Bad input names the problem and the fix."""

import subprocess
import sys

import numpy as np
import pytest

import bertlab
from bertlab.jobs import build_model
from bertlab.models.config import from_config_dict
from conftest import ROOT, load_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_unknown_model_key_names_the_close_valid_keys():
  with pytest.raises(KeyError, match="Did you mean hidden_size"):
    from_config_dict({"hiden_size": 3})


def test_unknown_override_on_the_command_line_fails_loudly():
  result = subprocess.run(
      [sys.executable, "-m", "bertlab.main", "--config=configs/bert.py:tiny",
       "--config.model.num_layer=3"], cwd=ROOT, capture_output=True, text=True)
  assert result.returncode != 0
  assert "num_layers" in result.stderr


def test_unknown_size_lists_the_sizes():
  with pytest.raises(ValueError, match="valid sizes: tiny, cpu, base, large"):
    load_config("roberta.py:huge")


def test_bad_choice_names_the_choices():
  config = load_config("albert.py:tiny")
  config.model.sharing = "everything"
  with pytest.raises(ValueError, match=r"sharing='everything' is not one of \('all'"):
    build_model(config)


def save_hf(tmp_path, **sizes):
  config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=24,
                                   max_position_embeddings=20, **sizes)
  model = transformers.BertForPreTraining(config)
  model.save_pretrained(tmp_path)
  return model


def rewrite_tensors(directory, edit):
  """Applies `edit` to the tensors of directory/model.safetensors, in place."""
  from safetensors.numpy import load_file, save_file
  tensors = load_file(directory / "model.safetensors")
  edit(tensors)
  save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def test_checkpoint_of_another_size_names_the_weights_and_shapes(tmp_path):
  save_hf(tmp_path)
  config_file = tmp_path / "config.json"
  # A config that claims another width than the weights have.
  config_file.write_text(config_file.read_text().replace('"hidden_size": 16',
                                                         '"hidden_size": 32'))
  with pytest.raises(bertlab.CheckpointMismatch) as error:
    bertlab.load_pretrained(str(tmp_path))
  message = str(error.value)
  assert "bert.embeddings.word_embeddings.weight is (60, 16) in the checkpoint" in message
  assert "needs (60, 32)" in message


def test_missing_and_unexpected_weights_are_named(tmp_path):
  save_hf(tmp_path)

  def edit(tensors):
    tensors.pop("bert.encoder.layer.1.output.dense.weight")
    tensors["bert.encoder.layer.2.output.dense.weight"] = tensors[
        "bert.encoder.layer.0.output.dense.weight"]

  rewrite_tensors(tmp_path, edit)
  with pytest.raises(bertlab.CheckpointMismatch) as error:
    bertlab.load_pretrained(str(tmp_path))
  message = str(error.value)
  assert "missing: bert.encoder.layer.1.output.dense.weight" in message
  assert "unexpected: bert.encoder.layer.2.output.dense.weight (16, 24)" in message


def test_other_architecture_is_refused_by_name(tmp_path):
  (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
  with pytest.raises(ValueError, match="model_type 'gpt2' is not supported"):
    bertlab.load_pretrained(str(tmp_path))


def test_pytorch_bin_is_read_without_unpickling_code(tmp_path):
  hf = save_hf(tmp_path)
  (tmp_path / "model.safetensors").unlink()
  torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
  model, params = bertlab.load_pretrained(str(tmp_path))
  assert model.config.heads == ("mlm", "sentence")

  class Payload:
    def __reduce__(self):
      return (print, ("this must never run",))

  torch.save({"x": Payload()}, tmp_path / "pytorch_model.bin")
  with pytest.raises(ValueError, match=r"(?s)pytorch_model.bin holds pickled code.*will not run "
                     r"it.*safe_serialization=True") as error:
    bertlab.load_pretrained(str(tmp_path))
  assert error.value.__cause__ is None and error.value.__suppress_context__  # torch's advice gone


def test_broken_checkpoint_files_are_named(tmp_path):
  hf = save_hf(tmp_path / "hf")
  weights = tmp_path / "hf" / "model.safetensors"
  whole = weights.read_bytes()
  weights.write_bytes(whole[: len(whole) // 2])
  with pytest.raises(ValueError, match=r"model.safetensors is not a readable safetensors file"):
    bertlab.load_pretrained(str(tmp_path / "hf"))
  weights.write_bytes(b"garbage" * 100)
  with pytest.raises(ValueError, match=r"model.safetensors is not a readable safetensors file"):
    bertlab.load_pretrained(str(tmp_path / "hf"))
  weights.write_bytes(whole)
  (tmp_path / "hf" / "config.json").write_text('{"model_type": "bert", ')
  with pytest.raises(ValueError, match=r"hf/config.json is not valid JSON"):
    bertlab.load_pretrained(str(tmp_path / "hf"))
  with pytest.raises(FileNotFoundError, match=r"nowhere/model.ckpt not found"):
    bertlab.load_pretrained(str(tmp_path / "nowhere" / "model.ckpt"))
  del hf


def test_a_truncated_tf_checkpoint_is_named(tmp_path):
  tf = pytest.importorskip("tensorflow")
  prefix = str(tmp_path / "bert_model.ckpt")
  checkpoint = tf.train.Checkpoint(
      bert=tf.Module(), **{"v": tf.Variable(np.ones((64, 64), np.float32), name="bert/x")})
  saved = checkpoint.write(prefix)
  data = [p for p in tmp_path.iterdir() if ".data-" in p.name][0]
  data.write_bytes(data.read_bytes()[:100])
  with pytest.raises(ValueError, match=r"TF checkpoint .*bert_model.ckpt does not read.*"
                     r"truncated"):
    bertlab.load_pretrained(saved)


def test_corpus_files_that_are_not_text_are_named(tmp_path):
  import gzip
  from bertlab.data import corpus
  (tmp_path / "a.txt").write_text("One sentence.\n")
  (tmp_path / "b.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
  (tmp_path / "c.txt").write_bytes(b"text\n\x00\x01binary\n")
  whole = gzip.compress(b"A sentence here.\n" * 5000)
  (tmp_path / "d.txt.gz").write_bytes(whole[: len(whole) // 2])
  for name, message in (("b.txt", "not UTF-8 text"), ("c.txt", "line 2: a NUL byte"),
                        ("d.txt.gz", "gzip stream is cut off")):
    pattern = f"{tmp_path}/[a{name[0]}]*"  # a glob of two files names the broken one
    with pytest.raises(ValueError, match=f"{name}.*{message}|{name}: .*{message}"):
      list(corpus.read_documents(pattern))


def test_sharing_without_a_hf_layout_is_refused_on_save(tmp_path):
  config = load_config("albert.py:tiny")
  config.model.sharing = "ffn"
  model = build_model(config)
  import jax
  import jax.numpy as jnp
  params = model.init(jax.random.key(0), jnp.ones((1, 4), jnp.int32))["params"]
  with pytest.raises(ValueError, match="sharing='ffn' has no such checkpoint layout"):
    bertlab.save_pretrained(model, params, str(tmp_path))


def test_an_untied_decoder_is_refused_not_dropped(tmp_path):
  save_hf(tmp_path)

  def untie(tensors):
    tensors["cls.predictions.decoder.weight"] = tensors[
        "bert.embeddings.word_embeddings.weight"] + 1.0

  rewrite_tensors(tmp_path, untie)
  with pytest.raises(bertlab.CheckpointMismatch, match="untied: cls.predictions.decoder.weight"):
    bertlab.load_pretrained(str(tmp_path))
