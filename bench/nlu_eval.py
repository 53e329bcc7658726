"""NLU quality of the knowledge capability, per language; prints a table.

    .venvs/app/bin/python bench/nlu_eval.py [--folds 5] [--cv-epochs 60] [--model PATH]
                                           [--skip-cv] [--skip-heldout]

1. Cross-validation: `rasa test nlu --cross-validation` on the training data of each
   language separately (an example containing Han characters is Chinese), with the project's
   config.yml except fewer DIET epochs (CV trains `folds` models per language on 2 cores).
   Reports intent macro-F1 over every intent of that language.
2. Held-out: bench/heldout/*.yml (bench/heldout/README.md), written apart from nlu/, parsed by the full
   model (trained here with the project's config unless --model is given). A question counts
   as answered right when the predicted intent is the expected one; an out_of_scope question
   counts as caught when it gets out_of_scope or nlu_fallback (both go to action_fallback).
3. Figures: every held-out question about fees, visits, certificates and the EIT is answered
   with the reply the action would send for the predicted intent; any digit in the answer
   body, or any price pattern in the whole reply, is an invented figure.

A benchmark, not a test: it prints figures and exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.knowledge import knowledge, reply  # noqa: E402
from bench.heldout_sets import load as load_heldout  # noqa: E402
from stack.settings import RASA_PYTHON  # noqa: E402
from stack.train import rasa_env, train  # noqa: E402

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LANGS = ("en", "zh")
MISS = {"out_of_scope", "nlu_fallback"}
FIGURE_TOPICS = {"fees", "visits", "certificate", "eit"}
PRICE = re.compile(
    r"(\d[\d,.]*\s*(元|块|rmb|cny|usd|yuan|dollars?|\$|¥)|(rmb|cny|usd|\$|¥)\s*\d)", re.I
)
TARGETS = {
    "cv_f1": {"en": 0.95, "zh": 0.92},
    "heldout": {"en": 0.95, "zh": 0.92},
    "oos": 0.90,
}
# Runs inside .venvs/rasa: parses texts with the trained model, prints one JSON per line.
PARSER = """
import asyncio, json, sys, logging
logging.disable(logging.WARNING)
from rasa.core.agent import Agent
async def main():
    agent = Agent.load(sys.argv[1])
    for line in sys.stdin:
        text = json.loads(line)
        result = await agent.parse_message(text)
        intent = result.get("intent") or {}
        print(json.dumps({"text": text, "intent": intent.get("name"),
                          "confidence": intent.get("confidence")}), flush=True)
asyncio.run(main())
"""


@dataclass
class LangResult:
    cv_f1: float | None = None
    cv_worst: list[tuple[str, float, int, str]] | None = None
    cv_seconds: float = 0.0
    heldout_total: int = 0
    heldout_right: int = 0
    oos_total: int = 0
    oos_caught: int = 0
    figure_questions: int = 0
    invented_figures: int = 0


def training_data() -> tuple[dict[str, dict[str, list[str]]], list[dict[str, Any]]]:
    """Intent examples split by language, and the other blocks (regexes, ...) both share."""
    split: dict[str, dict[str, list[str]]] = {lang: {} for lang in LANGS}
    shared: list[dict[str, Any]] = []
    for path in sorted((ROOT / "nlu").glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                shared.append(block)  # regexes, synonyms, lookups: features for both
                continue
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    text = line.strip()[2:].strip()
                    lang = "zh" if HAN.search(text) else "en"
                    split[lang].setdefault(block["intent"], []).append(text)
    return split, shared


def write_nlu(intents: dict[str, list[str]], shared: list[dict[str, Any]], path: Path) -> None:
    too_few = sorted(name for name, texts in intents.items() if len(texts) < 2)
    if too_few:  # CV needs at least two examples of an intent: say which ones it leaves out
        print(f"  left out of CV (fewer than 2 examples): {', '.join(too_few)}", flush=True)
    blocks: list[dict[str, Any]] = [
        {"intent": name, "examples": "".join(f"- {text}\n" for text in texts)}
        for name, texts in intents.items()
        if len(texts) >= 2
    ]
    blocks += shared
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": blocks}, allow_unicode=True,
                                   sort_keys=False), encoding="utf-8")


def cv_config(epochs: int, path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"] == "DIETClassifier":
            component["epochs"] = epochs  # fewer epochs: CV trains many models
    config.pop("policies", None)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def cross_validate(lang: str, intents: dict[str, list[str]], shared: list[dict[str, Any]],
                   folds: int, epochs: int, work: Path
                   ) -> tuple[float, float, list[tuple[str, float, int, str]]]:
    data, config, out = work / f"nlu_{lang}.yml", work / "cv_config.yml", work / f"cv_{lang}"
    write_nlu(intents, shared, data)
    cv_config(epochs, config)
    started = time.monotonic()
    subprocess.run(
        [str(RASA_PYTHON), "-m", "rasa", "test", "nlu", "--nlu", str(data), "--config",
         str(config), "--cross-validation", "--folds", str(folds), "--out", str(out)],
        cwd=work, env=rasa_env(), check=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - started
    report = json.loads((out / "intent_report.json").read_text())
    return float(report["macro avg"]["f1-score"]), seconds, worst_intents(report)


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


def parse(model: Path, texts: list[str]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(RASA_PYTHON), "-c", PARSER, str(model)],
        input="".join(json.dumps(text) + "\n" for text in texts),
        capture_output=True, text=True, cwd=ROOT, env=rasa_env(), check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def invented_figure(intent: str | None, lang: str) -> bool:
    """Would the reply to this prediction state a figure we do not have?"""
    topic = (intent or "").removeprefix("faq_")
    if topic not in knowledge()["topics"]:
        return False  # the fallback answers: it states no fact
    body = knowledge()["topics"][topic][lang]
    if topic in FIGURE_TOPICS and re.search(r"\d", body):
        return True
    return bool(PRICE.search(reply(topic, lang).text)) if topic in FIGURE_TOPICS else False


def heldout(model: Path, lang: str, result: LangResult, show_errors: bool) -> None:
    messages = [m for m in load_heldout() if m.language == lang]
    predictions = parse(model, [m.text for m in messages])
    for message, predicted in zip(messages, predictions, strict=True):
        # Intent level (until the answer-level scoring): an eligibility message should start
        # the check (check_eligibility).
        expected = "check_eligibility" if message.kind == "eligibility" else message.expect
        got = predicted["intent"]
        right = got in MISS if expected == "out_of_scope" else got == expected
        result.heldout_total += 1
        result.heldout_right += right
        if expected == "out_of_scope":
            result.oos_total += 1
            result.oos_caught += right
        if expected.removeprefix("faq_") in FIGURE_TOPICS:
            result.figure_questions += 1
            result.invented_figures += invented_figure(got, lang)
        if not right and show_errors:
            print(f"  miss [{lang}] {message.text!r}: expected {expected}, got {got} "
                  f"({predicted['confidence']:.2f})")


def table(results: dict[str, LangResult], folds: int, epochs: int) -> bool:
    ok = True
    rows = [("metric", "en", "zh", "target")]

    def pct(n: int, d: int) -> str:
        return f"{n / d:.1%} ({n}/{d})" if d else "-"

    if any(r.cv_f1 is not None for r in results.values()):
        f1s = {lang: results[lang].cv_f1 for lang in LANGS}
        rows.append((f"CV intent macro-F1 ({folds}-fold, DIET {epochs} ep)",
                     *("-" if f1s[l] is None else f"{f1s[l]:.3f}" for l in LANGS), "≥0.95 / ≥0.92"))
        rows.append(("CV wall time", *(f"{results[lang].cv_seconds:.0f} s" for lang in LANGS), ""))
        ok &= all(f1 >= TARGETS["cv_f1"][lang] for lang, f1 in f1s.items() if f1 is not None)
    if any(r.heldout_total for r in results.values()):
        rows.append(("held-out answer accuracy",
                     *(pct(results[l].heldout_right, results[l].heldout_total) for l in LANGS),
                     "≥95% / ≥92%"))
        rows.append(("out-of-scope caught",
                     *(pct(results[l].oos_caught, results[l].oos_total) for l in LANGS), "≥90%"))
        rows.append(("invented figures (fee/visit/cert/EIT qs)",
                     *(f"{results[l].invented_figures}/{results[l].figure_questions}"
                       for l in LANGS), "0"))
        for lang in LANGS:
            r = results[lang]
            ok &= r.heldout_right / r.heldout_total >= TARGETS["heldout"][lang]
            ok &= r.invented_figures == 0
        caught = sum(r.oos_caught for r in results.values())
        total = sum(r.oos_total for r in results.values())
        rows.append(("out-of-scope caught, both languages", pct(caught, total), "", "≥90%"))
        ok &= total > 0 and caught / total >= TARGETS["oos"]
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cv-epochs", type=int, default=60)
    parser.add_argument("--model", type=Path, help="a trained model (default: train one)")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-heldout", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="don't list held-out errors")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the CV data and reports (intent_report.json, errors) in DIR")
    parser.add_argument("--langs", nargs="+", choices=LANGS, default=list(LANGS),
                        help="cross-validate only these languages (to run them in parallel)")
    args = parser.parse_args()

    results = {lang: LangResult() for lang in LANGS}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nlu_eval_") as tmp:
        work = Path(tmp)
        if args.keep:
            work = args.keep.resolve()
            work.mkdir(parents=True, exist_ok=True)
        if not args.skip_cv:
            split, shared = training_data()
            for lang in args.langs:
                print(f"==> {args.folds}-fold cross-validation, {lang}", flush=True)
                f1, seconds, worst = cross_validate(
                    lang, split[lang], shared, args.folds, args.cv_epochs, work
                )
                results[lang].cv_f1, results[lang].cv_seconds = f1, seconds
                results[lang].cv_worst = worst
        if not args.skip_heldout:
            model = args.model
            if model is None:
                model = work / "score.tar.gz"
                train(model, force=True)
            for lang in LANGS:
                heldout(model, lang, results[lang], show_errors=not args.quiet)
    print()
    ok = table(results, args.folds, args.cv_epochs)
    for lang in LANGS:
        if results[lang].cv_worst:
            print(f"\nlowest CV intent F1, {lang} (F1, support, most confused with):")
            for name, f1, support, confused in results[lang].cv_worst:
                print(f"  {name:<22} {f1:.3f}  {support:>3}  {confused}")
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s; targets {'met' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
