//! Loads the three catalog layers — the embedded seed, the unit's system directory and the
//! holder's user directory — and merges them by id: user over system over seed.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::dirs::CatalogDirs;
use crate::entry::{Entry, Layer};
use crate::parse::parse_file;
use crate::problem::{CatalogProblem, ProblemKind};
use crate::seed::{SEED_FILES, seed_path};

/// Largest catalog file read; anything bigger is not a hand-written catalog.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// Loads the seed and the directories in `dirs`. Always returns a catalog: broken files and
/// entries are skipped and described in the problems, everything else loads.
pub fn load(dirs: &CatalogDirs) -> (Catalog, Vec<CatalogProblem>) {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let mut layers = Vec::new();

    let mut seed = Vec::new();
    for (name, text) in SEED_FILES {
        let path = seed_path(name);
        let (mut entries, mut found) = parse_file(text, &path, Layer::Seed);
        seed.append(&mut entries);
        problems.append(&mut found);
        files.push(path);
    }
    layers.push(dedupe_layer(seed, &mut problems));

    for (dir, layer) in [(&dirs.system, Layer::System), (&dirs.user, Layer::User)] {
        if let Some(dir) = dir {
            let entries = load_dir(dir, layer, &mut files, &mut problems);
            layers.push(dedupe_layer(entries, &mut problems));
        }
    }

    let mut merged: HashMap<String, Entry> = HashMap::new();
    for layer in layers {
        for entry in layer {
            if let Some(old) = merged.get(&entry.id) {
                log::debug!(
                    "catalog: entry {} from {} overrides {}",
                    entry.id,
                    entry.origin.file.display(),
                    old.origin.file.display()
                );
            }
            merged.insert(entry.id.clone(), entry);
        }
    }
    let catalog = Catalog::build(merged.into_values().collect(), files, &mut problems);
    (catalog, problems)
}

/// One catalog file's text on its own, as if it were the only file of `layer` (no seed, no
/// directories): lets a tool judge a file before installing it, and lets the fuzz targets reach
/// the parser without touching the disk. Like [`load`], never fails: problems are returned.
pub fn load_text(text: &str, file: &Path, layer: Layer) -> (Catalog, Vec<CatalogProblem>) {
    let mut problems = Vec::new();
    let (entries, mut found) = parse_file(text, file, layer);
    problems.append(&mut found);
    let entries = dedupe_layer(entries, &mut problems);
    let catalog = Catalog::build(entries, vec![file.to_path_buf()], &mut problems);
    (catalog, problems)
}

/// The seed catalog alone (what the committed udev rules are generated from).
pub fn load_seed() -> (Catalog, Vec<CatalogProblem>) {
    load(&CatalogDirs::seed_only())
}

/// The seed plus the directories named by the environment (see [`CatalogDirs::from_env`]).
pub fn load_from_env() -> (Catalog, Vec<CatalogProblem>) {
    load(&CatalogDirs::from_env())
}

/// Keeps the first entry of each id within one layer; later ones are reported as duplicates.
fn dedupe_layer(entries: Vec<Entry>, problems: &mut Vec<CatalogProblem>) -> Vec<Entry> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut kept = Vec::new();
    for entry in entries {
        let here = format!("{}:{}", entry.origin.file.display(), entry.origin.line);
        if let Some(first) = seen.get(&entry.id) {
            problems.push(CatalogProblem::error(
                &entry.origin.file,
                Some(entry.origin.line),
                Some(entry.id.clone()),
                ProblemKind::DuplicateId { id: entry.id.clone(), first: first.clone() },
            ));
            continue;
        }
        seen.insert(entry.id.clone(), here);
        kept.push(entry);
    }
    kept
}

/// Reads every `*.toml` in `dir`, in name order. A missing directory is not a problem (most
/// machines have none); an unreadable one is.
fn load_dir(dir: &Path, layer: Layer, files: &mut Vec<PathBuf>, problems: &mut Vec<CatalogProblem>) -> Vec<Entry> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(CatalogProblem::error(dir, None, None, ProblemKind::Unreadable(e.to_string())));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = listing
        .filter_map(|item| match item {
            Ok(item) => Some(item.path()),
            Err(e) => {
                problems.push(CatalogProblem::error(dir, None, None, ProblemKind::Unreadable(e.to_string())));
                None
            }
        })
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();

    let mut entries = Vec::new();
    for path in paths {
        let text = match read_limited(&path) {
            Ok(text) => text,
            Err(kind) => {
                problems.push(CatalogProblem::error(&path, None, None, kind));
                continue;
            }
        };
        let (mut found, mut file_problems) = parse_file(&text, &path, layer);
        entries.append(&mut found);
        problems.append(&mut file_problems);
        files.push(path);
    }
    entries
}

/// Reads a file as UTF-8, refusing files over [`MAX_FILE_SIZE`].
fn read_limited(path: &Path) -> Result<String, ProblemKind> {
    let file = fs::File::open(path).map_err(|e| ProblemKind::Unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes).map_err(|e| ProblemKind::Unreadable(e.to_string()))?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_FILE_SIZE {
        let size = fs::metadata(path).map_or(size, |m| m.len());
        return Err(ProblemKind::TooLarge { size, limit: MAX_FILE_SIZE });
    }
    String::from_utf8(bytes).map_err(|e| ProblemKind::Unreadable(format!("not UTF-8 text ({e})")))
}
