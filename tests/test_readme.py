import re
from pathlib import Path

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


def test_every_task_file_and_example_the_readme_names_exists():
    repo = Path(__file__).parents[1]
    named = set(re.findall(r"(?<![\w/.])((?:tasks|examples)/[\w./-]*[\w/])", README))
    missing = [n for n in sorted(named) if not (repo / n).exists()]
    assert named and not missing, f"README.md names files that do not exist: {missing}"


def test_every_inspect_tinker_name_the_readme_uses_is_registered_with_inspect():
    from inspect_ai._util.registry import registry_lookup

    import inspect_tinker._registry  # noqa: F401  (what the entry point loads)

    names = set(re.findall(r"(?<![\w/.])inspect_tinker/(\w+)", README))
    unknown = [n for n in sorted(names) if not any(registry_lookup(kind, f"inspect_tinker/{n}") for kind in ("scorer", "task"))]
    assert {"qa_grader", "general_knowledge"} <= names and not unknown, f"not registered: {unknown}"
