//! The system state tree of the interface specification ("The system state tree") and its
//! pruned witnesses.
//!
//! Paths served (labels are bytes; `<id>` are principals' raw bytes):
//!
//! | path | value |
//! | --- | --- |
//! | `/time` | LEB128 nanoseconds since the epoch |
//! | `/request_status/<request id>/status` | `received`, `processing`, `replied`, `rejected` or `done` |
//! | `/request_status/<request id>/reply` | the reply's bytes (status `replied`) |
//! | `/request_status/<request id>/reject_code` | LEB128 reject code (status `rejected`) |
//! | `/request_status/<request id>/reject_message` | UTF-8 (status `rejected`) |
//! | `/request_status/<request id>/error_code` | e.g. `IC0503` (status `rejected`) |
//! | `/canister/<id>/certified_data` | the canister's certified data (empty if never set) |
//! | `/canister/<id>/module_hash` | SHA-256 of the installed module (absent when empty) |
//! | `/canister/<id>/controllers` | CBOR (tag 55799) array of the controllers' principal bytes |
//! | `/canister/<id>/metadata/<name>` | wasm custom section `icp:public <name>` / `icp:private <name>` |
//! | `/subnet/<subnet id>/public_key` | DER root key (133 bytes) |
//! | `/subnet/<subnet id>/type` | `application` |
//! | `/subnet/<subnet id>/canister_ranges` | CBOR array of `[low, high]` principal pairs |
//! | `/subnet/<subnet id>/node/<node id>/public_key` | DER Ed25519 node key (44 bytes) |
//! | `/canister_ranges/<subnet id>/<low>` | the same ranges, as the sharded form (one shard) |
//!
//! What the agents read (their sources, ic-agent 0.49.3 and @icp-sdk/core 6.1.0):
//! certificates of `read_state` and of synchronous calls are verified against the root key when
//! they carry no delegation (this replica is a one-subnet "root" IC, so never); the subnet id is
//! then the self-authenticating id of the root key. Before verifying query signatures both
//! agents read `/subnet` through the canister's `read_state` and require
//! `/subnet/<subnet>/canister_ranges` to contain the canister (ic-agent also accepts the sharded
//! `/canister_ranges/<subnet>/<shard>`, which it reads with `/subnet/<subnet>` from subnet
//! endpoints), then take every `/subnet/<subnet>/node/<node>/public_key` (44-byte DER).
//!
//! **Witnesses** ([`witness`]): a read_state certificate reveals exactly the requested paths
//! (the whole subtree under each) and prunes everything else. For a requested label that does not
//! exist, the neighbouring labels (the largest smaller and the smallest larger one) are revealed
//! with pruned contents, so a lookup proves the path *absent* rather than unknown — the spec's
//! lookup algorithm, as `ic-certification`'s `lookup_path` and the JS agent implement it.
//! Children of a node are the leaves of a balanced binary tree of forks, in label order.

use std::collections::{BTreeMap, HashSet};

use candid::Principal;
use ic_certification::{fork_hash, labeled_hash, leaf_hash, Hash, HashTree};

use crate::ingress_api::RequestStatus;
use crate::state::{IngressState, Msg, State};

/// A node of the (unpruned) state tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Leaf(Vec<u8>),
    Sub(BTreeMap<Vec<u8>, Node>),
    /// A subtree that no requested path enters, given by its digest only (saves rebuilding
    /// finished request statuses, whose digests are cached).
    Digest(Hash),
}

impl Node {
    pub fn sub() -> Node {
        Node::Sub(BTreeMap::new())
    }

    /// Inserts `child` under `label` (self must be a `Sub`).
    pub fn insert(&mut self, label: impl Into<Vec<u8>>, child: Node) {
        if let Node::Sub(m) = self {
            m.insert(label.into(), child);
        }
    }

    /// The digest of the subtree (the hash the spec's `reconstruct` computes).
    pub fn digest(&self) -> Hash {
        match self {
            Node::Leaf(v) => leaf_hash(v),
            Node::Digest(d) => *d,
            Node::Sub(m) => {
                let items = m
                    .iter()
                    .map(|(k, c)| Item::Pruned(labeled_hash(k, &c.digest())))
                    .collect();
                forks(items).digest()
            }
        }
    }
}

/// The requested paths, as a trie. `All` = the whole subtree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paths {
    All,
    Some(BTreeMap<Vec<u8>, Paths>),
}

impl Paths {
    pub fn new() -> Paths {
        Paths::Some(BTreeMap::new())
    }

    pub fn from_paths(paths: &[Vec<Vec<u8>>]) -> Paths {
        let mut p = Paths::new();
        for path in paths {
            p.insert(path);
        }
        p
    }

    /// Adds a path; a path that is a prefix of another makes the longer one redundant.
    pub fn insert(&mut self, path: &[Vec<u8>]) {
        let Paths::Some(m) = self else {
            return;
        };
        match path.split_first() {
            None => *self = Paths::All,
            Some((first, rest)) => m
                .entry(first.clone())
                .or_insert_with(Paths::new)
                .insert(rest),
        }
    }

    /// The sub-trie under `label`, if any path goes there.
    pub fn child(&self, label: &[u8]) -> Option<&Paths> {
        match self {
            Paths::All => Some(&Paths::All),
            Paths::Some(m) => m.get(label),
        }
    }
}

impl Default for Paths {
    fn default() -> Self {
        Paths::new()
    }
}

/// A child of a fork tree under construction: revealed, or pruned with its digest.
enum Item {
    Tree(HashTree),
    Pruned(Hash),
}

impl Item {
    fn digest(&self) -> Hash {
        match self {
            Item::Tree(t) => t.digest(),
            Item::Pruned(h) => *h,
        }
    }

    fn into_tree(self) -> HashTree {
        match self {
            Item::Tree(t) => t,
            Item::Pruned(h) => ic_certification::pruned(h),
        }
    }
}

/// Balanced fork tree over `items` (in label order); forks whose both sides are pruned collapse
/// into one pruned node.
fn forks(mut items: Vec<Item>) -> Item {
    match items.len() {
        0 => Item::Tree(ic_certification::empty()),
        1 => items.pop().expect("one item"),
        n => {
            let right = items.split_off(n / 2);
            let l = forks(items);
            let r = forks(right);
            match (l, r) {
                (Item::Pruned(a), Item::Pruned(b)) => Item::Pruned(fork_hash(&a, &b)),
                (l, r) => Item::Tree(ic_certification::fork(l.into_tree(), r.into_tree())),
            }
        }
    }
}

/// The whole subtree, unpruned (except `Digest` nodes, which only stand where nothing was asked).
pub fn full(node: &Node) -> HashTree {
    match node {
        Node::Leaf(v) => ic_certification::leaf(v.clone()),
        Node::Digest(d) => ic_certification::pruned(*d),
        Node::Sub(m) => forks(
            m.iter()
                .map(|(k, c)| Item::Tree(ic_certification::labeled(k.clone(), full(c))))
                .collect(),
        )
        .into_tree(),
    }
}

/// The witness of `node` for `paths`: requested subtrees in full, absent labels provably absent,
/// everything else pruned. Its digest equals `node.digest()`.
pub fn witness(node: &Node, paths: &Paths) -> HashTree {
    let children = match (node, paths) {
        (_, Paths::All) => return full(node),
        // A path that goes on past a leaf: the leaf is revealed (the lookup then reports an
        // error for the longer path, as the spec's lookup does).
        (Node::Leaf(_), _) => return full(node),
        (Node::Digest(d), _) => return ic_certification::pruned(*d),
        (Node::Sub(m), Paths::Some(children)) => (m, children),
    };
    let (m, requested) = children;
    // Labels whose *label* must be revealed to prove a requested label absent.
    let mut neighbours: HashSet<&[u8]> = HashSet::new();
    for label in requested.keys() {
        if m.contains_key(label) {
            continue;
        }
        if let Some((k, _)) = m.range::<Vec<u8>, _>(..label).next_back() {
            neighbours.insert(k);
        }
        if let Some((k, _)) = m.range::<Vec<u8>, _>(label..).next() {
            neighbours.insert(k);
        }
    }
    let items = m
        .iter()
        .map(|(k, c)| match requested.get(k) {
            Some(sub) => Item::Tree(ic_certification::labeled(k.clone(), witness(c, sub))),
            None if neighbours.contains(k.as_slice()) => Item::Tree(ic_certification::labeled(
                k.clone(),
                ic_certification::pruned(c.digest()),
            )),
            None => Item::Pruned(labeled_hash(k, &c.digest())),
        })
        .collect();
    forks(items).into_tree()
}

/// LEB128 (unsigned), as `/time` and `reject_code` are encoded.
pub fn leb128(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// CBOR with the self-describe tag 55799 (principals serialize as byte strings: CBOR is not a
/// human-readable format for serde).
fn cbor_tagged<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut ser = serde_cbor::Serializer::new(Vec::new());
    ser.self_describe().expect("writing to a Vec cannot fail");
    v.serialize(&mut ser)
        .expect("serializing principals to a Vec cannot fail");
    ser.into_inner()
}

/// A metadata custom section of a canister module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataSection {
    /// `icp:public <name>` (readable by anyone) or `icp:private <name>` (controllers only).
    pub public: bool,
    pub content: Vec<u8>,
}

/// The `icp:public` / `icp:private` custom sections of a wasm module, by name. A module the
/// parser cannot read has none (installation validates modules elsewhere).
pub fn wasm_metadata(wasm: &[u8]) -> BTreeMap<String, MetadataSection> {
    let mut out = BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else {
            break;
        };
        if let wasmparser::Payload::CustomSection(r) = payload {
            let (public, name) = if let Some(n) = r.name().strip_prefix("icp:public ") {
                (true, n)
            } else if let Some(n) = r.name().strip_prefix("icp:private ") {
                (false, n)
            } else {
                continue;
            };
            out.entry(name.to_string()).or_insert(MetadataSection {
                public,
                content: r.data().to_vec(),
            });
        }
    }
    out
}

/// The canister ranges this one-subnet replica hosts: every id `ids::canister_id` can make.
pub fn canister_ranges() -> Vec<(Principal, Principal)> {
    vec![(
        crate::ids::canister_id(0),
        crate::ids::canister_id(u64::MAX),
    )]
}

/// The subtree of one request's status.
pub fn request_status_node(status: &RequestStatus) -> Node {
    let mut n = Node::sub();
    let text = |s: &str| Node::Leaf(s.as_bytes().to_vec());
    match status {
        RequestStatus::Unknown => {}
        RequestStatus::Received => n.insert("status", text("received")),
        RequestStatus::Processing => n.insert("status", text("processing")),
        RequestStatus::Replied(reply) => {
            n.insert("status", text("replied"));
            n.insert("reply", Node::Leaf(reply.clone()));
        }
        RequestStatus::Rejected(r) => {
            n.insert("status", text("rejected"));
            n.insert("reject_code", Node::Leaf(leb128(r.reject_code as u64)));
            n.insert("reject_message", text(&r.reject_message));
            n.insert("error_code", text(&r.error_code));
        }
        RequestStatus::Done => n.insert("status", text("done")),
    }
    n
}

impl State {
    /// Ingress message ids still waiting in the queue (status `received`).
    pub(crate) fn queued_ingress(&self) -> HashSet<u64> {
        self.queue
            .iter()
            .filter_map(|m| match m {
                Msg::Ingress { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// The status of ingress message `msg` (`queued`: see [`State::queued_ingress`]).
    pub(crate) fn message_status(&self, msg: u64, queued: &HashSet<u64>) -> RequestStatus {
        match self.ingress.get(&msg) {
            None => RequestStatus::Unknown,
            Some(IngressState::Pending) if queued.contains(&msg) => RequestStatus::Received,
            Some(IngressState::Pending) => RequestStatus::Processing,
            Some(IngressState::Done(Ok(reply))) => RequestStatus::Replied(reply.clone()),
            Some(IngressState::Done(Err(r))) => RequestStatus::Rejected(r.clone()),
            Some(IngressState::Pruned) => RequestStatus::Done,
        }
    }

    /// `/request_status`: entries a path in `wanted` enters in full, other final ones as their
    /// cached digests.
    fn request_status_tree(&mut self, wanted: Option<&Paths>) -> Node {
        let queued = self.queued_ingress();
        let mut requests = Node::sub();
        let ids: Vec<([u8; 32], u64)> = self
            .requests
            .records
            .iter()
            .map(|(id, r)| (*id, r.msg))
            .collect();
        for (id, msg) in ids {
            let expand = wanted.and_then(|w| w.child(&id)).is_some();
            if let (false, Some(d)) = (expand, self.requests.digest(&id)) {
                requests.insert(id.to_vec(), Node::Digest(d));
                continue;
            }
            let status = self.message_status(msg, &queued);
            let node = request_status_node(&status);
            if matches!(
                status,
                RequestStatus::Replied(_) | RequestStatus::Rejected(_) | RequestStatus::Done
            ) {
                // Final: the subtree changes only when the reply is dropped (`done`), which
                // clears this digest (`IngressRecords::mark_done`).
                self.requests.set_digest(&id, node.digest());
            }
            requests.insert(id.to_vec(), node);
        }
        requests
    }

    /// The state tree, with every part a path in `paths` enters built in full (other finished
    /// request statuses stand as cached digests).
    pub fn state_tree(&mut self, paths: &Paths) -> Node {
        let mut root = Node::sub();
        root.insert("time", Node::Leaf(leb128(self.state_time)));

        // /request_status
        let wanted = paths.child(b"request_status");
        match self.requests.all_final {
            // Nothing asked under /request_status and nothing changed there: queries' data
            // certificates do not rehash the whole ingress history.
            Some(d) if wanted.is_none() => {
                root.insert("request_status", Node::Digest(d));
            }
            _ => {
                let requests = self.request_status_tree(wanted);
                if self.requests.records.values().all(|r| r.digest.is_some()) {
                    self.requests.all_final = Some(requests.digest());
                }
                root.insert("request_status", requests);
            }
        }

        // /canister
        let mut canisters = Node::sub();
        for (id, c) in &self.canisters {
            let mut n = Node::sub();
            n.insert("certified_data", Node::Leaf(c.ctx().certified_data.clone()));
            n.insert("controllers", Node::Leaf(cbor_tagged(&c.ctx().controllers)));
            if let Some(h) = c.module_hash {
                n.insert("module_hash", Node::Leaf(h.to_vec()));
            }
            if let Some(m) = &c.module {
                if !m.metadata.is_empty() {
                    let mut meta = Node::sub();
                    for (name, section) in &m.metadata {
                        meta.insert(name.as_bytes(), Node::Leaf(section.content.clone()));
                    }
                    n.insert("metadata", meta);
                }
            }
            canisters.insert(id.as_slice(), n);
        }
        root.insert("canister", canisters);

        // /subnet and /canister_ranges
        let subnet_id = self.keys.subnet_id();
        let ranges = canister_ranges();
        let ranges_cbor = serde_cbor::to_vec(&ranges).expect("principals serialize");
        let mut node = Node::sub();
        node.insert("public_key", Node::Leaf(self.keys.node_public_key_der()));
        let mut nodes = Node::sub();
        nodes.insert(self.keys.node_id().as_slice(), node);
        let mut subnet = Node::sub();
        subnet.insert("public_key", Node::Leaf(self.keys.root_key_der()));
        subnet.insert("type", Node::Leaf(b"application".to_vec()));
        subnet.insert("canister_ranges", Node::Leaf(ranges_cbor.clone()));
        subnet.insert("node", nodes);
        let mut subnets = Node::sub();
        subnets.insert(subnet_id.as_slice(), subnet);
        root.insert("subnet", subnets);
        let mut shards = Node::sub();
        shards.insert(ranges[0].0.as_slice(), Node::Leaf(ranges_cbor));
        let mut by_subnet = Node::sub();
        by_subnet.insert(subnet_id.as_slice(), shards);
        root.insert("canister_ranges", by_subnet);
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_certification::{LookupResult, SubtreeLookupResult};

    fn sample() -> Node {
        let mut root = Node::sub();
        root.insert("time", Node::Leaf(vec![1]));
        let mut c = Node::sub();
        for l in [b"b".as_ref(), b"d", b"f", b"h", b"j"] {
            let mut n = Node::sub();
            n.insert("x", Node::Leaf(l.to_vec()));
            n.insert("y", Node::Leaf(vec![9; 3]));
            c.insert(l, n);
        }
        root.insert("c", c);
        root.insert("z", Node::Leaf(b"last".to_vec()));
        root
    }

    fn paths(p: &[&[&[u8]]]) -> Paths {
        Paths::from_paths(
            &p.iter()
                .map(|p| p.iter().map(|l| l.to_vec()).collect())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn full_tree_digest_matches_node_digest() {
        let t = sample();
        assert_eq!(full(&t).digest(), t.digest());
    }

    #[test]
    fn witness_keeps_the_root_hash_and_reveals_only_requested_paths() {
        let t = sample();
        let w = witness(&t, &paths(&[&[b"c", b"f", b"x"]]));
        assert_eq!(w.digest(), t.digest());
        assert_eq!(
            w.lookup_path([b"c".as_ref(), b"f", b"x"]),
            LookupResult::Found(b"f")
        );
        // Not requested: unknown (pruned), not absent.
        assert_eq!(
            w.lookup_path([b"c".as_ref(), b"f", b"y"]),
            LookupResult::Unknown
        );
        assert_eq!(
            w.lookup_path([b"c".as_ref(), b"d", b"x"]),
            LookupResult::Unknown
        );
        assert_eq!(w.lookup_path([b"time".as_ref()]), LookupResult::Unknown);
        assert_eq!(w.lookup_path([b"z".as_ref()]), LookupResult::Unknown);
    }

    #[test]
    fn absent_labels_are_provably_absent_everywhere_in_the_order() {
        let t = sample();
        // Before the first, between two, after the last label; and at the top level.
        for missing in [b"a".as_ref(), b"e", b"g", b"k", b"zz"] {
            let w = witness(&t, &paths(&[&[b"c", missing, b"x"]]));
            assert_eq!(w.digest(), t.digest());
            assert_eq!(
                w.lookup_path([b"c".as_ref(), missing, b"x"]),
                LookupResult::Absent,
                "label {missing:?}"
            );
            // Others stay unknown.
            assert_eq!(
                w.lookup_path([b"c".as_ref(), b"h", b"x"]),
                LookupResult::Unknown
            );
        }
        let w = witness(&t, &paths(&[&[b"nope"], &[b"c", b"d", b"q"]]));
        assert_eq!(w.digest(), t.digest());
        assert_eq!(w.lookup_path([b"nope".as_ref()]), LookupResult::Absent);
        assert_eq!(
            w.lookup_path([b"c".as_ref(), b"d", b"q"]),
            LookupResult::Absent
        );
        assert_eq!(
            w.lookup_path([b"c".as_ref(), b"d", b"x"]),
            LookupResult::Unknown
        );
    }

    #[test]
    fn a_requested_prefix_reveals_the_whole_subtree() {
        let t = sample();
        let w = witness(&t, &paths(&[&[b"c", b"d"], &[b"c", b"d", b"x"]]));
        assert_eq!(w.digest(), t.digest());
        assert_eq!(
            w.lookup_path([b"c".as_ref(), b"d", b"y"]),
            LookupResult::Found(&[9; 3])
        );
        match w.lookup_subtree([b"c".as_ref(), b"d"]) {
            SubtreeLookupResult::Found(sub) => assert_eq!(sub.list_paths().len(), 2),
            _ => panic!("subtree not found"),
        }
        let w = witness(&t, &Paths::from_paths(&[vec![]]));
        assert_eq!(w, full(&t));
    }

    #[test]
    fn empty_subtrees_prove_absence() {
        let mut t = Node::sub();
        t.insert("e", Node::sub());
        let w = witness(&t, &paths(&[&[b"e", b"q"]]));
        assert_eq!(w.digest(), t.digest());
        assert_eq!(w.lookup_path([b"e".as_ref(), b"q"]), LookupResult::Absent);
    }

    #[test]
    fn metadata_sections_are_read_from_custom_sections() {
        let wasm = wat::parse_str(
            r#"(module
                 (@custom "icp:public candid:service" "service : {}")
                 (@custom "icp:private secret" "s")
                 (@custom "name" "ignored"))"#,
        )
        .unwrap();
        let m = wasm_metadata(&wasm);
        assert_eq!(m.len(), 2);
        assert_eq!(m["candid:service"].content, b"service : {}");
        assert!(m["candid:service"].public);
        assert!(!m["secret"].public);
    }

    #[test]
    fn leb128_encoding() {
        assert_eq!(leb128(0), vec![0]);
        assert_eq!(leb128(127), vec![127]);
        assert_eq!(leb128(128), vec![0x80, 1]);
        assert_eq!(leb128(300), vec![0xac, 0x02]);
    }
}
