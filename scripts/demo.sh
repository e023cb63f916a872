#!/usr/bin/env bash
# make demo: a PSA sandbox on loopback, then a dry run, a real run, a re-run and the
# audit record, with the embedded defaults (SQLite audit trail, credentials from
# environment variables).
#
#   make demo                 # ConnectWise Manage
#   PSA=autotask make demo    # Autotask (zone looked up by user name)
#   PSA=halo make demo        # HaloPSA (OAuth2 client credentials)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --quiet -p offramp-cli -p offramp-sandbox --bins
bin=target/debug
workdir="$(mktemp -d)"
target/debug/offramp-sandbox --port 0 --large-configs 0 > "$workdir/sandbox.out" 2> "$workdir/sandbox.log" &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT

for _ in $(seq 1 100); do
    [[ -s "$workdir/sandbox.out" ]] && break
    sleep 0.1
done
ready="$(head -n 1 "$workdir/sandbox.out")"
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval("d"+sys.argv[2]))' "$ready" "$1"; }

psa="${PSA:-connectwise}"
export OFFRAMP_PSA="$psa"
case "$psa" in
    connectwise)
        export CONNECTWISE_URL="$(field '["connectwise"]["url"]')"
        export CONNECTWISE_COMPANY_ID="$(field '["connectwise"]["company_id"]')"
        export CONNECTWISE_PUBLIC_KEY="$(field '["connectwise"]["public_key"]')"
        export CONNECTWISE_PRIVATE_KEY="$(field '["connectwise"]["private_key"]')"
        export CONNECTWISE_CLIENT_ID="$(field '["connectwise"]["client_id"]')"
        # What "offboarded" means is configured, as a deployment configures it (the README's
        # "Offboarded criteria"): ConnectWise company statuses are tenant data; the sandbox
        # calls it "Offboarded".
        export OFFRAMP_OFFBOARDED_STATUSES=Offboarded
        ;;
    autotask)
        export AUTOTASK_ZONE_LOOKUP_URL="$(field '["autotask"]["zone_lookup_url"]')"
        export AUTOTASK_USERNAME="$(field '["autotask"]["username"]')"
        export AUTOTASK_SECRET="$(field '["autotask"]["secret"]')"
        export AUTOTASK_INTEGRATION_CODE="$(field '["autotask"]["integration_code"]')"
        # The sandbox marks disposed items with configuration item type 9 ("Retired").
        export OFFRAMP_AUTOTASK_ARCHIVED_CI_TYPES=9
        # Offboarded: the company is inactive (Autotask's default, OFFRAMP_OFFBOARDED_INACTIVE).
        ;;
    halo)
        export HALO_URL="$(field '["halo"]["url"]')"
        export HALO_TENANT="$(field '["halo"]["tenant"]')"
        export HALO_CLIENT_ID="$(field '["halo"]["client_id"]')"
        export HALO_CLIENT_SECRET="$(field '["halo"]["client_secret"]')"
        # The sandbox's asset status 4 is "Disposed".
        export OFFRAMP_HALO_ARCHIVED_STATUS_IDS=4
        # Offboarded: the client is inactive (HaloPSA's default, OFFRAMP_OFFBOARDED_INACTIVE).
        ;;
    *)
        echo "PSA must be connectwise, autotask or halo (got '$psa')" >&2
        exit 2
        ;;
esac
echo "Offramp demo on the $psa sandbox"
export OFFRAMP_AUDIT_DB="$workdir/audit.sqlite"
export OFFRAMP_INITIATED_BY="demo@msp.example"

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "1. Dry run: what would change (nothing is written to the PSA)" \
    $bin/offramp configs deactivate --client-name "Contoso Dental" --dry-run --reason "Demo: contract ended"
step "2. Real run" \
    $bin/offramp configs deactivate --client-name "Contoso Dental" --reason "Demo: contract ended" --yes
step "3. Re-run: everything is already inactive (seed JSON)" \
    $bin/offramp configs deactivate --client-name "Contoso Dental" --reason "Demo: contract ended" --yes --json
step "4. An active client does not meet the offboarded criteria: refused, nothing changes (exit 5 is expected)" \
    bash -c "$bin/offramp configs deactivate --client-name 'Fabrikam Legal' --reason 'Demo: wrong client' --yes || test \$? -eq 5"
step "5. The audit trail" $bin/offramp audit list
real_run="$($bin/offramp audit list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["operation"]["operation_id"])')"
step "6. The real run's record" $bin/offramp audit show "$real_run"

# Workflow 001 (docs/workflows.md#001-contact-deactivation): bulk contact deactivation,
# then its rollback.
step "7. A client setting: keep Contoso Dental's primary contact" \
    $bin/offramp settings set 250 psa_contact_preserve_primary true
step "8. Contacts: the plan (no --confirmation: nothing changes, exit 5 is expected)" \
    bash -c "$bin/offramp contacts deactivate --company-id 250 --exclude-contact 5003 --reason 'Demo: contract ended' || test \$? -eq 5"
step "9. Contacts: confirmed, with the summary note on ticket 9010" \
    $bin/offramp contacts deactivate --company-id 250 --exclude-contact 5003 --reason "Demo: contract ended" --ticket-id 9010 --confirmation
contacts_run="$($bin/offramp audit list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["operation"]["operation_id"])')"
step "10. Roll the contact deactivation back" $bin/offramp rollback "$contacts_run" --yes
step "11. A finished rollback is final: a second one is refused (exit 5 is expected)" \
    bash -c "$bin/offramp rollback $contacts_run --yes || test \$? -eq 5"

# Workflow 002 (docs/workflows.md#002-it-glue-organization-deletion): IT Glue organization
# deletion (the sandbox's IT Glue, same data).
export ITGLUE_URL="$(field '["itglue"]["url"]')"
export ITGLUE_API_KEY="$(field '["itglue"]["api_key"]')"
export OFFRAMP_ITGLUE_POLL_SECONDS=1
step "12. IT Glue: Contoso Dental's dependents block its deletion (dry run)" \
    $bin/offramp itglue delete --org-name "Contoso Dental" --dry-run
step "13. IT Glue: Adatum Travel has none; export, then delete (confirmed)" \
    $bin/offramp itglue delete --org-name "Adatum Travel" --confirm-delete --reason "Demo: client offboarded" --yes
