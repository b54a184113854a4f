//! Root certificates: Notary root keys are `ecdsa-x509`, a self-signed
//! certificate whose CN is the GUN (trust-facts §2.5).
//!
//! Generation follows the Notary client: 10-year validity, KeyUsage
//! digitalSignature + keyEncipherment, EKU codeSigning, CA:FALSE,
//! ecdsa-with-SHA256. Validation accepts a leaf that is not a CA, whose CN
//! equals the GUN, that is within its validity period (when expiry is
//! enforced), signed with ecdsa-with-SHA256 (never SHA-1), holding a P-256
//! key, and signed by itself (or by the next certificate of its chain).

use chrono::{DateTime, Duration, Utc};
use der::{Decode as _, Encode as _};
use p256::ecdsa::signature::Verifier as _;
use spki::DecodePublicKey as _;
use x509_cert::Certificate;

use crate::key::{KeyType, PrivateKey, PublicKey};
use crate::names::Gun;

/// Errors about root certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Not a PEM certificate (chain).
    #[error("certificate does not parse")]
    Parse,
    /// The CN is not the GUN.
    #[error("certificate CN {found:?} does not match gun {expected:?}")]
    CnMismatch {
        /// The GUN the metadata belongs to.
        expected: String,
        /// The certificate's CN.
        found: String,
    },
    /// Outside its validity period.
    #[error("certificate is not valid at {now} (valid {not_before} to {not_after})")]
    Expired {
        /// The time checked.
        now: DateTime<Utc>,
        /// Start of validity.
        not_before: DateTime<Utc>,
        /// End of validity.
        not_after: DateTime<Utc>,
    },
    /// A signature algorithm other than ecdsa-with-SHA256 (SHA-1 is refused).
    #[error("certificate signature algorithm {oid} is not accepted")]
    SignatureAlgorithm {
        /// The OID found.
        oid: String,
    },
    /// The leaf is a CA certificate.
    #[error("root leaf certificate must not be a CA")]
    IsCa,
    /// The key is not P-256.
    #[error("certificate key is not an ECDSA P-256 key")]
    UnsupportedKey,
    /// The certificate's signature does not verify.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// Certificate generation needs an ECDSA P-256 key.
    #[error("root certificates need an ECDSA P-256 key")]
    NeedEcdsaKey,
    /// rcgen failed to build the certificate.
    #[error("could not build certificate")]
    Generate {
        /// Cause.
        #[source]
        source: rcgen::Error,
    },
}

const ECDSA_SHA256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const CN: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
const BASIC_CONSTRAINTS: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.5.29.19");

/// Default validity of a root certificate: 10 years.
pub fn default_cert_validity() -> Duration {
    Duration::days(365 * 10)
}

/// Makes the `ecdsa-x509` root public key for `gun`: a self-signed
/// certificate over `key` valid from `not_before` for `validity`.
pub fn generate_root_certificate(
    key: &PrivateKey,
    gun: &Gun,
    not_before: DateTime<Utc>,
    validity: Duration,
) -> Result<PublicKey, CertError> {
    let der = key.p256_pkcs8_der().ok_or(CertError::NeedEcdsaKey)?;
    let pair = rcgen::KeyPair::try_from(der.as_slice())
        .map_err(|source| CertError::Generate { source })?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, gun.as_str());
    params.distinguished_name = dn;
    params.not_before = to_offset(not_before);
    params.not_after = to_offset(not_before + validity);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params
        .self_signed(&pair)
        .map_err(|source| CertError::Generate { source })?;
    Ok(PublicKey::new(KeyType::EcdsaX509, cert.pem().into_bytes()))
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn parse_chain(pem: &[u8]) -> Result<Vec<Certificate>, CertError> {
    let chain = Certificate::load_pem_chain(pem).map_err(|_| CertError::Parse)?;
    if chain.is_empty() {
        return Err(CertError::Parse);
    }
    Ok(chain)
}

/// The SubjectPublicKeyInfo DER of the leaf (first) certificate.
pub fn leaf_spki_der(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    let chain = parse_chain(pem)?;
    chain[0]
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| CertError::Parse)
}

/// The CN of the leaf certificate.
pub fn leaf_common_name(pem: &[u8]) -> Result<String, CertError> {
    let chain = parse_chain(pem)?;
    common_name(&chain[0]).ok_or(CertError::Parse)
}

fn common_name(cert: &Certificate) -> Option<String> {
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == CN {
                if let Ok(s) = der::asn1::Utf8StringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_owned());
                }
                if let Ok(s) = der::asn1::PrintableStringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_owned());
                }
            }
        }
    }
    None
}

fn time_of(t: &x509_cert::time::Time) -> DateTime<Utc> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Validates an `ecdsa-x509` root key for `gun` (see the module docs).
/// `now = None` skips the validity-period check (expiry not enforced, or an
/// old root being used only to check a rotation).
pub fn validate_root_certificate(
    pem: &[u8],
    gun: &Gun,
    now: Option<DateTime<Utc>>,
) -> Result<(), CertError> {
    let chain = parse_chain(pem)?;
    let leaf = &chain[0];
    let cn = common_name(leaf).unwrap_or_default();
    if cn != gun.as_str() {
        return Err(CertError::CnMismatch {
            expected: gun.as_str().to_owned(),
            found: cn,
        });
    }
    if let Some(now) = now {
        let not_before = time_of(&leaf.tbs_certificate.validity.not_before);
        let not_after = time_of(&leaf.tbs_certificate.validity.not_after);
        if now < not_before || now > not_after {
            return Err(CertError::Expired {
                now,
                not_before,
                not_after,
            });
        }
    }
    if leaf.signature_algorithm.oid != ECDSA_SHA256 {
        return Err(CertError::SignatureAlgorithm {
            oid: leaf.signature_algorithm.oid.to_string(),
        });
    }
    for ext in leaf.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id == BASIC_CONSTRAINTS {
            let bc = x509_cert::ext::pkix::BasicConstraints::from_der(ext.extn_value.as_bytes())
                .map_err(|_| CertError::Parse)?;
            if bc.ca {
                return Err(CertError::IsCa);
            }
        }
    }
    let issuer = chain.get(1).unwrap_or(leaf);
    let issuer_spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| CertError::Parse)?;
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&issuer_spki)
        .map_err(|_| CertError::UnsupportedKey)?;
    let leaf_spki = leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| CertError::Parse)?;
    p256::ecdsa::VerifyingKey::from_public_key_der(&leaf_spki)
        .map_err(|_| CertError::UnsupportedKey)?;
    let tbs = leaf
        .tbs_certificate
        .to_der()
        .map_err(|_| CertError::Parse)?;
    let sig_bytes = leaf.signature.as_bytes().ok_or(CertError::BadSignature)?;
    let sig = p256::ecdsa::Signature::from_der(sig_bytes).map_err(|_| CertError::BadSignature)?;
    vk.verify(&tbs, &sig).map_err(|_| CertError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyAlgorithm;

    #[test]
    fn generated_root_certificate_is_valid_for_its_gun_only() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let gun = Gun::new("example.com/team/app").unwrap();
        let now = Utc::now();
        let pk = generate_root_certificate(&key, &gun, now, default_cert_validity()).unwrap();
        assert_eq!(pk.keytype(), KeyType::EcdsaX509);
        validate_root_certificate(pk.public_bytes(), &gun, Some(now)).unwrap();
        assert_eq!(leaf_common_name(pk.public_bytes()).unwrap(), gun.as_str());
        // The two IDs: TUF ID over the cert, canonical ID = the bare key's ID.
        assert_ne!(pk.key_id(), pk.canonical_id().unwrap());
        assert_eq!(pk.canonical_id().unwrap(), key.key_id());
        assert_eq!(&pk.plain().unwrap(), crate::key::Sign::public_key(&key));

        let other = Gun::new("example.com/team/other").unwrap();
        assert!(matches!(
            validate_root_certificate(pk.public_bytes(), &other, Some(now)),
            Err(CertError::CnMismatch { .. })
        ));
        let later = now + Duration::days(365 * 11);
        assert!(matches!(
            validate_root_certificate(pk.public_bytes(), &gun, Some(later)),
            Err(CertError::Expired { .. })
        ));
        validate_root_certificate(pk.public_bytes(), &gun, None).unwrap();
        assert!(
            generate_root_certificate(
                &PrivateKey::generate(KeyAlgorithm::Ed25519),
                &gun,
                now,
                default_cert_validity()
            )
            .is_err()
        );
    }

    #[test]
    fn certificate_has_notary_extensions() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let gun = Gun::new("g/h").unwrap();
        let pk =
            generate_root_certificate(&key, &gun, Utc::now(), default_cert_validity()).unwrap();
        let cert = &parse_chain(pk.public_bytes()).unwrap()[0];
        let oids: Vec<String> = cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .map(|e| e.extn_id.to_string())
            .collect();
        for want in ["2.5.29.15", "2.5.29.37", "2.5.29.19"] {
            assert!(oids.contains(&want.to_owned()), "{want} in {oids:?}");
        }
        let v = &cert.tbs_certificate.validity;
        let years = (time_of(&v.not_after) - time_of(&v.not_before)).num_days() / 365;
        assert_eq!(years, 10);
    }

    #[test]
    fn garbage_is_refused() {
        let gun = Gun::new("g").unwrap();
        assert!(matches!(
            validate_root_certificate(b"nope", &gun, None),
            Err(CertError::Parse)
        ));
    }
}
