//! Child process for `docket_parse::parse_isolated`: reads a document on stdin, writes the
//! JSON parse result on stdout.

fn main() -> std::process::ExitCode {
    docket_parse::child_main()
}
