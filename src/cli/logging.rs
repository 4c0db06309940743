//! A minimal stderr logger for `-v`: the CLI needs levels and nothing else, and every message
//! that reaches it has already been written with secrets left out.
//!
//! The same logger serves the agent (`ukey agent` runs in this process). Libraries whose own
//! error-level messages are not failures of ukey are demoted to debug (see [`QUIET_TARGETS`]), so
//! a person sees them only with `-vvv`; ukey's own errors keep their level.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Log targets (and their submodules) whose messages are shown at debug level at most.
///
/// `cryptoki` logs "Mechanism type N is not supported" at *error* level for every vendor-defined
/// mechanism a module lists in `C_GetMechanismList`, and similar notes for attributes it cannot
/// name. None of them is a failure: real failures come back to ukey as return codes, which ukey
/// reports itself. At error level they reached every user's terminal.
pub const QUIET_TARGETS: [&str; 1] = ["cryptoki"];

/// The level a record is shown at: its own, or debug for the quiet targets.
pub fn effective_level(target: &str, level: Level) -> Level {
    let quiet =
        QUIET_TARGETS.iter().any(|t| target == *t || target.strip_prefix(t).is_some_and(|rest| rest.starts_with("::")));
    if quiet { level.max(Level::Debug) } else { level }
}

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        effective_level(metadata.target(), metadata.level()) <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let text = crate::cli::output::sanitize(&record.args().to_string());
            let line = log_line(effective_level(record.target(), record.level()), record.target(), &text);
            // One write per line: stderr is unbuffered, and `eprintln!` with arguments made a
            // write(2) per piece (seven per line). The agent logs a line or three per use at its
            // normal level, so that was up to twenty system calls (and as many wake-ups of
            // whatever reads its stderr, e.g. journald) on every signature's path. One write also
            // keeps lines from two threads from interleaving mid-line.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// One log line as written, newline included.
fn log_line(level: Level, target: &str, text: &str) -> String {
    format!("ukey: {}: {target}: {text}\n", level_name(level))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the logger: errors only by default, then warnings, info, debug, trace per `-v`.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::Error,
        1 => LevelFilter::Warn,
        2 => LevelFilter::Info,
        3 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_piece_with_its_level_target_and_newline() {
        assert_eq!(
            log_line(Level::Warn, "ukey::policy::gate", "no custody policy"),
            "ukey: warning: ukey::policy::gate: no custody policy\n"
        );
    }

    #[test]
    fn cryptoki_is_demoted_and_ukey_is_not() {
        assert_eq!(effective_level("cryptoki::mechanism", Level::Error), Level::Debug);
        assert_eq!(effective_level("cryptoki", Level::Warn), Level::Debug);
        assert_eq!(effective_level("cryptoki", Level::Trace), Level::Trace);
        assert_eq!(effective_level("cryptoki_sys", Level::Error), Level::Error);
        assert_eq!(effective_level("ukey_pkcs11::module", Level::Error), Level::Error);
        assert_eq!(effective_level("ukey", Level::Warn), Level::Warn);
    }
}
