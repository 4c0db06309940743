//! Distinguished names typed by people: `CN=Alice,O=Example,OU=IT,C=CN` (RFC 4514, most specific
//! first) or OpenSSL's `/C=CN/O=Example/CN=Alice`, into an X.501 `Name`.
//!
//! Own parser rather than `Name::from_str`, so that every mistake gets a clear message, unknown
//! attribute names are refused (with the list of known ones) instead of silently turned into
//! OIDs, and each attribute gets the string type RFC 5280 asks for (country: PrintableString,
//! email: IA5String, the rest UTF8String, so Chinese names work).

use der::asn1::{Any, Ia5StringRef, ObjectIdentifier, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{Error, Result};

/// Longest subject string accepted.
pub const MAX_SUBJECT_LEN: usize = 4096;

#[derive(Clone, Copy)]
enum StringKind {
    Utf8,
    Printable,
    Ia5,
}

/// Attribute names people may use, their OIDs and string types.
const ATTRIBUTES: &[(&[&str], &str, StringKind)] = &[
    (&["CN", "commonName"], "2.5.4.3", StringKind::Utf8),
    (&["SN", "surname"], "2.5.4.4", StringKind::Utf8),
    (&["serialNumber"], "2.5.4.5", StringKind::Printable),
    (&["C", "countryName"], "2.5.4.6", StringKind::Printable),
    (&["L", "localityName"], "2.5.4.7", StringKind::Utf8),
    (&["ST", "S", "stateOrProvinceName"], "2.5.4.8", StringKind::Utf8),
    (&["street", "streetAddress"], "2.5.4.9", StringKind::Utf8),
    (&["O", "organizationName"], "2.5.4.10", StringKind::Utf8),
    (&["OU", "organizationalUnitName"], "2.5.4.11", StringKind::Utf8),
    (&["title"], "2.5.4.12", StringKind::Utf8),
    (&["GN", "givenName"], "2.5.4.42", StringKind::Utf8),
    (&["emailAddress", "E", "email"], "1.2.840.113549.1.9.1", StringKind::Ia5),
    (&["DC", "domainComponent"], "0.9.2342.19200300.100.1.25", StringKind::Ia5),
    (&["UID", "userId"], "0.9.2342.19200300.100.1.1", StringKind::Utf8),
];

/// The attribute names [`parse_name`] accepts, for error messages and help text.
pub fn supported_attributes() -> String {
    ATTRIBUTES.iter().map(|(names, _, _)| names[0]).collect::<Vec<_>>().join(", ")
}

/// Parses a subject. RFC 4514 form lists the most specific attribute first
/// (`CN=Alice,O=Example,C=CN`); the OpenSSL form starts with `/` and lists the least specific
/// first (`/C=CN/O=Example/CN=Alice`). Both give the same `Name`. `+` joins attributes of one RDN.
pub fn parse_name(text: &str) -> Result<Name> {
    // A line break or tab around the whole subject (from a file or a paste) is not part of it.
    let text = trim_unescaped(text.trim_matches(|c: char| c.is_ascii_control()));
    if text.is_empty() {
        return Err(Error::InvalidInput(
            "the subject is empty; give at least CN=..., e.g. \"CN=Alice,O=Example,C=CN\"".into(),
        ));
    }
    if text.len() > MAX_SUBJECT_LEN {
        return Err(Error::InvalidInput(format!("the subject is longer than {MAX_SUBJECT_LEN} characters")));
    }
    let (rdn_texts, most_specific_first) = match text.strip_prefix('/') {
        Some(rest) => (split_unescaped(rest, '/'), false),
        None => (split_unescaped(text, ','), true),
    };
    let mut rdns = Vec::with_capacity(rdn_texts.len());
    for rdn_text in rdn_texts {
        let mut atvs = SetOfVec::new();
        for atv_text in split_unescaped(&rdn_text, '+') {
            let atv = parse_atv(&atv_text)?;
            atvs.insert(atv).map_err(|_| {
                Error::InvalidInput(format!("`{}` repeats an attribute inside one RDN", rdn_text.trim()))
            })?;
        }
        rdns.push(RelativeDistinguishedName::from(atvs));
    }
    // DER order is least specific first.
    if most_specific_first {
        rdns.reverse();
    }
    // x509-cert builds a Name only by decoding; an RDNSequence has the same encoding.
    let der =
        RdnSequence::from(rdns).to_der().map_err(|e| Error::InvalidInput(format!("subject cannot be encoded: {e}")))?;
    let name = Name::from_der(&der).map_err(|e| Error::InvalidInput(format!("subject cannot be encoded: {e}")))?;
    // The printed form (RFC 4514: `EMAIL=` for `E=`, escapes, `#hex`) can be longer than what was
    // typed; a subject whose printed form could not be pasted back is refused now, not later.
    if name.to_string().len() > MAX_SUBJECT_LEN {
        return Err(Error::InvalidInput(format!(
            "the subject is longer than {MAX_SUBJECT_LEN} characters once written out in full (RFC 4514 names attributes in full, e.g. EMAIL for E, and escapes special characters); shorten it"
        )));
    }
    Ok(name)
}

/// Parses and DER-encodes a subject.
pub fn parse_name_der(text: &str) -> Result<Vec<u8>> {
    parse_name(text)?.to_der().map_err(|e| Error::Crypto(format!("name encoding failed: {e}")))
}

fn parse_atv(text: &str) -> Result<AttributeTypeAndValue> {
    let trimmed = trim_unescaped(text);
    let (key, raw_value) = trimmed.split_once('=').ok_or_else(|| {
        Error::InvalidInput(format!(
            "`{trimmed}` is not ATTRIBUTE=value (e.g. CN=Alice); attributes: {}",
            supported_attributes()
        ))
    })?;
    let key = key.trim();
    let (oid, kind) = lookup(key)?;
    if let Some(hex) = raw_value.trim_matches(' ').strip_prefix('#') {
        return Ok(AttributeTypeAndValue { oid, value: hex_value(key, hex)? });
    }
    let value = unescape(raw_value.trim_start_matches(' '))?;
    if value.is_empty() {
        return Err(Error::InvalidInput(format!("{key} has an empty value")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "{key} contains a control character (a line break or tab?); subjects are printable text"
        )));
    }
    let any = encode_value(key, &value, kind)?;
    Ok(AttributeTypeAndValue { oid, value: any })
}

/// An RFC 4514 `#hexstring` value: the hex of the value's BER encoding, as ukey (and OpenSSL,
/// and every RFC 4514 printer) shows attributes it has no string form for. Found by fuzzing:
/// without it, a name ukey printed read back as a different name.
fn hex_value(key: &str, hex: &str) -> Result<Any> {
    let bad =
        || Error::InvalidInput(format!("{key}=#{hex} is not a #hex value (pairs of hex digits of one DER value)"));
    if hex.is_empty() || hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let any =
        Any::from_der(&bytes).map_err(|e| Error::InvalidInput(format!("{key}=#{hex} is not one DER value: {e}")))?;
    // As in the text form, a value must not be empty (`CN=#0C00` printed as `CN=`).
    if any.value().is_empty() {
        return Err(Error::InvalidInput(format!("{key} has an empty value")));
    }
    Ok(any)
}

fn lookup(key: &str) -> Result<(ObjectIdentifier, StringKind)> {
    for (names, oid, kind) in ATTRIBUTES {
        if names.iter().any(|n| n.eq_ignore_ascii_case(key)) {
            let oid = ObjectIdentifier::new(oid).map_err(|e| Error::Crypto(format!("attribute table: {e}")))?;
            return Ok((oid, *kind));
        }
    }
    if key.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        let oid = ObjectIdentifier::new(key)
            .map_err(|_| Error::InvalidInput(format!("`{key}` is neither a known attribute nor a dotted OID")))?;
        return Ok((oid, StringKind::Utf8));
    }
    Err(Error::InvalidInput(format!(
        "unknown subject attribute `{key}`; supported: {} (or a dotted OID)",
        supported_attributes()
    )))
}

fn encode_value(key: &str, value: &str, kind: StringKind) -> Result<Any> {
    let result = match kind {
        StringKind::Utf8 => Utf8StringRef::new(value).and_then(|s| Any::encode_from(&s)),
        StringKind::Printable => {
            let is_country = key.eq_ignore_ascii_case("C") || key.eq_ignore_ascii_case("countryName");
            if is_country && (value.len() != 2 || !value.chars().all(|c| c.is_ascii_uppercase())) {
                return Err(Error::InvalidInput(format!(
                    "country `{value}` must be a two-letter upper-case ISO 3166 code, e.g. C=CN"
                )));
            }
            let s = PrintableStringRef::new(value).map_err(|_| {
                Error::InvalidInput(format!("{key} `{value}` may contain only letters, digits, space and '()+,-./:=?"))
            })?;
            Any::encode_from(&s)
        }
        StringKind::Ia5 => {
            let s =
                Ia5StringRef::new(value).map_err(|_| Error::InvalidInput(format!("{key} `{value}` must be ASCII")))?;
            Any::encode_from(&s)
        }
    };
    result.map_err(|e| Error::InvalidInput(format!("{key} value cannot be encoded: {e}")))
}

/// Trims spaces (U+0020, the one RFC 4514 escapes at a value's ends) at both ends, except a
/// space escaped with a backslash (`CN=\ ` is a one-space value). Other white space, such as a
/// no-break space, is part of the value. Both found by the dn_text fuzz target.
fn trim_unescaped(text: &str) -> &str {
    let mut text = text.trim_start_matches(' ');
    while let Some(rest) = text.strip_suffix(' ') {
        let backslashes = rest.bytes().rev().take_while(|b| *b == b'\\').count();
        if backslashes % 2 == 1 {
            break;
        }
        text = rest;
    }
    text
}

/// Splits on `sep` where it is not escaped with a backslash.
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            current.push(c);
            if let Some(next) = chars.next() {
                current.push(next);
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

/// Removes RFC 4514 escapes (`\,` `\+` `\"` `\\` `\<` `\>` `\;` `\=` `\#` `\ ` and `\XX` hex
/// pairs forming UTF-8) and unescaped trailing spaces.
fn unescape(text: &str) -> Result<String> {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut escaped_until = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let next =
                *bytes.get(i + 1).ok_or_else(|| Error::InvalidInput(format!("`{text}` ends with a lone backslash")))?;
            if next.is_ascii_hexdigit() {
                let pair = bytes
                    .get(i + 1..i + 3)
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| Error::InvalidInput(format!("bad \\XX escape in `{text}`")))?;
                out.push(pair);
                i += 3;
            } else {
                out.push(next);
                i += 2;
            }
            escaped_until = out.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    while out.len() > escaped_until && out.last() == Some(&b' ') {
        out.pop();
    }
    String::from_utf8(out).map_err(|_| Error::InvalidInput(format!("`{text}` has escapes that are not UTF-8")))
}

/// Decodes a DER Name (for display in tests and messages).
pub fn name_from_der(der: &[u8]) -> Result<Name> {
    Name::from_der(der).map_err(|e| Error::InvalidInput(format!("not a DER Name: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_and_openssl_forms_agree() {
        let a = parse_name("CN=Alice,O=Example,OU=IT,C=CN,ST=Beijing,L=Haidian,emailAddress=alice@example.cn").unwrap();
        let b =
            parse_name("/emailAddress=alice@example.cn/L=Haidian/ST=Beijing/C=CN/OU=IT/O=Example/CN=Alice").unwrap();
        assert_eq!(a, b);
        let text = a.to_string();
        assert!(text.starts_with("CN=Alice,O=Example,OU=IT,C=CN"), "{text}");
    }

    #[test]
    fn escapes_and_unicode() {
        let n = parse_name(r"CN=Smith\, John,O=示例公司,OU=R\+D").unwrap();
        let text = n.to_string();
        assert!(text.contains(r"CN=Smith\, John"), "{text}");
        assert!(text.contains("O=示例公司"), "{text}");
        assert!(text.contains(r"OU=R\+D"), "{text}");
        let hex = parse_name(r"CN=caf\C3\A9").unwrap();
        assert!(hex.to_string().contains("CN=café"));
    }

    #[test]
    fn mistakes_have_clear_messages() {
        let cases = [
            ("", "empty"),
            ("CN", "ATTRIBUTE=value"),
            ("XX=1", "unknown subject attribute `XX`"),
            ("CN=", "empty value"),
            ("C=China", "two-letter"),
            ("CN=a\\", "lone backslash"),
            ("emailAddress=张@example.cn", "ASCII"),
        ];
        for (input, want) in cases {
            let err = parse_name(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn dotted_oid_and_multi_valued_rdn() {
        let n = parse_name("CN=a+UID=b,2.5.4.10=Org").unwrap();
        assert_eq!(n.to_der().unwrap(), parse_name("/O=Org/CN=a+UID=b").unwrap().to_der().unwrap());
    }

    /// Found by the `dn_text` fuzz target: `0.4=\\4` printed as `0.4=#0c025c34` (RFC 4514's
    /// hex form for an attribute without a string name) and read back as the text `#0c025c34`.
    #[test]
    fn a_subject_too_long_once_printed_is_refused() {
        // Found by the dn_text fuzz target: 3,432 characters of `E=...` RDNs printed as more than
        // 4,096 (`EMAIL=`), which the parser then refused to read back.
        let typed = vec!["E=xxxxxx"; 400].join(",");
        assert!(typed.len() < MAX_SUBJECT_LEN);
        let err = parse_name(&typed).expect_err("printed, it is longer than the limit");
        assert!(err.to_string().contains("once written out in full"), "{err}");
        let fits = vec!["E=xxxxxx"; 300].join(",");
        let parsed = parse_name(&fits).expect("printed, it fits");
        assert_eq!(parse_name(&parsed.to_string()).expect("reads back"), parsed);
    }

    #[test]
    fn printed_names_read_back_including_hex_values() {
        for text in [
            "0.4=\\\\4",
            "CN=\\#not hex,O=Unit",
            "CN=#0c05416c696365",
            "2.5.4.3=Alice+0.9=#0101ff",
            "CN=\\20",
            "CN=a\\ ,O=\\  b",
            "CN=\\\u{a0}\u{a0}23 \\sD",
            "CN=\u{a0}x\u{a0}",
        ] {
            let parsed = parse_name(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let printed = parsed.to_string();
            assert_eq!(parse_name(&printed).expect("reads back"), parsed, "{text} printed as {printed}");
        }
        assert_eq!(parse_name("CN=#0c05416c696365").unwrap(), parse_name("CN=Alice").unwrap());
        assert_eq!(parse_name("CN=Alice\n").unwrap(), parse_name("CN=Alice").unwrap());
        for bad in ["CN=#", "CN=#0c0541", "CN=#zz", "CN=#0c05416c69636500", "CN=#0C00", "CN=a\tb", "CN=a\\0Ab"] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }
}
