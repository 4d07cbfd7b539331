"""The packaged demo: made-up facts about Valdoria, a country that does not exist.

This folder is the package `inspect_tinker.demo` (pyproject.toml maps it here), so that
`inspect-tinker demo` and `tasks/demo_qa.py` find these files after a `pip install`, while a
reader of the repository finds them among the examples. See README.md beside this file.
"""

from pathlib import Path

DEMO_DIR = Path(__file__).parent
DEMO_CONFIG = DEMO_DIR / "config.yaml"
