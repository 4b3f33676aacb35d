# Shared by the load-test scripts (sourced, not run): process handling.

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
