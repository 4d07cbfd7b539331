"""Export a round's adapter: as a PEFT adapter folder, or merged into the base weights as a
plain Hugging Face model folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from evaltune.errors import UsageError
from evaltune.tracking import RunFolder, best_round, verify_checkpoint


def pick_round(folder: RunFolder, round_no: int | None) -> int:
    """The round to export: `round_no`, or the run's best round when None."""
    if round_no is not None:
        return round_no
    state = folder.read_state()
    best = best_round(state.history) if state else None
    if best is None:
        raise UsageError(f"{folder.root} has no trained round yet; nothing to export.")
    return best.round


def export_adapter(folder: RunFolder, round_no: int | None, out: Path) -> Path:
    """Copy round `round_no`'s (or the best round's) PEFT adapter to `out`; return `out`."""
    source = _verified_adapter(folder, pick_round(folder, round_no))
    _fresh_target(out)
    shutil.copytree(source, out)
    return out


def export_merged(folder: RunFolder, round_no: int | None, out: Path) -> Path:
    """Merge the adapter into the base weights and save model + tokenizer to `out`.

    The result loads with `AutoModelForCausalLM.from_pretrained(out)` alone.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evaltune.models import resolve_base_model

    adapter = _verified_adapter(folder, pick_round(folder, round_no))
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


def _verified_adapter(folder: RunFolder, round_no: int) -> Path:
    round_dir = folder.round_dir(round_no)
    manifest = round_dir / "manifest.json"
    if manifest.is_file() and "://" in json.loads(manifest.read_text()).get("address", ""):
        raise UsageError(f"round {round_no} of {folder.root} lives on a training service; export it from there.")
    if not verify_checkpoint(round_dir, parts=("adapter",)):
        raise UsageError(f"{round_dir}: no complete adapter for round {round_no} (missing or damaged).")
    return round_dir / "adapter"


def _fresh_target(out: Path) -> None:
    if out.exists():
        raise UsageError(f"{out} already exists; choose a new folder to export into.")
    out.parent.mkdir(parents=True, exist_ok=True)
