#!/usr/bin/env bash
# Rebuild static/vendor/ from the pinned npm packages in scripts/vendor/package.json:
# CodeMirror 6 bundled into one ES module by esbuild, uPlot and axe-core copied as built,
# each with its licence. node_modules stays in scripts/vendor/ and is never committed.
set -euo pipefail
cd "$(dirname "$0")/vendor"
npm ci --no-audit --no-fund --ignore-scripts
out=../../static/vendor
rm -rf "$out"
mkdir -p "$out/codemirror" "$out/uplot" "$out/axe"
version() { node -p "JSON.parse(require('fs').readFileSync('node_modules/$1/package.json')).version"; }

node node_modules/esbuild/bin/esbuild codemirror-entry.js --bundle --format=esm --minify \
  --legal-comments=none --target=es2020 --outfile="$out/codemirror/codemirror.js"
{
  for pkg in state view commands language lang-python; do
    echo "== @codemirror/$pkg $(version "@codemirror/$pkg") =="
    cat "node_modules/@codemirror/$pkg/LICENSE"; echo
  done
  for pkg in @lezer/common @lezer/highlight @lezer/lr @lezer/python style-mod w3c-keyname crelt @marijn/find-cluster-break; do
    [ -d "node_modules/$pkg" ] || continue
    echo "== $pkg $(version "$pkg") =="
    cat "node_modules/$pkg/LICENSE"* 2>/dev/null || echo "MIT (see package.json)"; echo
  done
} > "$out/codemirror/LICENSE"

cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css "$out/uplot/"
cp node_modules/uplot/LICENSE "$out/uplot/LICENSE"
cp node_modules/axe-core/axe.min.js "$out/axe/"
cp node_modules/axe-core/LICENSE "$out/axe/LICENSE"
for pkg in @codemirror/state @codemirror/view @codemirror/commands @codemirror/language \
  @codemirror/lang-python @lezer/highlight uplot axe-core esbuild; do
  echo "$pkg $(version "$pkg")"
done > "$out/VERSIONS"
echo "vendor: rebuilt $out" >&2
