#!/usr/bin/env bash
# The main job on the local default stack, from a fresh machine:
# install (apt, pip, mvn) -> start Kafka + Elasticsearch -> ingest the bundled multilingual
# samples -> run the Beam pipeline until everything is indexed -> search.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== 1/5 system packages"
bash deploy/local/install-system-packages.sh
echo "== 2/5 python packages"
python3 -m pip install --quiet -e '.[dev]'
echo "== 3/5 local stack"
newsflow stack up
echo "== 4/5 ingest and enrich"
inputs=(deploy/samples)
# The project's seed article, when this checkout sits beside the shared test data.
[ -f ../shared/seed/article.txt ] && inputs+=(../shared/seed/article.txt)
newsflow ingest files "${inputs[@]}"
newsflow pipeline run --stop-when-idle 5
echo "== 5/5 search"
for query in "carbon border" "Copa del Rey" "Lisboa"; do
  echo "--- newsflow search \"$query\""
  newsflow search "$query" --size 3
done
if [ -f ../shared/seed/article.txt ]; then
  echo '--- newsflow search Zelensky'
  newsflow search Zelensky --size 3
fi
echo
echo "Done. The stack keeps running: try 'newsflow search <words>', stop it with 'newsflow stack down'."
