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

chaos: install
	$(BIN)/python -m toxics.demo

bench: install
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) build *.egg-info reports
