# The README's two commands (`make chaos`, `make test`) do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test chaos bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/pytest

# SC-1, seed sc1-1, 50 iterations, 4 independent slots (README: why), on the Compose stack where a Docker engine answers, else on
# the embedded local stack (it says which).
chaos: install
	$(BIN)/simcity sc1 --seed sc1-1 --iterations 50 --slots 4 --stack auto

bench: install
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) build *.egg-info reports
