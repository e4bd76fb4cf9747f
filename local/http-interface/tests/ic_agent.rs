//! The unmodified Rust agent (`ic-agent` 0.49.3) against the embedded replica's HTTP interface:
//! root key fetched from /api/v2/status, query signature verification on (the default), and
//! every certificate verified against that root key.

mod common;

use candid::{CandidType, Decode, Deserialize, Encode, Principal};
use ic_agent::identity::{
    AnonymousIdentity, BasicIdentity, DelegatedIdentity, Delegation, Secp256k1Identity,
    SignedDelegation,
};
use ic_agent::{Agent, AgentError, Identity};
use sha2::{Digest, Sha256};

fn ed25519(seed: u8) -> BasicIdentity {
    BasicIdentity::from_raw_key(&[seed; 32])
}

fn secp256k1(seed: u8) -> Secp256k1Identity {
    Secp256k1Identity::from_private_key(k256::SecretKey::from_slice(&[seed; 32]).unwrap())
}

/// An Ed25519 root key delegating to an Ed25519 session key, as Internet Identity's clients do
/// (with an Ed25519 root instead of a canister signature).
fn delegated(
    root_seed: u8,
    session_seed: u8,
    targets: Option<Vec<Principal>>,
) -> DelegatedIdentity {
    let root = ed25519(root_seed);
    let session = ed25519(session_seed);
    let delegation = Delegation {
        pubkey: session.public_key().unwrap(),
        expiration: common::now_ns() + 3_600_000_000_000,
        targets,
        permissions: None,
    };
    let signature = root.sign_delegation(&delegation).unwrap();
    DelegatedIdentity::new(
        root.public_key().unwrap(),
        Box::new(session),
        vec![SignedDelegation {
            delegation,
            signature: signature.signature.unwrap(),
        }],
    )
    .expect("a valid chain")
}

async fn agent(url: &str, identity: impl Identity + 'static) -> Agent {
    let agent = Agent::builder()
        .with_url(url)
        .with_identity(identity)
        .build()
        .expect("agent");
    agent.fetch_root_key().await.expect("fetch_root_key");
    agent
}

/// Update and query as `identity`: the canister sees its principal, state changes persist.
async fn exercise(agent: &Agent, canister: Principal, value: u64) {
    let me = agent.get_principal().unwrap();
    let reply = agent
        .update(&canister, "whoami_update")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .expect("update");
    assert_eq!(Decode!(&reply, Principal).unwrap(), me);
    let reply = agent
        .query(&canister, "whoami")
        .with_arg(Encode!().unwrap())
        .call()
        .await
        .expect("query (signature verified)");
    assert_eq!(Decode!(&reply, Principal).unwrap(), me);
    agent
        .update(&canister, "set_heap")
        .with_arg(Encode!(&value).unwrap())
        .call_and_wait()
        .await
        .expect("set_heap");
    let reply = agent
        .query(&canister, "get_heap")
        .with_arg(Encode!().unwrap())
        .call()
        .await
        .expect("get_heap");
    assert_eq!(Decode!(&reply, u64).unwrap(), value);
}

#[derive(CandidType)]
struct CanisterIdRecord {
    canister_id: Principal,
}

#[derive(CandidType, Deserialize, Debug)]
struct StatusPart {
    module_hash: Option<Vec<u8>>,
    settings: SettingsPart,
}

#[derive(CandidType, Deserialize, Debug)]
struct SettingsPart {
    controllers: Vec<Principal>,
}

async fn canister_status(agent: &Agent, canister: Principal) -> Result<StatusPart, AgentError> {
    let reply = agent
        .update(&Principal::management_canister(), "canister_status")
        .with_effective_canister_id(canister)
        .with_arg(
            Encode!(&CanisterIdRecord {
                canister_id: canister
            })
            .unwrap(),
        )
        .call_and_wait()
        .await?;
    Ok(Decode!(&reply, StatusPart).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_with_every_identity_kind() {
    let controller = ed25519(1);
    let s = common::setup(vec![controller.sender().unwrap()]);
    let url = s.server.url();
    let canister = s.canister;

    // Ed25519
    let a = agent(&url, ed25519(1)).await;
    exercise(&a, canister, 11).await;
    // The root key the agent fetched is the replica's.
    assert_eq!(a.read_root_key(), s.replica.root_key_der());

    // read_state: module hash and controllers, certified by the root key.
    let module_hash = a
        .read_state_canister_info(canister, "module_hash")
        .await
        .expect("module_hash");
    assert_eq!(module_hash, Sha256::digest(&s.wasm).to_vec());
    let controllers = a
        .read_state_canister_controllers(canister)
        .await
        .expect("controllers");
    assert_eq!(controllers, vec![controller.sender().unwrap()]);

    // The management canister, effective canister id taken from the argument.
    let status = canister_status(&a, canister)
        .await
        .expect("canister_status");
    assert_eq!(status.module_hash.as_deref(), Some(&module_hash[..]));
    assert_eq!(status.settings.controllers, controllers);

    // secp256k1
    let b = agent(&url, secp256k1(2)).await;
    exercise(&b, canister, 22).await;
    // Not a controller: the management canister refuses it (a certified reject).
    match canister_status(&b, canister).await {
        Err(AgentError::CertifiedReject { reject, .. }) => {
            assert_eq!(reject.error_code.as_deref(), Some("IC0512"), "{reject:?}")
        }
        other => panic!("expected a certified reject, got {other:?}"),
    }

    // anonymous
    let c = agent(&url, AnonymousIdentity).await;
    exercise(&c, canister, 33).await;
    assert_eq!(c.get_principal().unwrap(), Principal::anonymous());

    // delegation chain: the canister sees the root key's principal.
    let d_identity = delegated(4, 5, None);
    let d_principal = d_identity.sender().unwrap();
    assert_eq!(d_principal, ed25519(4).sender().unwrap());
    let d = agent(&url, d_identity).await;
    exercise(&d, canister, 44).await;

    // A delegation whose targets exclude the canister is refused.
    let other = Principal::from_slice(&[9; 10]);
    let e = agent(&url, delegated(6, 7, Some(vec![other]))).await;
    let err = e
        .update(&canister, "whoami_update")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .expect_err("targets exclude the canister");
    assert!(
        matches!(&err, AgentError::HttpError(p) if p.status == 400),
        "{err:?}"
    );
    s.server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_data_certificate_verifies() {
    let s = common::setup(vec![Principal::anonymous()]);
    let a = agent(&s.server.url(), AnonymousIdentity).await;
    let data = Sha256::digest(b"certified by the probe").to_vec();
    a.update(&s.canister, "certified_data_set")
        .with_arg(Encode!(&serde_bytes::ByteBuf::from(data.clone())).unwrap())
        .call_and_wait()
        .await
        .expect("certified_data_set");
    let reply = a
        .query(&s.canister, "data_certificate")
        .with_arg(Encode!().unwrap())
        .call()
        .await
        .expect("data_certificate");
    let cert_bytes = Decode!(&reply, Option<serde_bytes::ByteBuf>)
        .unwrap()
        .expect("a certificate in a query");
    let cert: ic_agent::Certificate =
        serde_cbor::from_slice(&cert_bytes).expect("CBOR certificate");
    // BLS signature against the fetched root key, and freshness against the agent's clock.
    a.verify(&cert, s.canister)
        .expect("the certificate verifies");
    let certified = ic_agent::hash_tree::LookupResult::Found(&data[..]);
    assert_eq!(
        cert.tree.lookup_path([
            b"canister".as_slice(),
            s.canister.as_slice(),
            b"certified_data".as_slice()
        ]),
        certified
    );
    // A tampered certificate does not verify.
    let mut bad = cert.clone();
    bad.signature[5] ^= 1;
    assert!(a.verify(&bad, s.canister).is_err());
}

/// A canister signature as Internet Identity makes them: the probe certifies a hash tree holding
/// `/sig/<sha256(seed)>/<sha256(delegation signable)>`; its query certificate plus that tree is
/// the signature of a delegation from the canister-signature key to a session key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canister_signature_delegation() {
    use ic_agent::hash_tree::{label, leaf, HashTree};
    let s = common::setup(vec![Principal::anonymous()]);
    let url = s.server.url();
    let a = agent(&url, AnonymousIdentity).await;

    let seed = b"user 10000".to_vec();
    let mut der = vec![0x30, 0x00, 0x30, 0x0c, 0x06, 0x0a];
    der.extend_from_slice(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02]);
    let mut bits = vec![s.canister.as_slice().len() as u8];
    bits.extend_from_slice(s.canister.as_slice());
    bits.extend_from_slice(&seed);
    der.push(0x03);
    der.push(bits.len() as u8 + 1);
    der.push(0);
    der.extend_from_slice(&bits);
    der[1] = (der.len() - 2) as u8;

    let session = ed25519(8);
    let delegation = Delegation {
        pubkey: session.public_key().unwrap(),
        expiration: common::now_ns() + 3_600_000_000_000,
        targets: None,
        permissions: None,
    };
    let tree: HashTree<Vec<u8>> = label(
        "sig",
        label(
            Sha256::digest(&seed).to_vec(),
            label(Sha256::digest(delegation.signable()).to_vec(), leaf(b"")),
        ),
    );
    a.update(&s.canister, "certified_data_set")
        .with_arg(Encode!(&serde_bytes::ByteBuf::from(tree.digest().to_vec())).unwrap())
        .call_and_wait()
        .await
        .expect("certified_data_set");
    let reply = a
        .query(&s.canister, "data_certificate")
        .with_arg(Encode!().unwrap())
        .call()
        .await
        .expect("data_certificate");
    let certificate = Decode!(&reply, Option<serde_bytes::ByteBuf>)
        .unwrap()
        .expect("certificate");

    #[derive(serde::Serialize)]
    struct CanisterSig {
        #[serde(with = "serde_bytes")]
        certificate: Vec<u8>,
        tree: HashTree<Vec<u8>>,
    }
    let mut signature = Vec::new();
    let mut ser = serde_cbor::Serializer::new(&mut signature);
    ser.self_describe().unwrap();
    serde::Serialize::serialize(
        &CanisterSig {
            certificate: certificate.into_vec(),
            tree,
        },
        &mut ser,
    )
    .unwrap();

    let chain = vec![SignedDelegation {
        delegation,
        signature,
    }];
    // ic-agent checks the chain itself against the replica's root key before using it.
    let identity = DelegatedIdentity::new_with_root_key(
        der.clone(),
        Box::new(session),
        chain.clone(),
        &s.replica.root_key_der(),
    )
    .expect("the canister-signature chain verifies in ic-agent");
    let principal = Principal::self_authenticating(&der);
    let d = agent(&url, identity).await;
    let reply = d
        .update(&s.canister, "whoami_update")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .expect("update signed through a canister signature");
    assert_eq!(Decode!(&reply, Principal).unwrap(), principal);

    // The same signature presented for another seed (another user of the same canister) is
    // refused: the certified tree signs only for the original seed.
    let mut wrong = der.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    let forged = DelegatedIdentity::new_unchecked(wrong, Box::new(ed25519(8)), chain);
    let f = agent(&url, forged).await;
    let err = f
        .update(&s.canister, "whoami_update")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .expect_err("a canister signature for another seed");
    assert!(
        matches!(&err, AgentError::HttpError(p) if p.status == 400),
        "{err:?}"
    );
}
