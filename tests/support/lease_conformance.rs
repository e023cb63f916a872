//! What every [`AuditStore`] must do with leases and idempotency keys, as one suite run on
//! SQLite and on DynamoDB (moto).
//!
//! Each check takes two store instances on the same database (`first`, `second`): two
//! processes, or two Lambdas, racing for one target. The effects are read back from the
//! store (`current_lease`, a further claim), never taken from the winner's own answer.

use std::time::Duration;

use offramp::domain::{
    IdempotencyClaim, IdempotencyRecord, IdempotencyStatus, Lease, LeaseRequest, new_operation_id, now,
};
use offramp::error::AuditError;
use offramp::ports::AuditStore;
use serde_json::json;

/// Racing rounds: each round is a fresh target that four contenders try to take at once.
const RACE_ROUNDS: usize = 20;

/// A lifetime meant to run out during the test: long enough that a loaded machine (and a
/// slow moto) still makes the "before it runs out" calls in time.
fn short() -> chrono::Duration {
    chrono::Duration::milliseconds(1_000)
}

/// Sleep until `at` has passed (by a margin, clocks being read in milliseconds).
async fn sleep_past(at: chrono::DateTime<chrono::Utc>) {
    let left = (at - now()).num_milliseconds().max(0) as u64;
    tokio::time::sleep(Duration::from_millis(left + 50)).await;
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// A request for `target` by a fresh operation and holder.
pub fn lease_request(target: &str, ttl: chrono::Duration) -> LeaseRequest {
    LeaseRequest {
        target: target.to_string(),
        operation_id: new_operation_id(),
        holder: uuid::Uuid::now_v7().to_string(),
        ttl,
        break_existing: false,
    }
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

async fn current(store: &dyn AuditStore, target: &str) -> Option<Lease> {
    store.current_lease(target).await.unwrap_or_else(|e| panic!("current_lease({target}) failed: {e}"))
}

async fn acquire(store: &dyn AuditStore, request: &LeaseRequest) -> Lease {
    store.acquire_lease(request).await.unwrap_or_else(|e| panic!("acquire_lease({request:?}) failed: {e}"))
}

/// `LeaseHeld` naming `holder`'s operation and expiry.
fn assert_held_by(result: Result<Lease, AuditError>, holder: &Lease, what: &str) {
    match &result {
        Err(e @ AuditError::LeaseHeld { target, operation_id, expires_at }) => {
            assert_eq!(target, &holder.target, "{what}: target");
            assert_eq!(operation_id, &holder.operation_id, "{what}: names the running operation");
            assert_eq!(*expires_at, holder.expires_at, "{what}: and when its lease expires");
            let message = e.to_string();
            assert!(message.contains(&holder.operation_id), "{what}: message names the operation: {message}");
        }
        other => panic!("{what}: expected LeaseHeld by {}, got {other:?}", holder.operation_id),
    }
}

/// Run every lease check; panics on the first failure.
pub async fn run_lease_conformance(first: &dyn AuditStore, second: &dyn AuditStore) {
    race_for_one_target(first, second).await;
    expiry_and_break(first, second).await;
    stale_holders(first, second).await;
    targets_are_independent(first).await;
}

/// Four contenders (two per store instance) per round: exactly one wins, the others are
/// told who did, and the store holds the winner's lease.
async fn race_for_one_target(first: &dyn AuditStore, second: &dyn AuditStore) {
    for round in 0..RACE_ROUNDS {
        let target = unique(&format!("connectwise#race{round}"));
        let requests: Vec<LeaseRequest> = (0..4).map(|_| lease_request(&target, minutes(5))).collect();
        let (r0, r1, r2, r3) = tokio::join!(
            first.acquire_lease(&requests[0]),
            second.acquire_lease(&requests[1]),
            first.acquire_lease(&requests[2]),
            second.acquire_lease(&requests[3]),
        );
        let results = [r0, r1, r2, r3];
        let winners: Vec<&Lease> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one contender wins, got {results:?}");
        let winner = winners[0].clone();
        assert_eq!(current(first, &target).await.as_ref(), Some(&winner), "round {round}: the store holds the winner");
        for result in results.into_iter().filter(|r| r.is_err()) {
            assert_held_by(result, &winner, &format!("round {round}: a loser"));
        }
        assert!(requests.iter().any(|r| r.operation_id == winner.operation_id && r.holder == winner.holder));
    }
}

async fn expiry_and_break(first: &dyn AuditStore, second: &dyn AuditStore) {
    // A lease runs out: anyone may take it then.
    let target = unique("autotask#expiry");
    let short = acquire(first, &lease_request(&target, short())).await;
    let blocked = lease_request(&target, minutes(5));
    assert_held_by(second.acquire_lease(&blocked).await, &short, "before the expiry");
    sleep_past(short.expires_at).await;
    assert_eq!(current(second, &target).await, Some(short.clone()), "an expired lease is still readable as stored");
    let after = acquire(second, &blocked).await;
    assert_eq!(current(first, &target).await, Some(after.clone()), "an expired lease was taken");
    assert_ne!(after.holder, short.holder);

    // The same holder takes its own lease again (and renews it that way).
    let mut again = blocked.clone();
    again.ttl = minutes(10);
    let retaken = acquire(first, &again).await;
    assert!(retaken.expires_at > after.expires_at, "a re-take by the holder extends it");
    assert_eq!(current(second, &target).await, Some(retaken.clone()));

    // break_existing takes an unexpired lease from another holder.
    let breaker = LeaseRequest { break_existing: true, ..lease_request(&target, minutes(5)) };
    let broken = acquire(second, &breaker).await;
    assert_eq!(current(first, &target).await, Some(broken.clone()), "break_existing took it");
    assert_eq!(broken.operation_id, breaker.operation_id);
    assert_held_by(first.acquire_lease(&again).await, &broken, "the broken holder cannot take it back");
}

async fn stale_holders(first: &dyn AuditStore, second: &dyn AuditStore) {
    let target = unique("halo#stale");
    let old = acquire(first, &lease_request(&target, short())).await;
    // And a lease that lapses with nobody taking it.
    let lapsed = acquire(first, &lease_request(&unique("halo#lapsed"), short())).await;
    sleep_past(old.expires_at.max(lapsed.expires_at)).await;
    let new = acquire(second, &lease_request(&target, minutes(5))).await;

    // The run that lost its lease can neither renew nor release the new holder's.
    match first.renew_lease(&old, minutes(5)).await {
        Err(AuditError::LeaseLost { target: lost }) => assert_eq!(lost, target),
        other => panic!("a stale holder's renewal: expected LeaseLost, got {other:?}"),
    }
    first.release_lease(&old).await.expect("a stale holder's release is a no-op, not an error");
    assert_eq!(current(second, &target).await, Some(new.clone()), "the stale holder changed nothing");

    // The holder renews: a later expiry, read back from the store.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renewed = second.renew_lease(&new, minutes(30)).await.expect("the holder renews");
    assert!(renewed.expires_at > new.expires_at);
    assert_eq!((renewed.holder.as_str(), renewed.acquired_at), (new.holder.as_str(), new.acquired_at));
    assert_eq!(current(first, &target).await, Some(renewed.clone()), "the renewal is stored");

    // An expired lease nobody took is still its holder's to renew.
    let renewed_lapse = first.renew_lease(&lapsed, minutes(5)).await.expect("renewing a lapsed lease nobody took");
    assert_eq!(current(second, &lapsed.target).await, Some(renewed_lapse));

    // Released: gone, anyone may take it, and the old holder can no longer renew.
    second.release_lease(&renewed).await.expect("release");
    assert_eq!(current(first, &target).await, None, "a released lease is gone");
    second.release_lease(&renewed).await.expect("releasing twice is fine");
    assert!(matches!(second.renew_lease(&renewed, minutes(5)).await, Err(AuditError::LeaseLost { .. })));
    let next = acquire(first, &lease_request(&target, minutes(5))).await;
    assert_eq!(current(second, &target).await, Some(next));
}

async fn targets_are_independent(store: &dyn AuditStore) {
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let targets = ["connectwise#250", "autotask#250", "connectwise#2500", "itglue#250", "a#b", "a%23b"]
        .map(|t| format!("{t}{suffix}"));
    let mut leases = Vec::new();
    for target in &targets {
        leases.push(acquire(store, &lease_request(target, minutes(5))).await);
    }
    for (target, lease) in targets.iter().zip(&leases) {
        assert_eq!(current(store, target).await.as_ref(), Some(lease), "{target} has its own lease");
    }
    assert_eq!(current(store, &unique("connectwise#never")).await, None);
}

// ----- Idempotency keys ------------------------------------------------------------------

/// An in-progress record of `key` for `payload_hash`, expiring in `expires_in`, takeable
/// after `in_progress_for`.
pub fn idempotency_record(
    key: &str,
    payload_hash: &str,
    expires_in: chrono::Duration,
    in_progress_for: Option<chrono::Duration>,
) -> IdempotencyRecord {
    let created_at = now();
    IdempotencyRecord {
        key: key.to_string(),
        payload_hash: payload_hash.to_string(),
        status: IdempotencyStatus::InProgress,
        operation_id: Some(new_operation_id()),
        report: None,
        created_at,
        expires_at: created_at + expires_in,
        in_progress_until: in_progress_for.map(|d| created_at + d),
    }
}

async fn claim(store: &dyn AuditStore, record: &IdempotencyRecord) -> IdempotencyClaim {
    store.claim_idempotency_key(record).await.unwrap_or_else(|e| panic!("claim({}) failed: {e}", record.key))
}

fn existing(claim: IdempotencyClaim, what: &str) -> IdempotencyRecord {
    match claim {
        IdempotencyClaim::Existing(record) => record,
        IdempotencyClaim::Claimed => panic!("{what}: expected Existing, got Claimed"),
    }
}

/// Run every idempotency check; panics on the first failure.
pub async fn run_idempotency_conformance(first: &dyn AuditStore, second: &dyn AuditStore) {
    claim_complete_replay(first, second).await;
    expiry_takeover_release(first, second).await;
    race_for_one_key(first, second).await;
}

async fn claim_complete_replay(first: &dyn AuditStore, second: &dyn AuditStore) {
    let key = unique("deactivate-configs#connectwise#250");
    let day = chrono::Duration::hours(24);
    let record = idempotency_record(&key, "hash-a", day, Some(minutes(15)));
    assert_eq!(claim(first, &record).await, IdempotencyClaim::Claimed);

    // The same request again while the first runs: the in-progress record.
    let retry = idempotency_record(&key, "hash-a", day, Some(minutes(15)));
    assert_eq!(existing(claim(second, &retry).await, "a second claim"), record, "the first claim, as stored");
    // Another payload under the same key: the stored hash tells the caller.
    let other = idempotency_record(&key, "hash-b", day, Some(minutes(15)));
    let stored = existing(claim(second, &other).await, "another payload");
    assert_eq!((stored.payload_hash.as_str(), stored.status), ("hash-a", IdempotencyStatus::InProgress));

    // Completing needs the same payload hash.
    let wrong = IdempotencyRecord { status: IdempotencyStatus::Completed, ..other.clone() };
    assert!(matches!(second.complete_idempotency_key(&wrong).await, Err(AuditError::IdempotencyKeyLost { .. })));
    let report =
        json!({"success": true, "statistics": {"configs_deactivated": 3}, "operation_id": record.operation_id});
    let completed = IdempotencyRecord { status: IdempotencyStatus::Completed, report: Some(report), ..record.clone() };
    first.complete_idempotency_key(&completed).await.expect("complete");
    assert_eq!(existing(claim(second, &retry).await, "after completion"), completed, "the first run's answer");
    assert!(
        matches!(first.complete_idempotency_key(&completed).await, Err(AuditError::IdempotencyKeyLost { .. })),
        "completing twice is refused"
    );

    // A completed record is not released (only in-progress claims are).
    first.release_idempotency_key(&key).await.expect("release of a completed key is a no-op");
    assert_eq!(existing(claim(first, &retry).await, "after a release attempt"), completed);
}

async fn expiry_takeover_release(first: &dyn AuditStore, second: &dyn AuditStore) {
    let day = chrono::Duration::hours(24);
    // A record that expires as a whole, completed...
    let expiring_key = unique("deactivate-contacts#autotask#7");
    let expiring = idempotency_record(&expiring_key, "hash-a", short(), None);
    assert_eq!(claim(first, &expiring).await, IdempotencyClaim::Claimed);
    let completed = IdempotencyRecord { status: IdempotencyStatus::Completed, ..expiring.clone() };
    first.complete_idempotency_key(&completed).await.expect("complete");
    // ...and an in-progress claim whose run dies: taken over after in_progress_until, not before.
    let crashed_key = unique("rollback#halo#9");
    let crashed = idempotency_record(&crashed_key, "hash-a", day, Some(short()));
    assert_eq!(claim(first, &crashed).await, IdempotencyClaim::Claimed);
    let takeover = idempotency_record(&crashed_key, "hash-a", day, Some(minutes(15)));
    assert_eq!(existing(claim(second, &takeover).await, "before the in-progress timeout"), crashed);
    let fresh = idempotency_record(&expiring_key, "hash-b", day, Some(minutes(15)));
    assert_eq!(existing(claim(second, &fresh).await, "before the expiry"), completed);

    sleep_past(expiring.expires_at.max(crashed.in_progress_until.expect("set"))).await;
    assert_eq!(claim(second, &fresh).await, IdempotencyClaim::Claimed, "an expired record is re-claimable");
    assert_eq!(existing(claim(first, &fresh).await, "after re-claim"), fresh);
    assert_eq!(claim(second, &takeover).await, IdempotencyClaim::Claimed, "a stale in-progress claim is taken over");
    assert_eq!(existing(claim(first, &crashed).await, "after the takeover").operation_id, takeover.operation_id);

    // A claim without an in-progress limit is never taken over before the record expires.
    let key = unique("delete-itglue-org#itglue#1");
    let unbounded = idempotency_record(&key, "hash-a", chrono::Duration::hours(24), None);
    assert_eq!(claim(first, &unbounded).await, IdempotencyClaim::Claimed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(existing(claim(second, &unbounded).await, "no in-progress limit"), unbounded);

    // Released (the run failed before changing anything): the same request may run again.
    second.release_idempotency_key(&key).await.expect("release");
    assert_eq!(claim(second, &unbounded).await, IdempotencyClaim::Claimed, "a released key is free");
    second.release_idempotency_key(&unique("never-claimed")).await.expect("releasing an unknown key is fine");
}

async fn race_for_one_key(first: &dyn AuditStore, second: &dyn AuditStore) {
    for round in 0..RACE_ROUNDS / 2 {
        let key = unique(&format!("deactivate-configs#race{round}"));
        let records: Vec<IdempotencyRecord> = (0..4)
            .map(|_| idempotency_record(&key, "hash-a", chrono::Duration::hours(24), Some(minutes(15))))
            .collect();
        let (c0, c1, c2, c3) = tokio::join!(
            first.claim_idempotency_key(&records[0]),
            second.claim_idempotency_key(&records[1]),
            first.claim_idempotency_key(&records[2]),
            second.claim_idempotency_key(&records[3]),
        );
        let claims: Vec<IdempotencyClaim> =
            [c0, c1, c2, c3].into_iter().map(|c| c.unwrap_or_else(|e| panic!("round {round}: {e}"))).collect();
        let winners: Vec<usize> = (0..4).filter(|i| claims[*i] == IdempotencyClaim::Claimed).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one claim wins, got {claims:?}");
        let winner = &records[winners[0]];
        for (i, c) in claims.into_iter().enumerate().filter(|(i, _)| *i != winners[0]) {
            assert_eq!(&existing(c, &format!("round {round}, loser {i}")), winner, "losers see the winner's claim");
        }
    }
}
