//! Is pcscd installed, and does it accept clients on its socket?

use std::os::unix::net::UnixStream;

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "pcscd";

/// How to start pcscd, for fixes.
pub const START_HINT: &str = "start it: `sudo systemctl enable --now pcscd.socket` (or, where there is no systemd, \
     `sudo pcscd` as root)";

/// Looks for the program and connects to its socket.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let program = env.find_program("pcscd");
    let socket = &env.pcscd_socket;
    let answers = UnixStream::connect(socket);
    let finding = match (program, answers) {
        (_, Ok(_)) => Finding::ok(ID, format!("pcscd is running and accepts clients on {}", socket.display())),
        (Some(program), Err(e)) => Finding::fail(
            ID,
            format!(
                "pcscd is installed ({}) but not running: nothing accepts clients on {} ({e}); smart cards and \
                 CCID tokens cannot be used",
                program.display(),
                socket.display()
            ),
            START_HINT,
        ),
        (None, Err(_)) if socket.exists() => Finding::fail(
            ID,
            format!("pcscd is not in the program path and its socket {} does not answer", socket.display()),
            "install it: `sudo apt install pcscd` (Debian, Ubuntu) or `sudo dnf install pcsc-lite`, then start it",
        ),
        (None, Err(_)) => Finding::fail(
            ID,
            "pcscd, the PC/SC service that smart cards and CCID tokens need, is not installed",
            "install it: `sudo apt install pcscd` (Debian, Ubuntu) or `sudo dnf install pcsc-lite`, then \
             `sudo systemctl enable --now pcscd.socket`",
        ),
    };
    vec![finding]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn installed_but_not_running_and_not_installed_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::for_tests(dir.path());
        let f = &check(&env)[0];
        assert_eq!(f.status, Status::Fail);
        assert!(f.message.contains("not installed"), "{}", f.message);
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/pcscd"), "").unwrap();
        let f = &check(&env)[0];
        assert!(f.message.contains("installed") && f.message.contains("not running"), "{}", f.message);
        assert!(f.fix.as_deref().is_some_and(|x| x.contains("systemctl")));
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("pcscd.comm")).unwrap();
        assert_eq!(check(&env)[0].status, Status::Ok);
        drop(listener);
    }
}
