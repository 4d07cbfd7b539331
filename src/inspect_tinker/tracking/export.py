"""Export a round's adapter: as a PEFT adapter folder, or merged into the base weights as a
plain Hugging Face model folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.errors import require_extra
from inspect_tinker.provider.base_model import resolve_base_model
from inspect_tinker.tracking import RunFolder, round_adapter


def export_adapter(folder: RunFolder, round_no: int | None, out: Path) -> Path:
    """Copy round `round_no`'s (or the best round's) PEFT adapter to `out`; return `out`."""
    source = _adapter(folder, round_no)
    _fresh_target(out)
    shutil.copytree(source, out)
    return out


def export_merged(folder: RunFolder, round_no: int | None, out: Path) -> Path:
    """Merge the adapter into the base weights and save model + tokenizer to `out`.

    The result loads with `AutoModelForCausalLM.from_pretrained(out)` alone.
    """
    require_extra("local", ("torch", "peft"), "export --merged")
    import torch  # the `local` extra's, checked just above
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = _adapter(folder, round_no)
    base_dir = resolve_base_model(folder.read_config()["base_model"])
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    _fresh_target(out)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(tmp)
    tmp.rename(out)
    return out


def _adapter(folder: RunFolder, round_no: int | None) -> Path:
    """The adapter to export; UsageError when the round is 0, the base model itself."""
    adapter = round_adapter(folder, round_no)
    if adapter is None:
        raise UsageError(
            f"round 0 of {folder.root} is the base model {folder.read_config()['base_model']} itself, without an "
            "adapter" + (" (the run's best round: no trained round beat it)" if round_no is None else "")
            + "; there is nothing to export: use the base model as it is, or pass --round N for a trained round."
        )
    return adapter


def _fresh_target(out: Path) -> None:
    if out.exists():
        raise UsageError(f"{out} already exists; choose a new folder to export into.")
    out.parent.mkdir(parents=True, exist_ok=True)
