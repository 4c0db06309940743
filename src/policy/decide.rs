//! The custody decision for one use: allowed or refused, and why, in words the person refused can
//! act on. A pure function of what is known — the policy, the record, the tag, the catalog — so
//! every rule is tested on its own.
//!
//! The order of checks, first refusal wins:
//! 1. no policy installed → personal mode: allowed, with a notice that no policy is in force;
//!    a policy that cannot be read → refused (a typo never switches enforcement off);
//! 2. a certificate registered to ANOTHER carrier → refused (a copied key), whatever the mode;
//! 3. a record (or, without one, a valid custody tag) → its status, its model, its accounts, its
//!    certificates, its rights, its origins;
//!    an invalid tag (foreign or forged) → refused;
//!    neither → `deny`: refused; `warn`: allowed with a warning;
//! 4. the carrier must be a compliant carrier, unless development mode (then: a notice);
//! 5. (in the gate, after this) not in use by another account right now.

use ukey_api::CarrierInfo;

use crate::agent::gate::{ClientIdentity, Operation};
use crate::policy::accounts::Account;
use crate::policy::compliance::Compliance;
use crate::policy::record::{CustodyRecord, Right, Status};
use crate::policy::settings::{PolicyState, UnregisteredMode};
use crate::policy::tag::{TagCheck, TagPayload};

/// Everything about one use the decision looks at.
#[derive(Debug, Clone)]
pub struct UseFacts<'a> {
    /// Who asks.
    pub account: &'a Account,
    /// Through which client.
    pub client: &'a ClientIdentity,
    /// To do what.
    pub operation: Operation,
    /// On which carrier.
    pub carrier: &'a CarrierInfo,
    /// With which certificate (SHA-256), when one is involved.
    pub certificate: Option<&'a str>,
}

/// What the registry knows about the carrier.
#[derive(Debug, Clone)]
pub enum Registration<'a> {
    /// A record for its serial.
    Record(&'a CustodyRecord),
    /// The registry could not be read for it (refused: fail closed).
    Unreadable(String),
    /// No record.
    None,
}

/// Who may use a carrier, from a record or a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// "Zhang San (Finance)".
    pub holder: String,
    /// Allowed accounts.
    pub accounts: Vec<String>,
    /// Rights.
    pub rights: Vec<Right>,
    /// Registered certificates.
    pub certificates: Vec<String>,
    /// Allowed origins (empty: any paired).
    pub origins: Vec<String>,
}

impl Binding {
    fn of_record(r: &CustodyRecord) -> Self {
        Binding {
            holder: r.holder_label(),
            accounts: r.accounts.clone(),
            rights: r.rights.clone(),
            certificates: r.certificates.clone(),
            origins: r.origins.clone(),
        }
    }

    fn of_tag(t: &TagPayload) -> Self {
        let holder = if t.holder.unit.is_empty() {
            t.holder.name.clone()
        } else {
            format!("{} ({})", t.holder.name, t.holder.unit)
        };
        Binding {
            holder,
            accounts: t.accounts.clone(),
            rights: t.rights.clone(),
            certificates: t.certificates.clone(),
            origins: Vec::new(),
        }
    }

    /// Whether the account is one of the allowed ones.
    pub fn allows(&self, login: Option<&str>, uid: u32) -> bool {
        let by_uid = format!("#{uid}");
        self.accounts.iter().any(|a| Some(a.as_str()) == login || *a == by_uid)
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `None`: allowed. `Some(text)`: refused, with the text for the person.
    pub refusal: Option<String>,
    /// Things to tell the person even though the use is allowed.
    pub notices: Vec<String>,
    /// The binding that applies, when there is one (for the audit record and the in-use check).
    pub binding: Option<Binding>,
}

impl Decision {
    fn refuse(text: String, binding: Option<Binding>) -> Self {
        Decision { refusal: Some(text), notices: Vec::new(), binding }
    }
}

/// Decides one use.
pub fn decide(
    policy: &PolicyState,
    facts: &UseFacts<'_>,
    registration: Registration<'_>,
    registered_elsewhere: Option<(&CustodyRecord, &str)>,
    tag: &TagCheck,
    compliance: &Compliance,
) -> Decision {
    let settings = match policy {
        PolicyState::Personal => {
            return Decision {
                refusal: None,
                notices: vec![
                    "no custody policy is in force on this machine (personal mode): this use is recorded in your own audit log only"
                        .into(),
                ],
                binding: None,
            };
        }
        PolicyState::Broken(reason) => return Decision::refuse(reason.clone(), None),
        PolicyState::Enforced(s) => s,
    };
    let login = facts.account.login.as_deref();
    let who = facts.account.label();
    let serial = facts.carrier.serial.as_str();
    let mut notices = Vec::new();

    if let (Some((other, other_serial)), Some(cert)) = (registered_elsewhere, facts.certificate) {
        return Decision::refuse(
            format!(
                "the certificate {} is registered to {} on the key with serial {other_serial}, not on this one (serial {serial}): a copy of a registered key may not be used",
                short(cert),
                other.holder_label()
            ),
            None,
        );
    }

    let binding = match registration {
        Registration::Unreadable(reason) => return Decision::refuse(reason, None),
        Registration::Record(record) => {
            let b = Binding::of_record(record);
            match record.status {
                Status::Active => {}
                Status::Suspended | Status::Revoked => {
                    let why = record.status_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
                    return Decision::refuse(
                        format!(
                            "this key is registered to {} and its registration is {}{why}; it may not be used — ask the helpdesk",
                            b.holder,
                            record.status.as_str()
                        ),
                        Some(b),
                    );
                }
            }
            if !record.carrier.model.is_empty() && record.carrier.model != facts.carrier.model {
                return Decision::refuse(
                    format!(
                        "this key reports model `{}`, but serial {serial} is registered as a `{}` of {}: it may be a clone; ask the helpdesk to check it",
                        facts.carrier.model, record.carrier.model, b.holder
                    ),
                    Some(b),
                );
            }
            b
        }
        Registration::None => match tag {
            TagCheck::Valid { payload, anchor } => {
                notices.push(format!(
                    "this key is not in this machine's custody registry; it is recognised by its custody tag (issued by {} on {}, verified with {anchor})",
                    if payload.unit.is_empty() { "the unit" } else { payload.unit.as_str() },
                    payload.issued
                ));
                Binding::of_tag(payload)
            }
            TagCheck::Invalid { reason } => {
                return Decision::refuse(format!("this key is not registered here and {reason}"), None);
            }
            TagCheck::Absent => match settings.mode {
                UnregisteredMode::Deny => {
                    return Decision::refuse(
                        format!(
                            "this key ({} {}, serial {serial}) is not registered in this machine's custody registry, and the policy refuses unregistered keys; ask the helpdesk to register it (ukey helpdesk bind)",
                            facts.carrier.manufacturer.trim(),
                            facts.carrier.model.trim()
                        ),
                        None,
                    );
                }
                UnregisteredMode::Warn => {
                    notices.push(format!(
                        "warning: this key (serial {serial}) is not registered in the custody registry; the policy allows it for now, but the use is recorded as unregistered — ask the helpdesk to register it"
                    ));
                    return finish(settings.development, compliance, notices, None);
                }
            },
        },
    };

    if !binding.allows(login, facts.account.uid) {
        return Decision::refuse(
            format!("this key is registered to {}; account {who} may not use it", binding.holder),
            Some(binding),
        );
    }
    if let Some(cert) = facts.certificate
        && facts.operation != Operation::ImportCertificate
        && !binding.certificates.is_empty()
        && !binding.certificates.iter().any(|c| c.eq_ignore_ascii_case(cert))
    {
        return Decision::refuse(
            format!(
                "this key is registered to {}, but the certificate {} on it is not the registered one; ask the helpdesk to re-bind the key (ukey helpdesk rebind)",
                binding.holder,
                short(cert)
            ),
            Some(binding),
        );
    }
    if let Some(right) = Right::needed_for(facts.operation)
        && !binding.rights.contains(&right)
    {
        let has: Vec<&str> = binding.rights.iter().map(|r| r.as_str()).collect();
        return Decision::refuse(
            format!(
                "this key is registered to {} for {} only; account {who} may not {} with it (no `{}` right)",
                binding.holder,
                has.join(", "),
                facts.operation.describe(),
                right.as_str()
            ),
            Some(binding),
        );
    }
    if facts.operation == Operation::Initialize {
        return Decision::refuse(
            format!(
                "this key is registered to {}; wiping a registered key is a helpdesk task (ukey helpdesk reset), which also closes its record",
                binding.holder
            ),
            Some(binding),
        );
    }
    if let ClientIdentity::Page { origin } = facts.client
        && !binding.origins.is_empty()
        && !binding.origins.iter().any(|o| o == origin)
    {
        return Decision::refuse(
            format!(
                "this key is registered to {} for use on {} only; {origin} may not use it",
                binding.holder,
                binding.origins.join(", ")
            ),
            Some(binding),
        );
    }
    finish(settings.development, compliance, notices, Some(binding))
}

/// The compliance rule, last.
fn finish(development: bool, compliance: &Compliance, mut notices: Vec<String>, binding: Option<Binding>) -> Decision {
    if !compliance.compliant {
        if development {
            notices.push(format!(
                "DEVELOPMENT MODE: this key is not a compliant carrier ({}); it is allowed only because the policy is in development mode",
                compliance.reason
            ));
        } else {
            let holder =
                binding.as_ref().map(|b| format!("this key is registered to {}, but ", b.holder)).unwrap_or_default();
            return Decision::refuse(
                format!("{holder}{}; certificates must be used from a compliant carrier", compliance.reason),
                binding,
            );
        }
    }
    Decision { refusal: None, notices, binding }
}

fn short(fp: &str) -> String {
    fp.get(..16).map(|s| format!("{s}…")).unwrap_or_else(|| fp.to_string())
}

#[cfg(test)]
mod tests {
    use ukey_api::{CarrierId, CarrierKind};

    use super::*;
    use crate::policy::settings::PolicySettings;

    fn carrier() -> CarrierInfo {
        CarrierInfo {
            id: CarrierId::new(CarrierKind::Pkcs11, &["S1"]),
            kind: CarrierKind::Pkcs11,
            label: "t".into(),
            manufacturer: "ACME".into(),
            model: "Key 1".into(),
            serial: "S1".into(),
            location: "/m.so slot 1".into(),
            atr: None,
            usb: None,
            catalog_entry: None,
            software: false,
            read_only: false,
            initialized: true,
        }
    }

    fn record() -> CustodyRecord {
        let mut r = CustodyRecord {
            accounts: vec!["alice".into()],
            rights: vec![Right::Sign],
            certificates: vec!["ab".repeat(32)],
            ..Default::default()
        };
        r.carrier.serial = "S1".into();
        r.carrier.model = "Key 1".into();
        r.holder.name = "Zhang San".into();
        r.holder.unit = "Finance".into();
        r
    }

    fn compliant() -> Compliance {
        Compliance { entry: Some("x".into()), model: None, compliant: true, reason: "ok".into() }
    }

    fn enforced(f: impl FnOnce(&mut PolicySettings)) -> PolicyState {
        let mut s = PolicySettings::default();
        f(&mut s);
        PolicyState::Enforced(s)
    }

    fn run(policy: &PolicyState, who: &str, op: Operation, reg: Registration<'_>, compliance: &Compliance) -> Decision {
        let account = Account { uid: 1000, login: Some(who.into()) };
        let client = ClientIdentity::Program { pid: 1, exe: None };
        let info = carrier();
        let cert = "ab".repeat(32);
        let facts =
            UseFacts { account: &account, client: &client, operation: op, carrier: &info, certificate: Some(&cert) };
        decide(policy, &facts, reg, None, &TagCheck::Absent, compliance)
    }

    #[test]
    fn the_holder_may_sign_and_another_account_is_told_whose_key_it_is() {
        let p = enforced(|_| {});
        let r = record();
        assert_eq!(run(&p, "alice", Operation::Sign, Registration::Record(&r), &compliant()).refusal, None);
        let d = run(&p, "bob", Operation::Sign, Registration::Record(&r), &compliant());
        assert_eq!(
            d.refusal.as_deref(),
            Some("this key is registered to Zhang San (Finance); account bob may not use it")
        );
    }

    #[test]
    fn status_rights_mode_and_compliance_each_refuse() {
        let p = enforced(|_| {});
        let mut r = record();
        r.status = Status::Suspended;
        r.status_reason = Some("reported lost".into());
        let d = run(&p, "alice", Operation::Sign, Registration::Record(&r), &compliant());
        assert!(d.refusal.unwrap().contains("is suspended (reported lost)"));
        let r = record();
        let d = run(&p, "alice", Operation::Authenticate, Registration::Record(&r), &compliant());
        assert!(d.refusal.unwrap().contains("no `auth` right"));
        let d = run(&p, "alice", Operation::Sign, Registration::None, &compliant());
        assert!(d.refusal.unwrap().contains("not registered"));
        let warn = enforced(|s| s.mode = UnregisteredMode::Warn);
        let d = run(&warn, "alice", Operation::Sign, Registration::None, &compliant());
        assert_eq!(d.refusal, None);
        assert!(d.notices[0].starts_with("warning: this key (serial S1) is not registered"));
        let soft = Compliance { entry: None, model: None, compliant: false, reason: "a software token".into() };
        let d = run(&p, "alice", Operation::Sign, Registration::Record(&r), &soft);
        assert!(d.refusal.unwrap().contains("compliant carrier"));
        let dev = enforced(|s| s.development = true);
        let d = run(&dev, "alice", Operation::Sign, Registration::Record(&r), &soft);
        assert_eq!(d.refusal, None);
        assert!(d.notices[0].starts_with("DEVELOPMENT MODE"));
        let d = run(&PolicyState::Personal, "bob", Operation::Sign, Registration::None, &soft);
        assert_eq!(d.refusal, None);
        assert!(d.notices[0].contains("no custody policy is in force"));
        let d =
            run(&PolicyState::Broken("bad".into()), "alice", Operation::Sign, Registration::Record(&r), &compliant());
        assert_eq!(d.refusal.as_deref(), Some("bad"));
    }
}
