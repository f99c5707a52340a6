#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine with
# Python 3.11, then run the whole suite. README.md documents this command and
# .ci/run calls it, so CI proves the README.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh tests/core # extra args go to the main pytest run
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=${STORELENS_VENV:-.venv}
CACHE=${STORELENS_CACHE:-$PWD/.cache}
mkdir -p "$CACHE"
export STORELENS_PHOTO_CACHE=${STORELENS_PHOTO_CACHE:-$CACHE/photos}
# The suite needs everything this script installs, so a skipped test means
# something is broken: tests/conftest.py fails skips when CI is set.
export CI=${CI:-true}

step() { printf '\n==> %s\n' "$*"; }

# --- system packages: a real browser, a real MQTT broker -----------------------
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    step "apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- the project's virtual environment -----------------------------------------
step "Python environment in $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip uv
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r requirements-test.txt -e .

# --- the asl-validator for the Step Functions definition (npm) -----------------
if [ -f infra/package.json ]; then
    step "npm install (infra checks)"
    (cd infra && npm ci --no-audit --no-fund --silent)
fi

# --- MXNet lives in its own environment: it needs numpy < 1.24 -----------------
if [ -f requirements-mxnet.txt ]; then
    step "MXNet environment in $VENV-mxnet"
    [ -x "$VENV-mxnet/bin/python" ] || "$PYTHON" -m venv "$VENV-mxnet"
    "$VENV-mxnet/bin/python" -m pip install -q --upgrade pip
    "$VENV-mxnet/bin/python" -m pip install -q -r requirements-mxnet.txt
    step "MXNet detector tests"
    "$VENV-mxnet/bin/python" -m pytest -p no:cacheprovider -p no:warnings -o addopts="" tests/mxnet -q
fi

# --- sam validate --lint: aws-sam-cli pins an older boto3/click, so its own env --
if [ -f requirements-sam.txt ]; then
    step "sam validate --lint (aws-sam-cli in $VENV-sam)"
    [ -x "$VENV-sam/bin/python" ] || "$PYTHON" -m venv "$VENV-sam"
    "$VENV/bin/uv" pip install -q --python "$VENV-sam/bin/python" -r requirements-sam.txt
    SAM_CLI_TELEMETRY=0 "$VENV-sam/bin/sam" validate --lint -t infra/template.yaml --region eu-west-1
fi

step "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

step "mypy (strict on core/, deeplens_lambda/, simulator/; see pyproject.toml)"
"$VENV/bin/mypy"

step "pytest"
"$VENV/bin/python" -m pytest "$@"
