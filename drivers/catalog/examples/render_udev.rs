//! Writes the udev rules of the seed catalog to standard output, to regenerate the committed
//! `udev/70-ukey.rules` without building the whole CLI:
//!
//!     cargo run -q -p ukey-catalog --example render_udev > udev/70-ukey.rules
fn main() {
    let (catalog, problems) = ukey_catalog::load_seed();
    for p in &problems {
        eprintln!("{p}");
    }
    print!("{}", ukey_catalog::udev::render(&catalog));
}
