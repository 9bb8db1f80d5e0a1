# One entry point. `make env` installs; `make book` runs every notebook and builds the book; `make test` is CI's.
# Paths may contain spaces: every path is quoted and none goes through make's word functions ($(abspath ...)
# splits at spaces); relative paths such as LASTLAYER_DATA's default ./data are resolved by the command line.
PYTHON  ?= python3
VENV    ?= .venv
PY      ?= $(VENV)/bin/python
PROFILE ?= cpu
PAPER   ?=
ARGS    ?=
SANITIZE := tests/nbval/sanitize.cfg

.PHONY: env venv-check book html run status params test nbval-refresh bench clean screenshots

env: $(VENV)/.installed   ## create .venv with the pinned dependencies (about 6 GB with torch's CUDA libraries)
$(VENV)/.installed: requirements.txt pyproject.toml
	"$(PYTHON)" -m venv "$(VENV)"
	"$(PY)" -m pip install --quiet --upgrade pip
	"$(PY)" -m pip install --quiet -r requirements.txt
	"$(PY)" -m pip install --quiet --no-deps -e .
	touch "$@"

# Every other target uses the venv as it is: only `make env` installs (a venv made by hand, or one older than
# requirements.txt, is never reinstalled behind the user's back). A missing one is installed once, as `make env`.
venv-check:
	@if [ ! -x "$(PY)" ]; then "$(MAKE)" --no-print-directory env; \
	elif [ ! -e "$(VENV)/.installed" ] || [ requirements.txt -nt "$(VENV)/.installed" ] || \
	     [ pyproject.toml -nt "$(VENV)/.installed" ]; then \
	  echo "note: $(VENV) is older than requirements.txt (or was not installed by make): \`make env\` updates it; going on with it as it is" >&2; fi

book: venv-check  ## execute every notebook with $(PROFILE) (unchanged ones are skipped), then build the HTML
	"$(PY)" -m lastlayer book --profile "$(PROFILE)"

html: venv-check  ## build the HTML from the executed notebooks in book/executed (no execution)
	"$(PY)" -m lastlayer html

run: venv-check  ## make run PAPER=digit_pairs PROFILE=smoke ARGS='-p epochs 3 --force'
	@test -n "$(PAPER)" || { echo "usage: make run PAPER=<id> [PROFILE=cpu] [ARGS='-p NAME VALUE --force']" >&2; exit 2; }
	"$(PY)" -m lastlayer run "$(PAPER)" --profile "$(PROFILE)" $(ARGS)

status: venv-check  ## each paper's last run: current or stale for today's code
	"$(PY)" -m lastlayer status

params: venv-check  ## make params PAPER=digit_pairs: parameters, types, profiles, constraints, help
	@test -n "$(PAPER)" || { echo "usage: make params PAPER=<id>" >&2; exit 2; }
	"$(PY)" -m lastlayer params "$(PAPER)"

test: venv-check  ## unit tests, then every notebook's smoke reference re-executed and its checked cells compared
	"$(PY)" -m pytest tests --nbval-lax --nbval-sanitize-with "$(SANITIZE)" -p no:cacheprovider

nbval-refresh: venv-check  ## re-execute the smoke references in tests/nbval (all, or PAPER=<id>): accepts new numbers
	"$(PY)" -m lastlayer nbval-refresh $(PAPER)

bench: venv-check  ## speed of the trainer against the canonical loop and the compute floor (per device)
	"$(PY)" -m lastlayer bench

clean:
	rm -rf _build build

screenshots: html    ## every page of the book at desktop and phone width in headless Chromium (apt-get install chromium)
	"$(PY)" scripts/screenshots.py --html _build/html --out build/screenshots
