//! The PIV certificate data object (SP 800-73-4 Part 1 Appendix A, Table 10 and §3.3.2):
//! `70` certificate, `71` CertInfo (bit 0 = gzip-compressed), `72` MSCUID, `FE` error detection
//! code. Decompression is bounded, so a hostile card cannot make ukey inflate gigabytes.

use std::io::Read;

use flate2::read::GzDecoder;
use ukey_api::{Error, Result};

use crate::tlv;

/// CertInfo bit: the certificate is gzip-compressed.
pub const CERTINFO_COMPRESSED: u8 = 0x01;
/// Largest certificate accepted after decompression.
const MAX_CERTIFICATE_LEN: u64 = 64 * 1024;

/// Extracts the certificate DER from a certificate object's content (the value of tag `53`).
pub fn decode(object: &[u8]) -> Result<Vec<u8>> {
    let cert = tlv::require(object, 0x70)?;
    let info = tlv::find(object, 0x71)?.and_then(|v| v.first().copied()).unwrap_or(0);
    if cert.is_empty() {
        return Err(Error::NotFound("the certificate object is empty".into()));
    }
    if info & CERTINFO_COMPRESSED == 0 {
        return Ok(cert.to_vec());
    }
    let mut out = Vec::new();
    GzDecoder::new(cert)
        .take(MAX_CERTIFICATE_LEN + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Device(format!("the card's compressed certificate does not decompress: {e}")))?;
    if out.len() as u64 > MAX_CERTIFICATE_LEN {
        return Err(Error::Device(format!(
            "the card's compressed certificate inflates past {MAX_CERTIFICATE_LEN} bytes; refusing it"
        )));
    }
    Ok(out)
}

/// Builds a certificate object's content for PUT DATA: the DER uncompressed, CertInfo `00`, an
/// empty error detection code (what SP 800-73-4 requires and what other middleware writes).
pub fn encode(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der.len() + 12);
    tlv::encode(0x70, der, &mut out);
    tlv::encode(0x71, &[0x00], &mut out);
    tlv::encode(0xFE, &[], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    #[test]
    fn plain_round_trip() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(decode(&encode(&der)).unwrap(), der);
    }

    #[test]
    fn gzip_flag_is_honoured() {
        let der = vec![0x30; 900];
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&der).unwrap();
        let packed = gz.finish().unwrap();
        let object = [tlv::encoded(0x70, &packed), tlv::encoded(0x71, &[0x01]), tlv::encoded(0xFE, &[])].concat();
        assert_eq!(decode(&object).unwrap(), der);
    }

    #[test]
    fn bad_objects_are_errors() {
        // Missing 70.
        assert!(decode(&tlv::encoded(0x71, &[0])).is_err());
        // Compressed flag on data that is not gzip.
        let object = [tlv::encoded(0x70, &[1, 2, 3]), tlv::encoded(0x71, &[0x01])].concat();
        assert!(matches!(decode(&object), Err(Error::Device(_))));
        // A gzip bomb is cut off.
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&vec![0u8; 1 << 20]).unwrap();
        let packed = gz.finish().unwrap();
        let object = [tlv::encoded(0x70, &packed), tlv::encoded(0x71, &[0x01])].concat();
        let err = decode(&object).unwrap_err();
        assert!(err.to_string().contains("inflates"), "{err}");
    }
}
