#!/usr/bin/env bash
# `make run`: the pipeline on the embedded default (SQLite + ./data), ending with the
# annotator web app. Every step is idempotent: re-running continues where it stopped.
#
# With ../shared/testdata/photos beside the checkout (no internet needed), the demo
# imports those real photos under a few broad categories with the `dir:` source.
# Without it, it crawls Openverse for a handful of dog breeds.
set -euo pipefail
synset=.venv/bin/synset
export SYNSET_DATABASE_URL=${SYNSET_DATABASE_URL:-sqlite:///./synset.db}
export SYNSET_DATA_DIR=${SYNSET_DATA_DIR:-./data}
port=${DEMO_PORT:-8000}
user=demo
password=demo-pass-123
photos=../shared/testdata/photos
# dog, bird, snake, fish, musical instrument
categories="n02084071 n01503061 n01726692 n02512053 n03800933"

step() { printf '\n== %s\n' "$*"; }

step "synset init"
$synset init

if [ -d "$photos" ]; then
  step "synset hierarchy add $categories --depth 0"
  $synset hierarchy add $categories --depth 0
  step "building the local collection from $photos"
  .venv/bin/python scripts/demo_collection.py "$photos" "$SYNSET_DATA_DIR/demo-collection" $categories
  step "synset crawl --source dir:$SYNSET_DATA_DIR/demo-collection"
  $synset crawl --source "dir:$SYNSET_DATA_DIR/demo-collection" --per-synset 200
else
  step "synset hierarchy add n02087122 --depth 1   (hunting dog and its direct kinds)"
  $synset hierarchy add n02087122 --depth 1
  step "synset crawl --source openverse --per-synset 30"
  $synset crawl --source openverse --per-synset 30
fi

step "synset clean --dry-run"
$synset clean --dry-run
step "synset clean"
$synset clean

step "synset users add $user --role curator"
if ! printf '%s\n' "$password" | $synset users add "$user" --role curator --password-stdin 2>/tmp/synset-demo-users.err; then
  grep -qi "exists" /tmp/synset-demo-users.err || { cat /tmp/synset-demo-users.err >&2; exit 1; }
  echo "(account $user already exists)"
fi

step "synset status"
$synset status

step "synset serve --port $port"
echo "Log in at http://127.0.0.1:$port/ as '$user' with password '$password' (Ctrl-C stops the app)."
echo "Then: synset consensus; synset export OUT; synset train OUT (see README)."
exec $synset serve --host 127.0.0.1 --port "$port"
