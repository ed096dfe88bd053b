#!/usr/bin/env bash
# The main job on the local default stack, from a fresh Debian/Ubuntu machine:
# install (apt, pip with the lock, mvn) -> check the machine (newsflow doctor) -> start Kafka +
# Elasticsearch -> ingest the bundled multilingual samples -> run the Beam pipeline until
# everything is indexed -> search.
#
#   bash deploy/quickstart.sh
#
# Python packages go into the active virtual environment when there is one ($VIRTUAL_ENV),
# otherwise into .venv in this checkout (created if missing), never into the system's Python
# (PEP 668). The dev extra is included, so the test suite runs from the same environment:
# . .venv/bin/activate && python -m pytest
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "quickstart.sh: no options but --help" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
venv=${VIRTUAL_ENV:-$PWD/.venv}

echo "== 1/6 system packages"
bash deploy/local/install-system-packages.sh
echo "== 2/6 python packages, into $venv"
bash deploy/python-env.sh "$venv"
export PATH="$venv/bin:$PATH"
echo "== 3/6 newsflow doctor"
if ! newsflow doctor; then
  echo "quickstart: stopped; fix what newsflow doctor reports above, then run this again." >&2
  exit 1
fi
echo "== 4/6 local stack"
newsflow stack up
echo "== 5/6 ingest and enrich"
inputs=(deploy/samples)
# The project's seed article, when this checkout sits beside the shared test data.
[ -f ../shared/seed/article.txt ] && inputs+=(../shared/seed/article.txt)
newsflow ingest files "${inputs[@]}"
newsflow pipeline run --stop-when-idle 5
echo "== 6/6 search"
for query in "carbon border" "Copa del Rey" "Lisboa"; do
  echo "--- newsflow search \"$query\""
  newsflow search "$query" --size 3
done
if [ -f ../shared/seed/article.txt ]; then
  echo '--- newsflow search Zelensky'
  newsflow search Zelensky --size 3
fi
echo
echo "Done. The stack keeps running. The commands are in $venv/bin: 'source $venv/bin/activate',"
echo "then try 'newsflow search <words>'; stop the stack with 'newsflow stack down'."
