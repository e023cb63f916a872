//! What one Lambda event asks for: the event parsed into the `aws_lambda_events` type of
//! its trigger, then into one [`Invocation`].
//!
//! - API Gateway REST proxy (`ApiGatewayProxyRequest`) and HTTP API payload 2.0
//!   (`ApiGatewayV2httpRequest`): the request is the JSON body (base64 when the event says so);
//!   the answer is a proxy response.
//! - EventBridge (`EventBridgeEvent`): only the schedule (`source: aws.events`,
//!   `detail-type: Scheduled Event`) with its whole envelope (`id`, `account`, `time`,
//!   `region`, the rule in `resources`) and an empty `detail`. A schedule says *when*, never
//!   *what*: its criteria, days and dry-run policy come from the settings, so an event that
//!   carries anything in `detail` is refused as `InvalidInput` and changes nothing.
//! - A step of the client-offboarding chain (`chain_step`, `request`, `resume`:
//!   [`crate::chain::StepCall`]): the request is the wrapped one, with the chain's parent
//!   operation (and the operation to resume); the answer is the report's
//!   [`crate::chain::step_result`].
//! - Anything else is a direct invoke (or a Step Functions task): the event is the request,
//!   whose unknown fields are refused.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::caller::{Caller, direct_caller, http_api_principal, rest_api_principal};
use crate::chain::{STEP_CALL_KEY, StepCall};
use crate::error::OfframpError;

/// The EventBridge source and detail type of a scheduled rule's event.
pub const SCHEDULE_SOURCE: &str = "aws.events";
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";

/// One Lambda event, recognised and parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation<R> {
    /// A direct invoke or a Step Functions task: the event is the request.
    Direct(R),
    /// An API Gateway REST API proxy request.
    RestApi(R),
    /// An API Gateway HTTP API request (payload format 2.0).
    HttpApi(R),
    /// The EventBridge schedule of a function that has one.
    Schedule(Schedule),
    /// A step of the client-offboarding chain (state machine or in-process).
    ChainStep(R),
}

/// A scheduled rule's event: only where it came from and when. It carries no parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: String,
    pub account: String,
    pub region: String,
    pub time: DateTime<Utc>,
    /// The rule's ARN (the envelope's first resource).
    pub rule: String,
}

/// How the answer goes back: the report itself, or an API Gateway proxy response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Report,
    Proxy,
    /// The report's step result (a Lambda error too when the run failed, so `Catch` works).
    StepResult,
}

/// An event that cannot be handled, with how to answer it.
#[derive(Debug)]
pub struct Refused {
    pub reply: Reply,
    pub error: OfframpError,
}

/// Whether the function has a schedule (`deactivate-configs`' sweep, `deactivate-contacts`'
/// contact sweep, `delete-itglue-org`'s cleanup); the others refuse a schedule event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedules {
    Accepted,
    Refused,
}

impl<R> Invocation<R> {
    pub fn reply(&self) -> Reply {
        match self {
            Invocation::RestApi(_) | Invocation::HttpApi(_) => Reply::Proxy,
            Invocation::Direct(_) | Invocation::Schedule(_) => Reply::Report,
            Invocation::ChainStep(_) => Reply::StepResult,
        }
    }

    /// The request and how to answer it; a schedule has no request and is given back.
    pub fn into_request(self) -> Result<(Reply, R), Schedule> {
        match self {
            Invocation::Direct(request) => Ok((Reply::Report, request)),
            Invocation::RestApi(request) | Invocation::HttpApi(request) => Ok((Reply::Proxy, request)),
            Invocation::Schedule(schedule) => Err(schedule),
            Invocation::ChainStep(request) => Ok((Reply::StepResult, request)),
        }
    }
}

impl<R: DeserializeOwned> Invocation<R> {
    /// Recognise `event`'s trigger and parse it. The shape decides which type it is parsed
    /// into; the type decides whether it is valid.
    pub fn parse(event: Value, schedules: Schedules) -> Result<Self, Refused> {
        let has = |key: &str| event.get(key).is_some();
        if has("requestContext") {
            let proxy = |error: OfframpError| Refused { reply: Reply::Proxy, error };
            return if event.get("version").and_then(Value::as_str) == Some("2.0") {
                let request: ApiGatewayV2httpRequest =
                    from_event(event, "an API Gateway HTTP API event").map_err(proxy)?;
                Ok(Invocation::HttpApi(body(request.body.as_deref(), request.is_base64_encoded).map_err(proxy)?))
            } else {
                let request: ApiGatewayProxyRequest =
                    from_event(event, "an API Gateway REST API event").map_err(proxy)?;
                Ok(Invocation::RestApi(body(request.body.as_deref(), request.is_base64_encoded).map_err(proxy)?))
            };
        }
        if has(STEP_CALL_KEY) {
            let step = |error: OfframpError| Refused { reply: Reply::StepResult, error };
            let call: StepCall = from_event(event, "a chain step").map_err(step)?;
            let request = call.into_request().map_err(|e| step(invalid(e)))?;
            return serde_json::from_value(request)
                .map(Invocation::ChainStep)
                .map_err(|e| step(invalid(format!("chain step request: {e}"))));
        }
        let report = |error: OfframpError| Refused { reply: Reply::Report, error };
        if has("source") || has("detail-type") || has("detail") {
            let event: EventBridgeEvent = from_event(event, "an EventBridge event").map_err(report)?;
            return schedule(event, schedules).map(Invocation::Schedule).map_err(report);
        }
        serde_json::from_value(event).map(Invocation::Direct).map_err(|e| report(invalid(format!("request: {e}"))))
    }
}

impl<R: DeserializeOwned> Invocation<R> {
    /// [`Self::parse`], and who is asking (`caller.rs`): an API event must carry an
    /// authenticated principal (else `Unauthenticated`, before its body is read); a direct
    /// invoke gives up its caller fields; a schedule is its rule.
    pub fn parse_asked(mut event: Value, schedules: Schedules) -> Result<(Self, Caller), Refused> {
        if event.get("requestContext").is_some() {
            let principal = api_principal(&event).map_err(|error| Refused { reply: Reply::Proxy, error })?;
            let invocation = Self::parse(event, schedules)?;
            return Ok((invocation, Caller { principal: Some(principal), assigned_operation_id: None }));
        }
        let eventbridge = ["source", "detail-type", "detail"].iter().any(|key| event.get(*key).is_some());
        let caller = if eventbridge {
            Caller::default()
        } else {
            direct_caller(&mut event).map_err(|error| Refused { reply: Reply::Report, error })?
        };
        let invocation = Self::parse(event, schedules)?;
        let caller = match &invocation {
            Invocation::Schedule(schedule) => {
                Caller { principal: Some(format!("schedule:{}", schedule.rule)), ..caller }
            }
            _ => caller,
        };
        Ok((invocation, caller))
    }
}

/// The principal of an API Gateway event (REST, or HTTP API payload 2.0).
fn api_principal(event: &Value) -> Result<String, OfframpError> {
    if event.get("version").and_then(Value::as_str) == Some("2.0") {
        let request: ApiGatewayV2httpRequest = from_event(event.clone(), "an API Gateway HTTP API event")?;
        http_api_principal(&request)
    } else {
        let request: ApiGatewayProxyRequest = from_event(event.clone(), "an API Gateway REST API event")?;
        rest_api_principal(&request)
    }
}

fn invalid(message: String) -> OfframpError {
    OfframpError::invalid_input(message)
}

fn from_event<T: DeserializeOwned>(event: Value, what: &str) -> Result<T, OfframpError> {
    serde_json::from_value(event).map_err(|e| invalid(format!("not {what}: {e}")))
}

/// The request an API Gateway body carries.
fn body<R: DeserializeOwned>(body: Option<&str>, base64: bool) -> Result<R, OfframpError> {
    let body = body.unwrap_or_default();
    let text = if base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| invalid("body is not valid base64".into()))?;
        String::from_utf8(bytes).map_err(|_| invalid("body is not UTF-8".into()))?
    } else {
        body.to_string()
    };
    serde_json::from_str(&text).map_err(|e| invalid(format!("request body: {e}")))
}

/// The schedule an EventBridge event is, if it is one: the real envelope, nothing in `detail`.
fn schedule(event: EventBridgeEvent, schedules: Schedules) -> Result<Schedule, OfframpError> {
    if event.source != SCHEDULE_SOURCE || event.detail_type != SCHEDULE_DETAIL_TYPE {
        return Err(invalid(format!(
            "an EventBridge event from '{}' ('{}') is not a trigger of this function; nothing was changed",
            event.source, event.detail_type
        )));
    }
    if schedules == Schedules::Refused {
        return Err(invalid("this function has no schedule; nothing was changed".into()));
    }
    let overrides: Vec<&str> = match &event.detail {
        Value::Object(fields) => fields.keys().map(String::as_str).collect(),
        _ => vec!["(not an object)"],
    };
    if !overrides.is_empty() {
        return Err(invalid(format!(
            "a schedule carries no parameters, but its detail has [{}]: the schedule's criteria, days and dry-run \
             policy come from the configuration (OFFRAMP_OFFBOARDED_*, OFFRAMP_SWEEP_DRY_RUN, \
             OFFRAMP_ITGLUE_OFFBOARDED_DAYS, OFFRAMP_ITGLUE_CLEANUP_DRY_RUN); nothing was changed",
            overrides.join(", ")
        )));
    }
    let missing =
        |field: &str| invalid(format!("a schedule event without its envelope's {field}; nothing was changed"));
    let rule = event.resources.unwrap_or_default().into_iter().next().filter(|r| r.starts_with("arn:"));
    Ok(Schedule {
        id: event.id.filter(|v| !v.is_empty()).ok_or_else(|| missing("id"))?,
        account: event.account.filter(|v| !v.is_empty()).ok_or_else(|| missing("account"))?,
        region: event.region.filter(|v| !v.is_empty()).ok_or_else(|| missing("region"))?,
        time: event.time.ok_or_else(|| missing("time"))?,
        rule: rule.ok_or_else(|| missing("resources (the rule's ARN)"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        client_id: String,
    }

    fn envelope(detail: Value) -> Value {
        json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-22T03:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/nightly"],
            "detail": detail
        })
    }

    fn parse(event: Value) -> Result<Invocation<Ask>, Refused> {
        Invocation::parse(event, Schedules::Accepted)
    }

    #[test]
    fn every_trigger_is_recognised() {
        let ask = || Ask { client_id: "1".into() };
        assert_eq!(parse(json!({"client_id": "1"})).unwrap(), Invocation::Direct(ask()));
        let rest =
            json!({"httpMethod": "POST", "requestContext": {"httpMethod": "POST"}, "body": "{\"client_id\":\"1\"}"});
        assert_eq!(parse(rest).unwrap(), Invocation::RestApi(ask()));
        let http = json!({
            "version": "2.0", "routeKey": "POST /x", "rawPath": "/x",
            "requestContext": {"http": {"method": "POST", "path": "/x"}, "requestId": "r"},
            "body": "eyJjbGllbnRfaWQiOiIxIn0=", "isBase64Encoded": true
        });
        assert_eq!(parse(http).unwrap(), Invocation::HttpApi(ask()));
        let Invocation::Schedule(schedule) = parse(envelope(json!({}))).unwrap() else { panic!("a schedule") };
        assert_eq!(schedule.rule, "arn:aws:events:us-east-1:123456789012:rule/nightly");
    }

    /// A schedule is the whole envelope with nothing in `detail`; anything else claiming to
    /// be one is refused.
    #[test]
    fn a_schedule_that_carries_parameters_or_lacks_its_envelope_is_refused() {
        for detail in [json!({"dry_run": false}), json!({"offboarded_statuses": ["Active"]}), json!("x")] {
            let refused = parse(envelope(detail.clone())).unwrap_err();
            assert_eq!(refused.error.code(), crate::error::ErrorCode::InvalidInput, "{detail}");
            assert_eq!(refused.reply, Reply::Report);
        }
        for field in ["id", "account", "time", "region", "resources"] {
            let mut event = envelope(json!({}));
            event.as_object_mut().unwrap().remove(field);
            let message = parse(event).unwrap_err().error.to_string();
            assert!(message.contains(field), "{field}: {message}");
        }
        let short = json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        assert!(parse(short).is_err(), "the envelope by hand is not a schedule");
        let other = json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}});
        assert!(parse(other).unwrap_err().error.to_string().contains("aws.s3"));
        let refused = Invocation::<Ask>::parse(envelope(json!({})), Schedules::Refused).unwrap_err();
        assert!(refused.error.to_string().contains("no schedule"));
    }

    #[test]
    fn a_broken_api_event_is_answered_as_a_proxy_response() {
        let refused = parse(json!({"requestContext": {}, "body": "{}"})).unwrap_err();
        assert_eq!(refused.reply, Reply::Proxy, "{}", refused.error);
        let bad_body = json!({"httpMethod": "POST", "requestContext": {"httpMethod": "POST"}, "body": "{\"x\": 1}"});
        assert_eq!(parse(bad_body).unwrap_err().reply, Reply::Proxy);
    }
}
