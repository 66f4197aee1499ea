#!/usr/bin/env bash
# `make run`: the main job on the embedded default (SQLite + ./data), using only
# what exists today. Re-running it continues where it stopped.
set -euo pipefail
synset=.venv/bin/synset
export SYNSET_DATABASE_URL=${SYNSET_DATABASE_URL:-sqlite:///./synset.db}
export SYNSET_DATA_DIR=${SYNSET_DATA_DIR:-./data}

echo "== synset init"
$synset init
echo "== synset status"
$synset status --all
