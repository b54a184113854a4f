//! Canonical JSON exactly as docker/go `canonical/json` writes it (the form
//! Notary signs).
//!
//! Rules: object keys sorted bytewise, no whitespace, only `"` and `\`
//! escaped (control characters, `<>&` and non-ASCII are written raw), and
//! non-integer numbers are an error.
//!
//! This is hand-rolled (about forty lines) rather than taken from the
//! `olpc-cjson` crate because that crate NFC-normalizes every string, which Go
//! does not: a target name in decomposed Unicode would canonicalize
//! differently and its signature would not verify. We also write over a
//! `serde_json::Value` and sort keys ourselves, so serde_json's
//! `preserve_order` feature (which another crate of the workspace may turn
//! on) cannot change the output.

use serde::Serialize;
use serde_json::Value;

/// The largest integer that survives Go's float64 round trip exactly (2^53).
/// Notary parses `signed` into `interface{}` before canonicalizing, so any
/// integer above this would be re-encoded differently by Go.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Errors while producing canonical JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number that is not an integer (canonical JSON has no floats).
    #[error("canonical json cannot encode the non-integer number {number}")]
    NonInteger {
        /// The offending number as text.
        number: String,
    },
    /// An integer too large to survive Go's float64 round trip.
    #[error("canonical json cannot encode {number}: integers must stay within 2^53")]
    IntegerTooLarge {
        /// The offending number as text.
        number: String,
    },
    /// The value could not be turned into JSON at all.
    #[error("value cannot be represented as json")]
    Serialize {
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// Canonical bytes of any serializable value.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value =
        serde_json::to_value(value).map_err(|source| CanonicalError::Serialize { source })?;
    value_to_canonical(&value)
}

/// Canonical bytes of a parsed JSON value (the verify path: parse `signed`
/// generically, then canonicalize, never slice the raw bytes).
pub fn value_to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(CanonicalError::IntegerTooLarge {
                number: n.to_string(),
            });
        }
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(CanonicalError::IntegerTooLarge {
                number: n.to_string(),
            });
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        // A float: Go accepts it when it is integral (`1.0` becomes `1`).
        let f = n.as_f64().unwrap_or(f64::NAN);
        if !f.is_finite() || f.fract() != 0.0 {
            return Err(CanonicalError::NonInteger {
                number: n.to_string(),
            });
        }
        if f.abs() > MAX_SAFE_INTEGER as f64 {
            return Err(CanonicalError::IntegerTooLarge {
                number: n.to_string(),
            });
        }
        // In range and integral, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        out.extend_from_slice(i.to_string().as_bytes());
    }
    Ok(())
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_bytewise_without_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "B": {"z": 0, "_": -3}});
        assert_eq!(
            value_to_canonical(&v).unwrap(),
            br#"{"B":{"_":-3,"z":0},"a":[true,null,"x"],"b":1}"#
        );
    }

    /// trust-facts §2.3: Go's `json.Marshal` HTML-escapes on the wire, but the
    /// signature covers the unescaped canonical bytes.
    #[test]
    fn html_escape_trap_is_undone_by_reparsing() {
        let wire = r#"{"a\u003cb\u003e\u0026c-é": {"length": 1}}"#;
        let v: Value = serde_json::from_str(wire).unwrap();
        let canon = value_to_canonical(&v).unwrap();
        assert_eq!(canon, "{\"a<b>&c-é\":{\"length\":1}}".as_bytes());
        assert_ne!(canon, wire.as_bytes());
    }

    #[test]
    fn only_quote_and_backslash_are_escaped() {
        let v = json!("q\"b\\n\nt\tc\u{1}<é>");
        assert_eq!(
            value_to_canonical(&v).unwrap(),
            "\"q\\\"b\\\\n\nt\tc\u{1}<é>\"".as_bytes()
        );
    }

    #[test]
    fn does_not_normalize_unicode() {
        // "e" + combining acute accent stays decomposed (olpc-cjson would NFC it).
        let v = json!("e\u{301}");
        assert_eq!(value_to_canonical(&v).unwrap(), "\"e\u{301}\"".as_bytes());
    }

    #[test]
    fn floats_are_refused_unless_integral() {
        let v: Value = serde_json::from_str("[1.5]").unwrap();
        assert!(matches!(
            value_to_canonical(&v),
            Err(CanonicalError::NonInteger { .. })
        ));
        let v: Value = serde_json::from_str("[2.0, 1e3]").unwrap();
        assert_eq!(value_to_canonical(&v).unwrap(), b"[2,1000]");
        let v: Value = serde_json::from_str("[9007199254740993]").unwrap();
        assert!(matches!(
            value_to_canonical(&v),
            Err(CanonicalError::IntegerTooLarge { .. })
        ));
    }
}
