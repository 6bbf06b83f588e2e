# Shared by check.sh and apply.sh of the firewall role (prepended by clusterup).

ufw_active() {
  command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | grep -q '^Status: active'
}

# Rules of RULES that ufw does not have yet, as "PORT/PROTO FROM".
missing_rules() {
  added=$(ufw show added 2>/dev/null | sed "s/ comment '.*'\$//")
  printf '%s\n' "$RULES" | while read -r port from; do
    [ -n "$port" ] || continue
    if [ "$from" = any ]; then
      want="ufw allow $port"
    else
      want="ufw allow from $from to any port ${port%/*} proto ${port#*/}"
    fi
    printf '%s\n' "$added" | grep -qxF "$want" || echo "$port $from"
  done
}

# A non-ufw nftables ruleset that drops input: clusterup cannot safely add to it.
nft_drops_input() {
  command -v nft >/dev/null 2>&1 && nft list ruleset 2>/dev/null | grep -q 'hook input.*policy drop'
}
