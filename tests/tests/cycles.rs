//! The IC's cycle rules, checked on both backends with the replica's probe canister
//! (`replica/fixtures/probe`), and the embedded replica's charges compared with PocketIC's.
//!
//! Each `backend_tests!` scenario asserts one rule of the IC as PocketIC 10 enforces it:
//! - **install prepayment**: `install_code` needs the cycles for its whole 300 B instruction
//!   limit above the freezing reserve, refuses with the shortfall otherwise, and refunds what the
//!   install did not use; the ingress message itself is paid by the canister, even when refused;
//! - **update prepayment**: an update runs only if the canister can prepay 40 B instructions above
//!   its freezing reserve; inside it, the balance is without the prepayment;
//! - **call reservation**: `ic0.cost_call` includes the response's execution and largest
//!   transmission (42.1 B), refunded when the response is handled; a call whose message memory
//!   would push the balance below the freezing reserve is not sent;
//! - **timers**: a due timer that cannot be prepaid is dropped;
//! - **compilation**: the first install of a module pays for compiling it (6,000 instructions
//!   per instruction of the instrumented module), later installs a hundredth of that.
//!
//! The embedded replica before these rules passed none of the three (it charged only what was
//! executed). `differential::*` runs one scenario on both backends and compares every step's
//! outcome and the cycles it cost (see [`CHEAPER_PERCENT`]).

use canvid_tests::clients::{CallOutcome, CallSpec};
use canvid_tests::deploy::T;
use canvid_tests::{backend_tests, principal, Backend, BackendExt, Principal, Reject};
use serde_bytes::ByteBuf;

/// 1 B cycles.
const B: u128 = 1_000_000_000;
/// The IC's instruction limits (ic-notes.md) and their execution fee (5 M + 1 per instruction).
const UPDATE_PREPAY: u128 = 5_000_000 + 40 * B;
const INSTALL_PREPAY: u128 = 5_000_000 + 300 * B;
/// `ic0.cost_call(0, 0)` on a 13-node subnet: 260 K + the callback's 40 B prepayment + 2 MiB of
/// response transmission at 1,000 cycles per byte.
const COST_CALL_EMPTY: u128 = 260_000 + UPDATE_PREPAY + 1_000 * 2 * 1024 * 1024;

fn probe() -> Vec<u8> {
    canvid_tests::wasm::load("replica-probe")
}

fn admin() -> Principal {
    principal("admin")
}

fn new_probe(b: &dyn Backend, cycles: u128) -> Principal {
    let id = b.create_canister(Some(admin()), None, cycles);
    b.install(id, probe(), candid::encode_args(()).unwrap(), Some(admin()))
        .unwrap_or_else(|e| panic!("{}: installing the probe: {e}", b.name()));
    id
}

/// The amount in "please top up the canister with at least N additional cycles".
fn shortfall(r: &Reject) -> u128 {
    let msg = &r.message;
    let start = msg
        .find("at least ")
        .unwrap_or_else(|| panic!("no shortfall in: {msg}"))
        + "at least ".len();
    let digits: String = msg[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("shortfall in: {msg}"))
}

/// Sets the freezing threshold so that the canister's balance above its freezing reserve is
/// about `liquid` (the reserve is `idle_cycles_burned_per_day` × threshold / 1 day).
fn set_liquid(b: &dyn Backend, id: Principal, liquid: u128) {
    let s = b.status(id, Some(admin())).expect("canister_status");
    let fee = 2 * B; // the status and settings messages' ingress, generously
    let reserve = s.cycles - liquid - fee;
    let threshold = reserve * 86_400 / s.idle_cycles_burned_per_day;
    b.set_freezing_threshold(id, Some(admin()), threshold as u64)
        .expect("update_settings");
}

fn install_is_prepaid(b: &dyn Backend) {
    // One B short of the prepayment (plus the ingress fee of ~1.5 B for a 730 KB module).
    let id = b.create_canister(Some(admin()), None, 300 * B);
    let e = b
        .install(id, probe(), candid::encode_args(()).unwrap(), Some(admin()))
        .expect_err("installing into a canister that cannot prepay 300 B instructions");
    assert_eq!(e.error_code, "IC0207", "{}: {e}", b.name());
    assert!(e.message.contains("is out of cycles"), "{}: {e}", b.name());
    let left = b.cycle_balance(id);
    let ingress = 300 * B - left;
    assert!(
        ingress > B && ingress < 2 * B,
        "{}: the refused install cost {ingress} (its ingress bytes)",
        b.name()
    );
    let need = shortfall(&e);
    // Shortfall = prepayment + freezing reserve of the empty canister - balance.
    let expected = INSTALL_PREPAY - left;
    assert!(
        need >= expected && need < expected + B / 10,
        "{}: shortfall {need}, expected {expected} + a small reserve",
        b.name()
    );
    // Topped up (the next attempt pays its ingress again): installed, and the unused
    // prepayment is refunded.
    b.add_cycles(id, need + ingress);
    let before = b.cycle_balance(id);
    b.install(id, probe(), candid::encode_args(()).unwrap(), Some(admin()))
        .unwrap_or_else(|e| panic!("{}: {e}", b.name()));
    // Ingress, compilation (the first install of a module: 6,000 instructions per wasm
    // instruction, ≈ 2.3 B here) and the init; far below the 300 B prepaid.
    let cost = before - b.cycle_balance(id);
    assert!(
        cost > ingress && cost < ingress + 5 * B,
        "{}: install cost {cost} (ingress {ingress})",
        b.name()
    );
}

fn update_is_prepaid(b: &dyn Backend) {
    let id = new_probe(b, 1_000 * T);
    let q: (u128, u128) = b.query(id, admin(), "balances_in_query", ()).unwrap();
    let (inside, _): (u128, u128) = b.update(id, admin(), "balances_in_update", ()).unwrap();
    let seen_prepay = q.0 - inside;
    // The balance inside the update lacks the prepayment and the ingress fee (~1.5 M).
    assert!(
        seen_prepay > UPDATE_PREPAY && seen_prepay < UPDATE_PREPAY + 3_000_000,
        "{}: the update saw {seen_prepay} fewer cycles than the query",
        b.name()
    );

    set_liquid(b, id, 30 * B);
    let e = b
        .update::<_, (u128, u128)>(id, admin(), "balances_in_update", ())
        .expect_err("an update with 30 B liquid cycles (40 B to prepay)");
    assert_eq!(e.error_code, "IC0207", "{}: {e}", b.name());
    let need = shortfall(&e);
    // `set_liquid` leaves up to 2 B more than asked (the settings messages' ingress).
    assert!(
        need > 7 * B && need < 11 * B,
        "{}: shortfall {need} (≈ 40 B - 30 B)",
        b.name()
    );
    b.add_cycles(id, need + B);
    b.update::<_, (u128, u128)>(id, admin(), "balances_in_update", ())
        .unwrap_or_else(|e| panic!("{}: after the top-up: {e}", b.name()));
}

fn call_spec(target: Principal) -> CallSpec {
    CallSpec {
        target,
        method: "whoami_update".into(),
        arg: ByteBuf::from(candid::encode_args(()).unwrap()),
        cycles: 0,
        bounded: false,
    }
}

fn calls_reserve_their_response(b: &dyn Backend) {
    let a = new_probe(b, 1_000 * T);
    let callee = new_probe(b, 1_000 * T);
    let (cost,): (u128,) = b.query(a, admin(), "cost_call", (0u64, 0u64)).unwrap();
    assert_eq!(cost, COST_CALL_EMPTY, "{}: cost_call(0, 0)", b.name());
    let (cost,): (u128,) = b.query(a, admin(), "cost_call", (10u64, 100u64)).unwrap();
    assert_eq!(
        cost,
        COST_CALL_EMPTY + 110_000,
        "{}: cost_call(10, 100)",
        b.name()
    );

    // A call is sent only if, after its fee and reservation, the balance stays above the
    // freezing reserve *including the call's message memory* (the request and a 2 MiB slot for
    // its response): `drain_to` sends all the liquid cycles the pre-check allows, which leaves
    // nothing for that.
    let sink = new_probe(b, T);
    let out: CallOutcome = b
        .update(a, admin(), "drain_to", (sink, 0u128))
        .map(|(o,)| o)
        .unwrap_or_else(|e| panic!("{}: drain_to: {e}", b.name()));
    assert!(
        matches!(out, CallOutcome::NotSent { .. }),
        "{}: draining to 0 left no reserve for the call's message memory, yet: {out:?}",
        b.name()
    );
    // Keeping 2 B (the message memory's reserve is ≈ 0.65 B at 30 days): sent.
    let out: CallOutcome = b
        .update(a, admin(), "drain_to", (sink, 2 * B))
        .map(|(o,)| o)
        .unwrap_or_else(|e| panic!("{}: drain_to: {e}", b.name()));
    assert!(
        matches!(out, CallOutcome::Reply { .. }),
        "{}: {out:?}",
        b.name()
    );
    // What is left: the 2 B kept, and the refunds of the update's prepayment (≈ 40 B) and of
    // the call's reservation (≈ 42.1 B), less what was used.
    let (_, liquid): (u128, u128) = b.query(a, admin(), "balances_in_query", ()).unwrap();
    let refunds = UPDATE_PREPAY + COST_CALL_EMPTY;
    assert!(
        liquid > 2 * B + refunds - 100_000_000 && liquid < 2 * B + refunds,
        "{}: liquid {liquid} after draining",
        b.name()
    );
    // And a call and its callback cost little once the reservation is refunded.
    let before = b.cycle_balance(a);
    let out: CallOutcome = b
        .update1(a, admin(), "call_other", &call_spec(callee))
        .unwrap();
    assert!(
        matches!(out, CallOutcome::Reply { .. }),
        "{}: {out:?}",
        b.name()
    );
    let cost = before - b.cycle_balance(a);
    assert!(
        cost < 50_000_000,
        "{}: a call and its callback cost {cost} once the reservation is refunded",
        b.name()
    );
}

backend_tests!(
    install_is_prepaid,
    update_is_prepaid,
    calls_reserve_their_response,
    frozen_canister_refuses_messages_but_not_its_controller,
    timer_is_prepaid_or_dropped,
    install_code_is_rate_limited
);

/// How far the embedded replica's charge for one step may be from PocketIC's. The IC counts
/// instructions with its own weights (wasmi fuel is close, not equal: measured 0.8x to 1.25x per
/// step) and ingress bytes on the request envelope (`canvid_replica::cycles::
/// INGRESS_ENVELOPE_BYTES` estimates it). Cheaper than PocketIC is what hides mainnet failures,
/// so that side is tight: at most [`CHEAPER_PERCENT`] below; dearer up to [`DEARER_PERCENT`]
/// above; each plus [`SLACK`] cycles for steps of a few million.
pub const CHEAPER_PERCENT: i128 = 5;
pub const DEARER_PERCENT: i128 = 30;
pub const SLACK: i128 = 1_000_000;

/// One step of the differential scenario: its outcome (the reply, rendered without what differs
/// between two instances by construction — canister ids, times — or the reject's error code) and
/// the cycles it cost.
#[derive(Debug)]
struct Step {
    what: String,
    outcome: Result<String, String>,
    charged: i128,
}

fn record(
    b: &dyn Backend,
    ids: &[Principal],
    what: &str,
    f: impl FnOnce() -> Result<String, Reject>,
) -> Step {
    let before: u128 = ids.iter().map(|id| b.cycle_balance(*id)).sum();
    let outcome = f().map_err(|e| e.error_code);
    let after: u128 = ids.iter().map(|id| b.cycle_balance(*id)).sum();
    Step {
        what: what.to_string(),
        outcome,
        charged: before as i128 - after as i128,
    }
}

/// A typed canister error fails the scenario: it is about cycles, not refusals. `render` keeps
/// what both backends must answer alike.
fn typed<T>(
    what: &str,
    r: Result<canvid_types::Result<T>, Reject>,
    render: impl FnOnce(T) -> String,
) -> Result<String, Reject> {
    r.map(|inner| render(canvid_tests::clients::ok(what, Ok(inner))))
}

fn done(r: Result<(), Reject>) -> Result<String, Reject> {
    r.map(|()| "()".to_string())
}

fn meta(m: canvid_types::video::VideoMetadata) -> String {
    format!(
        "{:?} size {} chunks {} uploaded {} digest {:?}",
        m.status, m.size, m.chunk_count, m.uploaded_bytes, m.digest
    )
}

/// The differential scenario: installs, updates with small and 1 MB arguments, an
/// inter-canister call, a refused install, a trapping update, a video canister's upload.
fn scenario(b: &dyn Backend) -> Vec<Step> {
    let mut steps = Vec::new();
    let a = b.create_canister(Some(admin()), None, 1_000 * T);
    let c = b.create_canister(Some(admin()), None, 1_000 * T);
    let both = [a, c];
    let unit = candid::encode_args(()).unwrap();
    steps.push(record(b, &both, "install probe a", || {
        done(b.install(a, probe(), unit.clone(), Some(admin())))
    }));
    steps.push(record(b, &both, "install probe c", || {
        done(b.install(c, probe(), unit.clone(), Some(admin())))
    }));
    steps.push(record(b, &both, "update set_heap", || {
        done(b.update::<_, ()>(a, admin(), "set_heap", (7u64,)))
    }));
    steps.push(record(b, &both, "update write_stable 1 MB", || {
        done(b.update::<_, ()>(
            a,
            admin(),
            "write_stable",
            (0u64, ByteBuf::from(vec![5u8; 1 << 20])),
        ))
    }));
    steps.push(record(b, &both, "query read_stable", || {
        b.query::<_, (ByteBuf,)>(a, admin(), "read_stable", (1_000u64, 8u64))
            .map(|(bytes,)| format!("{:?}", bytes.as_slice()))
    }));
    steps.push(record(b, &both, "update trap", || {
        done(b.update::<_, ()>(a, admin(), "trap", ("no".to_string(),)))
    }));
    steps.push(record(b, &both, "call a -> c", || {
        b.update1::<_, CallOutcome>(a, admin(), "call_other", &call_spec(c))
            .map(|o| match o {
                // The callee replies with its caller, `a`: an id that differs per instance.
                CallOutcome::Reply { refunded, .. } => format!("reply, refunded {refunded}"),
                other => format!("{other:?}"),
            })
    }));
    steps.push(record(b, &both, "upgrade probe a", || {
        done(b.upgrade(a, probe(), unit.clone(), Some(admin())))
    }));
    steps.push(record(b, &both, "query get_heap after upgrade", || {
        b.query::<_, (u64,)>(a, admin(), "get_heap", ())
            .map(|(v,)| v.to_string())
    }));
    let poor = b.create_canister(Some(admin()), None, 100 * B);
    steps.push(record(b, &[poor], "install refused for cycles", || {
        done(b.install(poor, probe(), unit.clone(), Some(admin())))
    }));
    // A video canister: install, one 2 MB chunk, finish.
    let owner = principal("video-owner");
    let video = canvid_tests::deploy::standalone_video(b, owner, None, 1_000 * T);
    let file = canvid_tests::GenFile::new(99, 2_000_000, 2_000_000);
    let spec = canvid_tests::clients::spec_for(&file, true);
    steps.push(record(b, &[video.id], "video begin_upload", || {
        typed("begin_upload", video.begin_upload(owner, &spec), meta)
    }));
    steps.push(record(b, &[video.id], "video put_chunk 2 MB", || {
        typed("put_chunk", video.put_chunk(owner, 0, file.chunk(0)), |r| {
            format!("{r:?}")
        })
    }));
    steps.push(record(b, &[video.id], "video finish_upload", || {
        typed("finish_upload", video.finish_upload(owner), meta)
    }));
    steps
}

/// A step's outcome for the table: the error code, or the reply cut to 40 characters.
fn short(outcome: &Result<String, String>) -> String {
    match outcome {
        Ok(reply) => reply.chars().take(40).collect(),
        Err(code) => code.clone(),
    }
}

/// Large payloads through the System API: a ~2 MB reply, a ~2 MB argument, 2 MB written to and
/// read from stable memory. The IC charges every byte crossing the System API (1 instruction per
/// byte copied, 50 per byte of a reply or call payload) and 1,000 instructions per newly
/// dirtied stable page; an embedded replica that charged only its wasm fuel was 10× cheaper.
fn large_payload_scenario(b: &dyn Backend) -> Vec<Step> {
    let mut steps = Vec::new();
    let a = b.create_canister(Some(admin()), None, 1_000 * T);
    let unit = candid::encode_args(()).unwrap();
    b.install(a, probe(), unit, Some(admin()))
        .unwrap_or_else(|e| panic!("{}: installing the probe: {e}", b.name()));
    const BIG: usize = 2_000_000;
    steps.push(record(b, &[a], "update reply_of_size 2 MB", || {
        b.update::<_, (ByteBuf,)>(a, admin(), "reply_of_size", (BIG as u64,))
            .map(|(r,)| r.len().to_string())
    }));
    steps.push(record(b, &[a], "update reply_of_size 1 KB", || {
        b.update::<_, (ByteBuf,)>(a, admin(), "reply_of_size", (1_000u64,))
            .map(|(r,)| r.len().to_string())
    }));
    steps.push(record(b, &[a], "update arg_len 2 MB", || {
        b.update::<_, (u64,)>(a, admin(), "arg_len", (ByteBuf::from(vec![1u8; BIG]),))
            .map(|(n,)| n.to_string())
    }));
    steps.push(record(b, &[a], "update write_stable 2 MB fresh", || {
        done(b.update::<_, ()>(
            a,
            admin(),
            "write_stable",
            (0u64, ByteBuf::from(vec![5u8; BIG])),
        ))
    }));
    steps.push(record(b, &[a], "update write_stable 2 MB again", || {
        done(b.update::<_, ()>(
            a,
            admin(),
            "write_stable",
            (0u64, ByteBuf::from(vec![6u8; BIG])),
        ))
    }));
    // A query method called as an update runs replicated and is charged.
    steps.push(record(b, &[a], "update read_stable 2 MB", || {
        b.update::<_, (ByteBuf,)>(a, admin(), "read_stable", (0u64, BIG as u64))
            .map(|(r,)| format!("{} bytes of {}", r.len(), r[0]))
    }));
    steps.push(record(b, &[a], "update debug 100 KB", || {
        done(b.update::<_, ()>(a, admin(), "debug", ("x".repeat(100_000),)))
    }));
    steps
}

/// Compares two runs of a scenario step by step (see [`CHEAPER_PERCENT`]).
fn compare(ours: &[Step], theirs: &[Step]) {
    let mut diverged = Vec::new();
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o.what, t.what);
        let low = t.charged - t.charged.abs() * CHEAPER_PERCENT / 100 - SLACK;
        let high = t.charged + t.charged.abs() * DEARER_PERCENT / 100 + SLACK;
        let line = format!(
            "{:<30} embedded {:>18} {:<10} pocket-ic {:>18} {:<10}",
            o.what,
            o.charged,
            short(&o.outcome),
            t.charged,
            short(&t.outcome),
        );
        eprintln!("{line}");
        if o.outcome != t.outcome {
            diverged.push(format!(
                "{line}\n    embedded answered  {:?}\n    pocket-ic answered {:?}",
                o.outcome, t.outcome
            ));
        } else if o.charged < low || o.charged > high {
            diverged.push(line);
        }
    }
    assert_eq!(ours.len(), theirs.len());
    assert!(
        diverged.is_empty(),
        "the embedded replica diverges from PocketIC (allowed: {CHEAPER_PERCENT} % cheaper, \
         {DEARER_PERCENT} % dearer, ± {SLACK} cycles):\n{}",
        diverged.join("\n")
    );
}

mod differential {
    use super::*;

    #[test]
    #[cfg_attr(
        not(canvid_pocket_ic),
        ignore = "PocketIC not configured: set POCKET_IC_BIN to a pocket-ic-server 10.0.0 binary"
    )]
    fn same_outcomes_and_cycles_on_both_backends() {
        let pic = canvid_tests::PocketIcBackend::from_env();
        let replica = canvid_tests::ReplicaBackend::new();
        let ours = scenario(&replica);
        let theirs = scenario(&pic);
        compare(&ours, &theirs);
    }

    #[test]
    #[cfg_attr(
        not(canvid_pocket_ic),
        ignore = "PocketIC not configured: set POCKET_IC_BIN to a pocket-ic-server 10.0.0 binary"
    )]
    fn large_payloads_cost_alike_on_both_backends() {
        let pic = canvid_tests::PocketIcBackend::from_env();
        let replica = canvid_tests::ReplicaBackend::new();
        let ours = large_payload_scenario(&replica);
        let theirs = large_payload_scenario(&pic);
        compare(&ours, &theirs);
    }
}

/// The IC rate-limits `install_code` per canister: a successful install adds the instructions it
/// executed (compilation included) to the canister's debit, every round takes 2 B off it, and
/// an install while the debit is above 0 is refused with IC0209. The probe's first install
/// (≈ 2.3 B instructions, mostly compiling it) leaves a debit after its round; one more round
/// clears it; an upgrade of the cached module (≈ 25 M) leaves none.
fn install_code_is_rate_limited(b: &dyn Backend) {
    let id = b.create_canister(Some(admin()), None, 1_000 * T);
    let unit = candid::encode_args(()).unwrap();
    b.install(id, probe(), unit.clone(), Some(admin()))
        .unwrap_or_else(|e| panic!("{}: install: {e}", b.name()));
    let version = |b: &dyn Backend| -> u64 {
        let (v,): (u64,) = b.query(id, admin(), "canister_version", ()).unwrap();
        v
    };
    let installed = version(b);
    let e = b
        .upgrade(id, probe(), unit.clone(), Some(admin()))
        .expect_err("an upgrade right after the first install");
    assert_eq!(e.error_code, "IC0209", "{}: {e}", b.name());
    assert!(
        e.message.starts_with(&format!(
            "Canister {id} is rate limited because it executed too many instructions in the \
             previous install_code messages. Please retry installation after several minutes."
        )),
        "{}: {e}",
        b.name()
    );
    assert_eq!(
        version(b),
        installed,
        "{}: the refused upgrade changed nothing",
        b.name()
    );
    b.tick();
    b.upgrade(id, probe(), unit.clone(), Some(admin()))
        .unwrap_or_else(|e| panic!("{}: upgrade after a round: {e}", b.name()));
    b.upgrade(id, probe(), unit, Some(admin()))
        .unwrap_or_else(|e| panic!("{}: a cheap upgrade right after: {e}", b.name()));
}

fn frozen_canister_refuses_messages_but_not_its_controller(b: &dyn Backend) {
    let id = new_probe(b, 1_000 * T);
    b.update::<_, ()>(id, admin(), "set_heap", (1u64,)).unwrap();
    // A freezing threshold of ~30 million years: the reserve exceeds the balance.
    b.set_freezing_threshold(id, Some(admin()), 1_000_000_000_000_000)
        .unwrap();
    let e = b
        .update::<_, ()>(id, admin(), "set_heap", (2u64,))
        .expect_err("an update to a frozen canister");
    assert_eq!(e.error_code, "IC0207", "{}: {e}", b.name());
    assert!(shortfall(&e) > 1_000 * T, "{}: {e}", b.name());
    // The controller's management messages still get through (and are paid): it unfreezes.
    let before = b.cycle_balance(id);
    b.set_freezing_threshold(id, Some(admin()), 2_592_000)
        .unwrap_or_else(|e| panic!("{}: unfreezing: {e}", b.name()));
    let fee = before - b.cycle_balance(id);
    assert!(
        fee > 1_200_000 && fee < 3_000_000,
        "{}: update_settings ingress cost {fee}",
        b.name()
    );
    let heap: (u64,) = b.query(id, admin(), "get_heap", ()).unwrap();
    assert_eq!(heap.0, 1, "{}: the refused update ran", b.name());
    b.update::<_, ()>(id, admin(), "set_heap", (3u64,))
        .unwrap_or_else(|e| panic!("{}: after unfreezing: {e}", b.name()));
}

/// A timer is an execution like an update: it runs only when its 40 B can be prepaid. A due
/// global timer that cannot be prepaid is dropped, not retried after a top-up (the IC
/// deactivates the global timer when it fires): a canister that relies on timers must keep
/// 40 B above its freezing reserve.
fn timer_is_prepaid_or_dropped(b: &dyn Backend) {
    let fired = |id| -> u64 {
        let (n,): (u64,) = b.query(id, admin(), "timers_fired", ()).unwrap();
        n
    };
    let run_for_2_s = || {
        b.advance_time(std::time::Duration::from_secs(2));
        for _ in 0..5 {
            b.tick();
        }
    };
    let control = new_probe(b, 1_000 * T);
    b.update::<_, ()>(control, admin(), "set_timer", (1_000_000_000u64, 1u64))
        .unwrap();
    let poor = new_probe(b, 1_000 * T);
    b.update::<_, ()>(poor, admin(), "set_timer", (1_000_000_000u64, 2u64))
        .unwrap();
    set_liquid(b, poor, 30 * B);
    run_for_2_s();
    assert_eq!(fired(control), 1, "{}: the control timer", b.name());
    assert_eq!(
        fired(poor),
        0,
        "{}: a timer with 30 B to prepay 40 B",
        b.name()
    );
    b.add_cycles(poor, 20 * B);
    run_for_2_s();
    assert_eq!(fired(poor), 0, "{}: the dropped timer came back", b.name());
}
