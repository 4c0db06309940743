//! CMS SignedData made by ukey verifies with `openssl cms -verify`, and OpenSSL's verifies with
//! ukey, for P-256, P-384 and RSA (PKCS#1 v1.5 and PSS).
//!
//! SM2, as found on OpenSSL 3.0: `openssl cms -sign` cannot make SM2 signatures ("illegal zero
//! content"), `cms -verify` checks SM2 with an EMPTY distinguishing id (not GM/T 0009's), has no
//! option to change it and cannot verify GM/T-id SM2 certificate chains, and does not know the
//! GM/T 0010 content types. So: the OpenSSL-compatible variant (empty id) is checked with
//! `openssl cms -verify -noverify`; the standard variant (GM/T 0009 id, both OID profiles) is
//! checked by OpenSSL another way — the signed attributes and signature are taken out of the
//! message and verified with `openssl dgst -sm3 -sigopt distid:1234567812345678`, the message
//! digest attribute is compared with `openssl dgst -sm3`, and `openssl cms -cmsout -print` /
//! `asn1parse` must parse the structure.

mod common;

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use common::{Scratch, openssl, openssl_ok};
use der::{Decode, Encode};
use ukey_api::crypto::{
    CertificateOptions, CmsOptions, CmsProfile, SoftwareKey, issue, parse_name, pem, self_signed, sign_cms, verify_cms,
    verify_cms_with_ca,
};
use ukey_api::{KeyAlgorithm, Mechanism};

const CONTENT: &[u8] = b"contract text to be signed\r\nline two, binary-safe: \x00\xff\n";

struct Pki {
    scratch: Scratch,
    ca: Vec<u8>,
    user_key: SoftwareKey,
    user_cert: Vec<u8>,
}

fn pki(alg: KeyAlgorithm) -> Pki {
    let scratch = Scratch::new();
    let import = |name: &str, args: &[&str]| {
        let path = scratch.path(name);
        let mut a: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"genpkey"];
        for x in args {
            a.push(x);
        }
        a.extend([&"-out" as &dyn AsRef<std::ffi::OsStr>, &path]);
        openssl_ok(&a);
        SoftwareKey::from_pkcs8(&std::fs::read(path).unwrap()).unwrap()
    };
    let (ca_key, user_key) = match alg {
        KeyAlgorithm::Rsa { .. } => (
            import("ca.key", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
            import("user.key", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        ),
        other => (SoftwareKey::generate(other).unwrap(), SoftwareKey::generate(other).unwrap()),
    };
    let ca = self_signed(&ca_key, &parse_name("CN=CMS Test CA,C=CN").unwrap(), &CertificateOptions::ca(30)).unwrap();
    let user_cert = issue(
        &ca_key,
        &ca,
        &parse_name("CN=Signer,C=CN").unwrap(),
        user_key.public_key_spki(),
        &CertificateOptions::end_entity(30),
    )
    .unwrap();
    scratch.write("ca.pem", pem::certificate_pem(&ca).unwrap().as_bytes());
    scratch.write("content", CONTENT);
    scratch.write("tampered", b"contract text to be signed, changed");
    Pki { scratch, ca, user_key, user_cert }
}

fn openssl_cms_verify(p: &Pki, cms: &[u8], content: &str, chain: bool) -> std::process::Output {
    let path = p.scratch.write("msg.p7s", cms);
    let content_path = p.scratch.path(content);
    let ca = p.scratch.path("ca.pem");
    let out_path = p.scratch.path("out");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"cms", &"-verify", &"-binary", &"-inform", &"DER", &"-in", &path, &"-content", &content_path];
    if chain {
        args.extend([&"-CAfile" as &dyn AsRef<std::ffi::OsStr>, &ca]);
    } else {
        args.push(&"-noverify");
    }
    args.extend([&"-out" as &dyn AsRef<std::ffi::OsStr>, &out_path]);
    openssl(&args)
}

fn assert_openssl_accepts(p: &Pki, cms: &[u8], chain: bool, what: &str) {
    let out = openssl_cms_verify(p, cms, "content", chain);
    assert!(out.status.success(), "{what}: openssl cms -verify refused:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(p.scratch.read("out"), CONTENT, "{what}: openssl output differs from the content");
    let out = openssl_cms_verify(p, cms, "tampered", chain);
    assert!(!out.status.success(), "{what}: openssl accepted tampered content");
}

#[test]
fn ukey_cms_verifies_with_openssl() {
    for (alg, mech) in [
        (KeyAlgorithm::P256, None),
        (KeyAlgorithm::P384, Some(Mechanism::EcdsaSha384)),
        (KeyAlgorithm::Rsa { bits: 2048 }, None),
        (KeyAlgorithm::Rsa { bits: 2048 }, Some(Mechanism::RsaPssSha256)),
    ] {
        let p = pki(alg);
        for detached in [true, false] {
            let opts = CmsOptions { detached, mechanism: mech.clone(), ..Default::default() };
            let cms = sign_cms(&p.user_key, &p.user_cert, CONTENT, &opts).unwrap();
            assert_openssl_accepts(&p, &cms, true, &format!("{alg} {mech:?} detached={detached}"));
            // ukey agrees, including the chain to the CA.
            let v = verify_cms_with_ca(&cms, if detached { Some(CONTENT) } else { None }, &p.ca, None).unwrap();
            assert_eq!(v.content, CONTENT);
        }
    }
}

#[test]
fn openssl_cms_verifies_with_ukey() {
    for (alg, extra) in [
        (KeyAlgorithm::P256, vec![]),
        (KeyAlgorithm::Rsa { bits: 2048 }, vec![]),
        (KeyAlgorithm::Rsa { bits: 2048 }, vec!["-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:32"]),
    ] {
        let p = pki(alg);
        let key_path = p.scratch.write("signer.key", p.user_key.to_pkcs8_pem().unwrap().as_bytes());
        let cert_path = p.scratch.write("signer.pem", pem::certificate_pem(&p.user_cert).unwrap().as_bytes());
        let content = p.scratch.path("content");
        for nodetach in [false, true] {
            let out_path = p.scratch.path("openssl.p7s");
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
                &"cms",
                &"-sign",
                &"-binary",
                &"-md",
                &"sha256",
                &"-in",
                &content,
                &"-signer",
                &cert_path,
                &"-inkey",
                &key_path,
                &"-outform",
                &"DER",
                &"-out",
                &out_path,
            ];
            if nodetach {
                args.push(&"-nodetach");
            }
            for e in &extra {
                args.push(e);
            }
            openssl_ok(&args);
            let cms = std::fs::read(&out_path).unwrap();
            let given = if nodetach { None } else { Some(CONTENT) };
            let v = verify_cms_with_ca(&cms, given, &p.ca, None).unwrap_or_else(|e| panic!("{alg} {extra:?}: {e}"));
            assert_eq!(v.content, CONTENT);
            assert_eq!(v.signer_certificate, p.user_cert);
            assert!(v.signing_time.is_some());
            let err = verify_cms(&cms, Some(b"contract text to be signed, changed"), None).unwrap_err();
            assert!(err.to_string().contains("does not verify") || err.to_string().contains("differs"), "{err}");
        }
    }
}

#[test]
fn sm2_cms_with_openssl_empty_id_verifies_with_openssl() {
    let p = pki(KeyAlgorithm::Sm2);
    for detached in [true, false] {
        let cms = sign_cms(&p.user_key, &p.user_cert, CONTENT, &CmsOptions::openssl_sm2(detached)).unwrap();
        assert_openssl_accepts(&p, &cms, false, &format!("SM2 empty id detached={detached}"));
        let v = verify_cms(&cms, if detached { Some(CONTENT) } else { None }, None).unwrap();
        assert_eq!(v.mechanism, Mechanism::Sm2Sm3 { user_id: Vec::new() });
    }
}

/// The signed attributes (as the SET OF that is signed) and the signature of the only signer.
fn signed_attributes_and_signature(cms: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let info = ContentInfo::from_der(cms).unwrap();
    let sd: SignedData = info.content.decode_as().unwrap();
    let si = sd.signer_infos.0.iter().next().unwrap();
    let attrs = si.signed_attrs.as_ref().unwrap().to_der().unwrap();
    let md = si
        .signed_attrs
        .as_ref()
        .unwrap()
        .iter()
        .find(|a| a.oid == ukey_api::crypto::cms::OID_ATTR_MESSAGE_DIGEST)
        .unwrap()
        .values
        .get(0)
        .unwrap()
        .decode_as::<der::asn1::OctetString>()
        .unwrap()
        .as_bytes()
        .to_vec();
    (attrs, si.signature.as_bytes().to_vec(), md)
}

#[test]
fn sm2_cms_with_gmt_id_is_confirmed_by_openssl_primitives() {
    let p = pki(KeyAlgorithm::Sm2);
    let public = p.scratch.write("user.pub.pem", pem::public_key_pem(p.user_key.public_key_spki()).unwrap().as_bytes());
    for profile in [CmsProfile::Rfc5652, CmsProfile::Gmt0010] {
        for detached in [true, false] {
            let opts = CmsOptions { detached, profile, ..Default::default() };
            let cms = sign_cms(&p.user_key, &p.user_cert, CONTENT, &opts).unwrap();
            let v = verify_cms_with_ca(&cms, if detached { Some(CONTENT) } else { None }, &p.ca, None).unwrap();
            assert_eq!(v.profile, profile);
            assert_eq!(v.mechanism, ukey_api::KeyAlgorithm::Sm2.default_mechanism());

            // OpenSSL parses the structure...
            let path = p.scratch.write("sm2.p7s", &cms);
            let parsed = openssl_ok(&[&"asn1parse", &"-inform", &"DER", &"-in", &path]);
            let parsed = String::from_utf8_lossy(&parsed.stdout);
            match profile {
                CmsProfile::Rfc5652 => {
                    assert!(parsed.contains("pkcs7-signedData"), "{parsed}");
                    let printed = openssl_ok(&[&"cms", &"-cmsout", &"-print", &"-inform", &"DER", &"-in", &path]);
                    let printed = String::from_utf8_lossy(&printed.stdout);
                    assert!(printed.contains("1.2.156.10197.1.501") || printed.contains("SM2-with-SM3"), "{printed}");
                }
                CmsProfile::Gmt0010 => {
                    assert!(parsed.contains("1.2.156.10197.6.1.4.2.2"), "{parsed}");
                    assert!(parsed.contains("1.2.156.10197.6.1.4.2.1"), "{parsed}");
                    assert!(parsed.contains("1.2.156.10197.1.301.1"), "{parsed}");
                }
            }
            // ...its SM3 of the content is the signed message digest...
            let (attrs, sig, md) = signed_attributes_and_signature(&cms);
            let digest = openssl_ok(&[&"dgst", &"-sm3", &"-r", &p.scratch.path("content")]);
            let digest = String::from_utf8_lossy(&digest.stdout);
            assert_eq!(digest.split_whitespace().next().unwrap(), hex::encode(&md));
            // ...and it verifies the SM2 signature over the signed attributes with the GM/T id.
            let attrs_path = p.scratch.write("attrs.der", &attrs);
            let sig_path = p.scratch.write("attrs.sig", &sig);
            let out = openssl_ok(&[
                &"dgst",
                &"-sm3",
                &"-verify",
                &public,
                &"-sigopt",
                &"distid:1234567812345678",
                &"-signature",
                &sig_path,
                &attrs_path,
            ]);
            assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
        }
    }
}
