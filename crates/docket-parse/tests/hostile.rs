//! Hostile input: every file gives a clear, permanent error (or a sane result) both in-process
//! and through the isolated child, and the calling process survives all of it.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{corpus, isolation};
use docket_parse::{Format, Isolation, Limits, ParseError, SizeLimit, parse, parse_isolated};

/// Runs `name` through both parsers and checks both give the same error.
async fn both_fail(name: &str, format: Format) -> ParseError {
    let bytes = corpus(name);
    let local = parse(&bytes, format, &Limits::default()).expect_err(name);
    let isolated = parse_isolated(&isolation(), bytes, format, &Limits::default())
        .await
        .expect_err(name);
    assert_eq!(local, isolated, "{name}");
    assert!(local.is_permanent());
    local
}

#[tokio::test]
async fn empty_file() {
    let err = both_fail("hostile/empty.txt", Format::Text).await;
    assert_eq!(err, ParseError::Empty);
    assert_eq!(err.to_string(), "file is empty");
}

#[tokio::test]
async fn binary_garbage_named_txt() {
    let err = both_fail("hostile/garbage.txt", Format::Text).await;
    assert!(matches!(err, ParseError::Unsupported(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "unsupported file: the file contains binary data, not text"
    );
    // The same bytes claimed as Markdown or CSV are refused the same way.
    let err = parse(
        &corpus("hostile/garbage.txt"),
        Format::Markdown,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("binary data"), "{err}");
}

#[tokio::test]
async fn truncated_and_corrupt_pdfs() {
    for name in [
        "hostile/truncated.pdf",
        "hostile/corrupt.pdf",
        "hostile/loop.pdf",
    ] {
        let err = both_fail(name, Format::Pdf).await;
        assert!(
            matches!(
                err,
                ParseError::Corrupt {
                    format: Format::Pdf,
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string().starts_with("PDF is corrupt: "),
            "{name}: {err}"
        );
    }
}

#[tokio::test]
async fn docx_zip_bomb() {
    let err = both_fail("hostile/bomb.docx", Format::Docx).await;
    assert_eq!(
        err,
        ParseError::TooLarge {
            limit: SizeLimit::Unzipped(Format::Docx),
            max_bytes: 256 << 20
        }
    );
    assert_eq!(
        err.to_string(),
        "DOCX expands past the 256 MiB limit (zip bomb?)"
    );
}

#[tokio::test]
async fn real_documents_respect_the_unzipped_limit() {
    let limits = Limits {
        max_unzipped_bytes: 4096,
        ..Limits::default()
    };
    for (name, format) in [
        ("handbook.docx", Format::Docx),
        ("sheet.xlsx", Format::Xlsx),
    ] {
        let err = parse(&corpus(name), format, &limits).unwrap_err();
        assert_eq!(
            err,
            ParseError::TooLarge {
                limit: SizeLimit::Unzipped(format),
                max_bytes: 4096
            },
            "{name}"
        );
        assert!(err.to_string().contains("expands past the 4 KiB limit"));
    }
}

#[tokio::test]
async fn deeply_nested_html_is_parsed_without_recursion() {
    let bytes = corpus("hostile/deep.html");
    let started = Instant::now();
    let local = parse(&bytes, Format::Html, &Limits::default()).unwrap();
    assert_eq!(local.text, "deep text");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let isolated = parse_isolated(&isolation(), bytes, Format::Html, &Limits::default())
        .await
        .unwrap();
    assert_eq!(isolated, local);
}

#[tokio::test]
async fn invalid_utf8_text_is_still_read() {
    let bytes = corpus("hostile/invalid-utf8.txt");
    let local = parse(&bytes, Format::Text, &Limits::default()).unwrap();
    assert!(
        local.text.starts_with("Valid start of the line.\n"),
        "{}",
        local.text
    );
    assert!(local.text.ends_with("\nValid last line."), "{}", local.text);
    let isolated = parse_isolated(&isolation(), bytes, Format::Text, &Limits::default())
        .await
        .unwrap();
    assert_eq!(isolated, local);
}

#[tokio::test]
async fn invalid_utf8_json_is_corrupt() {
    let err = both_fail("hostile/invalid-utf8.json", Format::Json).await;
    assert!(
        matches!(
            err,
            ParseError::Corrupt {
                format: Format::Json,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("JSON is corrupt: it is not valid UTF-8"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_format_claims_are_corrupt() {
    // A PDF claimed to be a DOCX, a DOCX claimed to be a PDF.
    let err = parse(&corpus("report.pdf"), Format::Docx, &Limits::default()).unwrap_err();
    assert!(err.to_string().starts_with("DOCX is corrupt: "), "{err}");
    let err = parse(&corpus("handbook.docx"), Format::Pdf, &Limits::default()).unwrap_err();
    assert!(err.to_string().starts_with("PDF is corrupt: "), "{err}");
    let err = parse(&corpus("handbook.docx"), Format::Xlsx, &Limits::default()).unwrap_err();
    assert!(err.to_string().starts_with("XLSX is corrupt: "), "{err}");
}

/// A large HTML document generated on the fly (about 24 MiB).
fn big_html() -> Vec<u8> {
    let mut s = String::from("<!DOCTYPE html><html><body>");
    for i in 0..400_000 {
        s.push_str(&format!(
            "<p>Paragraph number {i} of a very long page.</p>\n"
        ));
    }
    s.into_bytes()
}

#[tokio::test]
async fn slow_parse_times_out_and_is_killed() {
    let iso = Isolation {
        timeout: Duration::from_millis(200),
        ..isolation()
    };
    let started = Instant::now();
    let err = parse_isolated(&iso, big_html(), Format::Html, &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err, ParseError::Timeout { secs: 0.2 });
    assert_eq!(err.to_string(), "parser timed out after 0.2 s");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn hanging_child_times_out() {
    let iso = Isolation {
        program: PathBuf::from("sh"),
        args: vec![OsString::from("-c"), OsString::from("sleep 30")],
        timeout: Duration::from_millis(300),
        memory_bytes: 0,
    };
    let started = Instant::now();
    let err = parse_isolated(&iso, b"hello".to_vec(), Format::Text, &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err, ParseError::Timeout { secs: 0.3 });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn memory_limit_stops_the_child() {
    let iso = Isolation {
        memory_bytes: 64 << 20,
        ..isolation()
    };
    // Control: an ordinary document fits in the limit.
    let ok = parse_isolated(&iso, corpus("data.csv"), Format::Csv, &Limits::default()).await;
    assert!(ok.is_ok(), "{ok:?}");
    // 48 MiB of text cannot be read and decoded in 64 MiB of address space.
    let big = "All work and no play makes Jack a dull boy.\n"
        .repeat((48 << 20) / 44)
        .into_bytes();
    let err = parse_isolated(&iso, big, Format::Text, &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err, ParseError::MemoryLimit { bytes: 64 << 20 });
    assert_eq!(err.to_string(), "parser ran out of memory (limit 64 MiB)");
}

#[tokio::test]
async fn crashing_child_is_reported() {
    let iso = Isolation {
        program: PathBuf::from("sh"),
        args: vec![
            OsString::from("-c"),
            OsString::from("echo 'segfault in parser' >&2; kill -SEGV $$"),
        ],
        timeout: Duration::from_secs(10),
        memory_bytes: 0,
    };
    let err = parse_isolated(&iso, b"hello".to_vec(), Format::Text, &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ParseError::Crashed(
            "the parser process was killed by signal 11: segfault in parser".into()
        )
    );
}

#[tokio::test]
async fn garbage_output_and_missing_program_are_reported() {
    let iso = Isolation {
        program: PathBuf::from("sh"),
        args: vec![
            OsString::from("-c"),
            OsString::from("cat >/dev/null; echo not json"),
        ],
        timeout: Duration::from_secs(10),
        memory_bytes: 0,
    };
    let err = parse_isolated(&iso, b"hello".to_vec(), Format::Text, &Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ParseError::Crashed(_)), "{err:?}");

    let iso = Isolation {
        program: PathBuf::from("docket-parse-child-that-does-not-exist"),
        ..isolation()
    };
    let err = parse_isolated(&iso, b"hello".to_vec(), Format::Text, &Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ParseError::Unavailable(_)), "{err:?}");
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn child_output_is_bounded() {
    let iso = Isolation {
        program: PathBuf::from("sh"),
        args: vec![
            OsString::from("-c"),
            OsString::from("head -c 50000000 /dev/zero"),
        ],
        timeout: Duration::from_secs(20),
        memory_bytes: 0,
    };
    let limits = Limits {
        max_text_bytes: 1024,
        ..Limits::default()
    };
    let err = parse_isolated(&iso, b"hello".to_vec(), Format::Text, &limits)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ParseError::TooLarge {
            limit: SizeLimit::Text,
            max_bytes: 1024
        }
    );
}

#[tokio::test]
async fn errors_serialize_for_the_pipeline() {
    for err in [
        ParseError::Empty,
        ParseError::Unsupported("x".into()),
        ParseError::Corrupt {
            format: Format::Pdf,
            reason: "bad xref".into(),
        },
        ParseError::TooLarge {
            limit: SizeLimit::Unzipped(Format::Xlsx),
            max_bytes: 1,
        },
        ParseError::Timeout { secs: 30.0 },
        ParseError::MemoryLimit { bytes: 512 << 20 },
        ParseError::Crashed("boom".into()),
    ] {
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(
            serde_json::from_str::<ParseError>(&json).unwrap(),
            err,
            "{json}"
        );
    }
    assert_eq!(
        ParseError::Timeout { secs: 30.0 }.to_string(),
        "parser timed out after 30 s"
    );
    assert_eq!(
        ParseError::MemoryLimit { bytes: 512 << 20 }.to_string(),
        "parser ran out of memory (limit 512 MiB)"
    );
}
