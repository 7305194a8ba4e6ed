# The README's two commands: `make demo` and `make test`. Both set up .venv first; a second run
# finds the install stamp up to date and skips straight to the job.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q
STAMP  := $(VENV)/.neurokd-installed
DEMO   := runs/demo

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/lava.txt requirements/base.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "neurokd: installing the pinned stack into $(VENV) (first time: a few minutes)"
	$(PIP) -c requirements/constraints.txt -r requirements/base.txt
	$(PIP) --no-deps --ignore-requires-python -r requirements/lava.txt
	$(PIP) --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurokd train --out $(DEMO) --overwrite
	$(VENV)/bin/neurokd export $(DEMO) --target lava

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
