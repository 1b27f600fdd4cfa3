"""Models loaded from random transformers checkpoints give transformers' outputs (1e-5, f32)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax.numpy as jnp  # noqa: E402

import bertlab  # noqa: E402

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=40)

CASES = {
    "bert_pretraining": (transformers.BertForPreTraining, transformers.BertConfig, {}),
    "bert_base_model": (transformers.BertModel, transformers.BertConfig, {}),
    "albert_pretraining": (transformers.AlbertForPreTraining, transformers.AlbertConfig,
                           dict(embedding_size=16, num_hidden_groups=2, hidden_act="gelu_new")),
    "albert_all_shared": (transformers.AlbertForMaskedLM, transformers.AlbertConfig,
                          dict(embedding_size=16, num_hidden_groups=1)),
    "roberta_mlm": (transformers.RobertaForMaskedLM, transformers.RobertaConfig,
                    dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)),
    "roberta_base_model": (transformers.RobertaModel, transformers.RobertaConfig,
                           dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)),
    "electra_discriminator": (transformers.ElectraForPreTraining, transformers.ElectraConfig,
                              dict(embedding_size=16)),
    "electra_generator": (transformers.ElectraForMaskedLM, transformers.ElectraConfig,
                          dict(embedding_size=24, hidden_size=16, num_attention_heads=2)),
}


def random_hf_model(name, seed=0):
  """A transformers model with every weight random, LayerNorms and biases included."""
  model_cls, config_cls, extra = CASES[name]
  torch.manual_seed(seed)
  model = model_cls(config_cls(**{**TINY, **extra}, attn_implementation="eager"))
  with torch.no_grad():
    for pname, p in model.named_parameters():
      if "LayerNorm" in pname or "layer_norm" in pname or pname.endswith("bias"):
        p.add_(0.1 * torch.randn_like(p))
  return model.eval()


def batch(pad_token_id, vocab=99):
  rng = np.random.default_rng(0)
  ids = rng.integers(3, vocab, size=(3, 11))
  mask = np.ones_like(ids)
  mask[1, 6:] = 0  # a padded row
  ids[1, 6:] = pad_token_id
  types = np.zeros_like(ids)
  types[:, 5:] = 1
  return ids, mask, types


def hf_outputs(model, ids, mask, types):
  kwargs = dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                output_hidden_states=True)
  if model.config.type_vocab_size > 1:
    kwargs["token_type_ids"] = torch.tensor(types)
  with torch.no_grad():
    out = model(**kwargs)
  base = getattr(model, model.base_model_prefix, model)
  with torch.no_grad():
    base_out = base(**kwargs)
  found = {"last_hidden_state": base_out.last_hidden_state,
           "hidden_states": base_out.hidden_states}
  if getattr(base_out, "pooler_output", None) is not None:
    found["pooled_output"] = base_out.pooler_output
  for ours, theirs in (("mlm_logits", "prediction_logits"), ("mlm_logits", "logits"),
                       ("sentence_logits", "seq_relationship_logits"),
                       ("sentence_logits", "sop_logits")):
    if getattr(out, theirs, None) is not None and ours not in found:
      found[ours] = out[theirs]
  if isinstance(model, transformers.ElectraForPreTraining):
    found["rtd_logits"] = out.logits
    found.pop("mlm_logits", None)
  return {k: (tuple(t.numpy() for t in v) if isinstance(v, tuple) else v.numpy())
          for k, v in found.items()}


def bertlab_outputs(model, params, ids, mask, types):
  token_types = jnp.asarray(types) if model.config.type_vocab_size > 1 else None
  return model.apply({"params": params}, jnp.asarray(ids), attention_mask=jnp.asarray(mask),
                     token_type_ids=token_types)


def assert_close(expected: dict, out):
  for name, value in expected.items():
    ours = getattr(out, name)
    if isinstance(value, tuple):
      assert len(ours) == len(value), name
      for layer, (a, b) in enumerate(zip(ours, value)):
        np.testing.assert_allclose(np.asarray(a), b, atol=1e-5, rtol=1e-5,
                                   err_msg=f"{name}[{layer}]")
    else:
      np.testing.assert_allclose(np.asarray(ours), value, atol=1e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_load_then_save_matches_transformers(name, tmp_path):
  hf_model = random_hf_model(name)
  hf_model.save_pretrained(tmp_path / "hf")
  ids, mask, types = batch(hf_model.config.pad_token_id or 0)
  expected = hf_outputs(hf_model, ids, mask, types)

  model, params = bertlab.load_pretrained(str(tmp_path / "hf"))
  assert_close(expected, bertlab_outputs(model, params, ids, mask, types))

  bertlab.save_pretrained(model, params, str(tmp_path / "ours"))
  reloaded = type(hf_model).from_pretrained(tmp_path / "ours", attn_implementation="eager")
  assert_close(expected, bertlab_outputs(model, params, ids, mask, types))
  again = hf_outputs(reloaded.eval(), ids, mask, types)
  for key, value in expected.items():
    if isinstance(value, tuple):
      for a, b in zip(again[key], value):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5, err_msg=key)
    else:
      np.testing.assert_allclose(again[key], value, atol=1e-5, rtol=1e-5, err_msg=key)


def test_a_sharded_checkpoint_loads_like_a_single_file(tmp_path):
  """transformers shards large models (model.safetensors.index.json + several files)."""
  hf_model = random_hf_model("bert_pretraining")
  hf_model.save_pretrained(tmp_path / "hf", max_shard_size="20KB")
  assert (tmp_path / "hf" / "model.safetensors.index.json").exists()
  assert len(list((tmp_path / "hf").glob("model-*.safetensors"))) > 1
  ids, mask, types = batch(hf_model.config.pad_token_id or 0)
  model, params = bertlab.load_pretrained(str(tmp_path / "hf"))
  assert_close(hf_outputs(hf_model, ids, mask, types),
               bertlab_outputs(model, params, ids, mask, types))
