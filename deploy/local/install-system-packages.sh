#!/usr/bin/env bash
# System packages the local stack needs: a JDK (17+) to run Kafka and Elasticsearch, and Maven
# to resolve their jars from Maven Central. Skips what is already installed.
set -euo pipefail
missing=()
java_major=$(java -version 2>&1 | sed -nE 's/.*version "(1\.)?([0-9]+).*/\2/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then missing+=(openjdk-17-jdk-headless); fi
command -v mvn >/dev/null || missing+=(maven)
command -v setpriv >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: java ${java_major}, maven and setpriv already installed"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
