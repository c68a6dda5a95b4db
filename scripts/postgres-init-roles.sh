#!/bin/sh
# crowdquant's PostgreSQL roles, made once by an administrator (what shared/db_roles.py provision does):
#   cq_migrate                  LOGIN, owns the schemas (CREATE on the database), runs the migrations
#   cq_submissions, cq_scoring,
#   cq_leaderboard, cq_payouts  LOGIN, no superuser, no CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS;
#                               cq_payouts belongs to crowdquant_app (the ledger's append-only grants)
# Each role's password is the one in its URL file, <dir>/<name>_database_url (migration_database_url
# for cq_migrate): postgresql://<role>:<password>@host:port/database.
#
# docker-compose.yml mounts it into /docker-entrypoint-initdb.d, so the postgres image runs it as the
# superuser when it first creates the database. On a server that exists already (or a managed one):
#   CROWDQUANT_SECRETS_DIR=secrets PGHOST=... PGUSER=<admin> POSTGRES_DB=crowdquant sh scripts/postgres-init-roles.sh
# Running it again is harmless: it aligns the roles and sets the passwords from the files again.
set -eu

dir=${CROWDQUANT_SECRETS_DIR:-/run/secrets}
database=${POSTGRES_DB:-crowdquant}

password_of() {
    url=$(cat "$dir/$1_database_url")
    rest=${url#*://*:}
    password=${rest%%@*}
    user=${url#*://}
    user=${user%%:*}
    if [ "$user" != "$2" ] || [ -z "$password" ] || [ "$password" = "$url" ]; then
        echo "$dir/$1_database_url: expected postgresql://$2:<password>@host/database" >&2
        exit 1
    fi
    printf '%s' "$password"
}

# assignments, so that a bad file stops the script (set -e)
migrate_password=$(password_of migration cq_migrate)
submissions_password=$(password_of submissions cq_submissions)
scoring_password=$(password_of scoring cq_scoring)
leaderboard_password=$(password_of leaderboard cq_leaderboard)
payouts_password=$(password_of payouts cq_payouts)

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-${PGUSER:-postgres}}" --dbname "$database" \
    -v database="$database" \
    -v migrate_password="$migrate_password" \
    -v submissions_password="$submissions_password" \
    -v scoring_password="$scoring_password" \
    -v leaderboard_password="$leaderboard_password" \
    -v payouts_password="$payouts_password" <<'SQL'
SELECT format('CREATE ROLE %I', name)
  FROM unnest(ARRAY['cq_migrate', 'cq_submissions', 'cq_scoring', 'cq_leaderboard', 'cq_payouts']) AS name
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) \gexec
SELECT 'CREATE ROLE crowdquant_app NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crowdquant_app') \gexec
ALTER ROLE cq_migrate WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'migrate_password';
ALTER ROLE cq_submissions WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'submissions_password';
ALTER ROLE cq_scoring WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'scoring_password';
ALTER ROLE cq_leaderboard WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'leaderboard_password';
ALTER ROLE cq_payouts WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'payouts_password';
-- the payouts migration checks that the migration role belongs to the ledger's group
GRANT crowdquant_app TO cq_migrate;
GRANT crowdquant_app TO cq_payouts;
GRANT CREATE ON DATABASE :"database" TO cq_migrate;
SQL
echo "crowdquant roles ready in database $database"
