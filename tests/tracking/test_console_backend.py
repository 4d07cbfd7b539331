"""The console's line about the loaded model says how many processes train it, and how."""

from io import StringIO

import pytest
from rich.console import Console

from inspect_tinker.tracking.console import ConsoleSink

INFO = {"device": "cpu", "dtype": "fp32", "total_parameters": 2e6, "trainable_parameters": 1e4}


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"processes": 1}, "on cpu (fp32)"),
        ({"processes": 2}, "on cpu × 2 data-parallel processes (fp32)"),
        ({"processes": 2, "sharded": True}, "on cpu × 2 sharded (FSDP) processes (fp32)"),
    ],
)
def test_the_model_line_names_the_processes_of_a_distributed_run(extra, said):
    sink = ConsoleSink(Console(file=StringIO(), width=200))
    sink.handle({"event": "backend_ready", "seconds": 1.0, "info": {**INFO, **extra}})
    assert said in sink.console.file.getvalue()
