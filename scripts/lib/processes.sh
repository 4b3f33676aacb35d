# Shared by the load-test scripts (sourced, not run): process handling and the end of a
# scenario.

# Waits up to $2 tenths of a second for process $1 to end; kills it if it does not.
wait_or_kill() {
    local pid="$1" tenths="$2" i
    for ((i = 0; i < tenths; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  process $pid did not end: killing it" >&2
        kill "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# After a scenario's client exited with status $3: reports a failure (a status of 124 or 137
# is `timeout`'s, when $5 gives its limit in seconds), waits for the server $4 (killing it
# if it lingers), records scenario $1 in "$work/scenarios" and failures in
# "$work/failures", and keeps the JSON summaries and logs of its directory $2 in "$out/$1"
# when --out was given. Uses the calling script's `work` and `out`.
finish_scenario() {
    local name="$1" dir="$2" rc="$3" spid="$4" limit="${5:-}"
    if [[ -n "$limit" && ($rc -eq 124 || $rc -eq 137) ]]; then
        echo "  client did not finish within ${limit}s: stopped" >&2
        echo "$name timeout-${limit}s" >>"$work/failures"
        wait_or_kill "$spid" 1
    elif [[ $rc -ne 0 ]]; then
        echo "  client exited with status $rc:" >&2
        grep -m 3 '^error:' "$dir/client.log" >&2 || tail -n 3 "$dir/client.log" >&2
        echo "$name client-status-$rc" >>"$work/failures"
        wait_or_kill "$spid" 1
    else
        # The server lingers up to 3 s after its last session for a repeated STOP.
        wait_or_kill "$spid" 100
    fi
    echo "$name" >>"$work/scenarios"
    if [[ -n "$out" ]]; then
        mkdir -p "$out/$name" && cp "$dir"/*.json "$dir"/*.log "$out/$name/" 2>/dev/null || true
    fi
}
