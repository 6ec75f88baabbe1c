# The two commands: `make lab` opens the course, `make test` checks all of it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Jupyter refuses to run as root unless told; containers and CI often are root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

CHROMIUM ?= /usr/bin/chromium

.PHONY: lab test lint unit notebooks test-browser workshop-kit clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test]"
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

test: lint unit notebooks

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/pytest tests -q

notebooks: $(STAMP)
	$(BIN)/pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=60 notebooks/

# Not part of `make test`: it needs Debian's chromium (`apt-get install chromium`).
test-browser: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[browser]"
	@test -x $(CHROMIUM) || { echo "test-browser needs Chromium at $(CHROMIUM): apt-get install chromium"; exit 1; }
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest browser -q

# Not part of `make test`: it downloads wheels for every platform (see docs/workshop.md).
workshop-kit: $(STAMP)
	$(BIN)/python benchmarks/workshop_kit.py --out pirate-kit

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
