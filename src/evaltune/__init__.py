"""evaltune: train a LoRA adapter in rounds until your evaluation passes the bar.

    from evaltune import load_config, run
    summary = run(load_config(Path("config.yaml")))
"""

from evaltune.config import Config, load_config
from evaltune.errors import UsageError
from evaltune.loop import run
from evaltune.tracking.sinks import sync_outbox

__all__ = ["Config", "UsageError", "load_config", "run", "sync_outbox"]
__version__ = "0.1.0"
