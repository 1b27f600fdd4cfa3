"""ModernBERT as switches on bertlab's encoder: transformers' ModernBertModel and
ModernBertForMaskedLM load with load_pretrained and give the same hidden states and logits,
and save_pretrained gives transformers a checkpoint it reads back to the same outputs."""

import jax
import numpy as np
import pytest

from bertlab import hub
from bertlab.hub import layouts
from bertlab.models.config import ModelConfig

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIGS = {
    # Layers 0 and 3 global, 1, 2 and 4 local (a window of 3 on either side of a token);
    # sequences of 20 tokens, so local and global layers see different contexts.
    "published_switches": dict(num_hidden_layers=5, global_attn_every_n_layers=3,
                               local_attention=6, global_rope_theta=1000.0,
                               local_rope_theta=50.0),
    "biases_and_swiglu": dict(num_hidden_layers=3, global_attn_every_n_layers=2,
                              local_attention=4, norm_bias=True, attention_bias=True,
                              mlp_bias=True, classifier_bias=True, hidden_activation="silu"),
}


def _hf_model(cls, **changes):
  config = transformers.ModernBertConfig(
      vocab_size=64, hidden_size=32, intermediate_size=24, num_attention_heads=4,
      max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
      cls_token_id=1, sep_token_id=2, attn_implementation="eager", **changes)
  torch.manual_seed(0)
  model = cls(config).eval()
  with torch.no_grad():  # move every weight (norms included) away from its initial value
    for name, param in model.named_parameters():
      param.add_(torch.randn_like(param) * (0.3 if "norm" in name else 0.05))
  return model


def _inputs():
  rng = np.random.default_rng(0)
  ids = rng.integers(3, 64, (3, 20))
  mask = np.ones_like(ids)
  mask[1, 14:] = 0  # padded rows
  mask[2, 7:] = 0
  ids[mask == 0] = 0
  return ids, mask


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("cls_name", ["ModernBertModel", "ModernBertForMaskedLM"])
def test_load_pretrained_matches_transformers(tmp_path, name, cls_name):
  hf_model = _hf_model(getattr(transformers, cls_name), **CONFIGS[name])
  hf_model.save_pretrained(tmp_path / "hf")
  ids, mask = _inputs()
  model, params = hub.load_pretrained(str(tmp_path / "hf"))
  assert model.config.family == "modernbert" and model.config.local_layers.any()
  with torch.no_grad():
    hf_out = hf_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                      output_hidden_states=True)
  out = model.apply({"params": params}, ids, mask)
  real = mask.astype(bool)
  if cls_name == "ModernBertModel":
    np.testing.assert_allclose(np.asarray(out.last_hidden_state)[real],
                               hf_out.last_hidden_state.numpy()[real], atol=1e-5, rtol=1e-5)
    assert len(out.hidden_states) == len(hf_out.hidden_states)
    for layer, (a, b) in enumerate(zip(out.hidden_states, hf_out.hidden_states)):
      np.testing.assert_allclose(np.asarray(a)[real], b.numpy()[real], atol=1e-5, rtol=1e-5,
                                 err_msg=f"hidden state {layer}")
  else:
    np.testing.assert_allclose(np.asarray(out.mlm_logits)[real], hf_out.logits.numpy()[real],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_save_pretrained_reads_back_in_transformers(tmp_path, name):
  hf_model = _hf_model(transformers.ModernBertForMaskedLM, **CONFIGS[name])
  hf_model.save_pretrained(tmp_path / "hf")
  model, params = hub.load_pretrained(str(tmp_path / "hf"))
  hub.save_pretrained(model, params, str(tmp_path / "ours"))
  again, info = transformers.ModernBertForMaskedLM.from_pretrained(
      tmp_path / "ours", attn_implementation="eager", output_loading_info=True)
  assert not info["missing_keys"] and not info["unexpected_keys"], info
  ids, mask = _inputs()
  with torch.no_grad():
    expected = hf_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    got = again.eval()(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
  real = mask.astype(bool)
  np.testing.assert_allclose(got.numpy()[real], expected.numpy()[real], atol=1e-5, rtol=1e-5)
  # And bertlab reads its own export to the same parameters.
  _, reread = hub.load_pretrained(str(tmp_path / "ours"))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reread)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_bert_shaped_config_is_refused_as_a_modernbert_checkpoint():
  config = ModelConfig(family="modernbert", vocab_size=64, hidden_size=32, num_layers=2,
                       num_heads=4, intermediate_size=24, heads=("mlm",))
  with pytest.raises(ValueError, match="norm_position='post' \\(needs 'pre'\\).*feed_forward"):
    layouts.config_to_hf(config)
