"""moto's server as `make bench` runs it: moto unchanged, except that a DynamoDB
transaction copies each table once instead of once per item.

Why: moto 5.2.5's `transact_write_items` keeps a deep copy of the table to roll back a
failed transaction, and takes that copy once for every item of the transaction, all of
them before the first item is applied (the last copy wins). A transaction of 100
snapshots of a 10,000-configuration run copied a table of up to 20,000 items 100 times;
the run took hours and moto grew past 15 GiB. Copying once per table and transaction
gives the same rollback state, so moto answers every request exactly as before; only
the bench uses this (the tests run moto_server as installed). See docs/reliability.md.

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

if __name__ == "__main__":
    sys.exit(main())
