# Uptally: `make run` to try it, `make test` to check it. Everything lives in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DATA ?= data

.PHONY: run test check build debug lint fmt bench fuzz clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "Cython==3.2.9" "numpy>=2.0" "setuptools>=77" wheel
	$(PY) -m pip install -q --no-build-isolation -e '.[dev]'
	touch $(STAMP)

build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

debug: $(STAMP)
	UPTALLY_DEBUG_BUILD=1 $(PY) setup.py -q build_ext --inplace --force

test: build
	@command -v chromium >/dev/null || { echo "make test: the dashboard's browser tests" \
		"need Debian's chromium (sudo apt-get install chromium)"; exit 1; }
	$(PY) -m pytest -q
	@# the twin again, for what the first pass ran on the extension only
	UPTALLY_NO_EXTENSIONS=1 $(PY) -m pytest -q -m "not both_engines"

# the fast loop: one pass, no soak, crash, overload or browser suites (about a minute)
check: build
	$(PY) -m pytest -q -m "not slow and not browser"

bench: build
	$(PY) -m bench

fuzz: build
	$(PY) fuzz/fuzz_decode.py -max_total_time=600

# the server in the background, stopped with the dashboard (Ctrl-C)
run: build
	$(VENV)/bin/uptally demo --data $(DATA)
	@echo "API on http://127.0.0.1:8080, dashboard on http://127.0.0.1:8501;" \
		"sign in with a token of $(DATA)/demo-tokens.json"
	$(VENV)/bin/uptally serve --data $(DATA) & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server' EXIT INT TERM; \
	$(VENV)/bin/uptally dashboard --data $(DATA)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PATH=$(VENV)/bin:$$PATH $(VENV)/bin/cython-lint --max-line-length 100 core/_rollup.pyx core/_rollup.pxd core/*.pxi
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf build core/_rollup.c core/*.so core/*.html .pytest_cache .hypothesis
