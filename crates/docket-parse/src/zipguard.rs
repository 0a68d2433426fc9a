//! Reading OOXML containers without trusting their sizes (zip bombs).

use std::io::{self, Cursor, Read};

use zip::ZipArchive;
use zip::result::ZipError;

use crate::{Format, Limits, ParseError, SizeLimit};

/// Most entries accepted in one container.
const MAX_ENTRIES: usize = 10_000;

/// A ZIP container with a budget of decompressed bytes shared by all reads.
pub(crate) struct Container<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    format: Format,
    budget: u64,
    max: u64,
}

impl<'a> Container<'a> {
    /// Opens the container and refuses it when its entry count or declared sizes are too big.
    pub(crate) fn open(
        bytes: &'a [u8],
        format: Format,
        limits: &Limits,
    ) -> Result<Self, ParseError> {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            ParseError::corrupt(format, format!("the ZIP container cannot be read ({e})"))
        })?;
        if archive.len() > MAX_ENTRIES {
            return Err(ParseError::corrupt(
                format,
                format!(
                    "it holds {} entries, more than the {MAX_ENTRIES} allowed",
                    archive.len()
                ),
            ));
        }
        let mut declared = 0u64;
        for i in 0..archive.len() {
            let entry = archive.by_index_raw(i).map_err(|e| zip_error(format, e))?;
            declared = declared.saturating_add(entry.size());
        }
        let container = Container {
            archive,
            format,
            budget: limits.max_unzipped_bytes,
            max: limits.max_unzipped_bytes,
        };
        if declared > container.max {
            return Err(container.too_large());
        }
        Ok(container)
    }

    fn too_large(&self) -> ParseError {
        ParseError::TooLarge {
            limit: SizeLimit::Unzipped(self.format),
            max_bytes: self.max,
        }
    }

    /// Reads one entry whole, or `None` when there is no such entry. Never reads more than
    /// the remaining budget, whatever the entry's header claims.
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ParseError> {
        let format = self.format;
        let budget = self.budget;
        let mut entry = match self.archive.by_name(name) {
            Ok(e) => e,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(zip_error(format, e)),
        };
        if entry.size() > budget {
            drop(entry);
            return Err(self.too_large());
        }
        let capacity = entry.size().min(budget).min(16 << 20);
        let mut buf = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        (&mut entry)
            .take(budget.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| {
                ParseError::corrupt(format, format!("{name} cannot be decompressed ({e})"))
            })?;
        drop(entry);
        if buf.len() as u64 > budget {
            return Err(self.too_large());
        }
        self.budget -= buf.len() as u64;
        Ok(Some(buf))
    }

    /// Decompresses every entry into nothing, to prove the real sizes fit the budget before a
    /// third-party reader that trusts the headers gets the container.
    pub(crate) fn verify_all(&mut self) -> Result<(), ParseError> {
        let format = self.format;
        let mut total = 0u64;
        for i in 0..self.archive.len() {
            let mut entry = self.archive.by_index(i).map_err(|e| zip_error(format, e))?;
            let left = self.max.saturating_sub(total);
            let n = io::copy(
                &mut (&mut entry).take(left.saturating_add(1)),
                &mut io::sink(),
            )
            .map_err(|e| {
                ParseError::corrupt(format, format!("an entry cannot be decompressed ({e})"))
            })?;
            drop(entry);
            total = total.saturating_add(n);
            if total > self.max {
                return Err(self.too_large());
            }
        }
        Ok(())
    }
}

fn zip_error(format: Format, e: ZipError) -> ParseError {
    match e {
        ZipError::UnsupportedArchive(why) if why.to_ascii_lowercase().contains("password") => {
            ParseError::Unsupported(format!("the {} is password-protected", format.label()))
        }
        e => ParseError::corrupt(format, format!("the ZIP container is damaged ({e})")),
    }
}
