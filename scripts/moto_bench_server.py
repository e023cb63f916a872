"""moto's server as `make bench` runs it: moto's answers unchanged, but DynamoDB requests
served one at a time, transactions that undo only the items they touched, queries that read
a window of their own partition, and `ClientRequestToken` honoured the way DynamoDB honours it.
Only the bench uses this; the tests run moto_server as installed. See
docs/reliability.md#runs-across-invocations.

Why each change (moto 5.2's DynamoDB, measured on the continuation bench):

- One at a time: moto's DynamoDB is not safe for concurrent requests. A transaction's copy
  of a table raised "dictionary changed size during iteration" when another request wrote
  to the table meanwhile (an HTTP 500), and a failed transaction restores its copy over
  writes made since. The state machine bench runs several Lambda functions against one
  moto, so requests overlap; one lock around the DynamoDB backend and the transaction
  handler serves them in turn, as a consistent store orders them.
- Transactions: `transact_write_items` deep-copies the table once for every item of the
  transaction, all before the first item is applied, to put a copy back if an item fails. A trail of 100,000 configurations is a
  table of 300,000 items: seconds per transaction, gigabytes per minute. Here the table is
  not copied; the items the transaction names are remembered as they were and put back if
  it fails, which leaves the same state.
- Queries: a query on the table (not an index) walks every item of every partition, sorts
  what matches, and walks from the first item again to find where the previous page
  ended: every page of a 300,000-item read costs a pass over the whole table. Here a
  query sees only its partition, kept sorted between writes, and of it only the 2,000
  items from just after the page's `ExclusiveStartKey` (or from its `begins_with` prefix);
  a page that ends at that window answers with its last key as `LastEvaluatedKey`, as
  DynamoDB may end a page early. Its page is not deep-copied, and is written as
  JSON directly instead of through moto's model-driven serializer (most of a page's time).
- `ClientRequestToken`: DynamoDB answers a repeated `TransactWriteItems` with the same
  token (within 10 minutes) with success and changes nothing; moto runs it again, and the
  SDK's retry of a slow transaction was refused for finding its own items. Here a token
  that succeeded within 10 minutes with the same items succeeds again without writing.

Usage: python scripts/moto_bench_server.py -H 127.0.0.1 -p PORT (moto_server's options)
"""

import bisect
import copy
import hashlib
import json
import os
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.models.table as table_module
import moto.dynamodb.responses as dynamodb_responses
from moto.core.responses import ActionResult
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.server import main

_dynamodb_lock = threading.RLock()
_in_transaction = threading.local()


# ----- Transactions undo only what they touched -----


class _NoTableCopiesInTransactions:
    """Stands in for the `copy` module inside moto.dynamodb.models: inside a transaction a
    table's "copy" is the table itself, so moto's own rollback puts back what is already
    there, and the undo log below restores the touched items."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if getattr(_in_transaction, "active", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_values(table, op_type, op):
    attrs = op["Item"] if op_type == "Put" else op["Key"]
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _put_back(table, hash_value, range_value, before):
    if range_value is None:
        if before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before
    else:
        if before is None:
            table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = before
    _forget_sorted(table, hash_value)


_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_write_items_with_undo(self, transact_items):
    undo = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        hash_value, range_value = _key_values(table, op_type, op)
        before = table.get_item(hash_value, range_value)
        undo.append((table, hash_value, range_value, copy.deepcopy(before)))
    _in_transaction.active = True
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for table, hash_value, range_value, before in reversed(undo):
            _put_back(table, hash_value, range_value, before)
        raise
    finally:
        _in_transaction.active = False


dynamodb_models.copy = _NoTableCopiesInTransactions()
dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items_with_undo


# ----- Queries read their partition, kept sorted between writes -----

# (id(table), hash value) -> (items sorted by range key, their range keys)
_sorted_partitions = {}
_query_view = threading.local()


def _forget_sorted(table, hash_value):
    _sorted_partitions.pop((id(table), hash_value), None)


def _sorted_partition(table, hash_value):
    key = (id(table), hash_value)
    if key not in _sorted_partitions:
        items = sorted(table.items.get(hash_value, {}).values(), key=lambda item: item.range_key)
        _sorted_partitions[key] = (items, [item.range_key for item in items])
    return _sorted_partitions[key]


_table_put_item = Table.put_item
_table_delete_item = Table.delete_item
_table_all_items = Table.all_items
_table_query = Table.query


def _put_item_forgetting_order(self, item_attrs, *args, **kwargs):
    _forget_sorted(self, DynamoType(item_attrs[self.hash_key_attr]))
    return _table_put_item(self, item_attrs, *args, **kwargs)


def _delete_item_forgetting_order(self, hash_key, range_key):
    _forget_sorted(self, hash_key)
    return _table_delete_item(self, hash_key, range_key)


def _all_items_of_the_query(self):
    view = getattr(_query_view, "items", None)
    if view is not None and view[0] is self:
        return view[1]
    return _table_all_items(self)


# Items a query looks at per page: a page of the trail is at most 1 MB, about 1,700 of its
# items; a query that reaches the end of its window without filling the page answers with
# the window's last key as `LastEvaluatedKey`, as DynamoDB may answer a short page.
# scripts/check_moto_bench_server.py sets a small window to cross it often.
_WINDOW = int(os.environ.get("OFFRAMP_MOTO_BENCH_WINDOW", "2000"))
_HIGHEST = "\U0010ffff"


def _window(self, hash_key, range_comparison, range_objs, exclusive_start_key, scan_index_forward):
    """The slice of the sorted partition a page can come from, and whether items lie beyond it."""
    items, range_keys = _sorted_partition(self, hash_key)
    start, end = 0, len(items)
    if range_comparison == "BEGINS_WITH" and range_objs and range_objs[0].type == "S":
        prefix = range_objs[0].value
        start = bisect.bisect_left(range_keys, DynamoType({"S": prefix}))
        end = bisect.bisect_right(range_keys, DynamoType({"S": prefix + _HIGHEST}))
    after = exclusive_start_key.get(self.range_key_attr) if exclusive_start_key else None
    if scan_index_forward:
        if after is not None:
            start = max(start, bisect.bisect_right(range_keys, DynamoType(after)))
        return items[start:min(end, start + _WINDOW)], start + _WINDOW < end
    if after is not None:
        end = min(end, bisect.bisect_left(range_keys, DynamoType(after)))
    return items[max(start, end - _WINDOW):end], end - _WINDOW > start


def _query_one_partition(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                         scan_index_forward, projection_expressions, index_name=None, *args, **kwargs):
    if index_name is not None or not self.range_key_attr or hash_key is None:
        return _table_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                            scan_index_forward, projection_expressions, index_name, *args, **kwargs)
    view, more = _window(self, hash_key, range_comparison, range_objs, exclusive_start_key, scan_index_forward)
    _query_view.items = (self, view)
    try:
        results, scanned, last_key = _table_query(
            self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
            scan_index_forward, projection_expressions, index_name, *args, **kwargs)
    finally:
        _query_view.items = None
    if last_key is None and more and view:
        last_key = self._get_last_evaluated_key(view[-1] if scan_index_forward else view[0], None)
    return results, scanned, last_key


class _NoItemCopiesInQueries:
    """Stands in for the `copy` module inside moto.dynamodb.models.table: a query's page is
    not deep-copied (a page of 1 MB is tens of thousands of objects); what reads it only
    serializes it or projects it into new items."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if getattr(_query_view, "items", None) is not None and isinstance(value, list):
            return list(value)
        return copy.deepcopy(value, memo)


table_module.copy = _NoItemCopiesInQueries()
Table.put_item = _put_item_forgetting_order
Table.delete_item = _delete_item_forgetting_order
Table.all_items = _all_items_of_the_query
Table.query = _query_one_partition


_handle_query = dynamodb_responses.DynamoHandler.query


def _query_answered_as_json(self):
    answer = _handle_query(self)
    return dynamo_json_dump(answer.result)


dynamodb_responses.DynamoHandler.query = _query_answered_as_json


# ----- ClientRequestToken -----

_TOKEN_LIFETIME_S = 600
# token -> (digest of the transaction's items, when it succeeded)
_succeeded_tokens = {}
_handle_transact_write_items = dynamodb_responses.DynamoHandler.transact_write_items


def _transact_write_items_once_per_token(self):
    with _dynamodb_lock:
        token = self.body.get("ClientRequestToken")
        digest = hashlib.sha256(json.dumps(self.body["TransactItems"], sort_keys=True).encode()).hexdigest()
        now = time.monotonic()
        seen = _succeeded_tokens.get(token) if token else None
        if seen is not None and seen[0] == digest and now - seen[1] < _TOKEN_LIFETIME_S:
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        answer = _handle_transact_write_items(self)
        if token:
            _succeeded_tokens[token] = (digest, now)
        return answer


dynamodb_responses.DynamoHandler.transact_write_items = _transact_write_items_once_per_token


# ----- One request at a time -----


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
