//! Access rules: who may pull, push or delete on which repository patterns.
//!
//! Patterns are exact names, `team/*` (one more path component) or
//! `team/**` (any depth below `team/`); `*` and `**` alone match one
//! component or everything. Admins may do everything. Rules only grant;
//! what no rule grants is denied.

use crate::auth::scope::Action;
use crate::meta::{RuleSubject, StoredRule, User};

/// Whether `pattern` matches repository `name`.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    matches(&p, &n)
}

fn matches(p: &[&str], n: &[&str]) -> bool {
    match (p.first(), n.first()) {
        (None, None) => true,
        (Some(&"**"), _) => (0..=n.len()).any(|i| matches(&p[1..], &n[i..])) && !n.is_empty(),
        (Some(seg), Some(name)) => segment(seg, name) && matches(&p[1..], &n[1..]),
        _ => false,
    }
}

/// `*` inside a component matches any run of characters in it.
fn segment(p: &str, n: &str) -> bool {
    match p.split_once('*') {
        None => p == n,
        Some((pre, rest)) => {
            if !n.starts_with(pre) {
                return false;
            }
            let tail = &n[pre.len()..];
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && segment(rest, &tail[i..]))
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Subject<'a> {
    /// No credentials.
    Anonymous,
    /// An authenticated user.
    User(&'a User),
}

/// The actions `who` may perform on repository `name` under `rules`.
pub fn allowed(rules: &[StoredRule], who: &Subject<'_>, name: &str) -> Vec<Action> {
    if let Subject::User(u) = who
        && u.admin
    {
        return vec![Action::Pull, Action::Push, Action::Delete, Action::All];
    }
    let mut out = Vec::new();
    for r in rules {
        let applies = match (&r.subject, who) {
            (RuleSubject::Anonymous, _) => true,
            (RuleSubject::User(n), Subject::User(u)) => *n == u.name,
            (RuleSubject::Group(g), Subject::User(u)) => u.groups.contains(g),
            _ => false,
        };
        if applies && pattern_matches(&r.pattern, name) {
            for a in &r.actions {
                if let Some(a) = Action::parse(a) {
                    if a == Action::All {
                        out.extend([Action::Pull, Action::Push, Action::Delete, Action::All]);
                    } else {
                        out.push(a);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("team/app", "team/app"));
        assert!(!pattern_matches("team/app", "team/app2"));
        assert!(pattern_matches("team/*", "team/app"));
        assert!(!pattern_matches("team/*", "team/sub/app"));
        assert!(!pattern_matches("team/*", "team"));
        assert!(pattern_matches("team/**", "team/sub/app"));
        assert!(pattern_matches("team/**", "team/app"));
        assert!(!pattern_matches("team/**", "team"));
        assert!(!pattern_matches("team/**", "teams/app"));
        assert!(pattern_matches("**", "anything/at/all"));
        assert!(pattern_matches("team/app-*", "team/app-web"));
        assert!(!pattern_matches("team/app-*", "team/web"));
    }

    fn rule(subject: RuleSubject, pattern: &str, actions: &[&str]) -> StoredRule {
        StoredRule {
            id: 0,
            subject,
            pattern: pattern.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn rules_grant_by_user_group_and_anonymous() {
        let rules = vec![
            rule(
                RuleSubject::User("alice".into()),
                "team/**",
                &["pull", "push"],
            ),
            rule(RuleSubject::Group("ops".into()), "team/app", &["delete"]),
            rule(RuleSubject::Anonymous, "public/*", &["pull"]),
        ];
        let alice = User {
            name: "alice".into(),
            password_hash: String::new(),
            admin: false,
            groups: vec!["ops".into()],
        };
        let bob = User {
            name: "bob".into(),
            password_hash: String::new(),
            admin: false,
            groups: vec![],
        };
        let root = User {
            name: "root".into(),
            password_hash: String::new(),
            admin: true,
            groups: vec![],
        };
        assert_eq!(
            allowed(&rules, &Subject::User(&alice), "team/app"),
            vec![Action::Pull, Action::Push, Action::Delete]
        );
        assert_eq!(allowed(&rules, &Subject::User(&alice), "other/app"), vec![]);
        assert_eq!(allowed(&rules, &Subject::User(&bob), "team/app"), vec![]);
        assert_eq!(
            allowed(&rules, &Subject::User(&bob), "public/x"),
            vec![Action::Pull]
        );
        assert_eq!(
            allowed(&rules, &Subject::Anonymous, "public/x"),
            vec![Action::Pull]
        );
        assert_eq!(allowed(&rules, &Subject::Anonymous, "team/app"), vec![]);
        assert!(allowed(&rules, &Subject::User(&root), "x/y").contains(&Action::Delete));
    }
}
