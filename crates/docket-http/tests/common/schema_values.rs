//! Values derived from a JSON Schema of the OpenAPI document, for the request cases of the
//! `openapi_cases` test: a typical value of a schema, and the values one step from it (its
//! boundaries and one past them, the wrong type, `null`, each enum member and an unknown one,
//! an object's properties left out, added or changed one at a time). Which of them the
//! schema accepts is for the schema to say, not for this module.

use serde_json::{Value, json};

use super::openapi::deref;

/// What the generated values need from the running server: ids that exist, a URL it can
/// fetch.
pub struct Fixtures {
    pub document_id: String,
    pub job_id: i64,
    pub fetch_url: String,
    pub callback_url: String,
}

/// A schema's types: `type` as a list, or what `const`/`enum`/`properties` imply.
pub fn types(s: &Value) -> Vec<String> {
    match &s["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ if s.get("properties").is_some() => vec!["object".into()],
        _ => {
            let v = s.get("const").or_else(|| s["enum"].get(0));
            let t = match v {
                Some(Value::String(_)) => "string",
                Some(Value::Bool(_)) => "boolean",
                Some(Value::Number(n)) if n.is_i64() => "integer",
                Some(Value::Number(_)) => "number",
                _ => return Vec::new(),
            };
            vec![t.into()]
        }
    }
}

/// The branches of a `oneOf`/`anyOf` made only of references (alternative shapes).
pub fn alternatives<'a>(doc: &'a Value, s: &'a Value) -> Vec<&'a Value> {
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = s[key].as_array()
            && s.get("properties").is_none()
        {
            return list
                .iter()
                .map(|b| deref(doc, b, String::new()).0)
                .collect();
        }
    }
    Vec::new()
}

/// A typical valid value of `s` (the value of property `name`).
pub fn sample(doc: &Value, fx: &Fixtures, name: &str, s: &Value) -> Value {
    let s = deref(doc, s, String::new()).0;
    if let Some(v) = s.get("const") {
        return v.clone();
    }
    if let Some(v) = s["enum"].get(0).or_else(|| s["examples"].get(0)) {
        return v.clone();
    }
    if let Some(first) = alternatives(doc, s).first() {
        return sample(doc, fx, name, first);
    }
    let t = types(s);
    let t = t
        .iter()
        .find(|t| *t != "null")
        .map_or("null", String::as_str);
    match t {
        "integer" => json!(s["minimum"].as_i64().unwrap_or(1).max(1)),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "string" => json!(sample_string(fx, name, s)),
        "array" => json!([sample(doc, fx, name, &s["items"])]),
        "object" => {
            let mut o = serde_json::Map::new();
            for (k, v) in s["properties"].as_object().into_iter().flatten() {
                o.insert(k.clone(), sample(doc, fx, k, v));
            }
            Value::Object(o)
        }
        _ => Value::Null,
    }
}

pub fn sample_string(fx: &Fixtures, name: &str, s: &Value) -> String {
    if s["format"] == "uuid" {
        return if name == "document_id" || name == "id" {
            fx.document_id.clone()
        } else {
            "00000000-0000-4000-8000-000000000000".into()
        };
    }
    if s["pattern"]
        .as_str()
        .is_some_and(|p| p.starts_with("^https?://"))
    {
        return if name == "url" {
            fx.fetch_url.clone()
        } else {
            fx.callback_url.clone()
        };
    }
    let min = s["minLength"].as_u64().unwrap_or(0) as usize;
    let mut v = "openapi-case".to_owned();
    while v.len() < min {
        v.push('x');
    }
    v
}

/// Values of `s` one step from its sample (property `name`), each with what it is: its
/// boundaries, one past them, the wrong type, `null`; for objects, each property changed.
pub fn variants(
    doc: &Value,
    fx: &Fixtures,
    name: &str,
    s: &Value,
    depth: usize,
) -> Vec<(String, Value)> {
    let s = deref(doc, s, String::new()).0;
    let mut out: Vec<(String, Value)> = vec![("null".into(), Value::Null)];
    let alts = alternatives(doc, s);
    if !alts.is_empty() {
        for a in alts {
            out.extend(variants(doc, fx, name, a, depth));
        }
        return out;
    }
    if let Some(v) = s.get("const") {
        out.push((format!("{v}"), v.clone()));
        out.push((
            "another value than the const".into(),
            json!("openapi-other"),
        ));
    }
    for m in s["enum"].as_array().into_iter().flatten() {
        out.push((format!("enum member {m}"), m.clone()));
    }
    if s.get("enum").is_some() {
        out.push(("an unknown enum value".into(), json!("openapi-unknown")));
    }
    for t in types(s) {
        match t.as_str() {
            "integer" | "number" => {
                let (min, max) = (s["minimum"].as_f64(), s["maximum"].as_f64());
                let typical = 99f64.clamp(min.unwrap_or(f64::MIN), max.unwrap_or(f64::MAX));
                if let Some(min) = min {
                    out.push(("the minimum".into(), json!(min as i64)));
                    out.push(("below the minimum".into(), json!(min as i64 - 1)));
                }
                if let Some(max) = max {
                    out.push(("the maximum".into(), json!(max as i64)));
                    out.push(("above the maximum".into(), json!(max as i64 + 1)));
                }
                out.push(("an integral float".into(), json!(typical)));
                out.push(("a fractional number".into(), json!(typical - 0.5)));
                out.push(("a string".into(), json!("abc")));
            }
            "string" => {
                out.push(("the empty string".into(), json!("")));
                out.push(("a blank string".into(), json!(" ")));
                out.push(("a word".into(), json!("openapi-case")));
                if let Some(max) = s["maxLength"].as_u64() {
                    out.push(("the longest string".into(), json!("x".repeat(max as usize))));
                    out.push((
                        "a string too long".into(),
                        json!("x".repeat(max as usize + 1)),
                    ));
                }
                if s.get("pattern").is_some() {
                    out.push(("another scheme".into(), json!("ftp://openapi.invalid/x")));
                }
                if s["format"] == "uuid" {
                    out.push(("not a UUID".into(), json!("not-a-uuid")));
                }
                out.push(("a number".into(), json!(1)));
            }
            "boolean" => {
                out.push(("true".into(), json!(true)));
                out.push(("false".into(), json!(false)));
                out.push(("a string".into(), json!("true")));
            }
            "array" => {
                out.push(("an empty list".into(), json!([])));
                for (what, v) in variants(doc, fx, name, &s["items"], depth + 1) {
                    out.push((format!("[{what}]"), json!([v])));
                }
                out.push(("an object".into(), json!({})));
            }
            "object" => {
                out.push(("a list".into(), json!([])));
                if depth < 3 {
                    out.extend(object_variants(doc, fx, s, depth));
                }
            }
            _ => {}
        }
    }
    out.push(("the sample".into(), sample(doc, fx, name, s)));
    out
}

/// Objects of schema `s`: every property, the required ones only, each required one left
/// out, an unknown one added, and each property's variants on the required ones.
pub fn object_variants(
    doc: &Value,
    fx: &Fixtures,
    s: &Value,
    depth: usize,
) -> Vec<(String, Value)> {
    let props = s["properties"].as_object().cloned().unwrap_or_default();
    let required: Vec<&str> = s["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let every = sample(doc, fx, "", s);
    let mut minimal = serde_json::Map::new();
    for r in &required {
        minimal.insert((*r).to_owned(), every[*r].clone());
    }
    let mut out = vec![
        ("every property".to_owned(), every.clone()),
        (
            "the required properties only".to_owned(),
            Value::Object(minimal.clone()),
        ),
        ("an empty object".to_owned(), json!({})),
    ];
    for r in &required {
        let mut v = every.clone();
        v.as_object_mut().unwrap().remove(*r);
        out.push((format!("without {r}"), v));
    }
    let mut extra = every.clone();
    extra["openapi_unknown"] = json!(1);
    out.push(("an unknown property".to_owned(), extra));
    for (name, schema) in &props {
        for (what, v) in variants(doc, fx, name, schema, depth + 1) {
            let mut o = minimal.clone();
            o.insert(name.clone(), v);
            out.push((format!("{name} = {what}"), Value::Object(o)));
        }
    }
    out
}
