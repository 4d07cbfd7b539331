import importlib.util
import re
import shlex
from pathlib import Path

from command_lines import accepted

from inspect_tinker.config import SCORER_MODELS, Config, EvalTaskConfig, GenerationConfig, TuneConfig
from inspect_tinker.data.settings import DataConfig

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_configuration_key_is_documented_in_the_readme():
    keys = [k for k in Config.model_fields if k not in ("generation", "data")]  # documented key by key
    keys += [f"generation.{k}" for k in GenerationConfig.model_fields]
    keys += [f"data.{k}" for k in DataConfig.model_fields]
    keys += [f"eval_tasks[].{k}" for k in EvalTaskConfig.model_fields]
    keys += [f"eval_tasks[].scorer.{k}" for m in SCORER_MODELS.values() for k in m.model_fields if k != "name"]
    keys += [f"tune.{k}" for k in TuneConfig.model_fields]
    missing = [k for k in keys if f"| `{k}` |" not in README]
    assert not missing, f"document these keys in README.md: {missing}"


def test_the_readme_starts_with_the_two_setup_commands():
    quick_start = README.split("## Quick start", 1)[1][:600]
    assert "make demo" in quick_start and "make test" in quick_start


def test_every_scorer_is_documented_in_the_readme():
    missing = [name for name in SCORER_MODELS if f"| `{name}` |" not in README]
    assert not missing, f"document these scorers in README.md: {missing}"


def readme_commands() -> list[tuple[str, list[str]]]:
    """Each `inspect-tinker ...` and `... -m MODULE ...` command in the README's shell blocks:
    the program as written and its arguments (shell comments and continuation lines resolved)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", README, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            words = words[:next((i for i, w in enumerate(words) if w in ("|", "&&", "||", ";", ">")), len(words))]
            for i, word in enumerate(words):
                completion_setup = i > 0 and words[i - 1].startswith("_INSPECT_TINKER_COMPLETE=")
                if (word == "inspect-tinker" or word.endswith("/inspect-tinker")) and not completion_setup:
                    commands.append((word, words[i + 1:]))
                elif word == "-m" and i + 1 < len(words):
                    commands.append((f"-m {words[i + 1]}", words[i + 2:]))
    return commands


def test_every_command_in_the_readme_is_a_valid_command_line():
    commands = readme_commands()
    shown = {argv[0] for _, argv in commands}
    assert shown >= {"run", "resume", "eval", "data", "export", "runs", "report", "sync", "tune"}, shown
    modules = {program.split()[1] for program, _ in commands if program.startswith("-m ")}
    assert modules == {"inspect_tinker"}, modules  # `python -m`, `torchrun -m`, `accelerate launch -m`
    refused = [" ".join([program, *argv]) for program, argv in commands if not accepted(argv)]
    assert not refused, f"these README commands are not valid inspect-tinker command lines: {refused}"
    assert importlib.util.find_spec("inspect_tinker.__main__") is not None


def test_every_task_file_and_example_the_readme_names_exists():
    repo = Path(__file__).parents[1]
    named = set(re.findall(r"(?<![\w/.])((?:tasks|examples)/[\w./-]*[\w/])", README))
    missing = [n for n in sorted(named) if not (repo / n).exists()]
    assert named and not missing, f"README.md names files that do not exist: {missing}"


def test_every_inspect_tinker_name_the_readme_uses_is_registered_with_inspect():
    from inspect_ai._util.registry import registry_lookup

    import inspect_tinker._registry  # noqa: F401  (what the entry point loads)

    names = set(re.findall(r"(?<![\w/.])inspect_tinker/(\w+)", README))
    unknown = [n for n in sorted(names) if not any(registry_lookup(kind, f"inspect_tinker/{n}") for kind in ("scorer", "task", "hooks"))]
    assert {"qa_grader", "general_knowledge"} <= names and not unknown, f"not registered: {unknown}"
