"""The README documents every operator, field, command and setting the code has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from ayeto.cli import app
from ayeto.metrics import Prometheus
from ayeto.query import FIELDS, OPERATORS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
DEPLOY = (Path(__file__).resolve().parents[1] / "docs" / "deploy.md").read_text(encoding="utf-8")
SOURCES = Path(__file__).resolve().parents[1] / "src" / "ayeto"


def _commands(group: typer.Typer, prefix: str = "ayeto") -> list[str]:
    names = []
    for command in group.registered_commands:
        assert command.callback is not None
        names.append(f"{prefix} {command.name or command.callback.__name__}")
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        names += _commands(sub.typer_instance, f"{prefix} {sub.name}")
    return names


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_every_operator_is_documented(operator: str) -> None:
    assert f"`{operator}`" in README


@pytest.mark.parametrize("field", list(FIELDS))
def test_every_field_is_documented(field: str) -> None:
    assert f"`{field}`" in README


@pytest.mark.parametrize("command", _commands(app))
def test_every_command_is_documented(command: str) -> None:
    assert f"`{command}" in README


def _settings() -> set[str]:
    found: set[str] = set()
    for path in SOURCES.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r'(?:envvar=|read\.\w+\()"(AYETO_[A-Z_]+)"', text))
    return found


@pytest.mark.parametrize("variable", sorted(_settings()))
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}`" in README


def _metrics() -> list[str]:
    """Every metric's name as a query names it (a counter's with its `_total`)."""
    return [
        family.name + ("_total" if family.type == "counter" else "")
        for family in Prometheus().registry.collect()
    ]


@pytest.mark.parametrize("metric", _metrics())
def test_every_metric_is_documented(metric: str) -> None:
    assert f"| `{metric}` |" in DEPLOY
