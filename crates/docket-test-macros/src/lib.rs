//! `#[both_backends]`: the one way docket's tests run a test on every backend.
//!
//! ```text
//! #[docket_conformance::both_backends]
//! async fn a_paused_queue_holds_its_jobs<T: TestDb>(db: T) { … }
//! ```
//!
//! keeps the function and adds a module of the same name with one `#[tokio::test]` per
//! backend, each handing the function a fresh, migrated database from
//! `docket_conformance::harness` (`postgres()`, `sqlite()`): the tests are named
//! `a_paused_queue_holds_its_jobs::postgres` and `a_paused_queue_holds_its_jobs::sqlite`, so
//! `cargo test sqlite` runs one backend. Tests run on a two-thread runtime, as the runtime and
//! the HTTP server do.
//!
//! Written on `proc_macro` alone (it only needs the function's name), so it adds no
//! dependency to the build.

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// Runs an `async fn name<T: TestDb>(db: T)` on PostgreSQL and on SQLite; see the crate docs.
#[proc_macro_attribute]
pub fn both_backends(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return error("#[both_backends] takes no arguments");
    }
    let Some(name) = fn_name(&item) else {
        return error("#[both_backends] goes on an `async fn name<T: TestDb>(db: T)`");
    };
    let tests: TokenStream = format!(
        "mod {name} {{ \
            #[::tokio::test(flavor = \"multi_thread\", worker_threads = 2)] \
            async fn postgres() {{ super::{name}(::docket_conformance::harness::postgres().await).await }} \
            #[::tokio::test(flavor = \"multi_thread\", worker_threads = 2)] \
            async fn sqlite() {{ super::{name}(::docket_conformance::harness::sqlite().await).await }} \
        }}"
    )
    .parse()
    .expect("generated tests parse");
    let mut out = item;
    out.extend(tests);
    out
}

/// The identifier after `async fn` at the item's top level (not inside its body).
fn fn_name(item: &TokenStream) -> Option<String> {
    let mut seen_async = false;
    let mut tokens = item.clone().into_iter();
    while let Some(t) = tokens.next() {
        match t {
            TokenTree::Ident(i) if i.to_string() == "async" => seen_async = true,
            TokenTree::Ident(i) if i.to_string() == "fn" => {
                return match (seen_async, tokens.next()) {
                    (true, Some(TokenTree::Ident(name))) => Some(name.to_string()),
                    _ => None,
                };
            }
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => return None,
            _ => {}
        }
    }
    None
}

fn error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});")
        .parse()
        .expect("error parses")
}
