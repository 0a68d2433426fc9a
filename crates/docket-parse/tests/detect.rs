//! Format detection on the committed corpus.

mod common;

use common::corpus;
use docket_parse::{Format, ParseError, detect};

const FILES: &[(&str, Format)] = &[
    ("report.pdf", Format::Pdf),
    ("handbook.docx", Format::Docx),
    ("sheet.xlsx", Format::Xlsx),
    ("guide.md", Format::Markdown),
    ("page.html", Format::Html),
    ("notes.txt", Format::Text),
    ("legacy-latin1.txt", Format::Text),
    ("utf16.txt", Format::Text),
    ("data.csv", Format::Csv),
    ("data.json", Format::Json),
];

#[test]
fn every_corpus_file_is_detected_with_its_name() {
    for (name, format) in FILES {
        let got = detect(&corpus(name), Some(name), None).unwrap();
        assert_eq!(got, *format, "{name}");
    }
}

#[test]
fn every_corpus_file_is_detected_without_a_name() {
    for (name, format) in FILES {
        let got = detect(&corpus(name), None, None).unwrap();
        assert_eq!(got, *format, "{name}");
    }
}

#[test]
fn misleading_names_and_types_do_not_override_the_bytes() {
    for (name, format) in FILES {
        let bytes = corpus(name);
        let got = detect(&bytes, Some("upload.bin"), Some("application/octet-stream")).unwrap();
        assert_eq!(got, *format, "{name} as upload.bin");
        let got = detect(&bytes, Some("image.png"), Some("image/png")).unwrap();
        assert_eq!(got, *format, "{name} as image.png");
    }
    // Decisive content wins over a text-like name too.
    for (name, lie) in [
        ("report.pdf", "report.txt"),
        ("handbook.docx", "handbook.xlsx"),
        ("sheet.xlsx", "sheet.docx"),
        ("page.html", "page.txt"),
        ("data.json", "data.txt"),
        ("data.csv", "data.txt"),
    ] {
        let expected = FILES.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(
            detect(&corpus(name), Some(lie), None).unwrap(),
            expected,
            "{name} as {lie}"
        );
    }
}

#[test]
fn names_break_ties_between_text_formats() {
    let notes = corpus("notes.txt");
    assert_eq!(
        detect(&notes, Some("notes.md"), None).unwrap(),
        Format::Markdown
    );
    assert_eq!(
        detect(&notes, None, Some("text/markdown; charset=utf-8")).unwrap(),
        Format::Markdown
    );
    assert_eq!(
        detect(&notes, Some("notes.txt"), Some("text/markdown")).unwrap(),
        Format::Text
    );
    let guide = corpus("guide.md");
    assert_eq!(
        detect(&guide, Some("guide.txt"), None).unwrap(),
        Format::Text
    );
    assert_eq!(
        detect(&guide, Some("guide.md"), None).unwrap(),
        Format::Markdown
    );
}

#[test]
fn hostile_inputs_are_classified() {
    assert_eq!(
        detect(&corpus("hostile/empty.txt"), Some("empty.txt"), None),
        Err(ParseError::Empty)
    );
    let err = detect(
        &corpus("hostile/garbage.txt"),
        Some("garbage.txt"),
        Some("text/plain"),
    )
    .unwrap_err();
    assert!(matches!(err, ParseError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("binary data"), "{err}");
    for (name, format) in [
        ("hostile/truncated.pdf", Format::Pdf),
        ("hostile/corrupt.pdf", Format::Pdf),
        ("hostile/loop.pdf", Format::Pdf),
        ("hostile/bomb.docx", Format::Docx),
        ("hostile/deep.html", Format::Html),
        ("hostile/invalid-utf8.txt", Format::Text),
    ] {
        assert_eq!(detect(&corpus(name), None, None).unwrap(), format, "{name}");
    }
    // Invalid JSON is not JSON by content; its name decides.
    let bad_json = corpus("hostile/invalid-utf8.json");
    assert_eq!(
        detect(&bad_json, Some("x.json"), None).unwrap(),
        Format::Json
    );
}

#[test]
fn formats_round_trip_names_mimes_and_strings() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), f);
        assert_eq!(f.mime().parse::<Format>().unwrap(), f);
        assert_eq!(Format::from_mime(f.mime()), Some(f));
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, format!("\"{}\"", f.name()));
    }
    assert_eq!("MD".parse::<Format>().unwrap(), Format::Markdown);
    assert_eq!(".htm".parse::<Format>().unwrap(), Format::Html);
    assert!("exe".parse::<Format>().is_err());
}
