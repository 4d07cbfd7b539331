"""Every install command the package tells a user to run names something that exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PYPROJECT = SRC.parent / "pyproject.toml"


def test_every_extra_a_message_names_is_an_extra_of_the_package():
    extras = set(tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"])
    named = {(path.relative_to(SRC), extra) for path in SRC.rglob("*.py")
             for extra in re.findall(r"inspect-tinker\[([\w-]+)\]", path.read_text())}
    assert named, "no install hint found: the pattern no longer matches how messages name extras"
    assert {(path, extra) for path, extra in named if extra not in extras} == set()
