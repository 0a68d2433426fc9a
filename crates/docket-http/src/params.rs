//! Request fields read the way the OpenAPI document declares them.
//!
//! JSON Schema's `"type": "integer"` is any number whose fraction is zero, so `99.0` is an
//! integer and `99.5` is not; serde's `i64` refuses both floats. [`Int`] (in JSON bodies) and
//! [`QueryInt`] (in query strings) read what the document allows and refuse the rest with a
//! message naming the value. [`non_null`] refuses `null` for an optional field the document
//! does not declare nullable, where serde's `Option` would take it as absent. [`JsonObject`]
//! takes only a JSON object for a body the document declares an object (serde would read a
//! struct from an array too, by position).
//!
//! The statuses are the ones docs/api.md documents: a body that is not JSON is `400`; JSON
//! that breaks the body's schema is `422`. A query string that does not read as the route's
//! parameters ([`QueryParams`]: an unknown parameter, a number that is not an integer, an id
//! that is not a UUID) is `400`; a value of the right type the route refuses ([`one_of`]: an
//! unknown state, a limit out of range) is `422`. Every message names the field or parameter
//! it is about (`mode: ...`, `limit: ...`).

use std::fmt;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, Unexpected, Visitor};

use crate::ApiError;

/// A JSON body that is an object, read as `T`: `400` for what is not JSON, `415` without
/// `Content-Type: application/json`, `422` for other JSON or an object `T` refuses.
#[derive(Debug)]
pub(crate) struct JsonObject<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = <Json<serde_json::Value> as FromRequest<S>>::from_request(req, state)
            .await
            .map_err(|e| ApiError(e.status(), e.body_text()))?;
        let refuse = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
        if !value.is_object() {
            return Err(refuse(format!(
                "the body must be a JSON object, not {}",
                kind_of(&value)
            )));
        }
        // Read again from text, so that an error names the field it is about (`k: invalid
        // value: ...`). The body is JSON, so whatever `T` refuses is the data's fault: `422`,
        // whichever class serde_json gives it (it calls `null` where it wants an enum's name a
        // syntax error).
        let text = serde_json::to_vec(&value).map_err(|e| refuse(e.to_string()))?;
        Json::<T>::from_bytes(&text)
            .map(|Json(v)| JsonObject(v))
            .map_err(|e| refuse(inner_message(&e)))
    }
}

/// The message of a framework rejection without the framework's preamble ("Failed to
/// deserialize ...: "): serde's own, which names the field (`k: invalid value: ...`), less the
/// position serde_json appends (` at line 1 column 9`), which is about the text the server
/// wrote, not the text the client sent.
fn inner_message(e: &impl std::error::Error) -> String {
    let m = e
        .source()
        .map_or_else(|| e.to_string(), ToString::to_string);
    let position = |tail: &str| {
        tail.split_once(" column ").is_some_and(|(line, column)| {
            [line, column]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    match m.rfind(" at line ") {
        Some(i) if position(&m[i + " at line ".len()..]) => m[..i].to_owned(),
        _ => m,
    }
}

/// A query string read as `T`: `400`, naming the parameter, when it does not read (an unknown
/// parameter where `T` refuses them, a value that is not of the parameter's type).
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, inner_message(&e)))
    }
}

/// The member of `all` that `text`, the value of query parameter `name`, names: `422`
/// otherwise, with the allowed values (`state: unknown job state "x"; one of queued, ...`).
pub(crate) fn one_of<T: Copy + fmt::Display>(
    name: &str,
    what: &str,
    text: &str,
    all: &[T],
) -> Result<T, ApiError> {
    all.iter()
        .copied()
        .find(|v| v.to_string() == text)
        .ok_or_else(|| {
            let allowed: Vec<String> = all.iter().map(ToString::to_string).collect();
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{name}: unknown {what} {text:?}; one of {}",
                    allowed.join(", ")
                ),
            )
        })
}

/// An optional body: none without a `Content-Type`.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if req.headers().get(header::CONTENT_TYPE).is_none() {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// An integer in a JSON body: `99` or `99.0`; not `99.5`, `"99"` or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int(pub(crate) i64);

/// An integer in a query string: `99` or `99.0` (JSON's number syntax); not `99.5` or `abc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryInt(pub(crate) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor { text: false }).map(Int)
    }
}

impl<'de> Deserialize<'de> for QueryInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(IntVisitor { text: true }).map(QueryInt)
    }
}

/// Reads a number (and, with `text`, a number written as text) as an `i64`.
struct IntVisitor {
    text: bool,
}

/// The float `v`, if it is an integer an `i64` holds.
fn integral(v: f64) -> Option<i64> {
    // 2^63 is exact as f64; every integral f64 below it converts without loss.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (v.is_finite() && v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v)).then_some(v as i64)
}

impl Visitor<'_> for IntVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (a number with no fractional part, within 64 bits)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        integral(v).ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        if !self.text {
            return Err(E::invalid_type(Unexpected::Str(v), &self));
        }
        // JSON's number syntax, so that `99.0` reads as in a body and `0x10` or ` 5` do not.
        let n: serde_json::Number = serde_json::from_str(v)
            .ok()
            .filter(|_| !v.starts_with(char::is_whitespace) && !v.ends_with(char::is_whitespace))
            .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))?;
        if let Some(i) = n.as_i64() {
            return Ok(i);
        }
        n.as_f64()
            .and_then(integral)
            .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// For `#[serde(default, deserialize_with = "non_null")]` on an `Option` field the document
/// does not declare nullable: absent is `None`, `null` is refused like any value of the
/// wrong type.
pub(crate) fn non_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        n: Option<Int>,
        #[serde(default, deserialize_with = "non_null")]
        s: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct Query {
        n: Option<QueryInt>,
    }

    fn body(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn query(q: &str) -> Result<Option<i64>, String> {
        let uri: axum::http::Uri = format!("/?{q}").parse().unwrap();
        axum::extract::Query::<Query>::try_from_uri(&uri)
            .map(|q| q.0.n.map(|n| n.0))
            .map_err(|e| e.body_text())
    }

    #[test]
    fn a_json_integer_may_have_a_zero_fraction() {
        assert_eq!(body(r#"{"n": 99}"#).unwrap().n, Some(Int(99)));
        assert_eq!(body(r#"{"n": 99.0}"#).unwrap().n, Some(Int(99)));
        assert_eq!(body(r#"{"n": -3e2}"#).unwrap().n, Some(Int(-300)));
        assert_eq!(body(r#"{"n": null}"#).unwrap().n, None);
        for refused in [
            r#"{"n": 99.5}"#,
            r#"{"n": "99"}"#,
            r#"{"n": 1e19}"#,
            r#"{"n": true}"#,
        ] {
            let e = body(refused).unwrap_err();
            assert!(e.contains("expected an integer"), "{refused}: {e}");
        }
        assert!(body(r#"{"n": 99.5}"#).unwrap_err().contains("99.5"));
    }

    #[test]
    fn a_query_integer_may_have_a_zero_fraction() {
        assert_eq!(query("n=99"), Ok(Some(99)));
        assert_eq!(query("n=99.0"), Ok(Some(99)));
        assert_eq!(query(""), Ok(None));
        for refused in [
            "n=99.5", "n=abc", "n=", "n=0x10", "n=%205", "n=NaN", "n=1e30",
        ] {
            let e = query(refused).unwrap_err();
            assert!(e.contains("expected an integer"), "{refused}: {e}");
        }
    }

    fn query_params(q: &str) -> Result<Option<i64>, ApiError> {
        let (mut parts, ()) = axum::http::Request::get(format!("/?{q}"))
            .body(())
            .unwrap()
            .into_parts();
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Strict {
            n: Option<QueryInt>,
        }
        let run = QueryParams::<Strict>::from_request_parts(&mut parts, &());
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run)
            .map(|QueryParams(q)| q.n.map(|n| n.0))
    }

    #[test]
    fn a_query_string_that_does_not_read_is_400_naming_the_parameter() {
        assert_eq!(query_params("n=7").unwrap(), Some(7));
        for (q, says) in [
            ("n=abc", "n: invalid value: string \"abc\""),
            ("n=1.5", "n: invalid value: string \"1.5\""),
            ("m=1", "m: unknown field `m`"),
        ] {
            let ApiError(status, message) = query_params(q).unwrap_err();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
            assert!(message.starts_with(says), "{q}: {message}");
        }
    }

    #[test]
    fn a_value_that_names_no_member_is_422_with_the_members() {
        let states = [docket_core::JobState::Queued, docket_core::JobState::Failed];
        assert_eq!(
            one_of("state", "job state", "failed", &states).unwrap(),
            docket_core::JobState::Failed
        );
        let ApiError(status, message) = one_of("state", "job state", "bogus", &states).unwrap_err();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            message,
            r#"state: unknown job state "bogus"; one of queued, failed"#
        );
    }

    #[test]
    fn a_position_in_text_the_client_did_not_send_is_left_out() {
        let e = axum::Json::<Body>::from_bytes(br#"{"n": "x"}"#).unwrap_err();
        assert_eq!(
            inner_message(&e),
            "n: invalid type: string \"x\", expected an integer (a number with no fractional \
             part, within 64 bits)"
        );
    }

    #[test]
    fn null_is_refused_where_the_field_is_not_nullable() {
        assert_eq!(body(r#"{"s": "x"}"#).unwrap().s.as_deref(), Some("x"));
        assert_eq!(body("{}").unwrap().s, None);
        let e = body(r#"{"s": null}"#).unwrap_err();
        assert!(e.contains("invalid type: null"), "{e}");
    }
}
