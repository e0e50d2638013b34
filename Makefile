# One task runner. `make run` and `make test` are the two set-up commands in the README;
# `make eval` and `make bench` measure (they install the `eval` extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Torch 2.13.0 is the CPU build on this machine's disk; asking for it first keeps pip from
# resolving a multi-GB CUDA build when sentence-transformers pulls torch in.
TORCH_SPEC ?= torch==2.13.0
# `make run HOST=... PORT=...`; unset, the settings decide (ASSISTANT_UI_HOST/_PORT, else 127.0.0.1:7860).
HOST ?=
PORT ?=

# Evaluation data lives beside the repository, never in it; the measuring commands take its path.
EVAL_DATA ?= ../shared/eval

.PHONY: run test soak install-check lint install install-dev install-eval browser bench eval clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[llm]"
	touch $@

$(VENV)/.installed-eval: $(VENV)/.installed
	$(PIP) install --quiet -e ".[llm,eval]"
	touch $@

# llama-cpp-python builds from source (a few minutes, once); it runs the real-LLM tests. A
# native build (-march=native) emits AMX tile instructions on CPUs that report AMX, and a VM
# that does not enable AMX kills the process with SIGILL at the first matrix multiply: build
# for portable x86-64/arm64 instead (its own line, no wheel cache, so a native wheel is never
# reused).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

$(VENV)/.installed-dev: $(VENV)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --no-cache-dir "llama-cpp-python>=0.3.8,<0.4"
	$(PIP) install --quiet -e ".[llm,llamacpp,eval,dev]"
	touch $(VENV)/.installed-eval $@

install: $(VENV)/.installed

install-eval: $(VENV)/.installed-eval

install-dev: $(VENV)/.installed-dev browser

# Debian's Chromium drives the browser tests (a Playwright browser download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will be skipped"; }

run: install
	$(VENV)/bin/assistant index --if-empty
	$(VENV)/bin/assistant ui $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# Every behaviour, in minutes; the long soak loops (hundreds of kills, long floods) are `make soak`.
test: install-dev
	$(PY) -m pytest -m "not soak" $(PYTEST_ARGS)

soak: install-dev
	$(PY) -m pytest -m soak $(PYTEST_ARGS)

# A wheel installed without extras into a fresh virtualenv outside the checkout must answer.
install-check:
	PYTHON=$(PYTHON) TORCH_SPEC="$(TORCH_SPEC)" bash .ci/plain-install-check

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy assistant index ui prompts

eval: install-eval
	$(VENV)/bin/assistant eval $(EVAL_DATA)/bbc/questions-dev.jsonl \
	  --corpus $(EVAL_DATA)/bbc --corpus assistant/sample_articles --baseline

bench: install-eval
	$(VENV)/bin/assistant bench --corpus $(EVAL_DATA)/bbc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
