//! The index + spawn deploy recipe: both canisters created first (each one's init argument names
//! the other), the index installed with the spawn canister as its registrar, then the spawn
//! canister installed holding the gzip-compressed video module.
//!
//! The recipe runs on any [`Target`]: the CLI's embedded replica, the tests' `Backend`s.

use std::fmt;

use candid::{CandidType, Principal};
use canvid_types::index::IndexInit;
use canvid_types::spawn::{QuotaArgs, SpawnInit};
use serde_bytes::ByteBuf;

use crate::wasm::gzip;

/// Where the recipe runs.
pub trait Target {
    /// What an install reports (e.g. its cost), handed back in [`Deployed`].
    type Installed;
    type Error: fmt::Display;
    /// A new canister holding `cycles`, whose only controller is `admin`.
    fn create_canister(&self, admin: Principal, cycles: u128) -> Principal;
    /// Installs `wasm` with `arg` into `canister`, sent by `admin`.
    fn install(
        &self,
        canister: Principal,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        admin: Principal,
    ) -> Result<Self::Installed, Self::Error>;
}

/// What to deploy.
pub struct IndexAndSpawn {
    /// Controller and admin of both canisters.
    pub admin: Principal,
    pub index_cycles: u128,
    /// The spawn canister's pool: it pays for every video canister it creates.
    pub spawn_cycles: u128,
    /// The quota of callers without one of their own (`None`: only callers given a quota can
    /// create videos).
    pub default_quota: Option<QuotaArgs>,
    pub index_wasm: Vec<u8>,
    /// The spawn module as installed: gzip it ([`gzip`]) where an install message is limited to
    /// 2 MiB (the IC, PocketIC), since its argument holds the video module.
    pub spawn_wasm: Vec<u8>,
    /// The video module, uncompressed; the spawn canister receives it gzipped.
    pub video_wasm: Vec<u8>,
}

/// The deployed pair.
#[derive(Clone, Debug)]
pub struct Deployed<I> {
    pub index: Principal,
    pub spawn: Principal,
    pub index_install: I,
    pub spawn_install: I,
    /// Size of the gzip-compressed video module handed to the spawn canister.
    pub video_wasm_size: usize,
}

/// Which step failed.
#[derive(Debug)]
pub enum DeployError<E> {
    Encode {
        canister: &'static str,
        error: candid::Error,
    },
    Install {
        canister: &'static str,
        error: E,
    },
}

impl<E: fmt::Display> fmt::Display for DeployError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeployError::Encode { canister, error } => {
                write!(
                    f,
                    "encoding the {canister} canister's init argument: {error}"
                )
            }
            DeployError::Install { canister, error } => {
                write!(f, "installing the {canister} canister: {error}")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for DeployError<E> {}

/// The index's init: `admin` administers it, the spawn canister registers videos in it.
pub fn index_init(admin: Principal, spawn: Principal) -> IndexInit {
    IndexInit {
        admins: vec![admin],
        registrars: vec![spawn],
    }
}

/// The spawn canister's init: `admin` administers it, it registers the videos it creates with
/// `index` and creates them from `video_wasm_gz`.
pub fn spawn_init(
    admin: Principal,
    index: Principal,
    video_wasm_gz: Vec<u8>,
    default_quota: Option<QuotaArgs>,
) -> SpawnInit {
    SpawnInit {
        app_canisters: None,
        platform_fee: None,
        admins: vec![admin],
        index: Some(index),
        video_wasm: Some(ByteBuf::from(video_wasm_gz)),
        default_quota,
        cycles: None,
    }
}

/// The install/upgrade argument of the index and spawn canisters: `opt init`.
pub fn init_arg<T: CandidType>(init: &T) -> Result<Vec<u8>, candid::Error> {
    candid::encode_one(Some(init))
}

/// Runs the recipe on `target`.
pub fn deploy_index_and_spawn<T: Target + ?Sized>(
    target: &T,
    recipe: IndexAndSpawn,
) -> Result<Deployed<T::Installed>, DeployError<T::Error>> {
    let IndexAndSpawn {
        admin,
        index_cycles,
        spawn_cycles,
        default_quota,
        index_wasm,
        spawn_wasm,
        video_wasm,
    } = recipe;
    // Both ids first: each canister's init argument names the other.
    let index = target.create_canister(admin, index_cycles);
    let spawn = target.create_canister(admin, spawn_cycles);

    let arg = init_arg(&index_init(admin, spawn)).map_err(|error| DeployError::Encode {
        canister: "index",
        error,
    })?;
    let index_install = target
        .install(index, index_wasm, arg, admin)
        .map_err(|error| DeployError::Install {
            canister: "index",
            error,
        })?;

    let video_gz = gzip(&video_wasm);
    let video_wasm_size = video_gz.len();
    let arg = init_arg(&spawn_init(admin, index, video_gz, default_quota)).map_err(|error| {
        DeployError::Encode {
            canister: "spawn",
            error,
        }
    })?;
    let spawn_install = target
        .install(spawn, spawn_wasm, arg, admin)
        .map_err(|error| DeployError::Install {
            canister: "spawn",
            error,
        })?;

    Ok(Deployed {
        index,
        spawn,
        index_install,
        spawn_install,
        video_wasm_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// An install the recipe asked for: canister, module, argument, sender.
    type Install = (Principal, Vec<u8>, Vec<u8>, Principal);

    /// Records what the recipe asks for.
    #[derive(Default)]
    struct Log {
        created: RefCell<Vec<(Principal, u128)>>,
        installed: RefCell<Vec<Install>>,
        refuse: Option<Principal>,
    }

    impl Target for Log {
        type Installed = usize;
        type Error = String;
        fn create_canister(&self, admin: Principal, cycles: u128) -> Principal {
            let mut created = self.created.borrow_mut();
            created.push((admin, cycles));
            Principal::from_slice(&[created.len() as u8])
        }
        fn install(
            &self,
            canister: Principal,
            wasm: Vec<u8>,
            arg: Vec<u8>,
            admin: Principal,
        ) -> Result<usize, String> {
            if self.refuse == Some(canister) {
                return Err("refused".into());
            }
            let mut installed = self.installed.borrow_mut();
            installed.push((canister, wasm, arg, admin));
            Ok(installed.len())
        }
    }

    fn recipe(admin: Principal) -> IndexAndSpawn {
        IndexAndSpawn {
            admin,
            index_cycles: 10,
            spawn_cycles: 1_000,
            default_quota: Some(QuotaArgs {
                max_videos: 3,
                max_cycles: 500,
            }),
            index_wasm: b"index".to_vec(),
            spawn_wasm: b"spawn".to_vec(),
            video_wasm: b"video".repeat(100),
        }
    }

    #[test]
    fn both_ids_first_then_index_then_spawn_each_naming_the_other() {
        let admin = Principal::from_slice(&[9; 29]);
        let log = Log::default();
        let d = deploy_index_and_spawn(&log, recipe(admin)).unwrap();
        assert_eq!(*log.created.borrow(), vec![(admin, 10), (admin, 1_000)]);
        let installed = log.installed.borrow();
        assert_eq!(installed.len(), 2);
        assert_eq!((d.index_install, d.spawn_install), (1, 2));

        let (id, wasm, arg, by) = &installed[0];
        assert_eq!((*id, wasm.as_slice(), *by), (d.index, &b"index"[..], admin));
        let init: Option<IndexInit> = candid::decode_one(arg).unwrap();
        let init = init.unwrap();
        assert_eq!((init.admins, init.registrars), (vec![admin], vec![d.spawn]));

        let (id, wasm, arg, by) = &installed[1];
        assert_eq!((*id, wasm.as_slice(), *by), (d.spawn, &b"spawn"[..], admin));
        let init: Option<SpawnInit> = candid::decode_one(arg).unwrap();
        let init = init.unwrap();
        assert_eq!(init.admins, vec![admin]);
        assert_eq!(init.index, Some(d.index));
        let gz = init.video_wasm.unwrap().into_vec();
        assert_eq!(gz, gzip(&b"video".repeat(100)));
        assert_eq!(d.video_wasm_size, gz.len());
        assert_eq!(init.default_quota.unwrap().max_videos, 3);
    }

    #[test]
    fn a_refused_install_names_the_canister() {
        let admin = Principal::anonymous();
        let log = Log {
            refuse: Some(Principal::from_slice(&[2])),
            ..Log::default()
        };
        let e = deploy_index_and_spawn(&log, recipe(admin)).unwrap_err();
        assert_eq!(e.to_string(), "installing the spawn canister: refused");
    }
}
