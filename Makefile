# Two entry points: `make demo` (set up, then run the main job) and `make test`.
# Everything is installed into .venv with the versions pinned in constraints.txt
# (torch==2.13.0 there keeps pip on the local CPU wheel).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q -c constraints.txt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup setup-test demo test clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

setup: $(PY)
	$(PIP) -e '.[train]'

setup-test: $(PY)
	$(PIP) -e '.[test]'
	@# the page tests drive Debian's headless Chromium through its chromedriver
	command -v chromedriver >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; }

demo: setup
	$(VENV)/bin/swinseg demo

test: setup-test
	$(PY) -m ruff check swinseg tests benchmarks
	$(PY) -m ruff format --check swinseg tests benchmarks
	@# two processes: in one, the suite segfaults after the runtime tests (DEVELOPERS.md, "make test")
	$(PY) -m pytest -q --ignore=tests/runtimes
	$(PY) -m pytest -q tests/runtimes

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
