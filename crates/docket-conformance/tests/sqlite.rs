//! The conformance suite on SQLite: a fresh database file per test.

docket_conformance::driver_test_suite!(docket_conformance::harness::sqlite());
