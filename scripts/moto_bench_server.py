"""moto's server as `make bench` runs it: moto unchanged, except that a DynamoDB
transaction copies each table once instead of once per item, and that DynamoDB requests
are served one at a time.

Why: moto 5.2.5's `transact_write_items` keeps a deep copy of the table to roll back a
failed transaction, and takes that copy once for every item of the transaction, all of
them before the first item is applied (the last copy wins). A transaction of 100
snapshots of a 10,000-configuration run copied a table of up to 20,000 items 100 times;
the run took hours and moto grew past 15 GiB. Copying once per table and transaction
gives the same rollback state, so moto answers every request exactly as before; only
the bench uses this (the tests run moto_server as installed). See docs/reliability.md.

One at a time: moto's DynamoDB is not safe for concurrent requests. A transaction's deep
copy of a table raised "dictionary changed size during iteration" when another request
wrote to the table meanwhile (an HTTP 500 after which the retried transaction was refused),
and a failed transaction restores the copy over writes made since. The state machine bench
runs several Lambda functions against one moto, so requests do overlap; one lock around the
DynamoDB backend's methods serves them in turn, as a consistent store would order them.

Usage: python scripts/moto_bench_server.py -H 127.0.0.1 -p PORT (moto_server's options)
"""

import copy
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models.table import Table
from moto.server import main

_transaction = threading.local()


class _CopyTablesOncePerTransaction:
    """Stands in for the `copy` module inside moto.dynamodb.models."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        copies = getattr(_transaction, "copies", None)
        if copies is None or not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in copies:
            copies[id(value)] = copy.deepcopy(value)
        return copies[id(value)]


_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_write_items_copying_once(self, transact_items):
    _transaction.copies = {}
    try:
        return _transact_write_items(self, transact_items)
    finally:
        _transaction.copies = None


dynamodb_models.copy = _CopyTablesOncePerTransaction()
dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items_copying_once

_dynamodb_lock = threading.RLock()


def _one_at_a_time(method):
    def serialized(*args, **kwargs):
        with _dynamodb_lock:
            return method(*args, **kwargs)

    serialized.__name__ = method.__name__
    return serialized


for _name, _method in list(vars(dynamodb_models.DynamoDBBackend).items()):
    if callable(_method) and not _name.startswith("_") and not isinstance(_method, (staticmethod, classmethod)):
        setattr(dynamodb_models.DynamoDBBackend, _name, _one_at_a_time(_method))

if __name__ == "__main__":
    sys.exit(main())
