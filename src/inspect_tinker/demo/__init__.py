"""The packaged demo: made-up facts about Valdoria, a country that does not exist."""

from pathlib import Path

DEMO_CONFIG = Path(__file__).with_name("config.yaml")
