//! Standard output for the commands: a reader that goes away (`docket jobs list | head -1`)
//! ends the command quietly, with status 0, instead of the panic `println!` gives on a closed
//! pipe. Write through [`outln!`] and [`out!`], which return an error to pass up with `?`.

use std::fmt;
use std::io::{self, Write};

/// Standard output was closed by its reader: not a failure of the command.
#[derive(Debug)]
pub(crate) struct ClosedPipe;

impl fmt::Display for ClosedPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ClosedPipe {}

/// A command used wrongly (exit 2), found after argument parsing: `jobs retry` with nothing
/// selected.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Whether an error (anywhere in its chain) is a usage error.
pub(crate) fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Usage>())
}

/// An error and its causes on one line, each cause once: a cause whose text the line already
/// holds (drivers often repeat their source in their own message) is left out.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Whether an error (anywhere in its chain) is a closed standard output.
pub(crate) fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<ClosedPipe>()
            || c.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Writes to standard output, then `end` (a newline, or nothing).
pub(crate) fn write(args: fmt::Arguments<'_>, end: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out
        .write_fmt(args)
        .and_then(|()| out.write_all(end.as_bytes()))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ClosedPipe.into()),
        r => Ok(r?),
    }
}

/// `println!` that returns a [`ClosedPipe`] error instead of panicking.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), "\n")
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), "\n")
    };
}

/// `print!` that returns a [`ClosedPipe`] error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), "")
    };
}

pub(crate) use {out, outln};
