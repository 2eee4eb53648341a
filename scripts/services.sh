# Private PostgreSQL and Redis on loopback, in a temporary directory.
# Source it, then call services_start / services_stop. Exports
# BRISK_TEST_POSTGRES_URL and BRISK_TEST_REDIS_URL.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

services_start() {
  SERVICES_DIR=$(mktemp -d /tmp/brisk-services.XXXXXX)
  chown postgres:postgres "$SERVICES_DIR"
  chmod 700 "$SERVICES_DIR"
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_PORT=$(free_port)
  REDIS_PORT=$(free_port)
  runuser -u postgres -- "$PGBIN/initdb" -D "$SERVICES_DIR/data" -U postgres --auth=trust --no-locale --encoding=UTF8 >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$SERVICES_DIR/data" -l "$SERVICES_DIR/pg.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $SERVICES_DIR -c max_connections=400 -c fsync=off -c shared_buffers=256MB" \
    -w start >/dev/null
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize yes --pidfile "$SERVICES_DIR/redis.pid" --dir "$SERVICES_DIR" >/dev/null
  export BRISK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export BRISK_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  echo "== PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT ($SERVICES_DIR)"
}

services_stop() {
  [ -n "${SERVICES_DIR:-}" ] || return 0
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$SERVICES_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$SERVICES_DIR"
}
