#!/bin/bash
# Node fail-over of tandem, measured exactly like Pacemaker + Corosync in the
# shared harness (../shared/failover-harness): same namespaces and bridge,
# same VIP (10.99.0.100, ocf:heartbeat:IPaddr2) + nginx (ocf:heartbeat:nginx
# answering its node name) in one group, resource-stickiness 100,
# no-quorum-policy stop, same client (lib/measure.py: HTTP every 50 ms,
# rtnetlink VIP add/del times) and the same cut commands. Only the cluster
# manager differs: `tandem daemon` in each node namespace.
#
#   ./run.sh [all]        set up, measure RUNS cuts, tear down, summarize
#   ./run.sh compare      the above, then the harness's own Pacemaker series
#                         (RUNS cuts, default token) and the ratio table
#   ./run.sh ratio        only the ratio table, from saved series (TAG=...)
#   ./run.sh setup | measure | teardown | status | report
#
# Knobs: RUNS [20], CUT [link|crash], SETTLE [5] (calm seconds between runs),
# RESULTS [bench/results/failover-netns], HARNESS [../shared/failover-harness],
# TANDEM_BIN [target/release/tandem: `cargo build --release -p tandem-cli`],
# LEASE_MS / MARGIN_MS (node settings; default: what `cluster setup` writes),
# KEEP_STATE=1 keeps /var/tmp/tandem-netns-state (logs) after teardown.
#
# The harness's network set-up (net_setup and its variables) is read from
# its run.sh at run time, and its lib/measure.py and lib/summarize.py are
# called in place: nothing of it is copied here. Needs root, iproute2,
# python3, nginx-light, resource-agents (and for `compare`: pacemaker,
# corosync, see the harness README). Like the harness, it talks to no
# address outside the namespaces it creates.
set -Eeuo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HARNESS=${HARNESS:-$(cd "$ROOT/../shared/failover-harness" 2>/dev/null && pwd || echo "$ROOT/../shared/failover-harness")}
HLIB=$HARNESS/lib
STATE=${STATE:-/var/tmp/tandem-netns-state}
RESULTS=${RESULTS:-$ROOT/bench/results/failover-netns}
RUNS=${RUNS:-20}
CUT=${CUT:-link}
SETTLE=${SETTLE:-5}
NODES=3
PY=/usr/bin/python3
BIN=${TANDEM_BIN:-$ROOT/target/release/tandem}
TAG=${TAG:-tandem-n3-${CUT}}
API_OFFSET=1000

# --- the harness's network set-up, taken from its run.sh unchanged ---------
[ -r "$HARNESS/run.sh" ] || { echo "no harness at $HARNESS (set HARNESS=...)" >&2; exit 1; }
eval "$(grep -E '^(NET|VIP|SW)=' "$HARNESS/run.sh")"
for fn in log die node_ns net_setup sw get http_answer; do
    eval "$(sed -n "/^$fn() *{/,/^}/p" "$HARNESS/run.sh")"
    declare -F "$fn" >/dev/null || { echo "harness run.sh has no $fn()" >&2; exit 1; }
done

# ---------------------------------------------------------------- teardown
our_pid() {  # pid -> true if it runs our node-init.sh
    local p=$1
    [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] &&
        tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "$HERE/node-init.sh"
}

node_stop_hard() {  # SIGKILL the node: its PID namespace dies with its init
    local n=$1 d=$STATE/n$1 p f
    for f in init.pid unshare.pid; do
        p=$(cat "$d/$f" 2>/dev/null || true)
        if our_pid "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    for f in init.pid unshare.pid; do
        p=$(cat "$d/$f" 2>/dev/null || true)
        for _ in $(seq 1 100); do
            [ -n "$p" ] && [ -e "/proc/$p" ] || break
            sleep 0.05
        done
    done
    rm -f "$d/init.pid" "$d/unshare.pid"
}

teardown() {
    local n
    [ -d "$STATE" ] || return 0
    log "teardown"
    rmdir "$STATE/power" 2>/dev/null || rm -rf "$STATE/power"
    for n in 1 2 3; do [ -d "$STATE/n$n" ] && node_stop_hard "$n"; done
    wait 2>/dev/null || true
    for n in 1 2 3; do ip netns del "$(node_ns "$n")" 2>/dev/null || true; done
    ip netns del "$SW" 2>/dev/null || true
    if [ "${KEEP_STATE:-0}" = 1 ]; then log "state kept in $STATE"; else rm -rf "$STATE"; fi
}

# ------------------------------------------------------------------- setup
preflight() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    [ -x "$BIN" ] || die "$BIN missing: cargo build --release -p tandem-cli (or set TANDEM_BIN)"
    for c in ip nginx unshare nsenter "$PY"; do
        command -v "$c" >/dev/null || die "missing $c"
    done
    [ -x /usr/lib/ocf/resource.d/heartbeat/IPaddr2 ] && [ -x /usr/lib/ocf/resource.d/heartbeat/nginx ] ||
        die "missing resource-agents (apt-get install resource-agents nginx-light)"
    [ "$CUT" = link ] || [ "$CUT" = crash ] || die "CUT must be link or crash"
    [ ! -e "$STATE" ] || die "$STATE exists: a previous run was not torn down (./run.sh teardown)"
    if ip netns list | grep -qE '^pcmk-(n[0-9]|sw)\b'; then
        die "namespaces pcmk-* exist (the Pacemaker harness is running or was not torn down)"
    fi
}

cluster_files() {
    local n args=()
    for n in $(seq 1 "$NODES"); do args+=("pcmk-n$n=$NET.$n:7000"); done
    "$BIN" cluster setup --name netns-bench --api-port-offset "$API_OFFSET" --dir "$STATE/cluster" "${args[@]}" >/dev/null
    install_power_switch
    for n in $(seq 1 "$NODES"); do
        "$PY" - "$STATE/cluster/pcmk-n$n.toml" "$STATE/fence" <<'PYEOF'
import sys
path, fence_dir = sys.argv[1:]
text = open(path).read()
text = text.replace("[agents]\n", f'[agents]\nfence_dir = "{fence_dir}"\n', 1)
open(path, "w").write(text)
PYEOF
    done
    if [ -n "${LEASE_MS:-}${MARGIN_MS:-}" ]; then
        for n in $(seq 1 "$NODES"); do
            "$PY" - "$STATE/cluster/pcmk-n$n.toml" "${LEASE_MS:-}" "${MARGIN_MS:-}" <<'PYEOF'
import re, sys
path, lease, margin = sys.argv[1:]
text = open(path).read()
if margin:
    text = re.sub(r"(?m)^lease_margin_ms = \d+", f"lease_margin_ms = {margin}", text)
if lease:
    text = re.sub(r"(?m)^lease_ms = \d+", f"lease_ms = {lease}", text)
open(path, "w").write(text)
PYEOF
        done
    fi
    cat >"$STATE/cluster.toml" <<EOF
# the shared harness's CIB, in tandem's format
[cluster]
name = "netns-bench"
options = { fencing-enabled = true, no-quorum-policy = "stop" }
resource-defaults = { resource-stickiness = 100 }

# tandem recovers a lost node's resources only after a fence: the power
# switch of this bench (see install_power_switch)
[[resource]]
id = "power"
agent = "stonith:fence_benchpower"
params = { pcmk_host_list = "$(seq -s ' ' -f 'pcmk-n%g' 1 "$NODES")", state_dir = "$STATE" }

[[resource]]
id = "vip"
agent = "ocf:heartbeat:IPaddr2"
params = { ip = "$VIP", cidr_netmask = "24", nic = "eth0" }
op = [{ name = "monitor", interval = "10s", timeout = "20s" }]

[[resource]]
id = "www"
agent = "ocf:heartbeat:nginx"
params = { configfile = "/run/harness/nginx.conf" }
op = [{ name = "monitor", interval = "10s", timeout = "20s" }]

[[group]]
id = "web"
members = ["vip", "www"]
EOF
    for n in $(seq 1 "$NODES"); do printf '\n[[node]]\nname = "pcmk-n%s"\n' "$n" >>"$STATE/cluster.toml"; done
}

node_start() {  # start node N's init in its namespaces
    local n=$1 d=$STATE/n$1 up ip=""
    mkdir -p "$d"
    ip netns exec "$(node_ns "$n")" \
        unshare --mount --uts --pid --fork --kill-child --mount-proc --propagation private \
        "$HERE/node-init.sh" "$n" "$d" "$BIN" "$STATE/cluster/pcmk-n$n.toml" >>"$d/init.log" 2>&1 </dev/null &
    up=$!
    disown "$up"
    echo "$up" >"$d/unshare.pid"
    for _ in $(seq 1 100); do
        ip=$(cat "/proc/$up/task/$up/children" 2>/dev/null | awk '{print $1}') || true
        [ -n "$ip" ] && break
        sleep 0.05
    done
    [ -n "$ip" ] || die "node $n: init did not start (see $d/init.log)"
    echo "$ip" >"$d/init.pid"
}

td() { sw "$BIN" "$@" --admin "$STATE/cluster/admin.toml"; }

# An out-of-band power switch, as IPMI would be: the fence agent, run by a
# node's daemon inside that node's namespaces (it cannot see another node's
# PID namespace), drops a request in $STATE/power; power_switch, on the
# host, powers the target off (SIGKILL to its namespace's init, which takes
# every process of the node with it; its VIP off its interface) and answers.
install_power_switch() {
    mkdir -p "$STATE/fence" "$STATE/power"
    cat >"$STATE/fence/fence_benchpower" <<'AGENT'
#!/bin/sh
action=; plug=; state_dir=
while IFS='=' read -r k v; do
    case "$k" in
        action) action=$v ;;
        plug|port) plug=$v ;;
        nodename) [ -n "$plug" ] || plug=$v ;;
        state_dir) state_dir=$v ;;
    esac
done
case "$action" in
    metadata) echo '<?xml version="1.0"?><resource-agent name="fence_benchpower"><parameters><parameter name="state_dir"/></parameters><actions><action name="reboot"/><action name="off"/><action name="monitor"/><action name="list"/><action name="metadata"/></actions></resource-agent>' ;;
    monitor|status|on|validate-all) ;;
    list) ls "$state_dir" | sed -n 's/^n\([0-9]*\)$/pcmk-n\1/p' ;;
    reboot|off)
        req="$state_dir/power/$$"
        echo "$plug" >"$req.tmp" && mv "$req.tmp" "$req.req"
        for _ in $(seq 1 200); do
            [ -e "$req.done" ] && { rm -f "$req.done"; exit 0; }
            sleep 0.02
        done
        exit 1 ;;
    *) exit 1 ;;
esac
AGENT
    chmod 755 "$STATE/fence/fence_benchpower"
}

power_switch() {  # runs on the host until $STATE/power goes
    local req node k
    while [ -d "$STATE/power" ]; do
        for req in "$STATE"/power/*.req; do
            [ -e "$req" ] || continue
            node=$(cat "$req"); k=${node#pcmk-n}
            log "power switch: $node off"
            node_stop_hard "$k"
            ip -n "$(node_ns "$k")" addr del "$VIP/24" dev eth0 2>/dev/null || true
            mv "$req" "${req%.req}.done"
        done
        sleep 0.02
    done
}

cstate() {  # the harness's facts, from `tandem status --json`
    td status --json 2>/dev/null | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("online=0 dc=- quorum=0 vip=- www=- idle=0"); sys.exit(0)
c = d.get("cluster", {})
def where(doc, rid):
    roles = ((doc or {}).get("resources") or {}).get(rid) or {}
    nodes = [n for role, ns in roles.items() if role == "Started" for n in ns]
    return nodes[0] if len(nodes) == 1 else ("MULTI" if nodes else "-")
idle = int(d.get("running") == d.get("placement"))
print("online=%d dc=%s quorum=%d vip=%s www=%s idle=%d" % (c.get("votes_alive", 0), c.get("dc") or "-",
      int(bool(c.get("quorum"))), where(d.get("running"), "vip"), where(d.get("running"), "www"), idle))
' || echo "online=0 dc=- quorum=0 vip=- www=- idle=0"
}

wait_online() {
    local t=${1:-120} s
    for _ in $(seq 1 $((t * 2))); do
        s=$(cstate)
        if [ "$(get online "$s")" = "$NODES" ] && [ "$(get dc "$s")" != - ]; then return 0; fi
        sleep 0.5
    done
    die "cluster did not come up: $s"
}

settle() {  # all nodes online, the group on one node, no transition pending, HTTP from it
    local t=${1:-120} s owner ans
    for _ in $(seq 1 $((t * 2))); do
        s=$(cstate)
        owner=$(get vip "$s")
        if [ "$(get online "$s")" = "$NODES" ] && [ "$(get dc "$s")" != - ] && [ "$(get idle "$s")" = 1 ] &&
           [ "$owner" != - ] && [ "$owner" != MULTI ] && [ "$owner" = "$(get www "$s")" ]; then
            ans=$(http_answer)
            [ "$ans" = "$owner" ] && { echo "$s"; return 0; }
        fi
        sleep 0.5
    done
    die "cluster did not settle: $s / http='$(http_answer)'"
}

setup() {
    preflight
    log "setup: tandem $(${BIN} --version 2>/dev/null || true) CUT=$CUT"
    mkdir -p "$STATE"
    net_setup
    cluster_files
    for n in $(seq 1 "$NODES"); do node_start "$n"; done
    power_switch &
    wait_online 120
    td config apply "$STATE/cluster.toml" >/dev/null
    settle 120 >/dev/null
    log "cluster up"
}

restore_node() {  # undo the cut of node K
    local k=$1
    if [ "$CUT" = crash ]; then
        ip -n "$(node_ns "$k")" addr del "$VIP/24" dev eth0 2>/dev/null || true
        sw ip link set "n${k}sw" up
        node_start "$k"
    else
        sw ip link set "n${k}sw" up
        # Powered off by the fence: power it on again.
        [ -e "$STATE/n$k/init.pid" ] || node_start "$k"
    fi
}

measure() {
    local i s owner dc k cut res out
    mkdir -p "$RESULTS"
    out=$RESULTS/$TAG.jsonl
    : >"$out"
    {
        echo "# $TAG  $(date -Is)"
        "$BIN" --version 2>/dev/null || true
        git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true
        grep -hE '^(lease_ms|lease_margin_ms|heartbeat_ms|election_m..)_?m?s? =' "$STATE/cluster/pcmk-n1.toml" || true
        dpkg-query -W -f='${Package} ${Version}\n' resource-agents nginx-light 2>/dev/null || true
        uname -r
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    } >"$RESULTS/$TAG.env"
    for i in $(seq 1 "$RUNS"); do
        s=$(settle 120)
        sleep "$SETTLE"
        s=$(settle 120)
        owner=$(get vip "$s"); dc=$(get dc "$s")
        k=${owner#pcmk-n}
        if [ "$CUT" = crash ]; then
            cut="kill -KILL $(cat "$STATE/n$k/unshare.pid") $(cat "$STATE/n$k/init.pid"); ip link set n${k}sw down"
        else
            cut="ip link set n${k}sw down"
        fi
        log "run $i/$RUNS: group on $owner, DC $dc -> cut ($CUT)"
        res=$(sw "$PY" "$HLIB/measure.py" --vip "$VIP" --expect "$owner" --cut "$cut" \
                --nodes "$(for n in $(seq 1 "$NODES"); do printf 'pcmk-n%s,' "$n"; done)") || true
        [ -n "$res" ] || res='{"error":"measure.py failed"}'
        RES=$res "$PY" -c '
import json, os, sys
r = json.loads(os.environ["RES"])
r.update(run=int(sys.argv[1]), owner=sys.argv[2], dc=sys.argv[3], cut_mode=sys.argv[4],
         dc_was_cut=(sys.argv[2] == sys.argv[3]), manager="tandem")
print(json.dumps(r))' "$i" "$owner" "$dc" "$CUT" >>"$out"
        log "run $i: $(tail -1 "$out" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("failover=%ss new=%s vip_del_old=%s vip_add_new=%s err=%s" % (r.get("failover_s"), r.get("new_node"), r.get("vip_removed_old_s"), r.get("vip_added_new_s"), r.get("error","")))')"
        [ "$CUT" = crash ] && node_stop_hard "$k"
        restore_node "$k"
        wait_online 120 || true
    done
    settle 120 >/dev/null
    collect_logs
    report_tag "$TAG"
}

collect_logs() {  # the tandem logs of this series, gzipped (KEEP_STATE keeps them whole)
    local n
    mkdir -p "$STATE/logs"
    for n in $(seq 1 "$NODES"); do
        gzip -c "$STATE/n$n/tandem.log" >"$STATE/logs/n$n-tandem.log.gz" 2>/dev/null || true
    done
}

report_tag() {  # results/TAG.summary: the harness's table + the double-VIP overlap
    local tag=$1
    {
        "$PY" "$HLIB/summarize.py" "$RESULTS/$tag.jsonl"
        "$PY" "$HERE/overlap.py" "$RESULTS/$tag.jsonl"
    } | tee "$RESULTS/$tag.summary" >&2
}

compare() {  # tandem series, then the harness's Pacemaker series, then the ratios
    "$0" all
    # The harness also writes per-request CSVs and gzipped logs: keep those
    # outside the repository, copy only its summaries.
    local ptag=pacemaker-n3-$CUT pres=/var/tmp/tandem-netns-pacemaker-results
    log "Pacemaker series: RUNS=$RUNS CUT=$CUT in $HARNESS (full results in $pres)"
    RUNS=$RUNS CUT=$CUT RESULTS=$pres TAG=$ptag "$HARNESS/run.sh" all
    cp "$pres/$ptag.jsonl" "$pres/$ptag.summary" "$pres/$ptag.env" "$RESULTS/"
    ratio
}

ratio() {  # the ratio table from the saved series (both must exist)
    local ptag=pacemaker-n3-$CUT
    "$PY" "$HERE/overlap.py" --compare "$RESULTS/$ptag.jsonl" "$RESULTS/$TAG.jsonl" |
        tee "$RESULTS/compare-$TAG.txt"
}

on_exit() {
    local rc=$1
    trap - EXIT INT TERM
    if [ "$rc" != 0 ] || [ "${2:-1}" = 1 ]; then teardown; fi
    exit "$rc"
}

case "${1:-all}" in
    all)
        trap 'on_exit $? 1' EXIT; trap 'on_exit 130 1' INT; trap 'on_exit 143 1' TERM
        setup
        measure
        ;;
    compare) compare ;;
    ratio) ratio ;;
    setup)
        trap 'on_exit $? 0' EXIT; trap 'on_exit 130 0' INT; trap 'on_exit 143 0' TERM
        setup ;;
    measure) measure ;;
    teardown) teardown ;;
    status) td status ;;
    report) for f in "$RESULTS"/*.jsonl; do report_tag "$(basename "$f" .jsonl)"; done ;;
    *) sed -n '2,27p' "$0"; exit 2 ;;
esac
