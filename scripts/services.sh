#!/usr/bin/env bash
# Start the backing services of mcp-ledger (PostgreSQL, Redis, Kafka) as
# private, loopback-only instances on a bare Debian 12 machine, without Docker.
#
#   eval "$(scripts/services.sh)"            # start (default) + export URLs
#   scripts/services.sh status | stop
#   scripts/services.sh start-kafka | stop-kafka | restart-kafka   (also: postgres, redis)
#   scripts/services.sh start-conformance   # only the MCP conformance suite and its fixture server
#   scripts/services.sh start-toxiproxy | stop-toxiproxy   # the fault-injection proxy (tests/faults)
#
# Idempotent: running instances are reused, so a second run takes well under a
# second. All state lives under $LEDGER_SERVICES_DIR; progress goes to stderr
# and only `export` lines go to stdout. Stops only what this script started.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_DIR=${LEDGER_SERVICES_DIR:-$HOME/.cache/mcp-ledger/services}
# Below Linux's ephemeral range (32768-60999): a port in it can be taken as the local end of
# any outgoing connection while its server is down, and the restarted server then fails to
# bind (seen: Kafka restarted under a storm of client reconnects).
PG_PORT=${LEDGER_PG_PORT:-25432}
REDIS_PORT=${LEDGER_REDIS_PORT:-26379}
KAFKA_PORT=${LEDGER_KAFKA_PORT:-29092}
CONTROLLER_PORT=${LEDGER_KAFKA_CONTROLLER_PORT:-29093}
# A second broker listener that only Toxiproxy connects to, advertised at Toxiproxy's port for
# it: a client that bootstraps through the proxy is told the proxy's address for the broker, so
# every later connection goes through the proxy too (with one listener the broker would hand out
# its own address and the clients would bypass the proxy after the first metadata request).
KAFKA_FAULTS_PORT=${LEDGER_KAFKA_FAULTS_PORT:-29094}
TOXIPROXY_PORT=${LEDGER_TOXIPROXY_PORT:-28474}
TOXIPROXY_KAFKA_PORT=${LEDGER_TOXIPROXY_KAFKA_PORT:-29095}
TOXIPROXY_VERSION=v2.5.0 # the newest github.com/Shopify/toxiproxy/v2 the Go module proxy serves
KAFKA_VERSION=4.3.1
LOG4J_VERSION=2.25.4 # the log4j-core kafka_2.13 pulls in; the slf4j binding must match
WAIT_SECONDS=${LEDGER_SERVICES_WAIT:-180}
PG_DIR=${LEDGER_PG_DIR:-$SERVICES_DIR/postgres}
REDIS_DIR=$SERVICES_DIR/redis
KAFKA_DIR=${LEDGER_KAFKA_DIR:-$SERVICES_DIR/kafka}
TOXIPROXY_DIR=$SERVICES_DIR/toxiproxy
KAFKA_CP="$KAFKA_DIR/libs/*" # expanded by java, not by the shell
# The official MCP conformance suite (run with its own Node 22: the machine's node may be older)
# and the SDK's everything server it is measured against (from the mcp sdist, run by our venv).
CONFORMANCE_VERSION=0.2.0-alpha.12
CONFORMANCE_NODE_VERSION=22
EVERYTHING_MCP_VERSION=2.3.0
CONFORMANCE_DIR=$SERVICES_DIR/conformance
CONFORMANCE_NODE=$CONFORMANCE_DIR/node-$CONFORMANCE_NODE_VERSION-suite-$CONFORMANCE_VERSION
EVERYTHING_DIR=$CONFORMANCE_DIR/everything-server-$EVERYTHING_MCP_VERSION

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A stopped server's port can stay bound for a moment after its process is gone (a restart
# that checks at once would take its own old broker for "something else").
wait_port_closed() {
  local _
  for _ in {1..100}; do port_open "$1" || return 0; sleep 0.2; done
  return 1
}

# A pid file is trusted only if the process is alive and its command line
# still names our instance: pids get reused, and other brokers (e.g. a
# developer's own Kafka) may run on this machine. Zombies (exited, not yet
# reaped) still pass kill -0 but have an empty cmdline.
pid_alive() { # pidfile pattern
  local pid
  [[ -s $1 ]] && pid=$(<"$1") && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

wait_for() { # name logfile check-command...
  local name=$1 logfile=$2 deadline=$((SECONDS + WAIT_SECONDS))
  shift 2
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "$name not ready after ${WAIT_SECONDS}s; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 2>/dev/null || true
      die "$name failed to start"
    fi
    sleep 0.5
  done
  log "$name ready"
}

# ---------------------------------------------------------------- packages
ensure_packages() {
  local missing=() p
  for p in postgresql redis-server; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  # The console's browser tests drive Debian's Chromium (Playwright cannot download one here).
  command -v chromium >/dev/null || missing+=(chromium)
  ((${#missing[@]})) || return 0
  ((EUID == 0)) || die "missing packages (${missing[*]}); run as root or install them"
  log "installing ${missing[*]}"
  # Another apt/dpkg may be running (e.g. provisioning); wait for its lock, bounded.
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >&2
}

# ---------------------------------------------------------------- postgres
# initdb/postgres refuse to run as root, so as root run them as the `postgres`
# user created by the Debian package; from / so that it never lacks a cwd.
as_pg() {
  if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
pg_bin() { # false if PostgreSQL is not installed
  PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [[ -x $PG_BIN/initdb ]] || return 1
  # A private cluster, not Debian's `main` one: its port and config are not ours.
  # Root's home is usually mode 700, which the postgres user cannot enter.
  if ((EUID == 0)) && ! as_pg test -x "$SERVICES_DIR"; then
    [[ -n ${LEDGER_PG_DIR:-} ]] || PG_DIR=/var/lib/postgresql/mcp-ledger
  fi
}
pg_running() { # pg_ctl alone takes an unreaped zombie postmaster for a live one
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1 || return 1
  local pid
  pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- postgres
}

start_postgres() {
  pg_bin || die "no PostgreSQL binaries under /usr/lib/postgresql"
  if pg_running && ! port_open "$PG_PORT"; then
    log "postgres runs on another port; restarting it on $PG_PORT"
    stop_postgres
  fi
  if pg_running; then
    log "postgres already running ($PG_DIR)"
  else
    port_open "$PG_PORT" && die "port $PG_PORT is in use by something else (set LEDGER_PG_PORT)"
    mkdir -p "$PG_DIR"
    ((EUID == 0)) && chown postgres:postgres "$PG_DIR"
    if [[ ! -s $PG_DIR/data/PG_VERSION ]]; then
      log "initdb $PG_DIR/data"
      as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
        { tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
      echo "include_if_exists = 'ledger.conf'" | as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null
    fi
    # Rewritten on every start so that LEDGER_PG_PORT changes take effect.
    as_pg tee "$PG_DIR/data/ledger.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
EOF
    # A postmaster killed with the session can leave its pid file behind, and as an
    # unreaped zombie still pass PostgreSQL's own kill -0 check: no server answers
    # (pg_running said so), so the file is stale.
    local pidfile="$PG_DIR/data/postmaster.pid" stale
    if [[ -s $pidfile ]]; then
      stale=$(head -n 1 "$pidfile")
      if ! tr '\0' ' ' <"/proc/$stale/cmdline" 2>/dev/null | grep -qF -- postgres; then
        log "removing stale postmaster.pid and socket lock (pid $stale is gone)"
        rm -f "$pidfile" "$PG_DIR/.s.PGSQL.$PG_PORT.lock" "$PG_DIR/.s.PGSQL.$PG_PORT"
      fi
    fi
    log "starting postgres on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t "$WAIT_SECONDS" start >/dev/null 9>&- ||
      { tail -n 30 "$PG_DIR/postgres.log" >&2; die "postgres failed to start"; }
  fi
  wait_for postgres "$PG_DIR/postgres.log" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  # Superuser over the private socket (trust); the app uses TCP + password.
  # CREATEDB lets tests create throwaway databases.
  as_pg "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
SELECT 'CREATE ROLE ledger LOGIN CREATEDB PASSWORD ''ledger'''
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger') \gexec
SELECT 'CREATE DATABASE ledger OWNER ledger'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ledger') \gexec
EOF
}
stop_postgres() {
  if pg_bin && pg_running; then
    log "stopping postgres"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
  fi
}

# ---------------------------------------------------------------- redis
redis_ping() { [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
start_redis() {
  if pid_alive "$REDIS_DIR/redis.pid" redis-server && ! port_open "$REDIS_PORT"; then
    log "redis runs on another port; restarting it on $REDIS_PORT"
    stop_redis
  fi
  if pid_alive "$REDIS_DIR/redis.pid" redis-server; then
    log "redis already running"
  else
    port_open "$REDIS_PORT" && die "port $REDIS_PORT is in use by something else (set LEDGER_REDIS_PORT)"
    mkdir -p "$REDIS_DIR"
    log "starting redis on 127.0.0.1:$REDIS_PORT"
    # Not the systemd unit: a throwaway, non-persistent instance of our own.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$REDIS_DIR" \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save '' --appendonly no 9>&-
  fi
  wait_for redis "$REDIS_DIR/redis.log" redis_ping
}
stop_redis() {
  if pid_alive "$REDIS_DIR/redis.pid" redis-server; then
    log "stopping redis"
    # SIGTERM to our pid rather than `redis-cli shutdown`, which would stop
    # whatever redis listens on $REDIS_PORT now. Nothing is saved (save '').
    kill -TERM "$(<"$REDIS_DIR/redis.pid")" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while pid_alive "$REDIS_DIR/redis.pid" redis-server && ((SECONDS < deadline)); do sleep 0.2; done
    wait_port_closed "$REDIS_PORT" || log "port $REDIS_PORT still open 20s after redis stopped"
  fi
}

# ---------------------------------------------------------------- kafka
kafka_running() { pid_alive "$KAFKA_DIR/kafka.pid" "$KAFKA_DIR/server.properties"; }

# Ready = the broker answers a Kafka ApiVersions (key 18, v0) request; an
# open port alone is not enough, the socket is bound early during startup.
kafka_answers() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05probe" >&3 &&
    [[ $(head -c 4 <&3 | wc -c) -eq 4 ]]' _ "$KAFKA_PORT" 2>/dev/null
}
kafka_ready() {
  kafka_running || { tail -n 30 "$KAFKA_DIR/kafka.out" >&2; die "kafka exited during startup"; }
  kafka_answers
}

fetch_kafka() {
  [[ -f $KAFKA_DIR/libs/kafka_2.13-$KAFKA_VERSION.jar && -f $KAFKA_DIR/libs/log4j-slf4j-impl-$LOG4J_VERSION.jar ]] && return
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central"
  # Into a temporary dir first so that an interrupted fetch is never mistaken for a complete one.
  rm -rf "$KAFKA_DIR/libs.tmp"
  mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_DIR/libs.tmp" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" -f "$REPO_DIR/scripts/kafka/pom.xml" \
    >"$KAFKA_DIR/mvn.log" 2>&1 || { tail -n 30 "$KAFKA_DIR/mvn.log" >&2; die "maven could not fetch the Kafka jars"; }
  rm -rf "$KAFKA_DIR/libs" && mv "$KAFKA_DIR/libs.tmp" "$KAFKA_DIR/libs"
}

start_kafka() {
  if kafka_running && ! port_open "$KAFKA_PORT"; then
    log "kafka runs on another port; restarting it on $KAFKA_PORT"
    stop_kafka
  fi
  if kafka_running; then
    log "kafka already running"
  else
    port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is in use by something else (set LEDGER_KAFKA_PORT)"
    port_open "$CONTROLLER_PORT" && die "port $CONTROLLER_PORT is in use (set LEDGER_KAFKA_CONTROLLER_PORT)"
    mkdir -p "$KAFKA_DIR/logs"
    fetch_kafka
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@KAFKA_FAULTS_PORT@|$KAFKA_FAULTS_PORT|g" -e "s|@TOXIPROXY_KAFKA_PORT@|$TOXIPROXY_KAFKA_PORT|g" \
      -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" "$REPO_DIR/scripts/kafka/server.properties.in" >"$KAFKA_DIR/server.properties"
    # Format once: re-formatting would give the broker a new cluster id and lose the topics.
    if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
      local uuid
      uuid=$(java -cp "$KAFKA_CP" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
      [[ $uuid =~ ^[A-Za-z0-9_-]{22}$ ]] || die "could not generate a Kafka cluster id: $uuid"
      log "formatting Kafka storage (cluster id $uuid)"
      java -cp "$KAFKA_CP" kafka.tools.StorageTool format -t "$uuid" -c "$KAFKA_DIR/server.properties" \
        --standalone >"$KAFKA_DIR/format.log" 2>&1 || { cat "$KAFKA_DIR/format.log" >&2; die "kafka format failed"; }
    fi
    log "starting kafka on 127.0.0.1:$KAFKA_PORT (controller $CONTROLLER_PORT)"
    # setsid+nohup: survive the caller's terminal; all fds redirected so that a
    # caller capturing our stdout (eval "$(...)", subprocess) does not hang.
    setsid nohup java "-Xmx${LEDGER_KAFKA_HEAP:-512m}" \
      -Dlog4j2.configurationFile="$REPO_DIR/scripts/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$KAFKA_DIR/logs" -cp "$KAFKA_CP" kafka.Kafka "$KAFKA_DIR/server.properties" \
      </dev/null >"$KAFKA_DIR/kafka.out" 2>&1 9>&- &
    echo $! >"$KAFKA_DIR/kafka.pid"
    # Until the child has exec'd java its cmdline is ours, not the broker's; on a machine
    # that is still booting that took over 5 s once, so wait up to 30.
    for _ in {1..300}; do kafka_running && break; sleep 0.1; done
  fi
  wait_for kafka "$KAFKA_DIR/logs/server.log" kafka_ready
}
stop_kafka() {
  kafka_running || return 0
  log "stopping kafka"
  local pid deadline=$((SECONDS + 60))
  pid=$(<"$KAFKA_DIR/kafka.pid")
  kill -TERM "$pid" # controlled shutdown; SIGKILL only if it hangs
  while kafka_running && ((SECONDS < deadline)); do sleep 0.5; done
  if kafka_running; then log "kafka did not stop in 60s; killing"; kill -KILL "$pid"; fi
  rm -f "$KAFKA_DIR/kafka.pid"
  wait_port_closed "$KAFKA_PORT" || log "port $KAFKA_PORT still open 20s after kafka stopped"
  wait_port_closed "$CONTROLLER_PORT" || log "port $CONTROLLER_PORT still open 20s after kafka stopped"
}

# ---------------------------------------------------------------- toxiproxy
# Built once with the machine's Go into a versioned file (a new version gets a new file), through
# a temporary GOBIN so that an interrupted build is never mistaken for a complete one. It holds no
# proxies of its own: tests/faults creates them (and removes them) through its HTTP API.
TOXIPROXY_BIN=$TOXIPROXY_DIR/toxiproxy-server-$TOXIPROXY_VERSION
# A `go install` build reports its version as "git": any answer will do.
toxiproxy_answers() { curl -fsS -m 2 "http://127.0.0.1:$TOXIPROXY_PORT/version" >/dev/null 2>&1; }
toxiproxy_running() { pid_alive "$TOXIPROXY_DIR/toxiproxy.pid" "$TOXIPROXY_BIN"; }
build_toxiproxy() {
  [[ -x $TOXIPROXY_BIN ]] && return
  command -v go >/dev/null || die "no go on PATH: cannot build Toxiproxy"
  log "building Toxiproxy $TOXIPROXY_VERSION with $(go version | cut -d' ' -f3)"
  rm -rf "$TOXIPROXY_DIR/bin.tmp"
  GOBIN="$TOXIPROXY_DIR/bin.tmp" GOFLAGS=-buildvcs=false timeout 900 \
    go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" >"$TOXIPROXY_DIR/build.log" 2>&1 ||
    { tail -n 30 "$TOXIPROXY_DIR/build.log" >&2; die "could not build Toxiproxy"; }
  mv "$TOXIPROXY_DIR/bin.tmp/server" "$TOXIPROXY_BIN" && rm -rf "$TOXIPROXY_DIR/bin.tmp"
}
start_toxiproxy() {
  mkdir -p "$TOXIPROXY_DIR"
  build_toxiproxy
  if toxiproxy_running; then
    log "toxiproxy already running"
  else
    port_open "$TOXIPROXY_PORT" && die "port $TOXIPROXY_PORT is in use by something else (set LEDGER_TOXIPROXY_PORT)"
    log "starting toxiproxy on 127.0.0.1:$TOXIPROXY_PORT"
    # Info, not debug: every API request would be a log line.
    LOG_LEVEL=info setsid nohup "$TOXIPROXY_BIN" -host 127.0.0.1 -port "$TOXIPROXY_PORT" \
      </dev/null >"$TOXIPROXY_DIR/toxiproxy.log" 2>&1 9>&- &
    echo $! >"$TOXIPROXY_DIR/toxiproxy.pid"
  fi
  wait_for toxiproxy "$TOXIPROXY_DIR/toxiproxy.log" toxiproxy_answers
}
stop_toxiproxy() {
  toxiproxy_running || return 0
  log "stopping toxiproxy"
  kill -TERM "$(<"$TOXIPROXY_DIR/toxiproxy.pid")" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while toxiproxy_running && ((SECONDS < deadline)); do sleep 0.2; done
  rm -f "$TOXIPROXY_DIR/toxiproxy.pid"
}
print_toxiproxy_env() {
  toxiproxy_running || return 0
  echo "export LEDGER_TOXIPROXY_URL=http://127.0.0.1:$TOXIPROXY_PORT"
  # Only a broker started from this template has the listener (a broker started before it needs
  # a restart-kafka): without it, the Kafka faults are skipped, and say why.
  port_open "$KAFKA_FAULTS_PORT" || return 0
  echo "export LEDGER_TOXIPROXY_KAFKA=127.0.0.1:$TOXIPROXY_KAFKA_PORT"
  echo "export LEDGER_TOXIPROXY_KAFKA_UPSTREAM=127.0.0.1:$KAFKA_FAULTS_PORT"
}

# ---------------------------------------------------------------- conformance
# Nothing here listens: the suite and the everything server are started by the tests, on
# loopback ports their children pick. Installed once into versioned directories (a new version
# gets a new directory), each built in a temporary directory first so that an interrupted
# install is never mistaken for a complete one.
conformance_suite_ok() {
  [[ -f $CONFORMANCE_NODE/node_modules/@modelcontextprotocol/conformance/dist/index.js ]] &&
    [[ $("$CONFORMANCE_NODE/node_modules/.bin/node" --version 2>/dev/null) == v$CONFORMANCE_NODE_VERSION.* ]]
}
ensure_conformance_suite() {
  conformance_suite_ok && return
  command -v npm >/dev/null || { log "no npm on PATH: cannot install the conformance suite"; return 1; }
  log "installing node@$CONFORMANCE_NODE_VERSION and @modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
  local tmp=$CONFORMANCE_NODE.tmp
  rm -rf "$tmp" && mkdir -p "$tmp"
  # node@22's preinstall puts the platform binary in place: the one install script allowed.
  echo '{"private": true, "allowScripts": {"node": true}}' >"$tmp/package.json"
  timeout 600 npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error \
    "node@$CONFORMANCE_NODE_VERSION" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
    >"$CONFORMANCE_DIR/npm.log" 2>&1 || { tail -n 30 "$CONFORMANCE_DIR/npm.log" >&2; log "npm install failed"; return 1; }
  rm -rf "$CONFORMANCE_NODE" && mv "$tmp" "$CONFORMANCE_NODE"
  conformance_suite_ok || { log "the installed suite does not run with Node $CONFORMANCE_NODE_VERSION"; return 1; }
}
ensure_everything_server() {
  [[ -f $EVERYTHING_DIR/mcp_everything_server/server.py ]] && return
  local pip=(pip) tmp=$EVERYTHING_DIR.tmp
  command -v pip >/dev/null || pip=(python3 -m pip)
  log "fetching the everything server from the mcp $EVERYTHING_MCP_VERSION sdist"
  rm -rf "$tmp" && mkdir -p "$tmp"
  timeout 600 "${pip[@]}" download --quiet --no-binary :all: --no-deps "mcp==$EVERYTHING_MCP_VERSION" -d "$tmp" \
    >"$CONFORMANCE_DIR/pip.log" 2>&1 || { tail -n 30 "$CONFORMANCE_DIR/pip.log" >&2; log "pip download failed"; return 1; }
  tar -xzf "$tmp/mcp-$EVERYTHING_MCP_VERSION.tar.gz" -C "$tmp" "mcp-$EVERYTHING_MCP_VERSION/examples/servers/everything-server" ||
    { log "the sdist has no examples/servers/everything-server"; return 1; }
  rm -rf "$EVERYTHING_DIR" && mv "$tmp/mcp-$EVERYTHING_MCP_VERSION/examples/servers/everything-server" "$EVERYTHING_DIR"
  rm -rf "$tmp"
}
# Not fatal for `start`: the services serve the other tests without it; the conformance tests
# fail on the missing exports and name this log.
ensure_conformance() {
  mkdir -p "$CONFORMANCE_DIR"
  if ensure_conformance_suite && ensure_everything_server; then
    log "conformance suite ready ($CONFORMANCE_NODE)"
  else
    log "WARNING: conformance suite not installed; tests/conformance will fail"
    return 0
  fi
}
print_conformance_env() {
  conformance_suite_ok && [[ -f $EVERYTHING_DIR/mcp_everything_server/server.py ]] || return 0
  echo "export LEDGER_CONFORMANCE_NODE=$CONFORMANCE_NODE/node_modules/.bin/node"
  echo "export LEDGER_CONFORMANCE_SUITE=$CONFORMANCE_NODE/node_modules/@modelcontextprotocol/conformance/dist/index.js"
  echo "export LEDGER_CONFORMANCE_EVERYTHING=$EVERYTHING_DIR"
}

# ---------------------------------------------------------------- main
print_env() {
  echo "export LEDGER_STORE=postgresql+asyncpg://ledger:ledger@127.0.0.1:$PG_PORT/ledger"
  echo "export LEDGER_STATE=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export LEDGER_BUS=kafka://127.0.0.1:$KAFKA_PORT"
  print_conformance_env
  print_toxiproxy_env
}
status() {
  local pg=stopped redis=stopped kafka=stopped
  pg_bin && pg_running && pg="running (pid $(head -n 1 "$PG_DIR/data/postmaster.pid"))"
  pid_alive "$REDIS_DIR/redis.pid" redis-server && redis="running (pid $(<"$REDIS_DIR/redis.pid"))"
  kafka_running && kafka="running (pid $(<"$KAFKA_DIR/kafka.pid"))"
  printf '%-9s %-22s %s\n' postgres "127.0.0.1:$PG_PORT" "$pg" redis "127.0.0.1:$REDIS_PORT" "$redis" \
    kafka "127.0.0.1:$KAFKA_PORT" "$kafka"
}

start_all() {
  ensure_packages
  # Separate statements, not `a && b`: errexit is suspended inside && lists.
  start_postgres
  start_redis
  start_kafka
  start_toxiproxy
  ensure_conformance
  print_env
}
stop_all() {
  stop_toxiproxy
  stop_kafka
  stop_redis
  stop_postgres
}

mkdir -p "$SERVICES_DIR"
# Serialise concurrent runs (e.g. parallel test workers all calling start).
# Every daemon is started with 9>&- so that none of them inherits the lock.
exec 9>"$SERVICES_DIR/.lock"
flock -w 900 9 || die "another services.sh run holds $SERVICES_DIR/.lock"

case ${1:-start} in
  start) start_all ;;
  stop) stop_all ;;
  restart) stop_all; start_all ;;
  status) status ;;
  env) print_env ;;
  start-postgres | start-redis | start-kafka) ensure_packages; "start_${1#start-}"; print_env ;;
  start-conformance) ensure_conformance; print_conformance_env ;;
  start-toxiproxy) start_toxiproxy; print_toxiproxy_env ;;
  stop-toxiproxy) stop_toxiproxy ;;
  stop-postgres | stop-redis | stop-kafka) "stop_${1#stop-}" ;;
  restart-postgres | restart-redis | restart-kafka) "stop_${1#restart-}"; "start_${1#restart-}" ;;
  *) die "usage: $0 [start|stop|restart|status|env|start-conformance|{start,stop}-toxiproxy|{start,stop,restart}-{postgres,redis,kafka}]" ;;
esac
