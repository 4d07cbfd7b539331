"""The README and the pages of docs/ say what the code does.

Every command line they show parses as an `inspect-tinker` command, every file, test and
`inspect_tinker/<name>` they name exists, every link they make resolves, the configuration
reference is the one the configuration model generates, and the README's exit-code table is
`errors.EXIT_CODES`.
"""

import importlib.util
import re
import shlex
from pathlib import Path

from command_lines import accepted

from inspect_tinker.config import SCORER_MODELS, Config, EvalTaskConfig, GenerationConfig, TuneConfig
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.errors import EXIT_CODES

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
README = (REPO / "README.md").read_text()
CONFIGURATION = REPO / "docs" / "configuration.md"
# The README and every page of docs/, by their path in the repository.
PAGES = {str(p.relative_to(REPO)): p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}


def _generator():
    """docs/generate_configuration.py, the script that writes the configuration reference."""
    spec = importlib.util.spec_from_file_location("generate_configuration", REPO / "docs" / "generate_configuration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_is_what_the_config_model_generates():
    generator = _generator()
    assert CONFIGURATION.read_text() == generator.render(), (
        f"docs/configuration.md is out of date with inspect_tinker.config: regenerate it with `{generator.COMMAND}`"
    )


def test_every_configuration_key_is_in_the_configuration_reference():
    page = CONFIGURATION.read_text()
    keys = list(Config.model_fields)
    keys += [f"generation.{k}" for k in GenerationConfig.model_fields]
    keys += [f"data.{k}" for k in DataConfig.model_fields]
    keys += [f"eval_tasks[].{k}" for k in EvalTaskConfig.model_fields]
    keys += [f"eval_tasks[].scorer.{k}" for m in SCORER_MODELS.values() for k in m.model_fields if k != "name"]
    keys += [f"tune.{k}" for k in TuneConfig.model_fields]
    missing = [k for k in keys if f"| `{k}` |" not in page]
    assert not missing, f"docs/configuration.md lacks these keys: {missing}"
    headed = [name for name in SCORER_MODELS if f"\n### {name}\n" not in page]
    assert not headed, f"docs/configuration.md lacks a section for these scorers: {headed}"


def test_the_readme_starts_with_the_two_setup_commands():
    quick_start = README.split("## Quick start", 1)[1][:600]
    assert "make demo" in quick_start and "make test" in quick_start


def test_the_readme_stays_a_front_door():
    lines = README.count("\n")
    assert lines <= 300, f"README.md has {lines} lines; move the details into a page of docs/ and link to it"


def test_the_readmes_exit_code_table_is_the_one_errors_states():
    section = README.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    table = {int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.M)}
    assert table == {int(code): meaning for code, meaning in EXIT_CODES.items()}, (
        "README.md's exit-code table must say what src/inspect_tinker/errors.py EXIT_CODES says"
    )


def test_every_scorer_is_in_the_evaluation_pages_table():
    page = PAGES["docs/evaluation.md"]
    missing = [name for name in SCORER_MODELS if f"| `{name}` |" not in page]
    assert not missing, f"document these scorers in docs/evaluation.md: {missing}"


def shell_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each `inspect-tinker ...` and `... -m MODULE ...` command in the shell blocks of `text`:
    the program as written and its arguments (shell comments and continuation lines resolved)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
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


def test_every_command_in_the_readme_and_docs_is_a_valid_command_line():
    commands = {page: shell_commands(text) for page, text in PAGES.items()}
    assert commands["README.md"], "README.md shows no inspect-tinker command"
    every = [command for shown in commands.values() for command in shown]
    shown = {argv[0] for _, argv in every}
    assert shown >= {"run", "demo", "resume", "eval", "data", "export", "runs", "report", "sync", "tune", "dev-server"}, shown
    modules = {program.split()[1] for program, _ in every if program.startswith("-m ")}
    assert modules == {"inspect_tinker"}, modules  # `python -m`, `torchrun -m`, `accelerate launch -m`
    refused = [f"{page}: {' '.join([program, *argv])}"
               for page, shown in commands.items() for program, argv in shown if not accepted(argv)]
    assert not refused, f"these commands are not valid inspect-tinker command lines: {refused}"
    assert importlib.util.find_spec("inspect_tinker.__main__") is not None


def test_every_file_the_readme_and_docs_name_exists():
    packages = "|".join(p.name for p in (REPO / "src" / "inspect_tinker").iterdir() if (p / "__init__.py").is_file())
    missing, named = [], set()
    for page, text in PAGES.items():
        found = set(re.findall(r"(?<![\w/.~-])((?:tasks|examples|src|tests|bench|docs)/[\w./-]*[\w/])", text))
        # A module named by its place in the package (`policies/relevance.py`).
        modules = re.findall(rf"(?<![\w/.~-])((?:{packages})/[\w/]+\.py)\b", text)
        found |= {f"src/inspect_tinker/{m}" for m in modules}
        named |= found
        missing += [f"{page}: {n}" for n in sorted(found) if not (REPO / n).exists()]
    assert {"tasks/demo_qa.py", "examples/demo/"} <= named and not missing, f"these files do not exist: {missing}"


def test_every_test_the_readme_and_docs_name_exists():
    defined = set(re.findall(r"^\s*(?:async )?def (test_\w+)", "\n".join(
        p.read_text() for p in (REPO / "tests").rglob("*.py")), flags=re.M))
    named = {(page, name) for page, text in PAGES.items() for name in re.findall(r"`(test_\w+)`", text)}
    missing = sorted(f"{page}: {name}" for page, name in named if name not in defined)
    assert named and not missing, f"these tests do not exist (renamed or gone?): {missing}"


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page (lower case, punctuation dropped, spaces as hyphens)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", prose, flags=re.M)}


def test_every_link_in_the_readme_and_docs_resolves():
    broken = []
    for page, text in PAGES.items():
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (REPO / page).parent / path if path else REPO / page
            if not file.exists():
                broken.append(f"{page}: {target}")
            elif anchor and (file.suffix != ".md" or anchor not in _anchors(file.read_text())):
                broken.append(f"{page}: {target} (no such heading)")
    assert not broken, f"these links go nowhere: {broken}"


def test_every_inspect_tinker_name_the_readme_and_docs_use_is_registered_with_inspect():
    from inspect_ai._util.registry import registry_lookup

    import inspect_tinker._registry  # noqa: F401  (what the entry point loads)

    names = {name for text in PAGES.values() for name in re.findall(r"(?<![\w/.])inspect_tinker/(\w+)", text)}
    unknown = [n for n in sorted(names) if not any(registry_lookup(kind, f"inspect_tinker/{n}") for kind in ("scorer", "task", "task_source", "hooks"))]
    assert {"qa_grader", "general_knowledge", "train_until_threshold"} <= names and not unknown, f"not registered: {unknown}"


def test_every_cache_folder_the_readme_and_docs_name_is_the_one_the_code_uses(monkeypatch, tmp_path):
    from inspect_tinker.provider.base_model import cache_root

    monkeypatch.delenv("INSPECT_TINKER_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    ours = "~/" + str(cache_root().relative_to(tmp_path))  # the dev server's models, state and venvs are under it
    named = {(page, path) for page, text in PAGES.items() for path in re.findall(r"~/\.cache/[\w.-]+", text)}
    assert ours == "~/.cache/inspect-tinker" and {page for page, _ in named} >= {"docs/tinker.md"}
    assert not [f"{page}: {path}" for page, path in named if path != ours], ours
