//! Faults that strike a write after the simulator applied it: the answer is lost (the
//! connection breaks) or replaced (a gateway's 504). The client cannot tell whether the
//! write happened; tests count in the simulator that it happened exactly once.

use axum::body::Bytes;
use axum::http::Method;
use serde_json::Value;

/// What becomes of a write's answer after the write was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWrite {
    /// The connection breaks mid-answer.
    Drop,
    /// The answer is replaced by this status in the vendor's error shape (a gateway's 504).
    Status(u16),
    /// The connection breaks, and the next `n` vendor requests answer 503: the vendor is
    /// down for a while right after the write (a client that looks for what it wrote cannot).
    DropThenOutage(u32),
}

pub(crate) struct AfterWriteFault {
    pub(crate) method: String,
    /// Lower case.
    pub(crate) fragment: String,
    pub(crate) target: Target,
    pub(crate) fault: AfterWrite,
    pub(crate) remaining: u32,
}

impl AfterWriteFault {
    fn matches(&self, method: &Method, path: &str, body: &Bytes) -> bool {
        let path_lower = path.to_ascii_lowercase();
        let on_route = match self.fragment.strip_suffix('$') {
            Some(end) => path_lower.ends_with(end),
            None => path_lower.contains(&self.fragment),
        };
        if self.remaining == 0 || self.method != method.as_str() || !on_route {
            return false;
        }
        let id = match self.target {
            Target::Any => return true,
            Target::New => return !names_any_id(body),
            Target::Id(id) => id,
        };
        let wanted = id.to_string();
        if path.split('/').any(|segment| segment == wanted) {
            return true;
        }
        let names_id = |v: &Value| v.get("id").is_some_and(|x| x.as_i64() == Some(id) || x.as_str() == Some(&wanted));
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items.iter().any(names_id),
            Ok(object) => names_id(&object),
            Err(_) => false,
        }
    }
}

/// Which writes of a route a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Any,
    /// Writes naming this id in the path or the body.
    Id(i64),
    /// Creations: a body (object or array elements) with no `id`, or `id` 0.
    New,
}

fn names_any_id(body: &Bytes) -> bool {
    let has_id = |v: &Value| v.get("id").is_some_and(|x| x.as_i64() != Some(0) && !x.is_null());
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().any(has_id),
        Ok(object) => has_id(&object),
        Err(_) => false,
    }
}

impl crate::Shared {
    /// The after-write fault this applied write runs into, if any (and uses it up).
    pub(crate) fn strike_after_write(&self, method: &Method, path: &str, body: &Bytes) -> Option<AfterWrite> {
        let mut faults = self.after_write.lock().unwrap_or_else(|e| e.into_inner());
        let fault = faults.iter_mut().find(|f| f.matches(method, path, body))?;
        fault.remaining -= 1;
        let struck = fault.fault;
        drop(faults);
        self.stats().after_write_faults += 1;
        Some(struck)
    }
}
