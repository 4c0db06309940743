//! How commands print: aligned tables for people, JSON for scripts, and files or stdout for
//! binary results.
//!
//! Every command builds one serialisable report value. With `--json` it is printed as one JSON
//! document on stdout (field names are part of ukey's interface, listed in the README); without,
//! the value renders itself as text through [`Render`]. Text that came from a carrier or a file
//! (labels, subjects) is cleaned of control characters first, so a hostile token label cannot
//! send escape sequences to the terminal.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use ukey_api::Error;

use crate::cli::error::CliResult;

/// A report that can print itself for people.
pub trait Render: Serialize {
    /// Writes the human form.
    fn render(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Where and how results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json` was given.
    pub json: bool,
}

impl Output {
    /// Prints a report on stdout in the chosen format.
    pub fn emit<R: Render>(&self, report: &R) -> CliResult {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let result = if self.json {
            serde_json::to_writer_pretty(&mut out, report).map_err(io::Error::other).and_then(|()| out.write_all(b"\n"))
        } else {
            report.render(&mut out)
        };
        result.and_then(|()| out.flush()).map_err(|e| Error::io("cannot write to stdout", e).into())
    }

    /// Prints a note for people on stderr (not in JSON mode, where stderr carries only errors).
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{}", sanitize(text));
        }
    }

    /// Prints a warning on stderr in either mode: JSON consumers read stdout only.
    pub fn warn(&self, text: &str) {
        eprintln!("ukey: warning: {}", sanitize(text));
    }
}

/// Replaces control characters (escape sequences, newlines inside cells) with `?`.
pub fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && c != '\n' { '?' } else { c }).collect()
}

/// Cleans one table cell: no control characters at all, not even newlines.
fn cell(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A simple left-aligned text table with a header row.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&'static str]) -> Self {
        Table { header: header.to_vec(), rows: Vec::new() }
    }

    /// Adds a row; missing cells print empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| cell(c)).collect());
    }

    /// Whether no rows were added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the table with two spaces between columns; the last column is not padded.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().take(cols).enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut dyn Write| -> io::Result<()> {
            let mut text = String::new();
            for (i, c) in cells.take(cols).enumerate() {
                if i + 1 < cols {
                    text.push_str(&format!("{c:<w$}  ", w = widths[i]));
                } else {
                    text.push_str(c);
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(&mut self.header.iter().copied(), out)?;
        for row in &self.rows {
            let mut cells = row.iter().map(String::as_str).chain(std::iter::repeat(""));
            line(&mut cells, out)?;
        }
        Ok(())
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the number itself if out of range).
pub fn utc_time(seconds: i64) -> String {
    u64::try_from(seconds)
        .ok()
        .and_then(|s| der::DateTime::from_unix_duration(std::time::Duration::from_secs(s)).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// Reads a whole input file, or stdin for `None` or `-`.
pub fn read_input(path: Option<&Path>, what: &str) -> CliResult<Vec<u8>> {
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::read(p).map_err(|e| Error::io(format!("cannot read the {what} {}", p.display()), e).into())
        }
        _ => {
            let mut data = Vec::new();
            io::Read::read_to_end(&mut io::stdin().lock(), &mut data)
                .map_err(|e| Error::io(format!("cannot read the {what} from stdin"), e))?;
            Ok(data)
        }
    }
}

/// Writes a result to a file (replacing it atomically) or, for `None` or `-`, to stdout.
pub fn write_output(path: Option<&Path>, data: &[u8], what: &str) -> CliResult {
    match path {
        Some(p) if p != Path::new("-") => write_file_atomic(p, data, what),
        _ => {
            let mut out = io::stdout().lock();
            out.write_all(data)
                .and_then(|()| out.flush())
                .map_err(|e| Error::io(format!("cannot write the {what} to stdout"), e).into())
        }
    }
}

/// Whether stdout is a terminal (binary output is then shown as hex instead).
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Writes to a temporary file beside `path`, then renames it, so a failed write never leaves a
/// half-written result under the final name. Something that exists and is not a regular file
/// (`/dev/null`, a FIFO, `/dev/stdout`) is written to directly: renaming over it would replace
/// the device.
fn write_file_atomic(path: &Path, data: &[u8], what: &str) -> CliResult {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(data))
            .map_err(|e| Error::io(format!("cannot write the {what} to {}", path.display()), e).into());
    }
    let name = path.file_name().ok_or_else(|| {
        crate::cli::error::CliError::Usage(format!("{} is not a file name for the {what}", path.display()))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".ukey-{}.tmp", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("cannot write the {what} to {}", path.display()), e).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    #[test]
    fn table_aligns_and_cleans_cells() {
        let mut t = Table::new(&["A", "BB"]);
        t.row(vec!["long value".into(), "x\u{1b}[31m".into()]);
        t.row(vec!["y".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "A           BB\nlong value  x?[31m\ny\n");
    }

    #[test]
    fn writes_replace_files_but_never_devices() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        std::fs::write(&file, b"old").unwrap();
        write_output(Some(&file), b"new", "test").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        write_output(Some(Path::new("/dev/null")), b"x", "test").unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_time(-5), "-5");
    }
}
