//! `GET /v2/<gun>/_trust/changefeed` and `GET /v2/_trust/changefeed`: one
//! record per timestamp write and per GUN deletion, paged like
//! notary-server (`records` required, `0` = 100, negative = backwards;
//! `change_id` exclusive, `-1` = from the latest).

use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::TrustError;
use super::metadata_response;
use crate::api::Query;
use crate::meta::{ChangePage, Meta, TrustChange};

/// Page size when `records=0`, as Notary's `DefaultPageSize`.
const DEFAULT_PAGE: i64 = 100;

#[derive(Serialize)]
struct Record {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "GUN")]
    gun: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "SHA256")]
    sha256: String,
    #[serde(rename = "Category")]
    category: String,
}

#[derive(Serialize)]
struct Feed {
    count: usize,
    records: Vec<Record>,
}

/// Go's `strconv.ParseInt(s, 10, 32)`, with its error text.
fn parse_go_i32(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i32>()
        .map(i64::from)
        .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: value out of range"))
}

/// The page the query asks for.
pub(crate) fn page(query: &Query) -> Result<ChangePage, TrustError> {
    let records = parse_go_i32(query.get("records").unwrap_or("")).map_err(|e| {
        TrustError::InvalidParameters {
            detail: format!("invalid records parameter: {e}"),
        }
    })?;
    let change_id = match query.get("change_id").unwrap_or("") {
        "" => 0,
        s => parse_go_i32(s).map_err(|_| TrustError::BadChangeId {
            change_id: s.to_owned(),
        })?,
    };
    let records = if records == 0 { DEFAULT_PAGE } else { records };
    Ok(ChangePage {
        change_id,
        records: records.abs(),
        reversed: change_id < 0 || records < 0,
    })
}

fn record(c: TrustChange) -> Record {
    let t = chrono::DateTime::from_timestamp_nanos(c.created_at);
    Record {
        id: c.id.to_string(),
        created_at: bay_signer::schema::format_go_time(&t),
        gun: c.gun,
        version: c.version,
        sha256: c.sha256,
        category: c.category,
    }
}

/// Answers a changefeed request for one GUN (`Some`) or all.
pub(crate) async fn get(
    meta: &Meta,
    gun: Option<&str>,
    query: &Query,
) -> Result<Response, TrustError> {
    let page = page(query)?;
    let changes = meta.trust_changes(gun, page).await?;
    let feed = Feed {
        count: changes.len(),
        records: changes.into_iter().map(record).collect(),
    };
    let body = serde_json::to_vec(&feed).unwrap_or_default();
    Ok(metadata_response(body, None, None).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_parse_errors() {
        assert_eq!(parse_go_i32("12"), Ok(12));
        assert_eq!(parse_go_i32("-3"), Ok(-3));
        assert_eq!(
            parse_go_i32(""),
            Err(r#"strconv.ParseInt: parsing "": invalid syntax"#.to_owned())
        );
        assert_eq!(
            parse_go_i32("99999999999"),
            Err(r#"strconv.ParseInt: parsing "99999999999": value out of range"#.to_owned())
        );
        assert!(parse_go_i32("1x").is_err());
    }
}
