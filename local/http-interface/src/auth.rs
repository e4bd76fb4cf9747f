//! Request authentication as the IC performs it (interface specification, "Authentication"):
//! envelope decoding, request ids, ingress expiry, sender public keys (Ed25519, ECDSA P-256,
//! ECDSA secp256k1, canister signatures), delegation chains and the self-authenticating sender.

use crate::hash::{hash_of_map, HashError};
use candid::Principal;
use ic_transport_types::EnvelopeContent;
use serde_cbor::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Domain separator of a request signature.
pub const IC_REQUEST: &[u8] = b"\x0Aic-request";
/// Domain separator of a delegation signature.
pub const IC_REQUEST_AUTH_DELEGATION: &[u8] = b"\x1Aic-request-auth-delegation";
/// Domain separator of a certificate's BLS signature.
const IC_STATE_ROOT: &[u8] = b"\x0Dic-state-root";

/// The IC accepts requests expiring at most this far ahead (5 minutes) plus a drift allowance.
pub const MAX_INGRESS_TTL_NS: u64 = 5 * 60 * 1_000_000_000;
pub const PERMITTED_DRIFT_NS: u64 = 60 * 1_000_000_000;
/// Longest delegation chain the IC accepts.
pub const MAX_DELEGATIONS: usize = 20;
/// Most targets a delegation chain may list (as on the IC).
pub const MAX_TARGETS: usize = 1_000;

const ED25519_OID: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const EC_PUBLIC_KEY_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const P256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const SECP256K1_OID: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a]; // 1.3.132.0.10
const CANISTER_SIG_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02]; // 1.3.6.1.4.1.56387.1.2

/// Why a request was refused before it reached a canister. Every variant is answered with
/// HTTP 400, as the IC answers requests that fail validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed request envelope: {0}")]
    Malformed(String),
    #[error("Invalid request expiry: {0}")]
    Expiry(String),
    #[error("the request is signed but its sender is the anonymous principal")]
    AnonymousWithSignature,
    #[error("missing {0}: a request from a non-anonymous sender must be signed")]
    MissingSignature(&'static str),
    #[error("sender {sender} does not match the public key (which authenticates {expected})")]
    SenderMismatch {
        sender: Principal,
        expected: Principal,
    },
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    #[error("invalid delegation: {0}")]
    InvalidDelegation(String),
}

/// A request whose envelope decoded, whose expiry is in the permitted window and whose
/// signatures (if any) all verified.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub content: EnvelopeContent,
    pub request_id: [u8; 32],
    pub sender: Principal,
    /// Intersection of the delegation chain's `targets` (None: no restriction).
    pub targets: Option<Vec<Principal>>,
    /// A delegation limited the chain to queries and read_state requests.
    pub queries_only: bool,
}

impl Authenticated {
    /// Whether the delegation chain lets this request address `canister`.
    pub fn may_target(&self, canister: &Principal) -> bool {
        self.targets.as_ref().is_none_or(|t| t.contains(canister))
    }
}

/// What a signature is checked against: the replica's root key (for canister signatures) and
/// the current time.
pub struct Verifier<'a> {
    pub now_ns: u64,
    /// DER of the BLS12-381 root key.
    pub root_key_der: &'a [u8],
}

fn field<'a>(map: &'a BTreeMap<Value, Value>, name: &str) -> Option<&'a Value> {
    map.get(&Value::Text(name.to_string()))
        .filter(|v| !matches!(v, Value::Null))
}

fn bytes_field(map: &BTreeMap<Value, Value>, name: &str) -> Result<Option<Vec<u8>>, AuthError> {
    match field(map, name) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b.clone())),
        Some(_) => Err(AuthError::Malformed(format!("`{name}` must be a blob"))),
    }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tag(_, inner) => untag(inner),
        v => v,
    }
}

fn hash_err(e: HashError) -> AuthError {
    AuthError::Malformed(e.to_string())
}

/// Decodes, checks and authenticates one request body (a CBOR envelope).
pub fn authenticate(body: &[u8], v: &Verifier<'_>) -> Result<Authenticated, AuthError> {
    let envelope: Value = serde_cbor::from_slice(body)
        .map_err(|e| AuthError::Malformed(format!("invalid CBOR: {e}")))?;
    let Value::Map(envelope) = untag(&envelope) else {
        return Err(AuthError::Malformed("the envelope must be a map".into()));
    };
    let content_value = field(envelope, "content")
        .ok_or_else(|| AuthError::Malformed("missing field `content`".into()))?;
    if !matches!(untag(content_value), Value::Map(_)) {
        return Err(AuthError::Malformed("`content` must be a map".into()));
    }
    // Typed view of the content (serde reports missing or mistyped fields by name).
    let content_bytes =
        serde_cbor::to_vec(content_value).map_err(|e| AuthError::Malformed(e.to_string()))?;
    let content: EnvelopeContent = serde_cbor::from_slice(&content_bytes)
        .map_err(|e| AuthError::Malformed(format!("invalid content: {e}")))?;
    let request_id = hash_of_map(content_value).map_err(hash_err)?;

    check_expiry(content.ingress_expiry(), v.now_ns)?;

    let sender = *content.sender();
    let pubkey = bytes_field(envelope, "sender_pubkey")?;
    let sig = bytes_field(envelope, "sender_sig")?;
    let delegations = match field(envelope, "sender_delegation") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(AuthError::Malformed(
                "`sender_delegation` must be an array".into(),
            ))
        }
    };
    if sender == Principal::anonymous() {
        if pubkey.is_some() || sig.is_some() || !delegations.is_empty() {
            return Err(AuthError::AnonymousWithSignature);
        }
        return Ok(Authenticated {
            content,
            request_id,
            sender,
            targets: None,
            queries_only: false,
        });
    }
    let pubkey = pubkey.ok_or(AuthError::MissingSignature("sender_pubkey"))?;
    let sig = sig.ok_or(AuthError::MissingSignature("sender_sig"))?;
    let expected = Principal::self_authenticating(&pubkey);
    if sender != expected {
        return Err(AuthError::SenderMismatch { sender, expected });
    }
    let chain = verify_delegations(&pubkey, &delegations, v)?;
    let mut message = IC_REQUEST.to_vec();
    message.extend_from_slice(&request_id);
    verify_signature(&chain.key, &message, &sig, v)
        .map_err(|e| AuthError::InvalidSignature(format!("request signature: {e}")))?;
    Ok(Authenticated {
        content,
        request_id,
        sender,
        targets: chain.targets,
        queries_only: chain.queries_only,
    })
}

/// The permitted window: not expired, and not further ahead than the maximum TTL plus drift.
pub fn check_expiry(expiry: u64, now_ns: u64) -> Result<(), AuthError> {
    if expiry < now_ns {
        return Err(AuthError::Expiry(format!(
            "Specified ingress_expiry not within expected range: the request expired at {expiry} ns, the replica's time is {now_ns} ns"
        )));
    }
    let max = now_ns
        .saturating_add(MAX_INGRESS_TTL_NS)
        .saturating_add(PERMITTED_DRIFT_NS);
    if expiry > max {
        return Err(AuthError::Expiry(format!(
            "Specified ingress_expiry not within expected range: {expiry} ns is more than 5 minutes (+ {} s drift) after the replica's time {now_ns} ns",
            PERMITTED_DRIFT_NS / 1_000_000_000
        )));
    }
    Ok(())
}

struct Chain {
    /// The key that must sign the request: the last delegation's, or the sender's.
    key: Vec<u8>,
    targets: Option<Vec<Principal>>,
    queries_only: bool,
}

fn verify_delegations(
    sender_pubkey: &[u8],
    delegations: &[Value],
    v: &Verifier<'_>,
) -> Result<Chain, AuthError> {
    if delegations.len() > MAX_DELEGATIONS {
        return Err(AuthError::InvalidDelegation(format!(
            "{} delegations, at most {MAX_DELEGATIONS} are accepted",
            delegations.len()
        )));
    }
    let bad = |m: String| AuthError::InvalidDelegation(m);
    let mut key = sender_pubkey.to_vec();
    let mut seen = vec![key.clone()];
    let mut targets: Option<Vec<Principal>> = None;
    let mut queries_only = false;
    for (i, signed) in delegations.iter().enumerate() {
        let Value::Map(signed) = untag(signed) else {
            return Err(bad(format!("delegation {i} is not a map")));
        };
        let delegation_value = field(signed, "delegation")
            .ok_or_else(|| bad(format!("delegation {i}: missing `delegation`")))?;
        let Value::Map(delegation) = untag(delegation_value) else {
            return Err(bad(format!("delegation {i}: `delegation` is not a map")));
        };
        let signature = bytes_field(signed, "signature")?
            .ok_or_else(|| bad(format!("delegation {i}: missing `signature`")))?;
        let next_key = bytes_field(delegation, "pubkey")?
            .ok_or_else(|| bad(format!("delegation {i}: missing `pubkey`")))?;
        let expiration = match field(delegation, "expiration") {
            Some(Value::Integer(e)) if *e >= 0 => u64::try_from(*e).unwrap_or(u64::MAX),
            _ => {
                return Err(bad(format!(
                    "delegation {i}: missing or invalid `expiration`"
                )))
            }
        };
        if expiration < v.now_ns {
            return Err(bad(format!(
                "delegation {i} expired at {expiration} ns (the replica's time is {} ns)",
                v.now_ns
            )));
        }
        let mut message = IC_REQUEST_AUTH_DELEGATION.to_vec();
        message.extend_from_slice(&hash_of_map(delegation_value).map_err(hash_err)?);
        verify_signature(&key, &message, &signature, v)
            .map_err(|e| bad(format!("delegation {i}: {e}")))?;
        if let Some(t) = field(delegation, "targets") {
            let Value::Array(items) = t else {
                return Err(bad(format!("delegation {i}: `targets` is not an array")));
            };
            if items.len() > MAX_TARGETS {
                return Err(bad(format!("delegation {i}: too many targets")));
            }
            let list = items
                .iter()
                .map(|t| match t {
                    Value::Bytes(b) => Principal::try_from_slice(b)
                        .map_err(|e| bad(format!("delegation {i}: bad target: {e}"))),
                    _ => Err(bad(format!("delegation {i}: a target is not a blob"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            targets = Some(match targets {
                None => list,
                Some(prev) => prev.into_iter().filter(|p| list.contains(p)).collect(),
            });
        }
        match field(delegation, "permissions") {
            None => {}
            Some(Value::Text(p)) if p == "all" => {}
            Some(Value::Text(p)) if p == "queries" => queries_only = true,
            Some(_) => return Err(bad(format!("delegation {i}: unknown `permissions`"))),
        }
        if seen.contains(&next_key) {
            return Err(bad(format!(
                "delegation {i}: a public key appears twice in the chain"
            )));
        }
        seen.push(next_key.clone());
        key = next_key;
    }
    Ok(Chain {
        key,
        targets,
        queries_only,
    })
}

/// A parsed `SubjectPublicKeyInfo`: algorithm OID, its parameter OID (curves), the key bits.
struct Spki<'a> {
    algorithm: &'a [u8],
    parameter: Option<&'a [u8]>,
    key: &'a [u8],
}

/// One DER TLV: (tag, contents, rest). Definite lengths up to 4 bytes.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (len0 as usize, rest)
    } else {
        let n = (len0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn parse_spki(der: &[u8]) -> Option<Spki<'_>> {
    let (0x30, body, []) = der_tlv(der)? else {
        return None;
    };
    let (0x30, alg, rest) = der_tlv(body)? else {
        return None;
    };
    let (0x03, bits, []) = der_tlv(rest)? else {
        return None;
    };
    let (0x06, algorithm, params) = der_tlv(alg)? else {
        return None;
    };
    let parameter = match der_tlv(params) {
        Some((0x06, oid, [])) => Some(oid),
        _ => None,
    };
    // A BIT STRING starts with its count of unused bits, 0 for keys.
    let (0, key) = bits.split_first().map(|(u, k)| (*u, k))? else {
        return None;
    };
    Some(Spki {
        algorithm,
        parameter,
        key,
    })
}

/// Verifies `sig` over `message` with the DER-encoded public key `der`.
pub fn verify_signature(
    der: &[u8],
    message: &[u8],
    sig: &[u8],
    v: &Verifier<'_>,
) -> Result<(), String> {
    let spki = parse_spki(der).ok_or("the public key is not a DER SubjectPublicKeyInfo")?;
    match (spki.algorithm, spki.parameter) {
        (ED25519_OID, _) => {
            let key = ic_ed25519::PublicKey::deserialize_rfc8410_der(der)
                .map_err(|e| format!("bad Ed25519 key: {e:?}"))?;
            key.verify_signature(message, sig)
                .map_err(|e| format!("Ed25519 signature does not verify: {e:?}"))
        }
        (EC_PUBLIC_KEY_OID, Some(P256_OID)) => {
            use p256::ecdsa::signature::Verifier as _;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.key)
                .map_err(|e| format!("bad P-256 key: {e}"))?;
            let sig = p256::ecdsa::Signature::from_slice(sig)
                .map_err(|e| format!("bad P-256 signature: {e}"))?;
            key.verify(message, &sig)
                .map_err(|_| "ECDSA P-256 signature does not verify".to_string())
        }
        (EC_PUBLIC_KEY_OID, Some(SECP256K1_OID)) => {
            use k256::ecdsa::signature::Verifier as _;
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(spki.key)
                .map_err(|e| format!("bad secp256k1 key: {e}"))?;
            let sig = k256::ecdsa::Signature::from_slice(sig)
                .map_err(|e| format!("bad secp256k1 signature: {e}"))?;
            // The IC accepts both halves of s; k256 verifies only low-s, so normalise first.
            let sig = sig.normalize_s().unwrap_or(sig);
            key.verify(message, &sig)
                .map_err(|_| "ECDSA secp256k1 signature does not verify".to_string())
        }
        (CANISTER_SIG_OID, _) => verify_canister_signature(spki.key, message, sig, v),
        _ => Err(format!(
            "algorithm OID {} is not supported (Ed25519, ECDSA P-256 and secp256k1, and canister signatures are)",
            hex::encode(spki.algorithm)
        )),
    }
}

/// A canister signature (the key type Internet Identity roots its chains in): the public key is
/// `len(canister_id) ++ canister_id ++ seed`; the signature is a CBOR map `{certificate, tree}`
/// where `certificate` is signed by this replica's root key and certifies `tree`'s root hash as
/// the canister's certified data, and `tree` holds `/sig/<sha256(seed)>/<sha256(message)>`.
fn verify_canister_signature(
    key: &[u8],
    message: &[u8],
    sig: &[u8],
    v: &Verifier<'_>,
) -> Result<(), String> {
    use ic_certification::certificate::Certificate;
    use ic_certification::{HashTree, LookupResult};
    let (&n, rest) = key.split_first().ok_or("empty canister signature key")?;
    if rest.len() < n as usize {
        return Err("canister signature key too short".into());
    }
    let (canister, seed) = rest.split_at(n as usize);
    let canister = Principal::try_from_slice(canister).map_err(|e| e.to_string())?;

    #[derive(serde::Deserialize)]
    struct CanisterSig {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
        tree: HashTree,
    }
    let sig: CanisterSig =
        serde_cbor::from_slice(sig).map_err(|e| format!("bad canister signature: {e}"))?;
    let cert: Certificate<Vec<u8>> = serde_cbor::from_slice(&sig.certificate)
        .map_err(|e| format!("bad certificate in canister signature: {e}"))?;
    if cert.delegation.is_some() {
        return Err("certificate delegations are not accepted here (one subnet)".into());
    }
    // The root key's DER is a fixed 37-byte prefix + the 96-byte G2 point.
    if v.root_key_der.len() != 133 {
        return Err("the replica's root key is not a BLS12-381 G2 DER key".into());
    }
    let mut msg = IC_STATE_ROOT.to_vec();
    msg.extend_from_slice(&cert.tree.digest());
    ic_verify_bls_signature::verify_bls_signature(&cert.signature, &msg, &v.root_key_der[37..])
        .map_err(|_| "the certificate's BLS signature does not verify".to_string())?;
    let certified = match cert.tree.lookup_path([
        b"canister".as_slice(),
        canister.as_slice(),
        b"certified_data".as_slice(),
    ]) {
        LookupResult::Found(d) => d,
        _ => {
            return Err(format!(
                "the certificate holds no certified data of {canister}"
            ))
        }
    };
    if certified != sig.tree.digest().as_slice() {
        return Err("the signature tree is not the canister's certified data".into());
    }
    let seed_hash: [u8; 32] = Sha256::digest(seed).into();
    let msg_hash: [u8; 32] = Sha256::digest(message).into();
    match sig
        .tree
        .lookup_path([b"sig".as_slice(), &seed_hash, &msg_hash])
    {
        LookupResult::Found(_) => Ok(()),
        _ => Err("the canister did not sign this message".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_of_each_key_type_parses() {
        let ed = ic_ed25519::PrivateKey::generate_from_seed(&[1; 32])
            .public_key()
            .serialize_rfc8410_der();
        let s = parse_spki(&ed).unwrap();
        assert_eq!(s.algorithm, ED25519_OID);
        assert_eq!(s.key.len(), 32);

        use k256::pkcs8::EncodePublicKey as _;
        let k = k256::SecretKey::from_slice(&[7; 32]).unwrap().public_key();
        let der = k.to_public_key_der().unwrap();
        let s = parse_spki(der.as_bytes()).unwrap();
        assert_eq!(
            (s.algorithm, s.parameter),
            (EC_PUBLIC_KEY_OID, Some(SECP256K1_OID))
        );

        let p = p256::SecretKey::from_slice(&[7; 32]).unwrap().public_key();
        let der = p256::pkcs8::EncodePublicKey::to_public_key_der(&p).unwrap();
        let s = parse_spki(der.as_bytes()).unwrap();
        assert_eq!(
            (s.algorithm, s.parameter),
            (EC_PUBLIC_KEY_OID, Some(P256_OID))
        );

        assert!(parse_spki(&ed[..40]).is_none());
        assert!(parse_spki(&[]).is_none());
    }

    #[test]
    fn signatures_verify_and_fail() {
        let v = Verifier {
            now_ns: 0,
            root_key_der: &[],
        };
        let sk = ic_ed25519::PrivateKey::generate_from_seed(&[2; 32]);
        let der = sk.public_key().serialize_rfc8410_der();
        let sig = sk.sign_message(b"hello");
        verify_signature(&der, b"hello", &sig, &v).unwrap();
        assert!(verify_signature(&der, b"hellO", &sig, &v).is_err());

        use k256::ecdsa::signature::Signer as _;
        use k256::pkcs8::EncodePublicKey as _;
        let sk = k256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
        let der = sk.verifying_key().to_public_key_der().unwrap();
        let sig: k256::ecdsa::Signature = sk.sign(b"msg");
        verify_signature(der.as_bytes(), b"msg", &sig.to_bytes(), &v).unwrap();
        assert!(verify_signature(der.as_bytes(), b"msh", &sig.to_bytes(), &v).is_err());

        let sk = p256::ecdsa::SigningKey::from_slice(&[4; 32]).unwrap();
        let der = p256::pkcs8::EncodePublicKey::to_public_key_der(sk.verifying_key()).unwrap();
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&sk, b"msg");
        verify_signature(der.as_bytes(), b"msg", &sig.to_bytes(), &v).unwrap();
        assert!(verify_signature(der.as_bytes(), b"msh", &sig.to_bytes(), &v).is_err());
    }

    #[test]
    fn expiry_window() {
        let now = 1_000 * 1_000_000_000;
        check_expiry(now, now).unwrap();
        check_expiry(now + MAX_INGRESS_TTL_NS, now).unwrap();
        assert!(check_expiry(now - 1, now).is_err());
        assert!(check_expiry(now + MAX_INGRESS_TTL_NS + PERMITTED_DRIFT_NS + 1, now).is_err());
        let e = check_expiry(0, now).unwrap_err().to_string();
        // The JS agent recognises this prefix and re-syncs its clock.
        assert!(e.starts_with("Invalid request expiry: "), "{e}");
    }
}
