//! The per-test context: fresh repository names, a request builder and push fixtures.

use bytes::Bytes;
use oci_types::{Algorithm, Digest};
use rand::RngCore as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use crate::check::{Check, Stop, ensure, expect_status, fail};
use crate::http::{Body, Http, Request, Response};

/// Manifest media types.
pub(crate) mod mt {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// What we send as `Accept` on manifest reads, like docker and skopeo do.
    pub const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, \
        application/vnd.oci.image.index.v1+json, \
        application/vnd.docker.distribution.manifest.v2+json, \
        application/vnd.docker.distribution.manifest.list.v2+json";
}

/// Context handed to each test (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub http: Http,
    pub ns: String,
    pub group: &'static str,
    /// A token known to be expired, for the auth group.
    pub expired_token: Option<String>,
}

/// `n` random bytes.
pub(crate) fn random_bytes(n: usize) -> Bytes {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    Bytes::from(v)
}

/// A random lowercase hex string of `n` chars.
pub(crate) fn random_hex(n: usize) -> String {
    let bytes = random_bytes(n.div_ceil(2));
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(n);
    s
}

/// A digest of random content that no registry has.
pub(crate) fn absent_digest() -> Digest {
    Digest::sha256_of(&random_bytes(64))
}

/// Append `key=value` to a URL's query (keeping any existing query, such as Distribution's
/// `_state`).
pub(crate) fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut().append_pair(key, value);
    u
}

/// A request under construction.
pub(crate) struct Call<'a> {
    ctx: &'a Ctx,
    req: Check<Request>,
}

impl Call<'_> {
    /// Add a header.
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        if let Ok(req) = &mut self.req {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.as_ref()),
            ) {
                (Ok(n), Ok(v)) => {
                    req.headers.append(n, v);
                }
                _ => self.req = Err(Stop::Fail(format!("suite bug: bad header {name}"))),
            }
        }
        self
    }

    /// Set a body with a known length.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        if let Ok(req) = &mut self.req {
            req.body = Body::Full(body.into());
        }
        self
    }

    /// Set an octet-stream body.
    pub fn blob(self, body: impl Into<Bytes>) -> Self {
        self.header("content-type", "application/octet-stream")
            .body(body)
    }

    /// Send the body with chunked transfer encoding.
    pub fn chunked(mut self, chunks: Vec<Bytes>) -> Self {
        if let Ok(req) = &mut self.req {
            req.body = Body::Chunked(chunks);
        }
        self
    }

    /// Send these chunks, then abort the request before the body ends.
    pub fn aborted(mut self, chunks: Vec<Bytes>) -> Self {
        if let Ok(req) = &mut self.req {
            req.body = Body::Aborted(chunks);
        }
        self
    }

    /// Send and read the whole response.
    pub async fn send(self) -> Check<Response> {
        let req = self.req?;
        Ok(self.ctx.http.send(&req).await?)
    }
}

/// A manifest ready to push.
#[derive(Clone, Debug)]
pub(crate) struct Manifest {
    pub bytes: Bytes,
    pub digest: Digest,
    pub media_type: &'static str,
}

impl Manifest {
    /// Serialize `value` and compute its digest.
    pub fn new(value: &Value, media_type: &'static str) -> Manifest {
        let bytes = Bytes::from(value.to_string());
        let digest = Digest::sha256_of(&bytes);
        Manifest {
            bytes,
            digest,
            media_type,
        }
    }

    /// The descriptor of this manifest.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.bytes.len()})
    }
}

/// A descriptor JSON value.
pub(crate) fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": Digest::sha256_of(data).to_string(), "size": data.len()})
}

impl Ctx {
    /// A fresh, unique repository name under the namespace: `<ns>/<group>-<label>-<random>`.
    pub fn repo(&self, label: &str) -> String {
        format!("{}/{}-{}-{}", self.ns, self.group, label, random_hex(10))
    }

    /// Start a request to a path (`/v2/…`) or an absolute URL.
    pub fn call(&self, method: Method, target: &str) -> Call<'_> {
        let req = self
            .http
            .resolve(target)
            .map(|url| Request {
                method,
                url,
                headers: HeaderMap::new(),
                body: Body::Empty,
            })
            .map_err(Stop::from);
        Call { ctx: self, req }
    }

    /// Start a request to an already resolved URL.
    pub fn call_url(&self, method: Method, url: &Url) -> Call<'_> {
        self.call(method, url.as_str())
    }

    /// `POST /v2/<repo>/blobs/uploads/` expecting 202 and a `Location`; returns it resolved.
    pub async fn start_upload(&self, repo: &str) -> Check<Url> {
        let resp = self
            .call(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await?;
        expect_status(&resp, &[202])?;
        location(&resp)
    }

    /// Push a blob the portable way (POST, then PUT with the body) with the given algorithm.
    pub async fn push_blob_alg(&self, repo: &str, data: &Bytes, alg: Algorithm) -> Check<Digest> {
        let digest = Digest::of(alg, data);
        let loc = self.start_upload(repo).await?;
        let resp = self
            .call_url(
                Method::PUT,
                &with_query(&loc, "digest", &digest.to_string()),
            )
            .blob(data.clone())
            .send()
            .await?;
        if resp.status.as_u16() != 201 {
            fail!("setup: blob upload failed: {}", resp.describe());
        }
        Ok(digest)
    }

    /// Push a sha256 blob (POST + PUT).
    pub async fn push_blob(&self, repo: &str, data: &Bytes) -> Check<Digest> {
        self.push_blob_alg(repo, data, Algorithm::Sha256).await
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the manifest's type; returns the response
    /// without judging it.
    pub async fn put_manifest_raw(
        &self,
        repo: &str,
        reference: &str,
        m: &Manifest,
    ) -> Check<Response> {
        self.call(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", m.media_type)
            .body(m.bytes.clone())
            .send()
            .await
    }

    /// Push a manifest, requiring 201, a `Location` and (if sent) the right
    /// `Docker-Content-Digest`.
    pub async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest) -> Check<Response> {
        let resp = self.put_manifest_raw(repo, reference, m).await?;
        ensure!(
            resp.status.as_u16() == 201,
            "manifest PUT must be 201: {}",
            resp.describe()
        );
        crate::check::digest_header_if_present(&resp, &m.digest.to_string())?;
        Ok(resp)
    }

    /// `GET /v2/<repo>/manifests/<reference>` with an `Accept` for every manifest type.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Check<Response> {
        self.call(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .header("accept", mt::ACCEPT_ALL)
            .send()
            .await
    }

    /// `GET /v2/<repo>/blobs/<digest>`.
    pub async fn get_blob(&self, repo: &str, digest: &Digest) -> Check<Response> {
        self.call(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
    }

    /// Require that GET of a blob returns exactly `data`.
    pub async fn blob_reads_back(&self, repo: &str, digest: &Digest, data: &[u8]) -> Check {
        let resp = self.get_blob(repo, digest).await?;
        ensure!(
            resp.status.as_u16() == 200,
            "blob GET after push must be 200: {}",
            resp.describe()
        );
        ensure!(
            resp.body.as_ref() == data,
            "blob GET returned {} bytes that differ from the {} pushed",
            resp.body.len(),
            data.len()
        );
        Ok(())
    }

    /// Push a config blob and one layer and build an OCI image manifest over them (not pushed).
    /// `extra` fields (annotations, artifactType, subject, …) are merged into the manifest.
    pub async fn prepare_image(&self, repo: &str, extra: Value) -> Check<Manifest> {
        let config = Bytes::from(
            json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "bay.nonce": random_hex(16)})
                .to_string(),
        );
        let layer = random_bytes(512);
        self.push_blob(repo, &config).await?;
        self.push_blob(repo, &layer).await?;
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_MANIFEST,
            "config": descriptor(mt::OCI_CONFIG, &config),
            "layers": [descriptor(mt::OCI_LAYER, &layer)],
        });
        merge(&mut m, extra);
        Ok(Manifest::new(&m, mt::OCI_MANIFEST))
    }

    /// Push the empty config `{}` and build an artifact manifest (OCI image manifest with
    /// `artifactType`, an empty config and one small layer) with `extra` merged in.
    pub async fn prepare_artifact(
        &self,
        repo: &str,
        config_type: &str,
        extra: Value,
    ) -> Check<Manifest> {
        let config = Bytes::from_static(b"{}");
        let layer = random_bytes(64);
        self.push_blob(repo, &config).await?;
        self.push_blob(repo, &layer).await?;
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_MANIFEST,
            "config": descriptor(config_type, &config),
            "layers": [descriptor("application/vnd.bay.test.payload", &layer)],
        });
        merge(&mut m, extra);
        Ok(Manifest::new(&m, mt::OCI_MANIFEST))
    }
}

/// Merge the fields of `extra` (an object) into `target`.
pub(crate) fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
    }
}

/// The resolved `Location` of a response, required.
pub(crate) fn location(resp: &Response) -> Check<Url> {
    match resp.location() {
        Some(Ok(u)) => Ok(u),
        Some(Err(e)) => fail!("unusable Location ({e}): {}", resp.describe()),
        None => fail!("missing Location header: {}", resp.describe()),
    }
}
