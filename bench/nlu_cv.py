"""Cross-validation of intent classification per language, on typed intents only.

`rasa test nlu --cross-validation` on the training data of one language (an example holding a
Han character is Chinese), with the project's config.yml as it is when this runs (policies
dropped; DIET's epochs lowered only if the pipeline has DIET). Payload-only intents (a button
sends them, they have no typed examples) are left out; so is any intent with fewer than two
examples in that language.

Rasa shuffles the folds with numpy's global random state and no seed: the same data gave
macro-F1s 0.02 apart between runs. Each run here seeds it (fold seed 0, 1, ...), so a figure
can be reproduced, and several seeds give the mean and the spread.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from stack.settings import RASA_PYTHON, ROOT
from stack.train import rasa_env

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LANGS = ("en", "zh")
# Intents only a button sends (`/intent{...}`, resolved without NLU): nothing to classify.
PAYLOAD_ONLY = frozenset({"choose_module", "choose_place", "choose_session", "confirm_cancel",
                          "reschedule_to", "confirm_reschedule"})
NOT_TYPED = PAYLOAD_ONLY | {"nlu_fallback"}


def examples_of(block: dict[str, Any]) -> list[str]:
    return [line.strip()[2:].strip() for line in str(block.get("examples") or "").splitlines()
            if line.strip().startswith("- ")]


def training_data() -> tuple[dict[str, dict[str, list[str]]], list[dict[str, Any]]]:
    """Typed intents' examples split by language, and the other blocks (regexes, ...) both share."""
    split: dict[str, dict[str, list[str]]] = {lang: {} for lang in LANGS}
    shared: list[dict[str, Any]] = []
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                shared.append(block)  # regexes, synonyms, lookups: features for both
                continue
            if block["intent"] in NOT_TYPED:
                continue
            for text in examples_of(block):
                if text.startswith("/"):
                    continue  # a payload written as an example is not typed text
                lang = "zh" if HAN.search(text) else "en"
                split[lang].setdefault(block["intent"], []).append(text)
    return split, shared


def write_nlu(intents: dict[str, list[str]], shared: list[dict[str, Any]], path: Path) -> list[str]:
    """The CV data file; returns the intents left out (fewer than 2 examples)."""
    too_few = sorted(name for name, texts in intents.items() if len(texts) < 2)
    blocks: list[dict[str, Any]] = [
        {"intent": name, "examples": "".join(f"- {text}\n" for text in texts)}
        for name, texts in intents.items()
        if len(texts) >= 2
    ]
    blocks += shared
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": blocks}, allow_unicode=True,
                                   sort_keys=False), encoding="utf-8")
    return too_few


def cv_config(epochs: int, path: Path, source: Path = ROOT / "config.yml") -> str:
    """config.yml as it is, without policies; DIET (if any) at `epochs`. Returns a note on
    what was changed, for the table."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    notes = []
    pipeline = []
    for component in config.get("pipeline") or []:
        if str(component.get("name", "")).split(".")[-1] == "DIETClassifier":
            if component.get("intent_classification", True) is False:
                # Entities only: it takes no part in the intent scored here, and CV trains
                # folds x languages models on 2 cores.
                notes.append("DIET (entities only) left out")
                continue
            component["epochs"] = epochs  # fewer epochs: CV trains many models
            notes.append(f"DIET {epochs} ep")
        pipeline.append(component)
    config["pipeline"] = pipeline
    config.pop("policies", None)
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return ", ".join(notes) or "config.yml as is"


def worst_intents(report: dict[str, Any], count: int = 8) -> list[tuple[str, float, int, str]]:
    """The `count` intents with the lowest F1: (intent, F1, support, most confused with)."""
    rows = []
    for name, scores in report.items():
        if not isinstance(scores, dict) or "f1-score" not in scores or name.endswith(" avg"):
            continue
        confused = scores.get("confused_with") or {}
        top = max(confused.items(), key=lambda item: item[1], default=None)
        rows.append((name, float(scores["f1-score"]), int(scores["support"]),
                     f"{top[0]} ({top[1]})" if top else ""))
    return sorted(rows, key=lambda row: (row[1], row[0]))[:count]


# `rasa test nlu ...` with numpy's global random state seeded first (argv[1]): Rasa's
# StratifiedKFold(shuffle=True) takes its folds from it.
SEEDED_RASA = ("import sys, numpy; numpy.random.seed(int(sys.argv[1])); sys.argv = ['rasa'] + sys.argv[2:]; "
               "from rasa.__main__ import main; main()")


def cross_validate(lang: str, intents: dict[str, list[str]], shared: list[dict[str, Any]],
                   folds: int, epochs: int, work: Path, seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Macro-F1 averaged over one CV per fold seed; `worst` is from the first seed's run."""
    data, config = work / f"nlu_{lang}.yml", work / "cv_config.yml"
    left_out = write_nlu(intents, shared, data)
    if left_out:
        print(f"  left out of CV (fewer than 2 examples): {', '.join(left_out)}", flush=True)
    note = cv_config(epochs, config)
    started = time.monotonic()
    reports = []
    for seed in seeds:
        out = work / (f"cv_{lang}" if seed == seeds[0] else f"cv_{lang}_seed{seed}")
        log = work / f"{out.name}.log"
        with log.open("wb") as output:
            done = subprocess.run(
                [str(RASA_PYTHON), "-c", SEEDED_RASA, str(seed), "test", "nlu", "--nlu", str(data),
                 "--config", str(config), "--cross-validation", "--folds", str(folds), "--out", str(out)],
                cwd=work, env=rasa_env(), stdout=output, stderr=subprocess.STDOUT,
            )
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"rasa test nlu failed for {lang} (log {log}):\n{tail}")
        reports.append(json.loads((out / "intent_report.json").read_text()))
    f1s = [float(report["macro avg"]["f1-score"]) for report in reports]
    return {
        "f1": sum(f1s) / len(f1s),
        "f1s": dict(zip(seeds, f1s, strict=True)),
        "seconds": time.monotonic() - started,
        "worst": worst_intents(reports[0]),
        "intents": sum(1 for texts in intents.values() if len(texts) >= 2),
        "config": note,
    }
