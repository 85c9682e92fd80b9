# hlocal — the two set-up commands are `make demo` and `make test`; each does its own set-up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HLOCAL := $(VENV)/bin/hlocal
DEMO := examples/transformer

.PHONY: install install-demo test unit integration demo demo-down bench clean

# The dev extra (pytest, Go, wasmtime, compose, real plugins: ~600 MB) is for the test suite only.
# Editable installs in setuptools' 'compat' mode put the checkout on sys.path with a plain .pth:
# the default mode imports a finder (pathlib, re, ...) at every Python start, ~15 ms of each
# `hlocal` command. 'compat' is marked transitional; where it is gone the default mode is used.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat \
	  || $(PY) -m pip install -q -e '.[dev]'
	touch $@

# The demo needs hlocal itself and the package the transformer plugin comes from, nothing else.
$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e . gpustack-higress-plugins --config-settings editable_mode=compat \
	  || $(PY) -m pip install -q -e . gpustack-higress-plugins
	touch $@

install: $(VENV)/.installed

install-demo: $(VENV)/.demo-installed

test: install
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

# `make demo PORT=10001` moves the gateway off the port in examples/transformer/hlocal.yaml (10000).
demo: install-demo
	$(PY) $(DEMO)/fetch_plugin.py
	$(HLOCAL) -f $(DEMO) up $(if $(PORT),--port $(PORT))
	$(HLOCAL) -f $(DEMO) probe
	@echo
	@echo "The demo stack is still running. Try:"
	@echo "  $(HLOCAL) -f $(DEMO) request GET /get -H 'X-not-renamed: test'"
	@echo "Stop it with: make demo-down   (or $(HLOCAL) -f $(DEMO) down)"

demo-down: install-demo
	$(HLOCAL) -f $(DEMO) down

bench: install
	$(PY) bench/up.py

clean:
	rm -rf $(VENV) .pytest_cache tests/.cache
