//! The seed catalog, built into the binary so every ukey knows the common carriers without any
//! file on disk. Each data file is listed here; a test checks that none is forgotten.

/// `(file name, contents)` of every seed file under `data/`, in name order.
pub(crate) const SEED_FILES: &[(&str, &str)] = &[
    ("feitian.toml", include_str!("../data/feitian.toml")),
    ("generic.toml", include_str!("../data/generic.toml")),
    ("haitai.toml", include_str!("../data/haitai.toml")),
    ("longmai.toml", include_str!("../data/longmai.toml")),
    ("nitrokey.toml", include_str!("../data/nitrokey.toml")),
    ("thales.toml", include_str!("../data/thales.toml")),
    ("ukey.toml", include_str!("../data/ukey.toml")),
    ("watchdata.toml", include_str!("../data/watchdata.toml")),
    ("yubico.toml", include_str!("../data/yubico.toml")),
];

/// The path a seed file is reported under (`seed:NAME`), so problems and origins say which.
pub(crate) fn seed_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("seed:{name}"))
}

/// The seed file names, for tests and `ukey catalog check`.
pub fn seed_file_names() -> impl Iterator<Item = &'static str> {
    SEED_FILES.iter().map(|(name, _)| *name)
}
