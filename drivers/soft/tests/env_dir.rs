//! Where the store lives: `$UKEY_SOFT_DIR`, else `$XDG_DATA_HOME/ukey/tokens`, else
//! `~/.local/share/ukey/tokens`. Alone in its binary because it changes the process environment.

use ukey_soft::SoftDriver;

#[test]
fn the_store_location_follows_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: no other thread of this test binary reads these variables.
    unsafe {
        std::env::set_var("UKEY_SOFT_DIR", dir.path().join("explicit"));
    }
    assert_eq!(SoftDriver::from_env().unwrap().dir(), dir.path().join("explicit"));
    unsafe {
        std::env::remove_var("UKEY_SOFT_DIR");
        std::env::set_var("XDG_DATA_HOME", dir.path().join("xdg"));
    }
    assert_eq!(SoftDriver::from_env().unwrap().dir(), dir.path().join("xdg/ukey/tokens"));
    unsafe {
        std::env::remove_var("XDG_DATA_HOME");
        std::env::set_var("HOME", dir.path().join("home"));
    }
    assert_eq!(SoftDriver::from_env().unwrap().dir(), dir.path().join("home/.local/share/ukey/tokens"));
}
