//! Logging, only to stderr, never to the program's stdout (which may be a protocol stream, as for
//! `ssh`): warnings (such as "no agent is running", said once) by default, a debug log when
//! `UKEY_PKCS11_DEBUG` is set, nothing when it is `0`.

use std::sync::Once;

/// Environment variable that sets the module's log: `1`/`debug`, `trace`, or `0` for silence.
pub const DEBUG_ENV: &str = "UKEY_PKCS11_DEBUG";

/// Installs a stderr logger once, if asked for and if the program has no logger of its own.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let level = match std::env::var_os(DEBUG_ENV).filter(|v| !v.is_empty()) {
            None => log::LevelFilter::Warn,
            Some(v) if v == "0" => return,
            Some(v) if v == "trace" => log::LevelFilter::Trace,
            Some(_) => log::LevelFilter::Debug,
        };
        let _ = env_logger::Builder::new()
            .filter_level(log::LevelFilter::Off)
            .filter_module("ukey_pkcs11", level)
            .target(env_logger::Target::Stderr)
            .format_timestamp_millis()
            .try_init();
    });
}
