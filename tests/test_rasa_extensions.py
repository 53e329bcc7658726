"""rasa_extensions/ inside the Rasa environment: the sentence featurizer loads its bundled
encoders with no network, embeds English and Chinese into one space, and the intent classifier
trains the same model twice and reloads it exactly (plain arrays, no pickle)."""
from __future__ import annotations

import json
import subprocess
import tempfile

import pytest
import yaml

from stack.settings import RASA_PYTHON, ROOT
from stack.train import rasa_env

# Runs in .venvs/rasa from a directory outside the repository: only PYTHONPATH (rasa_env)
# makes rasa_extensions importable, as for Rasa's CV runs in a temporary directory.
SCRIPT = r"""
import json, socket, sys
import numpy as np

def no_network(*args, **kwargs):
    raise OSError("network use in a test that must run offline")
socket.socket.connect = no_network
socket.create_connection = no_network

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa_extensions.sentence_features import SentenceFeaturizer
from rasa_extensions.intent_classifier import SentenceIntentClassifier

config = json.loads(sys.argv[1])
from pathlib import Path
storage = LocalModelStorage(Path(sys.argv[2]))
context = ExecutionContext(GraphSchema({}), node_name="sentence_features")
featurizer = SentenceFeaturizer.create(
    {**SentenceFeaturizer.get_default_config(), **config["featurizer"]}, storage, Resource("f"), context)

texts = ["how much does the training cost", "培训要多少钱", "what's the weather tomorrow",
         "how much does the training cost", ""]
messages = [Message.build(text=t) for t in texts]
featurizer.process(messages)
vectors = []
for m in messages:
    _, sentence = m.get_dense_features("text")
    vectors.append(sentence.features[0])
vectors = np.stack(vectors)

def unit(v):
    return v / np.linalg.norm(v)

result = {
    "shape": list(vectors.shape),
    "same_text_same_vector": bool(np.array_equal(vectors[0], vectors[3])),
    "empty_is_zero": bool(not vectors[4].any()),
    "cross_lingual": float(unit(vectors[0]) @ unit(vectors[1])),
    "unrelated": float(unit(vectors[0]) @ unit(vectors[2])),
}

examples = {
    "faq_fees": ["how much is the training", "what does it cost", "培训费多少", "收费吗"],
    "greet": ["hello", "hi there", "你好", "早上好"],
    "out_of_scope": ["tell me a joke", "what's the weather", "今天天气怎么样", "讲个笑话"],
}
data = [Message.build(text=t, intent=i) for i, ts in examples.items() for t in ts]
featurizer.process_training_data(TrainingData(data))

def train(name):
    clf = SentenceIntentClassifier.create(
        {**SentenceIntentClassifier.get_default_config(), **config["classifier"]}, storage, Resource(name), context)
    clf.train(TrainingData(data))
    return clf

first, second = train("c1"), train("c2")
loaded = SentenceIntentClassifier.load(
    {**SentenceIntentClassifier.get_default_config(), **config["classifier"]}, storage, Resource("c1"), context)
probe = [Message.build(text=t) for t in ("how much do we pay for it", "早上好呀", "sing me a song")]
featurizer.process(probe)
loaded.process(probe)
result["same_model_twice"] = bool(np.array_equal(first.weights, second.weights))
result["reloaded_equal"] = bool(np.array_equal(first.weights, loaded.weights)
                                and np.array_equal(first.in_scope, loaded.in_scope)
                                and np.array_equal(first.out_of_scope, loaded.out_of_scope)
                                and np.array_equal(first.second_weights, loaded.second_weights))
result["second_trained"] = first.second_weights is not None and first.second_weights.shape[0] == len(first.labels)
# A model saved before the out-of-scope vectors were kept still loads, trained.
from rasa_extensions.intent_classifier import META_FILE, MODEL_FILE
with storage.write_to(Resource("old")) as directory:
    np.savez(directory / MODEL_FILE, weights=first.weights, bias=first.bias, in_scope=first.in_scope)
    (directory / META_FILE).write_text(json.dumps({"labels": first.labels}), encoding="utf-8")
old = SentenceIntentClassifier.load(
    {**SentenceIntentClassifier.get_default_config(), **config["classifier"]}, storage, Resource("old"), context)
old_probe = [Message.build(text="how much do we pay for it")]
featurizer.process(old_probe)
old.process(old_probe)
result["old_model"] = [old.out_of_scope is None, old_probe[0].get("intent")["name"]]
result["probe"] = [[m.get("intent")["name"], m.get("scope_similarity")] for m in probe]

# The second encoder is asked only when the first regression's top confidence is below
# second_encoder_below: never at 0, always above 1; either way the intents come out right.
def second_below(below):
    clf = SentenceIntentClassifier.create(
        {**SentenceIntentClassifier.get_default_config(), **config["classifier"], "second_encoder": "e5",
         "second_encoder_below": below}, storage, Resource(f"b{below}"), context)
    clf.train(TrainingData(data))
    asked = [Message.build(text=t) for t in ("how much do we pay for it", "早上好呀")]
    featurizer.process(asked)
    clf.process(asked)
    return [[m.get("intent")["name"], m.get("intent_second_encoder")] for m in asked]
result["second_below"] = {str(b): second_below(b) for b in (0.0, 1.01)}
from rasa.shared.exceptions import InvalidConfigException
try:
    SentenceIntentClassifier.create({**SentenceIntentClassifier.get_default_config(), "second_encoder": "bert"},
                                    storage, Resource("bad"), context)
    result["unknown_second_encoder"] = "accepted"
except InvalidConfigException as error:
    result["unknown_second_encoder"] = str(error)

# out_of_scope_weight: out_of_scope weighs that many times one intent, and the regression
# gives it more of the probability of a far-off message than with the weight 1.
labels = [i for i, ts in examples.items() for _ in ts]
def weighted(weight):
    return SentenceIntentClassifier.create(
        {**SentenceIntentClassifier.get_default_config(), **config["classifier"], "out_of_scope_weight": weight,
         "out_of_scope_margin": None},  # the regression's own probabilities
        storage, Resource(f"w{weight}"), context)
result["class_weights"] = {str(w): weighted(w)._class_weights(labels) for w in (1.0, 3.0)}
def oos_confidence(weight):
    clf = weighted(weight)
    clf.train(TrainingData(data))
    far = [Message.build(text="sing me a song")]
    featurizer.process(far)
    clf.process(far)
    ranking = {r["name"]: r["confidence"] for r in far[0].get("intent_ranking")}
    return ranking["out_of_scope"]
result["oos_confidence"] = {str(w): oos_confidence(w) for w in (1.0, 3.0)}

# out_of_scope_margin: a message this much nearer an out_of_scope example than any in-scope one
# is out of scope, whatever the regression says. Vectors made by hand: the regression favours
# start_booking along the first axis, the out_of_scope example lies along the second.
from rasa.shared.nlu.training_data.features import Features
def by_hand(margin):
    return SentenceIntentClassifier(
        {**SentenceIntentClassifier.get_default_config(), "featurizers": [], "out_of_scope_margin": margin},
        storage, Resource(f"m{margin}"), labels=["out_of_scope", "start_booking"],
        weights=np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]], np.float32), bias=np.zeros(2, np.float32),
        in_scope=np.array([[1.0, 0.0, 0.0]], np.float32), out_of_scope=np.array([[0.0, 1.0, 0.0]], np.float32))
def decide(margin, vector):
    message = Message.build(text="x")
    message.add_features(Features(np.array([vector], np.float32), "sentence", "text", "sentence"))
    by_hand(margin).process([message])
    return message.get("intent")["name"]
# similarity to the in-scope / the out-of-scope example: 0.6 / 0.8, about 0.6 / 0.62, 0.8 / 0.6
vectors = [[0.6, 0.8, 0.0], [0.6, 0.62, 0.5], [0.8, 0.6, 0.0]]
result["margin"] = {str(m): [decide(m, v) for v in vectors] for m in (None, 0.05)}

print("RESULT " + json.dumps(result))
"""


def _pipeline_config() -> tuple[dict, dict]:
    pipeline = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    by_name = {c["name"].rsplit(".", 1)[-1]: {k: v for k, v in c.items() if k != "name"} for c in pipeline}
    return by_name.get("SentenceFeaturizer", {}), by_name.get("SentenceIntentClassifier", {})


@pytest.fixture(scope="module")
def offline_run() -> dict:
    featurizer, classifier = _pipeline_config()
    classifier = {**classifier, "scope_floor": 0.0}  # the tiny data says nothing about the floor
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(
            [str(RASA_PYTHON), "-c", SCRIPT, json.dumps({"featurizer": featurizer, "classifier": classifier}), work],
            cwd=work, env=rasa_env(), capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_featurizer_embeds_offline_one_space_for_both_languages(offline_run) -> None:
    rows, dims = offline_run["shape"]
    assert rows == 5 and dims in (384, 512, 896)
    assert offline_run["same_text_same_vector"]
    assert offline_run["empty_is_zero"]
    # "how much does the training cost" is nearer its Chinese translation than the weather.
    assert offline_run["cross_lingual"] > offline_run["unrelated"] + 0.1


def test_classifier_is_reproducible_and_reloads_exactly(offline_run) -> None:
    assert offline_run["same_model_twice"]
    assert offline_run["reloaded_equal"]
    assert offline_run["old_model"] == [True, "faq_fees"]
    assert offline_run["second_trained"]
    intents = [intent for intent, _ in offline_run["probe"]]
    assert intents[:2] == ["faq_fees", "greet"]
    assert all(0.0 < similarity <= 1.0001 for _, similarity in offline_run["probe"])


def test_out_of_scope_weight_raises_its_class_weight_and_confidence(offline_run) -> None:
    one, three = offline_run["class_weights"]["1.0"], offline_run["class_weights"]["3.0"]
    # "balanced": 12 examples in 3 intents of 4 each, so every intent weighs 1.
    assert one == {"faq_fees": 1.0, "greet": 1.0, "out_of_scope": 1.0}
    assert three == {"faq_fees": 1.0, "greet": 1.0, "out_of_scope": 3.0}
    confidence = offline_run["oos_confidence"]
    assert confidence["3.0"] > confidence["1.0"]


def test_a_message_nearer_an_out_of_scope_example_is_out_of_scope(offline_run) -> None:
    # Without the margin the regression decides (start_booking for all three); with 0.05, the
    # message nearer the out-of-scope example by 0.2 is out of scope, by 0.02 or farther it is not.
    assert offline_run["margin"]["None"] == ["start_booking"] * 3
    assert offline_run["margin"]["0.05"] == ["out_of_scope", "start_booking", "start_booking"]


def test_the_rasa_server_runs_numpy_with_one_blas_thread() -> None:
    """OpenBLAS's extra thread spins between small products and burned a core under load: the
    server's entry point (`python -m rasa_extensions`) sets one thread before numpy loads."""
    probe = ("import runpy, sys; sys.argv = ['rasa_extensions']; "
             "runpy.run_module('rasa_extensions.__main__', run_name='probe'); "
             "import numpy; from threadpoolctl import threadpool_info; "
             "print(max(p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas'))")
    env = {k: v for k, v in rasa_env().items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([str(RASA_PYTHON), "-c", probe], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1"]


def test_the_second_encoder_is_asked_only_below_its_confidence(offline_run) -> None:
    assert offline_run["second_below"]["0.0"] == [["faq_fees", False], ["greet", False]]
    assert offline_run["second_below"]["1.01"] == [["faq_fees", True], ["greet", True]]
    assert "second_encoder" in offline_run["unknown_second_encoder"]
