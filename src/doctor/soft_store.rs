//! Is the built-in software token store healthy? Every token file is read and its format
//! checked (the soft driver's own health report), and the store's directory and files must be
//! closed to other users: the files are sealed under PIN-derived keys, but a readable file is
//! a file another account can copy and attack offline.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use ukey_api::Driver;

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "soft-store";

/// Permission bits for group and others.
const OPEN_TO_OTHERS: u32 = 0o077;

fn too_open(path: &Path, uid: u32) -> Option<String> {
    let meta = fs::symlink_metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    if meta.uid() != uid {
        return Some(format!("{} belongs to uid {}, not to you (uid {uid})", path.display(), meta.uid()));
    }
    (mode & OPEN_TO_OTHERS != 0).then(|| format!("{} has mode {mode:03o}: other accounts may read it", path.display()))
}

/// Reports the store's health, one finding per damaged token and per permission problem.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let Some(dir) = env.soft_dir.as_deref() else {
        return vec![Finding::ok(ID, "the software token is switched off in the configuration")];
    };
    let driver = ukey_soft::SoftDriver::open(dir);
    let mut out = Vec::new();
    for status in driver.status() {
        let finding = if status.ok {
            Finding::ok(ID, format!("soft token store {}: {}", dir.display(), status.message))
        } else {
            Finding::fail(
                ID,
                format!("a soft token cannot be read: {}", status.message),
                format!(
                    "restore {} from your backup; if there is none, the keys on it are lost: move the file out of {} \
                     and create a new token with `ukey token init --soft --label NAME`",
                    status.subject,
                    dir.display()
                ),
            )
        };
        out.push(finding.about(status.subject));
    }
    if !dir.exists() {
        return out;
    }
    let uid = rustix::process::getuid().as_raw();
    let mut paths = vec![dir.to_path_buf()];
    if let Ok(listing) = fs::read_dir(dir) {
        let mut files: Vec<_> = listing.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        paths.extend(files);
    }
    for path in paths {
        if let Some(problem) = too_open(&path, uid) {
            out.push(
                Finding::fail(
                    ID,
                    format!("the soft token store is not private: {problem}"),
                    format!(
                        "make it yours and private: `chmod 700 {dir}` and `chmod 600 {dir}/*` (as its owner; `sudo \
                         chown -R $USER {dir}` if another account owns it)",
                        dir = dir.display()
                    ),
                )
                .about(path.display().to_string()),
            );
        }
    }
    out
}
