//! Every PKCS#11 error code from every call: ukey's PKCS#11 driver is driven through a shim
//! module (`fault-module/`, libukey_p11_fault.so) that forwards to the real SoftHSM2 and makes
//! call number N of an operation fail with a chosen `CKR_*` code. For each operation (starting
//! the driver and finding the token, signing, importing a certificate, changing the PIN), every
//! call the operation makes is failed with every code PKCS#11 defines. Key generation is failed
//! three ways at every call: refused, done by SoftHSM but reported failed (a token that made the
//! pair and lost the answer), and failing from that call on (a token pulled for good, so nothing
//! can be cleaned up until it is back); after each, with the fault cleared, generating the same
//! key again must succeed and leave exactly one complete pair.
//!
//! Why a shim: no real module can be made to fail on demand. SoftHSM2 never returns most codes
//! (it never locks a PIN, never loses its device, never runs out of memory), and the ones it
//! does return need states that cannot be reached at an arbitrary call. The shim only refuses
//! calls; every call it lets through is SoftHSM's own, so the objects and PIN checks are real.
//!
//! Each failure must end in a mapped, clear ukey error (no panic; a `Device` error names the
//! code; removal codes read as a removed token; no PIN in any message), or, where the driver
//! tolerates the failure, in a correct result (a signature that verifies). Afterwards SoftHSM's
//! stored objects are intact, checked with `pkcs11-tool` (which does not go through the shim),
//! and the token still signs with its original key and PIN.

mod common;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use common::{PIN, isolated_env, pin, user};
use cryptoki_sys::*;
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, SignData, parse_name, self_signed, verify_signature};
use ukey_api::{
    Carrier, CertificateImport, Credential, Driver, Error, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, Pin,
    PinRole, SignInput,
};
use ukey_pkcs11::{Pkcs11Carrier, Pkcs11Config, Pkcs11Driver};

const LABEL: &str = "Faults";
const NEW_PIN: &str = "24681357";
const KEPT: u8 = 0x01;

macro_rules! codes {
    ($($code:ident)*) => { &[$((stringify!($code), $code)),*] };
}

/// Every error code of PKCS#11 3.2 (everything but `CKR_OK`).
const CODES: &[(&str, CK_RV)] = codes![
    CKR_CANCEL CKR_HOST_MEMORY CKR_SLOT_ID_INVALID CKR_GENERAL_ERROR CKR_FUNCTION_FAILED CKR_ARGUMENTS_BAD
    CKR_NO_EVENT CKR_NEED_TO_CREATE_THREADS CKR_CANT_LOCK CKR_ATTRIBUTE_READ_ONLY CKR_ATTRIBUTE_SENSITIVE
    CKR_ATTRIBUTE_TYPE_INVALID CKR_ATTRIBUTE_VALUE_INVALID CKR_ACTION_PROHIBITED CKR_DATA_INVALID
    CKR_DATA_LEN_RANGE CKR_DEVICE_ERROR CKR_DEVICE_MEMORY CKR_DEVICE_REMOVED CKR_ENCRYPTED_DATA_INVALID
    CKR_ENCRYPTED_DATA_LEN_RANGE CKR_AEAD_DECRYPT_FAILED CKR_FUNCTION_CANCELED CKR_FUNCTION_NOT_PARALLEL
    CKR_FUNCTION_NOT_SUPPORTED CKR_KEY_HANDLE_INVALID CKR_KEY_SIZE_RANGE CKR_KEY_TYPE_INCONSISTENT
    CKR_KEY_NOT_NEEDED CKR_KEY_CHANGED CKR_KEY_NEEDED CKR_KEY_INDIGESTIBLE CKR_KEY_FUNCTION_NOT_PERMITTED
    CKR_KEY_NOT_WRAPPABLE CKR_KEY_UNEXTRACTABLE CKR_MECHANISM_INVALID CKR_MECHANISM_PARAM_INVALID
    CKR_OBJECT_HANDLE_INVALID CKR_OPERATION_ACTIVE CKR_OPERATION_NOT_INITIALIZED CKR_PIN_INCORRECT
    CKR_PIN_INVALID CKR_PIN_LEN_RANGE CKR_PIN_EXPIRED CKR_PIN_LOCKED CKR_SESSION_CLOSED CKR_SESSION_COUNT
    CKR_SESSION_HANDLE_INVALID CKR_SESSION_PARALLEL_NOT_SUPPORTED CKR_SESSION_READ_ONLY CKR_SESSION_EXISTS
    CKR_SESSION_READ_ONLY_EXISTS CKR_SESSION_READ_WRITE_SO_EXISTS CKR_SIGNATURE_INVALID CKR_SIGNATURE_LEN_RANGE
    CKR_TEMPLATE_INCOMPLETE CKR_TEMPLATE_INCONSISTENT CKR_TOKEN_NOT_PRESENT CKR_TOKEN_NOT_RECOGNIZED
    CKR_TOKEN_WRITE_PROTECTED CKR_UNWRAPPING_KEY_HANDLE_INVALID CKR_UNWRAPPING_KEY_SIZE_RANGE
    CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT CKR_USER_ALREADY_LOGGED_IN CKR_USER_NOT_LOGGED_IN
    CKR_USER_PIN_NOT_INITIALIZED CKR_USER_TYPE_INVALID CKR_USER_ANOTHER_ALREADY_LOGGED_IN CKR_USER_TOO_MANY_TYPES
    CKR_WRAPPED_KEY_INVALID CKR_WRAPPED_KEY_LEN_RANGE CKR_WRAPPING_KEY_HANDLE_INVALID CKR_WRAPPING_KEY_SIZE_RANGE
    CKR_WRAPPING_KEY_TYPE_INCONSISTENT CKR_RANDOM_SEED_NOT_SUPPORTED CKR_RANDOM_NO_RNG CKR_DOMAIN_PARAMS_INVALID
    CKR_CURVE_NOT_SUPPORTED CKR_BUFFER_TOO_SMALL CKR_SAVED_STATE_INVALID CKR_INFORMATION_SENSITIVE
    CKR_STATE_UNSAVEABLE CKR_CRYPTOKI_NOT_INITIALIZED CKR_CRYPTOKI_ALREADY_INITIALIZED CKR_MUTEX_BAD
    CKR_MUTEX_NOT_LOCKED CKR_NEW_PIN_MODE CKR_NEXT_OTP CKR_EXCEEDED_MAX_ITERATIONS CKR_FIPS_SELF_TEST_FAILED
    CKR_LIBRARY_LOAD_FAILED CKR_PIN_TOO_WEAK CKR_PUBLIC_KEY_INVALID CKR_FUNCTION_REJECTED
    CKR_TOKEN_RESOURCE_EXCEEDED CKR_OPERATION_CANCEL_FAILED CKR_KEY_EXHAUSTED CKR_PENDING
    CKR_SESSION_ASYNC_NOT_SUPPORTED CKR_SEED_RANDOM_REQUIRED CKR_OPERATION_NOT_VALIDATED
    CKR_TOKEN_NOT_INITIALIZED CKR_PARAMETER_SET_NOT_SUPPORTED CKR_VENDOR_DEFINED
];

/// The shim, built before the tests (it is a dev-dependency). Cargo leaves the cdylib in the test
/// binary's own `deps/` directory when it is built as a dependency (`cargo test --workspace`), and
/// also copies it up to `target/<profile>/` when it is built as a package of its own.
fn shim() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let deps = exe.parent().expect("target/<profile>/deps");
    let candidates: Vec<PathBuf> =
        [Some(deps), deps.parent()].into_iter().flatten().map(|d| d.join("libukey_p11_fault.so")).collect();
    candidates.iter().find(|p| p.exists()).cloned().unwrap_or_else(|| {
        panic!(
            "libukey_p11_fault.so is missing (looked in {candidates:?}): it is built by `cargo test -p ukey-pkcs11` \
             (dev-dependency ukey-pkcs11-fault-module)"
        )
    })
}

/// Runs `body` in its own SoftHSM child process with the shim's plan and trace files.
fn with_faults(test_name: &str, body: impl FnOnce(&common::Rig, &Faults)) {
    let parent_dir = match std::env::var_os("UKEY_P11_FAULT_PLAN") {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("a temporary directory")),
    };
    let (plan, trace) = match &parent_dir {
        Some(dir) => (dir.path().join("plan"), dir.path().join("trace")),
        None => (
            PathBuf::from(std::env::var_os("UKEY_P11_FAULT_PLAN").expect("set by the parent")),
            PathBuf::from(std::env::var_os("UKEY_P11_FAULT_TRACE").expect("set by the parent")),
        ),
    };
    let (plan_text, trace_text) = (plan.display().to_string(), trace.display().to_string());
    let env = [("UKEY_P11_FAULT_PLAN", plan_text.as_str()), ("UKEY_P11_FAULT_TRACE", trace_text.as_str())];
    isolated_env(test_name, &env, |rig| {
        let faults = Faults { plan, trace, generation: Cell::new(0), module: shim() };
        faults.arm(0, CKR_OK);
        body(rig, &faults);
    });
}

/// How the shim fails the planned call (its `MODE`).
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The call does not reach SoftHSM.
    Refuse,
    /// SoftHSM does the call; its answer is replaced by the error.
    After,
    /// The call and every later one fail (a token pulled for good).
    Gone,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Refuse => "",
            Mode::After => "after",
            Mode::Gone => "gone",
        }
    }
}

/// The shim's plan: which call fails with which code.
struct Faults {
    plan: PathBuf,
    trace: PathBuf,
    generation: Cell<u64>,
    module: PathBuf,
}

impl Faults {
    /// Fails call `nth` (from now on, 1-based; 0: none) with `rv`.
    fn arm(&self, nth: usize, rv: CK_RV) {
        self.arm_mode(nth, rv, Mode::Refuse);
    }

    /// Fails call `nth` with `rv` the way `mode` says.
    fn arm_mode(&self, nth: usize, rv: CK_RV, mode: Mode) {
        self.generation.set(self.generation.get() + 1);
        std::fs::write(&self.trace, b"").expect("clear the trace");
        let plan = format!("g{} {nth} {rv} {}", self.generation.get(), mode.word());
        std::fs::write(&self.plan, plan).expect("write the plan");
    }

    /// The functions called since the last `arm`, in order.
    fn calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.trace).unwrap_or_default();
        let generation = format!("g{}", self.generation.get());
        text.lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                (parts.next() == Some(generation.as_str())).then(|| parts.nth(1).unwrap_or_default().to_string())
            })
            .collect()
    }

    fn driver(&self) -> Pkcs11Driver {
        Pkcs11Driver::new(&Pkcs11Config::only([self.module.clone()]))
    }
}

fn find(driver: &Pkcs11Driver) -> Result<Arc<Pkcs11Carrier>, String> {
    let carriers = driver.pkcs11_carriers().map_err(|e| e.to_string())?;
    carriers.into_iter().find(|c| c.info().label == LABEL).ok_or_else(|| {
        let mut text: Vec<String> = driver.modules().into_iter().map(|m| m.message).collect();
        text.extend(driver.notes().iter().map(|n| n.message.clone()));
        text.extend(driver.status().into_iter().map(|s| s.message));
        text.join("; ")
    })
}

/// The name cryptoki gives a code (its `RvError` variant), as ukey's messages show it.
fn cryptoki_name(rv: CK_RV) -> String {
    match cryptoki::error::Rv::from(rv) {
        cryptoki::error::Rv::Error(e) => format!("{e:?}"),
        cryptoki::error::Rv::Ok => "Ok".into(),
    }
}

/// The contract: a mapped error a person can act on, never a PIN.
fn assert_clear(err: &Error, case: &str, rv: CK_RV, function: &str) {
    let text = err.to_string();
    let debug = format!("{err:?}");
    assert!(rv != CKR_OK, "{case}: failed although nothing was injected: {err}");
    assert!(!text.trim().is_empty(), "{case}: empty error message");
    for secret in [PIN, NEW_PIN] {
        assert!(!text.contains(secret) && !debug.contains(secret), "{case}: a PIN is in the error: {text}");
    }
    let removal = [CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED];
    match err {
        // A device error names a PKCS#11 code (the injected one, or the one it led to), or is one
        // of the messages that say what happened in words.
        Error::Device(m) => assert!(
            CODES.iter().any(|(_, code)| m.contains(&cryptoki_name(*code)))
                || (rv == CKR_DEVICE_MEMORY && m.contains("token is full"))
                || (rv == CKR_USER_PIN_NOT_INITIALIZED && m.contains("no user PIN yet"))
                || m.contains("generated the key but shows no public key"),
            "{case}: a device error that names no code ({}): {m}",
            cryptoki_name(rv)
        ),
        // Clean-up calls whose errors cryptoki or the driver rightly ignore do not count.
        _ if removal.contains(&rv)
            && !matches!(function, "C_Finalize" | "C_Logout" | "C_CloseSession" | "C_FindObjectsFinal") =>
        {
            assert!(
                matches!(err, Error::TokenRemoved | Error::NotFound(_)),
                "{case}: a removal code should read as a removed token, got {err:?}"
            )
        }
        _ => {}
    }
}

/// Runs `op` with call `n` failed by every code. After each, `probe` (an operation that works on
/// any healthy token) must succeed at the latest on its second try: the driver recovers from any
/// fault within one operation. Then `check` judges the outcome. A panic anywhere is a failure
/// naming the call and the code.
fn every_code_at_every_call<T>(
    faults: &Faults,
    what: &str,
    op: impl FnMut() -> Result<T, Error>,
    check: impl FnMut(&str, Result<T, Error>, CK_RV, &str),
    probe: impl FnMut() -> Result<(), Error>,
) -> usize {
    each_fault_at_every_call(faults, what, Mode::Refuse, CODES, None, op, check, probe)
}

/// [`every_code_at_every_call`] with the shim's `mode`, a choice of `codes`, and optionally only
/// at the calls to one function (`at`).
#[allow(clippy::too_many_arguments)]
fn each_fault_at_every_call<T>(
    faults: &Faults,
    what: &str,
    mode: Mode,
    codes: &[(&str, CK_RV)],
    at: Option<&str>,
    mut op: impl FnMut() -> Result<T, Error>,
    mut check: impl FnMut(&str, Result<T, Error>, CK_RV, &str),
    mut probe: impl FnMut() -> Result<(), Error>,
) -> usize {
    faults.arm(0, CKR_OK);
    let dry = catch_unwind(AssertUnwindSafe(&mut op)).unwrap_or_else(|_| panic!("{what}: panicked without a fault"));
    let calls = faults.calls();
    check(&format!("{what} without a fault"), dry, CKR_OK, "");
    assert!(!calls.is_empty(), "{what}: the shim saw no call (is the driver loading {}?)", faults.module.display());
    let (mut cases, mut late) = (0, 0);
    for (i, planned) in calls.iter().enumerate() {
        if at.is_some_and(|f| f != planned) {
            continue;
        }
        for (name, rv) in codes {
            faults.arm_mode(i + 1, *rv, mode);
            let outcome = catch_unwind(AssertUnwindSafe(&mut op));
            let made = faults.calls();
            faults.arm(0, CKR_OK);
            // The call that failed, by this run's own trace (runs differ: kept sessions, retries).
            let (function, injected) = match made.get(i) {
                Some(f) => (f.clone(), *rv),
                None => ("(not reached)".to_string(), CKR_OK),
            };
            let case = format!(
                "{what}: call {} ({function}) failing with {name} ({mode:?}) [calls made: {}]",
                i + 1,
                made.join(" ")
            );
            let outcome = outcome.unwrap_or_else(|_| panic!("{case}: panicked"));
            let healthy =
                catch_unwind(AssertUnwindSafe(&mut probe)).unwrap_or_else(|_| panic!("{case}: probe panicked"));
            if healthy.is_err() {
                late += 1;
                catch_unwind(AssertUnwindSafe(&mut probe))
                    .unwrap_or_else(|_| panic!("{case}: probe panicked"))
                    .unwrap_or_else(|e| panic!("{case}: the driver did not recover within one operation: {e}"));
            }
            check(&case, outcome, injected, &function);
            cases += 1;
        }
    }
    eprintln!(
        "{what}: {} calls{} x {} codes = {cases} cases; {late} left the driver needing one failed operation to \
         recover",
        calls.len(),
        at.map(|f| format!(" (only {f})")).unwrap_or_default(),
        codes.len()
    );
    cases
}

/// `pkcs11-tool`'s view of the token's objects (straight to SoftHSM, not through the shim), as
/// one block of lines per object.
fn stored_objects(rig: &common::Rig, pin: &str) -> Vec<String> {
    let out = rig.pkcs11_tool_ok(&["--token-label", LABEL, "--login", "--pin", pin, "--list-objects"]);
    let mut blocks: Vec<String> = Vec::new();
    for line in out.lines() {
        if !line.starts_with(' ') && !line.starts_with('\t') {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line.trim());
            block.push('\n');
        }
    }
    blocks.retain(|b| b.contains("Object;"));
    blocks.sort();
    blocks
}

fn input(message: &[u8]) -> SignInput {
    use sha2::Digest;
    SignInput { digest: sha2::Sha256::digest(message).to_vec(), message: Some(message.to_vec()) }
}

/// A token with the kept key (id 01) and its certificate; returns the key's SPKI.
fn set_up(rig: &common::Rig, faults: &Faults) -> Vec<u8> {
    rig.init_token(LABEL);
    let driver = faults.driver();
    let token = find(&driver).expect("the token without faults");
    let key = token
        .generate_key(
            &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "kept".into(), id: Some(ObjectId(vec![KEPT])) },
            &user(),
        )
        .expect("kept key");
    let spki = key.public_key.clone().expect("public key");
    let der = certificate(token.as_ref(), &spki, "Kept");
    token
        .import_certificate(&CertificateImport { der, label: None, id: Some(ObjectId(vec![KEPT])) }, &user())
        .expect("kept certificate");
    spki
}

fn certificate(token: &dyn Carrier, spki: &[u8], cn: &str) -> Vec<u8> {
    let credential = user();
    let signer = CarrierKeySigner::new(token, ObjectId(vec![KEPT]), spki.to_vec(), &credential).expect("signer");
    self_signed(&signer, &parse_name(&format!("CN={cn}")).expect("name"), &CertificateOptions::default())
        .expect("certificate")
}

/// After a run: SoftHSM still holds the objects it held before, and the kept key signs.
fn assert_intact(rig: &common::Rig, faults: &Faults, before: &[String], spki: &[u8]) {
    let after = stored_objects(rig, PIN);
    for object in before {
        assert!(after.contains(object), "an object was lost or changed:\n{object}\nnow:\n{}", after.join("\n"));
    }
    faults.arm(0, CKR_OK);
    let driver = faults.driver();
    let token = find(&driver).expect("the token after the faults");
    let sig = token.sign(&ObjectId(vec![KEPT]), &Mechanism::EcdsaSha256, &input(b"after"), &user()).expect("sign");
    verify_signature(spki, &Mechanism::EcdsaSha256, SignData::Message(b"after"), &sig).expect("the signature verifies");
}

#[test]
fn starting_the_driver_and_finding_the_token() {
    with_faults("starting_the_driver_and_finding_the_token", |rig, faults| {
        let spki = set_up(rig, faults);
        let before = stored_objects(rig, PIN);
        let cases = every_code_at_every_call(
            faults,
            "start",
            || {
                let driver = faults.driver();
                let found = find(&driver);
                let objects = found.map(|t| t.objects().map(|o| (o.keys.len(), o.problems.len())));
                match objects {
                    Ok(result) => result,
                    Err(report) => Err(Error::Device(report)),
                }
            },
            |case, outcome, rv, function| match outcome {
                // The kept key is listed, or the listing reports the object it could not read.
                Ok((keys, problems)) => assert!(keys == 1 || problems > 0, "{case}: the kept key vanished silently"),
                Err(e) => assert_clear(&e, case, rv, function),
            },
            || find(&faults.driver()).map(|_| ()).map_err(Error::Device),
        );
        assert!(cases > 0);
        assert_intact(rig, faults, &before, &spki);
    });
}

#[test]
fn signing() {
    with_faults("signing", |rig, faults| {
        let spki = set_up(rig, faults);
        let before = stored_objects(rig, PIN);
        faults.arm(0, CKR_OK);
        let driver = faults.driver();
        let token = find(&driver).expect("token");
        every_code_at_every_call(
            faults,
            "sign",
            || token.sign(&ObjectId(vec![KEPT]), &Mechanism::EcdsaSha256, &input(b"fault"), &user()),
            |case, outcome, rv, function| match outcome {
                Ok(sig) => verify_signature(&spki, &Mechanism::EcdsaSha256, SignData::Message(b"fault"), &sig)
                    .unwrap_or_else(|e| panic!("{case}: a signature that does not verify: {e}")),
                Err(e) => assert_clear(&e, case, rv, function),
            },
            || token.objects().map(|_| ()),
        );
        drop(token);
        drop(driver);
        assert_eq!(stored_objects(rig, PIN), before, "signing changed the stored objects");
        assert_intact(rig, faults, &before, &spki);
    });
}

#[test]
fn importing_a_certificate() {
    with_faults("importing_a_certificate", |rig, faults| {
        let spki = set_up(rig, faults);
        faults.arm(0, CKR_OK);
        let driver = faults.driver();
        let token = find(&driver).expect("token");
        let second = token
            .generate_key(
                &KeyGenRequest { algorithm: KeyAlgorithm::P256, label: "second".into(), id: Some(ObjectId(vec![2])) },
                &user(),
            )
            .expect("second key");
        let credential = user();
        let signer = CarrierKeySigner::new(
            token.as_ref(),
            ObjectId(vec![2]),
            second.public_key.clone().expect("public key"),
            &credential,
        )
        .expect("signer");
        let der = self_signed(&signer, &parse_name("CN=Second").expect("name"), &CertificateOptions::default())
            .expect("cert");
        let before = stored_objects(rig, PIN);
        let request = CertificateImport { der, label: Some("second-cert".into()), id: Some(ObjectId(vec![2])) };
        every_code_at_every_call(
            faults,
            "import",
            || token.import_certificate(&request, &user()),
            |case, outcome, rv, function| {
                match outcome {
                    Ok(cert) => assert_eq!(cert.info.der, request.der, "{case}: another certificate was stored"),
                    Err(e) => assert_clear(&e, case, rv, function),
                }
                // Take a stored certificate away again (straight to SoftHSM) so every case stores it.
                let stored = token.objects().expect("objects without a fault");
                if !stored.certificates.iter().any(|c| c.id == ObjectId(vec![2])) {
                    return;
                }
                rig.pkcs11_tool_ok(&[
                    "--token-label",
                    LABEL,
                    "--login",
                    "--pin",
                    PIN,
                    "--delete-object",
                    "--type",
                    "cert",
                    "--id",
                    "02",
                ]);
            },
            || token.objects().map(|_| ()),
        );
        drop(token);
        drop(driver);
        assert_intact(rig, faults, &before, &spki);
    });
}

#[test]
fn changing_the_pin() {
    with_faults("changing_the_pin", |rig, faults| {
        let spki = set_up(rig, faults);
        let before = stored_objects(rig, PIN);
        faults.arm(0, CKR_OK);
        let driver = faults.driver();
        let token = find(&driver).expect("token");
        let new = Pin::new(NEW_PIN).expect("pin");
        every_code_at_every_call(
            faults,
            "pin change",
            || token.change_pin(PinRole::User, &user(), &new),
            |case, outcome, rv, function| {
                if let Err(e) = &outcome {
                    assert_clear(e, case, rv, function);
                }
                // The PIN is the old one or the new one, never anything else; put the old one back.
                let old_works = token.verify_pin(PinRole::User, &user()).is_ok();
                let new_works = token.verify_pin(PinRole::User, &pin(NEW_PIN)).is_ok();
                assert!(old_works != new_works, "{case}: old PIN works: {old_works}, new PIN works: {new_works}");
                if outcome.is_ok() {
                    assert!(new_works, "{case}: reported changed, but the new PIN does not work");
                }
                if new_works {
                    token
                        .change_pin(PinRole::User, &Credential::Pin(new.clone()), &Pin::new(PIN).expect("pin"))
                        .unwrap_or_else(|e| panic!("{case}: restoring the PIN: {e}"));
                }
            },
            || token.objects().map(|_| ()),
        );
        drop(token);
        drop(driver);
        assert_eq!(stored_objects(rig, PIN), before, "a PIN change changed the stored objects");
        assert_intact(rig, faults, &before, &spki);
    });
}

/// Codes for key generation at every call, in each mode: the ones that end the session, one that
/// leaves it stuck, and some that leave it open. (Every code is tried where the token made the
/// pair and lost the answer, `C_GenerateKeyPair` in the `after` mode; the other calls meet every
/// code in the tests above.) Each case generates a key twice, so all 103 codes at all calls in
/// all modes would take most of an hour.
const KEYGEN_CODES: &[(&str, CK_RV)] = codes![
    CKR_DEVICE_REMOVED CKR_TOKEN_NOT_PRESENT CKR_SESSION_HANDLE_INVALID CKR_OPERATION_ACTIVE CKR_GENERAL_ERROR
    CKR_DEVICE_MEMORY CKR_ATTRIBUTE_READ_ONLY
];

const GENERATED: &str = "generated";

/// The token holds exactly one key labelled [`GENERATED`], and it is `key`: its public key is
/// listed under its id and its private key (the only one with that id) signs for that public key.
/// No note of a generation in progress is left, and the kept key still has its certificate.
fn assert_one_generated(token: &Pkcs11Carrier, key: &ukey_api::KeyObject, case: &str) {
    let listed = token.objects().unwrap_or_else(|e| panic!("{case}: listing: {e}"));
    let labelled: Vec<_> = listed.keys.iter().filter(|k| k.label == GENERATED).collect();
    assert_eq!(labelled.len(), 1, "{case}: keys labelled `{GENERATED}`: {labelled:?}");
    assert_eq!(labelled[0].id, key.id, "{case}: the listed key has another id than the one reported");
    assert_eq!(labelled[0].public_key, key.public_key, "{case}: the listed public key is not the reported one");
    let notes: Vec<_> = listed.data.iter().filter(|d| d.application == ukey_pkcs11::pending::APPLICATION).collect();
    assert!(notes.is_empty(), "{case}: a note of a generation in progress was left: {notes:?}");
    assert!(
        listed.keys.iter().any(|k| k.id == ObjectId(vec![KEPT]) && k.certificate.is_some()),
        "{case}: the kept key or its certificate is gone: {:?}",
        listed.keys
    );
    let spki = key.public_key.clone().unwrap_or_else(|| panic!("{case}: no public key reported"));
    let sig = token
        .sign(&key.id, &Mechanism::EcdsaSha256, &input(b"generated"), &user())
        .unwrap_or_else(|e| panic!("{case}: signing with the new key: {e}"));
    verify_signature(&spki, &Mechanism::EcdsaSha256, SignData::Message(b"generated"), &sig)
        .unwrap_or_else(|e| panic!("{case}: the new key's signature does not verify: {e}"));
}

#[test]
fn generating_a_key() {
    with_faults("generating_a_key", |rig, faults| {
        let spki = set_up(rig, faults);
        let before = stored_objects(rig, PIN);
        faults.arm(0, CKR_OK);
        let driver = faults.driver();
        let token = find(&driver).expect("token");
        let request = KeyGenRequest { algorithm: KeyAlgorithm::P256, label: GENERATED.into(), id: None };
        let plans = [
            (Mode::Refuse, KEYGEN_CODES, None),
            (Mode::After, KEYGEN_CODES, None),
            (Mode::Gone, KEYGEN_CODES, None),
            (Mode::After, CODES, Some("C_GenerateKeyPair")),
        ];
        for (mode, codes, at) in plans {
            each_fault_at_every_call(
                faults,
                &format!("keygen ({mode:?})"),
                mode,
                codes,
                at,
                || token.generate_key(&request, &user()),
                |case, outcome, rv, function| {
                    let key = match outcome {
                        Ok(key) => key,
                        Err(e) => {
                            assert_clear(&e, case, rv, function);
                            assert!(
                                !e.to_string().contains("already exists"),
                                "{case}: a failed generation blamed an existing key: {e}"
                            );
                            // The fault has cleared: generating the same key again succeeds,
                            // whatever the failure left behind.
                            token
                                .generate_key(&request, &user())
                                .unwrap_or_else(|e| panic!("{case}: generating again after the fault failed: {e}"))
                        }
                    };
                    assert_one_generated(&token, &key, case);
                    token
                        .delete_object(&key.id, Some(GENERATED), &user())
                        .unwrap_or_else(|e| panic!("{case}: removing the new key: {e}"));
                },
                || token.objects().map(|_| ()),
            );
        }
        drop(token);
        drop(driver);
        let after = stored_objects(rig, PIN);
        let left: Vec<_> = after.iter().filter(|o| o.contains(GENERATED) || o.contains("progress")).collect();
        assert!(left.is_empty(), "objects of a generation were left: {left:?}");
        assert_intact(rig, faults, &before, &spki);
    });
}

/// A kept login (the agent's session policy) signs with the cached key handle: exactly
/// `C_SignInit` + `C_Sign` per signature, no lookup, no length query. When the handle or the
/// session goes stale (SoftHSM invalidates handles at logout; a token can drop its sessions), the
/// key is found again — with a new login where the session was lost — and the signature is made.
#[test]
fn a_kept_login_signs_with_two_calls_and_finds_a_stale_key_again() {
    with_faults("a_kept_login_signs_with_two_calls_and_finds_a_stale_key_again", |rig, faults| {
        let spki = set_up(rig, faults);
        faults.arm(0, CKR_OK);
        let mut config = Pkcs11Config::only([faults.module.clone()]);
        config.modules[0].keep_login = true;
        let driver = Pkcs11Driver::new(&config);
        let token = find(&driver).expect("token");
        let key = ObjectId(vec![KEPT]);
        let sign = |what: &[u8]| {
            let sig = token.sign(&key, &Mechanism::EcdsaSha256, &input(what), &user()).expect("sign");
            verify_signature(&spki, &Mechanism::EcdsaSha256, SignData::Message(what), &sig)
                .unwrap_or_else(|e| panic!("the signature over {what:?} does not verify: {e}"));
        };
        sign(b"first: logs in and finds the key");
        for round in 0..3 {
            faults.arm(0, CKR_OK);
            sign(b"kept");
            assert_eq!(faults.calls(), ["C_SignInit", "C_Sign"], "kept-login signature {round}");
        }
        for (name, rv, relogin) in [
            ("CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID, false),
            ("CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID, false),
            ("CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID, true),
        ] {
            // The first C_SignInit with the cached handle fails as a stale handle would.
            faults.arm(1, rv);
            sign(name.as_bytes());
            let calls = faults.calls();
            assert_eq!(calls.first().map(String::as_str), Some("C_SignInit"), "{name}: {calls:?}");
            assert!(calls.iter().any(|c| c == "C_FindObjectsInit"), "{name}: the key was not looked up: {calls:?}");
            assert_eq!(calls.iter().any(|c| c == "C_Login"), relogin, "{name}: {calls:?}");
            assert_eq!(calls.last().map(String::as_str), Some("C_Sign"), "{name}: {calls:?}");
            // The handle found again is kept: the next signature is two calls again.
            faults.arm(0, CKR_OK);
            sign(b"kept again");
            assert_eq!(faults.calls(), ["C_SignInit", "C_Sign"], "after {name}");
        }
    });
}
