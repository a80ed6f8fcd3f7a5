# Shared by the setup scripts: installs what the project needs, idempotently.
# shellcheck shell=bash

project_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${project_dir}/.venv"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian/Ubuntu packages named, skipping those already installed.
ensure_apt_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Installs node and npm from the distribution only when they are missing, so a Node.js from
# elsewhere (NodeSource, nvm) is left alone.
ensure_node() {
  command -v node >/dev/null 2>&1 || ensure_apt_packages nodejs
  command -v npm >/dev/null 2>&1 || ensure_apt_packages npm
}

# Debian splits venv support out of the system Python.
ensure_python_venv() {
  "$(pick_python)" -c 'import ensurepip, venv' 2>/dev/null || ensure_apt_packages python3-venv
}

pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "Python 3.11 or newer is needed" >&2
  exit 1
}

# Creates .venv when missing and installs the given requirements file into it.
ensure_venv() {
  local requirements="$1"
  if [ ! -x "${venv_dir}/bin/python" ]; then
    echo "==> creating ${venv_dir}"
    "$(pick_python)" -m venv "${venv_dir}"
  fi
  echo "==> pip install -r ${requirements}"
  "${venv_dir}/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "${venv_dir}/bin/python" -m pip install -q --disable-pip-version-check -r "${project_dir}/${requirements}"
}

# Installs Azurite (the Storage emulator) from npm into node_modules.
ensure_azurite() {
  if [ ! -x "${project_dir}/node_modules/.bin/azurite" ]; then
    echo "==> npm install (Azurite)"
    (cd "${project_dir}" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

# Waits until something listens on 127.0.0.1:$1.
wait_for_port() {
  local port="$1" tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then
      echo "nothing answers on 127.0.0.1:${port}" >&2
      return 1
    fi
    sleep 0.2
  done
}

port_is_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
