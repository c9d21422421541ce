# Quick start: `make demo` runs the labeling pipeline on the bundled examples; `make test` runs the tests.
# Both create the virtualenv (.venv) and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MIRROR := s3://example-feedback-bucket/=examples
DEMO := demo-out

.PHONY: install system-deps demo test lint schema bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

system-deps:
	@scripts/system-deps.sh

demo: install
	$(BIN)/gtkit manifest build examples/feedback/processed_feedback.jsonl \
		--out $(DEMO)/manifest.jsonl --errors $(DEMO)/manifest-problems.jsonl --mirror $(MIRROR)
	@echo "Input manifest: $(DEMO)/manifest.jsonl (skipped chat records: $(DEMO)/manifest-problems.jsonl)"

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest
	@if [ -d tests/js ]; then node --test tests/js/; fi

lint: install
	$(BIN)/ruff check .

schema: install
	$(BIN)/gtkit schema export --out static/schema

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
