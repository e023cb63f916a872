#!/usr/bin/env python3
"""Seed inputs of the fuzz targets (fuzz/, `make fuzz`): every event in events/ for the event
targets, the requests those events carry for the input targets, and representative vendor
answers for the vendor targets (the fields each adapter reads, docs/vendors/*.md). Written
to fuzz/corpus/<target>/seed-*; `make fuzz` then grows and minimises (cargo fuzz cmin) the
corpus, which is committed as one archive per target (fuzz/corpus/<target>.tar.gz); the
seed directories themselves are not.

Usage: scripts/fuzz_seeds.py [REPO_ROOT]
"""

import base64
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
CORPUS = ROOT / "fuzz" / "corpus"

EVENT_TARGETS = ["event_api_gateway_rest", "event_http_api_v2", "event_eventbridge", "event_direct_invoke"]
INPUT_TARGET = {
    "deactivate-configs": "input_deactivate_configs",
    "deactivate-contacts": "input_deactivate_contacts",
    "rollback": "input_rollback",
    "delete-itglue-org": "input_delete_itglue_org",
    # No input target of its own yet: its events reach the request's parsing through the
    # event targets (offramp::fuzzing::lambda_event).
    "offboard-user": None,
}


def write(target: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"seed-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)


def answer(status: int, header: str, body) -> bytes:
    """A vendor answer as the vendor targets read it: `STATUS HEADER` line, then the body."""
    text = body if isinstance(body, str) else json.dumps(body)
    return f"{status} {header}\n{text}".encode()


def request_of(event: dict):
    """The request an event carries: its body (API Gateway), or the event itself."""
    if "requestContext" in event:
        body = event.get("body") or ""
        return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if "source" in event or "detail-type" in event:
        return None
    return json.dumps(event).encode()


def events() -> None:
    for path in sorted((ROOT / "events").glob("*/*.json")):
        raw = path.read_bytes()
        for target in EVENT_TARGETS:
            write(target, raw)
        request = request_of(json.loads(raw))
        if request is not None and INPUT_TARGET[path.parent.name] is not None:
            write(INPUT_TARGET[path.parent.name], request)
    for key, value in [
        ("psa_contact_preserve_primary", "true"),
        ("psa_contact_notification_recipients", "a@x.example, b@y.example"),
        ("psa_contact_ticket_contact", "primary"),
        ("psa_contact_ticket_owner", "29682833:29683481"),
        ("psa_contact_deactivation_ticket_board", "Offboarding"),
        ("offramp_guard_max_contact_share", "50"),
        ("offramp_guard_max_configurations", "500"),
    ]:
        write("input_org_setting", f"{key}\n{value}".encode())


CW = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0"
CONNECTWISE = [
    answer(200, f'<{CW}/company/configurations?page=2&pageSize=2>; rel="next"', [
        {"id": 25001, "name": "LAPTOP-01", "company": {"id": 250}, "status": {"id": 2, "name": "Active"},
         "type": {"name": "Laptop"}, "contact": {"id": 7}},
        {"id": 2, "description": "Inactive", "closedFlag": True},
    ]),
    answer(200, "", [{"id": 250, "name": "Acme", "identifier": "ACME", "status": {"name": "Inactive-Gone"},
                      "types": [{"name": "Client"}]}]),
    answer(200, "", [{"id": 7, "firstName": "Cher", "lastName": "Horowitz", "company": {"id": 250},
                      "defaultFlag": True, "inactiveFlag": False, "title": "CFO",
                      "communicationItems": [{"type": {"name": "Email"}, "value": "c@acme.example",
                                              "communicationType": "Email", "defaultFlag": True}]}]),
    answer(200, "", [{"id": 9, "summary": "Offboard", "company": {"id": 250}, "board": {"id": 4},
                      "owner": {"id": 11}, "closedFlag": False}]),
    answer(400, "", {"code": "InvalidObject", "message": "status is invalid",
                     "errors": [{"code": "Invalid", "message": "status/id is not valid"}]}),
    answer(429, "2", "Too Many Requests"),
]

AT_ZONE = "https://webservices2.autotask.net/atservicesrest/v1.0"
AUTOTASK = [
    answer(200, "", {"items": [{"id": 25001, "companyID": 250, "isActive": True, "configurationItemType": 3,
                                "referenceTitle": "LAPTOP-01", "contactID": 7}],
                     "pageDetails": {"count": 1, "nextPageUrl": f"{AT_ZONE}/ConfigurationItems/query/next?paging=x"}}),
    answer(200, "", {"items": [{"id": 250, "companyName": "Acme", "companyNumber": "A1", "isActive": False,
                                "companyType": 1, "classification": 2}], "pageDetails": {"nextPageUrl": None}}),
    answer(200, "", {"items": [{"id": 7, "companyID": 250, "firstName": "Cher", "emailAddress": "c@acme.example",
                                "isActive": 1, "primaryContact": True}]}),
    answer(200, "", {"items": [{"id": 9, "companyID": 250, "title": "Offboard", "status": 5, "queueID": 8,
                                "assignedResourceID": 11, "assignedResourceRoleID": 4}]}),
    answer(200, "", {"url": AT_ZONE + "/", "zoneName": "America East 2"}),
    answer(200, "", {"fields": [{"name": "companyType", "picklistValues": [{"value": "1", "label": "Customer"}]}]}),
    answer(200, "", {"currentTimeframeRequestCount": 1200, "externalRequestThreshold": 10000}),
    answer(200, "", {"itemId": 25001}),
    answer(500, "", {"errors": ["The integration code is not valid"]}),
]

HALO = [
    answer(200, "", {"access_token": "eyJ.fuzz.token", "token_type": "Bearer", "expires_in": 3600}),
    answer(401, "", {"error": "invalid_client", "error_description": "bad secret"}),
    # The crash `make fuzz` found: a lifetime that overflowed the clock.
    answer(200, "", {"access_token": "eyJ.fuzz.token", "expires_in": 18446744073709551615}),
    answer(200, "", {"record_count": 2, "page_size": 1,
                     "assets": [{"id": 25001, "inactive": False, "status_id": 1, "client_id": 250,
                                 "key_field": "LAPTOP-01", "assettype_name": "Laptop"}]}),
    answer(200, "", {"record_count": 1, "clients": [{"id": 250, "name": "Acme", "inactive": True}]}),
    answer(200, "", {"users": [{"id": 7.0, "firstname": "Cher", "surname": "H", "emailaddress": "c@acme.example",
                                "inactive": False, "client_id": 250, "jobtitle": "CFO"}]}),
    answer(200, "", {"tickets": [{"id": 9, "client_id": 250, "summary": "Offboard", "user_id": -1,
                                  "agent_id": 11, "team": "Offboarding", "status_id": 9}]}),
    answer(200, "", [{"id": 25001, "inactive": True}]),
    answer(400, "", {"ClassName": "HaloException", "Message": "Asset not found"}),
]

ITGLUE = [
    answer(200, "", {"data": [{"id": "42", "type": "organizations",
                               "attributes": {"name": "Acme", "short-name": "acme", "organization-status-name": "Inactive",
                                              "organization-type-name": "Client", "psa-id": "250",
                                              "psa-integration-type": "manage"}}],
                     "meta": {"current-page": 1, "total-pages": 3, "total-count": 3}}),
    answer(200, "", {"data": {"id": 7, "type": "exports",
                              "attributes": {"organization-id": 42, "status": "completed",
                                             "download-url": "https://itg-exports.example/7.zip"}}}),
    answer(200, "", {"data": [{"id": 3, "attributes": {"name": "Backups"}}], "links": {"next": None}}),
    answer(422, "", {"errors": [{"status": "422", "title": "Unprocessable Entity", "detail": "name is taken"}]}),
]

GRAPH = [
    answer(200, "", {"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAi.fuzz"}),
    answer(200, "", {"token_type": "Bearer", "expires_in": "3599", "access_token": "eyJ0eXAi.fuzz"}),
    answer(200, "", {"token_type": "Bearer", "expires_in": 18446744073709551615, "access_token": "eyJ0eXAi.fuzz"}),
    answer(400, "", {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}),
    answer(403, "", {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}),
    answer(429, "30", {"error": {"code": "ApplicationThrottled", "message": "Too many requests"}}),
]

HTTP_LIMITS = [
    b"120\n{}", b"inf\n[]", b"1e300\n{\"a\": [1, 2, {\"b\": null}]}", b"-5\n", b"NaN\nnot json",
    b"Wed, 21 Oct 2015 07:28:00 GMT\n" + b"[" * 70 + b"]" * 70, b"Fri, 31 Dec 9999 23:59:59 GMT\n\"x\"",
]


def main() -> None:
    events()
    for target, seeds in [("vendor_connectwise", CONNECTWISE), ("vendor_autotask", AUTOTASK), ("vendor_halo", HALO),
                          ("vendor_itglue", ITGLUE), ("vendor_graph", GRAPH), ("http_limits", HTTP_LIMITS)]:
        for seed in seeds:
            write(target, seed)
    print(f"seeds written under {CORPUS}")


if __name__ == "__main__":
    main()
