#!/bin/sh
# Run the shards of a plan as parallel jobs, each against its own gateway (or at least its own
# client id), and fail if any shard failed. Shards never overlap (a symbol lives in exactly one)
# and each has its own lock, summary and run log, so they can share the state directory.
#
#   examples/shards/run-shards.sh plans/weekend.toml
#
# Edit GATEWAYS: one HOST:PORT per shard (the same gateway twice works too, with distinct
# client ids, but one gateway tops out at about 45 requests/s whatever the shard count).
set -u
PLAN=${1:?usage: run-shards.sh PLAN}
GATEWAYS="127.0.0.1:4002 127.0.0.1:4012 127.0.0.1:4022"
N=$(echo $GATEWAYS | wc -w)

i=0
pids=""
for gw in $GATEWAYS; do
    OPT_BACKFILL_GATEWAY=$gw OPT_BACKFILL_CLIENT_ID=$((31 + i)) \
        opt-backfill execute "$PLAN" --batch-count "$N" --batch-index "$i" -q \
        > "shard-$i.log" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
done

# SIGTERM/SIGINT to this script stops every shard gracefully.
trap 'kill -TERM $pids 2>/dev/null' TERM INT

status=0
i=0
for pid in $pids; do
    wait "$pid"
    code=$?
    echo "shard $i of $N: exit $code (log shard-$i.log)"
    [ "$code" -ne 0 ] && status=1
    i=$((i + 1))
done
exit $status
