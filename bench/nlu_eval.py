"""How well the assistant understands what people type, per language; prints a table and exits
1 when a target of issue 14 is missed.

    .venvs/app/bin/python bench/nlu_eval.py [--model PATH] [--skip-cv] [--skip-heldout]
        [--langs en zh] [--heldout en_v2.yml ...] [--folds 5] [--cv-seeds 1] [--cv-epochs 60] [--keep DIR]
        [--concurrency 4] [--quiet]

1. Held-out (bench/heldout_eval.py, format and scoring in bench/heldout/README.md): every
   message of bench/heldout/*.yml goes, as a new Telegram user in its file's language, through
   the gateway's ConversationService to a real Rasa server and action server started with the
   launcher's code (temp SQLite store, free ports). The first reply the user sees is scored:
   the expected topic's answer, booking/handoff/small-talk reply, a refusal for out_of_scope;
   for eligibility messages the check must be running with the stated facts in its slots, and
   where a verdict is given the scorer finishes the check with fixed answers and compares the
   outcome. Invented figures: a price in the reply to a fee/visit/certificate/EIT question.
2. Cross-validation (bench/nlu_cv.py): `rasa test nlu --cross-validation` per language on
   typed intents, with config.yml as it is now (DIET's epochs lowered if there is DIET).

Without --model a model is trained first (stack.train, into the work directory).
A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.heldout_sets import HELDOUT_DIR, Eligibility, load as load_heldout  # noqa: E402
from bench.nlu_cv import LANGS, cross_validate, training_data  # noqa: E402

TARGETS = {
    "answer": 0.95,  # held-out answer accuracy, in-scope answer messages
    "reach": 0.95,  # eligibility: check started with the stated facts
    "verdict": 1.0,  # eligibility verdicts, of those that reached the check
    "oos": 0.95,  # out-of-scope refused
    "false_refusal": 0.02,  # in-scope messages refused (at most)
    "cv_f1": 0.92,
}


@dataclass
class LangFigures:
    scored: list[Any] = field(default_factory=list)  # heldout_eval.Scored
    cv: dict[str, Any] | None = None

    def of(self, kind: str) -> list[Any]:
        return [s for s in self.scored if s.message.kind == kind]


def pct(n: int, d: int) -> str:
    return f"{n / d:.1%} ({n}/{d})" if d else "-"


def rows_for(figures: dict[str, LangFigures], langs: list[str]) -> tuple[list[tuple[str, ...]], bool]:
    """Table rows (metric, one cell per language, target) and whether every target is met."""
    rows: list[tuple[str, ...]] = []
    ok = True

    def add(metric: str, cells: dict[str, str], target: str, met: dict[str, bool | None]) -> None:
        nonlocal ok
        marks = {lang: "" if met.get(lang) in (None, True) else " ✗" for lang in langs}
        rows.append((metric, *(cells[lang] + marks[lang] for lang in langs), target))
        ok &= all(m is not False for m in met.values())

    def ratio(n: int, d: int, target: float, at_most: bool = False) -> bool | None:
        if not d:
            return None
        return n / d <= target if at_most else n / d >= target

    if any(f.scored for f in figures.values()):
        cells, met = {}, {}
        for lang in langs:
            answer = figures[lang].of("answer")
            right = sum(s.right for s in answer)
            cells[lang], met[lang] = pct(right, len(answer)), ratio(right, len(answer), TARGETS["answer"])
        add("held-out answer accuracy (in scope)", cells, "≥95%", met)

        cells, met, reach_cells, verdict_cells, verdict_met = {}, {}, {}, {}, {}
        for lang in langs:
            elig = figures[lang].of("eligibility")
            right = sum(s.right for s in elig)
            cells[lang], met[lang] = pct(right, len(elig)), ratio(right, len(elig), TARGETS["reach"])
            reach_cells[lang] = pct(sum(s.reached for s in elig), len(elig))
            judged = [s for s in elig if s.verdict_right is not None]
            good = sum(bool(s.verdict_right) for s in judged)
            verdict_cells[lang] = pct(good, len(judged))
            verdict_met[lang] = ratio(good, len(judged), TARGETS["verdict"])
        add("eligibility: check reached with stated facts", cells, "≥95%", met)
        add("  eligibility: check reached (facts or not)", reach_cells, "", {})
        add("  eligibility: verdict right (reached w/ facts)", verdict_cells, "all", verdict_met)

        cells, met = {}, {}
        for lang in langs:
            oos = figures[lang].of("out_of_scope")
            refused = sum(s.refused for s in oos)
            cells[lang], met[lang] = pct(refused, len(oos)), ratio(refused, len(oos), TARGETS["oos"])
        add("out-of-scope refused", cells, "≥95%", met)

        cells, met = {}, {}
        for lang in langs:
            in_scope = figures[lang].of("answer") + figures[lang].of("eligibility")
            refused = sum(s.refused for s in in_scope)
            cells[lang] = pct(refused, len(in_scope))
            met[lang] = ratio(refused, len(in_scope), TARGETS["false_refusal"], at_most=True)
        add("false refusals (in-scope messages refused)", cells, "≤2%", met)

        cells, met = {}, {}
        for lang in langs:
            asked = [s for s in figures[lang].of("answer")
                     if s.message.expect.removeprefix("faq_") in {"fees", "visits", "certificate", "eit"}]
            invented = sum(s.invented_figure for s in asked)
            cells[lang], met[lang] = f"{invented}/{len(asked)}", invented == 0
        add("invented figures (fee/visit/cert/EIT qs)", cells, "0", met)

        cells = {}
        for lang in langs:
            every = figures[lang].scored
            cells[lang] = pct(sum(s.right for s in every), len(every))
        add("  all held-out messages right", cells, "", {})
        cells = {lang: str(sum(bool(s.error) for s in figures[lang].scored)) for lang in langs}
        add("  turns that failed (errors)", cells, "0", {lang: c == "0" for lang, c in cells.items()})

    if any(f.cv for f in figures.values()):
        cells, met, times, spread = {}, {}, {}, {}
        for lang in langs:
            cv = figures[lang].cv
            several = cv is not None and len(cv["f1s"]) > 1
            cells[lang] = f"{cv['f1']:.3f} ({cv['intents']} intents{', mean' if several else ''})" if cv else "-"
            if cv:
                low, high = min(cv["f1s"].values()), max(cv["f1s"].values())
                spread[lang] = f"{low:.3f}-{high:.3f}" if several else f"{low:.3f}"
            met[lang] = cv["f1"] >= TARGETS["cv_f1"] if cv else None
            times[lang] = f"{cv['seconds']:.0f} s, {cv['config']}" if cv else "-"
        add("CV intent macro-F1, typed intents", cells, "≥0.92", met)
        seeds = next((list(f.cv["f1s"]) for f in figures.values() if f.cv), [])
        add(f"  CV fold seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}",
            {lang: spread.get(lang, "-") for lang in langs}, "", {})
        add("  CV wall time", times, "", {})
    return rows, ok


def print_table(rows: list[tuple[str, ...]], langs: list[str]) -> None:
    header = ("metric", *langs, "target")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for index, row in enumerate([header, *rows]):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def expected_of(scored: Any) -> str:
    expect = scored.message.expect
    if isinstance(expect, Eligibility):
        facts = [f"{k}={v}" for k, v in (("employees", expect.employees), ("sector", expect.sector),
                                          ("country", expect.country), ("verdict", expect.verdict))
                 if v is not None]
        return "eligibility" + (f"({', '.join(facts)})" if facts else "")
    return str(expect)


def print_misses(figures: dict[str, LangFigures], langs: list[str]) -> None:
    for lang in langs:
        misses = [s for s in figures[lang].scored
                  if not s.right or s.verdict_right is False or s.invented_figure or s.error]
        if not misses:
            continue
        print(f"\nmisses, {lang} ({len(misses)}):")
        for s in sorted(misses, key=lambda s: (s.message.kind, expected_of(s))):
            text = " ".join(s.message.text.split())
            what = s.error or s.seen.short(60)
            notes = []
            if isinstance(s.message.expect, Eligibility):
                notes.append("reached" if s.reached else "not reached")
                if s.reached and s.facts_note:
                    notes.append(f"facts: {s.facts_note}")
                if s.verdict_right is False:
                    notes.append(f"verdict {s.verdict} {s.verdict_note}".strip())
            if s.invented_figure:
                notes.append("INVENTED FIGURE")
            extra = f" [{'; '.join(notes)}]" if notes else ""
            print(f"  {text[:60]!r} → expected {expected_of(s)}; got [{s.intent}] {what}{extra}")


def heldout(model: Path, work: Path, langs: list[str], files: list[str] | None,
            concurrency: int) -> dict[str, list[Any]]:
    from bench.eval_stack import running_stack
    from bench.heldout_eval import run

    messages = [m for m in load_heldout() if m.language in langs and (not files or m.source in files)]
    if files and not messages:
        raise SystemExit(f"no held-out messages in {', '.join(files)} for {', '.join(langs)}")
    data_dir = work / "stack"
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"==> held-out: {len(messages)} messages, starting Rasa and the action server "
          f"({model})", flush=True)
    with running_stack(model, data_dir) as stack:
        started = time.monotonic()
        scored = asyncio.run(run(stack, messages, concurrency=concurrency))
        print(f"  {len(messages)} messages in {time.monotonic() - started:.0f} s "
              f"(logs in {data_dir / 'run' / 'logs'})", flush=True)
    return {lang: [s for s in scored if s.message.language == lang] for lang in langs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cv-epochs", type=int, default=60, help="DIET's epochs in CV (if DIET is used)")
    parser.add_argument("--cv-seeds", type=int, default=1, metavar="N",
                        help="CV once per fold seed 0..N-1; the table gives the mean and the range")
    parser.add_argument("--model", type=Path, help="a trained model (default: train one)")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-heldout", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="don't list the held-out misses")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the CV data and reports, the stack's logs and stores in DIR")
    parser.add_argument("--langs", nargs="+", choices=LANGS, default=list(LANGS),
                        help="only these languages (e.g. to run the CVs in parallel)")
    parser.add_argument("--heldout", nargs="+", metavar="FILE",
                        help=f"only these files of {HELDOUT_DIR.relative_to(ROOT)} (e.g. en_v2.yml)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="held-out conversations in flight at once (each a new user)")
    args = parser.parse_args()
    if args.model and not args.model.exists():
        parser.error(f"no model at {args.model}")

    figures = {lang: LangFigures() for lang in args.langs}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nlu_eval_") as tmp:
        work = Path(tmp)
        if args.keep:
            work = args.keep.resolve()
            work.mkdir(parents=True, exist_ok=True)
        if not args.skip_heldout:
            model = args.model
            if model is None:
                from stack.train import train

                model = work / "score.tar.gz"
                train(model, force=True)
            for lang, scored in heldout(model.resolve(), work, args.langs, args.heldout,
                                        args.concurrency).items():
                figures[lang].scored = scored
        if not args.skip_cv:
            split, shared = training_data()
            for lang in args.langs:
                print(f"==> {args.folds}-fold cross-validation, {lang}", flush=True)
                figures[lang].cv = cross_validate(lang, split[lang], shared, args.folds,
                                                  args.cv_epochs, work, tuple(range(args.cv_seeds)))
    if not args.quiet:
        print_misses(figures, args.langs)
    print()
    rows, ok = rows_for(figures, args.langs)
    print_table(rows, args.langs)
    for lang in args.langs:
        cv = figures[lang].cv
        if cv and cv["worst"]:
            print(f"\nlowest CV intent F1, {lang} (F1, support, most confused with):")
            for name, f1, support, confused in cv["worst"]:
                print(f"  {name:<22} {f1:.3f}  {support:>3}  {confused}")
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s; targets {'met' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
