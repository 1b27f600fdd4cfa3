"""encoder_params equals transformers' count for the published sizes, exactly."""

import pytest

from bertlab.jobs import build_model
from bertlab.summary import count_params
from conftest import load_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# transformers' own counts (BertModel, AlbertModel, RobertaModel, ElectraModel,
# ModernBertModel). RoBERTa has no
# sentence objective and so no pooler: RobertaModel(add_pooling_layer=False), the encoder of
# RobertaForMaskedLM.
PUBLISHED = {
    "bert.py:base": 109_482_240, "bert.py:large": 335_141_888,
    "albert.py:base": 11_683_584, "albert.py:large": 17_683_968,
    "albert.py:xlarge": 58_724_864, "albert.py:xxlarge": 222_595_584,
    "roberta.py:base": 124_055_040, "roberta.py:large": 354_310_144,
    "electra.py:small": 13_483_008, "electra.py:base": 108_891_648,
    # ModernBertModel (the published ModernBERT-base and -large shapes).
    "modernbert.py:base": 149_014_272, "modernbert.py:large": 394_781_696,
}


@pytest.mark.parametrize("spec", sorted(PUBLISHED))
def test_published_encoder_sizes(spec):
  assert count_params(build_model(load_config(spec)))[0] == PUBLISHED[spec]


def albert_base(**overrides):
  config = load_config("albert.py:base")
  config.model.update(overrides)
  return count_params(build_model(config))[0]


@pytest.mark.parametrize("embedding_size, expected_millions", [
    (128, {"all": 12, "ffn": 38, "attention": 64, "none": 89}),
    (768, {"all": 31, "ffn": 57, "attention": 83, "none": 108}),
])
def test_albert_cross_layer_sharing_matches_table_4(embedding_size, expected_millions):
  """ALBERT-base counts of the paper's Table 4. The paper prints whole millions and counts
  a little less than transformers does (its BERT-base is "108M", transformers' 109.48M):
  89.65M is printed 89M, 63.65M 64M, 109.08M 108M; so within 1.1M."""
  for sharing, millions in expected_millions.items():
    count = albert_base(embedding_size=embedding_size, sharing=sharing)
    assert abs(count / 1e6 - millions) <= 1.1, (sharing, count)


def hf_albert_count(groups: int) -> int:
  config = transformers.AlbertConfig(
      vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
      num_attention_heads=12, intermediate_size=3072, num_hidden_groups=groups)
  with torch.device("meta"):
    model = transformers.AlbertModel(config)
  return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("groups", [1, 2, 3, 6, 12])
def test_albert_hidden_groups_match_transformers(groups):
  assert albert_base(num_hidden_groups=groups) == hf_albert_count(groups)


def test_electra_total_counts_shared_embeddings_once():
  config = load_config("electra.py:small")
  model = build_model(config)
  encoder, total = count_params(model)
  hf = transformers.ElectraConfig(embedding_size=128, hidden_size=256, num_hidden_layers=12,
                                  num_attention_heads=4, intermediate_size=1024)
  with torch.device("meta"):
    generator = transformers.ElectraForMaskedLM(hf)
    discriminator = transformers.ElectraForPreTraining(hf)
  count = lambda m: sum(p.numel() for p in m.parameters())
  shared = count(generator.electra.embeddings)
  assert encoder == count(discriminator.electra)
  assert total == count(generator) + count(discriminator) - shared
