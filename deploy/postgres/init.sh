#!/bin/sh
# First start of the compose PostgreSQL: one role and one database per service, each role
# with its own password (from deploy/.env) and owning only its database, so no service can
# read another's tables. Runs once, from /docker-entrypoint-initdb.d, on an empty volume.
set -eu
for svc in tasks review ledger rules support gateway; do
  var="$(echo "$svc" | tr a-z A-Z)_DB_PASSWORD"
  eval "password=\${$var:?$var is not set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v name="$svc" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
