# The two commands of the README: `make run` and `make test`.
# Everything installs into .venv from PyPI, with the versions pinned in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
export BOUSOL_ENV ?= development

.PHONY: install run test test-calendar lint typecheck bench clean

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

# Lint (ruff, the import contracts), type-check the ledger, then the whole suite:
# SQLite always; PostgreSQL and Chromium when present.
test: install lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The date-sensitive tests (membership years, reminders, vouchers' expiry, notes'
# validity, closings, reports, motions, time-to-live rules) once more on each of the
# days where calendars break: the last day of a year, just after midnight on the first
# (Paris and UTC then disagree on the date), and a leap day. The clock is the ledger's
# own (BOUSOL_CLOCK, bousol/ledger/kernel/clock.py): the machine's date is not touched.
CALENDAR_DATES ?= 2027-12-31T12:00:00+01:00 2028-01-01T00:30:00+01:00 2028-02-29T12:00:00+01:00
CALENDAR_TESTS ?= tests/association/test_membership.py tests/desk/test_members.py tests/ccas/test_vouchers.py \
	tests/ccas/test_vouchers_web.py tests/ccas/test_voucher_reports.py tests/ccas/test_voucher_print.py \
	tests/desk/test_notes.py tests/desk/test_desk_notes.py tests/desk/test_closing.py tests/association/test_reports.py \
	tests/association/test_decisions.py tests/books/test_statements.py tests/association/test_fec.py \
	tests/merchants/test_payment_requests.py tests/access/test_api_tokens.py tests/web/test_spaces_web.py \
	tests/ccas/test_ccas_web.py tests/desk/test_desk.py tests/desk/test_payouts.py \
	tests/books/test_seals.py
test-calendar: install
	@for day in $(CALENDAR_DATES); do \
	    echo "== the date-sensitive tests with the clock at $$day"; \
	    BOUSOL_CLOCK=$$day $(BIN)/python -m pytest -q -m "not browser" $(PYTEST_ARGS) \
	        $(CALENDAR_TESTS) || exit 1; \
	done

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# mypy on the business rules, with the strictness and the baseline of pyproject.toml.
typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/payments.py

clean:
	rm -rf $(VENV) instance/*.sqlite3*
