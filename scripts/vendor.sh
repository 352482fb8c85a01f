#!/usr/bin/env bash
# Rebuild the pinned third-party front-end files under static/vendor/ from the npm registry.
# Swagger UI is fetched with `npm pack` at an exact version; CodeMirror 6, uPlot and axe-core
# come from scripts/vendor/package.json and its lock file (`npm ci`), CodeMirror bundled into
# one ES module by esbuild. Only the built files the pages load are kept, with each licence;
# node_modules stays in scripts/vendor/ and is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack NAME@VERSION: the package's files in $work/NAME
  local spec=$1 name=${1%@*}
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$work/$name"
  tar -xzf "$work/${name//\//-}"-*.tgz -C "$work/$name" --strip-components=1
}

# Swagger UI: the OpenAPI page at /docs, served from here so it works without internet.
SWAGGER_UI=swagger-ui-dist@5.35.0
unpack "$SWAGGER_UI"
out=static/vendor/swagger_ui
rm -rf "$out" && mkdir -p "$out"
for file in swagger-ui-bundle.js swagger-ui.css; do
  # no source-map comment: the maps are not shipped
  sed -e '/^\/[/*]# sourceMappingURL=/d' "$work/swagger-ui-dist/$file" > "$out/$file"
done
cp "$work/swagger-ui-dist/LICENSE" "$work/swagger-ui-dist/NOTICE" \
   "$work/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$out/"
echo "$SWAGGER_UI" > "$out/VERSION"

# The editor, the charts and the accessibility checker of the browser tests.
vendor=static/vendor
(cd scripts/vendor && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
modules=scripts/vendor/node_modules
version() { node -p "JSON.parse(require('fs').readFileSync('$modules/$1/package.json')).version"; }
rm -rf "$vendor/codemirror" "$vendor/uplot" "$vendor/axe"
mkdir -p "$vendor/codemirror" "$vendor/uplot" "$vendor/axe"

(cd scripts/vendor && node node_modules/esbuild/bin/esbuild codemirror-entry.js --bundle \
  --format=esm --minify --legal-comments=none --target=es2020 \
  --outfile="../../$vendor/codemirror/codemirror.js" --log-level=warning)
{
  for pkg in @codemirror/state @codemirror/view @codemirror/commands @codemirror/language \
    @codemirror/lang-python @lezer/common @lezer/highlight @lezer/lr @lezer/python style-mod \
    w3c-keyname crelt @marijn/find-cluster-break; do
    [ -d "$modules/$pkg" ] || continue
    echo "== $pkg $(version "$pkg") =="
    cat "$modules/$pkg/LICENSE"* 2>/dev/null || echo "MIT (see its package.json)"
    echo
  done
} > "$vendor/codemirror/LICENSE"

cp "$modules/uplot/dist/uPlot.esm.js" "$modules/uplot/dist/uPlot.min.css" "$vendor/uplot/"
cp "$modules/uplot/LICENSE" "$vendor/uplot/LICENSE"
cp "$modules/axe-core/axe.min.js" "$vendor/axe/"
cp "$modules/axe-core/LICENSE" "$vendor/axe/LICENSE"
for pkg in @codemirror/state @codemirror/view @codemirror/commands @codemirror/language \
  @codemirror/lang-python @lezer/highlight uplot axe-core esbuild; do
  echo "$pkg $(version "$pkg")"
done > "$vendor/VERSIONS"

echo "vendor: static/vendor rebuilt" >&2
