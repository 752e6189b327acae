# Shared helpers for scripts/*; sourced, not run.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLOOR_VENV=$ROOT/.venv
AGENT311_VENV=$ROOT/.venv-agent311
CURRENT_VENV=$ROOT/.venv-ha-current

say() { printf '==> %s\n' "$*" >&2; }

# Print the path of a Python matching $1 (e.g. 3.13), from pyenv or PATH; fail quietly.
find_python() {
  local want=$1 root cand
  if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for cand in "$root"/versions/"$want"*/bin/python"$want"; do
      [ -x "$cand" ] && { echo "$cand"; return 0; }
    done
  fi
  cand=$(command -v "python$want" 2>/dev/null) && "$cand" -c 'import sys' 2>/dev/null && { echo "$cand"; return 0; }
  return 1
}

# Print the Python 3.14 for the current HA line: $PYTHON314, else python3.14 on PATH.
find_python314() {
  if [ -n "${PYTHON314:-}" ] && [ -x "$PYTHON314" ]; then echo "$PYTHON314"; return 0; fi
  command -v python3.14 2>/dev/null
}

# Make venv $1 with interpreter $2 and install requirement args $3...; skipped when the stamp
# (a hash of the interpreter, the requirement files and the agent's pyproject) is unchanged.
ensure_venv() {
  local venv=$1 python=$2; shift 2
  local stamp_file=$venv/.qr_charging-stamp stamp
  stamp=$( { "$python" -VV; cat "$ROOT"/requirements_*.txt "$ROOT"/pi_mqtt_relay/pyproject.toml; echo "$*"; } | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && [ -x "$venv/bin/python" ]; then
    return 0
  fi
  say "installing into $(basename "$venv") ($("$python" -V))"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  if [ ! -x "$venv/bin/pip" ]; then
    # Debian's python3.14 may lack ensurepip; then borrow pip from the interpreter we were given.
    "$venv/bin/python" -m ensurepip -q 2>/dev/null ||
      "$python" -m pip --python "$venv/bin/python" install -q pip
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
  echo "$stamp" >"$stamp_file"
}
