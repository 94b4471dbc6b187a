#!/usr/bin/env bash
# Create .venv with the Python from .python-version and (re)install requirements.lock whenever it changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want="$(cat .python-version 2>/dev/null || echo 3.13.0)" # e.g. 3.13.0
minor="${want%.*}"                                      # e.g. 3.13
stamp=.venv/.installed

venv_ok() { [[ -x .venv/bin/python ]] && [[ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "$minor" ]]; }

if ! venv_ok; then
  py=""
  for c in "${PYTHON:-}" "$HOME/.pyenv/versions/$want/bin/python" "/root/.pyenv/versions/$want/bin/python" "python$minor"; do
    if [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1; then py="$(command -v "$c")"; break; fi
  done
  [[ -n "$py" ]] || { echo "error: Python $minor not found (tried pyenv $want and python$minor on PATH; or set PYTHON=...)" >&2; exit 1; }
  echo ">> creating .venv with $py" >&2
  rm -rf .venv
  "$py" -m venv .venv
fi

if [[ ! -f "$stamp" || requirements.lock -nt "$stamp" ]]; then
  echo ">> installing requirements.lock into .venv" >&2
  # (drop pip's noise about this machine's missing local index folders; errors still show)
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock 2>&1 |
    { grep -v "^WARNING: Location '.*' is ignored" || true; } >&2
  touch "$stamp"
fi
