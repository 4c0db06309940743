//! Reads one catalog file: TOML syntax first (a broken file is reported with its line and
//! skipped whole), then each `[[carrier]]` table on its own, so one bad entry costs only itself.

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::entry::{Entry, Layer};
use crate::problem::{CatalogProblem, ProblemKind};
use crate::raw::RawEntry;
use crate::validate::{EntryContext, line_of, validate};

/// The entries of one file that passed the checks, and the problems of the rest.
pub(crate) fn parse_file(text: &str, file: &Path, layer: Layer) -> (Vec<Entry>, Vec<CatalogProblem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim().to_string();
            problems.push(CatalogProblem::error(file, line, None, ProblemKind::Syntax(message)));
            return (entries, problems);
        }
    };
    for (key, value) in root.into_inner() {
        let key_line = line_of(text, key.span().start);
        if key.get_ref().as_ref() != "carrier" {
            let kind = ProblemKind::UnknownTopLevel(key.get_ref().to_string());
            problems.push(CatalogProblem::warning(file, Some(key_line), None, kind));
            continue;
        }
        let DeValue::Array(tables) = value.into_inner() else {
            problems.push(CatalogProblem::error(file, Some(key_line), None, ProblemKind::CarrierNotTables));
            continue;
        };
        for table in tables {
            let line = line_of(text, table.span().start);
            let DeValue::Table(fields) = table.get_ref() else {
                problems.push(CatalogProblem::error(file, Some(line), None, ProblemKind::CarrierNotTables));
                continue;
            };
            let id = entry_id(fields);
            let raw = match RawEntry::deserialize(ValueDeserializer::from(table)) {
                Ok(raw) => raw,
                Err(e) => {
                    let at = e.span().map_or(line, |s| line_of(text, s.start));
                    let kind = ProblemKind::Field(e.message().trim().to_string());
                    problems.push(CatalogProblem::error(file, Some(at), id, kind));
                    continue;
                }
            };
            let cx = EntryContext { text, file, layer, line };
            match validate(raw, &cx) {
                Ok(entry) => entries.push(entry),
                Err(mut found) => problems.append(&mut found),
            }
        }
    }
    (entries, problems)
}

/// The entry's id, if it has a string one, to name it in problems even when it fails to parse.
fn entry_id(fields: &DeTable<'_>) -> Option<String> {
    fields.iter().find(|(k, _)| k.get_ref().as_ref() == "id").and_then(|(_, v)| match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => None,
    })
}
