#!/usr/bin/env bash
# System packages newsflow needs on Debian/Ubuntu: a JDK (17+) and Maven for the local Kafka and
# Elasticsearch, setpriv to run Elasticsearch unprivileged, Apertium with its language pairs for
# offline translation (and tcmalloc, which makes its programs cheaper), Hunspell dictionaries for the index's language analyzers, Chromium for the
# web page's test, openssl for the HTTPS fetcher tests'
# throwaway certificates and kubectl for the manifest checks. Installs only what is missing.
set -euo pipefail
missing=()
java_major=$(java -version 2>&1 | sed -nE 's/.*version "(1\.)?([0-9]+).*/\2/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then missing+=(openjdk-17-jdk-headless); fi
command -v mvn >/dev/null || missing+=(maven)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v openssl >/dev/null || missing+=(openssl)
# kubectl renders deploy/kubernetes (kustomize) for the offline manifest checks.
command -v kubectl >/dev/null || missing+=(kubernetes-client)
# chromium: the web page's end-to-end test drives Debian's browser (no browser downloads).
# hunspell-*: dictionaries for the index's language analyzers (the stack copies them into ES).
hunspell=$(sed -nE 's/^[a-z]{2}_[A-Z]{2} (hunspell-[a-z-]+)$/\1/p' \
  "$(dirname "$0")/../elasticsearch/hunspell-dictionaries.txt")
# libtcmalloc-minimal4: the Apertium programs run 15-20% cheaper with it (docs/QUALITY.md).
for package in apertium apertium-eng-spa apertium-es-pt apertium-fr-es libtcmalloc-minimal4 \
  chromium $hunspell; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present (java ${java_major}, maven, setpriv, apertium pairs)"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
