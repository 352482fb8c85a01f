#!/usr/bin/env bash
# Rebuild the pinned third-party front-end files under static/vendor/ from the npm registry.
# Each package is fetched with `npm pack` at an exact version, and only the built files the
# pages load are kept, with the package's licence.
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

echo "vendor: static/vendor rebuilt" >&2
