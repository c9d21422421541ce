# Quick start: `make demo` runs the labeling pipeline on the bundled examples; `make test` runs the tests.
# Both create the virtualenv (.venv) and install everything on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MIRROR := s3://example-feedback-bucket/=examples
DEMO := demo-out

.PHONY: install system-deps demo serve-demo test lint schema bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# checkov (CloudFormation checks in tests/test_cloudformation.py) lives in its own environment: it pins
# boto3==1.35.49, packaging<24 and networkx<2.7, which would downgrade the project's own.
# Its whole dependency set is frozen (scripts/checkov-requirements.txt: checkov 3.3.30 and what it
# resolved to when the checks last passed), so a new release of one of them cannot change a verdict.
CHECKOV_REQUIREMENTS := scripts/checkov-requirements.txt
CHECKOV_VENV := $(VENV)/tools/checkov

$(CHECKOV_VENV)/.installed: $(CHECKOV_REQUIREMENTS)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r $(CHECKOV_REQUIREMENTS)
	touch $@

install: $(VENV)/.installed $(CHECKOV_VENV)/.installed

system-deps:
	@scripts/system-deps.sh

JOB := $(DEMO)/local-call-center
OUTPUT := $(JOB)/manifests/output/output.manifest

# The whole loop on the bundled examples, offline: manifest -> local Ground Truth job (3 seeded
# simulated workers who disagree a little and fix the known ASR errors, real Lambdas) -> training
# data, merged feedback and a dataset report. Byte-identical on every run.
demo: install
	@rm -rf $(JOB)  # the simulated job from scratch; other jobs under $(DEMO) (yours) are kept
	$(BIN)/gtkit manifest build examples/feedback/processed_feedback.jsonl \
		--out $(DEMO)/manifest.jsonl --errors $(DEMO)/manifest-problems.jsonl --mirror $(MIRROR)
	$(BIN)/gtkit local-job run --manifest $(DEMO)/manifest.jsonl --schema call-center --workers 3 \
		--out $(DEMO) --simulate --corrections examples/asr-corrections.yaml --mirror $(MIRROR)
	@$(MAKE) --no-print-directory -j2 --output-sync=target demo-outputs
	@$(BIN)/python scripts/demo_sample.py $(DEMO)
	@echo
	@echo "Demo done, everything under $(DEMO)/:"
	@echo "  manifest.jsonl                  Ground Truth input manifest (skipped chat records: manifest-problems.jsonl)"
	@echo "  local-call-center/              the local job, in Ground Truth's output layout"
	@echo "  sft-transcription.trl.jsonl     TRL conversational SFT records (corrected transcripts), PII redacted"
	@echo "  preference-correction.trl.jsonl TRL preference pairs: human correction (chosen) vs ASR text (rejected)"
	@echo "  reward-segments.jsonl           per-call scores and labelled spans"
	@echo "  sft-summary.trl.jsonl           TRL SFT records: transcript -> the workers' summary"
	@echo "  feedback-with-labels.jsonl      feedback records with their human labels merged in"
	@echo "  report.html                     dataset report"
	@echo "Label the same tasks yourself in the browser:"
	@echo "  $(BIN)/gtkit local-job run --manifest $(DEMO)/manifest.jsonl --schema call-center --workers 1 --out $(DEMO) --job-name my-labels --mirror $(MIRROR)"
	@echo "Or on the labeling service, with accounts and a database (docs/serve.md):"
	@echo "  make serve-demo"

# The demo's tasks on the self-hosted service: a SQLite database in $(SERVE), an admin with a
# generated password (kept in $(SERVE)/admin-password, mode 600), a team and a job; then the server on
# http://127.0.0.1:$(SERVE_PORT)/ until Ctrl-C. Rerunning keeps the database (and what was labeled).
SERVE := $(DEMO)/serve
SERVE_PORT ?= 8080
serve-demo: install
	@test -f $(DEMO)/manifest.jsonl || $(BIN)/gtkit manifest build examples/feedback/processed_feedback.jsonl \
		--out $(DEMO)/manifest.jsonl --errors $(DEMO)/manifest-problems.jsonl --mirror $(MIRROR) -q
	@mkdir -p $(SERVE)
	@test -f $(SERVE)/admin-password || (umask 077; $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(18))" > $(SERVE)/admin-password)
	@if [ ! -f $(SERVE)/gtkit.db ]; then \
		$(BIN)/gtkit serve init --data $(SERVE) --admin-email admin@example.org --password-file $(SERVE)/admin-password && \
		$(BIN)/gtkit serve team add calls --data $(SERVE) && \
		$(BIN)/gtkit serve team member calls admin@example.org --data $(SERVE) && \
		$(BIN)/gtkit serve job create --name demo-calls --team calls --workers 1 --manifest $(DEMO)/manifest.jsonl \
			--schema call-center --mirror $(MIRROR) --data $(SERVE); \
	else $(BIN)/gtkit serve init --data $(SERVE); fi
	@echo "Sign in at http://127.0.0.1:$(SERVE_PORT)/ as admin@example.org, password in $(SERVE)/admin-password; Ctrl-C stops."
	@echo "Labels go to $(SERVE)/output/demo-calls/ (Ground Truth's layout; gtkit export reads it)."
	$(BIN)/gtkit serve run --data $(SERVE) --host 127.0.0.1 --port $(SERVE_PORT) --plain-http --mirror $(MIRROR)

# The outputs of the demo's job, independent of each other: built two at a time (-O keeps each
# command's output together).
DEMO_OUTPUTS := demo-sft demo-preference demo-reward demo-summary demo-merge demo-report
.PHONY: demo-outputs $(DEMO_OUTPUTS)
demo-outputs: $(DEMO_OUTPUTS)
demo-sft:
	$(BIN)/gtkit export --labels $(OUTPUT) --preset sft-transcription --format trl --out $(DEMO)/sft-transcription.trl.jsonl
demo-preference:
	$(BIN)/gtkit export --labels $(OUTPUT) --preset preference-correction --format trl --out $(DEMO)/preference-correction.trl.jsonl
demo-reward:
	$(BIN)/gtkit export --labels $(OUTPUT) --preset reward-segments --format jsonl --out $(DEMO)/reward-segments.jsonl
demo-summary:
	$(BIN)/gtkit export --labels $(OUTPUT) --preset sft-summary --format trl --out $(DEMO)/sft-summary.trl.jsonl
demo-merge:
	$(BIN)/gtkit merge --feedback examples/feedback/processed_feedback.jsonl --labels $(OUTPUT) \
		--out $(DEMO)/feedback-with-labels.jsonl
demo-report:
	$(BIN)/gtkit report --labels $(OUTPUT) --out $(DEMO)/report.html

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest
	@if [ -d tests/js ]; then node --test tests/js/; fi

lint: install
	$(BIN)/ruff check .

schema: install
	$(BIN)/gtkit schema export --out static/schema --contract static/js/contract.js

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache
