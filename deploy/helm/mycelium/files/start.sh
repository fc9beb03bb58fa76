#!/bin/sh
# Service container entry point: reads what the init container (prepare.js) left in /run/mycelium into the
# MYCELIUM_* variables that cannot be plain env entries (they differ per pod of one StatefulSet), then becomes
# the image's entry point for the service (exec, so node is PID 1 and receives SIGTERM itself).
set -eu

# PREPARE_OUTPUT_DIR only moves it for deploy/helm/test/simulate-pods.js.
run="${PREPARE_OUTPUT_DIR:-/run/mycelium}"
service="$1"

if [ -f "$run/identity/private-key" ]; then
  MYCELIUM_PUBLIC_KEY="$(cat "$run/identity/public-key")"
  MYCELIUM_PRIVATE_KEY="$(cat "$run/identity/private-key")"
  export MYCELIUM_PUBLIC_KEY MYCELIUM_PRIVATE_KEY
fi
if [ -f "$run/database-url" ]; then
  MYCELIUM_DATABASE_URL="$(cat "$run/database-url")"
  export MYCELIUM_DATABASE_URL
fi

exec node bin/container-entrypoint.js "$service"
