#!/usr/bin/env bash
# Run a command with a private moto server (local AWS: DynamoDB, Secrets Manager…).
#
#   scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^audit_stores::/)'
#
# Starts ${OFFRAMP_VENV:-.venv}/bin/moto_server on a free loopback port (log in
# target/moto.log), waits until it answers, exports OFFRAMP_TEST_MOTO_URL and
# dummy AWS credentials, runs the command, stops moto whatever happens, and exits
# with the command's exit code.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${OFFRAMP_VENV:-.venv}"
# A relative venv path is relative to the repository, not to where we are called from.
[[ "$venv" = /* ]] || venv="$repo_root/$venv"
moto_server="$venv/bin/moto_server"
python="$venv/bin/python"
if [[ ! -x "$moto_server" ]]; then
    echo "error: $moto_server not found; create the venv first:" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install 'moto[server]'" >&2
    exit 1
fi

# Ask the kernel for a free port. Another process could take it before moto
# binds it; moto then fails to start and the wait below says so.
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"

mkdir -p "$repo_root/target"
log="$repo_root/target/moto.log"

# OFFRAMP_MOTO_BENCH=1: the bench's moto, moto's answers with DynamoDB served one request at
# a time and fast enough for a 300,000-record trail (scripts/moto_bench_server.py says how and why).
server=("$moto_server")
[[ "${OFFRAMP_MOTO_BENCH:-}" == 1 ]] && server=("$python" "$repo_root/scripts/moto_bench_server.py")
# moto's Step Functions interpreter calls back into moto on localhost:$MOTO_PORT.
MOTO_PORT="$port" "${server[@]}" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!

stop_moto() {
    if kill -0 "$moto_pid" 2>/dev/null; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
}
trap stop_moto EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null "$url/moto-api/data.json" 2>/dev/null; do
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "error: moto_server exited before answering on $url; see $log:" >&2
        tail -n 20 "$log" >&2 || true
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "error: moto_server did not answer on $url within 30 s; see $log" >&2
        exit 1
    fi
    sleep 0.2
done

export OFFRAMP_TEST_MOTO_URL="$url"
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE

status=0
"$@" || status=$?
exit "$status"
