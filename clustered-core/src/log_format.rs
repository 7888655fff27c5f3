//! [`LogFormat`]: how the master writes lines, its own and each worker's (`CLUSTER_LOG_FORMAT`):
//! `text` (`2|app | listening`, the default) or `json`, one object per line with `ts`,
//! `level`, `worker`, `stream` and `msg`, the form log collectors in a container parse.

use std::time::{SystemTime, UNIX_EPOCH};

/// How the master writes lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LogFormat {
    /// `2|app | listening`: for people.
    #[default]
    Text,
    /// One JSON object per line: for log collectors.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub(crate) fn parse(text: &str) -> Option<LogFormat> {
        match text.trim() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// The format `CLUSTER_LOG_FORMAT` asks for (text when unset or not understood: the
    /// settings then stop the master saying why).
    pub(crate) fn from_env() -> LogFormat {
        std::env::var(crate::env::LOG_FORMAT)
            .ok()
            .and_then(|text| LogFormat::parse(&text))
            .unwrap_or_default()
    }

    /// Its name, as the variable takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Prints one of the cluster's own announcements (`metrics on http://…`) to stdout, as text or
/// as a JSON object, as `CLUSTER_LOG_FORMAT` asks.
#[cfg(feature = "metrics-endpoint")]
pub(crate) fn announce(text: &str) {
    match LogFormat::from_env() {
        LogFormat::Text => println!("{text}"),
        LogFormat::Json => println!("{}", json_line(SystemTime::now(), "info", None, None, text)),
    }
}

/// One line as a JSON object: `{"ts":…,"level":…,"worker":…,"stream":…,"msg":…}` (`worker`
/// and `stream` null for the master's own lines).
pub(crate) fn json_line(
    at: SystemTime,
    level: &str,
    worker: Option<usize>,
    stream: Option<&str>,
    msg: &str,
) -> String {
    serde_json::json!({
        "ts": rfc3339(at),
        "level": level,
        "worker": worker,
        "stream": stream,
        "msg": msg,
    })
    .to_string()
}

/// `at` as RFC 3339 in UTC with milliseconds: `2026-12-01T23:10:52.123Z`.
fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, day_seconds) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        day_seconds / 3600,
        day_seconds % 3600 / 60,
        day_seconds % 60,
        since.subsec_millis()
    )
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::{LogFormat, json_line, rfc3339};

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_796_166_652_123);
        assert_eq!(rfc3339(at), "2026-12-01T23:10:52.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_line_is_one_object_with_its_fields_and_the_text_escaped() {
        let line = json_line(
            UNIX_EPOCH,
            "error",
            Some(2),
            Some("err"),
            "a \"quoted\"\tline",
        );
        let object: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(object["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(object["level"], "error");
        assert_eq!(object["worker"], 2);
        assert_eq!(object["stream"], "err");
        assert_eq!(object["msg"], "a \"quoted\"\tline");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_format_is_text_or_json() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(" text "), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
