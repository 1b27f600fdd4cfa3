"""Original TF checkpoints (google-research bert / albert / electra variable names) load with
the outputs of the same weights in transformers."""

import json

import numpy as np
import pytest

import bertlab
from test_hf_parity import assert_close, batch, bertlab_outputs, hf_outputs

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIZES = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=37, max_position_embeddings=40,
             # The TF code's gelu is the tanh approximation: "gelu" there is gelu_new here.
             hidden_act="gelu_new")

# HF key -> TF variable, as the reference repositories name them (modeling.py of bert and
# albert, run_pretraining.py of electra). Kernels are stored [in, out] in TF.
BERT_LAYER = {
    "attention.self.query": "attention/self/query", "attention.self.key": "attention/self/key",
    "attention.self.value": "attention/self/value",
    "attention.output.dense": "attention/output/dense",
    "attention.output.LayerNorm": "attention/output/LayerNorm",
    "intermediate.dense": "intermediate/dense", "output.dense": "output/dense",
    "output.LayerNorm": "output/LayerNorm",
}
ALBERT_LAYER = {
    "attention.query": "attention_1/self/query", "attention.key": "attention_1/self/key",
    "attention.value": "attention_1/self/value", "attention.dense": "attention_1/output/dense",
    "attention.LayerNorm": "LayerNorm", "ffn": "ffn_1/intermediate/dense",
    "ffn_output": "ffn_1/intermediate/output/dense", "full_layer_layer_norm": "LayerNorm_1",
}


def tf_variables(hf_model, model_type):
  """The HF model's weights under the original TF names."""
  names = {}
  base = {"bert": "bert", "albert": "albert", "electra": "electra"}[model_type]
  tf_base = "bert" if model_type in ("bert", "albert") else "electra"
  for i in range(hf_model.config.num_hidden_layers):
    if model_type == "albert":
      if i >= hf_model.config.num_hidden_groups:
        continue
      table = {f"albert.encoder.albert_layer_groups.{i}.albert_layers.0.{k}":
               f"bert/encoder/transformer/group_{i}/inner_group_0/{v}"
               for k, v in ALBERT_LAYER.items()}
    else:
      table = {f"{base}.encoder.layer.{i}.{k}": f"{tf_base}/encoder/layer_{i}/{v}"
               for k, v in BERT_LAYER.items()}
    names.update(table)
  names.update({f"{base}.embeddings.LayerNorm": f"{tf_base}/embeddings/LayerNorm",
                "bert.pooler.dense": "bert/pooler/dense", "albert.pooler": "bert/pooler/dense",
                "cls.predictions.transform.dense": "cls/predictions/transform/dense",
                "cls.predictions.transform.LayerNorm": "cls/predictions/transform/LayerNorm",
                "predictions.dense": "cls/predictions/transform/dense",
                "predictions.LayerNorm": "cls/predictions/transform/LayerNorm",
                "albert.encoder.embedding_hidden_mapping_in":
                    "bert/encoder/embedding_hidden_mapping_in",
                "electra.embeddings_project": "electra/embeddings_project",
                "discriminator_predictions.dense": "discriminator_predictions/dense",
                "discriminator_predictions.dense_prediction": "discriminator_predictions/dense_1"})
  out = {"global_step": np.array(7, np.int64)}
  for key, value in hf_model.state_dict().items():
    value = value.numpy()
    module, _, leaf = key.rpartition(".")
    if key.endswith("_embeddings.weight"):
      out[f"{tf_base}/embeddings/{module.split('.')[-1]}"] = value
    elif key in ("cls.predictions.bias", "predictions.bias"):
      out["cls/predictions/output_bias"] = value
    elif module in ("cls.seq_relationship", "sop_classifier.classifier"):
      out[f"cls/seq_relationship/output_{'weights' if leaf == 'weight' else 'bias'}"] = value
    elif "decoder" in key:
      continue  # tied to the word embeddings
    elif module in names:
      norm = "LayerNorm" in names[module] or "layer_norm" in module
      tf_leaf = {"weight": "gamma" if norm else "kernel", "bias": "beta" if norm else "bias"}[leaf]
      out[f"{names[module]}/{tf_leaf}"] = value.T if tf_leaf == "kernel" else value
      if tf_leaf == "kernel":
        out[f"{names[module]}/{tf_leaf}/adam_m"] = np.zeros_like(value.T)
    else:
      raise AssertionError(f"test table lacks {key}")
  return out


def write_tf_checkpoint(variables, prefix):
  names = sorted(variables)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                    tensors=[tf.constant(variables[n]) for n in names])


@pytest.mark.parametrize("model_type, model_cls, config_cls, extra", [
    ("bert", transformers.BertForPreTraining, transformers.BertConfig, {}),
    ("albert", transformers.AlbertForPreTraining, transformers.AlbertConfig,
     dict(embedding_size=16, num_hidden_groups=1)),
    ("electra", transformers.ElectraForPreTraining, transformers.ElectraConfig,
     # ELECTRA's heads are 64 wide: its TF checkpoints carry no config to say otherwise.
     dict(embedding_size=16, hidden_size=128, num_attention_heads=2)),
])
def test_tf_checkpoint_matches_transformers(model_type, model_cls, config_cls, extra, tmp_path):
  torch.manual_seed(0)
  hf_model = model_cls(config_cls(**{**SIZES, **extra}, attn_implementation="eager")).eval()
  with torch.no_grad():
    for name, p in hf_model.named_parameters():
      if "LayerNorm" in name or name.endswith("bias"):
        p.add_(0.1 * torch.randn_like(p))
  write_tf_checkpoint(tf_variables(hf_model, model_type), str(tmp_path / "model.ckpt"))
  if model_type != "electra":  # ELECTRA ships no config; its sizes come from the weights
    tf_config = {k: v for k, v in hf_model.config.to_dict().items() if k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size", "embedding_size",
        "num_hidden_groups", "initializer_range")}
    tf_config["hidden_act"] = "gelu"
    (tmp_path / f"{model_type}_config.json").write_text(json.dumps(tf_config))
  ids, mask, types = batch(0)
  model, params = bertlab.load_pretrained(str(tmp_path / "model.ckpt"))
  assert_close(hf_outputs(hf_model, ids, mask, types),
               bertlab_outputs(model, params, ids, mask, types))
