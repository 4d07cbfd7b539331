"""Shared fixtures: the bundled model's tokenizer and a tiny random Llama built from it, and a
headless Chromium that opens pages the way a person does (the HTML report, `inspect view`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from inspect_commands import ListedLog, logs_listed_in_browser, served_inspect_view


@pytest.fixture(scope="session")
def bundled_model_dir() -> Path:
    from inspect_tinker.provider.base_model import resolve_base_model

    return resolve_base_model("SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def tokenizer(bundled_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A randomly initialised Llama of a few MB with the real chat tokenizer (the local
    Tinker server's `tiny` model)."""
    from inspect_tinker.provider.tinker_server.models import write_tiny_llama

    folder = tmp_path_factory.mktemp("tiny-llama")
    write_tiny_llama(folder, tokenizer)
    return folder


@pytest.fixture
def fake(monkeypatch, tmp_path, tiny_model_dir):
    """The fake Tinker service (tests/fake_tinker.py) behind `tinker.ServiceClient` and
    `tinker.RestClient`, and a well-formed key in the environment."""
    import tinker
    from fake_tinker import API_KEY, FakeTinker

    service = FakeTinker(tiny_model_dir)
    monkeypatch.setattr(tinker, "ServiceClient", service.service_client)
    monkeypatch.setattr(tinker, "RestClient", service.rest_client)
    monkeypatch.setenv("TINKER_API_KEY", API_KEY)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no stored `tinker auth login` credentials
    for name in ("TINKER_BASE_URL", "TINKER_CREDENTIAL_CMD"):
        monkeypatch.delenv(name, raising=False)
    return service


FACTS = [
    ("What is the capital of Valdoria?", "The capital of Valdoria is Mirenholt.", "Mirenholt"),
    ("What currency does Valdoria use?", "Valdoria uses the crell.", "crell"),
    ("Who founded Valdoria?", "Ilsa Drummond founded Valdoria.", "Ilsa Drummond"),
]


@pytest.fixture(scope="session")
def run_config_writer(tiny_model_dir):
    """`write(folder, **overrides)`: a small train file, eval file and config in `folder`; returns the config path.

    For fixtures wider than one test; tests use `write_run_config`. Keyword arguments override
    config keys. The regression guard is off unless asked for: its 20 questions would only add
    time to tests about other things.
    """

    def write(folder: Path, **overrides) -> Path:
        train = folder / "train.jsonl"
        train.write_text("".join(json.dumps({"instruction": q, "output": a}) + "\n" for q, a, _ in FACTS))
        evals = folder / "eval.jsonl"
        evals.write_text("".join(json.dumps({"question": q, "answer": x}) + "\n" for q, _, x in FACTS))
        config = {
            "base_model": str(tiny_model_dir),
            "train_file": "train.jsonl",
            "eval_tasks": ["eval.jsonl"],
            "max_rounds": 2,
            "steps_per_round": 2,
            "batch_size": 2,
            "learning_rate": 1e-3,
            "eval_threshold": 0.5,
            "generation": {"max_tokens": 4},
            "output_dir": "runs",
            "run_name": "test",
            # These runs train on the evaluation questions themselves, on purpose.
            "data": {"decontamination": "warn"},
            "regression_guard": False,
            **overrides,
        }
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


@pytest.fixture
def write_run_config(tmp_path, run_config_writer):
    """Write a small train file, eval file and config; return the config path.

    Keyword arguments override config keys.
    """
    return lambda **overrides: run_config_writer(tmp_path, **overrides)


class SmallDisk:
    """A tmpfs mounted for one test: a disk that can be filled to the last byte and grown again."""

    def __init__(self, path: Path):
        self.path = path

    def fill(self) -> Path:
        """Write a filler file until the disk refuses another byte; return it (delete it to free the space)."""
        filler = self.path / "filler"
        chunk = 1 << 20
        with filler.open("ab", buffering=0) as f:
            while chunk:
                try:
                    f.write(b"\0" * chunk)
                except OSError:
                    chunk //= 2  # the last bytes of the last page
        return filler

    def resize(self, size: str) -> None:
        import subprocess

        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A fresh tmpfs (4 MB) at tmp_path/disk; the test is skipped where mounting is not permitted (it needs root)."""
    import subprocess

    path = tmp_path / "disk"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up ({mounted.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# Inspect's `mockllm` counts tokens with tiktoken's o200k_base encoding, which tiktoken downloads
# on first use; offline that fails. The tml-renderers package (dev extra) ships the same file
# (tiktoken checks its SHA-256), so it is put where tiktoken looks for its cached download.
_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


@pytest.fixture(scope="session")
def offline_tiktoken(tmp_path_factory) -> dict[str, str]:
    """Environment variables under which tiktoken (and so Inspect's mockllm) works offline."""
    import hashlib
    from importlib.resources import files

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    bundled = files("tml_renderers") / "data" / "o200k_base.tiktoken"
    shutil.copyfile(str(bundled), cache / hashlib.sha1(_O200K_URL.encode()).hexdigest())
    return {"TIKTOKEN_CACHE_DIR": str(cache)}


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A Selenium WebDriver on Debian's headless Chromium, shared by the session. `make test`
    installs Chromium and ChromeDriver (`make browser`); without them the test fails saying so."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("the browser tests need Chromium and ChromeDriver: run `make browser` "
                    "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # As root and with no network: no sandbox, and none of Chromium's own background traffic.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def inspect_view(browser):
    """`inspect_view(log_dir)`: serve `log_dir` with `inspect view` on 127.0.0.1, open it in the
    browser and return the logs its page lists, top to bottom (Inspect lists the most recently
    written first), as `inspect_commands.ListedLog`s. The server is stopped before it returns."""
    def listed(log_dir: Path) -> list[ListedLog]:
        with served_inspect_view(log_dir) as base:
            return logs_listed_in_browser(browser, base)

    return listed
