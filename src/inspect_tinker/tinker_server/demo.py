"""`make tinker-demo`: the packaged demo through the tinker backend, on a local Tinker server.

Uses the server already serving the bundled model on the port when there is one, else starts
one and stops it afterwards. Exits with the demo's exit code (0 bar met, 1 not met, ...).

    python -m inspect_tinker.tinker_server.demo [--port N]
"""

from __future__ import annotations

import argparse
import os
import sys

from inspect_tinker.cli import main as cli
from inspect_tinker.errors import UsageError
from inspect_tinker.tinker_server.models import served_model
from inspect_tinker.tinker_server.serve import default_state_dir
from inspect_tinker.tinker_server.server import DEFAULT_PORT, LocalTinkerServer, ServerSettings, serves_model


def run_demo(port: int = DEFAULT_PORT, say=print) -> int:
    """Run `inspect-tinker demo --backend tinker` against http://127.0.0.1:`port`; return its exit code."""
    model = served_model("bundled")
    settings = ServerSettings(model, port, default_state_dir(model.name, port))
    # The local server checks no key; the SDK wants one of the right form.
    os.environ.setdefault("TINKER_API_KEY", "tml-local")
    demo = ["demo", "--backend", "tinker", "--base-model", model.name, "--set", f"tinker_base_url={settings.base_url}"]
    if serves_model(settings.base_url, model.name):
        say(f"Using the local Tinker server already at {settings.base_url}.")
        return cli(demo)
    say(f"Starting a local Tinker server for {model.name} at {settings.base_url} (log: {settings.state_dir}/server.log) ...")
    with LocalTinkerServer(settings).start(say=say):
        return cli(demo)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m inspect_tinker.tinker_server.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    try:
        sys.exit(run_demo(parser.parse_args().port))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
