from pathlib import Path

from inspect_tinker.config import SCORER_MODELS, Config, DataConfig, EvalTaskConfig, GenerationConfig, TuneConfig

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
