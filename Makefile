# The README's two commands: `make demo` and `make test`. Both set up .venv first; a second run
# finds the install stamp up to date and skips straight to the job.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q
STAMP  := $(VENV)/.neurokd-installed
DEMO   := runs/demo

.PHONY: demo test install espeak clean

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

clean:
	rm -rf $(VENV) runs .pytest_cache
