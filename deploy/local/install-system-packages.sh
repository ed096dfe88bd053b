#!/usr/bin/env bash
# Debian/Ubuntu packages newsflow needs, installing only what is missing (apt-get, with sudo
# unless root).
#
#   bash deploy/local/install-system-packages.sh [--test]
#
# What runs newsflow (the quickstart): python3-venv where Debian splits it out, a JDK (17+) and
# Maven for the local Kafka and Elasticsearch, setpriv to run Elasticsearch unprivileged, openssl
# for the secured stack's certificates, Apertium with its language pairs for offline translation
# (and tcmalloc, which makes its programs cheaper), Hunspell dictionaries for the index's
# language analyzers. --test adds what only the test suite uses (CI): Chromium for the web
# page's end-to-end test and kubectl for the Kubernetes manifest checks.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  --test) test=true ;;
  "") test=false ;;
  *) echo "install-system-packages.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
missing=()
# Debian's python3 has no ensurepip (so no venv) without python3-venv.
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
java_major=$(java -version 2>&1 | sed -nE 's/.*version "(1\.)?([0-9]+).*/\2/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then missing+=(openjdk-17-jdk-headless); fi
command -v mvn >/dev/null || missing+=(maven)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
# hunspell-*: dictionaries for the index's language analyzers (the stack copies them into ES).
mapfile -t hunspell < <(sed -nE 's/^[a-z]{2}_[A-Z]{2} (hunspell-[a-z-]+)$/\1/p' \
  "$(dirname "$0")/../elasticsearch/hunspell-dictionaries.txt")
# libtcmalloc-minimal4: the Apertium programs run 15-20% cheaper with it (docs/QUALITY.md).
packages=(apertium apertium-eng-spa apertium-es-pt apertium-fr-es libtcmalloc-minimal4 "${hunspell[@]}")
if $test; then
  # chromium: the web page's end-to-end test drives Debian's browser (no browser downloads).
  packages+=(chromium)
  # kubectl renders deploy/kubernetes (kustomize) for the offline manifest checks.
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
fi
for package in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
what="runtime"; if $test; then what="runtime and test"; fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages ($what): all present (java ${java_major}, maven, apertium pairs, ...)"
  exit 0
fi
echo "system packages ($what): installing ${missing[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
