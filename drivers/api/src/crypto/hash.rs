//! Digests per [`HashAlg`], one-shot and incremental.
//!
//! Carriers sign digests, so the host hashes: one place decides which hash a mechanism uses and
//! how long its output is, and large inputs (files to sign) can be streamed.

use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use sm3::Sm3;
use sm3::digest::Digest;

use crate::mechanism::HashAlg;

impl HashAlg {
    /// The digest of `data` under this hash.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut hasher = Hasher::new(self);
        hasher.update(data);
        hasher.finalize()
    }

    /// An incremental hasher, for input that arrives in pieces.
    pub fn hasher(self) -> Hasher {
        Hasher::new(self)
    }
}

/// An incremental hasher for one [`HashAlg`], so a caller can stream a file instead of holding it.
#[derive(Clone)]
pub struct Hasher {
    state: State,
}

#[derive(Clone)]
enum State {
    Sm3(Sm3),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha1(Sha1),
    Sha224(Sha224),
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(alg: HashAlg) -> Self {
        let state = match alg {
            HashAlg::Sm3 => State::Sm3(Sm3::new()),
            HashAlg::Sha256 => State::Sha256(Sha256::new()),
            HashAlg::Sha384 => State::Sha384(Sha384::new()),
            HashAlg::Sha1 => State::Sha1(Sha1::new()),
            HashAlg::Sha224 => State::Sha224(Sha224::new()),
            HashAlg::Sha512 => State::Sha512(Sha512::new()),
        };
        Hasher { state }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> HashAlg {
        match self.state {
            State::Sm3(_) => HashAlg::Sm3,
            State::Sha256(_) => HashAlg::Sha256,
            State::Sha384(_) => HashAlg::Sha384,
            State::Sha1(_) => HashAlg::Sha1,
            State::Sha224(_) => HashAlg::Sha224,
            State::Sha512(_) => HashAlg::Sha512,
        }
    }

    /// Feeds more input.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sm3(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha1(h) => h.update(data),
            State::Sha224(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Vec<u8> {
        match self.state {
            State::Sm3(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha384(h) => h.finalize().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha224(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_HASHES: [HashAlg; 6] =
        [HashAlg::Sm3, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha1, HashAlg::Sha224, HashAlg::Sha512];

    #[test]
    fn output_lengths_match_the_contract() {
        for alg in ALL_HASHES {
            assert_eq!(alg.digest(b"x").len(), alg.output_len(), "{alg:?}");
        }
    }

    #[test]
    fn incremental_equals_one_shot() {
        for alg in ALL_HASHES {
            let mut h = alg.hasher();
            h.update(b"hello ");
            h.update(b"world");
            assert_eq!(h.finalize(), alg.digest(b"hello world"));
        }
    }

    #[test]
    fn sha256_abc() {
        assert_eq!(
            hex::encode(HashAlg::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
