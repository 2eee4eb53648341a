# Private PostgreSQL, Redis and an SMTP sink on loopback, in a temporary
# directory. Source it, then call services_start / services_stop. Exports
# BRISK_TEST_POSTGRES_URL, BRISK_TEST_REDIS_URL, BRISK_TEST_SMTP_URL and
# BRISK_TEST_MAILDIR (where the sink writes every message it accepts, one
# file each under new/).

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
  smtp_sink_start "$SERVICES_DIR"
  export BRISK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export BRISK_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  echo "== PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT, SMTP on 127.0.0.1:$SMTP_PORT ($SERVICES_DIR)"
}

# A real SMTP server (Debian's python3-aiosmtpd, run by Debian's Python)
# that accepts every message and writes it to a Maildir under $1.
smtp_sink_start() {
  SMTP_PORT=$(free_port)
  /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$1/maildir" >"$1/smtp.log" 2>&1 &
  SMTP_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; then
      break
    fi
    if ! kill -0 "$SMTP_PID" 2>/dev/null; then
      echo "the SMTP sink did not start:" >&2
      cat "$1/smtp.log" >&2
      return 1
    fi
    sleep 0.1
  done
  export BRISK_TEST_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
  export BRISK_TEST_MAILDIR="$1/maildir"
}

smtp_sink_stop() {
  [ -n "${SMTP_PID:-}" ] || return 0
  kill "$SMTP_PID" 2>/dev/null || true
  wait "$SMTP_PID" 2>/dev/null || true
  SMTP_PID=
}

services_stop() {
  [ -n "${SERVICES_DIR:-}" ] || return 0
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$SERVICES_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  smtp_sink_stop
  rm -rf "$SERVICES_DIR"
}
