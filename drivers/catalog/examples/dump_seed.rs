//! Prints the seed catalog's problems and entry ids (a development aid).
fn main() {
    let (catalog, problems) = ukey_catalog::load_seed();
    for p in &problems {
        println!("{p}");
    }
    for e in catalog.entries_by_id() {
        println!("{} {}:{} usb={} atr={}", e.id, e.origin.file.display(), e.origin.line, e.usb.len(), e.atr.len());
    }
    print!("{}", ukey_catalog::udev::render(&catalog));
}
