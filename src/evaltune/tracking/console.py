"""The console: renders run events for a person, with a progress bar while training."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _rate(value) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def _schedule(c: dict) -> str:
    warmup = f" after {c['warmup_steps']} warmup steps" if c["warmup_steps"] else ""
    return f"{c['lr_schedule']} schedule{warmup}"


def _processes(info: dict) -> str:
    n = info["processes"]
    return f" × {n} data-parallel processes" if n > 1 else ""


class ConsoleSink:
    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.progress: Progress | None = None
        self.task_id = None
        self.round_losses: list[float] = []

    def handle(self, event: dict) -> None:
        handler = getattr(self, f"_on_{event['event']}", None)
        if handler:
            handler(event)

    def _on_run_started(self, e: dict) -> None:
        c = e["config"]
        self.console.print(Panel.fit("[bold]evaltune[/] · evaluation-driven LoRA fine-tuning", border_style="cyan"))
        self.console.print(
            f"  Base model:      {c['base_model']} ({c['engine']} engine)\n"
            f"  Training data:   {c['train_file']}\n"
            f"  Evaluation:      {', '.join(c['eval_tasks'])}\n"
            f"  Max rounds:      {c['max_rounds']} × {c['steps_per_round']} steps of {c['batch_size']} examples\n"
            f"  Bar:             {c['eval_threshold']}\n"
            f"  Learning rate:   {_rate(c['learning_rate'])}, {_schedule(c)} (×{c['lr_decay']} after a round below the bar)\n"
            f"  Run folder:      {e['run_dir']}"
        )

    def _on_engine_ready(self, e: dict) -> None:
        i = e["info"]
        self.console.print(
            f"\nModel loaded in {e['seconds']:.1f} s on {i['device']}{_processes(i)} ({i['dtype']}): "
            f"{i['total_parameters'] / 1e6:.1f} M parameters, {i['trainable_parameters'] / 1e6:.2f} M trainable (LoRA)"
        )

    def _on_learning_rate_chosen(self, e: dict) -> None:
        self.console.print(
            f"Learning rate (auto): {e['learning_rate']:.2e}, recommended for LoRA on {e['model_type']} "
            f"with hidden size {e['hidden_size']}"
        )

    def _on_data_prepared(self, e: dict) -> None:
        self.console.print(f"\n[bold]Data[/]: loaded {e['records']} records from {e['file']}")
        if e["invalid"]:
            self.console.print(f"  [yellow]filtered {len(e['invalid'])} invalid[/]:")
            for d in e["invalid"][:10]:
                self.console.print(f"    line {d['line']}: {d['reason']}")
            if len(e["invalid"]) > 10:
                self.console.print(f"    … and {len(e['invalid']) - 10} more (see events.jsonl)")
        if e["truncated"] or e["dropped_too_long"]:
            self.console.print(f"  truncated {e['truncated']}, dropped {e['dropped_too_long']} with nothing left to train on")
        self.console.print(
            f"  prepared {e['examples']} examples ({e['total_tokens']} tokens, {e['target_tokens']} trained on)"
        )

    def _on_round_started(self, e: dict) -> None:
        self.console.print(f"\n[bold cyan]=== Training round {e['round']}/{e['max_rounds']} ===[/]  lr {e['learning_rate']:.2e}")
        self.round_losses = []
        self.progress = Progress(
            TextColumn("  training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.progress.start()
        self.task_id = self.progress.add_task("train", total=e["steps"], completed=e.get("resumed_at_step", 0), loss="-")

    def _on_step(self, e: dict) -> None:
        self.round_losses.append(e["loss"])
        if self.progress is not None:
            self.progress.update(self.task_id, advance=1, loss=f"{e['loss']:.3f}")

    def _on_round_trained(self, e: dict) -> None:
        self._stop_progress()
        if self.round_losses:
            self.console.print(
                f"  loss {self.round_losses[0]:.3f} → {self.round_losses[-1]:.3f}, "
                f"{e['seconds']:.1f} s, {e['tokens_per_second']:.0f} tokens/s, {e['pad_fraction']:.0%} padding"
            )

    def _on_checkpoint_saved(self, e: dict) -> None:
        self.console.print(f"  checkpoint: {e['path']}", soft_wrap=True, highlight=False)

    def _on_resumed(self, e: dict) -> None:
        where = f"evaluation of round {e['round']}" if e["phase"] == "evaluating" else f"round {e['round']}"
        self.console.print(f"\n[bold]Resuming[/] at {where}, after step {e['global_step']} (from {e['checkpoint']})")

    def _on_checkpoint_damaged(self, e: dict) -> None:
        self.console.print(
            f"[yellow]Checkpoint {e['checkpoint']} is damaged (checksum mismatch); "
            f"restarting round {e['round']} from {e['fallback'] or 'the fresh adapter'}[/]"
        )

    def _on_eval_result(self, e: dict) -> None:
        title = "Baseline evaluation (round 0, untrained)" if e["round"] == 0 else "Evaluation"
        self.console.print(f"\n  [bold]{title}[/] ({e['seconds']:.1f} s)")
        for t in e["tasks"]:
            for s in t["samples"]:
                mark = "[green]✓[/]" if s["correct"] else "[red]✗[/]"
                self.console.print(f"    {mark} {_short(s['question'], 34)} → {_short(s['answer'], 38)}", highlight=False)
            se = f" ± {t['stderr']:.2f}" if t["stderr"] is not None else ""
            self.console.print(f"  {t['name']}: {t['n_correct']}/{t['n_samples']} correct, accuracy {t['score']:.1%}{se}")
        if len(e["tasks"]) > 1:
            self.console.print(f"  score (mean of tasks): {e['score']:.3f}")

    def _on_decision(self, e: dict) -> None:
        color = "green" if e["bar_met"] else ("red" if e["stop"] else "yellow")
        self.console.print(f"  [{color}]{e['reason']}[/]")
        if e.get("rollback_to") is not None:
            self.console.print(
                f"  [yellow]below the best round ({e['rollback_to']}): rolling back to its adapter and optimizer state[/]"
            )

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _on_error(self, e: dict) -> None:
        self._stop_progress()
        self.console.print(f"\n[red]Run failed[/]: {e['message']}")
        self.console.print(f"Its state is saved; continue with: {e['resume_command']}", soft_wrap=True, highlight=False)

    def _on_interrupted(self, e: dict) -> None:
        self._stop_progress()
        self.console.print(f"\n[yellow]Interrupted[/] ({e['message']}).")
        self.console.print(f"Continue with: {e['resume_command']}", soft_wrap=True, highlight=False)

    def _on_run_finished(self, e: dict) -> None:
        table = Table(title="Rounds", show_edge=False)
        for col in ("round", "learning rate", "final loss", "score"):
            table.add_column(col, justify="right")
        for r in e["rounds"]:
            best = " ★" if r["round"] == e["best_round"] else ""
            lr = "-" if r["learning_rate"] is None else f"{r['learning_rate']:.2e}"
            loss = "-" if r["final_loss"] is None else f"{r['final_loss']:.3f}"
            table.add_row(str(r["round"]), lr, loss, f"{r['score']:.3f}{best}")
        self.console.print()
        self.console.print(table)
        verdict = "[bold green]Bar met[/]" if e["bar_met"] else "[bold red]Bar not met[/]"
        self.console.print(
            f"\n{verdict}: best score {e['best_score']:.3f} (bar {e['threshold']}) in round {e['best_round']} "
            f"after {e['rounds_run']} round(s), {e['wall_seconds']:.0f} s, peak memory {e['peak_memory_mb']:.0f} MB"
        )
        if e["best_adapter"]:
            self.console.print(f"Best adapter: {e['best_adapter']}", soft_wrap=True, highlight=False)
        self.console.print(f"Run folder:   {e['run_dir']}", soft_wrap=True, highlight=False)
        self.console.print("\nNext:")
        for line in e["next_steps"]:
            self.console.print(f"  {line}", soft_wrap=True, highlight=False)
