//! The OpenAPI checks' shared pieces: the document, read and walked; a client that checks
//! each answer against it; and the Python validators (`openapi-spec-validator`, and the
//! `jsonschema` it brings), run once per batch of values.

use std::collections::BTreeSet;
use std::time::Duration;

use docket_core::Driver;
use docket_http::auth::ApiKeys;
use docket_pipeline::fetch::{FetchConfig, Fetcher};
use docket_pipeline::ingest::{StorageIngest, StorageWebhookConfig};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::Server;

pub const MAX_BODY: usize = 256 * 1024;

/// The storage webhook's signing secret.
pub const WEBHOOK_SECRET: &str = "openapi-webhook-secret";

/// The HTTP methods an OpenAPI path item may hold, as its keys spell them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A server with every optional part: URL fetching (with the SSRF guard on), the storage
/// webhook (its objects fetched from a loopback address, which the guard refuses), and the
/// processor of `POST /v1/jobs/process`.
pub async fn serve<D: Driver>(driver: &D, keys: Option<ApiKeys>) -> Server<D> {
    super::serve_with(driver, MAX_BODY, keys, |pipeline, workers, options| {
        let fetcher = Fetcher::new(FetchConfig::default(), MAX_BODY as u64 / 2).unwrap();
        let storage = StorageIngest::new(
            pipeline.clone(),
            fetcher.clone(),
            StorageWebhookConfig {
                secret: WEBHOOK_SECRET.into(),
                tolerance_secs: 300,
                object_url: "http://127.0.0.1:9/{bucket}/{key}".into(),
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
    .await
}

// ---------------------------------------------------------------------------------------------
// The Python validators.

/// Validates instances against schemas of the document: argv[1] is the document, argv[2] a
/// JSON list of `{label, pointer, instance}` where `pointer` is a JSON pointer to a schema
/// inside the document. `$ref`s resolve against the whole document.
pub const CHECK_INSTANCES: &str = r##"
import json, sys
from urllib.parse import quote
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

doc = json.load(open(sys.argv[1]))
checks = json.load(open(sys.argv[2]))

def strict(node):
    if isinstance(node, dict):
        if (isinstance(node.get("properties"), dict)
                and "additionalProperties" not in node
                and "unevaluatedProperties" not in node):
            node["additionalProperties"] = False
        for key, value in node.items():
            if key not in ("example", "examples", "enum", "const", "default"):
                strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)

strict(doc)
base = "urn:docket-openapi"
registry = Registry().with_resource(base, DRAFT202012.create_resource(doc))
errors = 0
for c in checks:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": base + "#" + quote(c["pointer"], safe="/~"),
    }
    validator = Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for e in sorted(validator.iter_errors(c["instance"]), key=lambda e: list(e.absolute_path)):
        errors += 1
        where = "/".join(str(p) for p in e.absolute_path)
        print(f"{c['label']}: at /{where}: {e.message}")
print(f"{len(checks)} instances checked, {errors} errors")
sys.exit(1 if errors else 0)
"##;

pub fn python(args: &[&str]) -> std::process::Output {
    std::process::Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 could not be started ({e}); the OpenAPI checks need it")
        })
}

pub fn require_validators() {
    let out = python(&[
        "-c",
        "import openapi_spec_validator, jsonschema, referencing",
    ]);
    assert!(
        out.status.success(),
        "the OpenAPI checks need Python's openapi-spec-validator (and jsonschema, which it \
         brings): pip install openapi-spec-validator\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One JSON value to validate against a schema of the document.
pub struct Check {
    pub label: String,
    pub pointer: String,
    pub instance: Value,
}

/// Validates every check in one Python run; panics with every error.
pub fn validate_instances(doc: &Value, checks: &[Check]) {
    require_validators();
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("openapi.json");
    let checks_path = dir.path().join("checks.json");
    std::fs::write(&doc_path, serde_json::to_vec(doc).unwrap()).unwrap();
    let list: Vec<Value> = checks
        .iter()
        .map(|c| json!({"label": c.label, "pointer": c.pointer, "instance": c.instance}))
        .collect();
    std::fs::write(&checks_path, serde_json::to_vec(&list).unwrap()).unwrap();
    let out = python(&[
        "-c",
        CHECK_INSTANCES,
        doc_path.to_str().unwrap(),
        checks_path.to_str().unwrap(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "values do not match the document's schemas:\n{text}"
    );
    eprintln!("{}", text.trim());
}

// ---------------------------------------------------------------------------------------------
// The document.

/// A JSON pointer segment.
pub fn esc(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `v`, with local `$ref`s followed; and the pointer of what it ends at (`at` when `v` is no
/// reference).
pub fn deref<'a>(doc: &'a Value, mut v: &'a Value, mut at: String) -> (&'a Value, String) {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let p = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references are expected, not {r}"));
        v = doc
            .pointer(p)
            .unwrap_or_else(|| panic!("dangling reference {r}"));
        at = p.to_owned();
    }
    (v, at)
}

/// Every (method, path) the document describes.
pub fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// The parameters of an operation: the path item's and the operation's own, dereferenced.
pub fn parameters<'a>(doc: &'a Value, method: &str, path: &str) -> Vec<&'a Value> {
    let item = &doc["paths"][path];
    let mut out = Vec::new();
    for list in [&item["parameters"], &item[method]["parameters"]] {
        for p in list.as_array().into_iter().flatten() {
            out.push(deref(doc, p, String::new()).0);
        }
    }
    out
}

/// `path` with its parameters filled: a random UUID, 1, or a word, by each one's schema.
pub fn fill(doc: &Value, method: &str, path: &str) -> String {
    let params = parameters(doc, method, path);
    let mut out = path.to_owned();
    while let Some(start) = out.find('{') {
        let end = start + out[start..].find('}').expect("closing brace");
        let name = &out[start + 1..end];
        let p = params
            .iter()
            .find(|p| p["in"] == "path" && p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path}: path parameter {name} is not described"));
        let schema = deref(doc, &p["schema"], String::new()).0;
        let value = match (schema["type"].as_str(), schema["format"].as_str()) {
            (Some("integer"), _) => "1".to_owned(),
            (Some("string"), Some("uuid")) => uuid::Uuid::new_v4().to_string(),
            _ => "openapi-probe".to_owned(),
        };
        out.replace_range(start..=end, &value);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Talking to the server, and checking each answer against the document.

/// A request body.
pub enum Body {
    None,
    Json(Value),
    File(&'static str, Vec<u8>),
    /// A multipart form as built.
    Form(Form),
}

/// What the server answered.
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub www_authenticate: Option<String>,
    pub json: Option<Value>,
    pub text: String,
}

impl Answer {
    /// A `404` of the router itself (no route), not a handler's `{"error": ...}`.
    pub fn is_routing_404(&self) -> bool {
        self.status == 404
            && !self
                .json
                .as_ref()
                .is_some_and(|v| v.get("error").is_some_and(Value::is_string))
    }
}

/// A media type without its parameters, lowercased.
pub fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub doc: Value,
    /// JSON bodies to validate, with the schema each must match.
    pub checks: Vec<Check>,
    /// Answers the document does not describe.
    pub failures: Vec<String>,
    /// Added to the labels of the checks of the next answers (which case sent the request).
    pub note: String,
}

impl Client {
    pub fn new(base: &str, doc: Value) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: base.to_owned(),
            doc,
            checks: Vec::new(),
            failures: Vec::new(),
            note: String::new(),
        }
    }

    /// Sends a request to `path` (an instance of the documented `template`) and checks the
    /// answer against the document: its status and media type must be documented, and a JSON
    /// body is queued for validation against the documented schema.
    pub async fn send(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Body,
        key: Option<&str>,
    ) -> Answer {
        let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::File(name, bytes) => {
                req.multipart(Form::new().part("file", Part::bytes(bytes).file_name(name)))
            }
            Body::Form(form) => req.multipart(form),
        };
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answer = Self::answer(r, method, path).await;
        self.check(method, template, &answer);
        answer
    }

    /// Reads an answer (the headers only, for an event stream).
    pub async fn answer(r: reqwest::Response, method: &str, path: &str) -> Answer {
        let header = |name| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE);
        let www_authenticate = header(WWW_AUTHENTICATE);
        let status = r.status().as_u16();
        // An event stream may never end: its headers are the answer.
        let text = if content_type
            .as_deref()
            .is_some_and(|c| essence(c) == "text/event-stream")
        {
            String::new()
        } else {
            r.text()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
        };
        let json = content_type
            .as_deref()
            .filter(|c| essence(c) == "application/json")
            .and_then(|_| serde_json::from_str(&text).ok());
        Answer {
            status,
            content_type,
            www_authenticate,
            json,
            text,
        }
    }

    /// Records whether `answer` is one the document describes for `method template`.
    pub fn check(&mut self, method: &str, template: &str, a: &Answer) {
        let label = format!(
            "{} {template}{} -> {}",
            method.to_ascii_uppercase(),
            self.note,
            a.status
        );
        let doc = &self.doc;
        let Some(op) = doc["paths"].get(template).and_then(|p| p.get(method)) else {
            self.failures
                .push(format!("{label}: the operation is not documented"));
            return;
        };
        let code = a.status.to_string();
        let (key, response) = match op["responses"].get(&code) {
            Some(r) => (code, r),
            None => match op["responses"].get("default") {
                Some(r) => ("default".to_owned(), r),
                None => {
                    self.failures.push(format!(
                        "{label}: status {} is not documented (body: {})",
                        a.status,
                        a.text.chars().take(300).collect::<String>()
                    ));
                    return;
                }
            },
        };
        let at = format!("/paths/{}/{method}/responses/{}", esc(template), esc(&key));
        let (response, at) = deref(doc, response, at);
        let (content, ct) = match (response["content"].as_object(), a.content_type.as_deref()) {
            (None, None) => return,
            (None, Some(ct)) => {
                if !a.text.is_empty() {
                    self.failures.push(format!(
                        "{label}: documented without a body, answered with {ct}"
                    ));
                }
                return;
            }
            (Some(_), None) => {
                self.failures.push(format!(
                    "{label}: documented with a body, answered without one"
                ));
                return;
            }
            (Some(content), Some(ct)) => (content, ct),
        };
        let Some(media) = content.keys().find(|k| essence(k) == essence(ct)) else {
            self.failures.push(format!(
                "{label}: answered {ct}, documented as {:?}",
                content.keys().collect::<Vec<_>>()
            ));
            return;
        };
        if essence(media) == "application/json" {
            match &a.json {
                Some(v) => self.checks.push(Check {
                    label,
                    pointer: format!("{at}/content/{}/schema", esc(media)),
                    instance: v.clone(),
                }),
                None => self.failures.push(format!(
                    "{label}: the body is not JSON: {}",
                    a.text.chars().take(300).collect::<String>()
                )),
            }
        }
    }

    /// Sends a JSON `body` as is, with `headers`, to an operation without path parameters.
    pub async fn send_with_headers(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> Answer {
        let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let answer = Self::answer(r, method, path).await;
        self.check(method, path, &answer);
        answer
    }

    /// A probe of a documented operation: its path filled in, and a body as documented (a
    /// small file for a form, the JSON example otherwise).
    pub async fn probe(&mut self, method: &str, template: &str, key: Option<&str>) -> Answer {
        let path = fill(&self.doc, method, template);
        let content = &self.doc["paths"][template][method]["requestBody"]["content"];
        let body = if content.get("multipart/form-data").is_some() {
            Body::File("probe.txt", b"A probe of the API description.\n".to_vec())
        } else if let Some(example) = content.get("application/json").map(|c| &c["example"])
            && !example.is_null()
        {
            Body::Json(example.clone())
        } else {
            Body::None
        };
        self.send(method, template, &path, body, key).await
    }

    /// Panics with every undocumented answer, then validates the JSON bodies.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "answers the document does not describe:\n{}",
            self.failures.join("\n")
        );
        validate_instances(&self.doc, &self.checks);
    }
}

pub async fn fetch_document(
    base: &str,
    key: Option<&str>,
) -> (reqwest::StatusCode, String, String) {
    let mut req = reqwest::Client::new().get(format!("{base}/v1/openapi.json"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ct, r.text().await.unwrap())
}

/// The document the server serves.
pub async fn served_document(base: &str) -> Value {
    let (status, _, text) = fetch_document(base, None).await;
    assert_eq!(status, 200, "GET /v1/openapi.json: {text}");
    serde_json::from_str(&text).expect("the document is JSON")
}
