//! A structural check of udev rules, for machines whose systemd predates `udevadm verify`
//! (systemd 254): each rule must be comma-separated `KEY[{attr}] OP "value"` items with keys
//! and operators udev knows, and every GOTO must have its LABEL. It checks the grammar described
//! in udev(7), not what a running udev would do with the rules.

use std::collections::BTreeSet;
use std::fmt;

/// One problem found in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Whether a key takes an `{attribute}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attr {
    No,
    Required,
    Optional,
}

const MATCH: &[&str] = &["==", "!="];
const ASSIGN: &[&str] = &["=", "+=", "-=", ":="];
const BOTH: &[&str] = &["==", "!=", "=", "+=", "-=", ":="];

/// Keys of udev(7) (systemd 252), with their attribute rule and allowed operators.
fn key_spec(key: &str) -> Option<(Attr, &'static [&'static str])> {
    Some(match key {
        "ACTION" | "DEVPATH" | "KERNEL" | "KERNELS" | "SUBSYSTEM" | "SUBSYSTEMS" | "DRIVER" | "DRIVERS" | "TAGS"
        | "RESULT" => (Attr::No, MATCH),
        "ATTRS" | "CONST" => (Attr::Required, MATCH),
        "PROGRAM" => (Attr::No, MATCH),
        "TEST" => (Attr::Optional, MATCH),
        "NAME" | "SYMLINK" | "TAG" => (Attr::No, BOTH),
        "ATTR" | "SYSCTL" | "ENV" => (Attr::Required, BOTH),
        "OWNER" | "GROUP" | "MODE" | "OPTIONS" => (Attr::No, ASSIGN),
        "SECLABEL" => (Attr::Required, ASSIGN),
        "IMPORT" => (Attr::Required, ASSIGN),
        "RUN" => (Attr::Optional, ASSIGN),
        "LABEL" | "GOTO" => (Attr::No, &["="]),
        _ => return None,
    })
}

/// Checks `rules` (the text of a `.rules` file). An empty result means no problem found.
pub fn check_syntax(rules: &str) -> Vec<RuleProblem> {
    let mut problems = Vec::new();
    let mut labels = BTreeSet::new();
    let mut gotos = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (i, physical) in rules.lines().enumerate() {
        if logical.is_empty() {
            start_line = i + 1;
        }
        if let Some(head) = physical.strip_suffix('\\') {
            logical.push_str(head);
            continue;
        }
        logical.push_str(physical);
        let line = std::mem::take(&mut logical);
        check_rule(&line, start_line, &mut problems, &mut labels, &mut gotos);
    }
    if !logical.is_empty() {
        problems.push(RuleProblem { line: start_line, message: "the file ends inside a continued line".into() });
    }
    for (line, target) in gotos {
        if !labels.contains(&target) {
            problems.push(RuleProblem { line, message: format!("GOTO=\"{target}\" has no LABEL=\"{target}\"") });
        }
    }
    problems
}

fn check_rule(
    rule: &str,
    line: usize,
    problems: &mut Vec<RuleProblem>,
    labels: &mut BTreeSet<String>,
    gotos: &mut Vec<(usize, String)>,
) {
    let trimmed = rule.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return;
    }
    let mut rest = trimmed;
    let mut count = 0;
    loop {
        match parse_item(rest) {
            Ok((item, after)) => {
                count += 1;
                if let Err(message) = check_item(&item) {
                    problems.push(RuleProblem { line, message });
                }
                match item.key {
                    "LABEL" => {
                        labels.insert(item.value.to_string());
                    }
                    "GOTO" => gotos.push((line, item.value.to_string())),
                    _ => {}
                }
                let after = after.trim_start();
                if after.is_empty() {
                    break;
                }
                match after.strip_prefix(',') {
                    Some(next) if !next.trim().is_empty() => rest = next.trim_start(),
                    Some(_) => {
                        problems.push(RuleProblem { line, message: "the rule ends with a comma".into() });
                        break;
                    }
                    None => {
                        problems.push(RuleProblem {
                            line,
                            message: format!("expected ',' between items, found `{}`", preview(after)),
                        });
                        break;
                    }
                }
            }
            Err(message) => {
                problems.push(RuleProblem { line, message });
                break;
            }
        }
    }
    if count == 0 {
        problems.push(RuleProblem { line, message: "a rule needs at least one item".into() });
    }
}

/// One `KEY{attr} OP "value"` item.
struct Item<'a> {
    key: &'a str,
    attr: Option<&'a str>,
    op: &'a str,
    value: &'a str,
}

fn parse_item(text: &str) -> Result<(Item<'_>, &str), String> {
    let key_len = text.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(text.len());
    let (key, mut rest) = text.split_at(key_len);
    if key.is_empty() {
        return Err(format!("expected a key such as SUBSYSTEM or ATTR{{...}}, found `{}`", preview(text)));
    }
    let mut attr = None;
    if let Some(after_brace) = rest.strip_prefix('{') {
        let close = after_brace.find('}').ok_or_else(|| format!("{key}{{ has no closing '}}'"))?;
        let (name, after) = after_brace.split_at(close);
        if name.is_empty() {
            return Err(format!("{key}{{}} has an empty attribute"));
        }
        attr = Some(name);
        rest = after.get(1..).unwrap_or("");
    }
    let rest = rest.trim_start();
    let op = ["==", "!=", "+=", "-=", ":=", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| format!("{key}: expected an operator (==, !=, =, +=, -=, :=), found `{}`", preview(rest)))?;
    let rest = rest.get(op.len()..).unwrap_or("").trim_start();
    let body = rest.strip_prefix('"').ok_or_else(|| format!("{key}{op}: the value must be in double quotes"))?;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                end = Some(i);
                break;
            }
            _ => escaped = false,
        }
    }
    let end = end.ok_or_else(|| format!("{key}{op}: the value's closing quote is missing"))?;
    let value = body.get(..end).unwrap_or("");
    let after = body.get(end + 1..).unwrap_or("");
    Ok((Item { key, attr, op, value }, after))
}

fn check_item(item: &Item<'_>) -> Result<(), String> {
    let (attr_rule, ops) = key_spec(item.key).ok_or_else(|| format!("unknown key `{}`", item.key))?;
    match (attr_rule, item.attr) {
        (Attr::No, Some(a)) => return Err(format!("{} takes no attribute, found {{{a}}}", item.key)),
        (Attr::Required, None) => return Err(format!("{} needs an attribute: {}{{name}}", item.key, item.key)),
        _ => {}
    }
    if !ops.contains(&item.op) {
        return Err(format!("{} does not take operator {} (allowed: {})", item.key, item.op, ops.join(" ")));
    }
    if matches!(item.key, "LABEL" | "GOTO") && item.value.is_empty() {
        return Err(format!("{} needs a name", item.key));
    }
    Ok(())
}

fn preview(text: &str) -> String {
    text.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(rules: &str) -> Vec<String> {
        check_syntax(rules).into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn accepts_valid_rules() {
        let rules = "# comment\n\nACTION==\"remove\", GOTO=\"end\"\n\
            SUBSYSTEM==\"usb\", ATTR{idVendor}==\"1050\", ENV{ID_SMARTCARD_READER}=\"1\", TAG+=\"uaccess\"\n\
            SUBSYSTEM==\"hidraw\", \\\n  ATTRS{idVendor}==\"20a0\", MODE=\"0660\", RUN+=\"/bin/true \\\"x\\\"\"\n\
            LABEL=\"end\"\n";
        assert_eq!(messages(rules), Vec::<String>::new());
    }

    #[test]
    fn finds_each_kind_of_mistake() {
        let cases = [
            ("SUBSYSTEM=\"usb\"", "SUBSYSTEM does not take operator ="),
            ("SUBSYSTEMZ==\"usb\"", "unknown key `SUBSYSTEMZ`"),
            ("ATTR==\"x\"", "ATTR needs an attribute"),
            ("TAG{x}+=\"uaccess\"", "TAG takes no attribute"),
            ("ATTR{idVendor}==\"1050", "closing quote is missing"),
            ("ATTR{idVendor}==1050", "must be in double quotes"),
            ("ATTR{idVendor}~\"1050\"", "expected an operator"),
            ("TAG+=\"a\" TAG+=\"b\"", "expected ','"),
            ("TAG+=\"a\",", "ends with a comma"),
            ("GOTO=\"nowhere\"", "has no LABEL"),
            ("ATTRS{idVendor}=\"1050\"", "ATTRS does not take operator ="),
            ("OWNER==\"root\"", "OWNER does not take operator =="),
        ];
        for (rule, expected) in cases {
            let found = messages(&format!("{rule}\n"));
            assert!(found.iter().any(|m| m.contains(expected)), "{rule}: expected `{expected}`, got {found:?}");
            assert!(found.iter().all(|m| m.starts_with("line 1:")), "{rule}: {found:?}");
        }
        assert!(messages("TAG+=\"a\", \\\n").iter().any(|m| m.contains("ends inside a continued line")));
    }
}
