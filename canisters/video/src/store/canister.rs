//! The canister's one [`VideoStore`], opened by `init` / `post_upgrade` and borrowed by every
//! endpoint through [`with`] and [`with_mut`] (a missing store is a bug and traps before anything
//! changed).

use ic_stable_structures::DefaultMemoryImpl;

use super::VideoStore;

canvid_stable_common::canister_store!(VideoStore<DefaultMemoryImpl>, "video store");

#[cfg(test)]
mod tests {
    use candid::Principal;
    use canvid_types::video::VideoInit;

    use super::*;

    /// Natively `DefaultMemoryImpl` is a vector memory: the singleton works in unit tests too.
    #[test]
    fn installed_store_is_shared_by_with_and_with_mut() {
        let owner = Principal::from_slice(&[1, 2]);
        let init = VideoInit {
            owner,
            creator: owner,
            index: None,
            title: "t".into(),
            description: String::new(),
            tags: vec![],
            funded_by: None,
            platform_fee: None,
        };
        install(VideoStore::init(DefaultMemoryImpl::default(), &init, owner, 1).unwrap());
        with_mut(|s| s.mutate_state(|st| st.title = "changed".into()));
        assert_eq!(with(|s| s.metadata().title), "changed");
    }
}
