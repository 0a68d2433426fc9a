//! `docket_parse::detect`: the first input byte picks the file-name and MIME hints, the rest
//! is the document. Whatever `detect` answers, parsing as that format must hold its promises.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../common/parse_common.rs");

const NAMES: [Option<&str>; 8] = [
    None,
    Some("a.txt"),
    Some("a.md"),
    Some("a.html"),
    Some("a.pdf"),
    Some("a.csv"),
    Some("a.json"),
    Some("noext"),
];
const MIMES: [Option<&str>; 4] = [
    None,
    Some("text/plain"),
    Some("text/csv; charset=utf-8"),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    install_hook();
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let name = NAMES[(sel & 7) as usize];
    let mime = MIMES[((sel >> 3) & 3) as usize];
    if let Ok(format) = docket_parse::detect(bytes, name, mime) {
        if let Ok(parsed) = docket_parse::parse(bytes, format, &LIMITS) {
            check(&parsed, format);
        }
    }
    // The string forms of a format never panic.
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = s.parse::<Format>();
        let _ = Format::from_mime(s);
        let _ = Format::from_extension(s);
    }
});
