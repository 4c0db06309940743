//! Settings a driver hands to the tokens it opens and creates.

use crate::kdf::KdfParams;
use crate::pins::DEFAULT_MAX_TRIES;

/// What new PIN records get: KDF cost and the number of tries before locking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Argon2id parameters for PIN records written from now on (creation, change, unblock).
    pub kdf: KdfParams,
    /// Tries before a PIN locks, for tokens created from now on.
    pub max_tries: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { kdf: KdfParams::DEFAULT, max_tries: DEFAULT_MAX_TRIES }
    }
}
