//! What `ukey sign` and `ukey verify` share: choosing the mechanism from `--alg` and `--id`, and
//! turning `--in` (a message, streamed, or with `--prehashed` a digest) into the input the core
//! signs or verifies.

use std::io::Read;
use std::path::Path;

use ukey_api::crypto::{self, SignData};
use ukey_api::mechanism::MechanismKind;
use ukey_api::{Error, KeyAlgorithm, Mechanism, SignInput};

use crate::cli::error::{CliError, CliResult};

/// Chunk size for streaming a message through the hash.
const CHUNK: usize = 64 * 1024;

/// The mechanism for a key: `--alg` if given, else the key's usual one; `--id` sets the SM2
/// distinguishing id and is refused for other mechanisms and with `--prehashed` (the digest
/// already contains Z, so an id would silently do nothing).
pub fn choose_mechanism(
    key: KeyAlgorithm,
    alg: Option<MechanismKind>,
    user_id: Option<&str>,
    prehashed: bool,
) -> CliResult<Mechanism> {
    let kind = alg.unwrap_or_else(|| key.default_mechanism().kind());
    if user_id.is_some() {
        if kind != MechanismKind::Sm2Sm3 {
            return Err(CliError::Usage(format!(
                "--id is the SM2 distinguishing id; {} signatures have none, leave it out",
                kind.as_str()
            )));
        }
        if prehashed {
            return Err(CliError::Usage(
                "--id has no effect with --prehashed: the digest SM3(Z ‖ M) already contains the id; leave one out"
                    .into(),
            ));
        }
    }
    let mechanism = Mechanism::parse(kind.as_str(), user_id.map(str::as_bytes))?;
    mechanism.check_key(key)?;
    Ok(mechanism)
}

/// Reads a `--prehashed` digest: raw bytes of the hash's length, or the same as hex text.
pub fn read_digest(path: Option<&Path>, mechanism: &Mechanism) -> CliResult<Vec<u8>> {
    let data = crate::cli::output::read_input(path, "digest")?;
    let len = mechanism.hash().output_len();
    if data.len() == len {
        return Ok(data);
    }
    let text = String::from_utf8_lossy(&data);
    let text = text.trim();
    if text.len() == 2 * len
        && let Ok(bytes) = hex::decode(text)
    {
        return Ok(bytes);
    }
    Err(Error::InvalidInput(format!(
        "with --prehashed the input must be the {len}-byte {} digest{} (raw or as {} hex digits); got {} bytes",
        mechanism.hash().as_str(),
        if matches!(mechanism, Mechanism::Sm2Sm3 { .. }) { " SM3(Z ‖ M)" } else { "" },
        2 * len,
        data.len()
    ))
    .into())
}

/// The digest of a message, streamed from a file or stdin (SM2: over Z ‖ M with the key).
pub fn digest_message(path: Option<&Path>, mechanism: &Mechanism, spki: Option<&[u8]>) -> CliResult<SignInput> {
    let mut hasher = crypto::message_hasher(mechanism, spki)?;
    let (mut reader, what): (Box<dyn Read>, String) = match path {
        Some(p) if p != Path::new("-") => {
            let file = std::fs::File::open(p).map_err(|e| Error::io(format!("cannot open {}", p.display()), e))?;
            (Box::new(file), p.display().to_string())
        }
        _ => (Box::new(std::io::stdin().lock()), "stdin".to_string()),
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("cannot read {what}"), e).into()),
        }
    }
    Ok(crypto::input_from_digest(mechanism, hasher.finalize())?)
}

/// The whole message in memory (for carriers that hash it themselves).
pub fn message_input(path: Option<&Path>, mechanism: &Mechanism, spki: Option<&[u8]>) -> CliResult<SignInput> {
    let message = crate::cli::output::read_input(path, "input")?;
    Ok(crypto::prepare_input(mechanism, spki, SignData::Message(&message))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_only_for_sm2_and_not_with_prehashed() {
        assert!(choose_mechanism(KeyAlgorithm::P256, None, Some("x"), false).is_err());
        assert!(choose_mechanism(KeyAlgorithm::Sm2, None, Some("x"), true).is_err());
        let m = choose_mechanism(KeyAlgorithm::Sm2, None, Some("alice"), false).unwrap();
        assert_eq!(m, Mechanism::Sm2Sm3 { user_id: b"alice".to_vec() });
        assert_eq!(choose_mechanism(KeyAlgorithm::P384, None, None, false).unwrap(), Mechanism::EcdsaSha384);
    }

    #[test]
    fn mechanism_must_fit_the_key() {
        let err = choose_mechanism(KeyAlgorithm::P256, Some(MechanismKind::Sm2Sm3), None, false).unwrap_err();
        assert!(err.to_string().contains("ecdsa-sha256"), "{err}");
    }
}
