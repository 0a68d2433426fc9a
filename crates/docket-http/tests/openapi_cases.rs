//! The server against request cases built from its own OpenAPI document, in the manner of
//! schemathesis: for every documented operation, values are derived from each request body's
//! and each query parameter's schema (every property, only the required ones, each property
//! on its own at its boundaries: minimum and maximum and one past them, an integer written as
//! `99.0` and one as `99.5`, each enum member and an unknown one, empty and longest strings,
//! `null`, the wrong type, a missing required property, an unknown one), and the document
//! itself (Python's `jsonschema`) decides which of them are valid.
//!
//! - A valid case must not be refused as invalid (`400`, `413`, `415`, `422`).
//! - An invalid case must be refused with the status the API documents for its fault: a JSON
//!   or form body that is well formed but breaks its schema is `422`; a query parameter that
//!   does not read as its type (`type`, `format`: a number that is not an integer, an id that
//!   is not a UUID) is `400`, and one of the right type that breaks a constraint (`enum`,
//!   `minimum`, `maximum`, ...) is `422`. The error names the query parameter it is about,
//!   and no error about a body that is JSON says that it is not.
//! - Every answer's status must be documented for its operation, its media type too, and a
//!   JSON body must match the documented schema; no answer may be a `5xx`.
//! - An event stream's media type is documented as `text/event-stream`, each event described
//!   (`x-itemSchema`), and the events the server sends match that description.
//!
//! The cases are enumerated, not random: the same document gives the same cases.

use std::collections::BTreeMap;
use std::time::Duration;

use docket_conformance::harness::{TestDb, postgres, sqlite};
use docket_core::{Clock, Driver, SystemClock};
use docket_pipeline::fetch::{FetchConfig, Fetcher};
use docket_pipeline::ingest::{StorageIngest, StorageWebhookConfig};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

mod common;
use common::Server;
use common::openapi::*;
use common::schema_values::{Fixtures, sample, types, variants};

/// A document's text, served on loopback for the URL-ingestion cases.
const FETCHED: &str = "# Fetched\n\nA document fetched by URL for the OpenAPI cases.\n";

/// Decides, for each case, whether the document's schemas accept all its values: argv[1] is
/// the document, argv[2] a JSON list of cases, each a list of `{pointer, instance}`. Prints
/// a JSON list of `[valid, first error, its keyword, the pointer of the value it is about]`.
const CLASSIFY: &str = r##"
import json, sys
from urllib.parse import quote
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

doc = json.load(open(sys.argv[1]))
cases = json.load(open(sys.argv[2]))
base = "urn:docket-openapi"
registry = Registry().with_resource(base, DRAFT202012.create_resource(doc))
validators = {}
def validator(pointer):
    if pointer not in validators:
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": base + "#" + quote(pointer, safe="/~"),
        }
        validators[pointer] = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators[pointer]
out = []
for values in cases:
    error, keyword, pointer = None, "", ""
    for v in values:
        e = next(iter(validator(v["pointer"]).iter_errors(v["instance"])), None)
        if e is not None:
            error = "/".join(str(p) for p in e.absolute_path) + ": " + e.message
            keyword, pointer = e.validator, v["pointer"]
            break
    out.append([error is None, error or "", keyword, pointer])
print(json.dumps(out))
"##;

/// Operations that receive other services' payloads: they read the fields they need and
/// ignore the rest, so a value the schema refuses in a field they do not read is accepted.
/// Their valid cases must still be accepted, and a refusal must still be documented.
const LENIENT: &[(&str, &str)] = &[("post", "/v1/webhooks/storage")];

// ---------------------------------------------------------------------------------------------
// Cases.

/// A request body of a case.
#[derive(Clone)]
enum CaseBody {
    None,
    Json(Value),
    /// Form fields, `file` sent as a file part.
    Form(serde_json::Map<String, Value>),
}

/// One request, and the values the document judges it by.
struct Case {
    method: String,
    template: String,
    what: String,
    path: String,
    query: Vec<(String, String)>,
    body: CaseBody,
    /// (schema pointer, value): the case is valid when every value matches its schema.
    values: Vec<(String, Value)>,
}

impl Case {
    fn label(&self) -> String {
        format!(
            "{} {} [{}]",
            self.method.to_uppercase(),
            self.template,
            self.what
        )
    }
}

/// `v` as a query string or form field writes it; `None` for what has no such form.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether the text form of `v` reads back as `v` for schema `s` (a string schema reads `1`
/// as the string `"1"`, so a number is no case for it).
fn round_trips(doc: &Value, s: &Value, v: &Value) -> bool {
    let s = deref(doc, s, String::new()).0;
    let t = types(s);
    match v {
        Value::String(text) => {
            // Text that reads as a number is a number to a numeric schema.
            !(t.iter().any(|t| t == "integer" || t == "number") && text.parse::<f64>().is_ok())
        }
        Value::Number(_) => t.iter().any(|t| t == "integer" || t == "number"),
        _ => false,
    }
}

/// The path of `template` with fixtures for its parameters.
fn fill_path(doc: &Value, fx: &Fixtures, method: &str, template: &str) -> String {
    let mut path = template.to_owned();
    for p in parameters(doc, method, template) {
        if p["in"] != "path" {
            continue;
        }
        let name = p["name"].as_str().unwrap();
        let value = match (template, p["schema"]["type"].as_str()) {
            (t, _) if t.starts_with("/v1/documents/") => fx.document_id.clone(),
            (_, Some("integer")) => fx.job_id.to_string(),
            (t, _) if t.starts_with("/v1/queues/") => "openapi-cases".to_owned(),
            _ => "openapi-cases-nightly".to_owned(),
        };
        path = path.replace(&format!("{{{name}}}"), &value);
    }
    path
}

/// Every case of every documented operation.
fn cases(doc: &Value, fx: &Fixtures) -> Vec<Case> {
    let mut out = Vec::new();
    for (method, template) in documented_operations(doc) {
        let path = fill_path(doc, fx, &method, &template);
        let base = |what: String, query, body, values| Case {
            method: method.clone(),
            template: template.clone(),
            what,
            path: path.clone(),
            query,
            body,
            values,
        };
        let op_at = format!("/paths/{}/{method}", esc(&template));

        // The query: each parameter's variants alone, then every parameter at once.
        let mut query_params = Vec::new();
        let item = &doc["paths"][&template];
        for (list, at) in [
            (
                &item["parameters"],
                format!("/paths/{}/parameters", esc(&template)),
            ),
            (&item[&method]["parameters"], format!("{op_at}/parameters")),
        ] {
            for (i, p) in list.as_array().into_iter().flatten().enumerate() {
                let (p, p_at) = deref(doc, p, format!("{at}/{i}"));
                if p["in"] == "query" {
                    let name = p["name"].as_str().unwrap().to_owned();
                    query_params.push((name, format!("{p_at}/schema"), &p["schema"]));
                }
            }
        }
        let body_at = format!("{op_at}/requestBody");
        let (request_body, body_at) = match doc.pointer(&body_at) {
            Some(b) => {
                let (b, at) = deref(doc, b, body_at);
                (Some(b), at)
            }
            None => (None, body_at),
        };
        let json_schema = request_body.and_then(|b| b["content"].get("application/json"));
        let form_schema = request_body.and_then(|b| b["content"].get("multipart/form-data"));
        let body_optional = request_body.is_none_or(|b| b["required"] != true);

        // The default body of query cases: the JSON body's sample, if one is needed.
        let default_body = match json_schema {
            Some(m) if !body_optional => CaseBody::Json(sample(doc, fx, "", &m["schema"])),
            _ => CaseBody::None,
        };
        let default_values: Vec<(String, Value)> = match &default_body {
            CaseBody::Json(v) => vec![(
                format!("{body_at}/content/application~1json/schema"),
                v.clone(),
            )],
            _ => Vec::new(),
        };

        out.push(base(
            "as documented, no query".into(),
            Vec::new(),
            default_body.clone(),
            default_values.clone(),
        ));
        if !query_params.is_empty() {
            let mut query = Vec::new();
            let mut values = default_values.clone();
            for (name, at, schema) in &query_params {
                let v = sample(doc, fx, name, schema);
                query.push((name.clone(), as_text(&v).unwrap()));
                values.push((at.clone(), v));
            }
            out.push(base(
                "every query parameter".into(),
                query,
                default_body.clone(),
                values,
            ));
        }
        for (name, at, schema) in &query_params {
            for (what, v) in variants(doc, fx, name, schema, 0) {
                let Some(text) = as_text(&v).filter(|_| round_trips(doc, schema, &v)) else {
                    continue;
                };
                let mut values = default_values.clone();
                values.push((at.clone(), v));
                out.push(base(
                    format!("{name}={text} ({what})"),
                    vec![(name.clone(), text)],
                    default_body.clone(),
                    values,
                ));
            }
        }

        // The JSON body's variants.
        if let Some(m) = json_schema {
            let at = format!("{body_at}/content/application~1json/schema");
            if body_optional {
                out.push(base(
                    "no body".into(),
                    Vec::new(),
                    CaseBody::None,
                    Vec::new(),
                ));
            }
            for (what, v) in variants(doc, fx, "", &m["schema"], 0) {
                out.push(base(
                    format!("body: {what}: {v}"),
                    Vec::new(),
                    CaseBody::Json(v.clone()),
                    vec![(at.clone(), v)],
                ));
            }
        }
        // The form's: fields are text, so only text values are cases.
        if let Some(m) = form_schema {
            let at = format!("{body_at}/content/multipart~1form-data/schema");
            for (what, v) in variants(doc, fx, "", &m["schema"], 0) {
                let Some(fields) = v.as_object() else {
                    continue;
                };
                if !fields.values().all(Value::is_string) {
                    continue;
                }
                out.push(base(
                    format!("form: {what}: {v}"),
                    Vec::new(),
                    CaseBody::Form(fields.clone()),
                    vec![(at.clone(), v.clone())],
                ));
            }
        }
    }
    // Deletions last, so that the fixtures live through the other cases.
    out.sort_by_key(|c| c.method == "delete");
    out
}

/// The document's verdict on a case.
#[derive(serde::Deserialize)]
struct Verdict {
    valid: bool,
    /// The first error of an invalid case.
    why: String,
    /// The JSON Schema keyword that error is about (`type`, `enum`, `minimum`, ...).
    keyword: String,
    /// The schema pointer of the value in error: a query parameter's or the body's.
    pointer: String,
}

impl Verdict {
    /// The status the API documents for the fault of an invalid case: `400` for a query
    /// parameter that does not read as its type, `422` for the rest (a query parameter of the
    /// right type that breaks a constraint; a well-formed body that breaks its schema).
    fn documented_status(&self) -> u16 {
        if self.is_query_fault() && matches!(self.keyword.as_str(), "type" | "format") {
            400
        } else {
            422
        }
    }

    fn is_query_fault(&self) -> bool {
        self.pointer.contains("/parameters/")
    }
}

/// Whether each case is valid, by the document; with the first error of an invalid one.
fn classify(doc: &Value, cases: &[Case]) -> Vec<Verdict> {
    require_validators();
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("openapi.json");
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&doc_path, serde_json::to_vec(doc).unwrap()).unwrap();
    let list: Vec<Value> = cases
        .iter()
        .map(|c| {
            c.values
                .iter()
                .map(|(pointer, instance)| json!({"pointer": pointer, "instance": instance}))
                .collect()
        })
        .collect();
    std::fs::write(&cases_path, serde_json::to_vec(&list).unwrap()).unwrap();
    let out = python(&[
        "-c",
        CLASSIFY,
        doc_path.to_str().unwrap(),
        cases_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "the cases could not be classified:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the classifier's verdicts")
}

// ---------------------------------------------------------------------------------------------
// The server.

/// A server with every optional part, whose fetcher may reach loopback (the URL cases fetch
/// from a server of this test), and the address of that server.
async fn serve_for_cases<D: Driver>(driver: &D) -> (Server<D>, String) {
    let content = common::listen(axum::Router::new().route(
        "/{*file}",
        axum::routing::any(|| async { ([("content-type", "text/markdown")], FETCHED) }),
    ))
    .await;
    let server = common::serve_with(driver, MAX_BODY, None, |pipeline, workers, options| {
        let config = FetchConfig {
            allow_private: true,
            ..FetchConfig::default()
        };
        let fetcher = Fetcher::new(config, MAX_BODY as u64 / 2).unwrap();
        let storage = StorageIngest::new(
            pipeline.clone(),
            fetcher.clone(),
            StorageWebhookConfig {
                secret: WEBHOOK_SECRET.into(),
                tolerance_secs: 300,
                object_url: format!("{content}/{{bucket}}/{{key}}"),
                headers: Default::default(),
                priority: 5,
                start_delay_ms: 0,
                not_ready_secs: 60,
            },
        )
        .unwrap();
        storage.register(workers);
        options.fetcher = Some(fetcher);
        options.storage = Some(storage);
    })
    .await;
    (server, content)
}

/// Sends `case`; the storage webhook's deliveries are signed, as its sender would.
async fn send(c: &mut Client, case: &Case, signer: &docket_notify::WebhookSigner) -> Answer {
    let mut path = case.path.clone();
    if !case.query.is_empty() {
        let q: Vec<String> = case
            .query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        path = format!("{path}?{}", q.join("&"));
    }
    c.note = format!(" [{}]", case.what);
    if case.template == "/v1/webhooks/storage" {
        let body = match &case.body {
            CaseBody::Json(v) => serde_json::to_vec(v).unwrap(),
            _ => Vec::new(),
        };
        let ts = SystemClock.now().timestamp();
        let id = format!("msg_cases_{}", uuid::Uuid::new_v4().simple());
        let headers = [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signer.sign(&id, ts, &body)),
        ];
        return c
            .send_with_headers(&case.method, &path, &body, &headers)
            .await;
    }
    let body = match &case.body {
        CaseBody::None => Body::None,
        CaseBody::Json(v) => Body::Json(v.clone()),
        CaseBody::Form(fields) => {
            let mut form = Form::new();
            for (name, v) in fields {
                let text = v.as_str().unwrap().to_owned();
                form = if name == "file" {
                    form.part("file", Part::bytes(text.into_bytes()).file_name("case.md"))
                } else {
                    form.text(name.clone(), text)
                };
            }
            Body::Form(form)
        }
    };
    c.send(&case.method, &case.template, &path, body, None)
        .await
}

/// Percent-encodes a query value.
fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An uploaded document (its jobs queued) and one of its jobs: the fixtures of path ids.
async fn upload_fixture(base: &str) -> (String, i64) {
    let http = reqwest::Client::new();
    let form = Form::new().part(
        "file",
        Part::bytes(b"# Fixture\n\nThe document the cases name.\n".to_vec())
            .file_name("fixture.md"),
    );
    let r: Value = http
        .post(format!("{base}/v1/documents"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["document"]["id"]
        .as_str()
        .expect("an uploaded document")
        .to_owned();
    let jobs: Value = http
        .get(format!("{base}/v1/jobs?document_id={id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = jobs["jobs"][0]["id"]
        .as_i64()
        .expect("the document's first job");
    (id, job)
}

/// What is wrong with the error message of a refused invalid case, if anything: it names the
/// query parameter at fault (`limit: ...`, `limit must ...`); an error about a body is about
/// its data, not the framework's ("Failed to parse the request body as JSON: ...").
fn error_problem(case: &Case, verdict: &Verdict, a: &Answer) -> Option<String> {
    let message = a
        .json
        .as_ref()
        .and_then(|j| j["error"].as_str())
        .unwrap_or_default();
    if verdict.is_query_fault() {
        let (name, _) = case.query.first()?;
        let rest = message.strip_prefix(name.as_str());
        if !rest.is_some_and(|r| r.starts_with([':', ' '])) {
            return Some(format!(
                "{}: the error does not begin with the parameter's name {name:?}: {message:?}",
                case.label()
            ));
        }
    } else if verdict.pointer.contains("/application~1json/") && message.starts_with("Failed to") {
        return Some(format!(
            "{}: the body is JSON, the error is the framework's: {message:?}",
            case.label()
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Event streams.

/// Every documented `text/event-stream` answer says so in its schema and describes its events
/// in `x-itemSchema`; the first event of a document's stream matches that description.
async fn check_event_streams(c: &mut Client, fx: &Fixtures) -> Vec<String> {
    let doc = c.doc.clone();
    let mut problems = Vec::new();
    let mut streams = Vec::new();
    for (method, template) in documented_operations(&doc) {
        let responses = &doc["paths"][&template][&method]["responses"];
        for (code, r) in responses.as_object().into_iter().flatten() {
            let at = format!("/paths/{}/{method}/responses/{code}", esc(&template));
            let (r, at) = deref(&doc, r, at);
            let Some(media) = r["content"].get("text/event-stream") else {
                continue;
            };
            let op = format!("{} {template} -> {code}", method.to_uppercase());
            let schema = deref(&doc, &media["schema"], String::new()).0;
            if schema["contentMediaType"] != "text/event-stream" {
                problems.push(format!(
                    "{op}: the text/event-stream schema is {schema}, not a string with \
                     contentMediaType text/event-stream"
                ));
            }
            if media.get("x-itemSchema").is_none() {
                problems.push(format!(
                    "{op}: the text/event-stream content does not describe its events \
                     (x-itemSchema)"
                ));
            }
            streams.push((
                method.clone(),
                template.clone(),
                format!("{at}/content/text~1event-stream"),
            ));
        }
    }
    assert!(
        !streams.is_empty(),
        "the document describes no event stream"
    );
    // A document's stream opens with its state: read that first event.
    let Some((_, template, at)) = streams
        .iter()
        .find(|(_, t, _)| t == "/v1/documents/{id}/events")
    else {
        problems.push("GET /v1/documents/{id}/events is not documented as an event stream".into());
        return problems;
    };
    let url = format!("{}/v1/documents/{}/events", c.base, fx.document_id);
    let mut r = c.http.get(url).send().await.unwrap();
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("\n\n") {
            match r.chunk().await.unwrap() {
                Some(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                None => break,
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "GET {template}: no event within 10 s: {text:?}"
    );
    let mut event = serde_json::Map::new();
    for line in text.split("\n\n").next().unwrap_or("").lines() {
        if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            if !field.is_empty() {
                event.insert(field.to_owned(), json!(value));
            }
        }
    }
    let item_at = format!("{at}/x-itemSchema");
    if let Some(item) = doc.pointer(&item_at) {
        c.checks.push(Check {
            label: format!("GET {template}: the first event"),
            pointer: item_at.clone(),
            instance: Value::Object(event.clone()),
        });
        // The event's data, against the `contentSchema` of the branch that names its event.
        let (item, item_at) = deref(&doc, item, item_at);
        let mut branches = vec![(item, item_at.clone())];
        for (i, b) in item["oneOf"].as_array().into_iter().flatten().enumerate() {
            branches.push(deref(&doc, b, format!("{item_at}/oneOf/{i}")));
        }
        let name = event.get("event").cloned().unwrap_or(json!("message"));
        let data: Value = event
            .get("data")
            .and_then(Value::as_str)
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        match branches
            .iter()
            .find(|(b, _)| b["properties"]["event"]["const"] == name)
        {
            Some((b, b_at)) if b["properties"]["data"].get("contentSchema").is_some() => {
                c.checks.push(Check {
                    label: format!("GET {template}: the first event's data"),
                    pointer: format!("{b_at}/properties/data/contentSchema"),
                    instance: data,
                });
            }
            _ => problems.push(format!(
                "GET {template}: no contentSchema describes the data of an event {name}"
            )),
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_cases_from_its_own_document_as_documented_on_sqlite() {
    let db = sqlite().await;
    run_cases(db.driver()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_cases_from_its_own_document_as_documented_on_postgres() {
    let db = postgres().await;
    run_cases(db.driver()).await;
}

/// Sends every case to a server over `driver`; panics with every disagreement.
async fn run_cases<D: Driver>(driver: &D) {
    let (s, content) = serve_for_cases(driver).await;
    let doc = served_document(&s.base).await;
    let (document_id, job_id) = upload_fixture(&s.base).await;
    let fx = Fixtures {
        document_id,
        job_id,
        fetch_url: format!("{content}/fetched.md"),
        callback_url: format!("{content}/callback"),
    };
    let cases = cases(&doc, &fx);
    let verdicts = classify(&doc, &cases);
    assert_eq!(verdicts.len(), cases.len());

    let signer = docket_notify::WebhookSigner::new(WEBHOOK_SECRET).unwrap();
    let mut c = Client::new(&s.base, doc.clone());
    let mut problems = check_event_streams(&mut c, &fx).await;
    // Per operation: how many valid and invalid cases it had.
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (case, verdict) in cases.iter().zip(&verdicts) {
        let (valid, why) = (&verdict.valid, &verdict.why);
        let a = send(&mut c, case, &signer).await;
        let op = format!("{} {}", case.method.to_uppercase(), case.template);
        let counts = seen.entry(op).or_default();
        let body = a.text.chars().take(200).collect::<String>();
        if a.status >= 500 {
            problems.push(format!("{}: answered {} {body}", case.label(), a.status));
        } else if *valid {
            counts.0 += 1;
            if matches!(a.status, 400 | 413 | 415 | 422) {
                problems.push(format!(
                    "{}: the document allows this request, the server refused it: {} {body}",
                    case.label(),
                    a.status
                ));
            }
        } else {
            counts.1 += 1;
            let lenient = LENIENT
                .iter()
                .any(|(m, t)| *m == case.method && *t == case.template);
            // A form of no fields is no multipart body at all (RFC 2046 wants one part at
            // least): a broken multipart body, `400`, before any field is judged.
            let expected = match &case.body {
                CaseBody::Form(fields) if fields.is_empty() => 400,
                _ => verdict.documented_status(),
            };
            if !(a.status == expected || lenient && a.status < 300) {
                problems.push(format!(
                    "{}: the document forbids this request ({why}): documented {expected}, the \
                     server answered {} {body}",
                    case.label(),
                    a.status
                ));
            } else if a.status == expected {
                problems.extend(error_problem(case, verdict, &a));
            }
        }
    }
    // Every operation with a body or query had both kinds of cases: the generator reaches
    // them all.
    for case in &cases {
        if case.query.is_empty() && matches!(case.body, CaseBody::None) {
            continue;
        }
        let op = format!("{} {}", case.method.to_uppercase(), case.template);
        let (valid, invalid) = seen[&op];
        if valid == 0 || invalid == 0 {
            problems.push(format!(
                "{op}: {valid} valid and {invalid} invalid cases; the generator must make both"
            ));
        }
    }
    eprintln!("{} cases sent", cases.len());
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} disagreements between the server and its document:\n{}",
        problems.len(),
        problems.join("\n")
    );
    c.finish();
    s.runtime.shutdown().await;
}
