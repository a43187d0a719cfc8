#!/usr/bin/env bash
# Builds the seed corpus in fuzz/seeds from the bundled examples: nothing binary is committed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/seeds"
work=$(mktemp -d)
rm -rf "$out" && mkdir -p "$out"
cp -r "$here/../examples/models" "$work/"
(cd "$here/.." && cargo run -q -p xtask -- --quiet --root "$work" package --all >/dev/null)
for archive in "$work"/artifacts/packages/*.tar.gz; do
  name=$(basename "$archive" .tar.gz)
  { printf '\x02'; cat "$archive"; } > "$out/gz_$name"
  { printf '\x01'; gzip -dc "$archive"; } > "$out/tar_$name"
  { printf '\x00'; tar xzOf "$archive" "$name/artifact_manifest.json"; } > "$out/manifest_$name"
done
printf '\x00{"experiment_name":"e","created_at":"2025-10-04T11:17:10.1","files":[{"path":"a\\\\b","size_bytes":1,"checksum":"%s"}],"directories":[],"total_size_bytes":1,"checksums":{},"num_files":1}' \
  "$(printf x | sha256sum | cut -d' ' -f1)" > "$out/manifest_python"
rm -rf "$work"
ls -la "$out"
