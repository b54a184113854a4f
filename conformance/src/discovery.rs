//! Content discovery: tag lists and their pagination (end-8a/b), `_catalog`, and the
//! referrers API (end-12a/b) including the artifactType filter and the tag-schema fallback.

use std::collections::{BTreeMap, BTreeSet};

use oci_types::Digest;
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::check::{
    Check, TagOrder, ensure, expect_error, expect_status, fail, link_next, require_header, skip,
};
use crate::ctx::{Ctx, Manifest, absent_digest, mt};
use crate::http::Response;
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("tags-list-sorted", tags_sorted),
        case!("tags-list-n", tags_n),
        case!("tags-list-last", tags_last),
        case!("tags-list-n-zero", tags_n_zero),
        case!("tags-list-n-large", tags_n_large),
        case!("tags-list-many", tags_many),
        case!("tags-list-unknown-repo", tags_unknown_repo),
        case!("catalog", catalog),
        case!("referrers-subject-header", referrers_subject_header),
        case!("referrers-unknown-digest", referrers_unknown_digest),
        case!("referrers-list", referrers_list),
        case!("referrers-filter", referrers_filter),
        case!("referrers-missing-subject", referrers_missing_subject),
        case!("referrers-invalid-digest", referrers_invalid_digest),
        case!("referrers-tag-schema", referrers_tag_schema),
        case!("referrers-repo-isolation", referrers_repo_isolation),
        case!("referrers-many", referrers_many),
        case!(
            "referrers-index-artifact-type",
            referrers_index_artifact_type
        ),
        case!("referrers-of-index", referrers_of_index),
    ]
}

/// Tags whose byte order and case-insensitive order differ, none differing only by case.
const TAGS: [&str; 10] = [
    "latest", "v1", "B4", "v2", "a3", "Z9", "c_1", "A-2", "b.5", "0.1",
];

/// Push one image and tag it with every tag in [`TAGS`].
async fn tagged_repo(ctx: &Ctx, label: &str) -> Check<String> {
    let repo = ctx.repo(label);
    let m = ctx.prepare_image(&repo, json!({})).await?;
    for t in TAGS {
        ctx.put_manifest(&repo, t, &m).await?;
    }
    Ok(repo)
}

/// One page of a tag list: the tags and the resolved `rel="next"` link.
struct Page {
    tags: Vec<String>,
    next: Option<Url>,
}

fn next_link(resp: &Response) -> Check<Option<Url>> {
    match link_next(resp.header_all("link")) {
        None => Ok(None),
        Some(t) => match resp.url.join(&t) {
            Ok(u) => Ok(Some(u)),
            Err(e) => fail!("unusable Link target {t:?} ({e})"),
        },
    }
}

async fn tag_page(ctx: &Ctx, url: &Url, repo: &str) -> Check<Page> {
    let resp = ctx.call_url(Method::GET, url).send().await?;
    expect_status(&resp, &[200])?;
    let ct = require_header(&resp, "content-type")?;
    ensure!(
        ct.starts_with("application/json"),
        "tag list Content-Type {ct:?} is not application/json"
    );
    let v: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => fail!("tag list is not JSON ({e}): {}", resp.describe()),
    };
    ensure!(
        v.get("name").and_then(Value::as_str) == Some(repo),
        "tag list name is not {repo}: {}",
        resp.describe()
    );
    let tags = match v.get("tags") {
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for t in a {
                match t.as_str() {
                    Some(s) => out.push(s.to_owned()),
                    None => fail!("non-string tag in {}", resp.describe()),
                }
            }
            out
        }
        // Go servers marshal an empty slice as null; accept it as an empty page.
        Some(Value::Null) | None => Vec::new(),
        Some(_) => fail!("\"tags\" is not an array: {}", resp.describe()),
    };
    Ok(Page {
        tags,
        next: next_link(&resp)?,
    })
}

/// Follow `Link` pages from `start` and return every tag in order (at most 50 pages).
async fn all_pages(
    ctx: &Ctx,
    start: Url,
    repo: &str,
    page_max: Option<usize>,
) -> Check<Vec<String>> {
    let mut out = Vec::new();
    let mut url = Some(start);
    let mut pages = 0;
    while let Some(u) = url {
        pages += 1;
        ensure!(pages <= 50, "more than 50 pages of tags: Link loops?");
        let page = tag_page(ctx, &u, repo).await?;
        if let Some(n) = page_max {
            ensure!(
                page.tags.len() <= n,
                "page {} has {} tags, more than n={n}",
                u,
                page.tags.len()
            );
        }
        if page.next.is_some() {
            ensure!(!page.tags.is_empty(), "empty page with a Link to more: {u}");
        }
        out.extend(page.tags);
        url = page.next;
    }
    Ok(out)
}

fn expected_tags() -> BTreeSet<String> {
    TAGS.iter().map(|t| t.to_string()).collect()
}

fn sorted(order: TagOrder) -> Vec<String> {
    let mut v: Vec<String> = expected_tags().into_iter().collect();
    v.sort_by(|a, b| order.cmp(a, b));
    v
}

fn tags_url(ctx: &Ctx, repo: &str, query: &str) -> Check<Url> {
    Ok(ctx.http.resolve(&format!("/v2/{repo}/tags/list{query}"))?)
}

async fn tags_sorted(ctx: Ctx) -> Check {
    let repo = tagged_repo(&ctx, "tags-sorted").await?;
    let tags = all_pages(&ctx, tags_url(&ctx, &repo, "")?, &repo, None).await?;
    let set: BTreeSet<String> = tags.iter().cloned().collect();
    ensure!(set.len() == tags.len(), "duplicate tags in {tags:?}");
    ensure!(
        set == expected_tags(),
        "tag list {tags:?} != pushed {TAGS:?}"
    );
    ensure!(
        TagOrder::detect(&tags).is_some(),
        "tag list is not sorted (neither byte order nor case-insensitive): {tags:?}"
    );
    Ok(())
}

async fn tags_n(ctx: Ctx) -> Check {
    let repo = tagged_repo(&ctx, "tags-n").await?;
    let first = tags_url(&ctx, &repo, "?n=4")?;
    let page = tag_page(&ctx, &first, &repo).await?;
    ensure!(
        page.tags.len() == 4,
        "?n=4 returned {} tags: {:?}",
        page.tags.len(),
        page.tags
    );
    let heads: Vec<Vec<String>> = [TagOrder::Bytewise, TagOrder::CaseInsensitive]
        .into_iter()
        .map(|o| sorted(o)[..4].to_vec())
        .collect();
    ensure!(
        heads.contains(&page.tags),
        "?n=4 returned {:?}, not the first 4 sorted tags ({:?})",
        page.tags,
        heads
    );
    ensure!(
        page.next.is_some(),
        "?n=4 with {} tags must send Link rel=\"next\"",
        TAGS.len()
    );
    let all = all_pages(&ctx, first, &repo, Some(4)).await?;
    let set: BTreeSet<String> = all.iter().cloned().collect();
    ensure!(set.len() == all.len(), "Link pages repeat tags: {all:?}");
    ensure!(
        set == expected_tags(),
        "Link pages give {all:?}, not every tag once"
    );
    ensure!(
        TagOrder::detect(&all).is_some(),
        "paged tags are not sorted: {all:?}"
    );
    Ok(())
}

async fn tags_last(ctx: Ctx) -> Check {
    let repo = tagged_repo(&ctx, "tags-last").await?;
    let mut errors = Vec::new();
    for order in [TagOrder::Bytewise, TagOrder::CaseInsensitive] {
        let all = sorted(order);
        let last = &all[2];
        let rest: Vec<String> = all[3..].to_vec();
        let page = tag_page(
            &ctx,
            &tags_url(&ctx, &repo, &format!("?n=3&last={last}"))?,
            &repo,
        )
        .await?;
        let with_n = page.tags.len() <= 3
            && !page.tags.is_empty()
            && rest.starts_with(&page.tags)
            && (page.tags.len() == 3 || page.next.is_some());
        let all_after = all_pages(
            &ctx,
            tags_url(&ctx, &repo, &format!("?last={last}"))?,
            &repo,
            None,
        )
        .await?;
        if with_n && all_after == rest {
            return Ok(());
        }
        errors.push(format!(
            "{order:?}: n=3&last={last} gave {:?}, last={last} gave {all_after:?}, expected a prefix of / all of {rest:?}",
            page.tags
        ));
    }
    fail!(
        "last is not exclusive in any accepted order: {}",
        errors.join("; ")
    )
}

async fn tags_n_zero(ctx: Ctx) -> Check {
    let repo = tagged_repo(&ctx, "tags-n-zero").await?;
    let page = tag_page(&ctx, &tags_url(&ctx, &repo, "?n=0")?, &repo).await?;
    ensure!(
        page.tags.is_empty(),
        "?n=0 must return an empty list, got {:?}",
        page.tags
    );
    Ok(())
}

async fn tags_unknown_repo(ctx: Ctx) -> Check {
    let repo = ctx.repo("never-created");
    let resp = ctx
        .call(Method::GET, &format!("/v2/{repo}/tags/list"))
        .send()
        .await?;
    expect_error(&resp, &[404], &["NAME_UNKNOWN"])?;
    Ok(())
}

async fn catalog(ctx: Ctx) -> Check {
    let repo = ctx.repo("catalog");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &m).await?;
    let probe = ctx.call(Method::GET, "/v2/_catalog?n=2").send().await?;
    match probe.status.as_u16() {
        200 => {}
        401 | 403 | 404 | 405 => skip!("_catalog not offered (MAY): {}", probe.describe()),
        400 if expect_error(&probe, &[400], &["UNSUPPORTED"]).is_ok() => {
            skip!("_catalog not offered (MAY): {}", probe.describe())
        }
        _ => fail!("_catalog?n=2: {}", probe.describe()),
    }
    let names = catalog_names(&probe)?;
    ensure!(
        names.len() <= 2,
        "_catalog?n=2 returned {} names",
        names.len()
    );
    if names.len() == 2 {
        ensure!(
            next_link(&probe)?.is_some(),
            "_catalog?n=2 page is full but has no Link"
        );
    }
    // Start just before our repository (its name minus the random suffix) and page on.
    let prefix = repo.rsplit_once('-').map(|(p, _)| p).unwrap_or(&repo);
    let mut url = Some(
        ctx.http
            .resolve(&format!("/v2/_catalog?n=100&last={prefix}"))?,
    );
    let mut pages = 0;
    while let Some(u) = url {
        pages += 1;
        ensure!(pages <= 100, "_catalog: 100 pages without finding {repo}");
        let resp = ctx.call_url(Method::GET, &u).send().await?;
        expect_status(&resp, &[200])?;
        let names = catalog_names(&resp)?;
        ensure!(
            names.len() <= 100,
            "_catalog?n=100 returned {} names",
            names.len()
        );
        if names.iter().any(|n| n == &repo) {
            return Ok(());
        }
        ensure!(
            names.iter().all(|n| n.as_str() > prefix),
            "_catalog last={prefix} returned names not after it: {names:?}"
        );
        url = next_link(&resp)?;
    }
    fail!("_catalog never lists {repo}")
}

fn catalog_names(resp: &Response) -> Check<Vec<String>> {
    let v: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => fail!("_catalog is not JSON ({e}): {}", resp.describe()),
    };
    match v.get("repositories") {
        Some(Value::Array(a)) => Ok(a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()),
        Some(Value::Null) => Ok(Vec::new()),
        _ => fail!("_catalog has no repositories array: {}", resp.describe()),
    }
}

const SBOM: &str = "application/vnd.bay.test.sbom";
const SIG: &str = "application/vnd.bay.test.signature";
const CFG: &str = "application/vnd.bay.test.config.v1+json";

/// What the official suite's setup builds: 2 referrers before the subject, the subject, 2
/// more, 1 referrer of a missing subject and 1 index referrer.
struct RefSetup {
    repo: String,
    subject: Manifest,
    missing: Digest,
    /// Expected descriptors of the subject's referrers, by digest.
    expected: BTreeMap<String, Value>,
    /// Expected descriptors of the missing subject's referrers.
    expected_missing: BTreeMap<String, Value>,
    /// `OCI-Subject` problems seen while pushing.
    header_problems: Vec<String>,
}

fn expect_desc(m: &Manifest, artifact_type: Option<&str>, annotations: &Value) -> Value {
    let mut d = m.descriptor();
    if let Some(a) = artifact_type {
        crate::ctx::merge(&mut d, json!({"artifactType": a}));
    }
    crate::ctx::merge(&mut d, json!({"annotations": annotations}));
    d
}

async fn setup_referrers(ctx: &Ctx, label: &str) -> Check<RefSetup> {
    let repo = ctx.repo(label);
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    let missing = absent_digest();
    let missing_desc =
        json!({"mediaType": mt::OCI_MANIFEST, "digest": missing.to_string(), "size": 1234});
    let mut s = RefSetup {
        repo: repo.clone(),
        subject: subject.clone(),
        missing: missing.clone(),
        expected: BTreeMap::new(),
        expected_missing: BTreeMap::new(),
        header_problems: Vec::new(),
    };

    // (artifactType field, config media type, expected descriptor artifactType, annotation)
    let plan: [(Option<&str>, &str, Option<&str>, &str); 4] = [
        (Some(SBOM), mt::OCI_EMPTY, Some(SBOM), "r1"),
        (None, CFG, Some(CFG), "r2"),
        (Some(SBOM), mt::OCI_EMPTY, Some(SBOM), "r3"),
        (Some(SIG), mt::OCI_EMPTY, Some(SIG), "r4"),
    ];
    let mut pushed = Vec::new();
    for (i, (field, cfg, want, ann)) in plan.into_iter().enumerate() {
        if i == 2 {
            ctx.put_manifest(&repo, "subject", &subject).await?;
        }
        let annotations = json!({"org.bay.test.referrer": ann});
        let mut extra = json!({"subject": subject.descriptor(), "annotations": annotations});
        if let Some(a) = field {
            crate::ctx::merge(&mut extra, json!({"artifactType": a}));
        }
        let m = ctx.prepare_artifact(&repo, cfg, extra).await?;
        push_referrer(ctx, &mut s, &m, &subject.digest).await?;
        s.expected
            .insert(m.digest.to_string(), expect_desc(&m, want, &annotations));
        pushed.push(m);
    }

    let annotations = json!({"org.bay.test.referrer": "r5"});
    let r5 = ctx
        .prepare_artifact(
            &repo,
            mt::OCI_EMPTY,
            json!({"artifactType": SBOM, "subject": missing_desc, "annotations": annotations}),
        )
        .await?;
    push_referrer(ctx, &mut s, &r5, &missing).await?;
    s.expected_missing.insert(
        r5.digest.to_string(),
        expect_desc(&r5, Some(SBOM), &annotations),
    );

    let annotations = json!({"org.bay.test.referrer": "r6"});
    let r6 = Manifest::new(
        &json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": [pushed[0].descriptor()],
            "subject": subject.descriptor(),
            "annotations": annotations,
        }),
        mt::OCI_INDEX,
    );
    push_referrer(ctx, &mut s, &r6, &subject.digest).await?;
    s.expected
        .insert(r6.digest.to_string(), expect_desc(&r6, None, &annotations));
    Ok(s)
}

async fn push_referrer(ctx: &Ctx, s: &mut RefSetup, m: &Manifest, subject: &Digest) -> Check {
    let resp = ctx.put_manifest(&s.repo, &m.digest.to_string(), m).await?;
    match resp.header("oci-subject") {
        Some(h) if h == subject.to_string() => {}
        Some(h) => s
            .header_problems
            .push(format!("OCI-Subject {h} != {subject} for {}", m.digest)),
        None => s
            .header_problems
            .push(format!("no OCI-Subject on PUT of {}", m.digest)),
    }
    Ok(())
}

/// GET referrers (following `Link` pages); returns descriptors and the first response.
async fn referrers(
    ctx: &Ctx,
    repo: &str,
    digest: &str,
    query: &str,
) -> Check<(Vec<Value>, Response)> {
    let mut url = Some(
        ctx.http
            .resolve(&format!("/v2/{repo}/referrers/{digest}{query}"))?,
    );
    let mut first = None;
    let mut out = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        pages += 1;
        ensure!(pages <= 20, "more than 20 referrers pages: Link loops?");
        let resp = ctx.call_url(Method::GET, &u).send().await?;
        expect_status(&resp, &[200])?;
        let ct = require_header(&resp, "content-type")?;
        ensure!(
            ct.split(';').next().map(str::trim) == Some(mt::OCI_INDEX),
            "referrers Content-Type {ct:?} is not {}",
            mt::OCI_INDEX
        );
        let v: Value = match serde_json::from_slice(&resp.body) {
            Ok(v) => v,
            Err(e) => fail!("referrers body is not JSON ({e}): {}", resp.describe()),
        };
        ensure!(
            v.get("schemaVersion").and_then(Value::as_u64) == Some(2),
            "referrers index lacks schemaVersion 2: {}",
            resp.describe()
        );
        if let Some(m) = v.get("mediaType") {
            ensure!(m == mt::OCI_INDEX, "referrers index mediaType {m}");
        }
        match v.get("manifests") {
            Some(Value::Array(a)) => out.extend(a.iter().cloned()),
            _ => fail!(
                "referrers index has no manifests array: {}",
                resp.describe()
            ),
        }
        url = next_link(&resp)?;
        first.get_or_insert(resp);
    }
    match first {
        Some(f) => Ok((out, f)),
        None => fail!("suite bug: no referrers page fetched"),
    }
}

/// The descriptors must be exactly `expected` (matched by digest, every field compared).
fn same_descriptors(got: &[Value], expected: &BTreeMap<String, Value>) -> Check {
    let mut seen = BTreeSet::new();
    for d in got {
        let digest = d.get("digest").and_then(Value::as_str).unwrap_or_default();
        ensure!(
            seen.insert(digest.to_owned()),
            "descriptor {digest} listed twice"
        );
        let Some(want) = expected.get(digest) else {
            fail!("unexpected referrer {d}");
        };
        for field in ["mediaType", "size", "annotations"] {
            ensure!(
                d.get(field) == want.get(field),
                "referrer {digest}: {field} is {:?}, expected {:?}",
                d.get(field),
                want.get(field)
            );
        }
        let got_at = d.get("artifactType").filter(|v| !v.is_null());
        ensure!(
            got_at == want.get("artifactType"),
            "referrer {digest}: artifactType is {got_at:?}, expected {:?}",
            want.get("artifactType")
        );
    }
    let missing: Vec<&String> = expected.keys().filter(|k| !seen.contains(*k)).collect();
    ensure!(
        missing.is_empty(),
        "referrers missing {missing:?} (got {} of {})",
        seen.len(),
        expected.len()
    );
    Ok(())
}

async fn referrers_subject_header(ctx: Ctx) -> Check {
    let s = setup_referrers(&ctx, "referrers-header").await?;
    ensure!(
        s.header_problems.is_empty(),
        "{}",
        s.header_problems.join("; ")
    );
    Ok(())
}

async fn referrers_unknown_digest(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-unknown");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &m).await?;
    let (got, _) = referrers(&ctx, &repo, &absent_digest().to_string(), "").await?;
    ensure!(
        got.is_empty(),
        "referrers of an unknown digest must be empty, got {got:?}"
    );
    Ok(())
}

async fn referrers_list(ctx: Ctx) -> Check {
    let s = setup_referrers(&ctx, "referrers-list").await?;
    let (got, _) = referrers(&ctx, &s.repo, &s.subject.digest.to_string(), "").await?;
    same_descriptors(&got, &s.expected)
}

async fn referrers_filter(ctx: Ctx) -> Check {
    let s = setup_referrers(&ctx, "referrers-filter").await?;
    let (got, first) = referrers(
        &ctx,
        &s.repo,
        &s.subject.digest.to_string(),
        &format!("?artifactType={SBOM}"),
    )
    .await?;
    let applied = first
        .header_all("oci-filters-applied")
        .iter()
        .flat_map(|v| v.split(','))
        .any(|f| f.trim() == "artifactType");
    if applied {
        let only = |t: &str| -> BTreeMap<String, Value> {
            s.expected
                .iter()
                .filter(|(_, d)| d.get("artifactType").and_then(Value::as_str) == Some(t))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        same_descriptors(&got, &only(SBOM))?;
        // The config.mediaType fallback is filterable too, and `+` arrives percent-encoded
        // (%2B) the way Go and Rust clients encode it; it must not decode to a space.
        let encoded = CFG.replace('/', "%2F").replace('+', "%2B");
        let (got, _) = referrers(
            &ctx,
            &s.repo,
            &s.subject.digest.to_string(),
            &format!("?artifactType={encoded}"),
        )
        .await?;
        same_descriptors(&got, &only(CFG))
    } else {
        same_descriptors(&got, &s.expected)?;
        skip!("artifactType filter not applied (SHOULD); unfiltered list is correct")
    }
}

async fn referrers_missing_subject(ctx: Ctx) -> Check {
    let s = setup_referrers(&ctx, "referrers-missing").await?;
    let (got, _) = referrers(&ctx, &s.repo, &s.missing.to_string(), "").await?;
    same_descriptors(&got, &s.expected_missing)
}

async fn referrers_invalid_digest(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-invalid");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &m).await?;
    let resp = ctx
        .call(Method::GET, &format!("/v2/{repo}/referrers/sha256:xyz"))
        .send()
        .await?;
    expect_error(&resp, &[400], &[])?;
    Ok(())
}

async fn referrers_tag_schema(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-tag-schema");
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &subject).await?;
    // A referrer recorded only through the tag schema (as a client does when the registry
    // had no referrers API): the manifest itself carries no subject.
    let annotations = json!({"org.bay.test.referrer": "tag-schema"});
    let r = ctx
        .prepare_artifact(
            &repo,
            mt::OCI_EMPTY,
            json!({"artifactType": SIG, "annotations": annotations}),
        )
        .await?;
    ctx.put_manifest(&repo, &r.digest.to_string(), &r).await?;
    let want = expect_desc(&r, Some(SIG), &annotations);
    let index = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [want.clone()]}),
        mt::OCI_INDEX,
    );
    ctx.put_manifest(&repo, &subject.digest.fallback_tag(), &index)
        .await?;
    let (got, _) = referrers(&ctx, &repo, &subject.digest.to_string(), "").await?;
    let expected: BTreeMap<String, Value> = [(r.digest.to_string(), want)].into_iter().collect();
    same_descriptors(&got, &expected)
}

async fn tags_n_large(ctx: Ctx) -> Check {
    let repo = tagged_repo(&ctx, "tags-n-large").await?;
    let page = tag_page(&ctx, &tags_url(&ctx, &repo, "?n=100")?, &repo).await?;
    let set: BTreeSet<String> = page.tags.iter().cloned().collect();
    ensure!(
        set == expected_tags() && set.len() == page.tags.len(),
        "?n=100 gave {:?}",
        page.tags
    );
    ensure!(
        page.next.is_none(),
        "?n=100 returned every tag but still sent Link"
    );
    Ok(())
}

/// A referrer pushed in another repository is not a referrer of the subject here.
async fn referrers_repo_isolation(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-home");
    let elsewhere = ctx.repo("referrers-elsewhere");
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &subject).await?;
    let foreign = ctx
        .prepare_artifact(
            &elsewhere,
            mt::OCI_EMPTY,
            json!({"artifactType": SIG, "subject": subject.descriptor()}),
        )
        .await?;
    ctx.put_manifest(&elsewhere, &foreign.digest.to_string(), &foreign)
        .await?;
    let (got, _) = referrers(&ctx, &repo, &subject.digest.to_string(), "").await?;
    ensure!(
        got.is_empty(),
        "referrers of {repo} include a manifest from {elsewhere}: {got:?}"
    );
    let (there, _) = referrers(&ctx, &elsewhere, &subject.digest.to_string(), "").await?;
    let want: BTreeMap<String, Value> = [(foreign.digest.to_string(), {
        let mut d = foreign.descriptor();
        crate::ctx::merge(&mut d, json!({"artifactType": SIG}));
        d
    })]
    .into_iter()
    .collect();
    same_descriptors(&there, &want)
}

/// 250 tags paged with `n=100` through `Link`: 100, 100, 50, each tag once, sorted.
async fn tags_many(ctx: Ctx) -> Check {
    let repo = ctx.repo("tags-many");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let mut want = BTreeSet::new();
    for i in 0..250 {
        // Mixed case and separators so ordering matters.
        let t = match i % 3 {
            0 => format!("v{i}"),
            1 => format!("Rel-{i}"),
            _ => format!("b_{i}.x"),
        };
        ctx.put_manifest(&repo, &t, &m).await?;
        want.insert(t);
    }
    let first = tags_url(&ctx, &repo, "?n=100")?;
    let page = tag_page(&ctx, &first, &repo).await?;
    ensure!(
        page.tags.len() == 100,
        "?n=100 of 250 returned {}",
        page.tags.len()
    );
    ensure!(page.next.is_some(), "?n=100 of 250 has no Link");
    let all = all_pages(&ctx, first, &repo, Some(100)).await?;
    let set: BTreeSet<String> = all.iter().cloned().collect();
    ensure!(set.len() == all.len(), "paged tags repeat entries");
    ensure!(
        set == want,
        "paged tags: {} of 250, missing {:?}",
        set.len(),
        want.difference(&set).take(5).collect::<Vec<_>>()
    );
    ensure!(
        TagOrder::detect(&all).is_some(),
        "250 paged tags are not sorted"
    );
    Ok(())
}

/// 40 referrers of one subject are all listed (following `Link` if the server pages).
async fn referrers_many(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-many");
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &subject).await?;
    let mut want = BTreeMap::new();
    for i in 0..40 {
        let ann = json!({"org.bay.test.n": i.to_string()});
        let r = ctx
            .prepare_artifact(
                &repo,
                mt::OCI_EMPTY,
                json!({"artifactType": SBOM, "subject": subject.descriptor(), "annotations": ann}),
            )
            .await?;
        ctx.put_manifest(&repo, &r.digest.to_string(), &r).await?;
        want.insert(r.digest.to_string(), expect_desc(&r, Some(SBOM), &ann));
    }
    let (got, _) = referrers(&ctx, &repo, &subject.digest.to_string(), "").await?;
    same_descriptors(&got, &want)
}

/// An index referrer that carries `artifactType` is listed with it (only an index without
/// one omits the field).
async fn referrers_index_artifact_type(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-index-type");
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &subject).await?;
    let ann = json!({"org.bay.test.referrer": "typed-index"});
    let idx = Manifest::new(
        &json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "artifactType": SIG,
            "manifests": [],
            "subject": subject.descriptor(),
            "annotations": ann,
        }),
        mt::OCI_INDEX,
    );
    ctx.put_manifest(&repo, &idx.digest.to_string(), &idx)
        .await?;
    let (got, _) = referrers(&ctx, &repo, &subject.digest.to_string(), "").await?;
    let want: BTreeMap<String, Value> =
        [(idx.digest.to_string(), expect_desc(&idx, Some(SIG), &ann))]
            .into_iter()
            .collect();
    same_descriptors(&got, &want)
}

/// The subject may itself be an index.
async fn referrers_of_index(ctx: Ctx) -> Check {
    let repo = ctx.repo("referrers-of-index");
    let image = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, &image.digest.to_string(), &image)
        .await?;
    let index = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [image.descriptor()]}),
        mt::OCI_INDEX,
    );
    ctx.put_manifest(&repo, "multi", &index).await?;
    let ann = json!({"org.bay.test.referrer": "of-index"});
    let r = ctx
        .prepare_artifact(
            &repo,
            mt::OCI_EMPTY,
            json!({"artifactType": SBOM, "subject": index.descriptor(), "annotations": ann}),
        )
        .await?;
    let resp = ctx.put_manifest(&repo, &r.digest.to_string(), &r).await?;
    let h = require_header(&resp, "oci-subject")?;
    ensure!(
        h == index.digest.to_string(),
        "OCI-Subject {h} != {}",
        index.digest
    );
    let (got, _) = referrers(&ctx, &repo, &index.digest.to_string(), "").await?;
    let want: BTreeMap<String, Value> = [(r.digest.to_string(), expect_desc(&r, Some(SBOM), &ann))]
        .into_iter()
        .collect();
    same_descriptors(&got, &want)
}
