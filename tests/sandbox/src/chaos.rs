//! Seeded random faults on every vendor (issue 13, point 10): a given share of vendor
//! requests (ConnectWise, Autotask and its zone lookup, HaloPSA, IT Glue, Entra, Graph,
//! webhooks) runs into one of the faults a real vendor or network produces, and the
//! simulator counts, per item, how many writes it applied, so that "nothing updated twice"
//! is measured here and not taken from a client's report.
//!
//! Reproducible by seed even under concurrency: whether a request is struck, and by what,
//! depends only on the seed, the request itself (method, path and query, body) and how
//! many times that same request was seen before, never on the order requests arrive in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::Method;
use serde_json::Value;

/// What a struck request runs into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChaosFault {
    /// 429 with `Retry-After` (the settings' seconds).
    ThrottledWithRetryAfter,
    /// 429 without `Retry-After` (on HaloPSA and Autotask: the vendor's window is full).
    ThrottledWithoutRetryAfter,
    /// 500, 502, 503 or 504 before the handler: nothing applied.
    ServerError,
    /// The connection breaks before the handler: nothing applied.
    DropBeforeHandler,
    /// The handler runs (a write is APPLIED), then the connection breaks.
    DropAfterWrite,
    /// The answer comes, late (the settings' delay).
    Slow,
}

impl ChaosFault {
    const ALL: [ChaosFault; 6] = [
        ChaosFault::ThrottledWithRetryAfter,
        ChaosFault::ThrottledWithoutRetryAfter,
        ChaosFault::ServerError,
        ChaosFault::DropBeforeHandler,
        ChaosFault::DropAfterWrite,
        ChaosFault::Slow,
    ];
}

/// The random fault mode's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChaosSettings {
    pub seed: u64,
    /// Share of vendor requests struck, 0.0–1.0.
    pub rate: f64,
    /// The `Retry-After` value of throttled answers, in whole seconds (HTTP's form).
    pub retry_after_secs: u64,
    /// How late a slow answer comes.
    pub slow_ms: u64,
}

impl Default for ChaosSettings {
    fn default() -> Self {
        Self { seed: 0, rate: 0.2, retry_after_secs: 1, slow_ms: 300 }
    }
}

/// What the random fault mode did and what the vendors applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChaosReport {
    /// Vendor requests the mode judged (every vendor request while it was on).
    pub requests: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<ChaosFault, u64>,
    /// Writes the vendors applied (a success answer, lost or not), per item:
    /// `"{METHOD} {route with ids as {id}} #{id}"`; creations (no id) are `#new`.
    pub writes: BTreeMap<String, u64>,
}

impl ChaosReport {
    pub fn injected_total(&self) -> u64 {
        self.injected.values().sum()
    }

    /// Items (creations excluded) the vendors changed more than once, with their counts.
    pub fn written_more_than_once(&self) -> Vec<(String, u64)> {
        self.writes.iter().filter(|(key, n)| **n > 1 && !key.ends_with("#new")).map(|(k, n)| (k.clone(), *n)).collect()
    }

    /// Applied writes whose key contains `fragment` (a route, `#27001`…), summed.
    pub fn writes_matching(&self, fragment: &str) -> u64 {
        self.writes.iter().filter(|(key, _)| key.contains(fragment)).map(|(_, n)| n).sum()
    }
}

#[derive(Default)]
pub(crate) struct Chaos {
    settings: Mutex<Option<ChaosSettings>>,
    /// Times each request (by its fingerprint) was seen: its next occurrence's number.
    seen: Mutex<HashMap<u64, u64>>,
    report: Mutex<ChaosReport>,
}

impl Chaos {
    pub(crate) fn set(&self, settings: Option<ChaosSettings>) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(crate) fn settings(&self) -> Option<ChaosSettings> {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn report(&self) -> ChaosReport {
        self.report.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn reset_report(&self) {
        *self.report.lock().unwrap_or_else(|e| e.into_inner()) = ChaosReport::default();
    }

    /// The fault this request runs into, if the mode is on and strikes it (counted).
    pub(crate) fn strike(&self, method: &Method, path_and_query: &str, body: &Bytes) -> Option<ChaosFault> {
        let settings = self.settings()?;
        let fingerprint = fnv(&[method.as_str().as_bytes(), path_and_query.as_bytes(), body]);
        let occurrence = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let n = seen.entry(fingerprint).or_default();
            *n += 1;
            *n
        };
        let draw = splitmix(settings.seed ^ splitmix(fingerprint ^ occurrence.rotate_left(32)));
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.requests += 1;
        // The top 53 bits as a number in [0, 1); the low bits pick the kind.
        let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= settings.rate {
            return None;
        }
        let fault = ChaosFault::ALL[(draw % ChaosFault::ALL.len() as u64) as usize];
        *report.injected.entry(fault).or_default() += 1;
        Some(fault)
    }

    /// A 5xx status for a struck request, chosen by the same draw.
    pub(crate) fn server_status(path_and_query: &str) -> u16 {
        [500, 502, 503, 504][(fnv(&[path_and_query.as_bytes()]) % 4) as usize]
    }

    pub(crate) fn slow(&self) -> Duration {
        Duration::from_millis(self.settings().map_or(0, |s| s.slow_ms))
    }

    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.settings().map_or(1, |s| s.retry_after_secs)
    }

    /// Count a write the vendor applied (its answer was a success), per item it names.
    /// Counted whether or not the mode is on, so that a run without faults has figures too.
    pub(crate) fn count_write(&self, method: &Method, path: &str, body: &Bytes) {
        if !is_write(method, path) {
            return;
        }
        let (route, path_ids) = route_template(path);
        // The body names the item where it does (Autotask's child-entity PATCH names the
        // parent in the path); else the path's last id.
        let mut ids = body_ids(body);
        if ids.is_empty() {
            ids = path_ids.last().cloned().into_iter().collect();
        }
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if ids.is_empty() {
            *report.writes.entry(format!("{method} {route} #new")).or_default() += 1;
        }
        for id in ids {
            *report.writes.entry(format!("{method} {route} #{id}")).or_default() += 1;
        }
    }
}

/// Requests that change something at the vendor: every method but GET/HEAD, except the
/// POSTs that only read (Autotask queries) or obtain a token.
fn is_write(method: &Method, path: &str) -> bool {
    if *method == Method::GET || *method == Method::HEAD || *method == Method::OPTIONS {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    let reads = ["/query", "/query/next", "/query/count"];
    let tokens = lower.contains("/auth/token") || lower.contains("/oauth2/");
    !(tokens || reads.iter().any(|r| lower.ends_with(r)))
}

/// The path with its numeric segments replaced by `{id}`, and those segments.
fn route_template(path: &str) -> (String, Vec<String>) {
    let mut ids = Vec::new();
    let route = path
        .split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                ids.push(segment.to_string());
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    (route, ids)
}

/// Ids a write body names: `id` of the object or of each array element, or JSON:API's
/// `data[].attributes.id` / `data.id`.
fn body_ids(body: &Bytes) -> Vec<String> {
    let id_of = |v: &Value| -> Option<String> {
        let id = v.get("id").or_else(|| v.get("attributes").and_then(|a| a.get("id")))?;
        match id {
            Value::Number(n) if n.as_i64() != Some(0) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    };
    let all = |items: &[Value]| items.iter().filter_map(id_of).collect::<Vec<_>>();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => all(&items),
        Ok(Value::Object(object)) => match object.get("data") {
            Some(Value::Array(items)) => all(items),
            Some(data) => id_of(data).into_iter().collect(),
            None => id_of(&Value::Object(object)).into_iter().collect(),
        },
        _ => Vec::new(),
    }
}

fn fnv(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `GET /_sandbox/configurations/{psa}/{company}`: the company's configurations on that
/// PSA as `[{"id","active","updates"}]` (`updates`: update attempts that reached it), for
/// a process that drives the sandbox binary and compares its state with an audit trail.
pub(crate) fn configurations_admin(shared: &crate::Shared, admin: &str) -> axum::response::Response {
    let mut parts = admin.trim_start_matches("configurations/").split('/');
    let (kind, company) = (parts.next().unwrap_or_default(), parts.next().and_then(|c| c.parse::<i64>().ok()));
    let sim: &dyn crate::PsaSim = match kind {
        "connectwise" => &shared.cw,
        "autotask" => &shared.at,
        "halo" => &shared.halo,
        _ => return crate::text_status(axum::http::StatusCode::NOT_FOUND, "unknown PSA"),
    };
    let Some(company) = company else {
        return crate::text_status(axum::http::StatusCode::BAD_REQUEST, "company id expected");
    };
    let items: Vec<Value> = sim
        .configuration_ids_of(company)
        .into_iter()
        .map(|id| serde_json::json!({"id": id, "active": sim.configuration_is_active(id), "updates": sim.update_count(id)}))
        .collect();
    crate::json_response(&Value::Array(items))
}

impl crate::Sandbox {
    /// Turn the seeded random fault mode on (`Some`) or off (`None`).
    pub fn set_chaos(&self, settings: Option<ChaosSettings>) {
        self.shared.chaos.set(settings);
    }

    /// Faults injected so far, and the writes the vendors applied per item.
    pub fn chaos_report(&self) -> ChaosReport {
        self.shared.chaos.report()
    }

    /// Forget the counts (faults and writes), e.g. between a run and its rollback.
    pub fn reset_chaos_report(&self) {
        self.shared.chaos.reset_report();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_gets_the_same_fate_whatever_the_order() {
        let settings = ChaosSettings { seed: 7, rate: 0.5, ..ChaosSettings::default() };
        let fates = |order: &[&str]| {
            let chaos = Chaos::default();
            chaos.set(Some(settings));
            let mut fates: BTreeMap<String, Option<ChaosFault>> = BTreeMap::new();
            for path in order {
                fates.insert(path.to_string(), chaos.strike(&Method::GET, path, &Bytes::new()));
            }
            fates
        };
        let paths: Vec<String> = (0..200).map(|i| format!("/a/{i}")).collect();
        let forward: Vec<&str> = paths.iter().map(String::as_str).collect();
        let backward: Vec<&str> = forward.iter().rev().copied().collect();
        let (a, b) = (fates(&forward), fates(&backward));
        assert_eq!(a, b);
        let struck = a.values().filter(|f| f.is_some()).count();
        assert!((60..=140).contains(&struck), "about half of 200 struck: {struck}");
    }

    #[test]
    fn writes_are_counted_per_item_named_in_the_path_or_the_body() {
        let chaos = Chaos::default();
        chaos.count_write(&Method::PATCH, "/cw/company/configurations/27001", &Bytes::from_static(b"[]"));
        chaos.count_write(&Method::POST, "/halo/api/asset", &Bytes::from_static(br#"[{"id":1},{"id":2}]"#));
        chaos.count_write(&Method::POST, "/at/Tickets/query", &Bytes::from_static(b"{}"));
        chaos.count_write(&Method::POST, "/halo/api/tickets", &Bytes::from_static(br#"[{"summary":"x"}]"#));
        chaos.count_write(&Method::PATCH, "/cw/company/configurations/27001", &Bytes::from_static(b"[]"));
        let report = chaos.report();
        assert_eq!(report.writes_matching("#27001"), 2);
        assert_eq!(report.writes_matching("asset #"), 2);
        assert_eq!(report.writes_matching("query"), 0);
        assert_eq!(report.written_more_than_once(), vec![("PATCH /cw/company/configurations/{id} #27001".into(), 2)]);
    }
}
