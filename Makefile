# glocal: the README's commands. `make test` and `make reproduce` set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# Notebooks run at once (each kernel gets cores / JOBS CPU threads unless a profile sets them).
JOBS ?= 2
# The offline copy of the public data beside the checkout, when there is one; without it (a plain
# clone) glocal downloads the same files with checksums, or reads GLOCAL_DATA_DIR if you set it.
GLOCAL_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data))
ifneq ($(GLOCAL_DATA_DIR),)
export GLOCAL_DATA_DIR
endif

.PHONY: setup test test-fast lint bench reproduce book clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# On these machines torch and torchvision come from local disk at these exact versions.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev,book,features,shift]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q --durations=25

# The tests that take under ~10 s each (no fits on real features, no book build, no started
# clusters or second processes); the slow tier is marked @pytest.mark.slow.
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy glocal companion

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done
	$(PY) benchmarks/collect.py

# Run the notebooks of PROFILE (quick | paper | smoke | tiny) with papermill, re-running only those
# whose cache key changed, then build the book into _build/html. JOBS=2 runs two notebooks at once.
# paper and smoke first prepare their inputs (notebooks/profiles/prepare.json): fetch data, extract
# every missing feature store in shards on a Dask engine, run the searches and fits. PROFILE=smoke
# does all of it offline on generated miniature data and random-weight models (minutes, CPU);
# `.venv/bin/glocal reproduce --profile paper --plan` lists what the paper profile still needs.
reproduce: setup
	$(PY) -m companion --profile $(PROFILE) $(if $(JOBS),--jobs $(JOBS))

# Only build the book from the executed notebooks of PROFILE (notebooks/executed/PROFILE/).
book: setup
	$(PY) -m companion --profile $(PROFILE) --book-only

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache _build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
