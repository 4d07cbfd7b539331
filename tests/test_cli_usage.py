"""The click command line itself: usage mistakes exit 2 with one error line, every command's
--help has examples that parse, shell completion works, and start-up loads no torch."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from command_lines import accepted

from inspect_tinker.cli import cli, main

SCRIPT = Path(sys.executable).with_name("inspect-tinker")  # the console script pyproject installs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rn", "my-run.yaml"], "No such command 'rn'."),
        (["run"], "Missing argument 'CONFIG'"),
        (["run", "my-run.yaml", "--confg", "x"], "--confg"),  # and "Did you mean '--config'?", in click's words
        (["run", "my-run.yaml", "--backend", "gpu"], "Invalid value for '--backend': 'gpu' is not one of"),
        (["run", "a.yaml", "--config", "b.yaml"], "CONFIG and --config are the same: give the config file once."),
        (["tune", "my-run.yaml"], "Missing option '--trials'."),
        (["tune", "my-run.yaml", "--trials", "many"], "'many' is not a valid integer."),
        (["export", "runs/x"], "give one of --merged or --adapter."),
        (["export", "runs/x", "--round", "0", "--best", "--adapter", "out"], "--round and --best exclude each other"),
        (["eval", "--adapter", "a", "--run", "runs/x"], "--adapter and --run exclude each other"),
        (["data", "check"], "Missing argument 'TRAIN'."),
    ],
)
def test_a_usage_mistake_exits_2_with_one_error_line_naming_it(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    [error] = [line for line in err.splitlines() if line.startswith("Error:")]
    assert message in error and "Traceback" not in err
    assert "Try 'inspect-tinker" in err and "--help' for help." in err  # where to read on


@pytest.mark.parametrize("entry", [[str(SCRIPT)], [sys.executable, "-m", "inspect_tinker"]],
                         ids=["console script", "python -m"])
def test_the_installed_command_exits_2_on_a_usage_mistake(entry):
    done = subprocess.run([*entry, "run", "my-run.yaml", "--no-such-option"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 2, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("Error: No such option") and "--no-such-option" in last
    assert done.stdout == ""


def test_our_usage_error_is_one_message_and_verbose_adds_the_traceback(capsys):
    assert main(["eval", "--round", "1"]) == 2
    assert capsys.readouterr().err == "error: --round needs --run (the run folder whose round to evaluate).\n"
    assert main(["eval", "--round", "1", "--verbose"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --round needs --run") and "Traceback (most recent call last)" in err


def commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    """Every command and group of the CLI, the root included, with the words that name it."""
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def examples(help_text: str) -> list[str]:
    """The command lines under the help's `Example:` or `Examples:` heading."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:"))
    block = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def test_the_commands_are_the_documented_set():
    assert {" ".join(path) for path, _ in commands()} == {
        "", "run", "demo", "resume", "eval", "data", "data check", "export", "runs", "report", "compare", "prune", "sync",
        "tune", "dev-server",
    }


@pytest.mark.parametrize("path", [path for path, _ in commands()], ids=lambda p: " ".join(p) or "inspect-tinker")
def test_every_commands_help_shows_examples_that_are_valid_command_lines(path, capsys):
    assert main([*path, "--help"]) == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"Usage: {' '.join(['inspect-tinker', *path])} [OPTIONS]")
    lines = examples(help_text)
    assert lines, help_text
    for line in lines:
        argv = shlex.split(line)
        assert argv[0] == "inspect-tinker" and (not path or argv[1:1 + len(path)] == list(path)), line
        assert accepted(argv[1:]), line


def test_every_option_has_help_text():
    missing = [f"{' '.join(path)} {param.opts[0]}" for path, command in commands()
               for param in command.params if isinstance(param, click.Option) and not param.help]
    assert not missing, missing


def completion_env(**env: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{SCRIPT.parent}{os.pathsep}{os.environ['PATH']}", **env}


@pytest.mark.parametrize(
    ("shell", "registration"),
    [("bash", "complete -o nosort -F _inspect_tinker_completion inspect-tinker"),
     ("zsh", "compdef _inspect_tinker_completion inspect-tinker"),
     ("fish", "complete --no-files --command inspect-tinker")],
)
def test_click_writes_the_completion_script_the_readme_documents(shell, registration):
    done = subprocess.run([str(SCRIPT)], env=completion_env(_INSPECT_TINKER_COMPLETE=f"{shell}_source"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert registration in done.stdout and "_INSPECT_TINKER_COMPLETE" in done.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["inspect-tinker", "da"], ["data"]),
        (["inspect-tinker", "re"], ["report", "resume"]),
        (["inspect-tinker", "data", "ch"], ["check"]),
        (["inspect-tinker", "run", "my-run.yaml", "--backend", ""], ["local", "tinker"]),
    ],
)
def test_bash_completes_commands_and_choices_through_the_sourced_script(words, expected):
    # Real bash sources the script click writes and calls its completion function, as a
    # shell does on Tab; the function runs the installed command to get the candidates.
    program = (
        'eval "$(_INSPECT_TINKER_COMPLETE=bash_source inspect-tinker)"\n'
        f"COMP_WORDS=({shlex.join(words)})\n"  # an empty last word: Tab after a space
        f"COMP_CWORD={len(words) - 1}\n"
        "_inspect_tinker_completion inspect-tinker\n"  # bash passes the command's name as $1
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", program], env=completion_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == expected


def modules_imported(argv: list[str], cwd: Path) -> set[str]:
    """The top-level packages `python -X importtime -m inspect_tinker ARGV` imports (from its stderr)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "inspect_tinker", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, done.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines[1:]}  # the first line is the header


@pytest.mark.parametrize("argv", [["--help"], ["runs"], ["run", "--help"]], ids=" ".join)
def test_help_and_the_runs_listing_start_without_torch(argv, tmp_path):
    (tmp_path / "runs").mkdir()
    imported = modules_imported(argv, tmp_path)
    assert "inspect_tinker" in imported and "click" in imported  # the command really was loaded
    # matplotlib too: only the HTML report draws charts, so the listing must not pay for it.
    assert not imported & {"torch", "transformers", "peft", "matplotlib"}, sorted(imported)
