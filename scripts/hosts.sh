#!/usr/bin/env bash
# scripts/hosts.sh: test hosts for the chaos harness and the Jepsen test, made of Linux network
# namespaces on one machine.
#
# USAGE (as root)
#   scripts/hosts.sh up [-n N] [--sshd --key PUBKEY_FILE]   make N hosts (default 5, at most 100)
#   scripts/hosts.sh down                                   remove everything `up` made
#   scripts/hosts.sh status                                 show hosts, addresses, sshd, rules
#   scripts/hosts.sh exec HOST CMD...                       run CMD inside HOST's namespace
#   scripts/hosts.sh check                                  can this machine make hosts? (exit 0/1)
#
#   HOST is paxos-h2, h2, 2 or 10.77.0.12.
#
# WHAT `up` MAKES
#   - namespaces paxos-h1..paxos-hN, each with loopback up and one interface eth0 with the address
#     10.77.0.(10+i)/24 (paxos-h1 = 10.77.0.11, paxos-h2 = 10.77.0.12, ...);
#   - a bridge paxos-br0 with the address 10.77.0.1/24, the "control" address: the machine itself
#     (the Jepsen control node, the chaos harness's clients) reaches the hosts from there;
#   - a veth pair per host: paxos-vI on the bridge <-> eth0 inside paxos-hI;
#   - no default route in any namespace, no NAT, no forwarding to any other interface: the hosts
#     reach each other and 10.77.0.1, nothing else. IPv6 is switched off on all of it.
#   - one host iptables rule `-I FORWARD 1 -i paxos-br0 -o paxos-br0 -j ACCEPT` (comment
#     paxos-hosts). When br_netfilter is loaded and net.bridge.bridge-nf-call-iptables=1,
#     frames bridged between two hosts pass the machine's own FORWARD chain; a DROP policy
#     there (Docker sets one) would cut node-to-node traffic silently. The rule lets exactly
#     bridge-to-bridge traffic through and `down` removes it. It is added whatever the sysctl
#     says (harmless when the sysctl is 0; covers br_netfilter being loaded later).
#   - with --sshd: an sshd in every namespace, listening only on 10.77.0.(10+i):22, root login
#     with the given public key only (ed25519 works with Jepsen's sshj), with its own host keys,
#     config, pid file, log and authorized_keys under /run/paxos-hosts/hI/. Needs the Debian
#     packages openssh-server, sudo and netcat-openbsd (Jepsen runs `sudo` even as root, and
#     `nc -z` to wait for ports). /run/sshd is created if missing (Debian's sshd needs it) and
#     left in place by `down` (it is a system directory an sshd of the machine may use too).
#
#   State lives in /run/paxos-hosts/: `created` lists what `up` made, in order, and `down`
#   undoes exactly that, then sweeps anything that still carries our names (paxos-hN
#   namespaces, paxos-br0, paxos-vN links, FORWARD rules with the comment paxos-hosts), so
#   `down` also cleans up after a crash that lost the state. `down` kills every process whose
#   network namespace is one of the hosts (sshd, servers, anything started with `exec`).
#   A lock file, /run/paxos-hosts.lock (empty, left in place), makes concurrent runs wait.
#   `up` is idempotent: run it twice and the second one only checks (a different N starts
#   over). A failed or interrupted (Ctrl-C) `up` removes everything it made, and so does
#   everything that was up before it. `down` with nothing up is fine.
#
#   Faults (the chaos harness, src/chaos/netns.ts, and Jepsen's jepsen.net/iptables) are made
#   inside the namespaces only: `iptables -A INPUT -s 10.77.0.12/32 -j DROP` in paxos-h1 means
#   h1 no longer hears h2; `iptables -F` in every namespace heals. The control address 10.77.0.1
#   is never dropped, so SSH and the harness's view of the nodes keep working.
#
# WHAT SHARING ONE FILESYSTEM AND ONE PID SPACE MEANS FOR THE JEPSEN TEST
#   The namespaces separate the network only. Every host sees the same files, the same
#   processes, the same clock and the same hostname. So:
#   - Never find a node's process by name: pgrep, killall, jepsen.control.util's grepkill!,
#     signal!, kill-bin!, and stop-daemon! given a command (it runs `killall -w`) hit the
#     processes of EVERY node. Use the one-argument (stop-daemon! pidfile), and pause/resume
#     with `kill -STOP`/`kill -CONT` of the pid in that node's pidfile.
#   - Give every node its own copy of the binary and its own directory for pidfile, log and
#     data (e.g. /opt/paxos/10.77.0.11/); then start-stop-daemon's --exec check matches only
#     that node's process. Hard-coded shared paths (/tmp/jepsen/..., /opt/jepsen) collide.
#   - :os must be a no-op (the nodes are this machine); use the addresses as node names
#     (`hostname` is the same everywhere). Leave out :clock faults: they would set the real
#     clock of the whole machine.
#   - A killed process stays a zombie until it is reaped (about a second): wait for it before
#     checking that it is gone or restarting on the same port.
#   - Processes see each other's files: a node must not read another node's data dir.
#   - The kernel has no netem/prio qdisc here, so Jepsen's :packet fault cannot work; random
#     loss is made with iptables `-m statistic --mode random --probability P -j DROP`.
set -euo pipefail

readonly PREFIX="paxos-h"
readonly BRIDGE="paxos-br0"
readonly VETH_PREFIX="paxos-v"
readonly SUBNET_PREFIX="10.77.0"
readonly CONTROL_ADDR="10.77.0.1"
readonly STATE_DIR="/run/paxos-hosts"
readonly CREATED="$STATE_DIR/created"
readonly HOSTS_FILE="$STATE_DIR/hosts"
readonly LOCK_FILE="/run/paxos-hosts.lock"
readonly RULE_COMMENT="paxos-hosts"
readonly MAX_HOSTS=100
readonly PROG="hosts.sh"

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

usage() {
  cat <<EOF
usage: $PROG up [-n N] [--sshd --key PUBKEY_FILE] | down | status | exec HOST CMD... | check
EOF
}

host_name() { printf '%s%s' "$PREFIX" "$1"; }
host_addr() { printf '%s.%s' "$SUBNET_PREFIX" "$((10 + $1))"; }
veth_name() { printf '%s%s' "$VETH_PREFIX" "$1"; }

# ---------------------------------------------------------------------------------------------
# Preconditions: one clear line and a non-zero exit when something is missing.

require_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (network namespaces and iptables need it); try: sudo $0 ${CMD:-}"
}

require_tools() {
  command -v ip >/dev/null 2>&1 || die "'ip' not found: apt-get install -y iproute2"
  command -v iptables >/dev/null 2>&1 || die "'iptables' not found: apt-get install -y iptables"
}

sshd_bin() {
  if [ -x /usr/sbin/sshd ]; then echo /usr/sbin/sshd; else command -v sshd 2>/dev/null || true; fi
}

require_sshd_tools() {
  local missing=()
  [ -n "$(sshd_bin)" ] && command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-server)
  command -v sudo >/dev/null 2>&1 || missing+=(sudo)
  command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
  if [ "${#missing[@]}" -gt 0 ]; then
    die "--sshd needs ${missing[*]} (Jepsen needs sudo and nc on the nodes): apt-get install -y ${missing[*]}"
  fi
}

take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    flock -w 60 9 || die "another $PROG is running (lock $LOCK_FILE)"
  fi
}

# ---------------------------------------------------------------------------------------------
# State: every thing `up` creates is noted in $CREATED (one "KIND ARG..." a line) before or
# right after it is made, so that `down` removes exactly that.

note() {
  mkdir -p "$STATE_DIR"
  chmod 0755 "$STATE_DIR"
  touch "$CREATED"
  grep -qxF -- "$*" "$CREATED" || printf '%s\n' "$*" >>"$CREATED"
}

ns_exists() { [ -e "/run/netns/$1" ] || ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF -- "$1"; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

ns_list() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}[0-9]+\$" || true; }
link_list() {
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' \
    | grep -E "^(${BRIDGE}|${VETH_PREFIX}[0-9]+)\$" || true
}

fwd_rule_args() {
  # The rule as words after the chain name; the comment is left out where xt_comment is missing.
  if [ "${1:-with-comment}" = with-comment ]; then
    echo "-i $BRIDGE -o $BRIDGE -m comment --comment $RULE_COMMENT -j ACCEPT"
  else
    echo "-i $BRIDGE -o $BRIDGE -j ACCEPT"
  fi
}

set_sysctl_file() { # path value: best effort (IPv6 may be off in the kernel)
  if [ -w "$1" ]; then printf '%s' "$2" >"$1" 2>/dev/null || true; fi
}

# ---------------------------------------------------------------------------------------------
# down

pid_alive() { [ -n "${1:-}" ] && [ -d "/proc/$1" ] && kill -0 "$1" 2>/dev/null; }

kill_pids() { # pids...: TERM, wait up to 2 s, then KILL
  local pids=() p i
  for p in "$@"; do [ "$p" != "$$" ] && pid_alive "$p" && pids+=("$p"); done
  [ "${#pids[@]}" -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for i in $(seq 20); do
    local left=()
    for p in "${pids[@]}"; do
      # A zombie has left its namespaces already; it only waits for its parent to reap it.
      if pid_alive "$p" && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then left+=("$p"); fi
    done
    [ "${#left[@]}" -gt 0 ] || return 0
    pids=("${left[@]}")
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

stop_sshd() { # pidfile
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  if pid_alive "$pid" && grep -q sshd "/proc/$pid/comm" 2>/dev/null; then kill_pids "$pid"; fi
  rm -f "$1"
}

kill_ns_processes() { # ns
  local pids
  ns_exists "$1" || return 0
  pids="$(ip netns pids "$1" 2>/dev/null || true)"
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill_pids $pids
  pids="$(ip netns pids "$1" 2>/dev/null || true)"
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

del_ns() { # ns
  kill_ns_processes "$1"
  if ns_exists "$1"; then ip netns del "$1" 2>/dev/null || true; fi
}

del_link() { if link_exists "$1"; then ip link del dev "$1" 2>/dev/null || true; fi; }

del_fwd_rule() { # rule words, as one string (split on purpose)
  # shellcheck disable=SC2048,SC2086
  while iptables -w -C FORWARD $* 2>/dev/null; do iptables -w -D FORWARD $* || break; done
}

do_down() {
  local kind arg rest
  # 1. what the state says, last made first
  if [ -f "$CREATED" ]; then
    while read -r kind arg rest; do
      case "$kind" in
        sshd) stop_sshd "$arg" ;;
        ns) del_ns "$arg" ;;
        link) del_link "$arg" ;;
        forward) del_fwd_rule "$arg $rest" ;;
      esac
    done < <(tac "$CREATED")
  fi
  # 2. sweep: whatever still carries our names (state lost in a crash, or made by an older run)
  local f ns l line
  for f in "$STATE_DIR"/h*/sshd.pid; do [ -e "$f" ] && stop_sshd "$f"; done
  for ns in $(ns_list); do del_ns "$ns"; done
  for l in $(link_list); do [ "$l" = "$BRIDGE" ] || del_link "$l"; done
  del_link "$BRIDGE"
  while IFS= read -r line; do
    # shellcheck disable=SC2086
    iptables -w ${line/#-A /-D } 2>/dev/null || true
  done < <(iptables -w -S FORWARD 2>/dev/null | grep -E -- "--comment \"?${RULE_COMMENT}\"?( |\$)" || true)
  del_fwd_rule "$(fwd_rule_args without-comment)"
  rm -rf "$STATE_DIR"
}

# ---------------------------------------------------------------------------------------------
# up

check_subnet_free() {
  local other
  other="$(ip -o -4 addr show 2>/dev/null | awk -v br="$BRIDGE" '$2 != br && $4 ~ /^10\.77\.0\./ {print $2 " " $4}' | head -n1)"
  [ -z "$other" ] || die "10.77.0.0/24 is already in use on this machine ($other); refusing to shadow it"
}

ensure_bridge() {
  if ! link_exists "$BRIDGE"; then
    note link "$BRIDGE"
    ip link add name "$BRIDGE" type bridge
  fi
  set_sysctl_file "/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6" 1
  ip addr replace "$CONTROL_ADDR/24" dev "$BRIDGE"
  ip link set dev "$BRIDGE" up
}

ensure_forward_rule() {
  local args
  args="$(fwd_rule_args with-comment)"
  # shellcheck disable=SC2086
  if iptables -w -C FORWARD $args 2>/dev/null; then note forward "$args"; return 0; fi
  note forward "$args"
  # shellcheck disable=SC2086
  if ! iptables -w -I FORWARD 1 $args 2>/dev/null; then
    args="$(fwd_rule_args without-comment)"
    note forward "$args"
    # shellcheck disable=SC2086
    iptables -w -C FORWARD $args 2>/dev/null || iptables -w -I FORWARD 1 $args
  fi
}

ensure_host() { # i
  local i="$1" ns veth addr
  ns="$(host_name "$i")"; veth="$(veth_name "$i")"; addr="$(host_addr "$i")"
  if ! ns_exists "$ns"; then
    note ns "$ns"
    ip netns add "$ns"
  fi
  note ns "$ns"
  ip -n "$ns" link set dev lo up
  if ! link_exists "$veth" || ! ip -n "$ns" link show dev eth0 >/dev/null 2>&1; then
    del_link "$veth"
    ip -n "$ns" link del dev eth0 2>/dev/null || true
    note link "$veth"
    ip link add name "$veth" type veth peer name eth0 netns "$ns"
  fi
  note link "$veth"
  set_sysctl_file "/proc/sys/net/ipv6/conf/$veth/disable_ipv6" 1
  ip link set dev "$veth" master "$BRIDGE"
  ip link set dev "$veth" up
  # shellcheck disable=SC2016
  ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6 /proc/sys/net/ipv6/conf/eth0/disable_ipv6; do [ -w "$f" ] && echo 1 >"$f"; done; true' 2>/dev/null || true
  ip -n "$ns" addr replace "$addr/24" dev eth0
  ip -n "$ns" link set dev eth0 up
  # Only the on-link route of 10.77.0.0/24; make sure nobody added a way out.
  ip -n "$ns" route del default 2>/dev/null || true
}

sshd_running() { # pidfile
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  pid_alive "$pid" && grep -q sshd "/proc/$pid/comm" 2>/dev/null
}

ensure_sshd() { # i pubkey_file
  local i="$1" key="$2" ns addr dir sshd
  ns="$(host_name "$i")"; addr="$(host_addr "$i")"; dir="$STATE_DIR/h$i"; sshd="$(sshd_bin)"
  mkdir -p "$dir"; chmod 0755 "$dir"
  if [ ! -d /run/sshd ]; then mkdir -p /run/sshd; chmod 0755 /run/sshd; fi
  [ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "root@$addr" -f "$dir/ssh_host_ed25519_key" </dev/null >/dev/null
  [ -f "$dir/ssh_host_ecdsa_key" ] || ssh-keygen -q -t ecdsa -b 256 -N '' -C "root@$addr" -f "$dir/ssh_host_ecdsa_key" </dev/null >/dev/null
  install -m 0600 "$key" "$dir/authorized_keys"
  cat >"$dir/sshd_config" <<EOF
# sshd of test host $ns ($addr), written by scripts/hosts.sh up --sshd
ListenAddress $addr:22
AddressFamily inet
HostKey $dir/ssh_host_ed25519_key
HostKey $dir/ssh_host_ecdsa_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UsePAM no
StrictModes yes
UseDNS no
PrintMotd no
X11Forwarding no
AllowAgentForwarding no
AllowTcpForwarding no
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
EOF
  chmod 0644 "$dir/sshd_config"
  "$sshd" -t -f "$dir/sshd_config" || die "sshd rejected $dir/sshd_config"
  note sshd "$dir/sshd.pid" "$ns"
  if ! sshd_running "$dir/sshd.pid"; then
    rm -f "$dir/sshd.pid"
    ip netns exec "$ns" "$sshd" -f "$dir/sshd_config" -E "$dir/sshd.log"
  fi
  for _ in $(seq 50); do
    if sshd_running "$dir/sshd.pid" \
      && ip netns exec "$ns" ss -Hltn "sport = :22" 2>/dev/null | grep -qF "$addr:22"; then
      return 0
    fi
    sleep 0.1
  done
  die "sshd in $ns did not start listening on $addr:22 (see $dir/sshd.log)"
}

UP_IN_PROGRESS=0
on_exit() {
  local rc=$?
  if [ "$UP_IN_PROGRESS" = 1 ] && [ "$rc" != 0 ]; then
    UP_IN_PROGRESS=0
    trap '' INT TERM
    printf '%s: up failed or was interrupted; removing what it made\n' "$PROG" >&2
    do_down || true
  fi
  exit "$rc"
}

print_summary() {
  local n="$1" sshd="$2" i
  say "paxos test hosts: $n up on bridge $BRIDGE, control address $CONTROL_ADDR"
  for i in $(seq "$n"); do
    if [ "$sshd" = 1 ]; then
      say "  $(host_name "$i")  $(host_addr "$i")  sshd root@$(host_addr "$i"):22"
    else
      say "  $(host_name "$i")  $(host_addr "$i")"
    fi
  done
  say "bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 'n/a (br_netfilter not loaded)'); FORWARD accepts $BRIDGE->$BRIDGE"
  say "run in a host: $0 exec $(host_name 1) CMD...; remove all: $0 down"
}

do_up() {
  local n=5 sshd=0 key=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -n) [ $# -ge 2 ] || die "-n needs a number"; n="$2"; shift 2 ;;
      -n*) n="${1#-n}"; shift ;;
      --sshd) sshd=1; shift ;;
      --key) [ $# -ge 2 ] || die "--key needs a public key file"; key="$2"; shift 2 ;;
      --key=*) key="${1#--key=}"; shift ;;
      *) die "up: unknown argument '$1' ($(usage))" ;;
    esac
  done
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$((10#$n))" -lt 1 ] || [ "$((10#$n))" -gt "$MAX_HOSTS" ]; then
    die "-n must be a number from 1 to $MAX_HOSTS, got '$n'"
  fi
  n="$((10#$n))"
  if [ "$sshd" = 1 ]; then
    [ -n "$key" ] || die "--sshd needs --key PUBKEY_FILE (e.g. ~/.ssh/id_ed25519.pub)"
  fi
  if [ -n "$key" ]; then
    [ "$sshd" = 1 ] || die "--key only goes with --sshd"
    [ -r "$key" ] || die "cannot read public key file '$key'"
    ssh-keygen -l -f "$key" >/dev/null 2>&1 || die "'$key' is not an SSH public key"
  fi
  require_tools
  [ "$sshd" = 0 ] || require_sshd_tools
  take_lock

  # A different number of hosts than what is up: start over.
  if [ -f "$HOSTS_FILE" ] && [ "$(grep -c . "$HOSTS_FILE")" != "$n" ]; then
    say "$PROG: $(grep -c . "$HOSTS_FILE") hosts are up, $n asked for: removing them first"
    do_down
  fi
  check_subnet_free

  UP_IN_PROGRESS=1
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  mkdir -p "$STATE_DIR"; chmod 0755 "$STATE_DIR"
  ensure_bridge
  ensure_forward_rule
  local i
  for i in $(seq "$n"); do ensure_host "$i"; done
  if [ "$sshd" = 1 ]; then
    for i in $(seq "$n"); do ensure_sshd "$i" "$key"; done
  else
    # sshd not asked for this time: stop any left from an earlier `up --sshd`
    for i in $(seq "$n"); do
      if [ -f "$STATE_DIR/h$i/sshd.pid" ]; then stop_sshd "$STATE_DIR/h$i/sshd.pid"; rm -rf "$STATE_DIR/h$i"; fi
    done
    if [ -f "$CREATED" ]; then grep -v '^sshd ' "$CREATED" >"$CREATED.tmp" || true; mv "$CREATED.tmp" "$CREATED"; fi
  fi
  : >"$HOSTS_FILE.tmp"
  for i in $(seq "$n"); do printf '%s %s\n' "$(host_name "$i")" "$(host_addr "$i")" >>"$HOSTS_FILE.tmp"; done
  mv "$HOSTS_FILE.tmp" "$HOSTS_FILE"
  UP_IN_PROGRESS=0
  print_summary "$n" "$sshd"
}

# ---------------------------------------------------------------------------------------------
# status, exec, check

do_status() {
  require_tools
  local any=0 ns addr rules pidf sshd_s link_s
  if [ -f "$HOSTS_FILE" ]; then
    say "hosts (from $HOSTS_FILE):"
    while read -r ns addr; do
      any=1
      if ns_exists "$ns"; then
        link_s="$(ip -n "$ns" -o link show dev eth0 2>/dev/null | grep -q 'state UP\|LOWER_UP' && echo "eth0 up" || echo "eth0 DOWN")"
        rules="$(ip netns exec "$ns" iptables -w -S INPUT 2>/dev/null | grep -c '^-A' || true)"
      else
        link_s="NAMESPACE MISSING"; rules="-"
      fi
      pidf="$STATE_DIR/h${ns#"$PREFIX"}/sshd.pid"
      if [ -f "$pidf" ]; then
        if sshd_running "$pidf"; then sshd_s="sshd pid $(cat "$pidf")"; else sshd_s="sshd NOT RUNNING"; fi
      else sshd_s="no sshd"; fi
      say "  $ns  $addr  $link_s  $sshd_s  INPUT rules: $rules"
    done <"$HOSTS_FILE"
  else
    say "no hosts up (no $HOSTS_FILE)"
  fi
  local stray
  stray="$(ns_list | tr '\n' ' ')"
  [ -z "$stray" ] || say "namespaces: $stray"
  if link_exists "$BRIDGE"; then say "bridge $BRIDGE: $(ip -o -4 addr show dev "$BRIDGE" | awk '{print $4}')"; else say "bridge $BRIDGE: absent"; fi
  say "bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 'n/a')"
  say "FORWARD rules of ours: $(iptables -w -S FORWARD 2>/dev/null | grep -c -- "$BRIDGE" || true)"
  [ "$any" = 1 ] || exit 1
}

resolve_host() { # paxos-hN | hN | N | 10.77.0.(10+N)  ->  paxos-hN
  local h="$1" i
  case "$h" in
    "$PREFIX"*) i="${h#"$PREFIX"}" ;;
    h[0-9]*) i="${h#h}" ;;
    "$SUBNET_PREFIX".*) i="$(( ${h##*.} - 10 ))" ;;
    *) i="$h" ;;
  esac
  if ! [[ "$i" =~ ^[0-9]+$ ]] || [ "$((10#$i))" -lt 1 ]; then
    die "unknown host '$h' (use paxos-hN, hN, N or 10.77.0.(10+N))"
  fi
  i="$((10#$i))"
  ns_exists "$(host_name "$i")" || die "host $(host_name "$i") is not up (run: $0 up)"
  host_name "$i"
}

do_exec() {
  require_tools
  [ $# -ge 2 ] || die "usage: $PROG exec HOST CMD..."
  local ns
  ns="$(resolve_host "$1")"; shift
  exec ip netns exec "$ns" "$@"
}

do_check() {
  # Everything `up` needs, tried in a throw-away namespace (nothing in the root namespace changes).
  require_tools
  local probe="paxos-probe$$" err
  iptables -w -S FORWARD >/dev/null 2>&1 || die "iptables does not work here: $(iptables -w -S FORWARD 2>&1 | head -n1)"
  err="$(ip netns add "$probe" 2>&1)" || die "cannot create a network namespace: $err"
  # shellcheck disable=SC2064
  trap "ip netns del '$probe' 2>/dev/null || true" EXIT
  err="$(ip -n "$probe" link add name pxprobe0 type bridge 2>&1)" || die "cannot create a bridge: $err"
  err="$(ip -n "$probe" link add name pxprobe1 type veth peer name pxprobe2 2>&1)" || die "cannot create a veth pair: $err"
  err="$(ip netns exec "$probe" iptables -w -A INPUT -s 10.77.0.99/32 -j DROP 2>&1)" || die "iptables does not work inside a namespace: $err"
  err="$(ip netns exec "$probe" iptables -w -A INPUT -m statistic --mode random --probability 0.5 -j DROP 2>&1)" || die "iptables statistic match missing: $err"
  say ok
}

main() {
  CMD="${1:-}"
  case "$CMD" in
    -h|--help|help|"") usage; [ -n "$CMD" ] || exit 2; exit 0 ;;
  esac
  shift
  require_root
  case "$CMD" in
    up) do_up "$@" ;;
    down)
      require_tools
      [ $# -eq 0 ] || die "down takes no arguments"
      trap '' INT TERM   # finish cleaning up even on Ctrl-C; every wait in it is bounded
      take_lock
      do_down
      say "paxos test hosts: down (no namespace, bridge, veth, FORWARD rule or host process left)" ;;
    status) do_status ;;
    exec) do_exec "$@" ;;
    check) do_check ;;
    *) usage >&2; die "unknown command '$CMD'" ;;
  esac
}

main "$@"
