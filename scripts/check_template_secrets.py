#!/usr/bin/env python3
"""Least privilege on credentials, checked on infra/template.yaml in `make lint`.

Each Lambda function may read (secretsmanager:GetSecretValue) exactly the secrets its
environment names (OFFRAMP_SECRET_PSA / _ITGLUE / _NOTIFIER / _M365, Globals included), and each
secret is read by the functions that need it and no others (README "Credentials"). A
function configured with a secret its role cannot read fails at run time; a role that can
read a secret its function never uses is a needless exposure: both fail here.

Uses cfn-lint's template decoder (installed in .venv by scripts/setup.sh), which resolves
the short-form intrinsics (!Ref) into {"Ref": ...}.
"""
import sys

from cfnlint.decode import decode

# Which secrets each function's work needs (docs/architecture.md#credentials).
EXPECTED = {
    "DeactivateConfigsFunction": {"PsaSecret"},
    "DeactivateContactsFunction": {"PsaSecret", "NotifierSecret"},
    # A user offboarding is rolled back in Entra ID and Exchange Online as well.
    "RollbackFunction": {"PsaSecret", "M365Secret"},
    "DeleteItGlueOrgFunction": {"PsaSecret", "ItGlueSecret"},
    "OffboardUserFunction": {"PsaSecret", "M365Secret", "NotifierSecret"},
    # The webhook secrets (CONNECTWISE_WEBHOOK_URL_TOKEN, AUTOTASK_WEBHOOK_SECRET, HALO_WEBHOOK_*).
    "WebhookFunction": {"PsaSecret"},
    # Resolve dry-runs every step (all four vendors); finalize notifies.
    "OrchestratorFunction": {"PsaSecret", "M365Secret", "ItGlueSecret", "NotifierSecret"},
    # The HTTP API hands runs over and reads the trail: no vendor credential at all.
    "ApiFunction": set(),
    # The approval page: the table and Step Functions, no vendor.
    "ApprovalFunction": set(),
}


def refs(value):
    """The logical ids a Ref (or a list of them) names."""
    if isinstance(value, dict) and "Ref" in value:
        return {value["Ref"]}
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    return set()


def env_secrets(variables):
    if "OFFRAMP_SECRET_ID" in variables:
        raise SystemExit("OFFRAMP_SECRET_ID (one secret for every vendor) must not be deployed")
    return set().union(*(refs(v) for k, v in variables.items() if k.startswith("OFFRAMP_SECRET_"))) or set()


def readable_secrets(policies):
    readable = set()
    for policy in policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if "secretsmanager:GetSecretValue" in actions or "secretsmanager:*" in actions:
                readable |= refs(statement.get("Resource"))
    return readable


def main(path):
    template, matches = decode(path)
    if matches:
        raise SystemExit(f"{path}: cannot decode: {matches}")
    global_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    failures = []
    if set(functions) != set(EXPECTED):
        failures.append(f"functions {sorted(functions)} differ from the expected {sorted(EXPECTED)}")
    for name, resource in functions.items():
        props = resource["Properties"]
        variables = {**global_vars, **props.get("Environment", {}).get("Variables", {})}
        named = env_secrets(variables)
        readable = readable_secrets(props.get("Policies", []))
        wanted = EXPECTED.get(name, set())
        if named != readable:
            failures.append(f"{name}: environment names {sorted(named)}, role may read {sorted(readable)}")
        if readable != wanted:
            failures.append(f"{name}: role may read {sorted(readable)}, its work needs {sorted(wanted)}")
    for failure in failures:
        print(f"check_template_secrets: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"check_template_secrets: {len(functions)} functions, each reads only the secrets it needs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml"))
