#!/usr/bin/env bash
# The package as a user gets it: `npm pack` (which builds dist/), the tarball's contents, then
# a new project that installs the tarball and effect and
#   (a) imports every subpath from plain Node (no loader) and exercises each, runs the bin,
#       and runs the examples as written (Node strips their types);
#   (b) type-checks the examples and the README's TypeScript blocks as a strict TypeScript
#       consumer (nodenext).
# Everything runs under the repository's pinned Node (node_modules/.bin comes first on PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$PATH"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "consumer check: node $(node --version), in $WORK"

cd "$ROOT"
TARBALL="$WORK/$(npm pack --silent --pack-destination "$WORK" | tail -n 1)"
CONTENTS="$(tar -tzf "$TARBALL" | sed 's#^package/##' | sort)"
for required in dist/index.js dist/index.d.ts dist/raft/index.js dist/raft/index.d.ts dist/node/index.js \
  dist/node/index.d.ts dist/node/main.js dist/testing/index.js dist/testing/index.d.ts dist/index.js.map \
  README.md LICENSE CHANGELOG.md proto/raft.proto package.json; do
  grep -qx "$required" <<<"$CONTENTS" || { echo "the tarball lacks $required" >&2; exit 1; }
done
if grep -E '^(test|bench|examples|scripts|\.ci|docs)/|^tsconfig|^vitest' <<<"$CONTENTS"; then
  echo "the tarball ships files users have no use for (above)" >&2
  exit 1
fi
echo "tarball: $(wc -l <<<"$CONTENTS") files, $(du -k "$TARBALL" | cut -f1) KiB"

EFFECT_VERSION="$(node -p 'require("./node_modules/effect/package.json").version')"
CONSUMER="$WORK/consumer"
mkdir -p "$CONSUMER/examples"
cp scripts/consumer/check.mjs scripts/consumer/tsconfig.json "$CONSUMER/"
cp examples/two-nodes.ts examples/using-it.ts examples/custom-state-machine.ts "$CONSUMER/examples/"
# Every ```ts block of the README, one module each, for the type check.
mkdir -p "$CONSUMER/readme"
awk -v dir="$CONSUMER/readme" '/^```ts$/ { n++; inside = 1; next } /^```$/ { inside = 0 } inside { print > (dir "/block-" n ".ts") }' README.md
cd "$CONSUMER"
echo '{ "name": "consumer", "private": true, "type": "module" }' >package.json
npm install --silent --no-audit --no-fund "$TARBALL" "effect@$EFFECT_VERSION" "@types/node@^24" "typescript@^5"

# (a) plain Node
node check.mjs
for example in examples/*.ts; do
  node "$example" >"$WORK/example.out" 2>&1 || { cat "$WORK/example.out" >&2; echo "$example failed" >&2; exit 1; }
  echo "ran $example: $(tail -n 1 "$WORK/example.out")"
done

# (b) strict TypeScript consumer
./node_modules/.bin/tsc -p tsconfig.json
echo "consumer check (b): the examples and $(ls readme | wc -l) README block(s) type-check as a strict nodenext consumer ($(./node_modules/.bin/tsc --version))"
