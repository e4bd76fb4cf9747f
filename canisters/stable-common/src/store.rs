//! The canister's one store, opened in `init`/`post_upgrade` and borrowed by every endpoint.
//!
//! Each canister keeps its whole state in one store type (`VideoStore`, `SpawnStore`,
//! `IndexStore`) that is generic over its memory, so its logic runs natively on `VectorMemory`
//! in unit tests. On the IC it lives in a `thread_local`; [`canister_store!`] writes that
//! singleton and its accessors once instead of by hand in every canister.

use std::cell::RefCell;

/// A store that is installed once and then borrowed; empty until installed.
pub struct StoreCell<T> {
    what: &'static str,
    cell: RefCell<Option<T>>,
}

impl<T> StoreCell<T> {
    /// An empty cell; `what` names the store in the trap message of a use before `install`.
    pub const fn new(what: &'static str) -> Self {
        StoreCell {
            what,
            cell: RefCell::new(None),
        }
    }

    /// Installs (or replaces) the store.
    pub fn install(&self, store: T) {
        *self.cell.borrow_mut() = Some(store);
    }

    /// Whether a store is installed.
    pub fn is_installed(&self) -> bool {
        self.cell.borrow().is_some()
    }

    /// Runs `f` on the store. Every entry point runs after `init`/`post_upgrade`, which install
    /// it: a missing store is a bug and traps, before anything was changed.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let guard = self.cell.borrow();
        let store = guard
            .as_ref()
            .unwrap_or_else(|| panic!("{} is opened in init/post_upgrade", self.what));
        f(store)
    }

    /// Runs `f` on the store, mutably (see [`StoreCell::with`]).
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.cell.borrow_mut();
        let store = guard
            .as_mut()
            .unwrap_or_else(|| panic!("{} is opened in init/post_upgrade", self.what));
        f(store)
    }
}

/// Declares the canister's store singleton and the free functions `install`, `with` and
/// `with_mut` over it, in the module where it is invoked:
///
/// ```ignore
/// canvid_stable_common::canister_store!(VideoStore<DefaultMemoryImpl>, "video store");
/// ```
#[macro_export]
macro_rules! canister_store {
    ($store:ty, $what:literal) => {
        ::std::thread_local! {
            static STORE: $crate::StoreCell<$store> = const { $crate::StoreCell::new($what) };
        }

        /// Installs the canister's store (from `init` / `post_upgrade`).
        pub fn install(store: $store) {
            STORE.with(|cell| cell.install(store))
        }

        /// Runs `f` on the canister's store.
        pub fn with<R>(f: impl FnOnce(&$store) -> R) -> R {
            STORE.with(|cell| cell.with(f))
        }

        /// Runs `f` on the canister's store, mutably.
        pub fn with_mut<R>(f: impl FnOnce(&mut $store) -> R) -> R {
            STORE.with(|cell| cell.with_mut(f))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::StoreCell;

    #[test]
    fn installed_store_is_borrowed_and_replaced() {
        let cell = StoreCell::new("test store");
        assert!(!cell.is_installed());
        cell.install(vec![1u8]);
        cell.with_mut(|v| v.push(2));
        assert_eq!(cell.with(|v| v.clone()), vec![1, 2]);
        cell.install(vec![9]);
        assert_eq!(cell.with(|v| v.len()), 1);
    }

    #[test]
    #[should_panic(expected = "test store is opened in init/post_upgrade")]
    fn use_before_install_traps_with_the_stores_name() {
        let cell: StoreCell<u8> = StoreCell::new("test store");
        cell.with(|_| ());
    }

    mod declared {
        crate::canister_store!(Vec<u32>, "declared store");

        #[test]
        fn macro_declares_install_with_and_with_mut() {
            install(vec![1]);
            with_mut(|v| v.push(2));
            assert_eq!(with(|v| v.iter().sum::<u32>()), 3);
        }
    }
}
