#!/usr/bin/env bash
# Installs everything rollout needs to build, test and benchmark, from Debian 12's archive.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libyaml-cpp-dev libboost-dev libcurl4-openssl-dev libfmt-dev libsqlite3-dev libssl-dev libpq-dev postgresql
  doctest-dev nlohmann-json3-dev libsimdjson-dev libcli11-dev
  clang clang-format libclang-rt-14-dev python3 python3-pytest python3-requests python3-yaml python3-jsonschema python3-psycopg2 curl sqlite3
  chromium chromium-driver graphviz
)

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
