//! Debug logging: off unless `UKEY_PKCS11_DEBUG` is set, and then only to stderr, never to the
//! program's stdout (which may be a protocol stream, as for `ssh`).

use std::sync::Once;

/// Environment variable that turns the module's log on (`1`/`debug`, or `trace`).
pub const DEBUG_ENV: &str = "UKEY_PKCS11_DEBUG";

/// Installs a stderr logger once, if asked for and if the program has no logger of its own.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(value) = std::env::var_os(DEBUG_ENV).filter(|v| !v.is_empty() && v != "0") else { return };
        let level = if value == "trace" { log::LevelFilter::Trace } else { log::LevelFilter::Debug };
        let _ = env_logger::Builder::new()
            .filter_level(log::LevelFilter::Off)
            .filter_module("ukey_pkcs11", level)
            .target(env_logger::Target::Stderr)
            .format_timestamp_millis()
            .try_init();
    });
}
