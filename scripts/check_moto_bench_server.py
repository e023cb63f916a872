"""Check that the bench's moto (scripts/moto_bench_server.py) answers as moto as installed.

`make test` runs this. It starts both servers on free loopback ports, the bench's with a
query window of 7 items so that every paged read crosses several windows, sends both the
same DynamoDB requests, and compares what a client pages out of them. The one intended
difference, a repeated `ClientRequestToken`, is checked on its own: the bench's moto
succeeds without writing (as DynamoDB does), moto as installed refuses.

Usage: python scripts/check_moto_bench_server.py (with the virtualenv that has moto)
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
TABLE = "trail"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command, window=None):
    port = free_port()
    env = dict(os.environ)
    if window is not None:
        env["OFFRAMP_MOTO_BENCH_WINDOW"] = str(window)
    process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for _ in range(150):
        try:
            client.list_tables()
            return process, client
        except Exception:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"error: {command} did not answer on port {port}")


def create_table(client):
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "client")],
        GlobalSecondaryIndexes=[{
            "IndexName": "ByClient",
            "KeySchema": [{"AttributeName": "client", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )


def put(pk, sk, **attrs):
    item = {"pk": {"S": pk}, "sk": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}
    return {"Put": {"TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def fill(client):
    for partition in ("OP#a", "OP#b"):
        items = [put(partition, f"{prefix}{i:03}", client="C1" if i % 3 else "C2", state="x" * 50)
                 for prefix, count in (("CHANGE#", 40), ("EVENT#", 20), ("SNAP#", 40)) for i in range(count)]
        client.transact_write_items(TransactItems=items)


def paged(client, **query):
    out, start, pages = [], None, 0
    while True:
        args = {"TableName": TABLE, **query}
        if start:
            args["ExclusiveStartKey"] = start
        page = client.query(**args)
        out += page["Items"]
        pages += 1
        start = page.get("LastEvaluatedKey")
        if not start:
            return out, pages


def reads(client):
    partition = {"ExpressionAttributeValues": {":p": {"S": "OP#a"}}}
    prefixed = {"ExpressionAttributeValues": {":p": {"S": "OP#a"}, ":x": {"S": "EVENT#"}}}
    with_prefix = "pk = :p AND begins_with(sk, :x)"
    return {
        "forward": paged(client, KeyConditionExpression="pk = :p", **partition)[0],
        "forward, 7 at a time": paged(client, KeyConditionExpression="pk = :p", Limit=7, **partition)[0],
        "reverse": paged(client, KeyConditionExpression="pk = :p", ScanIndexForward=False, **partition)[0],
        "prefix": paged(client, KeyConditionExpression=with_prefix, **prefixed)[0],
        "prefix, 3 at a time": paged(client, KeyConditionExpression=with_prefix, Limit=3, **prefixed)[0],
        "latest of a prefix": client.query(TableName=TABLE, KeyConditionExpression=with_prefix, Limit=1,
                                           ScanIndexForward=False, **prefixed)["Items"],
        "index": paged(client, IndexName="ByClient", KeyConditionExpression="client = :c",
                       ExpressionAttributeValues={":c": {"S": "C2"}})[0],
    }


def refused(client, items, token):
    try:
        client.transact_write_items(TransactItems=items, ClientRequestToken=token)
        return False
    except ClientError as error:
        return error.response["Error"]["Code"] == "TransactionCanceledException"


def transactions(client):
    """What a failing transaction leaves, and what a new token repeating written items gets."""
    existing = [put("OP#b", "SNAP#000")]
    failing = [put("OP#b", "SNAP#999"),
               {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "OP#b"}, "sk": {"S": "CHANGE#001"}},
                           "UpdateExpression": "SET state = :v", "ExpressionAttributeValues": {":v": {"S": "changed"}}}},
               *existing]
    return {
        "failing transaction refused": refused(client, failing, "failing"),
        "new token on written items refused": refused(client, existing, "again"),
        "partition after": paged(client, KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": {"S": "OP#b"}})[0],
    }


def main():
    python = sys.executable
    plain, bench = None, None
    try:
        plain = start([str(Path(python).parent / "moto_server")])
        bench = start([python, str(HERE / "moto_bench_server.py")], window=7)
        answers = []
        for _, client in (plain, bench):
            create_table(client)
            fill(client)
            answers.append({**reads(client), **transactions(client)})
        failures = [name for name in answers[0] if answers[0][name] != answers[1][name]]
        _, pages = paged(bench[1], KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "OP#a"}})
        if pages < 10:
            failures.append(f"the bench's reads did not cross its windows ({pages} pages)")
        token_items = [put("OP#c", "SNAP#1")]
        for label, (_, client), repeat_refused in (("moto", plain, True), ("bench", bench, False)):
            client.transact_write_items(TransactItems=token_items, ClientRequestToken="same")
            if refused(client, token_items, "same") != repeat_refused:
                failures.append(f"{label}: a repeated ClientRequestToken was {'not ' if repeat_refused else ''}refused")
        if failures:
            sys.exit("error: the bench's moto answers differently from moto: " + "; ".join(failures))
        print(f"the bench's moto answers as moto does ({len(answers[0])} cases, {pages} pages of a 100-item "
              "partition); a repeated ClientRequestToken succeeds without writing")
    finally:
        for server in (plain, bench):
            if server:
                server[0].kill()


if __name__ == "__main__":
    main()
