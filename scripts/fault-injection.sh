#!/usr/bin/env bash
# Fault injection with real processes (issue #7, item 3).
#
# Five `healthcheck agent` processes, each in its own network namespace, and
# the origins in a sixth, joined by a Linux bridge in a dedicated "switch"
# namespace (the host's network is not touched). Faults are injected from the
# outside and every verdict is read through the agents' HTTP API only:
#
#   1. kill -9 of an agent: every origin is rechecked (a health record with a
#      newer checked_at by a surviving agent) within suspicion + 2 intervals;
#   2. a 2 vs 3 partition: at most one checker per origin on each side, and one
#      checker in total after the heal;
#   3. packet loss between the agents (5 % by default): no agent is declared
#      down by any other over the window (sampled every second);
#   4. after the heal, every agent's /v1/origins holds the same registry,
#      including edits made on both sides during the partition;
#   5. a stop (kill -9) and restart of all agents: each agent, restarted cut
#      off from the others, serves every registered origin from its own store;
#   6. a bad route from one vantage point (the traffic between the busiest
#      agent and the origins dropped): no origin shows down on any agent
#      (its owner's failing checks are disputed by a second agent);
#   7. killed origins (one HTTP, one TCP; their listeners closed): down on
#      every agent, confirmed by a second agent, within the bound L (see
#      phase 7), and the extra checks that second opinions cost.
#
# Run as root:  sudo bash scripts/fault-injection.sh
# Needs: ip (iproute2), curl, jq, python3; nft (Debian package nftables) for
# the loss test and for partitions (without it partitions fall back to
# blackhole routes and the loss test is reported as NOT RUN).
#
# Environment (all optional):
#   HEALTHCHECK_BIN   agent binary; otherwise `cargo build --release -p healthcheck`
#   CLUSTER_KEY       1 (default): agents seal cluster traffic with a key from `healthcheck keygen`; 0: plaintext
#   LOSS_SECONDS      loss window, default 300
#   LOSS_PERCENT      packet loss between agents, default 5
#   KILL_ROUNDS       agents killed one after another (busiest first), default 5
#   ORIGINS           number of origins, default 20 (a third are TCP checks)
#   PRESET            SWIM timing preset: lan (default), local or wan
#   INTERVAL_MS       check interval of every origin, default 1000
#   PARTITION_SECONDS sampling window during the partition, default 10
#   BAD_ROUTE_SECONDS sampling window of the bad route, default 20
#   CONFIRM           1 (default): origins confirm a down with a second agent;
#                     0: "confirm": false in every spec (for comparison: phase
#                     6 then shows what one bad route does, and fails)
#   HEAL_TIMEOUT      seconds allowed for the membership to merge after a heal
#                     (default: 90 for lan, 20 for local, 300 for wan)
#   FI_NO_NFT=1       do not use nft even if installed (tests the fallback)
#   KEEP_WORKDIR=1    keep configs, data dirs and logs (kept anyway on failure)
#
# Exit status: 0 if every check passed, 1 if one failed, 2 on a setup error,
# 3 if a check could NOT RUN under CI=true (outside CI a check that cannot
# run is reported loudly as NOT RUN and the exit status is that of the
# checks that ran; the last line then never says "all checks passed").
# Every wait is a bounded poll of the API.

set -uo pipefail # not -e: every failure that matters is checked explicitly
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOSS_SECONDS=${LOSS_SECONDS:-300}
LOSS_PERCENT=${LOSS_PERCENT:-5}
KILL_ROUNDS=${KILL_ROUNDS:-5}
ORIGINS=${ORIGINS:-20}
PRESET=${PRESET:-lan}
INTERVAL_MS=${INTERVAL_MS:-1000}
PARTITION_SECONDS=${PARTITION_SECONDS:-10}
BAD_ROUTE_SECONDS=${BAD_ROUTE_SECONDS:-20}
N=5
SIDE_A=(1 2)
SIDE_B=(3 4 5)
ORIGIN_IP=10.77.0.100
BASE_PORT=9001
API_PORT=8080
GOSSIP_PORT=7946
SYNC_PORT=7947

# SWIM suspicion timeout at N = 5 (foca: max(1, log10 N) x k x probe period)
# and the default heal timeout, per preset.
case "$PRESET" in
lan) SUSPICION_MS=4000 DEFAULT_HEAL=90 ;;
local) SUSPICION_MS=400 DEFAULT_HEAL=20 ;;
wan) SUSPICION_MS=30000 DEFAULT_HEAL=300 ;;
*)
  echo "PRESET must be lan, local or wan, not $PRESET" >&2
  exit 2
  ;;
esac
HEAL_TIMEOUT=${HEAL_TIMEOUT:-$DEFAULT_HEAL}
KILL_BOUND_MS=$((SUSPICION_MS + 2 * INTERVAL_MS))

P="vfi$$"  # namespace prefix, unique per run
SW="$P-sw" # the switch
ONS="$P-o" # the origins
NAMESPACES=()
declare -A PID=()
ORIGIN_PID=""
W=""
API_TOKEN=""
FAILED=0
NOT_RUN=() # "check: why" of every check that could not run
ROWS=()
START_MS=0

log() { printf '[%6.1fs] %s\n' "$((${EPOCHREALTIME/./} / 1000 - START_MS))e-3" "$*"; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
die() {
  echo "setup error: $*" >&2
  exit 2
}
run() { "$@" || die "failed: $*"; }
# num VALUE: VALUE if it is a number, else 0.
num() { if [[ ${1:-} =~ ^[0-9]+$ ]]; then echo "$1"; else echo 0; fi; }
START_MS=$(now_ms)

# A results row: check, figure, bound, PASS|FAIL|NOT RUN.
row() {
  ROWS+=("| $1 | $2 | $3 | $4 |")
  [[ $4 == FAIL* ]] && FAILED=1
  [[ $4 == "NOT RUN"* ]] && NOT_RUN+=("$1: $2")
  log "result: $1: $2 (bound $3): $4"
}
verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }

ns() { echo "$P-a$1"; }
ip_of() { echo "10.77.0.1$1"; }
name() { echo "hc-$1"; }
ALL_NAMES=$(for i in $(seq 1 $N); do name "$i"; done | sort | paste -sd,)
names_of() { for i in "$@"; do name "$i"; done | sort | paste -sd,; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  # bash reports each killed background job on stderr: not news here
  exec 2>/dev/null
  for i in "${!PID[@]}"; do kill -9 "${PID[$i]}" 2>/dev/null; done
  [[ -n $ORIGIN_PID ]] && kill -9 "$ORIGIN_PID" 2>/dev/null
  for n in "${NAMESPACES[@]}"; do
    # anything still running inside our own namespaces was started by us
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for i in "${!PID[@]}"; do wait "${PID[$i]}" 2>/dev/null; done
  [[ -n $ORIGIN_PID ]] && wait "$ORIGIN_PID" 2>/dev/null
  for n in "${NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null; done
  if [[ -n $W && -d $W ]]; then
    if [[ $rc -ne 0 || ${KEEP_WORKDIR:-0} == 1 ]]; then
      echo "work dir kept: $W (configs, data dirs, agent logs)"
    else
      rm -rf "$W"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- preconditions --------------------------------------------------------
[[ $(id -u) == 0 ]] || die "must run as root (network namespaces)"
for tool in ip curl jq python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
USE_NFT=0
if [[ ${FI_NO_NFT:-0} != 1 ]] && command -v nft >/dev/null; then USE_NFT=1; fi

if [[ -n ${HEALTHCHECK_BIN:-} ]]; then
  BIN=$HEALTHCHECK_BIN
else
  log "building: cargo build --release -p healthcheck"
  (cd "$ROOT" && cargo build --release -p healthcheck) || die "build failed"
  BIN="$ROOT/target/release/healthcheck"
fi
[[ -x $BIN ]] || die "no agent binary at $BIN"
W=$(mktemp -d "${TMPDIR:-/tmp}/vantage-fi.XXXXXX") || die "mktemp failed"

# --- helpers: waits and the API -------------------------------------------

# wait_until SECONDS DESCRIPTION COMMAND...: polls every 250 ms.
wait_until() {
  local secs=$1 desc=$2
  shift 2
  local deadline=$(($(now_ms) + secs * 1000))
  until "$@"; do
    if (($(now_ms) >= deadline)); then
      log "timed out after ${secs}s: $desc"
      return 1
    fi
    sleep 0.25
  done
}

# api AGENT PATH [curl args]: the agent's API, from inside its namespace.
api() {
  local i=$1 path=$2
  shift 2
  ip netns exec "$(ns "$i")" curl -fsS -m 3 -H "Authorization: Bearer $API_TOKEN" "$@" \
    "http://127.0.0.1:$API_PORT$path"
}

# Live (alive or suspect) member names seen by agent i, sorted, comma-joined.
live_names() {
  api "$1" /v1/members 2>/dev/null |
    jq -r '[.[] | select(.state != "down") | .id] | unique | join(",")' 2>/dev/null
}
alive_names() {
  api "$1" /v1/members 2>/dev/null |
    jq -r '[.[] | select(.state == "alive") | .id] | unique | join(",")' 2>/dev/null
}
# sees AGENT NAMES: agent sees exactly NAMES alive.
sees() { [[ $(alive_names "$1") == "$2" ]]; }
all_see_all() {
  local i
  for i in "$@"; do sees "$i" "$ALL_NAMES" || return 1; done
}
# One line per origin: id checked_at_ms checked_by status.
origin_lines() {
  api "$1" /v1/origins 2>/dev/null | jq -r '.[] |
    "\(.id) \(.health.checked_at_ms // 0) \(.health.checked_by // "-") \(.health.status // "none")"' 2>/dev/null
}
owned() { api "$1" /v1/node 2>/dev/null | jq -r '.owned_origins' 2>/dev/null; }
node_field() { api "$1" /v1/node 2>/dev/null | jq -r ".$2" 2>/dev/null; }
# The registry as an agent serves it, canonical: one line per origin.
registry_of() { api "$1" /v1/origins 2>/dev/null | jq -cS 'map({id, spec}) | sort_by(.id) | .[]' 2>/dev/null; }
registry_ids() { registry_of "$1" | jq -r .id | paste -sd,; }
# The agent that checks the most origins (the first of them).
busiest_agent() {
  local i o best=-1 busiest=1
  for i in $(seq 1 $N); do
    o=$(num "$(owned "$i")")
    if ((o > best)); then
      best=$o
      busiest=$i
    fi
  done
  echo "$busiest"
}
sum_owned() {
  local s=0 i o
  for i in "$@"; do
    o=$(num "$(owned "$i")")
    [[ $o =~ ^[0-9]+$ ]] || return 1
    s=$((s + o))
  done
  echo "$s"
}

# --- network --------------------------------------------------------------
# Rules live in the switch namespace's bridge (table bridge vfi); blackhole
# routes inside the agents' namespaces are the fallback without nft.

ports_of() { for i in "$@"; do printf '"p%s", ' "$i"; done | sed 's/, $//'; }

cut_groups() { # cut_groups "1 2" "3 4 5" ...: no agent traffic between groups
  local groups=("$@") a b
  if ((USE_NFT)); then
    {
      echo "table bridge vfi_cut {"
      echo "  chain vfi_fwd { type filter hook forward priority 0; policy accept;"
      for a in "${groups[@]}"; do
        for b in "${groups[@]}"; do
          [[ $a == "$b" ]] && continue
          # shellcheck disable=SC2086
          echo "    iifname { $(ports_of $a) } oifname { $(ports_of $b) } drop"
        done
      done
      echo "  }"
      echo "}"
    } | ip netns exec "$SW" nft -f - || return 1
  else
    for a in "${groups[@]}"; do
      for b in "${groups[@]}"; do
        [[ $a == "$b" ]] && continue
        local x y
        for x in $a; do
          for y in $b; do ip -n "$(ns "$x")" route add blackhole "$(ip_of "$y")/32" || return 1; done
        done
      done
    done
  fi
}
heal() {
  if ((USE_NFT)); then
    ip netns exec "$SW" nft delete table bridge vfi_cut
  else
    local i r
    for i in $(seq 1 $N); do
      ip -n "$(ns "$i")" route show type blackhole | while read -r _ r _; do
        ip -n "$(ns "$i")" route del blackhole "$r"
      done
    done
  fi
}

setup_network() {
  run ip netns add "$SW"
  NAMESPACES+=("$SW")
  run ip -n "$SW" link set lo up
  run ip -n "$SW" link add br0 type bridge
  run ip -n "$SW" link set br0 up
  local i n
  for i in $(seq 1 $N) o; do
    if [[ $i == o ]]; then n=$ONS; else n=$(ns "$i"); fi
    run ip netns add "$n"
    NAMESPACES+=("$n")
    run ip -n "$n" link set lo up
    run ip -n "$n" link add eth0 type veth peer name "p$i" netns "$SW"
    if [[ $i == o ]]; then
      run ip -n "$n" addr add "$ORIGIN_IP/24" dev eth0
    else
      run ip -n "$n" addr add "$(ip_of "$i")/24" dev eth0
    fi
    run ip -n "$n" link set eth0 up
    run ip -n "$SW" link set "p$i" master br0
    run ip -n "$SW" link set "p$i" up
  done
}

# --- origins and agents ---------------------------------------------------

start_origins() { # serves 200 on ports BASE_PORT.. (origins plus 2 spare)
  local count=$((ORIGINS + 2))
  cat >"$W/origins.py" <<'EOF'
import http.server, sys, threading
addr, base, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
control = sys.argv[4]
servers = {}
def serve(port):
    s = http.server.ThreadingHTTPServer((addr, port), H)
    s.daemon_threads = True
    servers[port] = s
    threading.Thread(target=s.serve_forever, daemon=True).start()
for port in range(base, base + count):
    serve(port)
print("origins ready", flush=True)
# The ports listed in the control file are dead: their listeners closed
# (connections refused); a port taken off the list listens again.
import time
while True:
    try:
        with open(control) as f:
            dead = {int(x) for x in f.read().split()}
    except (OSError, ValueError):
        dead = set()
    for port in list(servers):
        if port in dead:
            s = servers.pop(port)
            s.shutdown()
            s.server_close()
            print(f"killed {port}", flush=True)
    for port in range(base, base + count):
        if port not in dead and port not in servers:
            serve(port)
            print(f"revived {port}", flush=True)
    time.sleep(0.05)
EOF
  : >"$W/dead-ports"
  ip netns exec "$ONS" python3 "$W/origins.py" "$ORIGIN_IP" "$BASE_PORT" "$count" "$W/dead-ports" >"$W/origins.log" 2>&1 &
  ORIGIN_PID=$!
  wait_until 20 "origin servers" grep -q "origins ready" "$W/origins.log" ||
    die "origin servers did not start: $(tail -5 "$W/origins.log")"
}

write_config() {
  local i=$1 j seeds=""
  for j in $(seq 1 $N); do
    [[ $j == "$i" ]] && continue
    seeds+="\"$(ip_of "$j"):$GOSSIP_PORT\", "
  done
  mkdir -p "$W/$(name "$i")"
  # Cluster traffic is sealed with one key (CLUSTER_KEY=0: plaintext).
  if [[ ${CLUSTER_KEY:-1} != 0 && ! -s "$W/cluster.keys" ]]; then
    "$BIN" keygen >"$W/cluster.keys"
  fi
  # The APIs ask for a token; this script's calls carry it (api()).
  if [[ ! -s "$W/api.tokens" ]]; then
    "$BIN" token --scope write >"$W/api.tokens"
  fi
  API_TOKEN=$(awk '{print $2}' "$W/api.tokens")
  cat >"$W/$(name "$i").toml" <<EOF
node = "$(name "$i")"
cluster = "fault-injection"
data_dir = "$W/$(name "$i")/data"
seeds = [${seeds%, }]
$([[ ${CLUSTER_KEY:-1} != 0 ]] && echo "key_file = \"$W/cluster.keys\"")
token_file = "$W/api.tokens"
$([[ ${CLUSTER_KEY:-1} == 0 ]] && echo "insecure = true   # CLUSTER_KEY=0: plaintext on purpose")

[listen]
gossip = "$(ip_of "$i"):$GOSSIP_PORT"
sync = "$(ip_of "$i"):$SYNC_PORT"
api = "127.0.0.1:$API_PORT"

[timings]
preset = "$PRESET"
pull_interval_ms = 1000
takeover_grace_ms = 2000
# below the check interval, so that every check writes a record and the
# records' checked_at shows every check through the API
record_refresh_ms = $((INTERVAL_MS / 2))
EOF
}

api_up() { api "$1" /v1/node >/dev/null 2>&1; }
start_agent() {
  local i=$1
  echo "--- start $(date -u +%FT%TZ)" >>"$W/$(name "$i").log"
  ip netns exec "$(ns "$i")" env RUST_LOG="${RUST_LOG:-info}" "$BIN" agent \
    --config "$W/$(name "$i").toml" >>"$W/$(name "$i").log" 2>&1 &
  PID[$i]=$!
}
wait_api() { wait_until 30 "API of $(name "$1")" api_up "$1"; }
kill_agent() {
  kill -9 "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || true
  unset "PID[$1]"
}

ORIGIN_IDS=()
spec_of() { # spec_of K: the JSON spec of origin number K (1-based)
  local k=$1 port=$((BASE_PORT + $1 - 1))
  local confirm=true
  [[ ${CONFIRM:-1} == 0 ]] && confirm=false
  if ((k % 3 == 0)); then
    echo "{\"address\":\"$ORIGIN_IP:$port\",\"kind\":\"tcp\",\"interval_ms\":$INTERVAL_MS,\"timeout_ms\":$((INTERVAL_MS * 8 / 10)),\"confirm\":$confirm}"
  else
    echo "{\"address\":\"$ORIGIN_IP:$port\",\"path\":\"/healthz\",\"interval_ms\":$INTERVAL_MS,\"timeout_ms\":$((INTERVAL_MS * 8 / 10)),\"confirm\":$confirm}"
  fi
}
put_origin() { # put_origin AGENT ID SPEC
  local code
  code=$(api "$1" "/v1/origins/$2" -o /dev/null -w '%{http_code}' -X PUT \
    -H 'content-type: application/json' --data "$3") || return 1
  [[ $code == 200 || $code == 201 ]]
}

# all_checked AGENT T NAMES: every origin the agent serves has a record
# written after T (ms), status up, by one of NAMES.
all_checked() {
  local i=$1 t=$2 names=$3 lines
  lines=$(origin_lines "$i") || return 1
  [[ -n $lines ]] || return 1
  echo "$lines" | awk -v t="$t" -v names=",$names," '
    { if ($2 <= t || $4 != "up" || index(names, "," $3 ",") == 0) bad = 1 }
    END { exit bad }'
}

# --- phase 1: kill -9 ----------------------------------------------------

MAX_KILL_GAP=0
MAX_KILL_GAP_WHERE=""
KILL_DETAILS=()

kill_round() {
  local v=$1 obs=$2 id t by now g
  local -A last=() gap=() rec=()
  local victim owned_v
  victim=$(name "$v")
  owned_v=$(num "$(owned "$v")")
  while read -r id t _; do
    last[$id]=$t
    gap[$id]=0
  done < <(origin_lines "$obs")
  local t_kill
  t_kill=$(now_ms)
  kill_agent "$v"
  log "killed $victim (kill -9, owned $owned_v origins); watching through $(name "$obs")"
  local deadline=$((t_kill + KILL_BOUND_MS + 20000)) done_at=0
  while :; do
    now=$(now_ms)
    while read -r id t by _; do
      [[ -n ${last[$id]:-} ]] || continue
      if ((t > last[$id])); then
        g=$((t - last[$id]))
        ((g > gap[$id])) && gap[$id]=$g
        last[$id]=$t
      fi
      if ((t > t_kill)) && [[ $by != "$victim" ]]; then rec[$id]=1; fi
    done < <(origin_lines "$obs")
    if ((${#rec[@]} == ${#last[@]})); then
      ((done_at == 0)) && done_at=$now
      # keep watching two intervals more for a later gap (handover churn)
      ((now >= done_at + 2 * INTERVAL_MS)) && break
    fi
    ((now > deadline)) && break
    sleep 0.2
  done
  local worst=0 worst_id="" unrecovered=0
  for id in "${!last[@]}"; do
    if [[ -z ${rec[$id]:-} ]]; then
      unrecovered=$((unrecovered + 1))
      g=$((now - last[$id]))
      ((g > gap[$id])) && gap[$id]=$g
    fi
    if ((gap[$id] > worst)); then
      worst=${gap[$id]}
      worst_id=$id
    fi
  done
  local recovery="not within $(((deadline - t_kill) / 1000)) s"
  ((done_at > 0)) && recovery="$((done_at - t_kill)) ms"
  KILL_DETAILS+=("$victim (owned $owned_v): max gap ${worst} ms ($worst_id), all rechecked ${recovery} after the kill")
  log "kill $victim: max gap $worst ms ($worst_id), all origins rechecked by others $recovery after the kill, $unrecovered not"
  if ((worst > MAX_KILL_GAP)); then
    MAX_KILL_GAP=$worst
    MAX_KILL_GAP_WHERE="$worst_id, kill of $victim"
  fi
  ((unrecovered == 0)) || MAX_KILL_GAP=999999999
  # restart it
  local t_restart
  t_restart=$(now_ms)
  start_agent "$v"
  wait_api "$v" || return 1
  local others
  others=$(seq 1 $N)
  # shellcheck disable=SC2086
  wait_until 60 "all agents see all 5 members after restarting $victim" all_see_all $others || return 1
  log "restarted $victim: all agents see 5 members after $(($(now_ms) - t_restart)) ms"
}

# --- phase 2: partition --------------------------------------------------

side_ok() { # side_ok NAMES AGENTS...: each agent sees exactly NAMES as live
  local names=$1 i
  shift
  for i in "$@"; do [[ $(live_names "$i") == "$names" ]] || return 1; done
}
both_sides_split() { side_ok "$(names_of "${SIDE_A[@]}")" "${SIDE_A[@]}" && side_ok "$(names_of "${SIDE_B[@]}")" "${SIDE_B[@]}"; }
side_takes_all() { # every side: owned sums to all origins, all records by that side
  local names
  names=$(names_of "${SIDE_A[@]}")
  [[ $(sum_owned "${SIDE_A[@]}") == "$ORIGINS" ]] || return 1
  all_checked "${SIDE_A[0]}" "$T_SPLIT" "$names" || return 1
  names=$(names_of "${SIDE_B[@]}")
  [[ $(sum_owned "${SIDE_B[@]}") == "$ORIGINS" ]] || return 1
  all_checked "${SIDE_B[0]}" "$T_SPLIT" "$names" || return 1
}

# sample_writers SECONDS FILE AGENT...: for SECONDS, every 500 ms, appends
# "agent id checked_by" of each record written since the window opened.
sample_writers() {
  local secs=$1 file=$2 i w0
  shift 2
  w0=$(now_ms)
  : >"$file"
  local end=$((w0 + secs * 1000))
  while (($(now_ms) < end)); do
    for i in "$@"; do
      origin_lines "$i" | awk -v a="$i" -v w0="$w0" '$2 >= w0 { print a, $1, $3 }' >>"$file" || true
    done
    sleep 0.5
  done
}
# max_writers FILE AGENTS...: the largest number of distinct writers of one
# origin seen by AGENTS, and the number of origins with no writer.
max_writers() {
  local file=$1
  shift
  local agents=" $* "
  awk -v agents="$agents" -v ids="${ORIGIN_IDS[*]}" '
    index(agents, " " $1 " ") { if (!seen[$2 " " $3]++) n[$2]++ }
    END {
      m = 0; missing = 0; split(ids, all, " ")
      for (k in all) { if (!(all[k] in n)) missing++; else if (n[all[k]] > m) m = n[all[k]] }
      print m, missing
    }' "$file"
}
# writers_outside FILE NAMES AGENTS...: records seen by AGENTS written by
# someone not in NAMES.
writers_outside() {
  local file=$1 names=$2
  shift 2
  awk -v agents=" $* " -v names=",$names," '
    index(agents, " " $1 " ") && !index(names, "," $3 ",") { c++ } END { print c + 0 }' "$file"
}

converged_one_checker() {
  [[ $(sum_owned $(seq 1 $N)) == "$ORIGINS_NOW" ]] || return 1
  local i ref cur
  ref=$(origin_lines 1 | awk '{ print $1, $3 }')
  [[ -n $ref ]] || return 1
  for i in $(seq 2 $N); do
    cur=$(origin_lines "$i" | awk '{ print $1, $3 }')
    [[ $cur == "$ref" ]] || return 1
  done
}
registries_agree() {
  local i ref
  ref=$(registry_of 1)
  [[ -n $ref ]] || return 1
  for i in $(seq 2 $N); do [[ $(registry_of "$i") == "$ref" ]] || return 1; done
  [[ $(registry_ids 1) == "$EXPECTED_IDS" ]]
}

# --- phase 3: loss -------------------------------------------------------

loss_rules() {
  local all
  all=$(ports_of $(seq 1 $N))
  ip netns exec "$SW" nft -f - <<EOF
table bridge vfi_loss {
  chain vfi_fwd {
    type filter hook forward priority 0; policy accept;
    iifname { $all } oifname { $all } counter
    iifname { $all } oifname { $all } numgen random mod 100 < $LOSS_PERCENT counter drop
  }
}
EOF
}
loss_counters() { # "packets dropped" between agents so far
  ip netns exec "$SW" nft list table bridge vfi_loss |
    awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") c[++n] = $(i + 1) } END { print c[1], c[2] }'
}

# ===========================================================================

log "fault injection: 5 agents (preset $PRESET, check interval $INTERVAL_MS ms), $ORIGINS origins; prefix $P; work dir $W"
log "binary: $BIN"
if ((USE_NFT)); then
  log "faults: nft rules on the switch's bridge (partition, loss)"
else
  log "faults: nft not available: partitions by blackhole routes; the loss test cannot run"
fi
setup_network
start_origins
for i in $(seq 1 $N); do
  write_config "$i"
  start_agent "$i"
done
for i in $(seq 1 $N); do wait_api "$i" || die "agent $(name "$i") did not start: $(tail -5 "$W/$(name "$i").log")"; done
t0=$(now_ms)
# shellcheck disable=SC2046
wait_until 60 "all agents see all 5 members" all_see_all $(seq 1 $N) || die "the cluster did not form"
log "cluster formed: all agents see 5 members after $(($(now_ms) - t0)) ms"
if [[ ${CLUSTER_KEY:-1} != 0 ]]; then
  for i in $(seq 1 $N); do
    metrics=$(api "$i" /metrics) && grep -q '^cluster_keys 1$' <<<"$metrics" ||
      die "$(name "$i") does not report its cluster key in /metrics"
  done
  log "cluster traffic sealed: every agent reports cluster_keys 1"
fi

for k in $(seq 1 "$ORIGINS"); do
  id=$(printf 'o%02d' "$k")
  ORIGIN_IDS+=("$id")
  put_origin 1 "$id" "$(spec_of "$k")" || die "PUT /v1/origins/$id failed"
done
ORIGINS_NOW=$ORIGINS
EXPECTED_IDS=$(printf '%s\n' "${ORIGIN_IDS[@]}" | sort | paste -sd,)
t0=$(now_ms)
for i in $(seq 1 $N); do
  wait_until 30 "$(name "$i") has every origin, up" all_checked "$i" 0 "$ALL_NAMES" || die "origins not all up"
done
log "registered $ORIGINS origins through $(name 1); all up on every agent after $(($(now_ms) - t0)) ms"
for i in $(seq 1 $N); do log "  $(name "$i") checks $(owned "$i") origins"; done

# --- 1. kill -9 ------------------------------------------------------------
victims=()
busiest=$(busiest_agent)
victims+=("$busiest")
for i in $(seq 1 $N); do [[ $i == "$busiest" ]] || victims+=("$i"); done
for r in $(seq 1 "$KILL_ROUNDS"); do
  v=${victims[$(((r - 1) % N))]}
  obs=$((v % N + 1))
  kill_round "$v" "$obs" || {
    row "1. kill -9: restart" "$(name "$v") did not rejoin" "60 s" FAIL
    break
  }
done
if ((KILL_ROUNDS == 0)); then
  row "1. kill -9 of an agent" "KILL_ROUNDS=0" "-" "NOT RUN"
elif ((MAX_KILL_GAP == 999999999)); then
  row "1. kill -9 of an agent ($KILL_ROUNDS rounds): longest time an origin went unchecked" \
    "some origin not rechecked" "$KILL_BOUND_MS ms" FAIL
else
  row "1. kill -9 of an agent ($KILL_ROUNDS rounds): longest time an origin went unchecked" \
    "$MAX_KILL_GAP ms ($MAX_KILL_GAP_WHERE)" "$KILL_BOUND_MS ms (suspicion $SUSPICION_MS + 2 x $INTERVAL_MS)" \
    "$(verdict test "$MAX_KILL_GAP" -le "$KILL_BOUND_MS")"
fi

# --- 2. partition 2 vs 3 -------------------------------------------------------
log "partition: {$(names_of "${SIDE_A[@]}")} | {$(names_of "${SIDE_B[@]}")}"
T_SPLIT=$(now_ms)
cut_groups "${SIDE_A[*]}" "${SIDE_B[*]}" || die "cannot cut the network"
if wait_until 60 "each side sees only itself" both_sides_split; then
  t_detect=$(($(now_ms) - T_SPLIT))
  log "each side sees only itself after $t_detect ms"
  if wait_until 30 "each side checks every origin" side_takes_all; then
    t_take=$(($(now_ms) - T_SPLIT))
    log "each side checks every origin after $t_take ms; sampling writers for ${PARTITION_SECONDS}s"
    sample_writers "$PARTITION_SECONDS" "$W/partition-writers.txt" $(seq 1 $N)
    read -r ma missa < <(max_writers "$W/partition-writers.txt" "${SIDE_A[@]}")
    read -r mb missb < <(max_writers "$W/partition-writers.txt" "${SIDE_B[@]}")
    xa=$(writers_outside "$W/partition-writers.txt" "$(names_of "${SIDE_A[@]}")" "${SIDE_A[@]}")
    xb=$(writers_outside "$W/partition-writers.txt" "$(names_of "${SIDE_B[@]}")" "${SIDE_B[@]}")
    oa=$(sum_owned "${SIDE_A[@]}" || echo "?")
    ob=$(sum_owned "${SIDE_B[@]}" || echo "?")
    row "2. partition 2 vs 3: split seen / each side checks all" "${t_detect} ms / ${t_take} ms" "60 s / 30 s" PASS
    row "2. partition 2 vs 3: most checkers of one origin on a side (${PARTITION_SECONDS} s window)" \
      "side A: $ma, side B: $mb (origins without a checker: $missa, $missb; foreign writers: $xa, $xb; owned sums: $oa, $ob)" \
      "1 per side" "$(verdict test "$ma" -eq 1 -a "$mb" -eq 1 -a "$missa" -eq 0 -a "$missb" -eq 0 -a "$xa" -eq 0 -a "$xb" -eq 0)"
  else
    row "2. partition 2 vs 3: each side checks all" "not within 30 s" "30 s" FAIL
  fi
else
  row "2. partition 2 vs 3: split seen" "not within 60 s" "60 s" FAIL
fi
# Registry edits on both sides while cut off (merged at the heal, check 4).
a=${SIDE_A[0]} b=${SIDE_B[0]}
if ! {
  put_origin "$a" side-a "$(spec_of $((ORIGINS + 1)))" &&
    put_origin "$b" side-b "$(spec_of $((ORIGINS + 2)))" &&
    put_origin "$a" o02 "$(spec_of 2 | sed 's/"path":"\/healthz"/"path":"\/from-a"/')" &&
    put_origin "$b" o02 "$(spec_of 2 | sed 's/"path":"\/healthz"/"path":"\/from-b"/')" &&
    api "$b" "/v1/origins/$(printf 'o%02d' "$ORIGINS")" -X DELETE >/dev/null
}; then
  die "registry edits during the partition failed"
fi
log "during the partition: added side-a on A, side-b on B, o02 changed on both sides, $(printf 'o%02d' "$ORIGINS") deleted on B"
unset "ORIGIN_IDS[$((ORIGINS - 1))]"
ORIGIN_IDS+=(side-a side-b)
ORIGINS_NOW=$((ORIGINS + 1))
EXPECTED_IDS=$(printf '%s\n' "${ORIGIN_IDS[@]}" | sort | paste -sd,)

heal
T_HEAL=$(now_ms)
log "healed"
# shellcheck disable=SC2046
if wait_until "$HEAL_TIMEOUT" "all agents see all 5 members after the heal" all_see_all $(seq 1 $N); then
  t_merge=$(($(now_ms) - T_HEAL))
  log "membership merged $t_merge ms after the heal"
  ok=0
  wait_until 30 "one checker per origin after the heal" converged_one_checker && ok=1
  t_one=$(($(now_ms) - T_HEAL))
  if ((ok)); then
    sample_writers 5 "$W/heal-writers.txt" $(seq 1 $N)
    read -r m miss < <(max_writers "$W/heal-writers.txt" $(seq 1 $N))
    row "2. partition 2 vs 3: after the heal, membership merged / one checker in total" \
      "$t_merge ms / $t_one ms (then 5 s window: at most $m writer per origin, $miss without)" \
      "$HEAL_TIMEOUT s / merge + 30 s" "$(verdict test "$m" -eq 1 -a "$miss" -eq 0)"
  else
    row "2. partition 2 vs 3: one checker in total after the heal" "not within 30 s of the merge" "merge + 30 s" FAIL
  fi
else
  row "2. partition 2 vs 3: membership merged after the heal" "not within $HEAL_TIMEOUT s" "$HEAL_TIMEOUT s" FAIL
fi

# --- 4. registries agree ------------------------------------------------------
if wait_until 30 "every agent serves the same registry" registries_agree; then
  o02=$(registry_of 1 | jq -r 'select(.id == "o02") | .spec.path')
  row "4. after the heal, every agent's /v1/origins" \
    "identical on all 5: $ORIGINS_NOW origins, both sides' additions, the deletion; o02 concurrently edited -> $o02 everywhere" \
    "30 s" PASS
else
  row "4. after the heal, every agent's /v1/origins" "differ: $(for i in $(seq 1 $N); do echo -n "$(name "$i"): $(registry_of "$i" | md5sum | cut -c1-8) $(registry_ids "$i" | tr , ' ' | wc -w); "; done)" "identical" FAIL
fi
for i in $(seq 1 $N); do
  wait_until 30 "$(name "$i"): every origin up" all_checked "$i" "$T_HEAL" "$ALL_NAMES" || true
done

# --- 3. packet loss -------------------------------------------------------------
if ((USE_NFT)) && loss_rules; then
  log "loss: $LOSS_PERCENT % of packets between agents dropped (nft numgen on the bridge), ${LOSS_SECONDS}s, sampling /v1/members every second"
  takeovers0=0
  for i in $(seq 1 $N); do takeovers0=$((takeovers0 + $(num "$(node_field "$i" takeovers)"))); done
  t_start=$(now_ms)
  samples=0 false_downs=0 suspects=0 failed_polls=0
  first_down=""
  : >"$W/loss-writers.txt"
  k=0
  while :; do
    now=$(now_ms)
    ((now - t_start >= LOSS_SECONDS * 1000)) && break
    for i in $(seq 1 $N); do
      members=$(api "$i" /v1/members 2>/dev/null) || {
        failed_polls=$((failed_polls + 1))
        continue
      }
      samples=$((samples + 1))
      live=$(jq -r '[.[] | select(.state != "down") | .id] | unique | join(",")' <<<"$members")
      alive=$(jq -r '[.[] | select(.state == "alive") | .id] | unique | join(",")' <<<"$members")
      if [[ $live != "$ALL_NAMES" ]]; then
        false_downs=$((false_downs + 1))
        [[ -n $first_down ]] || first_down="$(name "$i") saw only $live at +$(((now - t_start) / 1000))s"
        log "loss: $(name "$i") sees only $live"
      elif [[ $alive != "$ALL_NAMES" ]]; then
        suspects=$((suspects + 1))
      fi
    done
    # who checks what (every 5 s): ownership moves under loss, for information
    if ((k % 5 == 0)); then origin_lines 1 | awk -v t="$t_start" '$2 >= t { print $1, $3 }' >>"$W/loss-writers.txt"; fi
    k=$((k + 1))
    next=$((t_start + k * 1000))
    now=$(now_ms)
    ((next > now)) && sleep "$(((next - now) / 1000)).$(printf '%03d' $(((next - now) % 1000)))"
  done
  read -r total dropped < <(loss_counters)
  ip netns exec "$SW" nft delete table bridge vfi_loss
  takeovers1=0
  for i in $(seq 1 $N); do takeovers1=$((takeovers1 + $(num "$(node_field "$i" takeovers)"))); done
  moved=$(sort -u "$W/loss-writers.txt" | awk '{ n[$1]++ } END { c = 0; for (k in n) if (n[k] > 1) c++; print c }')
  rate=$(awk -v t="$total" -v d="$dropped" 'BEGIN { if (t > 0) printf "%.2f", 100 * d / t; else print "?" }')
  row "3. ${LOSS_PERCENT} % loss between agents for ${LOSS_SECONDS} s: member samples showing a member down" \
    "$false_downs of $samples (${first_down:-none}); samples with a suspect: $suspects; failed API polls: $failed_polls" \
    "0" "$(verdict test "$false_downs" -eq 0 -a "$failed_polls" -eq 0)"
  row "3. loss actually injected / effects (information)" \
    "$dropped of $total packets dropped ($rate %); takeovers: $((takeovers1 - takeovers0)); origins whose writer changed: $moved" \
    "-" "info"
  # shellcheck disable=SC2046
  wait_until 30 "all agents see all 5 members after the loss" all_see_all $(seq 1 $N) || true
else
  reason="nft is not installed (Debian package nftables)"
  ((USE_NFT)) && reason="nft rule on the bridge was refused"
  [[ ${FI_NO_NFT:-0} == 1 ]] && reason="FI_NO_NFT=1"
  log "loss test NOT RUN: $reason; netem is not available in this kernel either"
  row "3. ${LOSS_PERCENT} % loss between agents" "cannot inject loss: $reason" "-" "NOT RUN"
fi

# --- 6. a bad route from one vantage point -----------------------------------------
# block_route V / unblock_route V: drop (or let through) the traffic between
# agent V and the origins, in both directions; the agents' own traffic flows.
block_route() {
  if ((USE_NFT)); then
    ip netns exec "$SW" nft -f - <<EOF
table bridge vfi_route {
  chain vfi_fwd { type filter hook forward priority 0; policy accept;
    iifname "p$1" oifname "po" drop
    iifname "po" oifname "p$1" drop
  }
}
EOF
  else
    ip -n "$(ns "$1")" route add blackhole "$ORIGIN_IP/32"
  fi
}
unblock_route() {
  if ((USE_NFT)); then
    ip netns exec "$SW" nft delete table bridge vfi_route
  else
    ip -n "$(ns "$1")" route del blackhole "$ORIGIN_IP/32"
  fi
}
# One line per origin: id status checked_by confirmation (its kind, or -).
confirm_lines() {
  api "$1" /v1/origins 2>/dev/null | jq -r '.[] |
    "\(.id) \(.status) \(.health.checked_by // "-") \((.health.confirmation // {}) | keys | .[0] // "-")"' 2>/dev/null
}
# metric_sum NAME: the sum over the agents of every sample of NAME.
metric_sum() {
  local i total=0 v
  for i in $(seq 1 $N); do
    v=$(api "$i" /metrics 2>/dev/null | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }')
    total=$((total + $(num "$v")))
  done
  echo "$total"
}
checks_now() { metric_sum healthcheck_checks_total; }
confirm_checks_now() { metric_sum healthcheck_confirm_checks_total; }
all_plain_up() { # every origin up with no confirmation left, on agent $1
  local lines
  lines=$(confirm_lines "$1") || return 1
  [[ -n $lines ]] && awk '$2 != "up" || $4 != "-" { bad = 1 } END { exit bad }' <<<"$lines"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f %%", 100 * a / b; else print "?" }'; }

EXTRA_BEFORE_CHECKS=$(checks_now)
EXTRA_BEFORE_CONFIRM=$(confirm_checks_now)
row "1-4. extra checks of second opinions while only agents failed (kills, partition, loss; information)" \
  "$EXTRA_BEFORE_CONFIRM confirmer checks for $EXTRA_BEFORE_CHECKS owner checks ($(ratio "$EXTRA_BEFORE_CONFIRM" "$EXTRA_BEFORE_CHECKS"))" "-" "info"
busiest=$(busiest_agent)
bad_name=$(name "$busiest")
obs=$((busiest % N + 1))
mapfile -t BAD_OWNED < <(confirm_lines "$obs" | awk -v n="$bad_name" '$3 == n { print $1 }')
log "bad route: traffic between $bad_name (it checks ${#BAD_OWNED[@]} origins) and the origins dropped, ${BAD_ROUTE_SECONDS}s, sampling every agent's /v1/origins"
c0=$(checks_now) f0=$(confirm_checks_now)
if block_route "$busiest"; then
  t_start=$(now_ms)
  samples=0 downs=0 first_down=""
  while (($(now_ms) - t_start < BAD_ROUTE_SECONDS * 1000)); do
    for i in $(seq 1 $N); do
      lines=$(confirm_lines "$i") || continue
      samples=$((samples + 1))
      d=$(awk '$2 == "down"' <<<"$lines" | wc -l)
      if ((d > 0)); then
        downs=$((downs + d))
        [[ -n $first_down ]] || first_down="$(name "$i") showed $(awk '$2 == "down" { print $1 " (" $4 ")" }' <<<"$lines" | head -3 | paste -sd' ') at +$((($(now_ms) - t_start) / 1000))s"
      fi
    done
    sleep 0.25
  done
  disputed=0
  lines=$(confirm_lines "$obs")
  for id in "${BAD_OWNED[@]}"; do
    awk -v id="$id" '$1 == id && $2 == "up" && $4 == "disputed" { f = 1 } END { exit !f }' <<<"$lines" &&
      disputed=$((disputed + 1))
  done
  c1=$(checks_now) f1=$(confirm_checks_now)
  unblock_route "$busiest" || die "cannot restore the route of $bad_name"
  row "6. bad route from $bad_name to the origins for ${BAD_ROUTE_SECONDS} s: origins shown down, on any agent" \
    "$downs in $samples agent-samples (${first_down:-none}); ${disputed} of the ${#BAD_OWNED[@]} origins $bad_name checks disputed (up) at the end" \
    "0 down; all of them disputed" \
    "$(verdict test "$downs" -eq 0 -a "${#BAD_OWNED[@]}" -gt 0 -a "$disputed" -eq "${#BAD_OWNED[@]}")"
  row "6. extra checks during the bad route (information)" \
    "$((f1 - f0)) confirmer checks for $((c1 - c0)) owner checks ($(ratio $((f1 - f0)) $((c1 - c0))))" "-" "info"
  t_unblock=$(now_ms)
  ok=1
  for i in $(seq 1 $N); do
    wait_until 30 "$(name "$i"): every origin plain up after the route is back" all_plain_up "$i" || ok=0
  done
  if ((ok)); then
    log "route back: every origin plain up on every agent after $(($(now_ms) - t_unblock)) ms"
  else
    row "6. after the route is back" "some origin not plain up within 30 s" "30 s" FAIL
  fi
else
  row "6. bad route from one vantage point" "cannot block the route" "-" FAIL
fi

# --- 7. killed origins ---------------------------------------------------------------
# o01 (HTTP) and o03 (TCP): their listeners closed. The bound on "down on
# every agent": the first failing check within an interval (+10 % jitter),
# fall - 1 more at the settling interval (interval/4, +10 %), the owner's
# last check (at most a timeout), then the second opinion: the suspect
# reaches the confirmer, its check (at most a timeout), the answer comes
# back, and the down record reaches every agent: three replications of at
# most a pull interval (1000 ms) each.
FALL=3 TIMEOUT_MS=$((INTERVAL_MS * 8 / 10)) PULL_MS=1000
DOWN_BOUND_MS=$((INTERVAL_MS * 11 / 10 + (FALL - 1) * INTERVAL_MS * 11 / 40 + 2 * TIMEOUT_MS + 3 * PULL_MS))
down_everywhere() { # down_everywhere ID: down and confirmed (CONFIRM=0: down) on every agent
  local i line want=down/confirmed
  [[ ${CONFIRM:-1} == 0 ]] && want=down/-
  for i in $(seq 1 $N); do
    line=$(confirm_lines "$i" | awk -v id="$1" '$1 == id') || return 1
    [[ $(awk '{ print $2 "/" $4 }' <<<"$line") == "$want" ]] || return 1
  done
}
KILLED=(o01 o03)
c0=$(checks_now) f0=$(confirm_checks_now)
printf '%s\n' "$BASE_PORT" "$((BASE_PORT + 2))" >"$W/dead-ports"
t_kill=$(now_ms)
log "killed origins ${KILLED[*]} (ports $BASE_PORT, $((BASE_PORT + 2)): listeners closed)"
declare -A DOWN_AT=()
while ((${#DOWN_AT[@]} < ${#KILLED[@]})) && (($(now_ms) - t_kill < 30000)); do
  for id in "${KILLED[@]}"; do
    [[ -n ${DOWN_AT[$id]:-} ]] && continue
    down_everywhere "$id" && DOWN_AT[$id]=$(($(now_ms) - t_kill))
  done
  sleep 0.1
done
c1=$(checks_now) f1=$(confirm_checks_now)
figures="" worst=0
for id in "${KILLED[@]}"; do
  t=${DOWN_AT[$id]:-999999}
  if ((t == 999999)); then figures+="$id: not down everywhere in 30 s; "; else figures+="$id: $t ms; "; fi
  ((t > worst)) && worst=$t
done
what="down, confirmed,"
[[ ${CONFIRM:-1} == 0 ]] && what="down (CONFIRM=0)"
row "7. killed origins (HTTP, TCP): $what on all 5 agents after" "${figures%; }" \
  "$DOWN_BOUND_MS ms (1.1 interval + $((FALL - 1)) x 1.1 settling + 2 timeouts + 3 pulls)" \
  "$(verdict test "$worst" -le "$DOWN_BOUND_MS")"
row "7. extra checks while they died (information)" \
  "$((f1 - f0)) confirmer checks for $((c1 - c0)) owner checks ($(ratio $((f1 - f0)) $((c1 - c0))))" "-" "info"
# While they stay down, each failing check of their owners asks again (so
# that a down only the owner sees is lifted): the cost, over 10 s.
sleep 10
c2=$(checks_now) f2=$(confirm_checks_now)
row "7. extra checks while ${#KILLED[@]} of $ORIGINS origins stay dead for 10 s (information)" \
  "$((f2 - f1)) confirmer checks for $((c2 - c1)) owner checks ($(ratio $((f2 - f1)) $((c2 - c1))))" "-" "info"
: >"$W/dead-ports"
ok=1
for i in $(seq 1 $N); do
  wait_until 30 "$(name "$i"): every origin plain up after the revival" all_plain_up "$i" || ok=0
done
((ok)) || row "7. after the origins are back" "some origin not plain up within 30 s" "30 s" FAIL

# --- 5. full stop and restart -------------------------------------------------------
before=$(registry_of 1)
declare -A ACTOR=()
for i in $(seq 1 $N); do ACTOR[$i]=$(node_field "$i" actor); done
for i in $(seq 1 $N); do kill_agent "$i"; done
log "stopped all agents (kill -9); restarting each cut off from the others"
groups=()
for i in $(seq 1 $N); do groups+=("$i"); done
cut_groups "${groups[@]}" || die "cannot isolate the agents"
t_restart=$(now_ms)
for i in $(seq 1 $N); do start_agent "$i"; done
bad=0
for i in $(seq 1 $N); do
  if ! wait_api "$i"; then
    bad=$((bad + 1))
    continue
  fi
  cur=$(registry_of "$i")
  actor=$(node_field "$i" actor)
  if [[ $cur != "$before" ]]; then
    bad=$((bad + 1))
    log "$(name "$i") restarted alone serves $(registry_ids "$i" | tr , ' ' | wc -w) origins, not the $ORIGINS_NOW registered"
  fi
  # One actor per data dir: a restart (even after kill -9) keeps it, so
  # causal contexts do not grow with restarts.
  if ! [[ $actor =~ ^[0-9]+$ ]] || [[ $actor != "${ACTOR[$i]}" ]]; then
    bad=$((bad + 1))
    log "$(name "$i") actor $actor after a restart, was ${ACTOR[$i]}"
  fi
done
heal
# shellcheck disable=SC2046
if wait_until 60 "all agents see all 5 members after the restart" all_see_all $(seq 1 $N); then
  t_join=$(($(now_ms) - t_restart))
  ok=1
  for i in $(seq 1 $N); do
    wait_until 30 "$(name "$i"): every origin checked again" all_checked "$i" "$t_restart" "$ALL_NAMES" || ok=0
  done
  t_up=$(($(now_ms) - t_restart))
  row "5. stop (kill -9) and restart of all 5 agents: registry served by each from its own store" \
    "$ORIGINS_NOW of $ORIGINS_NOW origins on each of 5 agents ($bad problems); rejoined after $t_join ms, all origins up again after $t_up ms" \
    "all origins, each agent" "$(verdict test "$bad" -eq 0 -a "$ok" -eq 1)"
else
  row "5. stop and restart of all 5 agents" "the cluster did not re-form within 60 s" "60 s" FAIL
fi

# --- results -------------------------------------------------------------------
echo
echo "## Fault injection results"
echo
echo "5 agents (preset $PRESET, suspicion $SUSPICION_MS ms at N = 5), $ORIGINS origins checked every $INTERVAL_MS ms, $((($(now_ms) - START_MS) / 1000)) s in all."
echo
echo "| check | figure | bound | result |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
if ((${#KILL_DETAILS[@]})); then
  echo "kill rounds:"
  printf '  - %s\n' "${KILL_DETAILS[@]}"
  echo
fi
if ((FAILED)); then
  echo "FAILED"
  for i in $(seq 1 $N); do
    echo "--- last lines of $(name "$i").log"
    tail -n 15 "$W/$(name "$i").log"
  done
  exit 1
fi
if ((${#NOT_RUN[@]})); then
  echo "NOT RUN: ${#NOT_RUN[@]} check(s) could not run:"
  printf '  - %s\n' "${NOT_RUN[@]}"
  if [[ ${CI:-} == true ]]; then
    echo "FAILED: under CI=true every check must run"
    exit 3
  fi
  echo "the checks that ran passed; NOT every check ran (under CI=true this fails)"
  exit 0
fi
echo "all checks passed"
