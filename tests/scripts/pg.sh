#!/bin/sh
# Throwaway PostgreSQL cluster for the test suite (the pg_start / pg_stop ctest
# fixtures in tests/CMakeLists.txt).  Tests connect with
#   host=DIR port=PORT dbname=postgres user=postgres
# over the unix socket in DIR (127.0.0.1:PORT also listens).
#
#   pg.sh start DIR PORT   initdb if needed, start, wait until it accepts
#                          connections; a cluster already running is fine
#   pg.sh stop DIR PORT    stop (fast mode) and remove DIR
#   pg.sh halt DIR PORT    stop (fast mode) and keep DIR, so start brings the
#                          same cluster back (tests of a database outage)
#
# PostgreSQL refuses to run as root, so under root the cluster belongs to the
# postgres account and every server command runs through runuser.
set -eu

die() { echo "pg.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: pg.sh start|stop|halt DIR PORT"
cmd=$1
dir=$2
port=$3
case $port in *[!0-9]* | '') die "bad port '$port'" ;; esac

bindir=""
if command -v pg_config >/dev/null 2>&1; then
    bindir=$(pg_config --bindir 2>/dev/null || true)
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    # pg_config may come from libpq-dev and point at /usr/bin without initdb;
    # take the newest server install instead.
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || die "no PostgreSQL server binaries (initdb) found"

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

data=$dir/data
log=$dir/server.log

case $cmd in
start)
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)
    data=$dir/data
    log=$dir/server.log
    # The socket path must fit in sun_path (107 bytes).
    [ ${#dir} -lt 90 ] || die "socket directory path too long: $dir"
    if [ "$(id -u)" -eq 0 ]; then
        getent passwd postgres >/dev/null || die "running as root but there is no postgres account"
        chown postgres: "$dir"
        chmod 700 "$dir"
        # Every parent must be searchable by postgres or it cannot reach its socket.
        as_pg test -x "$dir" || die "$dir is not reachable by the postgres account (check parent folder permissions)"
    fi
    if [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        :
    else
        if [ ! -f "$data/PG_VERSION" ]; then
            as_pg "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C -N \
                >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
            cat >>"$data/postgresql.conf" <<CONF
# quarry test cluster (tests/scripts/pg.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
shared_buffers = 128MB
max_wal_size = 2GB
# big enough that COPYing a batch's inputs never waits to write WAL itself
wal_buffers = 64MB
wal_writer_delay = 10ms
max_connections = 50
logging_collector = off
CONF
        fi
        as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >/dev/null 2>&1 ||
            { tail -n 20 "$log" >&2 2>/dev/null; die "server did not start (log: $log)"; }
    fi
    i=0
    until "$bindir/pg_isready" -q -h "$dir" -p "$port" -U postgres; do
        i=$((i + 1))
        [ $i -lt 60 ] || { tail -n 20 "$log" >&2 2>/dev/null; die "server in $dir not accepting connections on port $port"; }
        sleep 0.5
    done
    ;;
stop | halt)
    if [ -f "$data/PG_VERSION" ]; then
        if ! as_pg "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
            # "not running" is fine; a server that is still up is not.
            if as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
                die "could not stop the server in $data"
            fi
        fi
    fi
    if [ "$cmd" = stop ]; then
        rm -rf "$dir" || die "cannot remove $dir"
    fi
    ;;
*)
    die "unknown command '$cmd' (start|stop|halt)"
    ;;
esac
