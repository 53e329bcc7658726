"""Trains the Rasa model only when its inputs changed: `python -m stack.train [--force]`."""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from stack.settings import MODEL_PATH, RASA_PYTHON, ROOT, TRAINING_INPUTS


def fingerprint() -> str:
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:20]


def fingerprint_file(model: Path) -> Path:
    return model.with_suffix(".fingerprint")


def is_current(model: Path = MODEL_PATH) -> bool:
    stamp = fingerprint_file(model)
    return model.exists() and stamp.exists() and stamp.read_text().strip() == fingerprint()


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    # Rasa imports rasa_extensions.* by dotted path from config.yml, endpoints and credentials,
    # and `python -m rasa_extensions` starts it: the repository root must be importable whatever
    # the working directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def train(model: Path = MODEL_PATH, force: bool = False) -> float:
    """Train if needed; returns the seconds spent (0 when the model was current)."""
    if not force and is_current(model):
        print(f"==> model is up to date ({model.relative_to(ROOT)})", flush=True)
        return 0.0
    model.parent.mkdir(parents=True, exist_ok=True)
    print("==> training the Rasa model (data or config changed)", flush=True)
    started = time.monotonic()
    # The inputs as training reads them: an edit during training must leave the model stale.
    stamp = fingerprint()
    subprocess.run(
        [
            str(RASA_PYTHON), "-m", "rasa", "train",
            "--config", "config.yml", "--domain", "domain.yml",
            "--data", "nlu", "stories",
            "--out", str(model.parent), "--fixed-model-name", model.name.removesuffix(".tar.gz"),
        ],
        cwd=ROOT,
        env=rasa_env(),
        check=True,
    )
    fingerprint_file(model).write_text(stamp)
    elapsed = time.monotonic() - started
    print(f"==> trained in {elapsed:.0f} s", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="train even if nothing changed")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="model file to write")
    args = parser.parse_args()
    try:
        train(args.out, args.force)
    except subprocess.CalledProcessError as error:
        sys.exit(f"error: rasa train failed (exit {error.returncode})")


if __name__ == "__main__":
    main()
