# One entry point. `make book` builds the whole book; `make test` is the test command CI runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export LASTLAYER_DATA := $(abspath $(or $(LASTLAYER_DATA),data))
PROFILE ?= cpu

.PHONY: env book html run test bench clean

env: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: env            ## execute every notebook with $(PROFILE) (unchanged ones are skipped), then build the HTML
	$(PY) -m lastlayer book --profile $(PROFILE)

html: env            ## build the HTML from the executed notebooks in book/executed (no execution)
	$(PY) -m lastlayer html

run: env             ## make run PAPER=digit_pairs PROFILE=cpu
	$(PY) -m lastlayer run $(PAPER) --profile $(PROFILE)

test: env            ## unit tests, every notebook under the smoke profile (nbval), and the book build
	rm -rf build/smoke
	$(PY) -m lastlayer prepare build/smoke --profile smoke
	LASTLAYER_RESULTS_DIR=$(abspath build/smoke/results) $(PY) -m pytest tests build/smoke --nbval-lax -p no:cacheprovider

bench: env           ## speed of the trainer against the canonical loop and the compute floor
	$(PY) -m lastlayer bench

clean:
	rm -rf _build build
