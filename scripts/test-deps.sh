#!/usr/bin/env bash
# Install what the test suite needs from Debian packages, when it is missing:
# a PostgreSQL server (the tests start and stop their own instance on loopback).
set -euo pipefail

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }

if ! have_postgres; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing PostgreSQL server (Debian package) for the tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "The tests need a PostgreSQL server: apt-get install postgresql" >&2
    exit 1
  fi
fi
