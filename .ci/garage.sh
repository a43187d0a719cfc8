#!/usr/bin/env bash
# Starts a single-node Garage (a real S3-compatible store) on loopback for the S3 tests and prints
# the environment that reaches it, for `eval`. Installs Garage with cargo when it is missing
# (about 9 minutes on 2 cores; the binary stays in ~/.cargo/bin for later runs).
set -euo pipefail
if ! command -v garage >/dev/null 2>&1; then
  echo "installing garage (cargo install garage --locked)..." >&2
  cargo install garage --locked >&2
fi
dir=$(mktemp -d /tmp/xtask-garage.XXXXXX)
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
s3_port=$((20000 + RANDOM % 20000))
cat > "$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((s3_port + 1))"
rpc_public_addr = "127.0.0.1:$((s3_port + 1))"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
TOML
g() { garage -c "$dir/garage.toml" "$@"; }
garage -c "$dir/garage.toml" server > "$dir/server.log" 2>&1 &
echo "$!" > "$dir/pid"
for _ in $(seq 1 100); do
  g status >/dev/null 2>&1 && break
  sleep 0.2
done
node=$(g status 2>/dev/null | awk '/^[0-9a-f]{16}/ {print $1; exit}')
g layout assign -z dc1 -c 1G "$node" >&2
g layout apply --version 1 >&2
key_output=$(g key create xtask-test)
key_id=$(echo "$key_output" | awk -F': *' 'tolower($1) ~ /key id/ {print $2; exit}')
key_secret=$(echo "$key_output" | awk -F': *' 'tolower($1) ~ /secret key/ {print $2; exit}')
g bucket create team >&2
g bucket allow --read --write --owner team --key xtask-test >&2
cat <<ENV
export XTASK_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export XTASK_TEST_S3_BUCKET=team
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$key_secret
export AWS_DEFAULT_REGION=garage
export XTASK_GARAGE_PID=$(cat "$dir/pid")
export XTASK_GARAGE_DIR=$dir
ENV
