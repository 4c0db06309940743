//! Module loading: bad libraries are reported clearly and never stop the other modules; one
//! library is loaded once per process; `UKEY_PKCS11_MODULES` names the modules for scripts.

mod common;

use std::path::PathBuf;

use common::{SOFTHSM, carrier, isolated, isolated_env, user};
use ukey_api::{Carrier, Driver, KeyAlgorithm, KeyGenRequest};
use ukey_pkcs11::{ModuleConfig, Pkcs11Config, Pkcs11Driver};

/// p11-kit's trust module: a real PKCS#11 module that needs no service (Debian p11-kit-modules).
const P11KIT_TRUST: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-trust.so";
/// A shared library that is not a PKCS#11 module.
const LIBZ: &str = "/usr/lib/x86_64-linux-gnu/libz.so.1";

fn config(paths: &[PathBuf]) -> Pkcs11Config {
    Pkcs11Config {
        modules: paths.iter().cloned().map(ModuleConfig::new).collect(),
        p11kit: false,
        ..Default::default()
    }
}

#[test]
fn bad_modules_are_reported_and_do_not_stop_the_others() {
    isolated("bad_modules_are_reported_and_do_not_stop_the_others", |rig| {
        assert!(std::path::Path::new(P11KIT_TRUST).exists(), "{P11KIT_TRUST} is missing: install `p11-kit-modules`");
        assert!(std::path::Path::new(LIBZ).exists(), "{LIBZ} is missing: install `zlib1g`");
        // A SoftHSM whose configuration names a token directory that does not exist: its
        // C_Initialize fails (a real failure, not a fixture).
        std::fs::write(&rig.conf, "directories.tokendir = /nonexistent/ukey-test\n").unwrap();
        let text = rig.path("notes.txt");
        std::fs::write(&text, "this is a text file, not a library\n").unwrap();
        let missing = rig.path("libmissing.so");
        let driver = Pkcs11Driver::new(&config(&[
            missing.clone(),
            text.clone(),
            PathBuf::from(LIBZ),
            PathBuf::from(SOFTHSM),
            PathBuf::from(P11KIT_TRUST),
        ]));
        let reports = driver.modules();
        let report = |path: &str| {
            reports
                .iter()
                .find(|r| r.path == std::path::Path::new(path))
                .unwrap_or_else(|| panic!("no report for {path}"))
        };
        let r = report(missing.to_str().unwrap());
        assert!(!r.loaded && r.message.contains("no such file"), "{}", r.message);
        let r = report(text.to_str().unwrap());
        assert!(!r.loaded && r.message.contains("not a loadable library"), "{}", r.message);
        let r = report(LIBZ);
        assert!(!r.loaded && r.message.contains("not a PKCS#11 module"), "{}", r.message);
        assert!(r.message.contains("C_GetFunctionList"), "{}", r.message);
        let r = report(SOFTHSM);
        assert!(!r.loaded && r.message.contains("C_Initialize failed"), "{}", r.message);
        assert!(r.message.contains("SOFTHSM2_CONF"), "{}", r.message);
        let r = report(P11KIT_TRUST);
        assert!(r.loaded, "{}", r.message);
        assert!(r.message.contains("token(s) present"), "{}", r.message);

        // The working module still gives its carrier.
        let carriers = driver.carriers().unwrap();
        assert!(carriers.iter().any(|c| c.info().model == "p11-kit-trust"), "{:?}", carriers.len());
        let status = driver.status();
        assert_eq!(status.iter().filter(|s| !s.ok).count(), 4, "{status:?}");
    });
}

#[test]
fn one_library_is_loaded_once_per_process() {
    isolated("one_library_is_loaded_once_per_process", |rig| {
        rig.init_token("Once");
        let target = std::fs::canonicalize(SOFTHSM).unwrap();
        // Two paths to the same library are one module.
        let both = Pkcs11Driver::new(&config(&[PathBuf::from(SOFTHSM), target.clone()]));
        assert_eq!(both.modules().len(), 1, "{:?}", both.modules());
        // Two drivers share the module; dropping one does not finalise it for the other.
        let first = common::driver();
        let second = Pkcs11Driver::new(&config(&[target]));
        drop(first);
        drop(both);
        let token = carrier(&second, "Once");
        let key = token
            .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "k".into(), id: None }, &user())
            .expect("the module is still initialised");
        assert_eq!(key.algorithm, KeyAlgorithm::P256);
    });
}

#[test]
fn the_environment_names_the_modules_for_scripts() {
    isolated_env("the_environment_names_the_modules_for_scripts", &[(ukey_pkcs11::MODULES_ENV, SOFTHSM)], |rig| {
        rig.init_token("FromEnv");
        // p11kit is on, but the environment variable replaces every other source.
        let driver = Pkcs11Driver::new(&Pkcs11Config::default());
        let reports = driver.modules();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].source, format!("${}", ukey_pkcs11::MODULES_ENV));
        assert!(reports[0].loaded);
        carrier(&driver, "FromEnv");
    });
}
