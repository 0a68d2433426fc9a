//! `docket_parse::parse` as Json, in process, with small size limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../common/parse_common.rs");

fuzz_target!(|data: &[u8]| run(data, Format::Json));
