//! `trust inspect`: what docker CLI 28 reports about a verified repository,
//! in its JSON shape and its `--pretty` tables.
//!
//! The rules follow docker's `cli/command/trust` (common.go, inspect.go,
//! inspect_pretty.go, formatter.go):
//! - A *signed tag* is a target in a *released* role (`targets` or
//!   `targets/releases`); its signers are the other roles holding the same
//!   name and digest, named without `targets/`. No other signer means the
//!   repository key signed it, shown as `Repo Admin` (`(Repo Admin)` in the
//!   table). Rows sort in natural order of the tag.
//! - *Signers* are the delegations other than `targets/releases`, with the
//!   canonical IDs of their keys; JSON sorts them by name, descending, the
//!   table in natural order with keys sorted and cut to 12 characters.
//! - *Administrative keys* are the root role's key IDs (`Root`) and the
//!   targets role's (`Repository`), as root.json lists them.

use std::cmp::Ordering;

use bay_signer::key::KeyId;
use bay_signer::names::RoleName;
use bay_signer::schema::{RoleType, Targets};
use bay_signer::verify::TrustedRepo;
use serde::Serialize;

/// docker's name for the repository key as a signer.
pub const RELEASED_ROLE_NAME: &str = "Repo Admin";

/// One `SignedTags` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedTag {
    /// The tag.
    #[serde(rename = "SignedTag")]
    pub signed_tag: String,
    /// Hex sha256 of the manifest.
    #[serde(rename = "Digest")]
    pub digest: String,
    /// Who signed it (delegation names; `Repo Admin` for the repository key).
    #[serde(rename = "Signers")]
    pub signers: Vec<String>,
}

/// A key in docker's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustKey {
    /// Key ID.
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
}

/// A named set of keys (`Signers`, `AdministrativeKeys` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustSigner {
    /// Signer (or `Root`, `Repository`).
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its keys.
    #[serde(rename = "Keys", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<TrustKey>,
}

/// One element of `docker trust inspect`'s JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustRepoReport {
    /// The image as the user named it.
    #[serde(rename = "Name")]
    pub name: String,
    /// Signed tags.
    #[serde(rename = "SignedTags")]
    pub signed_tags: Vec<SignedTag>,
    /// Signers and their keys.
    #[serde(rename = "Signers")]
    pub signers: Vec<TrustSigner>,
    /// Root and repository keys.
    #[serde(rename = "AdministrativeKeys")]
    pub administrative_keys: Vec<TrustSigner>,
}

/// What `trust inspect` derives from a verified repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustInfo {
    /// Released rows; `signers` empty when only the repository key signed.
    pub rows: Vec<SignedTag>,
    /// Delegation name (without `targets/`) → canonical key IDs.
    pub delegations: Vec<(String, Vec<String>)>,
    /// Root role key IDs.
    pub root_keys: Vec<String>,
    /// Targets role key IDs.
    pub targets_keys: Vec<String>,
}

fn is_released(role: &RoleName) -> bool {
    *role == RoleName::targets() || *role == RoleName::releases()
}

/// `targets/alice` → `alice`; base roles keep their names.
pub fn role_to_signer(role: &RoleName) -> String {
    if is_released(role) {
        return RELEASED_ROLE_NAME.to_owned();
    }
    role.as_str()
        .strip_prefix("targets/")
        .unwrap_or(role.as_str())
        .to_owned()
}

impl TrustInfo {
    /// Collects the report for `tag` (every tag when None).
    pub fn from_repo(repo: &TrustedRepo, tag: Option<&str>) -> TrustInfo {
        let targets: Vec<_> = repo
            .all_targets()
            .into_iter()
            .filter(|t| tag.is_none_or(|want| t.name == want))
            .collect();
        let mut rows: Vec<SignedTag> = Vec::new();
        for t in targets.iter().filter(|t| is_released(&t.role)) {
            let digest = hex::encode(t.sha256);
            if !rows
                .iter()
                .any(|r| r.signed_tag == t.name && r.digest == digest)
            {
                rows.push(SignedTag {
                    signed_tag: t.name.clone(),
                    digest,
                    signers: Vec::new(),
                });
            }
        }
        for t in targets.iter().filter(|t| !is_released(&t.role)) {
            let digest = hex::encode(t.sha256);
            if let Some(r) = rows
                .iter_mut()
                .find(|r| r.signed_tag == t.name && r.digest == digest)
            {
                let s = role_to_signer(&t.role);
                if !r.signers.contains(&s) {
                    r.signers.push(s);
                }
            }
        }
        for r in &mut rows {
            r.signers.sort();
        }
        rows.sort_by(|a, b| natural_cmp(&a.signed_tag, &b.signed_tag));

        let mut delegations = Vec::new();
        let mut parents: Vec<&Targets> = repo.targets().map(|t| &t.signed).into_iter().collect();
        for name in repo.delegation_names() {
            if let Some(d) = repo.delegation(&name) {
                parents.push(&d.signed);
            }
        }
        for parent in parents {
            for d in &parent.delegations.roles {
                if d.name == RoleName::releases() {
                    continue;
                }
                let keys = d.keyids.iter().map(|id| canonical(parent, id)).collect();
                delegations.push((role_to_signer(&d.name), keys));
            }
        }
        let role_keys = |role: RoleType| -> Vec<String> {
            repo.root()
                .signed
                .role(role)
                .map(|rk| rk.keyids.iter().map(|k| k.as_str().to_owned()).collect())
                .unwrap_or_default()
        };
        TrustInfo {
            rows,
            delegations,
            root_keys: role_keys(RoleType::Root),
            targets_keys: role_keys(RoleType::Targets),
        }
    }

    /// docker's JSON object for this repository, `name` as the user typed it.
    pub fn report(&self, name: &str) -> TrustRepoReport {
        let keys = |ids: &[String]| -> Vec<TrustKey> {
            ids.iter().map(|id| TrustKey { id: id.clone() }).collect()
        };
        let signed_tags = self
            .rows
            .iter()
            .map(|r| SignedTag {
                signers: if r.signers.is_empty() {
                    vec![RELEASED_ROLE_NAME.to_owned()]
                } else {
                    r.signers.clone()
                },
                ..r.clone()
            })
            .collect();
        let mut signers: Vec<TrustSigner> = self
            .delegations
            .iter()
            .map(|(n, ids)| TrustSigner {
                name: n.clone(),
                keys: keys(ids),
            })
            .collect();
        signers.sort_by(|a, b| b.name.cmp(&a.name));
        // docker sorts by name, descending: Root before Repository.
        let administrative_keys = vec![
            TrustSigner {
                name: "Root".to_owned(),
                keys: keys(&self.root_keys),
            },
            TrustSigner {
                name: "Repository".to_owned(),
                keys: keys(&self.targets_keys),
            },
        ];
        TrustRepoReport {
            name: name.to_owned(),
            signed_tags,
            signers,
            administrative_keys,
        }
    }

    /// docker's `--pretty` text for this repository.
    pub fn pretty(&self, name: &str) -> String {
        let mut out = String::new();
        if self.rows.is_empty() {
            out.push_str(&format!("\nNo signatures for {name}\n\n"));
        } else {
            out.push_str(&format!("\nSignatures for {name}\n\n"));
            let mut table = vec![vec![
                "SIGNED TAG".to_owned(),
                "DIGEST".to_owned(),
                "SIGNERS".to_owned(),
            ]];
            for r in &self.rows {
                let signers = if r.signers.is_empty() {
                    format!("({RELEASED_ROLE_NAME})")
                } else {
                    r.signers.join(", ")
                };
                table.push(vec![r.signed_tag.clone(), r.digest.clone(), signers]);
            }
            out.push_str(&go_table(&table));
        }
        if !self.delegations.is_empty() {
            out.push_str(&format!("\nList of signers and their keys for {name}\n\n"));
            let mut signers = self.delegations.clone();
            signers.sort_by(|a, b| natural_cmp(&a.0, &b.0));
            let mut table = vec![vec!["SIGNER".to_owned(), "KEYS".to_owned()]];
            for (n, ids) in signers {
                let mut ids = ids.clone();
                ids.sort();
                let short: Vec<String> = ids.iter().map(|i| truncate_id(i)).collect();
                table.push(vec![n, short.join(", ")]);
            }
            out.push_str(&go_table(&table));
        }
        out.push_str(&format!("\nAdministrative keys for {name}\n\n"));
        // Sorted by role name, descending: targets, then root.
        for (label, ids) in [
            ("Repository Key", &self.targets_keys),
            ("Root Key", &self.root_keys),
        ] {
            let mut ids = ids.clone();
            ids.sort();
            out.push_str(&format!("  {label}:\t{}\n", ids.join(", ")));
        }
        out
    }
}

/// The canonical ID of a delegation key (the TUF ID when it has none).
fn canonical(parent: &Targets, id: &KeyId) -> String {
    parent
        .delegations
        .keys
        .get(id)
        .and_then(|k| k.canonical_id().ok())
        .unwrap_or_else(|| id.clone())
        .as_str()
        .to_owned()
}

/// docker's `TruncateID`: drops an `algo:` prefix, keeps 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

/// Natural order as `github.com/fvbommel/sortorder.NaturalLess`: digit runs
/// compare by value (digits sort before other bytes), other bytes
/// bytewise; with equal values, fewer leading zeros sort first.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[si..i], &b[sj..j]);
        let by_len = na.len().cmp(&nb.len());
        if by_len != Ordering::Equal {
            return by_len;
        }
        if na != nb {
            return na.cmp(nb);
        }
        if si != sj {
            return si.cmp(&sj);
        }
    }
    a.len().cmp(&b.len())
}

/// A table as docker's formatter writes it: Go's `tabwriter` with minimum
/// cell width 10 and padding 3; the last column is not padded.
pub fn go_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![10usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i].saturating_sub(c.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_matches_sortorder() {
        let mut v = vec![
            "v10", "v9", "latest", "v1.10", "v1.9", "1", "01", "a", "v009", "v9a",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "1", "01", "a", "latest", "v1.9", "v1.10", "v9", "v9a", "v009", "v10"
            ]
        );
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        assert_eq!(natural_cmp("x", "xy"), Ordering::Less);
    }

    #[test]
    fn tables_pad_like_go_tabwriter() {
        let t = go_table(&[
            vec!["SIGNER".into(), "KEYS".into()],
            vec!["alice".into(), "abc, def".into()],
            vec!["a-very-long-name".into(), "x".into()],
        ]);
        assert_eq!(
            t,
            "SIGNER             KEYS\nalice              abc, def\na-very-long-name   x\n"
        );
        // Minimum width 10 even for short cells.
        assert_eq!(go_table(&[vec!["A".into(), "B".into()]]), "A         B\n");
    }

    #[test]
    fn ids_truncate_like_docker() {
        assert_eq!(truncate_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(truncate_id("short"), "short");
    }

    #[test]
    fn report_shapes_and_sorts_like_docker() {
        let info = TrustInfo {
            rows: vec![
                SignedTag {
                    signed_tag: "v1".into(),
                    digest: "aa".into(),
                    signers: vec![],
                },
                SignedTag {
                    signed_tag: "v2".into(),
                    digest: "bb".into(),
                    signers: vec!["alice".into(), "bob".into()],
                },
            ],
            delegations: vec![
                ("alice".into(), vec!["k1".into()]),
                ("bob".into(), vec!["k3".into(), "k2".into()]),
            ],
            root_keys: vec!["r".into()],
            targets_keys: vec!["t".into()],
        };
        let json = serde_json::to_value(info.report("reg/app")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "Name": "reg/app",
                "SignedTags": [
                    {"SignedTag": "v1", "Digest": "aa", "Signers": ["Repo Admin"]},
                    {"SignedTag": "v2", "Digest": "bb", "Signers": ["alice", "bob"]}
                ],
                "Signers": [
                    {"Name": "bob", "Keys": [{"ID": "k3"}, {"ID": "k2"}]},
                    {"Name": "alice", "Keys": [{"ID": "k1"}]}
                ],
                "AdministrativeKeys": [
                    {"Name": "Root", "Keys": [{"ID": "r"}]},
                    {"Name": "Repository", "Keys": [{"ID": "t"}]}
                ]
            })
        );
        let text = info.pretty("reg/app");
        assert!(text.starts_with("\nSignatures for reg/app\n\nSIGNED TAG   DIGEST    SIGNERS\nv1           aa        (Repo Admin)\nv2           bb        alice, bob\n"), "{text}");
        assert!(text.contains("\nList of signers and their keys for reg/app\n\nSIGNER    KEYS\nalice     k1\nbob       k2, k3\n"), "{text}");
        assert!(
            text.ends_with(
                "\nAdministrative keys for reg/app\n\n  Repository Key:\tt\n  Root Key:\tr\n"
            ),
            "{text}"
        );
        let empty = TrustInfo {
            rows: vec![],
            delegations: vec![],
            ..info
        };
        let text = empty.pretty("reg/app:x");
        assert!(
            text.starts_with("\nNo signatures for reg/app:x\n\n\nAdministrative keys"),
            "{text}"
        );
        assert!(!text.contains("List of signers"));
    }
}
