# Switchboard: `make demo` runs the app on SQLite with the provider sandbox; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_CUSTOMERS ?= 800
DEMO_DAYS ?= 180
# `make demo PORT=8100 SANDBOX_PORT=8125` moves the web app and the provider sandbox (its SMTP port
# follows one above unless SANDBOX_SMTP_PORT is given); left out, .env or the defaults (8000, 8025) decide.
PORT ?=
SANDBOX_PORT ?=
SANDBOX_SMTP_PORT ?=
DEMO_ENV = $(strip $(if $(PORT),$(if $(SWITCHBOARD_PUBLIC_URL),,SWITCHBOARD_PUBLIC_URL=http://127.0.0.1:$(PORT))) \
	$(if $(SANDBOX_PORT),SWITCHBOARD_SANDBOX_PORT=$(SANDBOX_PORT)) \
	$(if $(SANDBOX_SMTP_PORT),SWITCHBOARD_SANDBOX_SMTP_PORT=$(SANDBOX_SMTP_PORT)))
# The demo's live chat: conversations in the sandbox Slack's #live-chat and in agents' Telegram chats.
DEMO_CHAT_ENV = SWITCHBOARD_SLACK_CHAT_CHANNEL=$(or $(SWITCHBOARD_SLACK_CHAT_CHANNEL),C0LIVECHAT) \
	SWITCHBOARD_TELEGRAM_STAFF_CHATS=$(or $(SWITCHBOARD_TELEGRAM_STAFF_CHATS),1)
export SWITCHBOARD_DATABASE_URL ?= sqlite+aiosqlite:///switchboard.db

.PHONY: install demo test smoke faults lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Switchboard needs Python 3.11 or newer"' \
		|| { echo "Switchboard needs Python 3.11+ (set PYTHON=python3.11)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "python venv is missing: apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/switchboard migrate
	$(BIN)/switchboard seed --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --if-empty
	$(BIN)/switchboard rollups rebuild
	@echo "Sign in at http://127.0.0.1:$(or $(PORT),8000)/login (demo staff buttons), or: $(strip $(DEMO_ENV) $(BIN)/switchboard login-link admin@northwind.example)"
	@echo "Try the staff bot in the sandbox's Slack: http://127.0.0.1:$(or $(SANDBOX_PORT),8025)/_sandbox/slack (type /sb help)"
	@echo "Video consultations: a patient's /v/ link leads into the sandbox's Jitsi stand-in (SWITCHBOARD_JITSI_URL follows the sandbox); rooms and who entered: http://127.0.0.1:$(or $(SANDBOX_PORT),8025)/_sandbox/video"
	@echo "Live chat: a customer writes at http://127.0.0.1:$(or $(SANDBOX_PORT),8025)/_sandbox/ or on the clinic's page http://127.0.0.1:$(or $(PORT),8000)/widget/demo; agents answer in #live-chat's threads"
	$(DEMO_ENV) $(DEMO_CHAT_ENV) $(BIN)/switchboard serve --host 127.0.0.1 --port $(or $(PORT),8000)

# Every test but the fault suite (`make faults`; CI runs both). The 25 slowest are listed at the end: CI must
# finish within an hour, so that list says where the suite's time goes.
test: install
	$(BIN)/pytest -q --durations=25 --ignore=tests/faults

smoke: install
	$(BIN)/python -m tests.smoke

# The fault suite on PostgreSQL (several processes, kills, chaos, fuzzing); prints one summary line.
faults: install
	SWITCHBOARD_TEST_ENGINES=postgresql $(BIN)/pytest -q tests/faults -p no:cacheprovider

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy domain storage reports providers switchboard bot

bench: install
	$(BIN)/python bench/campaign_plan.py --quick
	$(BIN)/python bench/dispatch.py --quick
	$(BIN)/python bench/webhooks.py --quick
	$(BIN)/python bench/kpi_query.py --quick
	$(BIN)/python bench/pages.py --quick
	$(BIN)/python bench/chart.py --quick
	$(BIN)/python bench/bot.py --quick
	$(BIN)/python bench/questions.py --quick
	$(BIN)/python bench/seed.py --quick
	$(BIN)/python bench/import.py --quick
	$(BIN)/python bench/month_removal.py --quick

clean:
	rm -rf $(VENV) switchboard.db switchboard.db-wal switchboard.db-shm .mypy_cache .ruff_cache .pytest_cache
