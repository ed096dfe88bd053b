#!/bin/sh
# Puts the Hunspell dictionaries the news index template needs into an Elasticsearch config
# directory, as config/hunspell/<locale>/<locale>.aff and .dic. The official Elasticsearch image
# has no dictionaries; compose and Kubernetes run this in a Debian init container that shares
# the target directory with the node. The local stack (`newsflow stack up`) copies them itself.
set -eu
usage() {
  echo "usage: hunspell.sh TARGET_DIR   (e.g. /usr/share/elasticsearch/config/hunspell)"
  echo "Installs the Debian packages listed in hunspell-dictionaries.txt when missing (needs"
  echo "apt-get and root) and copies each <locale>.aff/.dic into TARGET_DIR/<locale>/."
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
target=$1
list="$(dirname "$0")/hunspell-dictionaries.txt"
source_dir=/usr/share/hunspell
missing=""
while read -r locale package; do
  case "$locale" in ''|'#'*) continue ;; esac
  [ -f "$source_dir/$locale.dic" ] || missing="$missing $package"
done < "$list"
if [ -n "$missing" ]; then
  echo "hunspell: installing$missing"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
while read -r locale package; do
  case "$locale" in ''|'#'*) continue ;; esac
  mkdir -p "$target/$locale"
  cp -L "$source_dir/$locale.aff" "$source_dir/$locale.dic" "$target/$locale/"
  echo "hunspell: $locale ($package) -> $target/$locale"
done < "$list"
