#!/usr/bin/env bash
# Run a command with a private Samba Active Directory DC (the on-premises AD of the LDAP
# adapter's tests, docs/vendors/active-directory.md#test-dc).
#
#   scripts/with-moto.sh scripts/with-samba.sh cargo nextest run --workspace -E 'test(/^onprem_ldap::/)'
#
# Once per machine (cached): a template domain in target/samba-template-<hash>, keyed on
# samba's version, this script and tests/samba/*: `samba-tool domain provision` (realm
# TEST.LOCAL, host dc1, no DNS), an EC CA and a server certificate for localhost/127.0.0.1,
# the msExchHideFromAddressLists schema extension (tests/samba/*.ldif, offline).
# Once per run: a copy of the template (target/samba-run-<pid>), its own smb.conf, `samba`
# in one process listening on 127.0.0.1:389/636 only; the command gets
# OFFRAMP_TEST_AD_URL, OFFRAMP_TEST_AD_CA, OFFRAMP_TEST_AD_OTHER_CA (a CA that did not sign
# the DC's certificate), OFFRAMP_TEST_AD_BIND_DN, OFFRAMP_TEST_AD_BIND_PASSWORD and
# OFFRAMP_TEST_AD_BASE_DN. Samba is killed and the run directory removed whatever happens;
# --maximum-runtime ends a samba whose script was killed (OFFRAMP_SAMBA_MAX_SECONDS, 3600).
#
# The LDAP ports cannot be moved (Samba has no setting for them): one DC per network
# namespace, so a second run at the same time stops here with a message.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seed_dir="$repo_root/tests/samba"
admin_password='Adm1n!Passw0rd'

for tool in samba samba-tool ldbmodify openssl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found; install Samba's packages first: scripts/setup.sh (or make setup)" >&2
        exit 1
    fi
done

# Is something accepting connections on 127.0.0.1:$1?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if listening 636 || listening 389; then
    echo "error: 127.0.0.1:389 or :636 is already taken (another scripts/with-samba.sh run, or an LDAP" >&2
    echo "       server). Samba's LDAP ports are fixed, so only one test DC fits in a network namespace:" >&2
    echo "       wait for the other run, or stop that server." >&2
    exit 1
fi

# mkconf DIR: a private smb.conf whose every path lies in DIR (written again after each copy,
# as the provisioned databases use relative paths but smb.conf does not).
mkconf() {
    local d="$1"
    mkdir -p "$d/etc" "$d/run" "$d/log" "$d/cache" "$d/state"
    cat >"$d/etc/smb.conf" <<EOF
[global]
	netbios name = DC1
	workgroup = TEST
	realm = TEST.LOCAL
	server role = active directory domain controller
	server services = ldap
	interfaces = 127.0.0.1
	bind interfaces only = yes
	idmap_ldb:use rfc2307 = yes
	private dir = $d/private
	lock directory = $d
	state directory = $d/state
	cache directory = $d/cache
	binddns dir = $d/bind-dns
	pid directory = $d/run
	ncalrpc dir = $d/run/ncalrpc
	winbindd socket directory = $d/run/winbindd
	ntp signd socket directory = $d/run/ntp_signd
	usershare path = $d/run/usershares
	smb passwd file = $d/private/smbpasswd
	log file = $d/log/log.%m
	logging = file
	log level = 1
	old password allowed period = 0
	dsdb:schema update allowed = true
	tls keyfile = tls-test/key.pem
	tls certfile = tls-test/cert.pem
	tls cafile = tls-test/ca.pem
	panic action =
	dns update command = /bin/true
	spn update command = /bin/true
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
[sysvol]
	path = $d/state/sysvol
	read only = No
[netlogon]
	path = $d/state/sysvol/test.local/scripts
	read only = No
EOF
}

# ca DIR NAME: a self-signed EC CA (NAME.pem, NAME.key).
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/$2.key" -out "$1/$2.pem" \
        -days 3650 -subj "/CN=Offramp test AD $2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

build_template() {
    local t="$1" tls="$1/private/tls-test"
    samba-tool domain provision --targetdir="$t" --realm=TEST.LOCAL --domain=TEST --server-role=dc \
        --dns-backend=NONE --use-rfc2307 --host-name=dc1 --adminpass="$admin_password" \
        --option="interfaces=lo" --option="bind interfaces only=yes" -q >"$t.provision.log" 2>&1 || {
        tail -n 30 "$t.provision.log" >&2
        return 1
    }
    mkdir -p "$tls"
    make_ca "$tls" ca
    make_ca "$tls" other-ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/key.pem" -out "$tls/dc.csr" \
        -subj "/CN=dc1.test.local" 2>/dev/null
    openssl x509 -req -in "$tls/dc.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -out "$tls/cert.pem" -days 3650 -extfile <(printf '%s\n' \
            "subjectAltName=DNS:dc1.test.local,DNS:localhost,IP:127.0.0.1" \
            "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE") 2>/dev/null
    chmod 600 "$tls"/*.key "$tls/key.pem"
    mkconf "$t"
    # The attribute and the class change in two runs: in one, the class change does not
    # find the attribute yet.
    local ldif
    for ldif in exch-hide-attribute.ldif exch-hide-user-class.ldif; do
        ldbmodify -H "$t/private/sam.ldb" --option="dsdb:schema update allowed=true" "$seed_dir/$ldif" \
            >>"$t.provision.log" 2>&1 || {
            tail -n 30 "$t.provision.log" >&2
            return 1
        }
    done
    rm -f "$t.provision.log"
}

# The template, built once for this samba, this script and these seed files.
key="$( (samba -V; cat "${BASH_SOURCE[0]}" "$seed_dir"/*.ldif) | sha256sum | cut -c1-16)"
template="$repo_root/target/samba-template-$key"
mkdir -p "$repo_root/target"
if [[ ! -f "$template/.complete" ]]; then
    started=$SECONDS
    building="$template.building-$$"
    rm -rf "$building"
    echo "with-samba: building the test domain template (once per Samba version and seed files)" >&2
    build_template "$building"
    touch "$building/.complete"
    # Another run may have finished the same template meanwhile: theirs is as good.
    mv -T "$building" "$template" 2>/dev/null || rm -rf "$building"
    echo "with-samba: template built in $((SECONDS - started)) s: $template" >&2
fi

run_dir="$repo_root/target/samba-run-$$"
rm -rf "$run_dir"
samba_pid=""
cleanup() {
    if [[ -n "$samba_pid" ]] && kill -0 "$samba_pid" 2>/dev/null; then
        # A throwaway copy: no need to wait for Samba's orderly stop (over a second).
        kill -KILL "$samba_pid" 2>/dev/null || true
        wait "$samba_pid" 2>/dev/null || true
    fi
    rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_ns=$(date +%s%N)
cp -a "$template" "$run_dir"
mkconf "$run_dir"
samba -s "$run_dir/etc/smb.conf" -i -M single --maximum-runtime="${OFFRAMP_SAMBA_MAX_SECONDS:-3600}" \
    >"$run_dir/log/samba.out" 2>&1 &
samba_pid=$!

deadline=$((SECONDS + 30))
until listening 636; do
    if ! kill -0 "$samba_pid" 2>/dev/null; then
        echo "error: samba exited before listening on 127.0.0.1:636:" >&2
        tail -n 30 "$run_dir/log/samba.out" >&2 || true
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "error: samba did not listen on 127.0.0.1:636 within 30 s; see $run_dir/log" >&2
        exit 1
    fi
    sleep 0.05
done
echo "with-samba: DC ready on ldaps://127.0.0.1:636 in $((($(date +%s%N) - start_ns) / 1000000)) ms" >&2

export OFFRAMP_TEST_AD_URL="ldaps://127.0.0.1:636"
export OFFRAMP_TEST_AD_CA="$run_dir/private/tls-test/ca.pem"
export OFFRAMP_TEST_AD_OTHER_CA="$run_dir/private/tls-test/other-ca.pem"
export OFFRAMP_TEST_AD_BIND_DN="CN=Administrator,CN=Users,DC=test,DC=local"
export OFFRAMP_TEST_AD_BIND_PASSWORD="$admin_password"
export OFFRAMP_TEST_AD_BASE_DN="DC=test,DC=local"

status=0
"$@" || status=$?
exit "$status"
