#!/usr/bin/env bash
# Install newsflow with its dev extra (tests, linters) into a virtual environment: the one way
# the quickstart, CI, the newest-releases check and the lock script install Python packages.
#
#   bash deploy/python-env.sh DIR [--fresh] [--constraints FILE | --newest]
#
# DIR is created if it is not a virtual environment yet (--fresh: deleted first, so nothing an
# earlier install left there can hide a missing dependency). Packages are installed with
# deploy/requirements.lock as constraints (--constraints: another file; --newest: none, the
# newest releases pyproject.toml allows). A virtual environment of its own, never the system's
# Python: Debian and Ubuntu refuse pip there (PEP 668, "externally managed").
# PYTHON chooses the interpreter (default python3; 3.11 or newer).
set -euo pipefail
usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; }
root=$(cd "$(dirname "$0")/.." && pwd)
dir=""; fresh=false; constraints=("-c" "$root/deploy/requirements.lock"); label="the lock"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --fresh) fresh=true ;;
    --newest) constraints=(); label="no constraints: newest releases" ;;
    --constraints) constraints=("-c" "$2"); label="$2"; shift ;;
    -*) echo "python-env.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) dir=$1 ;;
  esac
  shift
done
[ -n "$dir" ] || { usage >&2; exit 2; }
python=${PYTHON:-python3}
started=$(date +%s)

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "python env: newsflow needs Python 3.11 or newer; $python is $("$python" -V 2>&1 || echo missing)." >&2
  echo "Install python3.11 (Debian 12 ships it) and run again with PYTHON=python3.11." >&2
  exit 1
fi
if $fresh && [ -e "$dir" ]; then
  echo "python env: deleting $dir (a fresh one is wanted)"
  rm -rf "$dir"
fi
if [ ! -x "$dir/bin/python" ]; then
  echo "python env: creating $dir with $("$python" -V)"
  "$python" -m venv "$dir"
fi
pip=("$dir/bin/python" -m pip --disable-pip-version-check)
echo "python env: pip, then newsflow[dev] ($label)"
"${pip[@]}" install --quiet "${constraints[@]}" --upgrade pip
"${pip[@]}" install "${constraints[@]}" -e "${root}[dev]"
count=$("${pip[@]}" list --format=freeze | wc -l)
echo "python env: $count packages in $dir ($(( $(date +%s) - started ))s)"
