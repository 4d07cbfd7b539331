"""The console: renders run events for a person, with a progress bar while training."""

from __future__ import annotations

import shlex
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _reason(reason: str) -> str:
    return reason.replace("_", " ")


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


_ROLE_NOTES = {"confirm": "confirmation, never gates", "guard": "regression guard, never gates"}


def _interval(r: dict) -> str:
    """` ± 0.11 (95% CI 0.55–0.95)` for a task or the aggregate."""
    se = f" ± {r['stderr']:.2f}" if r["stderr"] is not None else ""
    return f"{se} (95% CI {r['ci_low']:.2f}–{r['ci_high']:.2f})"


def _task_line(t: dict) -> str:
    details = [_ROLE_NOTES[t["role"]]] if t["role"] in _ROLE_NOTES else []
    details += [f"weight {t['weight']:g}"] if t["role"] == "gate" and t["weight"] != 1 else []
    details += [f"own bar {t['threshold']}"] if t["threshold"] is not None else []
    details += [] if t["scorer"] == "answer_included" else [f"scored by {t['scorer']}"]
    extra = f" ({', '.join(details)})" if details else ""
    return f"{t['name']}{extra}: {t['n_correct']}/{t['n_samples']} correct, accuracy {t['score']:.1%}{_interval(t)}"


def _changes(t: dict, limit: int = 8) -> str:
    def ids(items: list[str]) -> str:
        more = f" and {len(items) - limit} more" if len(items) > limit else ""
        return escape(", ".join(items[:limit])) + more

    paired = t.get("paired")  # evaluations recorded before paired comparisons have none
    parts = [f"[green]fixed {len(t['fixed'])}[/] ({ids(t['fixed'])})"] if t["fixed"] else []
    parts += [f"[red]broke {len(t['broke'])}[/] ({ids(t['broke'])})"] if t["broke"] else []
    parts += [paired_line(paired)] if paired else []
    return "; ".join(parts)


def paired_line(paired: dict) -> str:
    """A paired comparison (evals/paired.py's statistics) in words: the difference, its interval, its p-value."""
    return (f"{paired['difference']:+.2f} on {paired['n']} shared samples "
            f"(95% CI {paired['ci_low']:+.2f} to {paired['ci_high']:+.2f}, McNemar exact p = {paired['p_value']:.3g})")



def _training(c: dict) -> str:
    """What the rounds train on: the training file, the RL reward tasks, or both (`sft_then_rl`)."""
    lines = f"  Training data:   {c['train_file']}\n" if c.get("train_file") else ""
    if c.get("rl"):
        rl = c["rl"]
        when = "round 1 on the training data, then " if c.get("method") == "sft_then_rl" else ""
        lines += (f"  RL rewards:      {', '.join(rl['tasks'])} ({when}{rl['group_size']} completions × "
                  f"{rl['prompts_per_step']} prompts a step, {rl['loss']})\n")
    return lines


def _step_size(c: dict) -> str:
    # An RL step's size is the rl section's (prompts × completions), not batch_size.
    return "" if c.get("method") == "rl" else f" of {c['batch_size']} examples"


def _rate(value) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def _schedule(c: dict) -> str:
    warmup = f" after {c['warmup_steps']} warmup steps" if c["warmup_steps"] else ""
    return f"{c['lr_schedule']} schedule{warmup}"


def _processes(info: dict) -> str:
    n = info.get("processes", 1)
    kind = "sharded (FSDP)" if info.get("sharded") else "data-parallel"
    return f" × {n} {kind} processes" if n > 1 else ""


class ConsoleSink:
    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.progress: Progress | None = None
        self.data_progress: Progress | None = None
        self.data_task = None
        self.task_id = None
        self.round_losses: list[float] = []

    def handle(self, event: dict) -> None:
        handler = getattr(self, f"_on_{event['event']}", None)
        if handler:
            handler(event)

    def _on_run_started(self, e: dict) -> None:
        c = e["config"]
        self.console.print(Panel.fit("[bold]inspect-tinker[/] · evaluation-driven LoRA fine-tuning", border_style="cyan"))
        self.console.print(
            f"  Base model:      {c['base_model']} ({c['backend']} backend)\n"
            f"{_training(c)}"
            f"  Evaluation:      {', '.join(c['eval_tasks'])}\n"
            f"  Max rounds:      {c['max_rounds']} × {c['steps_per_round']} steps{_step_size(c)}\n"
            f"  Bar:             {c['eval_threshold']} (gate on {c['gate_on'].replace('_', ' ')})\n"
            f"  Learning rate:   {_rate(c['learning_rate'])}, {_schedule(c)} (×{c['lr_decay']} after a round below the bar)\n"
            f"  Run folder:      {e['run_dir']}"
        )
        if e.get("log_dir") and Path(e["log_dir"]) != Path(e["run_dir"]) / "logs":  # under `inspect eval`: Inspect's log dir
            self.console.print(f"  Inspect logs:    {escape(e['log_dir'])} (tagged run-{escape(Path(e['run_dir']).name)})",
                               soft_wrap=True, highlight=False)  # a path to copy: never broken across lines
        if c.get("policy", "lr_decay") != "lr_decay":
            self.console.print(f"  Policy:          {c['policy']} (decides each next round's hyperparameters)")
        if c.get("candidate_file"):
            self.console.print(f"  Candidate pool:  {c['candidate_file']} (records added for failed questions)")

    def _on_backend_ready(self, e: dict) -> None:
        i = e["info"]
        sizes = (
            "parameter counts not reported"
            if i["total_parameters"] is None
            else f"{i['total_parameters'] / 1e6:.1f} M parameters, {i['trainable_parameters'] / 1e6:.2f} M trainable (LoRA)"
        )
        self.console.print(f"\nModel loaded in {e['seconds']:.1f} s on {i['device']}{_processes(i)} ({i['dtype']}): {sizes}")
        if i.get("precision_reason"):
            self.console.print(f"Precision (auto): {i['dtype']}, as {i['precision_reason']}", soft_wrap=True, highlight=False)

    def _on_data_progress(self, e: dict) -> None:
        # The pipeline reports every 1000 records; a file smaller than that gets no bar.
        if self.data_progress is None:
            if e["done"] >= e["total"]:
                return
            self.data_progress = Progress(
                TextColumn(f"  {e['stage']} data"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=self.console, transient=True,
            )
            self.data_progress.start()
            self.data_task = self.data_progress.add_task(e["stage"], total=e["total"])
        self.data_progress.update(self.data_task, completed=e["done"], total=e["total"])
        if e["done"] >= e["total"]:
            self.data_progress.stop()
            self.data_progress = None

    def _on_learning_rate_chosen(self, e: dict) -> None:
        self.console.print(
            f"Learning rate (auto): {e['learning_rate']:.2e}, recommended for LoRA on {e['model_type']} "
            f"with hidden size {e['hidden_size']}"
        )

    def _on_data_prepared(self, e: dict) -> None:
        self.console.print(
            f"\n[bold]Data[/]: {e['records']} records from {e['file']} ({e['format']}) → {e['examples']} examples",
            highlight=False, soft_wrap=True,
        )
        invalid = e["dropped"]["invalid"]
        if invalid:
            self.console.print(f"  [yellow]filtered {invalid} invalid[/]:")
            for d in e["invalid"]:
                self.console.print(f"    {d['where']}: {d['detail']}", highlight=False, soft_wrap=True)
            if invalid > len(e["invalid"]):
                self.console.print(f"    … and {invalid - len(e['invalid'])} more (see the data report)")
        others = {reason: n for reason, n in e["dropped"].items() if n and reason != "invalid"}
        if others:
            self.console.print("  [yellow]dropped[/] " + ", ".join(f"{n} {_reason(r)}" for r, n in others.items()))
        contamination = e["contamination"]
        if contamination["hits"] and contamination["action"] == "warn":
            self.console.print(
                f"  [yellow]warning[/]: {contamination['hits']} contamination hits (a training record containing an "
                "evaluation input), kept because data.decontamination is warn"
            )
        for hit in e["contamination_hits"][:3]:
            self.console.print(f"    {hit['where']} contains {hit['task']}/{hit['sample_id']}: “{_short(hit['matched'])}”")
        lengths = e["token_lengths"]
        if lengths:
            self.console.print(
                f"  tokens per example: min {lengths['min']} · median {lengths['p50']:.0f} · p90 {lengths['p90']:.0f}"
                f" · max {lengths['max']}" + (f"; {e['truncated']} truncated" if e["truncated"] else "")
            )
        self.console.print(
            f"  prepared {e['examples']} examples ({e['total_tokens']} tokens, {e['target_tokens']} trained on); "
            f"report: {e['report']}",
            highlight=False, soft_wrap=True,
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

    def _on_inputs_changed(self, e: dict) -> None:
        for changed in e["files"]:
            self.console.print(f"[yellow]{changed['key']} {escape(changed['path'])} changed since the run read it[/] "
                               f"(sha256 {changed['recorded'][:12]} -> {changed['current'][:12]}); going on with the "
                               "new contents", soft_wrap=True, highlight=False)

    def _on_checkpoint_damaged(self, e: dict) -> None:
        damaged = e.get("damaged") or [e["checkpoint"]]  # runs before the walk back recorded only the first
        self.console.print(
            f"[yellow]Checkpoint{'s' if len(damaged) > 1 else ''} {', '.join(damaged)} "
            f"{'are' if len(damaged) > 1 else 'is'} damaged (checksum mismatch); "
            f"restarting round {e['round']} from {e['fallback'] or 'the fresh adapter'}[/]"
        )

    def _on_crash_detected(self, e: dict) -> None:
        self.console.print(f"[yellow]The run's last session stopped without a word: {escape(e['message'])}[/]")

    def _on_events_repaired(self, e: dict) -> None:
        self.console.print(
            f"[yellow]events.jsonl ended in a torn line ({e['fragment_bytes']} bytes, a write cut short by a kill "
            "or a full disk); cut off and kept in an events_repaired event[/]"
        )

    def _on_eval_result(self, e: dict) -> None:
        title = "Baseline evaluation (round 0, untrained)" if e["round"] == 0 else "Evaluation"
        self.console.print(f"\n  [bold]{title}[/] ({e['seconds']:.1f} s)")
        for t in e["tasks"]:
            if t["role"] == "gate":
                self._print_samples(t)
            self.console.print(f"  {escape(_task_line(t))}", highlight=False)
            if t["n_unscored"]:
                self.console.print(
                    f"    [yellow]{t['n_unscored']} sample(s) unscored[/] by {escape(t['scorer'])} (no readable grade); "
                    "counted as wrong",
                    highlight=False,
                )
            if t["compared_with"] is not None and (t["fixed"] or t["broke"] or t.get("paired")):
                self.console.print(f"    since round {t['compared_with']}: {_changes(t)}")
        gating = [t for t in e["tasks"] if t["role"] == "gate"]
        if len(gating) > 1:
            self.console.print(
                f"  score (weighted mean of gating tasks): {e['score']:.3f}{_interval(e)}, {e['n_samples']} samples",
                highlight=False,
            )
        if usage := e.get("usage"):
            self.console.print(f"  used: {_usage_line(usage)}", highlight=False)

    def _print_samples(self, task: dict) -> None:
        samples = task["samples"]
        shown = samples if len(samples) <= 20 else [s for s in samples if not s["correct"]][:10]
        for s in shown:
            mark = "[green]✓[/]" if s["correct"] else "[red]✗[/]"
            question, answer = escape(_short(s["question"], 34)), escape(_short(s["answer"], 38))
            self.console.print(f"    {mark} {question} → {answer}", highlight=False)
        if len(shown) < len(samples):
            self.console.print(f"    … {len(samples) - len(shown)} more not shown (see events.jsonl)")

    def _on_alert(self, e: dict) -> None:
        # bar_not_met and run_crashed only repeat what the end of the run prints anyway.
        if e["alert"] not in ("bar_not_met", "run_crashed"):
            self.console.print(f"  [bold yellow]⚠ {escape(e['message'])}[/]", highlight=False)

    def _on_decision(self, e: dict) -> None:
        color = "green" if e["bar_met"] else ("red" if e["stop"] else "yellow")
        self.console.print(f"  [{color}]{escape(e['reason'])}[/]", highlight=False)
        if e["gate"]["note"]:
            self.console.print(f"  [yellow]{escape(e['gate']['note'])}[/]", highlight=False)
        if e.get("rollback_to") is not None:
            self.console.print(
                f"  [yellow]below the best round ({e['rollback_to']}): rolling back to its adapter and optimizer state[/]"
            )

    def _on_eval_started(self, e: dict) -> None:
        what = f"adapter {e['adapter']}" if e["adapter"] else "the base model (no adapter)"
        self.console.print(Panel.fit("[bold]inspect-tinker eval[/] · evaluation without training", border_style="cyan"))
        self.console.print(
            f"  Model:       {e['base_model']}, {what}\n"
            f"  Bar:         {e['threshold']} (gate on {e['gate_on'].replace('_', ' ')})\n"
            f"  Run folder:  {e['run_dir']}",
            soft_wrap=True, highlight=False,
        )

    def _on_eval_finished(self, e: dict) -> None:
        gate = e["gate"]
        verdict = "[bold green]Bar met[/]" if e["bar_met"] else "[bold red]Bar not met[/]"
        self.console.print(f"\n{verdict}: {escape(gate['reason'])}", highlight=False)
        if gate["note"]:
            self.console.print(f"[yellow]{escape(gate['note'])}[/]", highlight=False)
        self.console.print(f"Run folder:   {e['run_dir']}", soft_wrap=True, highlight=False)
        for line in e["next_steps"]:
            self.console.print(f"  {line}", soft_wrap=True, highlight=False)

    def _on_data_selected(self, e: dict) -> None:
        repeated = f", {e['repeated']} repeated" if e["repeated"] else ""
        refused = f", {e['refused']} look-alikes refused" if e.get("refused") else ""
        self.console.print(
            f"  [bold]Data selection[/] after round {e['round']}: {e['failed']} failed questions → "
            f"{e['added']} records added{repeated}{refused}"
        )
        for category, what in e["by_category"].items():
            repeated = f", {len(what['repeated'])} repeated" if what["repeated"] else ""
            self.console.print(
                f"    {escape(category)}: {len(what['failed'])} failed, {len(what['added'])} added{repeated}",
                highlight=False,
            )

    def _on_data_added(self, e: dict) -> None:
        mark = "+" if e["action"] == "added" else "×"
        self.console.print(
            f"    {mark} {escape(e['where'])} for {escape(e['task'])}/{escape(e['sample_id'])} "
            f"({escape(_short(e['question'], 40))}), {e['retrieval']} {e['score']:.2f}",
            highlight=False,
        )

    def _on_focus_weighed(self, e: dict) -> None:
        if e["records"]:
            self.console.print(
                f"  Focus after round {e['round']}: {e['unlearned']} of {len(e['records'])} records of failed or newly "
                f"added questions above loss {e['loss_bound']:g}, drawn ×{e['weight']} next round", highlight=False,
            )

    def _on_adapter_grown(self, e: dict) -> None:
        self.console.print(
            f"  LoRA rank grown to {e['lora_rank']} ({e['trainable_parameters'] / 1e6:.2f} M trainable parameters)"
        )

    def _stop_progress(self) -> None:
        for bar in (self.progress, self.data_progress):
            if bar is not None:
                bar.stop()
        self.progress = self.data_progress = None

    def _on_error(self, e: dict) -> None:
        # The error itself is told once, by whoever catches it (the CLI prints it last).
        self._stop_progress()
        self.console.print("\n[red]Run failed[/]. Its state is saved; continue with: "
                           f"{escape(e['resume_command'])}", soft_wrap=True, highlight=False)

    def _on_not_started(self, e: dict) -> None:
        self._stop_progress()

    def _on_interrupted(self, e: dict) -> None:
        self._stop_progress()
        self.console.print(f"\n[yellow]Interrupted[/] ({e['message']}).")
        self.console.print(f"Continue with: {e['resume_command']}", soft_wrap=True, highlight=False)

    def _on_run_finished(self, e: dict) -> None:
        table = Table(title="Rounds", show_edge=False)
        for col in ("round", "learning rate", "final loss", "score"):
            table.add_column(col, justify="right")
        table.add_column("since the round before (gating tasks, paired)")
        for r in e["rounds"]:
            best = " ★" if r["round"] == e["best_round"] else ""
            lr = "-" if r["learning_rate"] is None else f"{r['learning_rate']:.2e}"
            loss = "-" if r["final_loss"] is None else f"{r['final_loss']:.3f}"
            changes = "\n".join(f"{c['task']}: {paired_line(c)}, fixed {len(c['fixed'])}, broke {len(c['broke'])}"
                                 for c in r.get("since_previous", []) if c["role"] == "gate")
            table.add_row(str(r["round"]), lr, loss, f"{r['score']:.3f}{best}", escape(changes))
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

    def _on_delivery_flush(self, e: dict) -> None:
        counts = ", ".join(f"{n} to {escape(name)}" for name, n in e["waiting"].items())
        self.console.print(f"\nDelivering {counts} (waiting at most {e['flush_seconds']:g} s) ...", soft_wrap=True)

    def _on_delivery_report(self, e: dict) -> None:
        self.console.print()
        for d in e["destinations"]:
            if d["undelivered"]:
                self.console.print(
                    f"[yellow]{escape(d['name'])}: {d['delivered']} delivered, {d['undelivered']} not delivered "
                    f"({escape(str(d['error']))})[/]", soft_wrap=True,
                )
            else:
                self.console.print(f"{escape(d['name'])}: {d['delivered']} delivered", soft_wrap=True)
        if e["outbox"]:
            self.console.print(f"Kept in {escape(e['outbox'])}; deliver them later with:", soft_wrap=True, highlight=False)
            command = shlex.join(["inspect-tinker", "sync", str(Path(e["outbox"]).parent)])
            self.console.print(f"  {escape(command)}", soft_wrap=True, highlight=False)

    def _on_report_written(self, e: dict) -> None:
        self.console.print(f"\nReport: {escape(e['path'])} (open it in a browser)", soft_wrap=True, highlight=False)

    def _on_report_failed(self, e: dict) -> None:
        self.console.print(f"\n[yellow]The report could not be written[/] ({escape(e['message'])}); "
                           f"try: {escape(e['command'])}", soft_wrap=True, highlight=False)

    def _on_checkpoints_pruned(self, e: dict) -> None:
        self.console.print(f"\nDeleted {len(e['deleted'])} checkpoint(s) on the Tinker service; kept "
                           f"{', '.join(e['kept']) or 'none'}", soft_wrap=True, highlight=False)

    def _on_prune_failed(self, e: dict) -> None:
        self.console.print(f"\n[yellow]The checkpoints on the service could not be pruned[/] ({escape(e['message'])}); "
                           f"try: {escape(e['command'])}", soft_wrap=True, highlight=False)


def print_data_report(console: Console, report: dict, limit: int = 10) -> None:
    """The full data report (`DataReport.to_dict()`) for a person: counts per reason, token
    lengths, duplicate clusters, contamination hits, and the first dropped records."""
    # Unwrapped lines: paths and record locations stay whole for copying.
    say = partial(console.print, highlight=False, soft_wrap=True)
    say(f"[bold]Data check[/]: {report['file']} ({report['format']})")
    table = Table(show_edge=False, box=None, padding=(0, 2))
    table.add_column("")
    table.add_column("records", justify="right")
    table.add_row("read", str(report["records"]))
    for reason, n in report["dropped"].items():
        table.add_row(f"  dropped: {_reason(reason)}", f"[yellow]{n}[/]" if n else "0")
    table.add_row("examples", f"[bold]{report['examples']}[/]")
    if report["truncated"]:
        table.add_row("  of which truncated", str(report["truncated"]))
    console.print(table)

    lengths = report["token_lengths"]
    if lengths:
        say(
            f"\nTokens per example: min {lengths['min']} · median {lengths['p50']:.0f} · p90 {lengths['p90']:.0f} · "
            f"p99 {lengths['p99']:.0f} · max {lengths['max']} · mean {lengths['mean']}; "
            f"{report['total_tokens']} tokens in all, {report['target_tokens']} trained on"
        )

    clusters = report["duplicate_clusters"]
    say(f"\nDuplicate clusters: {len(clusters)}")
    for c in clusters[:limit]:
        copies = ", ".join(d if isinstance(d, str) else f"{d['where']} ({d['similarity']:.2f})" for d in c["duplicates"][:5])
        more = f" and {len(c['duplicates']) - 5} more" if len(c["duplicates"]) > 5 else ""
        say(f"  {c['kind']}: kept {c['kept']}; dropped {copies}{more}")
    _more(say, len(clusters), limit)

    contamination = report["contamination"]
    hits = contamination["hits"]
    too_short = contamination["eval_inputs_too_short"]
    say(
        f"\nContamination ({contamination['action']}, {contamination['ngram_words']}-word n-grams, "
        f"{contamination['eval_inputs']} evaluation inputs" + (f", {too_short} too short to check" if too_short else "")
        + f"): {len(hits)} hits"
    )
    for hit in hits[:limit]:
        say(f"  {hit['where']} contains {hit['task']}/{hit['sample_id']}: “{_short(hit['matched'])}”")
    _more(say, len(hits), limit)

    dropped = report["dropped_records"]
    if dropped:
        say(f"\nDropped records: {len(dropped)}")
        for d in dropped[:limit]:
            say(f"  {d['where']}: {_reason(d['reason'])}: {d['detail']}")
        _more(say, len(dropped), limit)

    truncated = report["truncated_records"]
    if truncated:
        say(f"\nTruncated records: {len(truncated)}")
        for t in truncated[:limit]:
            say(f"  {t['where']}: {t['detail']}")
        _more(say, len(truncated), limit)


def _more(say, total: int, shown: int) -> None:
    if total > shown:
        say(f"  … and {total - shown} more in the JSON report")


def _usage_line(usage: dict) -> str:
    """A round's tokens (and cost, when priced) in one line."""
    line = (f"{usage['tokens_trained']:,} tokens trained, {usage['tokens_prefilled']:,} prompt tokens, "
            f"{usage['tokens_sampled']:,} sampled")
    if usage["cost"] is not None:
        line += f"; cost {usage['cost']:.4g}, {usage['total_cost']:.4g} so far"
    return line
