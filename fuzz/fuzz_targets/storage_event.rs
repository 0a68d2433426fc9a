//! `docket_pipeline::ingest::parse_event`: Supabase Storage / S3 event notifications from
//! untrusted HTTP bodies. It must never panic; what it accepts must have non-empty names.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = docket_pipeline::ingest::parse_event(data) {
        let _ = format!("{event:?}");
    }
});
