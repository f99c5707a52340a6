#!/usr/bin/env bash
# Install StoreLens, build a demo store on the embedded local backend and start
# the dashboard. README.md documents this command.
#
#   bash scripts/demo.sh                 # http://localhost:8501
#   STORELENS_DEMO_PASSWORD=... bash scripts/demo.sh
#   STORELENS_DATA_DIR=/tmp/storelens bash scripts/demo.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=${STORELENS_VENV:-.venv}

step() { printf '\n==> %s\n' "$*"; }

step "Python environment in $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip uv
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r requirements.txt -e .

DATA_DIR=${STORELENS_DATA_DIR:-$PWD/data}
export STORELENS_DATA_DIR=$DATA_DIR

if [ ! -f "$DATA_DIR/.demo-built" ]; then
    step "Building demo data in $DATA_DIR (first run only; about a minute)"
    "$VENV/bin/python" -m simulator demo
    touch "$DATA_DIR/.demo-built"
fi

if ! "$VENV/bin/storelens" users list | grep -q '^admin'; then
    PASSWORD=${STORELENS_DEMO_PASSWORD:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))')}
    printf '%s\n' "$PASSWORD" | "$VENV/bin/storelens" users add admin --role admin --password-stdin >/dev/null
    step "Dashboard login: admin / $PASSWORD   (change it: storelens users add admin --role admin --replace)"
fi

step "Starting the dashboard on http://localhost:8501 (Ctrl+C to stop)"
exec "$VENV/bin/streamlit" run app.py --server.headless true --browser.gatherUsageStats false "$@"
