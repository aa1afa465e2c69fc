# dnswatch — every entry point a newcomer or CI needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# OS packages the test suite uses (tshark is the oracle for what a capture holds; PostgreSQL is the
# collector's multi-replica store, tested against a real server the suite starts; the live-capture testbed
# runs dnsmasq as cluster DNS, dig/kdig as pods and dnsperf for load, in namespaces made with iproute2;
# rsyslog, with its TLS driver, is the real syslog receiver of the forwarding tests; Chromium is the browser
# the web UI's tests drive with Playwright).
APT_PACKAGES := tshark postgresql dnsmasq-base dnsutils knot-dnsutils dnsperf iproute2 rsyslog rsyslog-gnutls \
                chromium

.PHONY: venv demo test bench fuzz apt lint clean

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing OS packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# KEEP=1 leaves the demo's collector running with its events and web UI; the last line says how to stop it.
demo: venv
	$(PY) -m pcaps.make_demo --check
	$(PY) -m pcaps.demo $(if $(KEEP),--keep)

# The import contracts and ruff's checks ([tool.importlinter] and [tool.ruff] in pyproject.toml).
lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

test: apt venv lint
	$(PY) -m pytest

bench: venv
	$(PY) -m bench.run

# Every fuzz target of fuzz/ in turn, FUZZ_SECONDS each (docs/fuzzing.md); `make test` runs each for seconds.
FUZZ_SECONDS ?= 60
fuzz: venv
	$(PY) -m fuzz --all --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) bench/.cache
