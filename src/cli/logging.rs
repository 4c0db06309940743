//! A minimal stderr logger for `-v`: the CLI needs levels and nothing else, and every message
//! that reaches it has already been written with secrets left out.
//!
//! The same logger serves the agent (`ukey agent` runs in this process). Libraries whose own
//! error-level messages are not failures of ukey are demoted to debug (see [`QUIET_TARGETS`]), so
//! a person sees them only with `-vvv`; ukey's own errors keep their level.

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
            let level = effective_level(record.target(), record.level());
            eprintln!("ukey: {}: {}: {text}", level_name(level), record.target());
        }
    }

    fn flush(&self) {}
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
    fn cryptoki_is_demoted_and_ukey_is_not() {
        assert_eq!(effective_level("cryptoki::mechanism", Level::Error), Level::Debug);
        assert_eq!(effective_level("cryptoki", Level::Warn), Level::Debug);
        assert_eq!(effective_level("cryptoki", Level::Trace), Level::Trace);
        assert_eq!(effective_level("cryptoki_sys", Level::Error), Level::Error);
        assert_eq!(effective_level("ukey_pkcs11::module", Level::Error), Level::Error);
        assert_eq!(effective_level("ukey", Level::Warn), Level::Warn);
    }
}
