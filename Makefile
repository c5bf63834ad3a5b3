# lmkit workbook. Quick start: `make lab` (open the notebooks) or `make test` (run every test and notebook).
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.lmkit-installed
LAB_ARGS ?=
PYTEST_ARGS ?=
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: setup lab test unit book bench student html docs clean test-latest gpu-check

# The install runs again only when one of these files changed since the last one.
$(STAMP): requirements.txt requirements-offline.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu run: sudo apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-offline.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)   ## create .venv and install everything into it
	@$(BIN)/python -m lmkit prepare

lab: setup        ## open JupyterLab on notebooks/ (headless: make lab LAB_ARGS="--no-browser --allow-root")
	$(BIN)/jupyter lab notebooks/ $(LAB_ARGS)

html/_static/.fetched: tools/html_book.py
	$(BIN)/python tools/html_book.py --fetch-only && touch $@

test: setup html/_static/.fetched ## unit tests + every notebook under nbval, in quick mode (one thread per worker)
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 LMKIT_QUICK=1 LMKIT_STRICT_EXERCISES=1 $(BIN)/python -m pytest -n 2 --dist loadfile --durations=25 --junitxml=test-results.xml \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg \
	  tests $(NOTEBOOKS) $(PYTEST_ARGS)

unit: setup       ## unit tests only
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 LMKIT_QUICK=1 LMKIT_STRICT_EXERCISES=1 $(BIN)/python -m pytest -n 2 --dist loadfile tests $(PYTEST_ARGS)

book: setup       ## execute every notebook in full mode, in place, so the committed copies show real outputs
	for nb in $(NOTEBOOKS); do \
	  LMKIT_QUICK=0 LMKIT_PROGRESS=0 HF_HUB_OFFLINE=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.store_widget_state=True $$nb || exit 1; \
	  $(BIN)/python tools/check_notebooks.py --prune-widgets --outputs $$nb || exit 1; done
	$(MAKE) student

student: setup    ## student copies under student/: solutions blanked, outputs cleared (CI checks they are in sync)
	$(BIN)/python tools/student.py

html: setup       ## the offline HTML book under html/ (widget renderer served locally, fetched once with npm)
	$(BIN)/python tools/html_book.py

docs: setup       ## the API reference under html/api (pdoc); fails on a docstring cross-reference that does not resolve
	$(BIN)/python tools/docs.py --out html/api

bench: setup      ## run the benchmarks (writes benchmarks/results/*.json)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# The newest versions pyproject.toml allows (torch stays at the pinned CPU wheel: the newest torch on the index is a
# multi-GB CUDA build). Catches a new transformers/peft/accelerate release before Colab and laptops do.
LATEST := .venv-latest
test-latest:      ## unit tests + notebooks (quick mode) in a second venv with the newest allowed dependencies
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade pip
	echo "torch==$$(grep -E '^torch==' requirements.txt | cut -d= -f3)" > $(LATEST)/constraints.txt
	$(LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -c $(LATEST)/constraints.txt -e ".[test,lab,eval,preference,serve]"
	$(LATEST)/bin/python -m pip install -q --no-deps -r requirements-offline.txt
	$(LATEST)/bin/python -m pip freeze > $(LATEST)/freeze.txt
	$(LATEST)/bin/python -m lmkit prepare
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 LMKIT_QUICK=1 LMKIT_STRICT_EXERCISES=1 $(LATEST)/bin/python -m pytest -n 2 --dist loadfile \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --ignore=tests/browser \
	  tests $(NOTEBOOKS) $(PYTEST_ARGS)

gpu-check: setup  ## every notebook in quick mode on a CUDA GPU; writes gpu-report/ (refuses without a GPU)
	$(BIN)/python tools/gpu_check.py --out gpu-report

clean:
	rm -rf $(VENV) $(LATEST) .pytest_cache
