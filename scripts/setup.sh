#!/usr/bin/env bash
# Install what the build, the tests and the demo need, into the repository:
# a Python virtualenv (.venv) with moto (local AWS), cfn-lint, the SAM CLI and
# cargo-lambda (which brings zig); checkov in a virtualenv of its own (.venv/checkov: its
# pins, boto3 among them, conflict with moto's and the SAM CLI's); cargo-nextest and
# cargo-deny with cargo. Idempotent: a stamp records what was installed, and nothing is
# redone while the pinned list is unchanged.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
venv="${OFFRAMP_VENV:-.venv}"

# Pinned: the versions recorded as working offline on this machine type.
requirements=(
    "moto[server]==5.2.5"
    "cfn-lint==1.58.0"
    "aws-sam-cli==1.170.0"
    "cargo-lambda==1.9.2"
)
stamp="$venv/.offramp-requirements"
constraints="scripts/python-constraints.txt"
wanted="$(printf '%s\n' "${requirements[@]}"; cat "$constraints")"

# pip install into a virtualenv, with every version pinned by a constraints file, tried
# up to three times: a registry hiccup on a fresh machine should not fail the whole run.
# pip's own output is kept in a log and shown when the last try fails.
pip_install() {
    local pip="$1" constraint_file="$2"
    shift 2
    local log attempt
    log="$(mktemp)"
    for attempt in 1 2 3; do
        if "$pip" install --quiet --disable-pip-version-check --retries 5 --timeout 30 \
            --constraint "$constraint_file" "$@" >"$log" 2>&1; then
            rm -f "$log"
            return 0
        fi
        echo "setup: pip install failed (try $attempt of 3)" >&2
        sleep $((attempt * 10))
    done
    echo "setup: pip's output of the last try:" >&2
    tail -n 40 "$log" >&2
    rm -f "$log"
    return 1
}

# Debian packages the tests need: a Samba AD DC for the LDAP adapter's tests
# (scripts/with-samba.sh; samba-vfs-modules because provisioning sets sysvol ACLs with it),
# ldb-tools for the offline schema extension, ldap-utils to look at the DC by hand;
# chromium and chromium-driver for the approval page's browser test (approval_page.rs).
apt_packages=(samba samba-dsdb-modules samba-vfs-modules samba-ad-provision ldb-tools ldap-utils chromium chromium-driver)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" && -x "$venv/bin/moto_server" ]]; then
    echo "setup: $venv is up to date"
else
    echo "setup: creating $venv with: ${requirements[*]}"
    python3 -m venv "$venv"
    pip_install "$venv/bin/pip" "$constraints" "${requirements[@]}"
    printf '%s' "$wanted" > "$stamp"
fi

# checkov (template policy checks in make lint, offline), pinned, in its own virtualenv.
checkov_requirement="checkov==3.3.30"
checkov_venv="$venv/checkov"
checkov_stamp="$checkov_venv/.offramp-requirements"
checkov_constraints="scripts/checkov-constraints.txt"
checkov_wanted="$(printf '%s\n' "$checkov_requirement"; cat "$checkov_constraints")"
# A virtualenv whose interpreter moved away (the directory was copied or linked from
# elsewhere) keeps its stamp but cannot run: it is made again.
# (On a fresh machine there is no script yet: `|| true`, or pipefail would end setup here.)
checkov_interpreter="$(head -1 "$checkov_venv/bin/checkov" 2>/dev/null | sed 's/^#!//' || true)"
if [[ -f "$checkov_stamp" && "$(cat "$checkov_stamp")" == "$checkov_wanted" && -x "$checkov_interpreter" ]]; then
    echo "setup: $checkov_venv is up to date"
else
    echo "setup: creating $checkov_venv with: $checkov_requirement"
    rm -rf "$checkov_venv"
    python3 -m venv "$checkov_venv"
    pip_install "$checkov_venv/bin/pip" "$checkov_constraints" "$checkov_requirement"
    printf '%s' "$checkov_wanted" > "$checkov_stamp"
fi

# cargo-deny (dependency policy in make lint), pinned; built from crates.io with its own
# lock file, like cargo-nextest.
cargo_deny_version="0.20.2"
if [[ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $cargo_deny_version" ]]; then
    echo "setup: installing cargo-deny $cargo_deny_version"
    cargo install cargo-deny --locked --version "$cargo_deny_version"
fi

# asl-validator (the state machine definition in make lint: cfn-lint does not read the
# definition of an AWS::Serverless::StateMachine), pinned by tools/asl/package-lock.json,
# installed with the machine's Node.js and npm (Debian's when the machine has none).
if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing Debian packages: nodejs npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
asl_lock="tools/asl/package-lock.json"
asl_stamp="tools/asl/node_modules/.offramp-lock"
if [[ -x tools/asl/node_modules/.bin/asl-validator && -f "$asl_stamp" ]] && cmp -s "$asl_lock" "$asl_stamp"; then
    echo "setup: asl-validator is up to date"
else
    echo "setup: installing asl-validator (npm ci in tools/asl)"
    for attempt in 1 2 3; do
        npm ci --prefix tools/asl --no-audit --no-fund --loglevel=error && break
        [[ $attempt -lt 3 ]] || exit 1
        sleep $((attempt * 10))
    done
    cp "$asl_lock" "$asl_stamp"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install cargo-nextest --locked
fi
echo "setup: done"
