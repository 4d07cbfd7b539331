"""The benchmark scripts keep up with the code they measure.

They are run by hand (their results are written down in bench/README.md), so nothing else
would notice when a change to the package breaks their imports or arguments.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_benchmark_script_imports_and_prints_its_usage(script):
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_the_training_benchmark_imports_neither_inspect_nor_the_config():
    # A GPU machine lent for benchmarks may have torch, transformers, peft and TRL only.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('bench', {str(BENCH / 'train_throughput.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('inspect_ai', 'pydantic')"
        " or m in ('inspect_tinker.config', 'inspect_tinker.evals', 'inspect_tinker.tracking', 'inspect_tinker.loop')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
