//! Turning a PIN into a key-encryption key with Argon2id.
//!
//! A soft token's file can be copied off the machine, so the only thing between a thief and the
//! keys is the cost of guessing the PIN offline. Argon2id makes every guess cost memory and time.
//! The parameters are stored next to each wrapped master key, so they can be raised later (a PIN
//! change re-wraps with the driver's current parameters) without breaking older tokens.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use ukey_api::{Error, Pin, Result};

/// Length of the key-encryption key and of the token master key, in bytes.
pub const KEY_LEN: usize = 32;

/// Length of the random salt stored with each PIN record.
pub const SALT_LEN: usize = 16;

/// Largest memory cost a token file may ask for (1 GiB), so a damaged or hostile file cannot make
/// ukey allocate without bound.
const MAX_M_COST_KIB: u32 = 1024 * 1024;

/// Largest time cost a token file may ask for.
const MAX_T_COST: u32 = 64;

/// Largest parallelism a token file may ask for.
const MAX_P_COST: u32 = 16;

/// Argon2id parameters, stored per PIN record.
///
/// The default is OWASP's first Argon2id recommendation: 46 MiB, 1 pass, 1 lane. On the 2-core
/// development machine one PIN check cost about 110 ms of CPU (half of it page faults of the
/// 46 MiB) while the machine was heavily loaded, so about 50–100 ms on a quiet one;
/// `benches/sign.rs` shows it as the difference between the full `Carrier::sign` and the bare
/// signature. A caller may lower it for tests through [`crate::SoftDriver::with_kdf_params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl KdfParams {
    /// What new PIN records get unless the driver was told otherwise.
    pub const DEFAULT: KdfParams = KdfParams { m_cost_kib: 46 * 1024, t_cost: 1, p_cost: 1 };

    /// The cheapest parameters Argon2 allows; only for tests that run many PIN operations.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams { m_cost_kib: 8, t_cost: 1, p_cost: 1 };

    /// Refuses parameters that Argon2 rejects or that exceed the bounds a token file may ask for.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.m_cost_kib > MAX_M_COST_KIB || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST {
            return Err(format!(
                "Argon2 parameters m={} KiB t={} p={} exceed the limits (m ≤ {MAX_M_COST_KIB}, t ≤ {MAX_T_COST}, p ≤ {MAX_P_COST})",
                self.m_cost_kib, self.t_cost, self.p_cost
            ));
        }
        self.argon2_params().map(|_| ())
    }

    fn argon2_params(&self) -> std::result::Result<Params, String> {
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| format!("bad Argon2 parameters: {e}"))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::DEFAULT
    }
}

/// Derives the key-encryption key for one PIN record.
pub fn derive_kek(pin: &Pin, salt: &[u8], params: &KdfParams) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let argon_params = params.argon2_params().map_err(Error::Crypto)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(pin.expose_bytes(), salt, kek.as_mut())
        .map_err(|e| Error::Crypto(format!("Argon2id key derivation failed: {e}")))?;
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_pin_and_salt_give_the_same_key_and_others_differ() {
        let p = KdfParams::INSECURE_FOR_TESTS;
        let pin = Pin::new("123456").unwrap();
        let a = derive_kek(&pin, &[1; SALT_LEN], &p).unwrap();
        let b = derive_kek(&pin, &[1; SALT_LEN], &p).unwrap();
        let c = derive_kek(&pin, &[2; SALT_LEN], &p).unwrap();
        let d = derive_kek(&Pin::new("123457").unwrap(), &[1; SALT_LEN], &p).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
        assert_ne!(*a, *d);
    }

    #[test]
    fn oversized_parameters_are_refused() {
        let huge = KdfParams { m_cost_kib: u32::MAX, t_cost: 1, p_cost: 1 };
        assert!(huge.check().is_err());
        assert!(KdfParams::DEFAULT.check().is_ok());
        assert!(KdfParams::INSECURE_FOR_TESTS.check().is_ok());
    }
}
