//! Who is asking: the OS account behind a use, and whether it acts as helpdesk.
//!
//! Login names come from the uid through the system's account database (NSS: `/etc/passwd`,
//! LDAP, sssd...), never from `$USER`, which any program can set.

use nix::unistd::{Gid, Group, Uid, User};

/// An OS account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// User id.
    pub uid: u32,
    /// Login name, when the account database knows the uid.
    pub login: Option<String>,
}

impl Account {
    /// The account of a uid.
    pub fn of_uid(uid: u32) -> Self {
        Account { uid, login: login_of(uid) }
    }

    /// This process's (real) account.
    pub fn current() -> Self {
        Account::of_uid(rustix::process::getuid().as_raw())
    }

    /// `alice`, or `uid 1001` when the name is unknown.
    pub fn label(&self) -> String {
        self.login.clone().unwrap_or_else(|| format!("uid {}", self.uid))
    }
}

/// The login name of a uid.
pub fn login_of(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid)).ok().flatten().map(|u| u.name)
}

/// The uid of a login name (or of `#1001`).
pub fn uid_of(login: &str) -> Option<u32> {
    if let Some(n) = login.strip_prefix('#') {
        return n.parse().ok();
    }
    User::from_name(login).ok().flatten().map(|u| u.uid.as_raw())
}

/// The helpdesk role: root, or a member of the policy's helpdesk group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// uid 0.
    Root,
    /// A member of the group.
    HelpdeskGroup(String),
    /// Neither.
    Holder,
}

impl Role {
    /// The role of this process, given the configured group.
    pub fn of_current_process(helpdesk_group: Option<&str>) -> Self {
        if rustix::process::geteuid().is_root() {
            return Role::Root;
        }
        let Some(name) = helpdesk_group else { return Role::Holder };
        let Some(group) = Group::from_name(name).ok().flatten() else { return Role::Holder };
        let gid: Gid = group.gid;
        let in_process_groups = rustix::process::getegid().as_raw() == gid.as_raw()
            || rustix::process::getgroups().is_ok_and(|gs| gs.iter().any(|g| g.as_raw() == gid.as_raw()));
        let login = Account::current().login;
        let listed = login.is_some_and(|l| group.mem.contains(&l));
        if in_process_groups || listed { Role::HelpdeskGroup(name.to_string()) } else { Role::Holder }
    }

    /// Whether the role may act as helpdesk.
    pub fn is_helpdesk(&self) -> bool {
        !matches!(self, Role::Holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_by_uid_and_name() {
        assert_eq!(login_of(0).as_deref(), Some("root"));
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(uid_of("#4242"), Some(4242));
        assert_eq!(Account::of_uid(4_000_000_000).label(), "uid 4000000000");
    }
}
