# The two commands of the README: `make run` and `make test`.
# Everything installs into .venv from PyPI, with the versions pinned in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
export BOUSOL_ENV ?= development

.PHONY: install run test lint bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Set up the SQLite database, load the demo (once), serve on http://127.0.0.1:5000
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask bousol demo
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# Lint, then the whole suite: SQLite always; PostgreSQL and Chromium when present.
test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/payments.py

clean:
	rm -rf $(VENV) instance/*.sqlite3*
