#!/usr/bin/env bash
# CI (issue 18, "past one server"): beside the main PostgreSQL cluster (port 5432),
#   - a streaming replica of it: a second cluster "replica" on port 5433, made by
#     pg_basebackup -R from the main one, with a physical replication slot;
#   - PgBouncer (Debian's package) on port 6432, in transaction pooling mode, in front
#     of 5432.
# tests/scaling/ runs the reports, statements and payments through them. Idempotent: a
# second run on the same machine only starts what is stopped (and rebuilds the replica
# if it was made from another main cluster). The main cluster's data is not touched; its
# only changes are replication settings: one pg_hba.conf line ("host replication ...
# 127.0.0.1/32 trust", then a reload) and the replica's slot.
set -euo pipefail

VERSION="${PG_VERSION:-$(ls /etc/postgresql | sort -V | tail -n 1)}"
MAIN_PORT=5432
REPLICA_PORT=5433
PGBOUNCER_PORT=6432
SLOT=bousol_ci_replica
REPLICA_CONF="/etc/postgresql/$VERSION/replica"
PGB_DIR=/var/lib/postgresql/bousol-ci-pgbouncer
main_sql() { psql -X -q -h 127.0.0.1 -p "$MAIN_PORT" -U postgres -d postgres -Atc "$1"; }
replica_sql() { psql -X -q -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -Atc "$1"; }
as_postgres() { runuser -u postgres -- "$@"; }

if [ ! -x /usr/sbin/pgbouncer ]; then
    echo "== installing PgBouncer (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi

# ---------------------------------------------------------------- the main cluster
# PostgreSQL 15's defaults already allow streaming (wal_level=replica, max_wal_senders=10);
# changing them would need a restart of the main cluster, so refuse rather than do it.
wal_level="$(main_sql 'SHOW wal_level')"
senders="$(main_sql 'SHOW max_wal_senders')"
if [ "$wal_level" = minimal ] || [ "$senders" -lt 2 ]; then
    echo "replica: the main cluster has wal_level=$wal_level, max_wal_senders=$senders;" \
         "streaming needs wal_level=replica and max_wal_senders >= 2" >&2
    exit 1
fi
hba="$(main_sql 'SHOW hba_file')"
if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$hba"; then
    echo "== main cluster: allowing replication connections from 127.0.0.1 ($hba)"
    printf '%s\n' "host    replication     all     127.0.0.1/32    trust  # bousol CI replica" >>"$hba"
    main_sql 'SELECT pg_reload_conf()' >/dev/null
fi

# ---------------------------------------------------------------- the replica
main_id="$(main_sql 'SELECT system_identifier FROM pg_control_system()')"
replica_data() {
    sed -n "s/^data_directory *= *'\(.*\)'.*/\1/p" "$REPLICA_CONF/postgresql.conf"
}
streaming() {  # the replica streams from the main cluster through its slot
    [ "$(main_sql "SELECT count(*) FROM pg_replication_slots
                   WHERE slot_name = '$SLOT' AND active")" = 1 ]
}

rebuild_replica() {
    if [ ! -d "$REPLICA_CONF" ]; then
        echo "== replica: creating the cluster $VERSION/replica on port $REPLICA_PORT"
        pg_createcluster "$VERSION" replica -p "$REPLICA_PORT" >/dev/null
    fi
    local data
    data="$(replica_data)"
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" replica stop -m fast 2>/dev/null || true
    echo "== replica: pg_basebackup -R from port $MAIN_PORT into $data"
    if [ "$(main_sql "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT'")" = 1 ]; then
        main_sql "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
    fi
    find "$data" -mindepth 1 -delete
    as_postgres pg_basebackup -h 127.0.0.1 -p "$MAIN_PORT" -U postgres -D "$data" \
        -R -X stream -C -S "$SLOT" -c fast
}

configure_and_start_replica() {
    mkdir -p "$REPLICA_CONF/conf.d"
    cat >"$REPLICA_CONF/conf.d/90-ci.conf" <<EOF
# bousol CI: the streaming replica of the main cluster (.ci/replica-and-pooler.sh)
listen_addresses = '127.0.0.1'
port = $REPLICA_PORT
hot_standby = on
# Long reads on the replica (a year's FEC) are not cancelled by the primary's vacuum.
hot_standby_feedback = on
EOF
    # As on the main cluster of the CI machine: trust on 127.0.0.1 (the tests are postgres).
    cat >"$REPLICA_CONF/pg_hba.conf" <<EOF
local   all             all                     trust
host    all             all     127.0.0.1/32    trust
host    replication     all     127.0.0.1/32    trust
EOF
    chown -R postgres:postgres "$REPLICA_CONF"
    if ! pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT"; then
        echo "== replica: starting on port $REPLICA_PORT"
        pg_ctlcluster --skip-systemctl-redirect "$VERSION" replica start
    fi
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$REPLICA_PORT" && break; sleep 1; done
    if [ "$(replica_sql 'SELECT pg_is_in_recovery()')" != t ]; then
        echo "replica: the cluster on port $REPLICA_PORT is not in recovery (not a replica)" >&2
        exit 1
    fi
    # A replay paused by an interrupted test run is resumed.
    replica_sql 'SELECT pg_wal_replay_resume()' >/dev/null
    for _ in $(seq 1 30); do streaming && return 0; sleep 1; done
    return 1
}

rebuilt=0
if [ ! -d "$REPLICA_CONF" ] || [ ! -f "$(replica_data)/standby.signal" ]; then
    rebuild_replica
    rebuilt=1
else
    replica_id="$("/usr/lib/postgresql/$VERSION/bin/pg_controldata" "$(replica_data)" \
                  | sed -n 's/^Database system identifier: *//p')"
    if [ "$replica_id" != "$main_id" ]; then
        echo "== replica: made from another main cluster ($replica_id, not $main_id): rebuilding"
        rebuild_replica
        rebuilt=1
    fi
fi
if ! configure_and_start_replica; then
    if [ "$rebuilt" = 1 ]; then
        echo "replica: started but not streaming from port $MAIN_PORT (see" \
             "/var/log/postgresql/postgresql-$VERSION-replica.log)" >&2
        exit 1
    fi
    # E.g. its slot was dropped and the WAL it needs is gone: made again from scratch.
    echo "== replica: not streaming: rebuilding"
    rebuild_replica
    configure_and_start_replica
fi

# ---------------------------------------------------------------- PgBouncer
mkdir -p "$PGB_DIR"
cat >"$PGB_DIR/pgbouncer.ini" <<EOF
; bousol CI (.ci/replica-and-pooler.sh): transaction pooling in front of port $MAIN_PORT.
[databases]
; Any database, with ONE server connection each: what one client's transaction left on
; it (a prepared statement...) the next client's transaction sees (tests/scaling/).
* = host=127.0.0.1 port=$MAIN_PORT pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir = $PGB_DIR
pidfile = $PGB_DIR/pgbouncer.pid
logfile = $PGB_DIR/pgbouncer.log
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
; "options" (e.g. -csearch_path) is NOT ignored: PgBouncer refuses it, rather than
; silently dropping a schema a client asked for.
ignore_startup_parameters = extra_float_digits
EOF
printf '"postgres" ""\n' >"$PGB_DIR/userlist.txt"
chown -R postgres:postgres "$PGB_DIR"
pid=""
[ -f "$PGB_DIR/pgbouncer.pid" ] && pid="$(cat "$PGB_DIR/pgbouncer.pid")"
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -HUP "$pid"  # ours, already running: reread the configuration
else
    if pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT"; then
        echo "pgbouncer: port $PGBOUNCER_PORT is taken by another server (Debian's" \
             "pgbouncer service? stop it: service pgbouncer stop)" >&2
        exit 1
    fi
    echo "== PgBouncer: starting on port $PGBOUNCER_PORT (transaction pooling)"
    as_postgres /usr/sbin/pgbouncer -d -q "$PGB_DIR/pgbouncer.ini"
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" && break; sleep 1; done
pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT"
echo "== replica on $REPLICA_PORT ($(replica_sql 'SELECT pg_last_wal_replay_lsn()')), PgBouncer on $PGBOUNCER_PORT"
