//! The certificates on the carriers present: expired ones, and ones that expire within
//! [`WARN_DAYS`] days.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Environment, Finding};

/// Check id.
pub const ID: &str = "certificates";

/// Certificates that expire within this many days are reported.
pub const WARN_DAYS: i64 = 30;

const DAY: i64 = 86_400;

const RENEW: &str = "renew it: make a request on the carrier with `ukey csr`, have your certificate authority issue a \
     new certificate, and store it with `ukey cert import`";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn date(unix: i64) -> String {
    // Days since the epoch to a civil date (proleptic Gregorian), for messages.
    let days = unix.div_euclid(DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One finding per certificate that needs attention, and a summary of the rest.
pub fn check(env: &Environment<'_>) -> Vec<Finding> {
    let inventory = (env.carriers)();
    let now = now();
    let mut out = Vec::new();
    let (mut fine, mut carriers_read) = (0usize, 0usize);
    for carrier in &inventory.carriers {
        let info = carrier.info();
        let name = format!("{} ({})", info.label, info.id);
        let list = match carrier.objects() {
            Ok(list) => list,
            Err(e) => {
                out.push(
                    Finding::warn(
                        ID,
                        format!("the certificates of {name} cannot be read: {e}"),
                        "see the other checks",
                    )
                    .about(name),
                );
                continue;
            }
        };
        carriers_read += 1;
        for cert in &list.certificates {
            let c = &cert.info;
            let subject = format!("{name}: {}", c.subject_cn());
            let left = c.not_after.saturating_sub(now);
            let finding = if c.not_after < now {
                Finding::fail(
                    ID,
                    format!("the certificate \"{}\" on {name} expired on {}", c.subject, date(c.not_after)),
                    RENEW,
                )
            } else if c.not_before > now {
                Finding::warn(
                    ID,
                    format!("the certificate \"{}\" on {name} is not valid before {}", c.subject, date(c.not_before)),
                    "check the computer's clock; if it is right, wait or ask the issuer",
                )
            } else if left <= WARN_DAYS * DAY {
                Finding::warn(
                    ID,
                    format!(
                        "the certificate \"{}\" on {name} expires in {} day(s), on {}",
                        c.subject,
                        left / DAY,
                        date(c.not_after)
                    ),
                    RENEW,
                )
            } else {
                fine += 1;
                continue;
            };
            out.push(finding.about(subject));
        }
    }
    out.insert(
        0,
        Finding::ok(
            ID,
            format!(
                "{fine} certificate(s) valid for more than {WARN_DAYS} days on {carriers_read} carrier(s) read \
                 ({} present)",
                inventory.carriers.len()
            ),
        ),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(4_102_444_800), "2100-01-01");
    }
}
