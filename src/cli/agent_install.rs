//! `ukey agent install|uninstall`: start the agent with the login session — systemd user units
//! with socket activation where a systemd user manager runs, else an XDG autostart entry (the
//! agent also runs without either: `ukey agent`).

use std::path::{Path, PathBuf};
use std::process::Command;

use ukey_api::Error;

use crate::cli::error::CliResult;
use crate::config::config_home;

const SOCKET_UNIT: &str = include_str!("../../systemd/ukey-agent.socket");
const SERVICE_UNIT: &str = include_str!("../../systemd/ukey-agent.service");
const DESKTOP_ENTRY: &str = include_str!("../../systemd/ukey-agent.desktop");

/// Where the files go.
struct Places {
    units: PathBuf,
    autostart: PathBuf,
}

fn places() -> Result<Places, Error> {
    let base = config_home()
        .ok_or_else(|| Error::NotFound("neither XDG_CONFIG_HOME nor HOME is set; set one of them".into()))?;
    Ok(Places { units: base.join("systemd/user"), autostart: base.join("autostart") })
}

/// True when `systemctl --user` reaches a running user manager.
fn systemd_user_manager() -> bool {
    Command::new("systemctl").args(["--user", "show-environment"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn systemctl(args: &[&str]) -> Result<(), Error> {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .output()
        .map_err(|e| Error::io("running systemctl --user", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Device(format!(
            "systemctl --user {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn this_program() -> Result<String, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the ukey program", e))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let text = exe.to_string_lossy().into_owned();
    if text.contains(char::is_whitespace) {
        return Err(Error::InvalidInput(format!(
            "ukey is installed at a path with spaces ({text}); move it (e.g. to ~/.local/bin) and run this again"
        )));
    }
    Ok(text)
}

/// Installs the units (or the autostart entry) and, unless `no_start`, starts the agent.
pub fn install(autostart: bool, no_start: bool) -> CliResult {
    let p = places()?;
    let ukey = this_program()?;
    let use_systemd = !autostart && systemd_user_manager();
    if autostart || !use_systemd {
        write(&p.autostart.join("ukey-agent.desktop"), &DESKTOP_ENTRY.replace("@UKEY@", &ukey))?;
        if !autostart {
            println!("no systemd user manager is running, so an XDG autostart entry was installed instead");
        }
        println!("the agent starts with your next desktop session; start it now with `ukey agent --detach`");
        return Ok(());
    }
    write(&p.units.join("ukey-agent.socket"), SOCKET_UNIT)?;
    write(&p.units.join("ukey-agent.service"), &SERVICE_UNIT.replace("@UKEY@", &ukey))?;
    systemctl(&["daemon-reload"])?;
    if no_start {
        systemctl(&["enable", "ukey-agent.socket", "ukey-agent.service"])?;
        println!("enabled; the agent starts with your next login (or `systemctl --user start ukey-agent`)");
    } else {
        systemctl(&["enable", "--now", "ukey-agent.socket", "ukey-agent.service"])?;
        println!("enabled and started: `ukey agent status` shows it");
    }
    Ok(())
}

/// Stops the agent's units and removes every file `install` may have written.
pub fn uninstall() -> CliResult {
    let p = places()?;
    let socket = p.units.join("ukey-agent.socket");
    if socket.exists() && systemd_user_manager() {
        let _ = systemctl(&["disable", "--now", "ukey-agent.socket", "ukey-agent.service"]);
    }
    for f in [socket, p.units.join("ukey-agent.service"), p.autostart.join("ukey-agent.desktop")] {
        if f.exists() {
            std::fs::remove_file(&f).map_err(|e| Error::io(format!("removing {}", f.display()), e))?;
            println!("removed {}", f.display());
        }
    }
    if systemd_user_manager() {
        let _ = systemctl(&["daemon-reload"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_the_program_and_the_private_socket() {
        assert!(SOCKET_UNIT.contains("ListenStream=%t/ukey/agent.sock"));
        assert!(SOCKET_UNIT.contains("SocketMode=0600") && SOCKET_UNIT.contains("DirectoryMode=0700"));
        assert!(SERVICE_UNIT.contains("ExecStart=@UKEY@ agent"));
        assert!(DESKTOP_ENTRY.contains("Exec=@UKEY@ agent --detach"));
    }
}
