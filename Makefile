# The README's two commands: `make demo` and `make test`. Both set up .venv first; a second run
# finds the install stamp up to date and skips straight to the job.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q
STAMP  := $(VENV)/.neurokd-installed
DEMO   := runs/demo

# The core environment (README "Which Python gives what"): Python 3.13 with numpy 2, everything but the
# Lava reference backend. python3.13 on PATH may be a pyenv shim that refuses until that version is
# selected: then pyenv's own 3.13 install is used. Override with `make test-core PYTHON313=...`.
PYTHON313 ?= $(shell if python3.13 -c '' 2>/dev/null; then command -v python3.13; \
  else v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13\.[0-9]+$$' | tail -1); \
  test -n "$$v" && test -x "$$(pyenv prefix $$v)/bin/python3.13" && echo "$$(pyenv prefix $$v)/bin/python3.13"; fi)
VENV_CORE  := .venv-core
PY_CORE    := $(VENV_CORE)/bin/python
PIP_CORE   := $(PY_CORE) -m pip install --disable-pip-version-check -q
STAMP_CORE := $(VENV_CORE)/.neurokd-installed

.PHONY: demo test install install-core test-core espeak clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/lava.txt requirements/base.txt requirements/peers.txt requirements/sanafe.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "neurokd: installing the pinned stack into $(VENV) (first time: a few minutes)"
	$(PIP) -c requirements/constraints.txt -r requirements/base.txt
	$(PIP) --no-deps --ignore-requires-python -r requirements/lava.txt
	$(PIP) --no-deps -r requirements/peers.txt
	$(PIP) --no-deps -r requirements/sanafe.txt
	$(PIP) --no-deps --no-build-isolation -e .
	@$(MAKE) --no-print-directory espeak
	@touch $(STAMP)

install-core: $(STAMP_CORE)

$(STAMP_CORE): pyproject.toml requirements/core.txt requirements/constraints-core.txt requirements/peers.txt requirements/sanafe.txt
	@test -n "$(PYTHON313)" || { echo "neurokd: no Python 3.13 found; run make test-core PYTHON313=/path/to/python3.13"; exit 2; }
	@test -x $(PY_CORE) || $(PYTHON313) -m venv $(VENV_CORE)
	@echo "neurokd: installing the core stack (Python 3.13, numpy 2, no Lava) into $(VENV_CORE)"
	$(PIP_CORE) -c requirements/constraints-core.txt -r requirements/core.txt
	$(PIP_CORE) --no-deps -r requirements/peers.txt
	$(PIP_CORE) --no-deps -r requirements/sanafe.txt
	$(PIP_CORE) --no-deps --no-build-isolation -e .
	@$(MAKE) --no-print-directory espeak
	@touch $(STAMP_CORE)

# espeak-ng speaks the synth-kws keyword set (a Debian package, not a Python one).
espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "neurokd: installing espeak-ng (apt-get)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null); \
	  else \
	    echo "neurokd: espeak-ng is missing; install it with: sudo apt-get install espeak-ng"; exit 1; \
	  fi; }

# Loihi 1 takes binary spikes only (a graded student is refused there): the demo student is trained on the
# spikes the chip receives, a deterministic rate code from the host (--input-mode spikes, the mode that kept
# digits' accuracy best, README), and export places it on loihi1 in that mode, taken from the run.
demo: $(STAMP)
	$(VENV)/bin/neurokd train --out $(DEMO) --overwrite --input-mode spikes
	$(VENV)/bin/neurokd export $(DEMO) --target lava --precision both --no-progress --hardware loihi1

test: $(STAMP)
	$(PY) -m pytest -q

# The core suite on Python 3.13 + numpy 2: the tests that need Lava skip, saying so.
test-core: $(STAMP_CORE)
	$(PY_CORE) -m pytest -q

clean:
	rm -rf $(VENV) $(VENV_CORE) runs .pytest_cache
