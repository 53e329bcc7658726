"""rasa_extensions/ is the one package of Rasa-side code: the launcher and the project's Python
3.11 code never import it (nor Rasa), it imports no project code, and its one requirements file
is what the set-up and the Rasa image install, with the image's Rasa the pinned one."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from stack.settings import ROOT

PACKAGE = ROOT / "rasa_extensions"
PROJECT_PACKAGES = ("stack", "bot", "actions", "store", "console", "i18n", "bench")


def imported_top_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_python_311_code_imports_no_rasa_side_code():
    offenders = []
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found = imported_top_names(path) & {"rasa", "rasa_extensions"}
            if found:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(found)}")
    assert offenders == []
    # the launcher writes Rasa's config files (rasa_config.py); nothing of it runs in Rasa
    assert [path.name for path in (ROOT / "stack").glob("rasa_*.py")] == ["rasa_config.py"]


def test_rasa_side_code_imports_no_project_code():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found = imported_top_names(path) & set(PROJECT_PACKAGES)
        if found:
            offenders.append(f"{path.relative_to(ROOT)}: {sorted(found)}")
    assert offenders == []


def pinned_rasa() -> str:
    text = (PACKAGE / "requirements.txt").read_text(encoding="utf-8")
    pins = re.findall(r"^rasa(?:\[[\w,]+\])?==([\w.]+)\s*$", text, re.MULTILINE)
    assert len(pins) == 1, pins
    return pins[0]


def test_one_requirements_file_for_the_setup_and_the_image():
    dockerfile = (ROOT / "deploy" / "rasa.Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^FROM rasa/rasa:{re.escape(pinned_rasa())}-full$", dockerfile, re.MULTILINE)
    assert "COPY rasa_extensions/requirements.txt /tmp/rasa-extensions-requirements.txt" in dockerfile
    assert "RUN pip install --no-cache-dir -r /tmp/rasa-extensions-requirements.txt" in dockerfile
    assert "COPY rasa_extensions /app/rasa_extensions" in dockerfile
    assert "ENV PYTHONPATH=/app" in dockerfile
    assert "COPY stack" not in dockerfile  # nothing of the launcher in the Rasa image
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "-m pip install -q --disable-pip-version-check -r rasa_extensions/requirements.txt" in setup
    assert 'RASA_VERSION="$(sed' in setup and "rasa_extensions/requirements.txt)" in setup


def test_the_compose_file_runs_the_package_in_the_rasa_image():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    rasa = compose["services"]["rasa"]
    assert rasa["build"]["dockerfile"] == "deploy/rasa.Dockerfile"
    assert rasa["working_dir"] == "/app"
    assert rasa["entrypoint"] == ["python", "-m", "rasa_extensions"]
    assert (PACKAGE / "__main__.py").exists()


def test_configured_classes_exist_in_the_package():
    from stack import rasa_config

    names = [rasa_config.BOUNDED_SQL, rasa_config.ATOMIC_REDIS, rasa_config.GATEWAY_CHANNEL]
    endpoints = yaml.safe_load((ROOT / "deploy" / "rasa" / "endpoints.yml").read_text(encoding="utf-8"))
    credentials = yaml.safe_load((ROOT / "deploy" / "rasa" / "credentials.yml").read_text(encoding="utf-8"))
    names += [endpoints["tracker_store"]["type"], endpoints["lock_store"]["type"]]
    names += [name for name in credentials if "." in name]
    assert set(names) == {rasa_config.BOUNDED_SQL, rasa_config.ATOMIC_REDIS, rasa_config.GATEWAY_CHANNEL}
    for name in names:
        module, _, cls = name.rpartition(".")
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.exists(), name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.ClassDef) and n.name == cls for n in tree.body), name
