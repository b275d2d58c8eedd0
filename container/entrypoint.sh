#!/bin/sh
# The container's entrypoint: settings from a mounted file, secrets from files, then `trialwatch "$@"`.
#
# - PGPASSWORD_FILE and every TRIALWATCH_*_FILE name a file whose content becomes PGPASSWORD or that
#   TRIALWATCH_* variable (the convention of the official database images): PGPASSWORD_FILE=
#   /run/secrets/db-password gives the PostgreSQL driver its password, TRIALWATCH_SLACK_URL_FILE fills
#   ${TRIALWATCH_SLACK_URL} in a channel URL, and neither value is in `docker inspect`. Only these:
#   other *_FILE variables (SSL_CERT_FILE, …) are paths that programs read as paths.
# - Secret files (compose `secrets:`, mounted under /run/secrets) are what `${credential:NAME}` in a
#   channel URL reads: CREDENTIALS_DIRECTORY is pointed there, as systemd's LoadCredential= would.
# - The service and the web view need a settings file: without one, say where it was looked for and
#   how to write one, and exit 2 (a configuration error) rather than run on built-in defaults.
set -eu

secrets_dir=${TRIALWATCH_SECRETS_DIR:-/run/secrets}
if [ -z "${CREDENTIALS_DIRECTORY:-}" ] && [ -d "$secrets_dir" ]; then
  export CREDENTIALS_DIRECTORY="$secrets_dir"
fi

# NAME_FILE → NAME. Names only come from the environment's own variable names, never from a file.
for name in $(env | sed -n 's/^\(PGPASSWORD\|TRIALWATCH_[A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  file=$(printenv "${name}_FILE")
  if [ ! -r "$file" ]; then
    echo "trialwatch-entrypoint: ${name}_FILE names $file, which is not a readable file" >&2
    exit 2
  fi
  if [ -n "$(printenv "$name" 2>/dev/null || true)" ]; then
    echo "trialwatch-entrypoint: both $name and ${name}_FILE are set; set one" >&2
    exit 2
  fi
  value=$(cat "$file")  # $(…) drops trailing newlines, as systemd credentials do
  export "$name=$value"
  unset "${name}_FILE"
done

config=${TRIALWATCH_CONFIG:-/etc/trialwatch/trialwatch.yaml}
case "${1:-}" in
  run | serve | check)
    if [ ! -f "$config" ]; then
      echo "trialwatch-entrypoint: no settings file at $config (TRIALWATCH_CONFIG); mount one there," \
        "or write a first one with: trialwatch init $(dirname "$config")" >&2
      exit 2
    fi
    ;;
esac
export TRIALWATCH_CONFIG="$config"
exec trialwatch "$@"
