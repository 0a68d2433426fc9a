//! Request fields read the way the OpenAPI document declares them.
//!
//! JSON Schema's `"type": "integer"` is any number whose fraction is zero, so `99.0` is an
//! integer and `99.5` is not; serde's `i64` refuses both floats. [`Int`] (in JSON bodies) and
//! [`QueryInt`] (in query strings) read what the document allows and refuse the rest with a
//! message naming the value. [`non_null`] refuses `null` for an optional field the document
//! does not declare nullable, where serde's `Option` would take it as absent. [`JsonObject`]
//! takes only a JSON object for a body the document declares an object (serde would read a
//! struct from an array too, by position).

use std::fmt;

use axum::Json;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
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
        // value: ...`), as the framework's own JSON errors do.
        let text = serde_json::to_vec(&value).map_err(|e| refuse(e.to_string()))?;
        Json::<T>::from_bytes(&text)
            .map(|Json(v)| JsonObject(v))
            .map_err(|e| ApiError(e.status(), e.body_text()))
    }
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

    #[test]
    fn null_is_refused_where_the_field_is_not_nullable() {
        assert_eq!(body(r#"{"s": "x"}"#).unwrap().s.as_deref(), Some("x"));
        assert_eq!(body("{}").unwrap().s, None);
        let e = body(r#"{"s": null}"#).unwrap_err();
        assert!(e.contains("invalid type: null"), "{e}");
    }
}
