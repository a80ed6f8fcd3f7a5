#!/usr/bin/env bash
# Sets up everything the tests need and runs them: pytest against real Azurite, Redis,
# PostgreSQL and SQLite. Services that are not configured through TEST_* variables are
# started by the test fixtures themselves, from the installed binaries.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "${project_dir}"

ensure_apt_packages redis-server postgresql unixodbc
ensure_node
ensure_python_venv
ensure_venv requirements-dev.txt
ensure_azurite

exec "${venv_dir}/bin/python" -m pytest "$@"
