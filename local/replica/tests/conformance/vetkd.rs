//! vetKD across the replica's life: the master keys derive from the replica's seed, which a
//! snapshot keeps, so keys a client fetched (and data it encrypted under them) stay valid after a
//! restart; another replica has other keys, as another IC instance would.
//! The methods themselves are checked on both backends in `tests/tests/fidelity.rs` (`vetkd`).

use candid::Principal;
use canvid_replica::Replica;
use ic_management_canister_types as mc;

use crate::support::*;

fn key_id() -> mc::VetKDKeyId {
    mc::VetKDKeyId {
        curve: mc::VetKDCurve::Bls12_381_G2,
        name: "test_key_1".into(),
    }
}

fn public_key(r: &Replica, p: Principal) -> ic_vetkeys::DerivedPublicKey {
    let arg = enc((mc::VetKDPublicKeyArgs {
        canister_id: None,
        context: b"videos".to_vec(),
        key_id: key_id(),
    },));
    let out = call_other(
        r,
        p,
        CallSpec::new(Principal::management_canister(), "vetkd_public_key", arg),
    );
    let res: mc::VetKDPublicKeyResult = dec(out.reply(), "vetkd_public_key");
    ic_vetkeys::DerivedPublicKey::deserialize(&res.public_key).expect("a G2 point")
}

fn derive(r: &Replica, p: Principal, tpk: Vec<u8>) -> ic_vetkeys::EncryptedVetKey {
    let arg = enc((mc::VetKDDeriveKeyArgs {
        input: b"video-1".to_vec(),
        context: b"videos".to_vec(),
        transport_public_key: tpk,
        key_id: key_id(),
    },));
    let mut spec = CallSpec::new(Principal::management_canister(), "vetkd_derive_key", arg);
    spec.cycles = 26_153_846_153;
    let out = call_other(r, p, spec);
    let res: mc::VetKDDeriveKeyResult = dec(out.reply(), "vetkd_derive_key");
    ic_vetkeys::EncryptedVetKey::deserialize(&res.encrypted_key).expect("c1, c2, c3")
}

#[test]
fn vetkd_keys_survive_a_snapshot_and_differ_between_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::new();
    let p = install_probe(&r);
    let tsk = ic_vetkeys::TransportSecretKey::from_seed(vec![3; 32]).unwrap();
    let pk = public_key(&r, p);
    let key = derive(&r, p, tsk.public_key())
        .decrypt_and_verify(&tsk, &pk, b"video-1")
        .expect("decrypts and verifies");

    r.save_snapshot(dir.path()).unwrap();
    let l = Replica::load_snapshot(dir.path()).unwrap();
    assert_eq!(
        public_key(&l, p),
        pk,
        "the restored replica has the same keys"
    );
    let again = derive(&l, p, tsk.public_key())
        .decrypt_and_verify(&tsk, &pk, b"video-1")
        .expect("a key derived after the restart verifies under the key fetched before");
    assert_eq!(again.signature_bytes(), key.signature_bytes());

    let other = Replica::new();
    let q = install_probe(&other);
    assert_eq!(q, p, "the same canister id on both replicas");
    assert_ne!(
        public_key(&other, q),
        pk,
        "another replica, another master key"
    );
}
