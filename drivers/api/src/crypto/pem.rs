//! PEM for the objects ukey writes and reads: certificates, certificate requests, public keys.

use crate::error::{Error, Result};

/// PEM label of an X.509 certificate.
pub const CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a PKCS#10 request (what `openssl req` reads).
pub const CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";
/// PEM label of a SubjectPublicKeyInfo.
pub const PUBLIC_KEY: &str = "PUBLIC KEY";
/// PEM label of a CMS message (what `openssl cms -inform PEM` reads).
pub const CMS: &str = "CMS";

/// Encodes DER as PEM with `label` and LF line endings.
///
/// Empty DER is refused: a PEM block with no body is not something any reader (ukey's own
/// `pem_blocks` included) accepts, so writing one would hand the user a file nothing can open.
pub fn to_pem(label: &str, der: &[u8]) -> Result<String> {
    if der.is_empty() {
        return Err(Error::InvalidInput(format!(
            "nothing to write as `{label}` PEM: the DER is empty (the object read from the carrier or file has no content)"
        )));
    }
    der::pem::encode_string(label, der::pem::LineEnding::LF, der)
        .map_err(|e| Error::Crypto(format!("PEM encoding failed: {e}")))
}

/// A certificate as PEM.
pub fn certificate_pem(der: &[u8]) -> Result<String> {
    to_pem(CERTIFICATE, der)
}

/// A certificate request as PEM.
pub fn csr_pem(der: &[u8]) -> Result<String> {
    to_pem(CERTIFICATE_REQUEST, der)
}

/// A SubjectPublicKeyInfo as PEM (`PUBLIC KEY`, what `openssl pkey -pubin` reads).
pub fn public_key_pem(spki_der: &[u8]) -> Result<String> {
    to_pem(PUBLIC_KEY, spki_der)
}

/// Accepts DER, or PEM text holding a block with the expected label (text around it, as
/// `openssl x509 -text` writes, is skipped; `NEW CERTIFICATE REQUEST` counts as a request), and
/// returns DER.
pub fn der_from_pem_or_der(bytes: &[u8], label: &str) -> Result<Vec<u8>> {
    if !is_pem(bytes) {
        return Ok(bytes.to_vec());
    }
    let blocks = pem_blocks(bytes)?;
    let accepted = |found: &str| found == label || (label == CERTIFICATE_REQUEST && found == "NEW CERTIFICATE REQUEST");
    match blocks.into_iter().find(|(found, _)| accepted(found)) {
        Some((_, der)) => Ok(der),
        None => Err(Error::InvalidInput(format!("the PEM input has no `{label}` block, expected `{label}`"))),
    }
}

/// Every `CERTIFICATE` block of a PEM bundle, in order (a chain file), as DER; a DER input is
/// one certificate.
pub fn certificates_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    if !is_pem(bytes) {
        return Ok(vec![bytes.to_vec()]);
    }
    let out: Vec<Vec<u8>> =
        pem_blocks(bytes)?.into_iter().filter(|(label, _)| label == CERTIFICATE).map(|(_, der)| der).collect();
    if out.is_empty() {
        return Err(Error::InvalidInput("no CERTIFICATE block in the PEM input".into()));
    }
    Ok(out)
}

/// Whether the input is PEM text rather than DER (DER starts with a SEQUENCE tag).
pub fn is_pem(bytes: &[u8]) -> bool {
    bytes.first() != Some(&0x30) && bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// All PEM blocks of a text, with their labels.
pub fn pem_blocks(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::InvalidInput("the PEM input is not valid text".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker =
            block.find("-----END ").ok_or_else(|| Error::InvalidInput("a PEM block has no END line".into()))?;
        let after_end = block[end_marker..].find('\n').map(|i| end_marker + i + 1).unwrap_or(block.len());
        let (label, der) = der::pem::decode_vec(block[..after_end].trim().as_bytes())
            .map_err(|e| Error::InvalidInput(format!("malformed PEM block: {e}")))?;
        out.push((label.to_string(), der));
        rest = &block[after_end..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_label_check() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        let pem = csr_pem(&der).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        assert_eq!(der_from_pem_or_der(pem.as_bytes(), CERTIFICATE_REQUEST).unwrap(), der);
        assert_eq!(der_from_pem_or_der(&der, CERTIFICATE_REQUEST).unwrap(), der);
        let err = der_from_pem_or_der(pem.as_bytes(), CERTIFICATE).unwrap_err();
        assert!(err.to_string().contains("no `CERTIFICATE` block"), "{err}");
        let with_text = format!("Certificate Request:\n    Data: ...\n{pem}");
        assert_eq!(der_from_pem_or_der(with_text.as_bytes(), CERTIFICATE_REQUEST).unwrap(), der);
    }

    /// Regression (fuzz target `pem`, reproducer: the empty input): ukey wrote a PEM block for
    /// empty DER that its own reader then refused.
    #[test]
    fn empty_der_is_refused_on_write_and_read() {
        for write in [certificate_pem, csr_pem, public_key_pem] {
            let err = write(&[]).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
            assert!(err.to_string().contains("DER is empty"), "{err}");
        }
        let empty_block = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
        assert!(pem_blocks(empty_block.as_bytes()).is_err());
    }

    #[test]
    fn bundles() {
        let a = certificate_pem(&[0x30, 0x00]).unwrap();
        let k = public_key_pem(&[0x30, 0x01, 0x00]).unwrap();
        let b = certificate_pem(&[0x30, 0x01, 0x05]).unwrap();
        let bundle = format!("junk\n{a}{k}\n{b}");
        assert_eq!(
            certificates_from_pem_or_der(bundle.as_bytes()).unwrap(),
            vec![vec![0x30, 0x00], vec![0x30, 0x01, 0x05]]
        );
        assert!(certificates_from_pem_or_der(k.as_bytes()).is_err());
    }
}
