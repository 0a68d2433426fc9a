// Shared by the parser targets (included with `include!`).
//
// `docket_parse::parse` turns a panic inside a third-party parser into `ParseError::Corrupt`
// with `catch_unwind`, which is the documented behaviour; libFuzzer's panic hook would abort
// on those anyway. The hook installed here aborts only when the panic comes from docket's own
// code (a `docket-parse/src` location), so a dependency's panic is treated the way production
// treats it, while a bug in docket's own code still stops the fuzzer.

use docket_parse::{Format, Limits, Parsed};

/// Small bounds so that one input cannot run away in memory: 1 MiB in, 1 MiB of text,
/// 4 MiB unzipped. (`Limits` has no time bound in process; the fuzzer's `-timeout` is it.)
pub const LIMITS: Limits = Limits {
    max_input_bytes: 1 << 20,
    max_text_bytes: 1 << 20,
    max_unzipped_bytes: 4 << 20,
};

pub fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = info
                .location()
                .is_some_and(|l| l.file().replace('\\', "/").contains("docket-parse/src"));
            if ours {
                default(info);
                std::process::abort();
            }
        }));
    });
}

/// The documented guarantees of a successful parse.
pub fn check(parsed: &Parsed, format: Format) {
    assert_eq!(parsed.format, format);
    assert!(parsed.text.len() as u64 <= LIMITS.max_text_bytes);
    assert!(!parsed.text.trim().is_empty(), "Ok with no text");
    let mut prev_end = 0;
    for s in &parsed.sections {
        assert!(s.start <= s.end, "section {s:?} ends before it starts");
        assert!(s.end <= parsed.text.len(), "section {s:?} past the text");
        assert!(parsed.text.is_char_boundary(s.start), "section {s:?} start not on a char");
        assert!(parsed.text.is_char_boundary(s.end), "section {s:?} end not on a char");
        assert!(s.start >= prev_end, "section {s:?} overlaps the one before");
        prev_end = s.end;
        let _ = parsed.section_text(s);
    }
}

pub fn run(data: &[u8], format: Format) {
    install_hook();
    if let Ok(parsed) = docket_parse::parse(data, format, &LIMITS) {
        check(&parsed, format);
    }
}
