"""Fine-tuning inputs: GLUE TSV layouts, CoNLL files, SQuAD windows mapping back to the exact
answer text, the families' pair layouts, and clear errors on bad input."""

import json
import os

import ml_collections
import numpy as np
import pytest

from bertlab.data import finetune as encode
from bertlab.data import tokenizers
from bertlab.tasks import glue, ner
from bertlab.tasks.squad import SquadJob

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
BERT_VOCAB = os.path.join(SHARED, "vocab", "bert-base-uncased")
GPT2_VOCAB = os.path.join(SHARED, "vocab", "gpt2-bpe")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED),
                                  reason="../shared/data (CI's real data samples) is absent")


def _write(path, rows):
  with open(path, "w", encoding="utf-8") as f:
    f.write("".join("\t".join(r) + "\n" for r in rows))
  return str(path)


def test_cola_has_no_header_and_mnli_names_its_labels(tmp_path):
  cola = _write(tmp_path / "cola.tsv", [["gj04", "1", "", "The sailors rode."],
                                        ["gj04", "0", "*", "Rode sailors the."]])
  examples = glue.read_examples(glue.TASKS["cola"], cola)
  assert [(e.texts, e.label) for e in examples] == [(("The sailors rode.",), "1"),
                                                     (("Rode sailors the.",), "0")]
  header = ["index", "promptID", "pairID", "genre", "s1b", "s2b", "s1p", "s2p", "sentence1",
            "sentence2", "label1", "gold_label"]
  mnli = _write(tmp_path / "mnli.tsv", [header, ["0", "1", "2", "g", "", "", "", "", "A man.",
                                                 "A person.", "entailment", "entailment"]])
  [example] = glue.read_examples(glue.TASKS["mnli"], mnli)
  assert example.texts == ("A man.", "A person.") and example.label == "entailment"


def test_bad_rows_name_the_file_and_line(tmp_path):
  rte = _write(tmp_path / "dev.tsv", [["index", "sentence1", "sentence2", "label"],
                                      ["0", "a", "b", "entailment"],
                                      ["1", "a", "b"]])
  with pytest.raises(ValueError, match=r"dev.tsv, line 3: 3 tab-separated columns, expected 4"):
    glue.read_examples(glue.TASKS["rte"], rte)
  bad_label = _write(tmp_path / "bad.tsv", [["index", "sentence1", "sentence2", "label"],
                                            ["0", "a", "b", "maybe"]])
  with pytest.raises(ValueError, match=r"line 2: label 'maybe' is not one of RTE's labels"):
    glue.read_examples(glue.TASKS["rte"], bad_label)
  conll = tmp_path / "train.txt"
  conll.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP B-FOO\n")
  with pytest.raises(ValueError, match=r"train.txt, line 2: tag 'B-FOO' is not in the label"):
    ner.read_conll(str(conll))


@needs_shared
def test_shared_glue_files_read_in_their_published_layouts():
  for name, count in [("cola", 1043), ("sst2", 872), ("mrpc", 408), ("stsb", 1500),
                      ("rte", 277), ("wnli", 71), ("qnli", 5463)]:
    task = glue.TASKS[name]
    files = glue.local_files(task, os.path.join(SHARED, "glue"))
    examples = glue.read_examples(task, files["dev"])
    assert len(examples) == count, name
    assert all(len(e.texts) == len(task.text_columns) for e in examples)
  mrpc = glue.read_examples(glue.TASKS["mrpc"], os.path.join(SHARED, "glue", "MRPC", "dev.tsv"))
  assert mrpc[0].label == "1" and mrpc[0].texts[0].startswith("He said the foodservice")


@needs_shared
def test_pairs_follow_each_family_layout():
  bert = tokenizers.load_tokenizer(BERT_VOCAB)
  arrays = encode.encode_texts(bert, [("Hello world", "Good bye")], 12)
  assert bert.decode(arrays["input_ids"][0][:7]) == ["[CLS]", "hello", "world", "[SEP]", "good",
                                                     "bye", "[SEP]"]
  assert arrays["token_type_ids"][0][:8].tolist() == [0, 0, 0, 0, 1, 1, 1, 0]
  assert arrays["attention_mask"][0].sum() == 7
  roberta = tokenizers.load_tokenizer(GPT2_VOCAB)
  arrays = encode.encode_texts(roberta, [("Hello world", "Good bye")], 12, type_vocab_size=1)
  assert roberta.decode(arrays["input_ids"][0][:8]) == ["<s>", "Hello", "Ġworld", "</s>", "</s>",
                                                        "Good", "Ġbye", "</s>"]
  assert not arrays["token_type_ids"].any()
  long = encode.encode_texts(bert, [("one two three four five six", "seven")], 8)
  assert bert.decode(long["input_ids"][0]) == ["[CLS]", "one", "two", "three", "four", "[SEP]",
                                               "seven", "[SEP]"]


def _squad_file(tmp_path, context, answers):
  qas = [dict(id=f"q{i}", question=f"Where is answer {i}?", is_impossible=not a,
              answers=[dict(text=a, answer_start=context.index(a))] if a else [])
         for i, a in enumerate(answers)]
  path = tmp_path / "dev-v2.0.json"
  path.write_text(json.dumps(dict(version="v2.0", data=[dict(
      title="t", paragraphs=[dict(context=context, qas=qas)])])))
  return str(path)


def _oracle_logits(job, arrays, split="dev"):
  """Logits that put each question's gold characters at the top of their max-context window."""
  start = np.full(arrays["input_ids"].shape, -10.0)
  end = start.copy()
  for k, window in enumerate(job.windows(split)):
    question = job._questions[split][window.question_index]
    if not question.answers:
      start[k, 0] = end[k, 0] = 5.0
      continue
    first = question.answers[0]["answer_start"]
    last = first + len(question.answers[0]["text"])
    inside = [i for i, s in enumerate(window.spans) if s and s[1] > first and s[0] < last]
    if inside and window.max_context[inside[0]]:
      start[k, inside[0]], end[k, inside[-1]] = 10.0, 10.0
  return start, end


@needs_shared
@pytest.mark.parametrize("vocab", [BERT_VOCAB, GPT2_VOCAB])
def test_squad_answers_map_back_to_the_exact_context_text(tmp_path, vocab):
  tokenizer = tokenizers.load_tokenizer(vocab)
  context = ("Beyoncé Giselle Knowles-Carter (born September 4, 1981) is an American singer. "
             "Born and raised in Houston, Texas, she performed in various singing and dancing "
             "competitions as a child. " * 3)
  answers = ["Knowles-Carter", "September 4, 1981", "Houston, Texas", "", "dancing"]
  data = ml_collections.ConfigDict(dict(
      data_dir=str(tmp_path), seq_len=48, max_train_examples=0, max_eval_examples=0,
      train_file="", dev_file=_squad_file(tmp_path, context, answers)))
  job = SquadJob("v2", data, tokenizer, 2, dict(doc_stride=16))
  arrays = job.arrays("dev")
  assert arrays["input_ids"].shape[1] == 48 and len(job.windows("dev")) > len(answers)
  scores, (predicted, _, null_odds) = job.score("dev", _oracle_logits(job, arrays))
  assert predicted == {f"q{i}": a for i, a in enumerate(answers)}
  assert scores["exact_match"] == 100.0 and null_odds["q3"] > 0


@needs_shared
def test_a_question_longer_than_the_sequence_is_a_clear_error(tmp_path):
  tokenizer = tokenizers.load_tokenizer(BERT_VOCAB)
  path = _squad_file(tmp_path, "A short context.", ["short"])
  data = ml_collections.ConfigDict(dict(data_dir=str(tmp_path), seq_len=8, max_train_examples=0,
                                        max_eval_examples=0, train_file="", dev_file=path))
  job = SquadJob("v2", data, tokenizer, 2)
  with pytest.raises(ValueError, match="leave no room for the context in data.seq_len=8"):
    job.arrays("dev")


@needs_shared
def test_ner_labels_sit_on_first_pieces():
  tokenizer = tokenizers.load_tokenizer(BERT_VOCAB)
  data = ml_collections.ConfigDict(dict(data_dir=os.path.join(SHARED, "conll2003"), seq_len=64,
                                        max_train_examples=5, max_eval_examples=20))
  job = ner.NerJob(data, tokenizer)
  arrays = job.arrays("dev")
  first = job._sentences["dev"][0]
  weights = arrays["label_weights"][0]
  assert weights.sum() == min(len(first.words), 62)
  labels = arrays["label_ids"][0][weights > 0]
  assert [job.labels[i] for i in labels] == first.tags[:len(labels)]
  scores, predicted = job.score("dev", np.eye(job.num_labels)[arrays["label_ids"]])
  assert scores["f1"] == 1.0 and predicted[0] == first.tags
