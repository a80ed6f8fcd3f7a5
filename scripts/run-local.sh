#!/usr/bin/env bash
# Sets up and runs the app locally on embedded defaults: Azurite for storage, a SQLite file
# for the database, the cache and search steps reported as skipped unless configured.
# Usage: scripts/run-local.sh [devhost options, e.g. --port 7072]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "${project_dir}"

ensure_apt_packages unixodbc
ensure_node
ensure_python_venv
ensure_venv requirements.txt
ensure_azurite

if [ ! -f local.settings.json ]; then
  cp local.settings.json.example local.settings.json
  echo "==> wrote local.settings.json from local.settings.json.example"
fi

azurite_pid=""
if port_is_open 10001; then
  echo "==> using the Azurite already listening on 127.0.0.1:10001"
else
  mkdir -p .azurite
  echo "==> starting Azurite (data in .azurite/, log in .azurite/azurite.log)"
  node_modules/.bin/azurite --silent --skipApiVersionCheck --disableTelemetry \
    --location .azurite --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
    >.azurite/azurite.log 2>&1 &
  azurite_pid=$!
  trap '[ -n "${azurite_pid}" ] && kill "${azurite_pid}" 2>/dev/null || true' EXIT
  wait_for_port 10001
fi

if command -v func >/dev/null 2>&1 && [ "${USE_DEVHOST:-}" != "1" ]; then
  echo "==> Azure Functions Core Tools found: func start"
  # shellcheck disable=SC1091
  source "${venv_dir}/bin/activate"
  func start "$@"
else
  echo "==> python -m devhost $*"
  "${venv_dir}/bin/python" -m devhost "$@"
fi
