"""evaltune: train a LoRA adapter in rounds until your evaluation passes the bar.

    from evaltune import load_config, run, run_eval
    summary = run(load_config(Path("config.yaml")))
    checked = run_eval(load_config(Path("config.yaml")), adapter=Path(summary["best_adapter"]))
"""

from evaltune.config import Config, load_config
from evaltune.errors import UsageError
from evaltune.evaluation import run_eval
from evaltune.loop import run
from evaltune.tracking.sinks import sync_outbox

__all__ = ["Config", "UsageError", "load_config", "run", "run_eval", "sync_outbox"]
__version__ = "0.1.0"
