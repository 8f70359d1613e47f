#!/usr/bin/env bash
# Validate everything under dashboards/ plus the compose file: the generated dashboards are
# current, the Prometheus rules and config load, the rule unit tests pass, compose parses.
# Needs: .venv (grafana-foundation-sdk), promtool (Debian: prometheus), docker-compose
# (Debian: docker-compose; it validates without a Docker engine). Under CI=true nothing may be
# skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
CI="${CI:-}"

step() { printf '[dashboards] %s\n' "$*"; }
missing() {
  if [[ "$CI" == "true" ]]; then
    printf '[dashboards] ERROR: %s is not installed (required under CI=true)\n' "$1" >&2
    exit 1
  fi
  printf '[dashboards] SKIP: %s is not installed; %s\n' "$1" "$2" >&2
}

step "dashboards are current (build.py --check)"
"$PY" dashboards/build.py --check
step "rules.yml is current (driftd rules --config deploy/compose/driftd.toml)"
"$PY" -c 'from driftd.cli.rules import rules; rules(["--config", "deploy/compose/driftd.toml"])' \
  | diff -u dashboards/prometheus/rules.yml -

if command -v promtool >/dev/null 2>&1; then
  step "promtool check rules"
  promtool check rules dashboards/prometheus/rules.yml
  step "promtool test rules"
  (cd dashboards/prometheus && promtool test rules rules_test.yml rules_test_long.yml)
  step "promtool check config"
  promtool check config dashboards/prometheus/prometheus.yml
else
  missing promtool "install Debian's prometheus package"
fi

if command -v docker-compose >/dev/null 2>&1; then
  step "docker-compose config -q"
  docker-compose -f docker-compose.yml config -q
else
  missing docker-compose "install it with: apt-get install -y --no-install-recommends docker-compose"
fi

step "OK"
