#!/bin/sh
# Initialises $PGDATA on the first start (deploy/postgres.Containerfile), then runs the server
# in the foreground. Arguments are passed to postgres (e.g. -c max_connections=200).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-lookalike}
db=${POSTGRES_DB:-lookalike}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: set POSTGRES_PASSWORD for the first start (it initialises $PGDATA)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  cat >>"$PGDATA/pg_hba.conf" <<EOT
# deploy/postgres-entrypoint.sh: the compose network's containers, by password.
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
EOT
  cat >>"$PGDATA/postgresql.conf" <<EOT
# deploy/postgres-entrypoint.sh
listen_addresses = '*'
unix_socket_directories = '/tmp'
max_connections = 200
EOT
  # The database, created through the local socket before anything can connect over TCP.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -s start
  if [ "$db" != postgres ]; then psql -X -q -h /tmp -U "$user" -d postgres -c "CREATE DATABASE \"$db\""; fi
  pg_ctl -D "$PGDATA" -m fast -w -s stop
  echo "postgres-entrypoint: initialised $PGDATA (superuser $user, database $db)"
fi
exec postgres -D "$PGDATA" "$@"
