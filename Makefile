# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs; torch is installed first, pinned to the
# CPU build (any looser requirement pulls gigabytes of CUDA packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

SHARED_DATA := $(abspath ../shared/datasets)
ifeq ($(origin USERGROUPS_DATA), undefined)
  ifneq ($(wildcard $(SHARED_DATA)),)
    export USERGROUPS_DATA := $(SHARED_DATA)
  endif
endif
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[embed,align,fast,multilingual,serve,spark,bench,report,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/usergroups discover --dataset amazon2014:musical-instruments --out runs/demo
	$(BIN)/usergroups assign runs/demo --text "I need strings for my acoustic guitar" -n 5
	$(BIN)/usergroups recommend runs/demo --user ADH0O8UVJOT10 -n 5

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: lint
	$(BIN)/python -m pytest -q -ra

# The developer loop (a few minutes): every unit test but the slow ones, nothing that needs
# the shared datasets, a server, Spark, a browser or the hostile CLI suite; no lint. Markers:
# see pyproject.toml.
FAST_TESTS := not slow and not integration and not service and not spark and not browser and not hostile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "$(FAST_TESTS)"

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
