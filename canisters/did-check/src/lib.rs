//! Keeps a canister's checked-in candid interface honest. Used by each canister's unit tests.
//!
//! Two checks, because each alone lets a mistake through:
//! - **current**: `candid/<name>.did` is exactly what the code exports (`__export_service()`).
//!   Clients, the TypeScript bindings and the docs are built from the file, so it must not drift
//!   from the code. `UPDATE_CANDID=1` rewrites the file instead of failing.
//! - **compatible**: what the code exports is a candid subtype of `candid/released/<name>.did`,
//!   the interface deployed clients were built against: every released method still exists with
//!   arguments old clients can send and replies they can decode (`service_compatible`, as the
//!   DFINITY asset canister checks its interface). Regenerating with `UPDATE_CANDID=1` does not
//!   touch the released file, so a breaking change still fails here. A deliberate break is
//!   recorded by copying the new interface over the released one in the same commit, with the
//!   reason in `candid/released/README.md`.

use std::path::PathBuf;

use candid_parser::utils::{service_compatible, CandidSource};

/// `candid/` at the workspace root.
fn candid_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../candid"))
}

/// Fails unless `candid/<name>.did` equals `generated`; with `UPDATE_CANDID=1`, writes it.
pub fn assert_current(name: &str, generated: &str) {
    let path = candid_dir().join(format!("{name}.did"));
    if std::env::var("UPDATE_CANDID").as_deref() == Ok("1") {
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "candid/{name}.did is out of date with the canister's endpoints.\n\
         Regenerate it with: UPDATE_CANDID=1 cargo test -p canvid-{name} candid\n\
         --- generated ---\n{generated}"
    );
}

/// Fails unless `generated` can replace the released interface `candid/released/<name>.did`.
pub fn assert_compatible_with_released(name: &str, generated: &str) {
    let path = candid_dir().join("released").join(format!("{name}.did"));
    let released = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if let Err(e) = compatible(generated, &released) {
        panic!(
            "the {name} canister's interface is not compatible with the released one \
             (candid/released/{name}.did): {e:#}\n\
             Clients built against the released interface would break. If the break is \
             deliberate, copy candid/{name}.did over the released file and say why in \
             candid/released/README.md."
        );
    }
}

/// `Ok` when a service with interface `new` can replace one with interface `old`.
pub fn compatible(new: &str, old: &str) -> Result<(), String> {
    service_compatible(CandidSource::Text(new), CandidSource::Text(old))
        .map_err(|e| format!("{e:#}"))
}

/// As [`compatible`], without candid's special `opt` rule: `t <: opt t'` for an unrelated `t`
/// passes `compatible` (the value decodes as `null`), which is right for evolving one's own
/// interface but hides a wrong type when checking against a published standard (a client would
/// read every such answer as `null`). Here it is an error.
pub fn implements(ours: &str, published: &str) -> Result<(), String> {
    use candid::types::subtype::{subtype_with_config, OptReport};
    let load = |text: &str| {
        CandidSource::Text(text)
            .load()
            .map_err(|e| format!("{e:#}"))
            .and_then(|(env, t)| t.map(|t| (env, t)).ok_or("no service type".to_string()))
    };
    let (mut env, t1) = load(ours)?;
    let (env2, t2) = load(published)?;
    let t2 = env.merge_type(env2, t2);
    let mut gamma = std::collections::HashSet::new();
    subtype_with_config(OptReport::Error, &mut gamma, &env, &t1, &t2).map_err(|e| format!("{e:#}"))
}

/// The published ICRC candid files: `../shared/standards` next to the repository (override with
/// `ICRC_STANDARDS_DIR`). `None` where they are absent (a user's clone): callers then say so on
/// stderr ([`skipped`]) instead of passing silently.
pub fn standards_dir() -> Option<PathBuf> {
    let dir = std::env::var("ICRC_STANDARDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/standards"
            ))
        });
    dir.is_dir().then_some(dir)
}

/// Reports a check that did not run, where it is seen: libtest captures `println!` of passing
/// tests, but not direct writes to the stderr handle.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

#[cfg(test)]
mod tests {
    use super::compatible;

    const OLD: &str = r#"
        type R = record { a : nat; b : opt text };
        service : { get : (nat) -> (R) query; put : (R) -> () }
    "#;

    #[test]
    fn adding_a_method_or_an_optional_argument_is_compatible() {
        // A reply may gain fields, an argument only optional ones.
        let new = r#"
            type R = record { a : nat; b : opt text; c : nat64 };
            type A = record { a : nat; b : opt text; d : opt nat };
            service : {
              get : (nat, opt nat32) -> (R) query;
              put : (A) -> ();
              extra : () -> ();
            }
        "#;
        assert_eq!(compatible(new, OLD), Ok(()));
        let required_field = r#"
            type R = record { a : nat; b : opt text; c : nat64 };
            service : { get : (nat) -> (R) query; put : (R) -> () }
        "#;
        assert!(compatible(required_field, OLD)
            .unwrap_err()
            .contains("field c"));
    }

    #[test]
    fn removing_a_method_or_changing_a_type_is_not() {
        let removed =
            "type R = record { a : nat; b : opt text }; service : { get : (nat) -> (R) query }";
        assert!(compatible(removed, OLD).is_err());
        let retyped = r#"
            type R = record { a : text; b : opt text };
            service : { get : (nat) -> (R) query; put : (R) -> () }
        "#;
        assert!(compatible(retyped, OLD).is_err());
        let required_arg = r#"
            type R = record { a : nat; b : opt text };
            service : { get : (nat, nat) -> (R) query; put : (R) -> () }
        "#;
        assert!(compatible(required_arg, OLD).is_err());
    }
}
