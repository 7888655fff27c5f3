//! Numbers read from Redis, parsed without panics: what does not fit is clamped, what is not a
//! number is an error.

use redis::Value;

use crate::FleetError;

/// An integer from a reply (an integer, or a string holding one; nil is 0), clamped to `i64`.
pub(crate) fn integer(value: &Value) -> Result<i64, FleetError> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::Nil => Ok(0),
        Value::BulkString(bytes) => parse(&String::from_utf8_lossy(bytes)),
        Value::SimpleString(text) => parse(text),
        Value::Double(d) if d.is_finite() => Ok(*d as i64),
        other => Err(FleetError::Redis(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

/// A decimal integer, clamped to `i64` when it is longer.
pub(crate) fn parse(text: &str) -> Result<i64, FleetError> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(if text.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        });
    }
    Err(FleetError::Redis(format!("{text:?} is not an integer")))
}

/// A string from a reply (`None` for nil).
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_clamp_and_refuse() {
        assert_eq!(parse("42").unwrap(), 42);
        assert_eq!(parse("-7").unwrap(), -7);
        assert_eq!(parse("99999999999999999999999").unwrap(), i64::MAX);
        assert_eq!(parse("-99999999999999999999999").unwrap(), i64::MIN);
        assert!(parse("12x").is_err());
        assert!(parse("-").is_err());
        assert_eq!(integer(&Value::Nil).unwrap(), 0);
        assert_eq!(integer(&Value::BulkString(b"5".to_vec())).unwrap(), 5);
        assert!(integer(&Value::Array(vec![])).is_err());
    }
}
