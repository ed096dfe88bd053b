#!/bin/sh
# Imports the newsflow Kibana objects (data view "news", its Lens visualizations, the dashboard)
# from saved-objects.ndjson. Run by the compose service kibana-setup, or by hand against any
# Kibana. POSIX sh and curl only, so it runs in the curlimages/curl image as it is.
set -eu

usage() {
	cat <<'EOF'
Usage: import-saved-objects.sh [--help]

Waits until Kibana answers /api/status, then imports the newsflow saved objects (the data
view "news" on published_at, the Lens visualizations and the dashboard "newsflow — news
overview") with POST /api/saved_objects/_import?overwrite=true. Safe to run again: every
object has a fixed id and is overwritten, nothing is duplicated.

Environment:
  KIBANA_URL            Kibana's base URL (default http://localhost:5601)
  SAVED_OBJECTS_FILE    the file to import (default saved-objects.ndjson beside this script)
  KIBANA_WAIT_SECONDS   how long to wait for Kibana to come up (default 300)

Exit status: 0 all objects imported; 1 Kibana did not come up in time or rejected the
import (its response, with the per-object errors, is printed); 2 bad arguments or no file.
EOF
}

case "${1:-}" in
	"") ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
esac

kibana=${KIBANA_URL:-http://localhost:5601}
kibana=${kibana%/}
file=${SAVED_OBJECTS_FILE:-$(dirname "$0")/saved-objects.ndjson}
wait_seconds=${KIBANA_WAIT_SECONDS:-300}
poll_seconds=5

if [ ! -r "$file" ]; then
	echo "error: cannot read $file; set SAVED_OBJECTS_FILE to the saved-objects.ndjson to import" >&2
	exit 2
fi

waited=0
until curl -fsS -o /dev/null "$kibana/api/status" 2>/dev/null; do
	if [ "$waited" -ge "$wait_seconds" ]; then
		echo "error: Kibana at $kibana did not answer /api/status within ${wait_seconds}s;" \
			"check that it runs (docker compose logs kibana) and that KIBANA_URL points at it" >&2
		exit 1
	fi
	sleep "$poll_seconds"
	waited=$((waited + poll_seconds))
done

expected=$(grep -c . "$file")
echo "importing $expected saved objects from $file into $kibana"
if ! response=$(curl -sS -w '\n%{http_code}' -X POST -H 'kbn-xsrf: true' \
	--form "file=@$file" "$kibana/api/saved_objects/_import?overwrite=true"); then
	echo "error: the import request to $kibana failed (see curl's message above)" >&2
	exit 1
fi
status=$(printf '%s\n' "$response" | tail -n 1)
body=$(printf '%s\n' "$response" | sed '$d')
count=$(printf '%s\n' "$body" | sed -n 's/.*"successCount"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p')

if [ "$status" != 200 ] || ! printf '%s\n' "$body" | grep -Eq '"success"[[:space:]]*:[[:space:]]*true'; then
	echo "error: Kibana rejected the import (HTTP $status); its response:" >&2
	printf '%s\n' "$body" >&2
	echo "fix the objects in $file (the errors name each object) and run this again" >&2
	exit 1
fi
if [ "$count" != "$expected" ]; then
	echo "error: Kibana imported ${count:-no} of $expected objects; its response:" >&2
	printf '%s\n' "$body" >&2
	exit 1
fi
echo "imported $count saved objects; dashboard: $kibana/app/dashboards#/view/newsflow-overview"
