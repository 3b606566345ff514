# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The third-party SCIM servers the tests run as real processes: scimmy (Node.js) needs its npm packages.
SCIMMY_DIR := tests/servers/scimmy
SCIMMY_STAMP := $(SCIMMY_DIR)/node_modules/.installed

# The console's browser tests (tests/console) drive Debian's chromium through Playwright
# (Playwright's own browser download is not used): installed once with apt-get when missing.
CHROMIUM ?= /usr/bin/chromium
CHROMIUM_STAMP := $(VENV)/.chromium

.PHONY: demo demo-serve test test-sqlite bench bench-scim bench-scim-targets bench-revocation bench-scale serve lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(SCIMMY_STAMP): $(SCIMMY_DIR)/package.json $(SCIMMY_DIR)/package-lock.json
	@command -v node >/dev/null || { echo "make test: node is missing; install Node.js 18+ and npm (e.g. apt-get install nodejs npm)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "make test: npm is missing; install npm (e.g. apt-get install npm)" >&2; exit 1; }
	npm ci --prefix $(SCIMMY_DIR) --no-audit --no-fund
	touch $(SCIMMY_STAMP)

$(CHROMIUM_STAMP):
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null || { echo "make test: $(CHROMIUM) is missing; install chromium" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@test -x $(CHROMIUM) || { echo "make test: $(CHROMIUM) is still missing after apt-get install chromium" >&2; exit 1; }
	@mkdir -p $(VENV) && touch $(CHROMIUM_STAMP)

.PHONY: chromium
chromium: $(CHROMIUM_STAMP)

demo: $(STAMP)
	$(BIN)/provisioner demo

demo-serve: $(STAMP)
	$(BIN)/provisioner demo --serve

# Runs on SQLite, and on PostgreSQL too when PROVISIONER_TEST_POSTGRES_URL is set
# (.ci/run sets it to the local server).
test: $(STAMP) $(SCIMMY_STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto

bench: $(STAMP)
	$(BIN)/provisioner bench lifecycle

bench-scim: $(STAMP)
	$(BIN)/provisioner bench scim

# 1,000 joiners x 5 groups into scim2-server, Bulk on and off (PostgreSQL too with
# PROVISIONER_BENCH_POSTGRES_URL set).
bench-scim-targets: $(STAMP)
	$(BIN)/provisioner bench scim-targets

# POST /hr/bulkUpload intake: 10,000 records in requests of 50, one client then 8, records/s against
# Entra's documented 40 requests/s x 50 (PostgreSQL too with PROVISIONER_BENCH_POSTGRES_URL set).
.PHONY: bench-hr-bulk
bench-hr-bulk: $(STAMP)
	$(BIN)/provisioner bench hr-bulk

# Immediate terminates during a 2,000-joiner backlog into Entra ID and a slow SCIM app: 202 ->
# verified revocation in every target (PostgreSQL too with PROVISIONER_BENCH_POSTGRES_URL set).
bench-revocation: $(STAMP)
	$(BIN)/provisioner bench revocation-backlog

# kill -9 of worker processes (and the API) mid-run, then the Graph sandbox read back against the
# policies; exits 1 if anything is lost, duplicated or wrong (PostgreSQL with
# PROVISIONER_BENCH_POSTGRES_URL set, else SQLite).
.PHONY: bench-kill-soak
bench-kill-soak: $(STAMP)
	$(BIN)/provisioner bench kill-soak --trials 10 --people 200

# Every company-scale figure in one run: 20,000 people x ~8 groups into the Graph sandbox at
# 500 writes/s, all real processes (PostgreSQL with PROVISIONER_BENCH_POSTGRES_URL set, else
# SQLite; fewer people with PEOPLE=2000). Exits 1 if an account or membership is missing.
PEOPLE ?= 20000
bench-scale: $(STAMP)
	$(BIN)/provisioner bench scale --people $(PEOPLE)

serve: $(STAMP)
	$(BIN)/provisioner serve

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info $(SCIMMY_DIR)/node_modules
