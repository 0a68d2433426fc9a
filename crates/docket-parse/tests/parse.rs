//! Text extraction from every format of the committed corpus, in-process and isolated.

mod common;

use common::{assert_tiles, corpus, isolation, section_of};
use docket_parse::{Format, Limits, ParseError, Parsed, parse, parse_isolated};

fn parse_corpus(name: &str, format: Format) -> Parsed {
    let p =
        parse(&corpus(name), format, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(p.format, format);
    assert!(
        !p.text.contains('\r'),
        "{name}: carriage return left in text"
    );
    assert_tiles(&p);
    p
}

#[test]
fn pdf_has_one_section_per_page() {
    let p = parse_corpus("report.pdf", Format::Pdf);
    let pages: Vec<_> = p.sections.iter().map(|s| s.page).collect();
    assert_eq!(pages, [Some(1), Some(2), Some(3)]);
    for (needle, page) in [
        ("Harbour Street depot", 1),
        ("Revenue grew by twelve percent", 1),
        ("4812 deliveries", 2),
        ("thirty one hours", 2),
        ("second depot in Riverside", 3),
    ] {
        assert_eq!(section_of(&p, needle).page, Some(page), "{needle}");
    }
    assert!(p.section_text(&p.sections[1]).starts_with("Logistics"));
}

#[test]
fn docx_has_headings_paragraphs_and_table_rows() {
    let p = parse_corpus("handbook.docx", Format::Docx);
    assert!(
        p.text
            .starts_with("Employee Handbook\n\nWelcome to Acme Corporation.")
    );
    assert_eq!(
        section_of(&p, "remotely up to three days").heading_path,
        ["Employee Handbook", "Working Hours", "Remote Work"]
    );
    assert_eq!(
        section_of(&p, "Core hours are from ten").heading_path,
        ["Employee Handbook", "Working Hours"]
    );
    assert!(p.text.contains("\nLeave type | Days | Approval\nAnnual leave | 25 | Manager\nParental leave | 90 | HR department\n"));
    assert_eq!(
        section_of(&p, "Parental leave | 90").heading_path,
        ["Employee Handbook", "Leave"]
    );
    assert!(
        p.text
            .ends_with("Unused leave carries over to the first quarter of the next year.")
    );
}

#[test]
fn markdown_keeps_its_source_and_splits_at_headings() {
    let p = parse_corpus("guide.md", Format::Markdown);
    assert_eq!(
        p.text,
        String::from_utf8(corpus("guide.md")).unwrap().trim_end()
    );
    let paths: Vec<Vec<String>> = p.sections.iter().map(|s| s.heading_path.clone()).collect();
    assert_eq!(
        paths,
        [
            vec!["Installation Guide"],
            vec!["Installation Guide", "Requirements"],
            vec!["Installation Guide", "Steps"],
            vec!["Installation Guide", "Steps", "Download"],
            vec!["Installation Guide", "Steps", "Configure"],
            vec!["Troubleshooting"],
        ]
    );
    assert!(
        p.section_text(section_of(&p, "database_url"))
            .starts_with("### Configure")
    );
}

#[test]
fn html_drops_boilerplate_and_keeps_structure() {
    let p = parse_corpus("page.html", Format::Html);
    for gone in [
        "Navigation link",
        "Site header",
        "Sidebar",
        "Copyright footer",
        "tracking",
        "trailing script",
        "font-family",
    ] {
        assert!(!p.text.contains(gone), "{gone:?} leaked into:\n{}", p.text);
    }
    assert!(
        p.text
            .starts_with("Gardening Tips\n\nTomatoes need at least six hours")
    );
    assert!(
        p.text
            .contains("Water deeply but infrequently to encourage strong roots.")
    );
    assert!(
        p.text
            .contains("\n\nWater in the early morning\nAvoid wetting the leaves\n\n")
    );
    assert!(p.text.contains("planting & mulch afterwards."));
    assert!(p.text.contains("Plant | pH\nTomato | 6.5\nBlueberry | 4.5"));
    assert_eq!(
        section_of(&p, "Avoid wetting").heading_path,
        ["Gardening Tips", "Watering"]
    );
    assert_eq!(
        section_of(&p, "Blueberry").heading_path,
        ["Gardening Tips", "Soil"]
    );
}

#[test]
fn text_in_any_encoding_is_decoded() {
    let p = parse_corpus("notes.txt", Format::Text);
    assert_eq!(
        p.text,
        "Meeting notes\n\nThe team agreed to ship the ingestion service on Friday.\nUnicode check: naïve café, Grüße, 日本語."
    );
    let p = parse_corpus("legacy-latin1.txt", Format::Text);
    assert!(
        p.text
            .contains("Café au lait, crème brûlée et pâte à choux."),
        "{}",
        p.text
    );
    assert!(p.text.contains("piña colada à Zürich"));
    assert!(p.text.contains("12 € — très cher"));
    let p = parse_corpus("utf16.txt", Format::Text);
    assert_eq!(
        p.text,
        "Straße und Größe: überall Umlaute.\nΕλληνικά και русский текст."
    );
}

#[test]
fn csv_records_become_labelled_lines() {
    let p = parse_corpus("data.csv", Format::Csv);
    let lines: Vec<_> = p.text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "city: Lisbon; country: Portugal; population: 545923"
    );
    assert_eq!(
        lines[3],
        "city: São Paulo; country: Brazil; population: 11451245"
    );
}

#[test]
fn xlsx_has_a_section_per_sheet() {
    let p = parse_corpus("sheet.xlsx", Format::Xlsx);
    let paths: Vec<_> = p.sections.iter().map(|s| s.heading_path.clone()).collect();
    assert_eq!(paths, [vec!["Inventory"], vec!["Staff"]]);
    assert!(
        p.section_text(&p.sections[0])
            .contains("Item: Forklift; Quantity: 2; Location: Loading bay")
    );
    assert!(
        p.section_text(&p.sections[1])
            .contains("Name: Grace Hopper; Role: Engineer")
    );
}

#[test]
fn json_is_flattened_to_paths() {
    let p = parse_corpus("data.json", Format::Json);
    for line in [
        "service: docket",
        "version: 3",
        "owner.email: platform@example.com",
        "regions[1].name: us-east",
        "regions[0].replicas: 3",
        "enabled: true",
        "notes: null",
    ] {
        assert!(
            p.text.lines().any(|l| l == line),
            "{line:?} missing from:\n{}",
            p.text
        );
    }
}

#[test]
fn text_limit_is_an_error() {
    let limits = Limits {
        max_text_bytes: 100,
        ..Limits::default()
    };
    let err = parse(&corpus("report.pdf"), Format::Pdf, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "extracted text is larger than the 100 bytes limit"
    );
    let err = parse(&corpus("guide.md"), Format::Markdown, &limits).unwrap_err();
    assert!(matches!(err, ParseError::TooLarge { .. }));
    let limits = Limits {
        max_input_bytes: 1024,
        ..Limits::default()
    };
    let err = parse(&corpus("report.pdf"), Format::Pdf, &limits).unwrap_err();
    assert_eq!(err.to_string(), "file is larger than the 1 KiB limit");
}

#[test]
fn whitespace_only_input_has_no_text() {
    let err = parse(b"  \n\t\n", Format::Text, &Limits::default()).unwrap_err();
    assert_eq!(
        err,
        ParseError::NoText {
            format: Format::Text
        }
    );
    assert_eq!(
        err.to_string(),
        "no text could be extracted from this text file"
    );
    let err = parse(
        b"<html><script>x()</script></html>",
        Format::Html,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "no text could be extracted from this HTML");
}

#[tokio::test]
async fn isolated_parse_matches_in_process_parse() {
    let iso = isolation();
    let limits = Limits::default();
    for (name, format) in [
        ("report.pdf", Format::Pdf),
        ("handbook.docx", Format::Docx),
        ("sheet.xlsx", Format::Xlsx),
        ("guide.md", Format::Markdown),
        ("page.html", Format::Html),
        ("legacy-latin1.txt", Format::Text),
        ("utf16.txt", Format::Text),
        ("data.csv", Format::Csv),
        ("data.json", Format::Json),
    ] {
        let bytes = corpus(name);
        let local = parse(&bytes, format, &limits).unwrap();
        let isolated = parse_isolated(&iso, bytes, format, &limits)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(isolated, local, "{name}");
    }
}
