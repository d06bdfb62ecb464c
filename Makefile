# Two entry points for a fresh machine (see README):
#   make demo   -- install, train the default recipe on a built-in 2-D set, write the picture
#   make test   -- install, run the test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ebmlab-installed

.PHONY: install demo test test-slow docs bench clean

install: $(STAMP)

# torch first, pinned to the CPU wheel: an unpinned `torch` resolves to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/ebmlab train --data eight-gaussians --out runs/demo --force
	$(VENV)/bin/ebmlab eval runs/demo
	$(VENV)/bin/ebmlab plot runs/demo
	@echo "demo picture: runs/demo/plot.png"

test: install
	$(PY) -m pytest -q -n 2

# the documentation site, warnings as errors (mkdocs.yml; the CLI and benchmark pages are generated)
docs: install
	$(PY) -m pip install -q -e ".[docs]"
	$(PY) -m mkdocs build --strict --site-dir site

test-slow: install
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
