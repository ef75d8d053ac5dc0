# Uptally: `make run` to try it, `make test` to check it. Everything lives in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DATA ?= data

.PHONY: run test build debug lint fmt bench fuzz clean

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
	$(PY) -m pytest -q
	UPTALLY_NO_EXTENSIONS=1 $(PY) -m pytest -q

bench: build
	$(PY) -m bench

fuzz: build
	$(PY) fuzz/fuzz_decode.py -max_total_time=600

run: build
	$(VENV)/bin/uptally demo --data $(DATA)
	$(VENV)/bin/uptally serve --data $(DATA)

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
