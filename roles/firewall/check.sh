#!/bin/sh
# Exit 0: no active ufw, or it has every rule. Exit 10 with one line per missing rule.
# Prints `warning: ...` (exit 0) for an nftables ruleset it will not touch. Read-only.
set -u
if ! ufw_active; then
  if nft_drops_input; then
    echo "warning: nftables drops incoming traffic here and ufw is not active: open 2377/tcp, 7946/tcp+udp and 4789/udp to the other nodes yourself"
  fi
  exit 0
fi
missing=$(missing_rules)
[ -z "$missing" ] && exit 0
printf '%s\n' "$missing" | sed 's/^/allow /'
exit 10
