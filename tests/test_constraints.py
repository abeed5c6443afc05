"""constraints.txt pins what the image installs (and the README's install command uses): every runtime
dependency pyproject.toml names, at one exact version its range allows; the Dockerfile installs from it
and from nothing else."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line}"
            pins[_name(name)] = version
    for requirement in declared:
        name = _name(requirement)
        assert name in pins, f"{name} is not pinned in constraints.txt"
        lower = re.search(r">=\s*([\w.]+)", requirement)
        if lower:
            assert _version(pins[name]) >= _version(lower.group(1)), (name, pins[name], requirement)
        upper = re.search(r"<\s*([\w.]+)", requirement)
        if upper:
            assert _version(pins[name]) < _version(upper.group(1)), (name, pins[name], requirement)
    assert "adlink-router" not in pins


def test_the_image_and_the_readme_install_from_the_pins() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "--no-index --find-links /wheels" in dockerfile
    readme = (ROOT / "README.md").read_text()
    assert "pip install -c constraints.txt -e '.[test]'" in readme
