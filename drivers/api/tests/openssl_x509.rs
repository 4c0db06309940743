//! CSRs and certificates built by ukey are accepted by `openssl req -verify` and
//! `openssl verify`, and OpenSSL's are accepted by ukey.
//!
//! OpenSSL 3.0 facts these tests rely on (checked here): SM2 signatures on requests and
//! certificates verify only with `-vfyopt distid:1234567812345678` (its default id is empty), and
//! `openssl req -verify` exits 0 even when the signature is bad, so its message is checked;
//! `openssl verify -check_ss_sig` ignores `-vfyopt` for an SM2 root's self-signature.

mod common;

use common::{Scratch, openssl, openssl_ok};
use ukey_api::KeyAlgorithm;
use ukey_api::Mechanism;
use ukey_api::crypto::certbuild::EKU_EMAIL_PROTECTION;
use ukey_api::crypto::{
    CertificateOptions, SoftwareKey, build_csr_pem, issue, issue_from_csr, parse_name, pem, self_signed,
    verify_certificate_signature, verify_csr,
};

const SM2_VFY: [&str; 2] = ["-vfyopt", "distid:1234567812345678"];

/// A key for each algorithm; RSA comes from `openssl genpkey` (fast) and is imported.
fn key_for(alg: KeyAlgorithm, scratch: &Scratch) -> SoftwareKey {
    match alg {
        KeyAlgorithm::Rsa { bits } => {
            let path = scratch.path("rsa.key");
            openssl_ok(&[
                &"genpkey",
                &"-algorithm",
                &"RSA",
                &"-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                &"-out",
                &path,
            ]);
            SoftwareKey::from_pkcs8(&std::fs::read(path).unwrap()).unwrap()
        }
        other => SoftwareKey::generate(other).unwrap(),
    }
}

fn vfyopt(alg: KeyAlgorithm) -> Vec<&'static str> {
    if alg == KeyAlgorithm::Sm2 { SM2_VFY.to_vec() } else { Vec::new() }
}

fn req_verify(scratch: &Scratch, csr_pem: &str, extra: &[&str]) -> (bool, String) {
    let path = scratch.write("req.pem", csr_pem.as_bytes());
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"req", &"-verify", &"-in", &path, &"-noout"];
    for e in extra {
        args.push(e);
    }
    let out = openssl(&args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("verify OK") && !text.contains("failure"), text)
}

#[test]
fn csrs_verify_with_openssl_req() {
    for (alg, mech) in [
        (KeyAlgorithm::Sm2, None),
        (KeyAlgorithm::P256, None),
        (KeyAlgorithm::P384, None),
        (KeyAlgorithm::Rsa { bits: 2048 }, None),
        (KeyAlgorithm::Rsa { bits: 2048 }, Some(Mechanism::RsaPssSha256)),
    ] {
        let scratch = Scratch::new();
        let key = key_for(alg, &scratch);
        let csr = build_csr_pem(
            &key,
            "CN=Alice 张,O=Example,OU=IT,C=CN,ST=Beijing,L=Haidian,emailAddress=alice@example.cn",
            mech.as_ref(),
        )
        .unwrap();
        let (ok, text) = req_verify(&scratch, &csr, &vfyopt(alg));
        assert!(ok, "{alg} {mech:?}: {text}");
        // The subject reads back as typed.
        let subj = openssl_ok(&[
            &"req",
            &"-in",
            &scratch.path("req.pem"),
            &"-noout",
            &"-subject",
            &"-nameopt",
            &"RFC2253,-esc_msb",
        ]);
        let subj = String::from_utf8_lossy(&subj.stdout);
        assert!(
            subj.contains("CN=Alice 张,O=Example,OU=IT,C=CN,ST=Beijing,L=Haidian,emailAddress=alice@example.cn"),
            "{subj}"
        );
        if alg == KeyAlgorithm::Sm2 {
            // The SM2 OIDs: SM2-with-SM3 signature, SM2 curve key.
            let text = openssl_ok(&[&"req", &"-in", &scratch.path("req.pem"), &"-noout", &"-text"]);
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(text.contains("SM2-with-SM3"), "{text}");
            assert!(text.contains("ASN1 OID: SM2"), "{text}");
            // Without the GM/T id OpenSSL 3.0 cannot verify it: proof that the id is in the signature.
            assert!(!req_verify(&scratch, &csr, &[]).0);
        }
    }
}

#[test]
fn openssl_csrs_verify_with_ukey_and_get_issued() {
    let scratch = Scratch::new();
    let ca_key = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
    let ca = self_signed(&ca_key, &parse_name("CN=ukey SM2 CA").unwrap(), &CertificateOptions::ca(30)).unwrap();
    let ca_path = scratch.write("ca.pem", pem::certificate_pem(&ca).unwrap().as_bytes());
    for (alg, genpkey, sigopt) in [
        ("SM2", vec!["-algorithm", "SM2"], vec!["-sm3", "-sigopt", "distid:1234567812345678"]),
        ("P-256", vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], vec!["-sha256"]),
    ] {
        let key = scratch.path("k.pem");
        let csr = scratch.path("r.pem");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"genpkey"];
        for a in &genpkey {
            args.push(a);
        }
        args.extend([&"-out" as &dyn AsRef<std::ffi::OsStr>, &key]);
        openssl_ok(&args);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"req", &"-new", &"-key", &key, &"-subj", &"/C=CN/O=Example/CN=Bob", &"-out", &csr];
        for a in &sigopt {
            args.push(a);
        }
        openssl_ok(&args);
        let csr_bytes = std::fs::read(&csr).unwrap();
        let info = verify_csr(&csr_bytes, None).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(info.subject.to_string(), "CN=Bob,O=Example,C=CN");

        let cert = issue_from_csr(&ca_key, &ca, &csr_bytes, &CertificateOptions::end_entity(5)).unwrap();
        let cert_path = scratch.write("bob.pem", pem::certificate_pem(&cert).unwrap().as_bytes());
        let out = openssl_ok(&[&"verify", &SM2_VFY[0], &SM2_VFY[1], &"-CAfile", &ca_path, &cert_path]);
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"), "{alg}");
    }
}

#[test]
fn issued_chains_verify_with_openssl() {
    for (ca_alg, user_alg) in [
        (KeyAlgorithm::Sm2, KeyAlgorithm::Sm2),
        (KeyAlgorithm::P256, KeyAlgorithm::P256),
        (KeyAlgorithm::P384, KeyAlgorithm::P256),
        (KeyAlgorithm::Rsa { bits: 2048 }, KeyAlgorithm::Sm2),
    ] {
        let scratch = Scratch::new();
        let ca_key = key_for(ca_alg, &scratch);
        let ca = self_signed(&ca_key, &parse_name("CN=Test Root,O=ukey,C=CN").unwrap(), &CertificateOptions::ca(3650))
            .unwrap();
        verify_certificate_signature(&ca, ca_key.public_key_spki()).unwrap();
        let user = SoftwareKey::generate(user_alg).unwrap();
        let options =
            CertificateOptions { extended_key_usage: vec![EKU_EMAIL_PROTECTION], ..CertificateOptions::end_entity(30) };
        let cert = issue(&ca_key, &ca, &parse_name("CN=Alice,O=ukey,C=CN").unwrap(), user.public_key_spki(), &options)
            .unwrap();
        let ca_path = scratch.write("ca.pem", pem::certificate_pem(&ca).unwrap().as_bytes());
        let cert_path = scratch.write("user.pem", pem::certificate_pem(&cert).unwrap().as_bytes());
        // -check_ss_sig also checks the root's own signature, except for SM2: OpenSSL 3.0 ignores
        // -vfyopt there (even its own `req -x509 -sigopt distid:...` roots fail), so the SM2
        // root's self-signature is checked by ukey above instead.
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"verify"];
        if ca_alg != KeyAlgorithm::Sm2 {
            args.push(&"-check_ss_sig");
        }
        let extra = vfyopt(ca_alg);
        for e in &extra {
            args.push(e);
        }
        args.extend([&"-CAfile" as &dyn AsRef<std::ffi::OsStr>, &ca_path, &cert_path]);
        let out = openssl_ok(&args);
        assert!(String::from_utf8_lossy(&out.stdout).contains("user.pem: OK"), "{ca_alg}");

        // A certificate from another CA with the same name is refused.
        let other_key = SoftwareKey::generate(ca_alg.min_test_alg()).unwrap();
        let other =
            self_signed(&other_key, &parse_name("CN=Test Root,O=ukey,C=CN").unwrap(), &CertificateOptions::ca(1))
                .unwrap();
        let other_path = scratch.write("other.pem", pem::certificate_pem(&other).unwrap().as_bytes());
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"verify"];
        for e in &extra {
            args.push(e);
        }
        args.extend([&"-CAfile" as &dyn AsRef<std::ffi::OsStr>, &other_path, &cert_path]);
        assert!(!openssl(&args).status.success(), "{ca_alg}: a foreign CA verified the certificate");

        // The extensions came out as intended.
        let text = openssl_ok(&[&"x509", &"-in", &cert_path, &"-noout", &"-text"]);
        let text = String::from_utf8_lossy(&text.stdout);
        for want in [
            "CA:FALSE",
            "Digital Signature, Non Repudiation",
            "E-mail Protection",
            "Subject Key Identifier",
            "Authority Key Identifier",
        ] {
            assert!(text.contains(want), "{ca_alg}: {want} missing in\n{text}");
        }
    }
}

#[test]
fn openssl_self_signed_certificates_verify_with_ukey() {
    let scratch = Scratch::new();
    for (genpkey, sig) in [
        (vec!["-algorithm", "SM2"], vec!["-sm3", "-sigopt", "distid:1234567812345678"]),
        (vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], vec!["-sha384"]),
        (
            vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            vec!["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"],
        ),
    ] {
        let key = scratch.path("k.pem");
        let cert = scratch.path("c.pem");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"genpkey"];
        for a in &genpkey {
            args.push(a);
        }
        args.extend([&"-out" as &dyn AsRef<std::ffi::OsStr>, &key]);
        openssl_ok(&args);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"req",
            &"-x509",
            &"-new",
            &"-key",
            &key,
            &"-subj",
            &"/CN=OpenSSL made",
            &"-days",
            &"2",
            &"-out",
            &cert,
        ];
        for a in &sig {
            args.push(a);
        }
        openssl_ok(&args);
        let der = pem::der_from_pem_or_der(&std::fs::read(&cert).unwrap(), pem::CERTIFICATE).unwrap();
        let info = ukey_api::CertificateInfo::parse(&der).unwrap();
        verify_certificate_signature(&der, &info.public_key).unwrap_or_else(|e| panic!("{genpkey:?}: {e}"));
    }
}

trait TestAlg {
    fn min_test_alg(self) -> KeyAlgorithm;
}

impl TestAlg for KeyAlgorithm {
    /// A fast key of the same family (RSA generation is slow in debug builds; EC stands in).
    fn min_test_alg(self) -> KeyAlgorithm {
        match self {
            KeyAlgorithm::Rsa { .. } => KeyAlgorithm::P256,
            other => other,
        }
    }
}
