//! JSON-RPC 2.0 framing: requests, notifications, batches with a bound, responses and errors.
//!
//! Parsing borrows the parameters from the message text (`&RawValue`), so a method deserialises
//! them straight into its own typed struct and secrets sent over the Unix socket (a PIN from the
//! CLI's `--pin-file`) never pass through an intermediate `serde_json::Value`. The transport owns
//! the message buffer and wipes it afterwards.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Number, Value};

use crate::agent::error::codes;

/// The protocol version this agent speaks; `hello` negotiates it.
pub const PROTOCOL_VERSION: u32 = 1;

/// A request id, echoed exactly in the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    /// A numeric id.
    Number(Number),
    /// A string id.
    Text(String),
    /// `null`: allowed by the spec, and used for errors about messages whose id is unknown.
    Null,
}

/// One parsed request. `id` is `None` for a notification (no answer is sent).
#[derive(Debug)]
pub struct Call<'a> {
    /// Absent for notifications.
    pub id: Option<Id>,
    /// The method name.
    pub method: String,
    /// The parameters, unparsed; `None` when absent or `null`.
    pub params: Option<&'a RawValue>,
}

/// What one message held.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A single request or notification (or the error answer for a malformed one).
    Single(Result<Call<'a>, Box<Response>>),
    /// A batch; each element is parsed on its own, so one bad element does not spoil the rest.
    Batch(Vec<Result<Call<'a>, Box<Response>>>),
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// Error code (JSON-RPC reserved range or the agent's -32000 range).
    pub code: i32,
    /// A message for people.
    pub message: String,
    /// Machine-readable details; always has `kind` for agent errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A JSON-RPC response: exactly one of `result` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<RpcError>,
    id: Id,
}

impl Response {
    /// A successful answer.
    pub fn success(id: Id, result: Value) -> Self {
        Response { jsonrpc: "2.0", result: Some(result), error: None, id }
    }

    /// An error answer.
    pub fn failure(id: Id, error: RpcError) -> Self {
        Response { jsonrpc: "2.0", result: None, error: Some(error), id }
    }

    /// The error, if this is an error answer.
    pub fn error(&self) -> Option<&RpcError> {
        self.error.as_ref()
    }
}

/// A server-to-client notification (events).
#[derive(Debug, Serialize)]
pub struct Notification<'a, T: Serialize> {
    jsonrpc: &'static str,
    method: &'a str,
    params: T,
}

impl<'a, T: Serialize> Notification<'a, T> {
    /// A notification of `method` with `params`.
    pub fn new(method: &'a str, params: T) -> Self {
        Notification { jsonrpc: "2.0", method, params }
    }
}

/// An error object with a `kind` in its data, for framing errors.
pub fn framing_error(code: i32, kind: &str, message: impl Into<String>) -> RpcError {
    RpcError { code, message: message.into(), data: Some(serde_json::json!({ "kind": kind })) }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    jsonrpc: Option<String>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "present_id")]
    id: Option<Value>,
}

/// Tells "id": null (present) from no id at all (a notification).
fn present_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Parses one message: a request, a notification or a batch of at most `max_batch` of them.
///
/// A message that is not JSON, an empty batch or a batch over the bound yields one error
/// response with a `null` id (the spec's answer for an unreadable message), without looking at
/// any element: a batch bomb costs one parse and no work.
pub fn parse(text: &str, max_batch: usize) -> Result<Incoming<'_>, Box<Response>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let elements: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| parse_failure(&e))?;
        if elements.is_empty() {
            return Err(Box::new(Response::failure(
                Id::Null,
                framing_error(codes::INVALID_REQUEST, "InvalidRequest", "empty batch; send at least one request"),
            )));
        }
        if elements.len() > max_batch {
            return Err(Box::new(Response::failure(
                Id::Null,
                framing_error(
                    codes::INVALID_REQUEST,
                    "BatchTooLarge",
                    format!("batch of {} requests; this agent accepts at most {max_batch} per batch", elements.len()),
                ),
            )));
        }
        return Ok(Incoming::Batch(elements.into_iter().map(|raw| parse_call(raw.get())).collect()));
    }
    // Check it is JSON at all first, so a parse error is told apart from a bad request.
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| parse_failure(&e))?;
    Ok(Incoming::Single(parse_call(raw.get())))
}

fn parse_failure(e: &serde_json::Error) -> Box<Response> {
    Box::new(Response::failure(
        Id::Null,
        framing_error(codes::PARSE_ERROR, "ParseError", format!("message is not valid JSON: {e}")),
    ))
}

fn invalid(id: Id, message: impl Into<String>) -> Box<Response> {
    Box::new(Response::failure(id, framing_error(codes::INVALID_REQUEST, "InvalidRequest", message)))
}

fn parse_call(text: &str) -> Result<Call<'_>, Box<Response>> {
    let envelope: Envelope<'_> = serde_json::from_str(text)
        .map_err(|e| invalid(Id::Null, format!("a request must be a JSON object with jsonrpc, method and id: {e}")))?;
    let id = match envelope.id {
        None => None,
        Some(Value::Null) => Some(Id::Null),
        Some(Value::Number(n)) => Some(Id::Number(n)),
        Some(Value::String(s)) => Some(Id::Text(s)),
        Some(_) => return Err(invalid(Id::Null, "the id must be a string, a number or null")),
    };
    let answer_id = id.clone().unwrap_or(Id::Null);
    if envelope.jsonrpc.as_deref() != Some("2.0") {
        return Err(invalid(answer_id, "the request must say \"jsonrpc\": \"2.0\""));
    }
    let method = match envelope.method {
        Some(Value::String(m)) => m,
        _ => return Err(invalid(answer_id, "the request needs a \"method\" string")),
    };
    let params = envelope.params.filter(|p| p.get() != "null");
    if let Some(p) = params {
        let first = p.get().trim_start().as_bytes().first().copied();
        if first != Some(b'{') && first != Some(b'[') {
            return Err(invalid(answer_id, "params must be an object (by name)"));
        }
    }
    Ok(Call { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Result<Call<'_>, Box<Response>> {
        match parse(text, 4).unwrap() {
            Incoming::Single(c) => c,
            Incoming::Batch(_) => panic!("expected single"),
        }
    }

    #[test]
    fn parses_request_and_notification() {
        let c = single(r#"{"jsonrpc":"2.0","method":"tokens.list","id":7}"#).unwrap();
        assert_eq!(c.method, "tokens.list");
        assert_eq!(c.id, Some(Id::Number(7.into())));
        let n = single(r#"{"jsonrpc":"2.0","method":"events.unsubscribe","params":{"subscription":1}}"#).unwrap();
        assert!(n.id.is_none());
        assert_eq!(n.params.unwrap().get(), r#"{"subscription":1}"#);
        let null_id = single(r#"{"jsonrpc":"2.0","method":"x","id":null}"#).unwrap();
        assert_eq!(null_id.id, Some(Id::Null));
    }

    #[test]
    fn malformed_messages_get_spec_errors() {
        let e = parse("{not json", 4).unwrap_err();
        assert_eq!(e.error().unwrap().code, codes::PARSE_ERROR);
        let e = single(r#"{"jsonrpc":"1.0","method":"x","id":1}"#).unwrap_err();
        assert_eq!(e.error().unwrap().code, codes::INVALID_REQUEST);
        assert_eq!(e.id, Id::Number(1.into()));
        let e = single(r#"{"jsonrpc":"2.0","method":5,"id":1}"#).unwrap_err();
        assert_eq!(e.error().unwrap().code, codes::INVALID_REQUEST);
        let e = single(r#"{"jsonrpc":"2.0","method":"x","params":3,"id":1}"#).unwrap_err();
        assert_eq!(e.error().unwrap().code, codes::INVALID_REQUEST);
        let e = single(r#"{"jsonrpc":"2.0","method":"x","id":{"a":1}}"#).unwrap_err();
        assert_eq!(e.id, Id::Null);
        let e = single("42").unwrap_err();
        assert_eq!(e.error().unwrap().code, codes::INVALID_REQUEST);
    }

    #[test]
    fn batches_are_bounded() {
        let one = r#"{"jsonrpc":"2.0","method":"hello","id":1}"#;
        let ok = format!("[{one},{one}]");
        match parse(&ok, 4).unwrap() {
            Incoming::Batch(items) => assert_eq!(items.len(), 2),
            Incoming::Single(_) => panic!("expected batch"),
        }
        let bomb = format!("[{}]", [one; 5].join(","));
        let e = parse(&bomb, 4).unwrap_err();
        assert_eq!(e.error().unwrap().data.as_ref().unwrap()["kind"], "BatchTooLarge");
        assert_eq!(parse("[]", 4).unwrap_err().error().unwrap().code, codes::INVALID_REQUEST);
        match parse("[1, {\"jsonrpc\":\"2.0\",\"method\":\"m\",\"id\":2}]", 4).unwrap() {
            Incoming::Batch(items) => {
                assert!(items[0].is_err());
                assert!(items[1].is_ok());
            }
            Incoming::Single(_) => panic!("expected batch"),
        }
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        match parse(&deep, 4) {
            Err(resp) => assert!(resp.error().is_some()),
            Ok(Incoming::Batch(items)) => assert!(items.iter().all(Result::is_err)),
            Ok(Incoming::Single(_)) => panic!("a nested array is no request"),
        }
        let deep_obj = format!(
            r#"{{"jsonrpc":"2.0","method":"m","id":1,"x":{}1{}}}"#,
            "{\"a\":".repeat(50_000),
            "}".repeat(50_000)
        );
        let _ = parse(&deep_obj, 4);
    }

    #[test]
    fn responses_serialise_per_spec() {
        let ok = serde_json::to_value(Response::success(Id::Text("a".into()), Value::Bool(true))).unwrap();
        assert_eq!(ok, serde_json::json!({"jsonrpc":"2.0","result":true,"id":"a"}));
        let err =
            serde_json::to_value(Response::failure(Id::Null, framing_error(-32600, "InvalidRequest", "m"))).unwrap();
        assert_eq!(err["error"]["data"]["kind"], "InvalidRequest");
        assert!(err.get("result").is_none());
    }
}
